"""The single-metric conservation detector (SPEC §6 "Conservation", docs/kernels.md): per
metric, count, total, mean, population std and cv = std / |mean|; ids and counters are never
conserved. Expected values are worked out by hand."""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray
from references import Columns, columns_of, row

NAN, INF = math.nan, math.inf

Result = dict[str, NDArray[Any]]


def conservation(kernels: ModuleType, columns: Columns, tolerance: float) -> Result:
    result: Result = kernels.run_detector("conservation", columns, params={"tolerance": tolerance})
    return result


def test_conservation_hand_worked(kernels: ModuleType) -> None:
    # mean 40/8 = 5; squared deviations 1, 9, 0, 1, 16, 1, 0, 4 = 32 → std sqrt(32/8) = 2
    values = [4.0, 2.0, 5.0, 4.0, 9.0, 4.0, 5.0, 7.0]
    assert row(conservation(kernels, columns_of(values), 0.5), 0) == {
        "count": 8,
        "total": 40.0,
        "mean": 5.0,
        "std": 2.0,
        "cv": 0.4,
        "is_counter": False,
        "detected": True,
    }
    # cv < tolerance is strict
    assert conservation(kernels, columns_of(values), 0.4)["detected"].tolist() == [False]


def test_conservation_excludes_counters(kernels: ModuleType) -> None:
    columns = np.full((6, 100), NAN)
    columns[0] = np.arange(100.0)  # an id: 0..99
    columns[1, :7] = np.arange(100.0, 107.0)  # 7 increasing values: too few to call
    columns[2, :8] = [5, 5, 6, 6, 6, 7, 7, 7]  # 8 non-decreasing, 3 distinct: counter
    columns[3, :8] = [9, 9, 8, 8, 8, 7, 7, 7]  # 8 non-increasing, 3 distinct: counter
    columns[4, :8] = [5, 5, 5, 5, 6, 6, 6, 6]  # 8 non-decreasing, 2 distinct: not a counter
    columns[5, :8] = [5, 6, 5, 6, 7, 7, 7, 7]  # not monotonic
    result = conservation(kernels, columns, 1.0)
    assert result["is_counter"].tolist() == [True, False, True, True, False, False]
    assert result["detected"].tolist() == [False, True, False, False, True, True]
    # 0..99: mean 49.5, population std sqrt((100^2 - 1) / 12); cv 0.58 < 1 but a counter
    summary = ("count", "total", "mean", "std", "cv")
    assert [row(result, 0)[name] for name in summary] == pytest.approx(
        [100, 4950, 49.5, math.sqrt(9999 / 12), math.sqrt(9999 / 12) / 49.5], rel=1e-14
    )
    # 100..106: mean 103, std 2
    assert [row(result, 1)[name] for name in summary] == pytest.approx(
        [7, 721, 103, 2, 2 / 103], rel=1e-14
    )
    # the same rule as the column roles every detector shares
    assert kernels.column_roles(columns)["counter"].tolist() == result["is_counter"].tolist()


def test_conservation_constant_zero_short_and_absent(kernels: ModuleType) -> None:
    columns = columns_of(
        [0.1, 0.1, 0.1, 0.1, 0.1],
        [0.0, 0.0, 0.0, 0.0, 0.0],
        [5.0, NAN, NAN, NAN, NAN],
        [NAN] * 5,
    )
    result = conservation(kernels, columns, 0.1)
    # constant: mean exactly 0.1, std exactly 0 (not the 2e-17 of a rounded mean)
    constant = row(result, 0)
    assert constant.pop("total") == pytest.approx(0.5, rel=1e-15)
    assert constant == {
        "count": 5,
        "mean": 0.1,
        "std": 0.0,
        "cv": 0.0,
        "is_counter": False,
        "detected": True,
    }
    zero = row(result, 1)
    assert math.isnan(zero["cv"]) and zero["detected"] is False
    assert row(result, 2) == {
        "count": 1,
        "total": 5.0,
        "mean": 5.0,
        "std": 0.0,
        "cv": 0.0,
        "is_counter": False,
        "detected": False,
    }
    absent = row(result, 3)
    assert (absent["count"], absent["total"], absent["is_counter"], absent["detected"]) == (
        0,
        0.0,
        False,
        False,
    )
    assert all(math.isnan(absent[name]) for name in ("mean", "std", "cv"))
    # tolerance 0: cv < 0 never holds
    assert conservation(kernels, columns, 0.0)["detected"][0].item() is False


@pytest.mark.parametrize("tolerance", [-0.1, NAN, INF])
def test_conservation_tolerance_is_validated(kernels: ModuleType, tolerance: float) -> None:
    with pytest.raises(ValueError, match=r"^tolerance"):
        conservation(kernels, columns_of([1.0, 2.0]), tolerance)
