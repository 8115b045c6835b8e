"""Pairwise Pearson correlation between metrics (SPEC §6), the twin of the Rust core's
``detect::correlation``."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from crackle_runtime._args import Budget, Params
from crackle_runtime._numpy._stats import (
    all_equal,
    mean_and_sum_of_squares,
    pearson,
    pearson_from_sums,
    pearson_p_value,
    sequential_sum,
)
from crackle_runtime._numpy.detect.shared.columns import as_columns, empty_result, store

__all__ = ["FIELDS", "KIND", "NAME", "PARAMS", "run"]

NAME = "correlation"
KIND = "correlation"
FIELDS = ("i", "j", "n", "r", "p_value", "detected")
PARAMS: dict[str, Any] = {"threshold": 0.7}

STAGE = "correlation"
MIN_TESTED_PAIRS = 10  # from this many pairs on, a correlation must also be significant
SIGNIFICANCE = 0.01

Float64Array = NDArray[np.float64]
BoolArray = NDArray[np.bool_]


@np.errstate(over="ignore", invalid="ignore")
def run(columns: Float64Array, params: Params, budget: Budget) -> dict[str, Any]:
    """Per metric pair (i < j, row-major order), over the tasks having both: n, Pearson r
    (two-pass centered, sequential sums; 0 when either is constant there), Student's t
    p-value (n - 2 df, two-sided) and ``detected`` = n >= 3, |r| >= threshold and
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
            p_value = pearson_p_value(r, n)
            detected = abs(r) >= threshold and (n < MIN_TESTED_PAIRS or p_value < SIGNIFICANCE)
            store(
                result,
                row,
                {
                    "i": i,
                    "j": j,
                    "n": n,
                    "r": r,
                    "p_value": p_value,
                    "detected": n >= 3 and detected,
                },
            )
            row += 1
    return result
