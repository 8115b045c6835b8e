"""Pairwise Pearson correlation between metrics (SPEC §6; the p-value as §12 amends it), the
twin of the Rust core's ``detect::correlation``.

r and the threshold are §6's. The p-value asks the pair to be associated twice, after two
different ways of removing what each series does on its own, and is the larger of the two
(an intersection–union test, Berger 1982): Spearman's rho of the first differences (shared
trends, steps and random-walk drift removed) and Pearson's r of each series' AR(p)
residuals (``shared.prewhiten``: autocorrelation removed), each with an effective sample
size for the autocorrelation left (Bartlett 1935; Bretherton et al. 1999):
``n_eff = n (1 - a b) / (1 + a b)`` clipped to [3, n], a and b lag-1 autocorrelations;
Student's t with ``n_eff - 2`` df, two-sided. A series that repeats a cycle is read without
it first (:func:`without_cycle`): a cycle and noise is no finite AR model, and a shared
daily cycle left in the residuals is a correlation of thousands of values."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from crackle_runtime._args import Budget, Params
from crackle_runtime._numpy._stats import (
    all_equal,
    mean_and_sum_of_squares,
    pearson,
    pearson_from_sums,
    sequential_sum,
    student_t_two_sided_p,
)
from crackle_runtime._numpy.detect.shared.columns import as_columns, empty_result, store
from crackle_runtime._numpy.detect.shared.prewhiten import ar_residuals
from crackle_runtime._numpy.detect.shared.ranks import average_ranks, doubled_midranks
from crackle_runtime._numpy.detect.shared.seasonal import find_cycle

__all__ = [
    "FIELDS",
    "KIND",
    "NAME",
    "PARAMS",
    "association",
    "association_p_value",
    "correlation_row",
    "effective_p_value",
    "lag1_autocorrelation",
    "run",
    "tested",
    "without_cycle",
]

NAME = "correlation"
KIND = "correlation"
FIELDS = ("i", "j", "n", "r", "p_value", "detected")
PARAMS: dict[str, Any] = {"threshold": 0.7}

STAGE = "correlation"
MIN_TESTED_PAIRS = 10  # from this many pairs on, a correlation must also be significant
SIGNIFICANCE = 0.01
MIN_DIFFERENCED_PAIRS = 4  # fewer tasks having both: no p-value (NaN)
MAX_TESTED_PAIRS = 10_000  # the p-value reads at most this many of the latest such tasks

Float64Array = NDArray[np.float64]
BoolArray = NDArray[np.bool_]


def lag1_autocorrelation(values: Float64Array) -> float:
    """``sum (d_t - mean)(d_{t+1} - mean) / sum (d_t - mean)^2``; 0 for a constant series or
    fewer than 2 values."""
    if values.size < 2:
        return 0.0
    centered = values - sequential_sum(values) / values.size
    squares = sequential_sum(centered * centered)
    if squares == 0.0:
        return 0.0
    return sequential_sum(centered[:-1] * centered[1:]) / squares


def effective_p_value(a: Float64Array, b: Float64Array) -> float:
    """Pearson's r of ``a`` and ``b`` with Student's t on ``n_eff - 2`` df, two-sided (see
    the module docstring); 0 when |r| == 1, 1 when either is constant."""
    r = pearson(a, b)
    product = lag1_autocorrelation(a) * lag1_autocorrelation(b)
    n = float(a.size)
    n_eff = min(max(n * (1.0 - product) / (1.0 + product), 3.0), max(n, 3.0))
    if abs(r) >= 1.0:
        return 0.0
    df = n_eff - 2.0
    return student_t_two_sided_p(r * math.sqrt(df / (1.0 - r * r)), df)


def without_cycle(
    values: Float64Array, tasks: NDArray[np.int64] | None = None, length: int = 0
) -> Float64Array:
    """``values``, recorded at the task positions ``tasks`` of ``length`` tasks
    (consecutive when None), minus the median at their task's phase when they repeat a
    cycle (``shared.seasonal.find_cycle``, as the change-point search removes it; it
    searches with at most a third of the tasks absent), else ``values``."""
    if tasks is None:
        tasks, length = np.arange(values.size), values.size
    cycle = find_cycle(values, doubled_midranks(values), tasks, length)
    return values if cycle is None else cycle[1]


def association_p_value(x: Float64Array, y: Float64Array) -> float:
    """The p-value of no association over the (latest 10,000) tasks having both, each series
    without its cycle (:func:`without_cycle`, its phases those of the tasks, gaps
    included): the larger of :func:`effective_p_value` of
    the average ranks of the first differences and of the AR(p) residuals of each series;
    NaN below 4 pairs."""
    tasks = np.flatnonzero(~np.isnan(x) & ~np.isnan(y))[-MAX_TESTED_PAIRS:]
    if tasks.size < MIN_DIFFERENCED_PAIRS:
        return math.nan
    # the tasks counted from the first one tested
    at, length = tasks - tasks[0], int(tasks[-1] - tasks[0]) + 1
    return association(tested(x[tasks], at, length), tested(y[tasks], at, length))


def tested(
    values: Float64Array, tasks: NDArray[np.int64] | None = None, length: int = 0
) -> tuple[Float64Array, Float64Array]:
    """One series as :func:`association_p_value` reads it (the Rust ``Tested::at``): the
    average ranks of its first differences and its AR(p) residuals, both
    :func:`without_cycle` (at ``tasks`` of ``length`` tasks; consecutive when None)."""
    values = without_cycle(values, tasks, length)
    return average_ranks(np.diff(values)), ar_residuals(values)


def association(
    x: tuple[Float64Array, Float64Array], y: tuple[Float64Array, Float64Array]
) -> float:
    """The larger of :func:`effective_p_value` of two :func:`tested` series' difference
    ranks and of their AR residuals."""
    return max(effective_p_value(x[0], y[0]), effective_p_value(x[1], y[1]))


def correlation_row(
    pair: tuple[int, int], n: int, r: float, p_value: float, threshold: float
) -> dict[str, Any]:
    """The row of a pair over n tasks: detected when n >= 3, |r| >= threshold and
    (n < 10 or p < 0.01); the one decision of the kernel and of the mergeable state's table."""
    detected = abs(r) >= threshold and (n < MIN_TESTED_PAIRS or p_value < SIGNIFICANCE)
    return {
        "i": pair[0],
        "j": pair[1],
        "n": n,
        "r": r,
        "p_value": p_value,
        "detected": n >= 3 and detected,
    }


