"""The information flow detector (SPEC §6 ``INFORMATION_FLOW``, §12, docs/kernels.md): per
ordered metric pair, the transfer entropy of quantile-binned series conditioned on the
target's immediate past over source delays 1..max_lag, the reverse transfer entropy at the
best delay and a source-surrogate sequential permutation p-value. References: the NumPy
backend's ``transfer_entropy`` information kernel (SPEC §7, lag 1) on the rank codes with
the source and the target shifted by the delay, and the permutation test written out with
loops from the contract."""

from __future__ import annotations

import math
from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray
from references import MASK64, Columns, round_shift, row, sequential_reference
from strategies import small_matrices

from crackle_runtime._numpy import info as numpy_info
from crackle_runtime._numpy.detect import information_flow as numpy_flow
from crackle_runtime._numpy.detect.shared.ranks import rank_bins

NAN, INF = math.nan, math.inf
SEED = 0x5EED_CAFE

Result = dict[str, NDArray[Any]]
# The fields of a tested pair only (NaN when untested).
TEST_FIELDS = ("te", "te_reverse", "p_value")


def flow(
    kernels: ModuleType,
    columns: Columns,
    min_values: int,
    permutations: int,
    seed: int,
    max_test_n: int,
    max_lag: int,
) -> Result:
    result: Result = kernels.run_detector(
        "information_flow",
        columns,
        params={
            "min_values": min_values,
            "permutations": permutations,
            "seed": seed,
            "max_test_n": max_test_n,
            "max_lag": max_lag,
        },
    )
    return result


def delayed_te(
    source: NDArray[np.float64], target: NDArray[np.float64], delay: int, bins: int
) -> float:
    """I(Y_t; X_{t-delay} | Y_{t-1}) over t = delay..n-1: SPEC §7's lag-1 transfer entropy of
    ``source[: n - delay + 1]`` and ``target[delay - 1 :]`` (rank codes spanning 0..bins-1, so
    equal-width binning of the codes is the identity)."""
    n = source.size
    return float(numpy_info.transfer_entropy(source[: n - delay + 1], target[delay - 1 :], 1, bins))


def test_flow_with_a_two_step_lag_is_found(kernels: ModuleType) -> None:
    rng = np.random.default_rng(21)
    x = rng.normal(size=1000)
    y = np.r_[0.0, 0.0, x[:-2]] + 0.3 * rng.normal(size=1000)
    result = flow(kernels, np.vstack([x, y]), 50, 199, SEED, 10_000, 3)
    assert list(zip(result["i"].tolist(), result["j"].tolist(), strict=True)) == [(0, 1), (1, 0)]
    forward, backward = row(result, 0), row(result, 1)
    assert forward["tested"] is True
    assert forward["best_lag"] == 2
    assert forward["p_value"] < 1e-6
    assert forward["te"] > 3 * forward["te_reverse"]
    assert backward["te"] < forward["te"]


def test_flow_values_follow_the_contract(kernels: ModuleType) -> None:
    rng = np.random.default_rng(4)
    x = rng.normal(size=400)
    y = np.r_[0.0, x[:-1]] ** 2 + rng.normal(size=400)
    stats = row(flow(kernels, np.vstack([x, y]), 50, 30, SEED, 10_000, 3), 0)
    bins = 3  # round(cbrt(40)) = round(3.42)
    source, target = rank_bins(x, bins), rank_bins(y, bins)
    # the rank codes span 0..bins-1, so equal-width binning of the codes is the identity
    transfer = [
        delayed_te(source.astype(float), target.astype(float), delay, bins) for delay in (1, 2, 3)
    ]
    best = int(np.argmax(transfer)) + 1
    reverse = delayed_te(target.astype(float), source.astype(float), best, bins)
    assert (stats["i"], stats["j"], stats["n"], stats["best_lag"]) == (0, 1, 400, best)
    assert stats["te"] == pytest.approx(transfer[best - 1], rel=1e-12)
    assert stats["te_reverse"] == pytest.approx(reverse, rel=1e-12, abs=1e-15)
    assert stats["bins"] == bins and stats["tested"] is True


def test_a_lag_1_lead_into_a_persistent_target_is_found_at_delay_1(kernels: ModuleType) -> None:
    """x and y AR(0.9), y_t = 0.9 y_{t-1} + 0.5 x_{t-1} + noise: conditioning on y's value u
    steps back (SPEC §7's lag-u form) leaves y's own persistence to explain and peaks at
    u = 3 (issue 11); conditioned on the immediate past the lead is at delay 1."""
    rng = np.random.default_rng(12)
    n = 2000
    x, y = np.zeros(n), np.zeros(n)
    driver, noise = rng.normal(size=n), rng.normal(size=n)
    for t in range(1, n):
        x[t] = 0.9 * x[t - 1] + driver[t]
        y[t] = 0.9 * y[t - 1] + 0.5 * x[t - 1] + noise[t]
    forward = row(flow(kernels, np.vstack([x, y]), 50, 99, SEED, 10_000, 3), 0)
    bins = forward["bins"]  # round(cbrt(200)) = 6
    source, target = rank_bins(x, bins).astype(float), rank_bins(y, bins).astype(float)
    lag_form = [numpy_info.transfer_entropy(source, target, lag, bins) for lag in (1, 2, 3)]
    assert int(np.argmax(lag_form)) + 1 == 3
    assert forward["best_lag"] == 1 and forward["p_value"] < 1e-6
    assert forward["te"] == pytest.approx(lag_form[0], rel=1e-12)  # delay 1 is lag 1


