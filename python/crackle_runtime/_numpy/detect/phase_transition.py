"""Phase transitions (SPEC §6, §12), the twin of the Rust core's ``detect::phase_transition``:
did a metric's level change between the first and second half of the tasks, and where is
the best single change point? The significance gate is Welch's test with the halves' AR(1)
long-run variance (Andrews 1991 §5; Andrews & Monahan 1992): see the Rust module's
documentation for the method and its measured size."""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from crackle_runtime._args import Budget, Params
from crackle_runtime._numpy._stats import sequential_sum, welch_t_test
from crackle_runtime._numpy.detect.shared.columns import as_columns, empty_result, store

__all__ = ["FIELDS", "KIND", "NAME", "PARAMS", "phase_row", "run"]

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
PERSISTENT_RHO = 0.9  # residuals this autocorrelated: a drifting metric, not detected
MAX_RHO = 0.97  # largest lag-1 autocorrelation used (Andrews & Monahan 1992)

Float64Array = NDArray[np.float64]


@np.errstate(over="ignore", invalid="ignore")
def run(columns: Float64Array, params: Params, budget: Budget) -> dict[str, Any]:
    """Per metric, over its present values in recording order, split at h = count // 2:
    the halves' means, ``shift = |delta| / |mean_all|`` (NaN when |mean_all| <= 1e-12 max|x|),
    Welch's p-value of the halves with their AR(1) long-run variances
    (:func:`residual_rho`, :func:`autocorrelation_inflation`, ``welch_t_test``; Welch's own
    on uncorrelated data), the best change point (the k in 1..count-1 maximising
    S_k^2 count / (k (count - k)), S_k the prefix sum of values - mean_all; first k on ties)
    and ``detected`` = shift > sensitivity, not drifting (residual_rho < PERSISTENT_RHO) and, when
    both halves have >= 4 values, p_value < 0.01. Fewer than 2 values: NaN statistics,
    change_index -1."""
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
        mean_all = sequential_sum(values) / count
        # Best single change point: argmax keeps the first k on ties.
        centered_prefix = np.cumsum(values - mean_all)[:-1]
        k = np.arange(1, count, dtype=np.float64)
        reduction = centered_prefix * centered_prefix * float(count) / (k * (count - k))
        change_index = int(np.argmax(reduction)) + 1
        rho = residual_rho(values, half, change_index)
        _, p_value = welch_t_test(first, second, autocorrelation_inflation(rho))
        halves = (sequential_sum(first) / half, sequential_sum(second) / (count - half), mean_all)
        largest = float(np.abs(values).max())
        row = phase_row(count, halves, largest, change_index, rho, p_value, sensitivity)
        store(result, metric, row)
    return result


def phase_row(
    count: int,
    halves: tuple[float, float, float],
    largest: float,
    change_index: int,
    rho: float,
    p_value: float,
    sensitivity: float,
) -> dict[str, Any]:
    """The row of a metric of ``count`` >= 2 values from its means (first half, second half,
    all), max|x|, best change point, bias-corrected residual autocorrelation and the gate's
    p-value: the one decision of the kernel and of the mergeable state's table."""
    first_avg, second_avg, mean_all = halves
    delta = second_avg - first_avg
    shift = abs(delta) / abs(mean_all) if abs(mean_all) > ZERO_MEAN_RELATIVE * largest else math.nan
    half = count // 2
    significant = half < MIN_TESTED_HALF or p_value < SIGNIFICANCE
    return {
        "first_avg": first_avg,
        "second_avg": second_avg,
        "mean_all": mean_all,
        "shift": shift,
        "p_value": p_value,
        "change_index": change_index,
        "delta": delta,
        "detected": bool(shift > sensitivity and rho < PERSISTENT_RHO and significant),
    }


def residual_rho(values: Float64Array, half: int, change: int) -> float:
    """The lag-1 autocorrelation of the values demeaned within the pieces cut at ``half`` and
    at the best change point ``change`` (one cut when equal): rho = sum e_t e_(t+1) /
    sum e_t^2 over every adjacent pair (sequential sums), bias-corrected to
    rho + J (1 + 3 rho) / n for J pieces (Kendall 1954), not clipped; 0 when the residuals
    are all 0."""
    bounds = sorted({0, half, change, values.size})
    residuals = np.concatenate(
        [
            values[lo:hi] - sequential_sum(values[lo:hi]) / (hi - lo)
            for lo, hi in itertools.pairwise(bounds)
        ]
    )
    energy = sequential_sum(residuals * residuals)
    if energy <= 0.0:
        return 0.0
    rho = sequential_sum(residuals[:-1] * residuals[1:]) / energy
    return rho + (len(bounds) - 1) * (1.0 + 3.0 * rho) / residuals.size


def autocorrelation_inflation(rho: float) -> float:
    """(1 + rho) / (1 - rho), the AR(1) long-run variance over the variance (Andrews 1991
    §5), with rho clipped to [0, 0.97]: 1 for residuals not positively autocorrelated."""
    rho = min(max(rho, 0.0), MAX_RHO)
    return (1.0 + rho) / (1.0 - rho)
