"""The phase transition detector (SPEC §6 "Phase transition", docs/kernels.md): per metric,
the halves' means split at count // 2, the relative shift, Welch's p-value of the halves and
the best single change point. Expected values are worked out by hand or come from scipy."""

from __future__ import annotations

import itertools
import math
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import scipy.stats
from numpy.typing import NDArray
from references import Columns, columns_of, row

NAN, INF = math.nan, math.inf

Result = dict[str, NDArray[Any]]
FLOAT_FIELDS = ("first_avg", "second_avg", "mean_all", "shift", "p_value", "delta")


def phase(kernels: ModuleType, columns: Columns, sensitivity: float) -> Result:
    result: Result = kernels.run_detector(
        "phase_transition", columns, params={"sensitivity": sensitivity}
    )
    return result


def test_phase_transition_hand_worked(kernels: ModuleType) -> None:
    first, second = [10.0, 12.0, 11.0, 13.0], [20.0, 22.0, 21.0, 24.0, 23.0]
    result = phase(kernels, columns_of(first + second), 0.5)
    assert all(values.shape == (1,) for values in result.values())
    stats = row(result, 0)
    # halves split at 9 // 2 = 4: means 46/4 = 11.5 and 110/5 = 22; all: 156/9 = 52/3
    assert stats["count"] == 9
    assert stats["first_avg"] == 11.5
    assert stats["second_avg"] == 22.0
    assert stats["mean_all"] == pytest.approx(52 / 3, rel=1e-15)
    assert stats["delta"] == 10.5
    assert stats["shift"] == pytest.approx(10.5 / (52 / 3), rel=1e-14)  # 0.6058
    welch = scipy.stats.ttest_ind(first, second, equal_var=False)
    assert stats["p_value"] == pytest.approx(float(welch.pvalue), rel=1e-12)
    # S_k = prefix sums of x - 52/3: -22/3, -38/3, -19, -70/3, -62/3, -16, -40/3, -20/3;
    # S_k^2 * 9 / (k (9 - k)) peaks at k = 4: (70/3)^2 * 9 / 20 = 245 (k = 5: 192.2).
    assert stats["change_index"] == 4
    assert stats["detected"] is True  # shift 0.61 > 0.5 and p = 1.6e-5 < 0.01


def test_phase_transition_change_index_at_a_planted_step(kernels: ModuleType) -> None:
    rng = np.random.default_rng(3)
    values = np.where(np.arange(200) < 130, 10.0, 13.0) + rng.normal(scale=0.1, size=200)
    stats = row(phase(kernels, values[None, :], 0.1), 0)
    assert stats["change_index"] == 130
    # halves: 100 values near 10; 30 near 10 and 70 near 13 → means ≈ 10 and 12.1
    assert stats["delta"] == pytest.approx(2.1, abs=0.05)
    assert stats["p_value"] < 1e-10
    assert stats["detected"] is True


def test_phase_transition_change_index_takes_the_first_of_equal_scores(kernels: ModuleType) -> None:
    # [0, 2, 0, 2], mean 1: S = -1, 0, -1 → scores 4/3, 0, 4/3 (exact) → k = 1
    stats = row(phase(kernels, columns_of([0.0, 2.0, 0.0, 2.0]), 0.1), 0)
    assert stats["change_index"] == 1


def test_phase_transition_significance_gate(kernels: ModuleType) -> None:
    # Halves of 4: shift (2.75 - 2.525) / 2.6375 = 0.085 > 0.01, but Welch p ≈ 0.95: no.
    noisy = [0.1, 5.0, 0.2, 4.8, 5.1, 0.3, 5.2, 0.4]
    stats = row(phase(kernels, columns_of(noisy), 0.01), 0)
    assert stats["shift"] == pytest.approx(0.225 / 2.6375, rel=1e-12)
    assert stats["p_value"] > 0.9
    assert stats["detected"] is False
    # Halves of 3: no test required; shift (10/3 - 2) / (8/3) = 0.5 > 0.3 → detected.
    short = [1.0, 3.0, 2.0, 2.5, 6.0, 1.5]
    stats = row(phase(kernels, columns_of(short), 0.3), 0)
    assert stats["shift"] == pytest.approx(0.5, rel=1e-12)
    assert stats["p_value"] > 0.3
    assert stats["detected"] is True
    # Zero-variance halves whose means differ: p = 0.
    stats = row(phase(kernels, columns_of([1.0] * 4 + [3.0] * 4), 0.5), 0)
    assert (stats["shift"], stats["p_value"], stats["change_index"]) == (1.0, 0.0, 4)
    assert stats["detected"] is True