@np.errstate(over="ignore", invalid="ignore")
def run(columns: Float64Array, params: Params, budget: Budget) -> dict[str, Any]:
    """Per metric pair (i < j, row-major order), over the tasks having both: n, Pearson r
    (two-pass centered, sequential sums; 0 when either is constant there), the
    p-value (:func:`association_p_value`, when |r| >= threshold; NaN below it, where it
    decides nothing) and ``detected`` = n >= 3, |r| >= threshold and
    (n < 10 or p < 0.01)."""
    threshold = params.unit_interval("threshold")
    values = as_columns(columns)
    metrics, tasks = values.shape
    present = ~np.isnan(values)
    complete: BoolArray = np.all(present, axis=1)
    # A metric every task has is centered once, for all its pairs with such metrics.
    centered: dict[int, tuple[Float64Array, float, bool]] = {}
    for metric in np.flatnonzero(complete).tolist():
        column = values[metric]
        mean, sum_of_squares = mean_and_sum_of_squares(column)
        centered[metric] = (column - mean, sum_of_squares, all_equal(column))
    prepared: dict[int, tuple[Float64Array, Float64Array]] = {}
    pairs = metrics * (metrics - 1) // 2
    result = empty_result(FIELDS, pairs, ints=("i", "j", "n"), bools=("detected",))
    row = 0
    for i in range(metrics):
        for j in range(i + 1, metrics):
            budget.check(STAGE)
            if complete[i] and complete[j]:
                n = tasks
                (dx, sxx, x_constant), (dy, syy, y_constant) = centered[i], centered[j]
                if x_constant or y_constant:
                    r = 0.0
                else:
                    r = pearson_from_sums(sequential_sum(dx * dy), sxx, syy)
            else:
                both = present[i] & present[j]
                n = int(np.count_nonzero(both))
                r = pearson(values[i][both], values[j][both])
            if abs(r) < threshold:
                p_value = math.nan
            elif not (complete[i] and complete[j]):
                p_value = association_p_value(values[i], values[j])
            elif tasks < MIN_DIFFERENCED_PAIRS:
                p_value = math.nan
            else:  # a complete metric's tested series, prepared once
                for k in (i, j):
                    if k not in prepared:
                        prepared[k] = tested(values[k][-MAX_TESTED_PAIRS:])
                p_value = association(prepared[i], prepared[j])
            store(result, row, correlation_row((i, j), n, r, p_value, threshold))
            row += 1
    return result