def test_permuted_statistics_tied_up_to_rounding_fit_no_tail(kernels: ModuleType) -> None:
    # Sparse flags (found by the backends' differential test): the permuted transfer
    # entropies of the pair 3 -> 2 are equal in exact arithmetic and differ by rounding, so
    # no exponential tail is fitted and p = (h + 1) / (B + 1) in both backends.
    columns = np.zeros((6, 48))
    columns[2, [41, 47]] = 1.0
    columns[3, [40, 44, 46]] = 1.0
    result = flow(kernels, columns, 6, 40, 0, 9, 3)
    tested = result["p_value"][~np.isnan(result["p_value"])]
    assert tested.tolist() == [0.5, 1 / 41]


def test_flow_untested_pairs(kernels: ModuleType) -> None:
    columns = np.vstack([np.arange(60.0), np.ones(60), np.r_[np.arange(40.0), [NAN] * 20]])
    result = flow(kernels, columns, 50, 10, SEED, 10_000, 3)
    assert all(values.shape == (6,) for values in result.values())
    assert result["tested"].tolist() == [False] * 6
    assert result["n"].tolist() == [60, 40, 60, 40, 40, 40]
    assert result["best_lag"].tolist() == [0] * 6  # untested: no lag
    assert result["perms_run"].tolist() == [0] * 6
    for name in TEST_FIELDS:
        assert np.isnan(result[name]).all(), name
    assert result["bins"].tolist() == [2] * 6  # round(cbrt(6)) = 2, round(cbrt(4)) = 2


def test_flow_on_the_latest_values(kernels: ModuleType) -> None:
    rng = np.random.default_rng(6)
    x = rng.normal(size=3000)
    y = np.r_[0.0, x[:-1]] + 0.5 * rng.normal(size=3000)
    y[:2500] = rng.normal(size=2500)  # the lead only holds in the latest 500 tasks
    latest = flow(kernels, np.vstack([x, y]), 50, 99, SEED, 500, 3)
    assert latest["p_value"][0] < 1e-6


@pytest.mark.parametrize(
    ("arguments", "name"),
    [
        ((0, 10, 1, 100, 3), "min_values"),
        ((50, 0, 1, 100, 3), "permutations"),
        ((50, 10, -1, 100, 3), "seed"),
        ((50, 10, 1, 0, 3), "max_test_n"),
        ((50, 10, 1, 100, 0), "max_lag"),
    ],
)
def test_flow_arguments_are_validated(
    kernels: ModuleType, arguments: tuple[int, int, int, int, int], name: str
) -> None:
    with pytest.raises(ValueError, match=rf"^{name}"):
        flow(kernels, np.ones((2, 60)), *arguments)


def test_flow_p_value_is_the_sequential_permutation_test(kernels: ModuleType) -> None:
    rng = np.random.default_rng(45)
    x = rng.normal(size=300)
    y = 0.5 * np.r_[0.0, x[:-1]] + rng.normal(size=300)
    budget = 40
    assert numpy_flow.FLOW_TEST_FAMILY == 100_000
    for max_test_n in (10_000, 120):
        stats = row(flow(kernels, np.vstack([x, y]), 50, budget, SEED, max_test_n, 2), 0)
        length = min(300, max_test_n)
        bins = 3 if length == 300 else 2  # round(cbrt(30)) = 3, round(cbrt(12)) = 2
        source = rank_bins(x[-length:], bins).astype(float)
        target = rank_bins(y[-length:], bins).astype(float)

        def best(
            source: NDArray[np.float64], target: NDArray[np.float64], bins: int = bins
        ) -> float:
            return max(delayed_te(source, target, delay, bins) for delay in (1, 2))

        def permuted(
            r: int,
            source: NDArray[np.float64] = source,
            target: NDArray[np.float64] = target,
            best: Callable[[NDArray[np.float64], NDArray[np.float64]], float] = best,
        ) -> float:
            # family 100000; the source circularly shifted past the 2 scanned delays
            order = round_shift(SEED, 100_000, r, source.astype(int).tolist(), 3)
            return best(source[order], target)

        p_value, runs = sequential_reference(best(source, target), permuted, budget)
        assert stats["perms_run"] == runs
        assert stats["p_value"] == pytest.approx(p_value, rel=1e-9)


@settings(max_examples=60)
@given(
    columns=small_matrices(),
    permutations=st.sampled_from([1, 7, 40]),
    seed=st.integers(0, MASK64),
    thin=st.booleans(),
)
def test_flow_keeps_its_invariants_on_random_input(
    kernels: ModuleType, columns: Columns, permutations: int, seed: int, thin: bool
) -> None:
    metrics = columns.shape[0]
    test_n = 9 if thin else 10_000
    result = flow(kernels, columns, 6, permutations, seed, test_n, 3)
    assert all(values.shape == (metrics * (metrics - 1),) for values in result.values())
    tested = result["tested"]
    best_lag = result["best_lag"][tested]
    assert np.all((best_lag >= 1) & (best_lag <= 3))
    assert np.all((result["te"][tested] >= 0) & (result["te_reverse"][tested] >= 0))
    p_value, perms_run = result["p_value"][tested], result["perms_run"][tested]
    assert np.all((p_value > 0) & (p_value <= 1) & (perms_run >= 1) & (perms_run <= permutations))
    assert np.all(result["bins"][tested] >= 2)
    assert (result["best_lag"][~tested] == 0).all() and (result["perms_run"][~tested] == 0).all()
    for name in TEST_FIELDS:
        assert np.isnan(result[name][~tested]).all(), name
