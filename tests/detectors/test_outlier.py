"""The outlier detector (SPEC §6 ``OUTLIER``, docs/kernels.md): every (task, metric) whose
robust z = 0.6745 |x - median| / MAD exceeds ``z_threshold`` (metrics with >= 3 values;
MAD = 0: z = inf off the median), sorted by task then metric. Expected values are worked out
by hand; a Hypothesis test checks the invariants on random input."""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from numpy.typing import NDArray
from references import Columns
from strategies import small_matrices

NAN, INF = math.nan, math.inf

Result = dict[str, NDArray[Any]]


def outliers(kernels: ModuleType, columns: Columns, z_threshold: float) -> Result:
    result: Result = kernels.run_detector("outlier", columns, params={"z_threshold": z_threshold})
    return result


def test_outlier_z_is_the_robust_score(kernels: ModuleType) -> None:
    result = outliers(kernels, np.array([[22.5, 23.1, 45.2]]), 3.5)
    assert result["task"].tolist() == [2]
    assert result["metric"].tolist() == [0]
    # median 23.1, MAD = median(0.6, 0, 22.1) = 0.6 (in floats: 23.1 - 22.5)
    z = result["z"][0].item()
    assert z == 0.6745 * (45.2 - 23.1) / (23.1 - 22.5)
    assert z == pytest.approx(0.6745 * 22.1 / 0.6, rel=1e-13)
    assert result["deviation"].tolist() == [45.2 - 23.1]


def test_outlier_with_zero_mad_flags_every_value_off_the_median(kernels: ModuleType) -> None:
    columns = np.array([[5.0, 5.0, 5.0, 5.0, 9.0, 5.0, 4.0]])
    result = outliers(kernels, columns, 100.0)
    assert result["task"].tolist() == [4, 6]
    assert result["z"].tolist() == [INF, INF]
    assert result["deviation"].tolist() == [4.0, -1.0]
    # every value equal: nothing
    assert outliers(kernels, np.full((1, 6), 3.0), 1.0)["task"].size == 0


def test_outliers_sorted_by_task_then_metric_with_absent_values(kernels: ModuleType) -> None:
    columns = np.array(
        [
            [1.0, 2.0, 1.5, 50.0, 1.2, 1.1, NAN],
            [NAN, 10.0, 11.0, 90.0, 10.5, -40.0, 10.2],
            [1.0, 99.0, NAN, NAN, NAN, NAN, NAN],  # 2 values: never scored
        ]
    )
    result = outliers(kernels, columns, 3.5)
    assert list(zip(result["task"].tolist(), result["metric"].tolist(), strict=True)) == [
        (3, 0),
        (3, 1),
        (5, 1),
    ]
    # metric 1 over tasks 1..6: median 10.35, deviations from it
    assert result["deviation"][1].item() == 90.0 - 10.35
    assert result["deviation"][2].item() == -40.0 - 10.35
    assert np.all(result["z"] > 3.5)


@pytest.mark.parametrize("threshold", [0.0, -1.0, NAN, INF])
def test_outlier_threshold_is_validated(kernels: ModuleType, threshold: float) -> None:
    with pytest.raises(ValueError, match=r"^z_threshold"):
        outliers(kernels, np.ones((1, 4)), threshold)


def test_outlier_columns_are_validated(kernels: ModuleType) -> None:
    with pytest.raises(ValueError, match=r"^columns"):
        outliers(kernels, np.array([[1.0, INF, 2.0]]), 3.5)


@settings(max_examples=60)
@given(columns=small_matrices())
def test_outliers_keep_their_invariants_on_random_input(
    kernels: ModuleType, columns: Columns
) -> None:
    present = ~np.isnan(columns)
    result = outliers(kernels, columns, 1.0)
    task, metric, z = result["task"], result["metric"], result["z"]
    assert np.all(z > 1.0)
    assert np.all(present[metric, task])
    pairs = list(zip(task.tolist(), metric.tolist(), strict=True))
    assert pairs == sorted(pairs)
    # z is the robust score of the deviation from the metric's median
    for k, (t, m) in enumerate(pairs):
        values = columns[m][present[m]]
        assert result["deviation"][k].item() == columns[m, t] - np.median(values)
