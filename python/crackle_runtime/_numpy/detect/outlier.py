"""Outlier tasks by the robust z-score (SPEC §6 ``OUTLIER``), the twin of the Rust core's
``detect::outlier``."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from crackle_runtime._args import Budget, Params
from crackle_runtime._numpy.detect.shared.columns import as_columns
from crackle_runtime._numpy.detect.shared.ranks import median

__all__ = ["FIELDS", "KIND", "NAME", "PARAMS", "outlier_scores", "run"]

NAME = "outlier"
KIND = "outlier"
FIELDS = ("task", "metric", "z", "deviation")
PARAMS: dict[str, Any] = {"z_threshold": 3.5}

STAGE = "outlier"
MAD_SCALE = 0.6745  # robust z = 0.6745 |x - median| / MAD

Float64Array = NDArray[np.float64]
Int64Array = NDArray[np.int64]


def run(columns: Float64Array, params: Params, budget: Budget) -> dict[str, Any]:
    z_threshold = params.finite("z_threshold", 0.0, inclusive=False)
    task, metric, z, deviation = outlier_scores(columns, z_threshold, budget)
    return {"task": task, "metric": metric, "z": z, "deviation": deviation}


def outlier_scores(
    columns: Float64Array, z_threshold: float, budget: Budget
) -> tuple[Int64Array, Int64Array, Float64Array, Float64Array]:
    """Every (task, metric) whose robust z = 0.6745 |x - median| / MAD exceeds
    ``z_threshold`` (metrics with >= 3 values; MAD = 0: z = inf off the median, else 0),
    sorted by task then metric: ``(task, metric, z, deviation = x - median)``."""
    threshold = z_threshold
    values = as_columns(columns)
    found_tasks: list[Int64Array] = []
    found_metrics: list[Int64Array] = []
    found_z: list[Float64Array] = []
    found_deviations: list[Float64Array] = []
    for metric in range(values.shape[0]):
        budget.check(STAGE)
        row = values[metric]
        tasks = np.flatnonzero(~np.isnan(row))
        if tasks.size < 3:
            continue
        present = row[tasks]
        center = float(median(present))
        deviation = present - center
        distance = np.abs(deviation)
        spread = float(median(distance))
        if spread == 0.0:
            z = np.where(distance != 0.0, math.inf, 0.0)
        else:
            z = MAD_SCALE * distance / spread
        selected = z > threshold
        found_tasks.append(tasks[selected].astype(np.int64))
        found_metrics.append(np.full(int(selected.sum()), metric, dtype=np.int64))
        found_z.append(z[selected])
        found_deviations.append(deviation[selected])
    if not found_tasks:
        return (
            np.zeros(0, dtype=np.int64),
            np.zeros(0, dtype=np.int64),
            np.zeros(0),
            np.zeros(0),
        )
    task = np.concatenate(found_tasks)
    metric_index = np.concatenate(found_metrics)
    order = np.lexsort((metric_index, task))
    return (
        task[order],
        metric_index[order],
        np.concatenate(found_z)[order],
        np.concatenate(found_deviations)[order],
    )