def test_phase_transition_zero_mean_short_and_absent(kernels: ModuleType) -> None:
    columns = columns_of(
        [-1.0, 1.0, -1.0, 1.0, NAN],  # mean 0: shift undefined
        [NAN, 5.0, NAN, NAN, NAN],  # one value
        [NAN] * 5,  # none
        [1.0, NAN, 3.0, NAN, NAN],  # two values: halves of 1, no p-value
    )
    result = phase(kernels, columns, 0.1)
    assert all(values.shape == (4,) for values in result.values())
    zero_mean = row(result, 0)
    assert math.isnan(zero_mean["shift"]) and zero_mean["detected"] is False
    for metric, count in [(1, 1), (2, 0)]:
        stats = row(result, metric)
        assert stats["count"] == count
        assert all(math.isnan(stats[name]) for name in FLOAT_FIELDS)
        assert stats["change_index"] == -1  # fewer than 2 values
        assert stats["detected"] is False
    two = row(result, 3)
    assert math.isnan(two.pop("p_value"))
    assert two == {
        "count": 2,
        "first_avg": 1.0,
        "second_avg": 3.0,
        "mean_all": 2.0,
        "shift": 1.0,
        "change_index": 1,
        "delta": 2.0,
        "detected": True,
    }


@pytest.mark.parametrize("sensitivity", [-0.1, NAN, INF])
def test_phase_transition_sensitivity_is_validated(kernels: ModuleType, sensitivity: float) -> None:
    with pytest.raises(ValueError, match=r"^sensitivity"):
        phase(kernels, columns_of([1.0, 2.0]), sensitivity)


def _ar1(rng: np.random.Generator, phi: float, n: int) -> NDArray[np.float64]:
    noise = rng.normal(size=n)
    values = np.empty(n)
    values[0] = noise[0] / math.sqrt(1.0 - phi * phi)
    for t in range(1, n):
        values[t] = phi * values[t - 1] + noise[t]
    return values


def _gate_reference(values: NDArray[np.float64], change: int) -> tuple[float, float]:
    """(bias-corrected rho, p) of the gate written out with NumPy and scipy: residuals
    around the means of the pieces cut at the halves and at the change point, Kendall's
    correction J (1 + 3 rho) / n, f = (1 + rho) / (1 - rho) with rho in [0, 0.97], each
    half m / f effective values with the variance ss / (m - f), Welch–Satterthwaite df."""
    n, half = values.size, values.size // 2
    bounds = sorted({0, half, change, n})
    residuals = np.concatenate(
        [values[lo:hi] - values[lo:hi].mean() for lo, hi in itertools.pairwise(bounds)]
    )
    rho = float(residuals[:-1] @ residuals[1:] / (residuals @ residuals))
    rho += (len(bounds) - 1) * (1.0 + 3.0 * rho) / n
    clipped = min(max(rho, 0.0), 0.97)
    f = (1.0 + clipped) / (1.0 - clipped)
    first, second = values[:half], values[half:]
    effective = np.array([first.size, second.size]) / f
    variances = [float(((x - x.mean()) ** 2).sum() / (x.size - f)) for x in (first, second)]
    weights = np.array(variances) / effective
    t = (first.mean() - second.mean()) / math.sqrt(weights.sum())
    shares = weights / weights.sum()
    df = 1.0 / float(np.sum(shares**2 / (effective - 1.0)))
    return rho, float(2.0 * scipy.stats.t.sf(abs(t), df))


