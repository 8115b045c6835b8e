"""Values at the ends of the float64 range and parameters at the ends of theirs: both
backends give the same, finite result or refuse the parameter by name (defects found by
differential fuzzing)."""

from __future__ import annotations

import time
from types import ModuleType

import numpy as np
import pytest


def test_correlation_of_tiny_values_is_their_correlation(kernels: ModuleType) -> None:
    # sxx * syy underflows to 0 near 1e-156 while each is positive
    rng = np.random.default_rng(0)
    scaled = rng.normal(size=(2, 40))
    expected = np.corrcoef(scaled)[0, 1]
    for detector in ("correlation", "dependence"):
        result = kernels.run_detector(detector, scaled * 1e-156)
        assert result["r"][0] == pytest.approx(expected, rel=1e-9)


def test_a_phase_transition_whose_residuals_overflow_is_not_detected(
    kernels: ModuleType,
) -> None:
    result = kernels.run_detector(
        "phase_transition", np.array([[1e200, 2e200, 9e200, 8e200, 9e200]])
    )
    assert result["shift"][0] == pytest.approx(1.2356321839080460)
    assert result["detected"].tolist() == [False]


def test_values_whose_deviation_overflows_are_no_outliers(kernels: ModuleType) -> None:
    flip = np.tile([-1.7e308, 1.7e308, 1.0, -1.0], 10)[None, :]
    result = kernels.run_detector("outlier", flip)
    assert result["task"].size == 0


@pytest.mark.parametrize("detector", ["dependence", "information_flow"])
def test_permutations_beyond_a_million_are_refused(kernels: ModuleType, detector: str) -> None:
    columns = np.random.default_rng(1).normal(size=(2, 60))
    for permutations in (1_000_001, 2**34, 2**63 - 1):
        with pytest.raises(ValueError, match="permutations must be <= 1000000"):
            kernels.run_detector(detector, columns, params={"permutations": permutations})


def test_a_huge_max_lag_reads_the_delays_the_series_has(kernels: ModuleType) -> None:
    rng = np.random.default_rng(2)
    cause = rng.normal(size=60)
    columns = np.vstack([cause, np.r_[0.0, cause[:-1]] + 0.3 * rng.normal(size=60)])
    began = time.perf_counter()
    huge = kernels.run_detector("information_flow", columns, params={"max_lag": 10**7})
    assert time.perf_counter() - began < 5.0
    full = kernels.run_detector("information_flow", columns, params={"max_lag": 58})
    np.testing.assert_array_equal(huge["best_lag"], full["best_lag"])
