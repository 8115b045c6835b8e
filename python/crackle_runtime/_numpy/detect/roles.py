"""Column roles (SPEC §12), the twin of the Rust core's ``detect::roles``: which metrics are
an index of the task order (ids, counters, row numbers, byte totals, timestamps) rather than
a measurement. Computed once per cooling, before any detector; index columns take part in
no detector.

A column is an index when it is a counter (:func:`is_counter`, SPEC §6) or when it moves
with the row order: |Spearman ρ with the row position| >= 0.99 with >= 90% distinct values
(Spearman 1904: Pearson's r of the average ranks with the positions 0..m-1)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from crackle_runtime._numpy._stats import pearson
from crackle_runtime._numpy.detect.shared.columns import as_columns

__all__ = [
    "FIELDS",
    "average_ranks",
    "column_roles",
    "is_counter",
    "rank_correlation_with_position",
]

FIELDS = ("counter", "spearman", "distinct_share", "index")
MIN_COUNTER_VALUES = 8  # fewer values are never judged to be a counter (nor an index)
MIN_COUNTER_DISTINCT = 3  # a counter takes at least this many distinct values
INDEX_RANK_CORRELATION = 0.99  # |rho with the row position| of an index column
INDEX_DISTINCT_SHARE = 0.9  # ... with at least this share of distinct values
PRECHECK_SAMPLE = 4096  # the precheck ranks at most this many evenly spaced values
PRECHECK_RANK_CORRELATION = 0.95  # the full check runs only from this sample |rho| on

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


def average_ranks(values: Float64Array) -> Float64Array:
    """1-based average ranks (scipy's ``rankdata(method="average")``)."""
    sorted_values = np.sort(values)
    low = np.searchsorted(sorted_values, values, side="left")
    high = np.searchsorted(sorted_values, values, side="right")
    return np.asarray((low + 1 + high) / 2.0, dtype=np.float64)


def rank_correlation_with_position(values: Float64Array) -> float:
    """Spearman's ρ of ``values`` with their positions 0..m-1."""
    return pearson(average_ranks(values), np.arange(values.size, dtype=np.float64))


def _role(values: Float64Array) -> tuple[bool, float, float, bool]:
    counter = is_counter(values)
    m = values.size
    if m < MIN_COUNTER_VALUES:
        return counter, math.nan, math.nan, counter
    if m > PRECHECK_SAMPLE:
        sample = values[np.arange(PRECHECK_SAMPLE, dtype=np.int64) * m // PRECHECK_SAMPLE]
        rho = rank_correlation_with_position(sample)
        if abs(rho) >= PRECHECK_RANK_CORRELATION:
            rho = rank_correlation_with_position(values)
    else:
        rho = rank_correlation_with_position(values)
    share = math.nan
    if abs(rho) >= INDEX_RANK_CORRELATION:
        share = np.unique(values).size / m
    moves_with_rows = abs(rho) >= INDEX_RANK_CORRELATION and share >= INDEX_DISTINCT_SHARE
    return counter, rho, share, counter or moves_with_rows


def column_roles(columns: Float64Array) -> dict[str, Any]:
    """Per metric over its present values: ``counter`` (:func:`is_counter`), ``spearman``
    (ρ with the row position; over the <= 4,096 evenly spaced values ``i * m // k`` unless
    that sample's |ρ| >= 0.95; NaN below 8 values), ``distinct_share`` (NaN unless |ρ| >=
    0.99) and ``index`` (counter, or |ρ| >= 0.99 with >= 90% distinct values)."""
    values = as_columns(columns)
    roles = [_role(row[~np.isnan(row)]) for row in values]
    count = values.shape[0]
    return {
        "counter": np.array([r[0] for r in roles], dtype=np.bool_).reshape(count),
        "spearman": np.array([r[1] for r in roles], dtype=np.float64).reshape(count),
        "distinct_share": np.array([r[2] for r in roles], dtype=np.float64).reshape(count),
        "index": np.array([r[3] for r in roles], dtype=np.bool_).reshape(count),
    }