def test_phase_transition_gate_uses_the_ar1_long_run_variance(kernels: ModuleType) -> None:
    rng = np.random.default_rng(11)
    series = [100.0 + _ar1(rng, phi, 120) for phi in (0.3, 0.6, 0.8)]
    result = phase(kernels, np.vstack(series), 0.0)
    for metric, values in enumerate(series):
        stats = row(result, metric)
        rho, expected = _gate_reference(values, int(stats["change_index"]))
        assert 0.0 < rho < 0.9
        assert stats["p_value"] == pytest.approx(expected, rel=1e-9)
        welch = float(scipy.stats.ttest_ind(values[:60], values[60:], equal_var=False).pvalue)
        assert stats["p_value"] > welch


def test_phase_transition_gate_holds_its_size_on_ar1_and_drifts(kernels: ModuleType) -> None:
    # 200 stationary AR(1) series with phi = 0.9 (n = 300): Welch alone rejects most of
    # them at 0.01; the gate at about its nominal rate. Random walks are drifting: none.
    rng = np.random.default_rng(5)
    ar = np.vstack([_ar1(rng, 0.9, 300) for _ in range(200)])
    detected = phase(kernels, ar, 0.0)["detected"]
    welch = scipy.stats.ttest_ind(ar[:, :150], ar[:, 150:], axis=1, equal_var=False).pvalue
    assert np.mean(welch < 0.01) > 0.3
    assert np.mean(detected) <= 0.03
    walks = np.cumsum(rng.normal(size=(100, 300)), axis=1)
    assert np.mean(phase(kernels, walks, 0.0)["detected"]) <= 0.02
    # A planted 2-SD step on AR(1) phi = 0.5 at 60% of the series is still found.
    steps = np.vstack(
        [_ar1(rng, 0.5, 300) + np.where(np.arange(300) < 180, 0.0, 2.3) for _ in range(50)]
    )
    assert np.mean(phase(kernels, steps, 0.0)["detected"]) >= 0.95


def three_days_of_a_daily_peak(seed: int) -> tuple[list[str], NDArray[np.float64]]:
    """Three days of 1-minute windows (tasks x metrics): requests that follow a load
    peaking once a day, and a queue wait that is 0 outside the peak and on half of the
    windows in it."""
    rng = np.random.default_rng([seed, 31])
    t = np.arange(3 * 1440)
    load = 1 + 0.6 * np.sin(2 * np.pi * t / 1440) + 0.1 * rng.standard_normal(t.size)
    requests = rng.poisson(500 * load.clip(0.1)).astype(float)
    busy = (load > 1.4) & (rng.random(t.size) < 0.5)
    queue = np.where(busy, rng.exponential(30.0, t.size), 0.0)
    return ["requests", "queue_wait_ms"], np.column_stack([requests, queue])


def _transitions(names: list[str], values: NDArray[np.float64]) -> dict[str, float]:
    from crackle_runtime import Kiln, PatternKind, ThermalProfile

    kinds = (PatternKind.PHASE_TRANSITION, PatternKind.DISTRIBUTION_SHIFT)
    kiln = Kiln(ThermalProfile.default().only(*kinds))
    kiln.add_matrix(values, names)
    return {
        p.details["metric"]: p.metrics["p_value"]
        for p in kiln.cool()
        if p.kind == PatternKind.PHASE_TRANSITION
    }


@pytest.mark.parametrize("seed", range(3))
def test_the_halves_of_a_few_cycles_are_no_phase_transition(kernels: ModuleType, seed: int) -> None:
    # One half holds two daily peaks, the other one: the queue's halves differ by 50-80%
    # of its mean with p down to 1e-6 (the kernel alone), but by the cycle only. With each
    # value minus the mean of its phase the halves no longer differ.
    names, values = three_days_of_a_daily_peak(seed)
    alone = phase(kernels, np.ascontiguousarray(values.T), 0.5)
    assert alone["detected"][1]
    assert "queue_wait_ms" not in _transitions(names, values)


def test_a_phase_transition_under_a_cycle_is_still_reported() -> None:
    # the queue's waits five times as long from the middle of day 2
    names, values = three_days_of_a_daily_peak(0)
    values[2160:, 1] *= 5.0
    found = _transitions(names, values)
    assert found["queue_wait_ms"] < 0.01
