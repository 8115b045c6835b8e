"""Hypothesis strategies of the detector tests: random (metrics, tasks) matrices with the
awkward parts of real data (ties, constant rows, absent values, offsets, planted laws)."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from references import Columns

NAN = math.nan

# Small integers give ties, exact distances and MAD = 0; floats give everything else.
ELEMENTS = st.one_of(
    st.integers(-6, 6).map(float),
    st.floats(-50.0, 50.0, allow_nan=False, allow_infinity=False),
)


@st.composite
def small_matrices(
    draw: st.DrawFn, min_metrics: int = 1, max_metrics: int = 4, max_tasks: int = 120
) -> Columns:
    """``min_metrics..max_metrics`` metrics over up to ``max_tasks`` tasks: small integers
    and floats, NaN for about a third of the values, sometimes a constant row, and
    sometimes a planted law between the first two metrics (metric 1 = 10 - metric 0)."""
    metrics = draw(st.integers(min_metrics, max_metrics))
    tasks = draw(st.integers(0, max_tasks))
    values = draw(hnp.arrays(np.float64, (metrics, tasks), elements=ELEMENTS))
    if metrics >= 2 and draw(st.booleans()):
        values[1] = 10.0 - values[0]
    if metrics >= 1 and draw(st.integers(0, 4)) == 0:
        values[draw(st.integers(0, metrics - 1))] = draw(ELEMENTS)
    absent = draw(
        hnp.arrays(np.bool_, (metrics, tasks), elements=st.sampled_from([False, False, True]))
    )
    values[absent] = NAN
    return values
