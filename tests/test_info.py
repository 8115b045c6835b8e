"""The seven information functions (SPEC §7) through the public API, on both backends.

Expected values are worked out by hand for small inputs (the arithmetic is in the comments)
and taken from scipy, scikit-learn and antropy for larger ones.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import antropy
import numpy as np
import pytest
import scipy.spatial.distance
import scipy.stats
from hypothesis import given
from hypothesis import strategies as st
from numpy.typing import NDArray
from sklearn.metrics import mutual_info_score

import crackle_runtime as cr

LOG2_3 = math.log2(3)
NAN, INF = float("nan"), float("inf")


def spec_bins(values: NDArray[np.float64], bins: int, low: float, high: float) -> NDArray[Any]:
    """Bin indices by the SPEC formula, written out independently of both backends."""
    if high == low:
        return np.zeros(len(values), dtype=np.int64)
    width = (high - low) / bins
    return np.minimum(np.floor((values - low) / width), bins - 1).astype(np.int64)


def own_bins(values: NDArray[np.float64], bins: int) -> NDArray[Any]:
    return spec_bins(values, bins, float(values.min()), float(values.max()))


def entropy_of_tuples(rows: Sequence[tuple[int, ...]]) -> float:
    counts = np.array(list(Counter(rows).values()), dtype=np.float64)
    return float(scipy.stats.entropy(counts, base=2))


# --- entropy --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "bins", "expected"),
    [
        # width 0.75: (v - 1) / 0.75 = 0, 1.33, 2.67, 4 → bins 0, 1, 2, 3 (4 clipped to 3)
        ([1, 2, 3, 4], 4, 2.0),
        ([1, 1, 2, 2], 2, 1.0),
        # p = 3/4, 1/4: -(3/4 log2 3/4 + 1/4 log2 1/4) = 2 - (3/4) log2 3
        ([0, 0, 0, 1], 2, 2 - 0.75 * LOG2_3),
        # width 5: 0, 1, 2, 3 → bin 0; 10 / 5 = 2 → clipped to 1; p = 4/5, 1/5
        ([0, 1, 2, 3, 10], 2, math.log2(5) - 0.8 * 2),
        # width 0.5: 0.5 / 0.5 = 1 → bin 1 (left-closed bins); 1 → clipped to 1: counts 1, 2
        ([0, 0.5, 1], 2, LOG2_3 - 2 / 3),
        ([7.5, 7.5, 7.5], 10, 0.0),  # max == min: everything in bin 0
        ([3.0], 10, 0.0),
        ([], 10, 0.0),
        ([1, 2, 3, 4], 1, 0.0),
        # 8 distinct values, 8 bins: every value alone in its bin → log2 8
        ([0, 1, 2, 3, 4, 5, 6, 7], 8, 3.0),
    ],
)
def test_entropy_hand_worked(values: list[float], bins: int, expected: float) -> None:
    result = cr.entropy(values, bins=bins)
    assert isinstance(result, float)
    assert result == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_entropy_uses_the_exact_float_expression() -> None:
    # width = (1 - 0) / 10 = 0.1; 0.2 / 0.1 == 2.0 but 0.3 / 0.1 == 2.9999999999999996, so
    # 0.2 and 0.3 share bin 2: bins {0, 2, 2, 9} → H = 1.5. The algebraically equal
    # 0.3 * 10 / 1 = 3.0000000000000004 would give bins {0, 2, 3, 9} → H = 2.0.
    assert 0.3 / 0.1 < 3.0
    assert cr.entropy([0.0, 0.2, 0.3, 1.0], bins=10) == 1.5


def test_entropy_default_bins_is_10() -> None:
    values = np.arange(100.0)  # 10 bins of 10 values each
    assert cr.entropy(values) == pytest.approx(math.log2(10), rel=1e-12)


@pytest.mark.parametrize("bins", [1, 2, 3, 7, 10, 33, 64, 500])
def test_entropy_matches_scipy(bins: int) -> None:
    values = np.random.default_rng(bins).normal(size=1000)
    counts = np.bincount(own_bins(values, bins), minlength=bins)
    expected = scipy.stats.entropy(counts, base=2)
    assert cr.entropy(values, bins=bins) == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_entropy_accepts_lists_ints_float32_and_strided_views() -> None:
    base = np.arange(20.0)[::2]  # non-contiguous view
    expected = cr.entropy(base.copy(), bins=4)
    assert cr.entropy(base, bins=4) == expected
    assert cr.entropy(list(range(0, 20, 2)), bins=4) == expected
    assert cr.entropy(np.arange(0, 20, 2, dtype=np.int32), bins=4) == expected
    assert cr.entropy(np.arange(0, 20, 2, dtype=np.float32), bins=4) == expected


@given(
    st.lists(st.integers(-1000, 1000), min_size=1, max_size=200),
    st.integers(1, 40),
    st.integers(-(2**20), 2**20),
    st.sampled_from([1.0, 2.0, 0.5, 1024.0]),
)
def test_entropy_is_invariant_to_shifting_and_scaling(
    integers: list[int], bins: int, shift: int, scale: float
) -> None:
    # Integer data, integer shifts and power-of-two scales keep every float operation exact,
    # so the histogram (and the entropy) must be identical, not merely close.
    values = np.array(integers, dtype=np.float64)
    assert cr.entropy(values * scale + shift, bins=bins) == cr.entropy(values, bins=bins)


# --- joint entropy and mutual information ---------------------------------------------------


def test_joint_entropy_hand_worked() -> None:
    # cells (0,0), (0,1), (1,0), (1,1) once each → 2 bits
    assert cr.joint_entropy([0, 0, 1, 1], [0, 1, 0, 1], bins=2) == pytest.approx(2.0)
    # y is a copy of x → H(X, Y) = H(X) = 1
    assert cr.joint_entropy([0, 0, 1, 1], [0, 0, 1, 1], bins=2) == pytest.approx(1.0)
    # each variable over its own range: y = x + 100 lands in the same cells as x
    assert cr.joint_entropy([0, 1], [100, 200], bins=2) == pytest.approx(1.0)
    # cells (0,0) x2, (0,1), (1,1) → 1.5 bits
    assert cr.joint_entropy([0, 0, 0, 1], [0, 0, 1, 1], bins=2) == pytest.approx(1.5)
    assert cr.joint_entropy([], [], bins=3) == 0.0


def test_mutual_information_hand_worked() -> None:
    # y = x: I = H(X) = 1 bit
    assert cr.mutual_information([0, 0, 1, 1], [0, 0, 1, 1], bins=2) == pytest.approx(1.0)
    # every combination once: independent → 0
    assert cr.mutual_information([0, 0, 1, 1], [0, 1, 0, 1], bins=2) == 0.0
    # H(X) = 2 - 3/4 log2 3, H(Y) = 1, H(X, Y) = 1.5 → I = 1.5 - 3/4 log2 3
    assert cr.mutual_information([0, 0, 0, 1], [0, 0, 1, 1], bins=2) == pytest.approx(
        1.5 - 0.75 * LOG2_3, rel=1e-12
    )
    assert cr.mutual_information([], [], bins=10) == 0.0
    assert cr.mutual_information([5.0] * 10, np.arange(10.0), bins=4) == 0.0


@pytest.mark.parametrize("bins", [3, 5, 10, 31])
def test_mutual_information_matches_sklearn(bins: int) -> None:
    rng = np.random.default_rng(100 + bins)
    x = rng.normal(size=2000)
    y = x**2 + rng.normal(scale=0.3, size=2000)
    # mutual_info_score works in nats on the same bin labels
    expected = mutual_info_score(own_bins(x, bins), own_bins(y, bins)) / math.log(2)
    result = cr.mutual_information(x, y, bins=bins)
    assert result == pytest.approx(expected, rel=1e-10, abs=1e-12)
    assert result > 0.1


def test_joint_entropy_matches_scipy() -> None:
    rng = np.random.default_rng(7)
    x, y = rng.normal(size=1500), rng.exponential(size=1500)
    rows = list(zip(own_bins(x, 12).tolist(), own_bins(y, 12).tolist(), strict=True))
    assert cr.joint_entropy(x, y, bins=12) == pytest.approx(entropy_of_tuples(rows), rel=1e-12)


@pytest.mark.parametrize("bins", [1, 3, 10, 50])
def test_mutual_information_of_a_series_with_itself_is_its_entropy(bins: int) -> None:
    x = np.random.default_rng(bins).normal(size=500)
    assert cr.mutual_information(x, x, bins=bins) == pytest.approx(
        cr.entropy(x, bins=bins), rel=1e-12, abs=1e-12
    )
    assert cr.joint_entropy(x, x, bins=bins) == pytest.approx(cr.entropy(x, bins=bins))


# --- KL divergence and JSD ------------------------------------------------------------------


def test_kl_and_jsd_share_bins_seed_defect() -> None:
    # Shared range [1, 10]: current fills bin 0, baseline bin 9. The seed binned each
    # sample over its own range (both all in bin 0) and returned 0 for both.
    assert cr.kl_divergence([1, 1, 1], [10, 10, 10]) == INF
    assert cr.jsd([1, 1, 1], [10, 10, 10]) == 1.0
    assert cr.jsd([10, 10, 10], [1, 1, 1]) == 1.0


def test_kl_divergence_hand_worked() -> None:
    # P = (1/2, 1/2), Q = (1/4, 3/4): 1/2 log2 2 + 1/2 log2 (2/3) = 1 - 1/2 log2 3
    assert cr.kl_divergence([0, 0, 1, 1], [0, 1, 1, 1], bins=2) == pytest.approx(
        1 - 0.5 * LOG2_3, rel=1e-12
    )
    # P = (1, 0), Q = (1/2, 1/2): log2 2 = 1; baseline's extra mass is fine
    assert cr.kl_divergence([0, 0], [0, 1], bins=2) == pytest.approx(1.0)
    # reversed: current has mass in bin 1 where baseline has none
    assert cr.kl_divergence([0, 1], [0, 0], bins=2) == INF
    assert cr.kl_divergence([0, 1, 2], [2, 1, 0], bins=3) == 0.0


def test_jsd_hand_worked() -> None:
    # P = (1, 0), Q = (1/2, 1/2), M = (3/4, 1/4):
    # KL(P‖M) = log2 (4/3) = 2 - log2 3; KL(Q‖M) = 1/2 log2 (2/3) + 1/2 log2 2 = 1 - 1/2 log2 3
    # JSD = 1/2 (2 - log2 3) + 1/2 (1 - 1/2 log2 3) = 3/2 - 3/4 log2 3
    assert cr.jsd([0, 0], [0, 1], bins=2) == pytest.approx(1.5 - 0.75 * LOG2_3, rel=1e-12)


@pytest.mark.parametrize(
    ("function", "first", "second"),
    [
        (cr.kl_divergence, [], [1.0, 2.0]),
        (cr.kl_divergence, [1.0, 2.0], []),
        (cr.kl_divergence, [], []),
        (cr.jsd, [], [1.0, 2.0]),
        (cr.jsd, [3.0], []),
        (cr.jsd, [], []),
    ],
)
def test_divergences_with_an_empty_sample_are_zero(
    function: Callable[..., float], first: list[float], second: list[float]
) -> None:
    assert function(first, second, bins=5) == 0.0


@pytest.mark.parametrize("bins", [2, 10, 40])
def test_kl_and_jsd_match_scipy(bins: int) -> None:
    rng = np.random.default_rng(bins)
    current = rng.normal(0.3, 1.0, size=800)
    baseline = rng.normal(0.0, 1.5, size=1200)
    low = min(current.min(), baseline.min())
    high = max(current.max(), baseline.max())
    p = np.bincount(spec_bins(current, bins, low, high), minlength=bins) / len(current)
    q = np.bincount(spec_bins(baseline, bins, low, high), minlength=bins) / len(baseline)
    kl_expected = scipy.stats.entropy(p, q, base=2)
    jsd_expected = scipy.spatial.distance.jensenshannon(p, q, base=2) ** 2
    assert cr.kl_divergence(current, baseline, bins=bins) == pytest.approx(kl_expected, rel=1e-11)
    assert cr.jsd(current, baseline, bins=bins) == pytest.approx(jsd_expected, rel=1e-10)


@given(
    st.lists(st.integers(-50, 50), min_size=1, max_size=60),
    st.lists(st.integers(-50, 50), min_size=1, max_size=60),
    st.integers(1, 30),
)
def test_jsd_is_symmetric_and_bounded_and_kl_of_a_sample_with_itself_is_zero(
    first: list[int], second: list[int], bins: int
) -> None:
    p, q = np.array(first, dtype=np.float64), np.array(second, dtype=np.float64)
    forward, backward = cr.jsd(p, q, bins=bins), cr.jsd(q, p, bins=bins)
    assert forward == pytest.approx(backward, rel=1e-12, abs=1e-15)
    assert 0.0 <= forward <= 1.0
    assert cr.jsd(p, p, bins=bins) == 0.0
    assert cr.kl_divergence(p, p, bins=bins) == 0.0
    assert cr.kl_divergence(p, q, bins=bins) >= 0.0


# --- transfer entropy -----------------------------------------------------------------------


def test_transfer_entropy_hand_worked() -> None:
    # y[t+1] = x[t]; bins=2 turns both into 0/1. Rows over t = 0..3:
    #   (y[t+1], x[t], y[t]) = (0,0,0) (0,0,0) (1,1,0) (1,1,1)
    # H(Y+, Y) = 1.5, H(Y) = 2 - 3/4 log2 3, H(Y+, X, Y) = 1.5, H(X, Y) = 1.5
    # TE = 1.5 - (2 - 3/4 log2 3) - 1.5 + 1.5 = 3/4 log2 3 - 1/2
    x = [0, 0, 1, 1, 0]
    y = [0, 0, 0, 1, 1]
    assert cr.transfer_entropy(x, y, lag=1, bins=2) == pytest.approx(0.75 * LOG2_3 - 0.5, rel=1e-12)
    # Y → X rows (x[t+1], y[t], x[t]) = (0,0,0) (1,0,0) (1,0,1) (0,1,1):
    # H(X+, X) = 2, H(X) = 1, H(X+, Y, X) = 2, H(Y, X) = 1.5 → TE = 0.5
    assert cr.transfer_entropy(y, x, lag=1, bins=2) == pytest.approx(0.5, rel=1e-12)


def test_transfer_entropy_detects_the_driver_seed_defect() -> None:
    # The seed flipped the formula's sign and clamped at 0, so it returned 0 here.
    rng = np.random.default_rng(2024)
    x = rng.random(5000)
    y = np.empty_like(x)
    y[0] = rng.random()
    y[1:] = x[:-1]  # y[t+1] = x[t]
    forward = cr.transfer_entropy(x, y, lag=1, bins=8)
    backward = cr.transfer_entropy(y, x, lag=1, bins=8)
    assert forward > 2.5  # close to H(X) = log2 8 = 3 bits
    assert backward < 0.15  # only the small-sample bias of 512 cells over 4999 rows
    # the same dependency at lag 2 is invisible at lag 1 and plain at lag 2
    z = np.empty_like(x)
    z[:2] = rng.random(2)
    z[2:] = x[:-2]
    assert cr.transfer_entropy(x, z, lag=1, bins=8) < 0.15
    assert cr.transfer_entropy(x, z, lag=2, bins=8) > 2.5


def reference_transfer_entropy(
    x: NDArray[np.float64], y: NDArray[np.float64], lag: int, bins: int
) -> float:
    xb, yb = own_bins(x, bins).tolist(), own_bins(y, bins).tolist()
    rows = range(len(x) - lag)
    value = (
        entropy_of_tuples([(yb[t + lag], yb[t]) for t in rows])
        - entropy_of_tuples([(yb[t],) for t in rows])
        - entropy_of_tuples([(yb[t + lag], xb[t], yb[t]) for t in rows])
        + entropy_of_tuples([(xb[t], yb[t]) for t in rows])
    )
    return max(value, 0.0)


@pytest.mark.parametrize(("lag", "bins"), [(1, 3), (2, 5), (3, 10), (1, 16)])
def test_transfer_entropy_matches_a_counting_reference(lag: int, bins: int) -> None:
    rng = np.random.default_rng(lag * 100 + bins)
    x = rng.normal(size=600)
    y = 0.6 * np.roll(x, lag) + rng.normal(scale=0.8, size=600)
    expected = reference_transfer_entropy(x, y, lag, bins)
    assert cr.transfer_entropy(x, y, lag=lag, bins=bins) == pytest.approx(expected, rel=1e-11)
    assert expected > 0.05


@pytest.mark.parametrize(("length", "lag"), [(0, 1), (1, 1), (2, 1), (3, 2), (5, 4), (5, 5)])
def test_transfer_entropy_is_zero_when_too_short(length: int, lag: int) -> None:
    x = np.arange(length, dtype=np.float64)
    assert cr.transfer_entropy(x, x[::-1].copy(), lag=lag, bins=4) == 0.0


def test_transfer_entropy_defaults_lag_1_bins_10() -> None:
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=400), rng.normal(size=400)
    assert cr.transfer_entropy(x, y) == cr.transfer_entropy(x, y, lag=1, bins=10)


# --- permutation entropy --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "order", "expected"),
    [
        ([1, 2, 3, 4, 5], 3, 0.0),  # one pattern
        ([5, 5, 5, 5, 5], 3, 0.0),  # ties by position: all the identity pattern
        # order 2 windows (1,1) (1,1) (1,2) (2,3): ties count as increasing → one pattern;
        # ranking ties the other way would give 2 + 2 patterns and 1 bit
        ([1, 1, 1, 2, 3], 2, 0.0),
        # (3,3) increasing, (3,2) and (2,1) decreasing → counts 1, 2 over log2 2! = 1
        ([3, 3, 2, 1], 2, LOG2_3 - 2 / 3),
        # order 3 Lehmer codes: (0,0,1) → 0, (0,1,1) → 0, (1,1,0) → 1*2 + 1 = 3,
        # (1,0,0) → 2*2 + 0 = 4: counts 2, 1, 1 → 1.5 bits over log2 6
        ([0, 0, 1, 1, 0, 0], 3, 1.5 / math.log2(6)),
        # (1,2) up, (2,1) down, (1,2) up, (2,1) down → 1 bit / 1
        ([1, 2, 1, 2, 1], 2, 1.0),
        ([1.0, 2.0], 3, 0.0),  # shorter than the order
        ([], 2, 0.0),
        ([4.0, 1.0, 3.0], 3, 0.0),  # exactly one window
    ],
)
def test_permutation_entropy_hand_worked(values: list[float], order: int, expected: float) -> None:
    result = cr.permutation_entropy(values, order=order)
    assert isinstance(result, float)
    assert result == pytest.approx(expected, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("order", [3, 4, 5, 6, 7])
def test_permutation_entropy_matches_antropy(order: int) -> None:
    values = np.random.default_rng(order).normal(size=3000)  # tie-free
    expected = antropy.perm_entropy(values, order=order, normalize=True)
    result = cr.permutation_entropy(values, order=order)
    assert result == pytest.approx(expected, rel=1e-12)
    assert 0.5 < result <= 1.0


@pytest.mark.parametrize("order", [3, 4, 5, 6, 7, 8])
def test_permutation_entropy_with_ties_matches_antropy(order: int) -> None:
    # antropy ranks windows with a stable argsort: ties by position, as the SPEC asks
    values = np.random.default_rng(order).integers(0, 3, size=2000).astype(np.float64)
    expected = antropy.perm_entropy(values, order=order, normalize=True)
    assert cr.permutation_entropy(values, order=order) == pytest.approx(expected, rel=1e-12)


def test_permutation_entropy_default_order_is_3() -> None:
    values = np.random.default_rng(0).normal(size=200)
    assert cr.permutation_entropy(values) == cr.permutation_entropy(values, order=3)


def test_permutation_entropy_order_20() -> None:
    assert cr.permutation_entropy(np.arange(30.0), order=20) == 0.0
    assert cr.permutation_entropy(np.arange(30.0)[::-1].copy(), order=20) == 0.0
    # 981 windows of 20 random values: distinct patterns out of 20! ≈ 2.4e18
    values = np.random.default_rng(20).normal(size=1000)
    expected = math.log2(981) / math.log2(math.factorial(20))
    assert cr.permutation_entropy(values, order=20) == pytest.approx(expected, rel=1e-12)


def test_permutation_entropy_of_a_sawtooth() -> None:
    # 9 values → 8 order-2 windows: (0,1) up, (1,2) up, (2,0) down, twice, then two more up:
    # 6 up, 2 down → H = -(3/4 log2 3/4 + 1/4 log2 1/4) = 2 - 3/4 log2 3, over log2 2! = 1
    values = [0, 1, 2, 0, 1, 2, 0, 1, 2]
    assert cr.permutation_entropy(values, order=2) == pytest.approx(2 - 0.75 * LOG2_3)


# --- huge bins ------------------------------------------------------------------------------

HUGE_BINS = [2**20, 2**22, 2**40, 2**62, 2**63 - 1]
# Integer data in [0, 20]: with 10**6 bins (width <= 2e-5) every distinct value has its own
# bin, and so does it with any larger bins; only the partition into cells matters.
SEPARATING_BINS = 10**6


def small_integer_data(seed: int, size: int = 40) -> NDArray[np.float64]:
    return np.random.default_rng(seed).integers(0, 21, size=size).astype(np.float64)


@pytest.mark.parametrize("bins", HUGE_BINS)
def test_huge_bins_work_on_small_data(bins: int) -> None:
    x, y = small_integer_data(1), small_integer_data(2)
    y[:10] = x[:10]  # some dependence
    _, value_counts = np.unique(x, return_counts=True)
    assert cr.entropy(x, bins=bins) == pytest.approx(
        scipy.stats.entropy(value_counts, base=2), rel=1e-12
    )
    assert cr.entropy(x, bins=bins) == pytest.approx(cr.entropy(x, bins=SEPARATING_BINS))
    for pair_function in (cr.joint_entropy, cr.mutual_information, cr.kl_divergence, cr.jsd):
        assert pair_function(x, y, bins=bins) == pytest.approx(
            pair_function(x, y, bins=SEPARATING_BINS), rel=1e-12, abs=1e-15
        ), pair_function.__name__
    for lag in (1, 2):
        assert cr.transfer_entropy(x, y, lag=lag, bins=bins) == pytest.approx(
            cr.transfer_entropy(x, y, lag=lag, bins=SEPARATING_BINS), rel=1e-12, abs=1e-15
        )


def test_huge_bins_on_empty_and_constant_input() -> None:
    assert cr.entropy([], bins=2**63 - 1) == 0.0
    assert cr.entropy([4.0, 4.0], bins=2**63 - 1) == 0.0
    assert cr.kl_divergence([1.0], [1.0], bins=2**63 - 1) == 0.0
    assert cr.jsd([1.0], [2.0], bins=2**63 - 1) == 1.0


def test_huge_bins_of_distinct_values_give_log2_n() -> None:
    values = np.random.default_rng(5).normal(size=300)
    assert cr.entropy(values, bins=2**62) == pytest.approx(math.log2(300), rel=1e-12)
    assert cr.mutual_information(values, values**3, bins=2**62) == pytest.approx(
        math.log2(300), rel=1e-12
    )


# --- bad input ------------------------------------------------------------------------------

GOOD = [1.0, 2.0, 3.0]


def bad(
    function: Callable[..., float],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    error: type[Exception],
    match: str,
    case_id: str,
) -> Any:
    return pytest.param(function, args, kwargs, error, match, id=case_id)


BAD_INPUT = [
    # non-finite values: the message names the argument (and the index)
    bad(cr.entropy, ([1.0, NAN, 3.0],), {}, ValueError, r"^values .*index 1", "entropy-nan"),
    bad(cr.entropy, ([INF],), {}, ValueError, r"^values .*index 0", "entropy-inf"),
    bad(cr.entropy, ([0.0, 1.0, -INF],), {}, ValueError, r"^values .*index 2", "entropy--inf"),
    bad(cr.joint_entropy, ([NAN], [1.0]), {}, ValueError, r"^x ", "joint-nan-x"),
    bad(cr.joint_entropy, ([1.0], [INF]), {}, ValueError, r"^y ", "joint-inf-y"),
    bad(cr.mutual_information, (GOOD, [1.0, 2.0, NAN]), {}, ValueError, r"^y ", "mi-nan-y"),
    bad(cr.mutual_information, ([INF, 1, 2], GOOD), {}, ValueError, r"^x ", "mi-inf-x"),
    bad(cr.kl_divergence, ([NAN], GOOD), {}, ValueError, r"^current ", "kl-nan-current"),
    bad(cr.kl_divergence, (GOOD, [INF]), {}, ValueError, r"^baseline ", "kl-inf-baseline"),
    bad(cr.kl_divergence, ([], [NAN]), {}, ValueError, r"^baseline ", "kl-empty-nan"),
    bad(cr.jsd, ([-INF], GOOD), {}, ValueError, r"^p ", "jsd-inf-p"),
    bad(cr.jsd, (GOOD, [NAN, 0.0]), {}, ValueError, r"^q ", "jsd-nan-q"),
    bad(cr.jsd, (GOOD, [NAN]), {}, ValueError, r"^q ", "jsd-nan-q-single"),
    bad(cr.transfer_entropy, ([NAN] * 5, [1.0] * 5), {}, ValueError, r"^x ", "te-nan-x"),
    bad(cr.transfer_entropy, ([1.0] * 5, [INF] * 5), {}, ValueError, r"^y ", "te-inf-y"),
    # a non-finite value is bad input even where the series is too short to be used
    bad(cr.transfer_entropy, ([NAN], [1.0]), {}, ValueError, r"^x ", "te-short-nan"),
    bad(cr.permutation_entropy, ([1.0, NAN],), {}, ValueError, r"^values ", "pe-nan"),
    bad(cr.permutation_entropy, ([INF],), {"order": 3}, ValueError, r"^values ", "pe-short-inf"),
    # parameters
    bad(cr.entropy, (GOOD,), {"bins": 0}, ValueError, r"^bins must be >= 1, got 0", "bins-0"),
    bad(cr.entropy, (GOOD,), {"bins": -3}, ValueError, r"^bins ", "bins-neg"),
    bad(cr.entropy, ([],), {"bins": 0}, ValueError, r"^bins ", "bins-0-empty"),
    bad(cr.joint_entropy, ([], []), {"bins": 0}, ValueError, r"^bins ", "joint-bins-0-empty"),
    bad(cr.mutual_information, (GOOD, GOOD), {"bins": 0}, ValueError, r"^bins ", "mi-bins"),
    bad(cr.kl_divergence, ([], []), {"bins": 0}, ValueError, r"^bins ", "kl-bins-0-empty"),
    bad(cr.jsd, ([], GOOD), {"bins": -1}, ValueError, r"^bins ", "jsd-bins-empty"),
    bad(cr.transfer_entropy, (GOOD, GOOD), {"bins": 0}, ValueError, r"^bins ", "te-bins-0"),
    bad(cr.transfer_entropy, (GOOD, GOOD), {"lag": 0}, ValueError, r"^lag ", "te-lag-0"),
    bad(cr.transfer_entropy, ([], []), {"lag": -2}, ValueError, r"^lag ", "te-lag-neg-empty"),
    bad(cr.permutation_entropy, (GOOD,), {"order": 1}, ValueError, r"^order ", "order-1"),
    bad(cr.permutation_entropy, (GOOD,), {"order": 0}, ValueError, r"^order ", "order-0"),
    bad(cr.permutation_entropy, (GOOD,), {"order": 21}, ValueError, r"^order ", "order-21"),
    bad(cr.permutation_entropy, ([],), {"order": 1}, ValueError, r"^order ", "order-1-empty"),
    # parameters are checked before lengths and values
    bad(cr.entropy, ([NAN],), {"bins": 0}, ValueError, r"^bins ", "bins-before-nan"),
    bad(cr.joint_entropy, ([1.0], [1, 2]), {"bins": 0}, ValueError, r"^bins ", "bins-first"),
    bad(cr.transfer_entropy, ([NAN], [1, 2]), {"lag": 0}, ValueError, r"^lag ", "lag-first"),
    bad(cr.permutation_entropy, ([NAN],), {"order": 21}, ValueError, r"^order ", "order-first"),
    # lengths (checked before values)
    bad(
        cr.joint_entropy,
        ([1.0, 2.0, 3.0], [1.0, 2.0, 3.0, 4.0]),
        {},
        ValueError,
        r"^x and y must have the same length \(3 != 4\)",
        "joint-length",
    ),
    bad(cr.mutual_information, ([1.0], []), {}, ValueError, r"^x and y ", "mi-length"),
    bad(cr.transfer_entropy, (GOOD, [1.0]), {}, ValueError, r"^x and y ", "te-length"),
    bad(cr.transfer_entropy, ([1.0], [NAN, 1.0]), {}, ValueError, r"^x and y ", "length-first"),
    # not 1-D
    bad(cr.entropy, ([[1.0, 2.0], [3.0, 4.0]],), {}, ValueError, r"^values ", "entropy-2d"),
    bad(cr.entropy, (np.float64(3.0),), {}, ValueError, r"^values ", "entropy-0d"),
    bad(cr.joint_entropy, (GOOD, np.ones((3, 1))), {}, ValueError, r"^y ", "joint-2d-y"),
    bad(cr.kl_divergence, (np.ones((2, 2)), GOOD), {}, ValueError, r"^current ", "kl-2d"),
    bad(cr.jsd, (GOOD, [[1.0]]), {}, ValueError, r"^q ", "jsd-2d"),
    bad(cr.transfer_entropy, ([[1.0]], [[1.0]]), {}, ValueError, r"^x ", "te-2d"),
    bad(cr.permutation_entropy, (np.ones((4, 4)),), {}, ValueError, r"^values ", "pe-2d"),
    # non-numeric values
    bad(cr.entropy, (["a", "b"],), {}, TypeError, r"^values ", "entropy-str"),
    bad(cr.entropy, ("abc",), {}, TypeError, r"^values ", "entropy-string"),
    bad(cr.entropy, ([object(), object()],), {}, TypeError, r"^values ", "entropy-object"),
    bad(cr.entropy, ([1j, 2j],), {}, TypeError, r"^values ", "entropy-complex"),
    bad(cr.mutual_information, (GOOD, ["x", "y", "z"]), {}, TypeError, r"^y ", "mi-str-y"),
    bad(cr.kl_divergence, ([None, 1.0], GOOD), {}, TypeError, r"^current ", "kl-none"),
    bad(cr.jsd, (["1"], GOOD), {}, TypeError, r"^p ", "jsd-str"),
    bad(cr.transfer_entropy, (["a"] * 3, GOOD), {}, TypeError, r"^x ", "te-str"),
    bad(cr.permutation_entropy, (["a", "b", "c"],), {}, TypeError, r"^values ", "pe-str"),
    # non-integer parameters
    bad(cr.entropy, (GOOD,), {"bins": 2.0}, TypeError, r"^bins ", "bins-float"),
    bad(cr.entropy, (GOOD,), {"bins": True}, TypeError, r"^bins ", "bins-bool"),
    bad(cr.entropy, (GOOD,), {"bins": "10"}, TypeError, r"^bins ", "bins-str"),
    bad(cr.jsd, (GOOD, GOOD), {"bins": 10.5}, TypeError, r"^bins ", "jsd-bins-float"),
    bad(cr.transfer_entropy, (GOOD, GOOD), {"lag": 1.0}, TypeError, r"^lag ", "lag-float"),
    bad(cr.transfer_entropy, (GOOD, GOOD), {"lag": False}, TypeError, r"^lag ", "lag-bool"),
    bad(cr.permutation_entropy, (GOOD,), {"order": 3.0}, TypeError, r"^order ", "order-float"),
    bad(cr.permutation_entropy, (GOOD,), {"order": True}, TypeError, r"^order ", "order-bool"),
]


@pytest.mark.parametrize(("function", "args", "kwargs", "error", "match"), BAD_INPUT)
def test_bad_input_raises_naming_the_argument(
    function: Callable[..., float],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    error: type[Exception],
    match: str,
) -> None:
    with pytest.raises(error, match=match):
        function(*args, **kwargs)


def test_numpy_integer_parameters_are_accepted() -> None:
    x = np.arange(50.0)
    assert cr.entropy(x, bins=np.int64(5)) == cr.entropy(x, bins=5)
    assert cr.permutation_entropy(x, order=np.int32(4)) == 0.0
