"""Single-metric conservation (SPEC §6), the twin of the Rust core's
``detect::conservation``: a metric whose value hardly varies across tasks, unless it is an
id or a counter."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from crackle_runtime._args import Budget, Params
from crackle_runtime._numpy._stats import mean_and_sum_of_squares, sequential_sum
from crackle_runtime._numpy.detect.roles import is_counter
from crackle_runtime._numpy.detect.shared.columns import as_columns, empty_result, store

__all__ = ["FIELDS", "KIND", "NAME", "PARAMS", "run"]

NAME = "conservation"
KIND = "conservation law"
FIELDS = ("count", "total", "mean", "std", "cv", "is_counter", "detected")
PARAMS: dict[str, Any] = {"tolerance": 0.3}

STAGE = "conservation"
ZERO_MEAN_RELATIVE = 1e-12  # |mean| at or below this times max|x| counts as zero

Float64Array = NDArray[np.float64]


@np.errstate(over="ignore", invalid="ignore")
def run(columns: Float64Array, params: Params, budget: Budget) -> dict[str, Any]:
    """Per metric over its present values: count, sequential total, mean, population std,
    cv = std / |mean| (NaN when mean == 0), whether it is a counter (:func:`is_counter`),
    and ``detected`` = count >= 2, |mean| > 1e-12 max|x|, cv < tolerance, not a counter."""
    tolerance = params.finite("tolerance", 0.0, inclusive=True)
    values_by_metric = as_columns(columns)
    metrics = values_by_metric.shape[0]
    result = empty_result(FIELDS, metrics, ints=("count",), bools=("is_counter", "detected"))
    for metric in range(metrics):
        budget.check(STAGE)
        row = values_by_metric[metric]
        values = row[~np.isnan(row)]
        count = values.size
        store(result, metric, {"count": count, "total": sequential_sum(values)})
        if count == 0:
            continue
        mean, sum_of_squares = mean_and_sum_of_squares(values)
        std = math.sqrt(sum_of_squares / count)
        cv = std / abs(mean) if mean != 0.0 else math.nan
        counter = is_counter(values)
        largest = float(np.abs(values).max())
        detected = count >= 2 and abs(mean) > ZERO_MEAN_RELATIVE * largest and cv < tolerance
        store(
            result,
            metric,
            {
                "mean": mean,
                "std": std,
                "cv": cv,
                "is_counter": counter,
                "detected": detected and not counter,
            },
        )
    return result
