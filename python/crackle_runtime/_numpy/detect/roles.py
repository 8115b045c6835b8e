"""Column roles (SPEC §12), the twin of the Rust core's ``detect::roles``: which metrics are
an index of the task order (ids, counters) rather than a measurement. Computed once per
cooling, before any detector."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from crackle_runtime._numpy.detect.shared.columns import as_columns

__all__ = ["FIELDS", "column_roles", "is_counter"]

FIELDS = ("counter",)
MIN_COUNTER_VALUES = 8  # fewer values are never judged to be a counter
MIN_COUNTER_DISTINCT = 3  # a counter takes at least this many distinct values

Float64Array = NDArray[np.float64]


def is_counter(values: Float64Array) -> bool:
    """An id or a counter: >= 8 values, monotonic (non-decreasing or non-increasing) and
    >= 3 distinct values (below 8 values, monotonic order is too likely by chance)."""
    if values.size < MIN_COUNTER_VALUES:
        return False
    steps = np.diff(values)
    if not ((steps >= 0.0).all() or (steps <= 0.0).all()):
        return False
    # In a monotonic sequence every new distinct value is a change from its predecessor.
    return 1 + int(np.count_nonzero(steps)) >= MIN_COUNTER_DISTINCT


def column_roles(columns: Float64Array) -> dict[str, Any]:
    """Per metric: ``counter``, :func:`is_counter` over its present values."""
    values = as_columns(columns)
    counter = np.array([is_counter(row[~np.isnan(row)]) for row in values], dtype=np.bool_)
    return {"counter": counter.reshape(values.shape[0])}
