"""Phase transitions (SPEC §6), the twin of the Rust core's ``detect::phase_transition``:
did a metric's level change between the first and second half of the tasks, and where is
the best single change point?"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from crackle_runtime._args import Budget, Params
from crackle_runtime._numpy._stats import sequential_sum, welch_t_test
from crackle_runtime._numpy.detect.shared.columns import as_columns, empty_result, store

__all__ = ["FIELDS", "KIND", "NAME", "PARAMS", "run"]

NAME = "phase_transition"
KIND = "phase transition"
FIELDS = (
    "count",
    "first_avg",
    "second_avg",
    "mean_all",
    "shift",
    "p_value",
    "change_index",
    "delta",
    "detected",
)
PARAMS: dict[str, Any] = {"sensitivity": 0.5}

STAGE = "phase_transition"
MIN_TESTED_HALF = 4  # below this many values per half the shift is not tested
SIGNIFICANCE = 0.01
ZERO_MEAN_RELATIVE = 1e-12  # |mean_all| at or below this times max|x| counts as zero

Float64Array = NDArray[np.float64]


@np.errstate(over="ignore", invalid="ignore")
def run(columns: Float64Array, params: Params, budget: Budget) -> dict[str, Any]:
    """Per metric, over its present values in recording order, split at h = count // 2:
    the halves' means, ``shift = |delta| / |mean_all|`` (NaN when |mean_all| <= 1e-12 max|x|),
    Welch's p-value of the halves, the best change point (the k in 1..count-1 maximising
    S_k^2 count / (k (count - k)), S_k the prefix sum of values - mean_all; first k on ties)
    and ``detected`` = shift > sensitivity and, when both halves have >= 4 values,
    p_value < 0.01. Fewer than 2 values: NaN statistics, change_index -1."""
    sensitivity = params.finite("sensitivity", 0.0, inclusive=True)
    values_by_metric = as_columns(columns)
    metrics = values_by_metric.shape[0]
    result = empty_result(FIELDS, metrics, ints=("count", "change_index"), bools=("detected",))
    result["change_index"][:] = -1
    for metric in range(metrics):
        budget.check(STAGE)
        row = values_by_metric[metric]
        values = row[~np.isnan(row)]
        count = values.size
        result["count"][metric] = count
        if count < 2:
            continue
        half = count // 2
        first, second = values[:half], values[half:]
        first_avg = sequential_sum(first) / half
        second_avg = sequential_sum(second) / (count - half)
        mean_all = sequential_sum(values) / count
        delta = second_avg - first_avg
        largest = float(np.abs(values).max())
        shift = (
            abs(delta) / abs(mean_all) if abs(mean_all) > ZERO_MEAN_RELATIVE * largest else math.nan
        )
        _, p_value = welch_t_test(first, second)
        # Best single change point: argmax keeps the first k on ties.
        centered_prefix = np.cumsum(values - mean_all)[:-1]
        k = np.arange(1, count, dtype=np.float64)
        reduction = centered_prefix * centered_prefix * float(count) / (k * (count - k))
        significant = half < MIN_TESTED_HALF or p_value < SIGNIFICANCE
        store(
            result,
            metric,
            {
                "first_avg": first_avg,
                "second_avg": second_avg,
                "mean_all": mean_all,
                "shift": shift,
                "p_value": p_value,
                "change_index": int(np.argmax(reduction)) + 1,
                "delta": delta,
                "detected": bool(shift > sensitivity and significant),
            },
        )
    return result
