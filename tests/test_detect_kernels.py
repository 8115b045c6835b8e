"""The detector kernels (design/kernels.md, "Detector kernels") and the statistics they use.

The kernel tests take a ``kernels`` module: the NumPy backend's detector module under the
``python`` backend parametrisation and the native extension under ``native`` (skipped until
the extension exports the four functions), so the same assertions hold both backends to the
contract. Expected values are worked out by hand (arithmetic in the comments) or come from
scipy and scikit-learn; a Hypothesis test compares the two backends on random inputs.
"""

from __future__ import annotations

import math
import time
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import scipy.special
import scipy.stats
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numpy.typing import NDArray
from sklearn.cluster import DBSCAN

from crackle_runtime import _backend
from crackle_runtime._numpy import _rng, _stats
from crackle_runtime._numpy import detect as numpy_detect
from crackle_runtime.errors import CoolingTimeoutError

NAN, INF = math.nan, math.inf
KERNEL_NAMES = (
    "cluster_components",
    "phase_transition_stats",
    "conservation_stats",
    "correlation_stats",
)
MASK64 = (1 << 64) - 1

Columns = NDArray[np.float64]


def _detect_kernels_or_skip(native: ModuleType) -> ModuleType:
    missing = [name for name in KERNEL_NAMES if not hasattr(native, name)]
    if missing:
        pytest.skip(f"the native extension does not export {', '.join(missing)} yet")
    return native


@pytest.fixture
def kernels(backend: str) -> ModuleType:
    """The detector kernels of the backend under test (see the module docstring)."""
    if backend == "python":
        return numpy_detect
    # The autouse `backend` fixture has skipped (or failed) already if the extension is missing.
    return _detect_kernels_or_skip(_backend.native_module())


@pytest.fixture
def numpy_only(backend: str) -> None:
    """For the NumPy-side helpers (their Rust twins are tested by `cargo test`)."""
    if backend != "python":
        pytest.skip("tests a NumPy-side helper; runs under the python parametrisation only")


def columns_of(*rows: list[float]) -> Columns:
    return np.array(rows, dtype=np.float64).reshape(len(rows), -1)


def cluster(
    kernels: ModuleType, columns: Columns, threshold: float, deadline: float = INF
) -> tuple[NDArray[np.int64], NDArray[np.float64], NDArray[np.bool_]]:
    labels, average, sampled = kernels.cluster_components(
        np.ascontiguousarray(columns, dtype=np.float64), threshold, deadline
    )
    return np.asarray(labels), np.asarray(average), np.asarray(sampled)


def canonical(labels: NDArray[Any]) -> list[int]:
    """Labels renumbered by first appearance (-1 stays): equal partitions compare equal."""
    renumber: dict[int, int] = {}
    out = []
    for label in labels.tolist():
        if label < 0:
            out.append(-1)
        else:
            out.append(renumber.setdefault(label, len(renumber)))
    return out


def splitmix64_reference(seed: int, index: int) -> int:
    """Output ``index`` of the SplitMix64 stream ``seed``, in Python integers."""
    z = (seed + (index + 1) * 0x9E3779B97F4A7C15) & MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def brute_force_clusters(columns: Columns, threshold: float) -> tuple[list[int], list[float]]:
    """The clustering contract written out with loops: every pair, union-find, numbering by
    first member, exact averages over member pairs sharing a metric."""
    metrics, tasks = columns.shape
    parent = list(range(tasks))

    def find(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    distance: dict[tuple[int, int], float] = {}
    for i in range(tasks):
        for j in range(i + 1, tasks):
            shared = [
                k
                for k in range(metrics)
                if not (math.isnan(columns[k, i]) or math.isnan(columns[k, j]))
            ]
            if not shared:
                continue
            d2 = 0.0
            for k in shared:
                d2 += (columns[k, i] - columns[k, j]) ** 2
            distance[i, j] = math.sqrt(d2)
            if math.sqrt(d2) < threshold:
                a, b = find(i), find(j)
                parent[max(a, b)] = min(a, b)
    roots = [find(i) for i in range(tasks)]
    labels: list[int] = []
    number: dict[int, int] = {}
    for i in range(tasks):
        if roots.count(roots[i]) >= 2:
            labels.append(number.setdefault(roots[i], len(number)))
        else:
            labels.append(-1)
    averages = []
    for c in range(len(number)):
        members = [i for i in range(tasks) if labels[i] == c]
        pair_distances = [
            distance[a, b] for a in members for b in members if a < b and (a, b) in distance
        ]
        averages.append(math.fsum(pair_distances) / len(pair_distances))
    return labels, averages


# --- SplitMix64 -------------------------------------------------------------------------------


def test_splitmix64_matches_the_reference_stream(numpy_only: None) -> None:
    # The first outputs of SplitMix64 seeded with 0 (Vigna's reference implementation).
    assert _rng.splitmix64(0, 3).tolist() == [
        0xE220A8397B1DCDAF,
        0x6E789E6AA1B965F4,
        0x06C45D188009454F,
    ]
    seed = 0x5EED_C1A5_7E00_0000 + 7
    draws = _rng.splitmix64(seed, 50, start=1000)
    assert draws.dtype == np.uint64
    assert draws.tolist() == [splitmix64_reference(seed, 1000 + i) for i in range(50)]
    # A seed beyond 2**64 is taken modulo 2**64; wrapping arithmetic raises no warning.
    with np.errstate(all="raise"):
        assert _rng.splitmix64(2**64 + 5, 4).tolist() == _rng.splitmix64(5, 4).tolist()
    assert _rng.splitmix64(1, 0).size == 0


# --- statistics (NumPy side) -----------------------------------------------------------------

BETA_PARAMETERS = [0.5, 1.0, 1.5, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 1000.0]
BETA_POINTS = [1e-6, 1e-3, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999]


@pytest.mark.parametrize("a", BETA_PARAMETERS)
def test_regularized_incomplete_beta_matches_scipy(numpy_only: None, a: float) -> None:
    for b in BETA_PARAMETERS:
        for x in BETA_POINTS:
            expected = float(scipy.special.betainc(a, b, x))
            if expected < 1e-300:  # underflows in both
                continue
            actual = _stats.regularized_incomplete_beta(x, a, b)
            assert actual == pytest.approx(expected, rel=1e-12), (a, b, x)


def test_regularized_incomplete_beta_edges(numpy_only: None) -> None:
    assert _stats.regularized_incomplete_beta(0.0, 2.0, 3.0) == 0.0
    assert _stats.regularized_incomplete_beta(-1.0, 2.0, 3.0) == 0.0
    assert _stats.regularized_incomplete_beta(1.0, 2.0, 3.0) == 1.0
    # I_x(1, 1) = x; I_x(1/2, 1/2) = (2/pi) asin(sqrt(x))
    assert _stats.regularized_incomplete_beta(0.3, 1.0, 1.0) == pytest.approx(0.3, rel=1e-14)
    expected = 2 / math.pi * math.asin(math.sqrt(0.9))
    assert _stats.regularized_incomplete_beta(0.9, 0.5, 0.5) == pytest.approx(expected, rel=1e-14)
    for x, a, b in [(NAN, 1.0, 1.0), (0.5, 0.0, 1.0), (0.5, 1.0, -2.0), (0.5, INF, 1.0)]:
        assert math.isnan(_stats.regularized_incomplete_beta(x, a, b))


def test_ln_gamma_and_ln_beta_match_scipy(numpy_only: None) -> None:
    for x in [1e-3, 0.1, 0.5, 1.0, 1.5, 2.0, 3.7, 10.0, 100.5, 1e5]:
        expected = float(scipy.special.gammaln(x))
        assert _stats.ln_gamma(x) == pytest.approx(expected, rel=1e-14, abs=1e-15)
    assert _stats.ln_gamma(0.0) == INF
    assert _stats.ln_gamma(-3.0) == INF
    for a, b in [(0.5, 0.5), (3.0, 7.0), (15.0, 0.5), (1000.0, 2000.0), (12.0, 12.0)]:
        expected = float(scipy.special.betaln(a, b))
        assert _stats.ln_beta(a, b) == pytest.approx(expected, rel=1e-13, abs=1e-14)
    # Large arguments, where scipy's betaln is itself off by 7e-12: B(a, 1) = 1/a, and
    # ln B(1/2, x) = ln sqrt(pi) - (ln Gamma(x + 1/2) - ln Gamma(x)), the latter
    # 0.5 ln x - 1/(8x) + 1/(192 x^3) - ... (asymptotic series).
    assert _stats.ln_beta(1e6, 1.0) == pytest.approx(-math.log(1e6), rel=1e-15)
    x = 5e4
    ratio = 0.5 * math.log(x) - 1 / (8 * x) + 1 / (192 * x**3)
    assert _stats.ln_beta(0.5, x) == pytest.approx(0.5 * math.log(math.pi) - ratio, rel=1e-14)


@pytest.mark.parametrize("df", [1.0, 2.0, 3.0, 4.5, 10.0, 30.0, 100.0, 300.0, 1000.0])
def test_student_t_two_sided_p_matches_scipy(numpy_only: None, df: float) -> None:
    for t in [1e-3, 0.1, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 30.0, 100.0]:
        expected = 2.0 * float(scipy.stats.t.sf(t, df))
        assert _stats.student_t_two_sided_p(t, df) == pytest.approx(expected, rel=1e-12)
        assert _stats.student_t_two_sided_p(-t, df) == pytest.approx(expected, rel=1e-12)


def test_student_t_two_sided_p_edges(numpy_only: None) -> None:
    assert _stats.student_t_two_sided_p(0.0, 5.0) == 1.0
    assert _stats.student_t_two_sided_p(INF, 5.0) == 0.0
    assert _stats.student_t_two_sided_p(-1e300, 5.0) == 0.0
    for t, df in [(NAN, 5.0), (1.0, 0.0), (1.0, NAN), (1.0, INF)]:
        assert math.isnan(_stats.student_t_two_sided_p(t, df))
    # df = 1 is Cauchy: p = 1 - (2/pi) atan|t|, exact even for tiny t (where 1 - x loses
    # the digits of x = df / (df + t^2) and scipy's t.sf is off by 3e-11).
    for t in [1e-6, 0.3, 7.0]:
        expected = 1.0 - 2.0 / math.pi * math.atan(t)
        assert _stats.student_t_two_sided_p(t, 1.0) == pytest.approx(expected, rel=1e-14)
    # Large df: ln B(df/2, 1/2) from Stirling's series keeps ~1e-11 where Lanczos
    # differences would lose ~log10(df) digits.
    for df in [1e4, 1e5, 1e6]:
        expected = 2.0 * float(scipy.stats.t.sf(1.5, df))
        assert _stats.student_t_two_sided_p(1.5, df) == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("sizes", [(2, 2), (2, 7), (3, 5), (4, 4), (10, 3), (25, 40), (200, 9)])
def test_welch_t_test_matches_scipy(numpy_only: None, sizes: tuple[int, int]) -> None:
    rng = np.random.default_rng(sum(sizes))
    for shift, spread in [(0.0, 1.0), (0.7, 2.0), (3.0, 0.5)]:
        a = rng.normal(size=sizes[0])
        b = rng.normal(loc=shift, scale=spread, size=sizes[1])
        t, p_value = _stats.welch_t_test(a, b)
        expected = scipy.stats.ttest_ind(a, b, equal_var=False)
        assert t == pytest.approx(float(expected.statistic), rel=1e-12)
        assert p_value == pytest.approx(float(expected.pvalue), rel=1e-12)


def test_welch_t_test_zero_variance_and_short_samples(numpy_only: None) -> None:
    # Both constant: p = 0 when the means differ, 1 when equal. The mean of [0.1] * 3 rounds
    # to 0.10000000000000002 and that of [0.1] * 2 to 0.1: the rule is decided on the values.
    t, p_value = _stats.welch_t_test(np.full(3, 0.1), np.full(2, 0.1))
    assert math.isnan(t) and p_value == 1.0
    t, p_value = _stats.welch_t_test(np.full(3, 0.1), np.full(2, 0.2))
    assert (t, p_value) == (-INF, 0.0)
    # One constant sample: Welch with that variance 0 (df = n_other - 1).
    a, b = np.array([1.0, 2.0, 4.0, 7.0]), np.full(5, 2.0)
    expected = scipy.stats.ttest_1samp(a, 2.0)  # the constant's mean is exact
    assert _stats.welch_t_test(a, b)[1] == pytest.approx(float(expected.pvalue), rel=1e-12)
    for short, other in [
        (np.array([1.0]), np.array([2.0, 3.0])),
        (np.array([1.0, 2.0]), np.empty(0)),
    ]:
        assert all(math.isnan(v) for v in _stats.welch_t_test(short, other))


@pytest.mark.parametrize("n", [3, 4, 5, 10, 30, 100])
@pytest.mark.parametrize("offset", [0.0, 1e9])
def test_pearson_matches_scipy(numpy_only: None, n: int, offset: float) -> None:
    rng = np.random.default_rng(n)
    x = rng.normal(size=n) + offset
    y = 0.4 * (x - offset) + rng.normal(scale=1.5, size=n) - offset
    expected = scipy.stats.pearsonr(x, y)
    r = _stats.pearson(x, y)
    assert r == pytest.approx(float(expected.statistic), rel=1e-12)
    assert _stats.pearson_p_value(r, n) == pytest.approx(float(expected.pvalue), rel=1e-12)


def test_pearson_edges(numpy_only: None) -> None:
    x = np.array([1.0, 2.0, 4.0, 7.0, 11.0])
    assert _stats.pearson(x, 2.0 * x + 1.0) == 1.0
    assert _stats.pearson(x, -x) == -1.0
    assert _stats.pearson(np.full(5, 0.1), x) == 0.0  # zero variance
    assert _stats.pearson(np.empty(0), np.empty(0)) == 0.0
    assert _stats.pearson(np.array([1.0]), np.array([2.0])) == 0.0
    with pytest.raises(ValueError, match="same length"):
        _stats.pearson(x, x[:3])
    assert _stats.pearson_p_value(1.0, 5) == 0.0
    assert _stats.pearson_p_value(0.0, 50) == 1.0
    assert math.isnan(_stats.pearson_p_value(0.5, 2))


# --- clustering -------------------------------------------------------------------------------


@pytest.mark.parametrize("order", [[0, 1, 2, 3], [3, 2, 1, 0], [2, 0, 3, 1], [1, 3, 0, 2]])
def test_chain_is_joined_transitively_in_any_order(kernels: ModuleType, order: list[int]) -> None:
    # Points 0, 0.9, 1.8, 2.7 with threshold 1: neighbours are 0.9 apart, the ends 2.7 apart;
    # one component whatever the recording order (the seed's greedy clustering split it).
    positions = np.array([0.0, 0.9, 1.8, 2.7])[order]
    labels, average, sampled = cluster(kernels, columns_of(positions.tolist()), 1.0)
    assert labels.tolist() == [0, 0, 0, 0]
    # pairs: 0.9 three times, 1.8 twice, 2.7 once → 9.0 / 6 (up to the rounding of 1.8, 2.7)
    assert average.tolist() == pytest.approx([1.5], rel=1e-14)
    assert sampled.tolist() == [False]


def test_tasks_sharing_no_metric_are_not_joined(kernels: ModuleType) -> None:
    columns = columns_of(
        [0.0, NAN, 0.5, NAN, 9.0],
        [NAN, 0.0, NAN, 0.2, 9.0],
    )
    # 0 and 2 share metric 0 (distance 0.5); 1 and 3 share metric 1 (0.2). Task 1 has "0.0"
    # like task 0, but on another metric: no shared metric, no edge. Task 4 is far from all.
    labels, average, _ = cluster(kernels, columns, 1.0)
    assert labels.tolist() == [0, 1, 0, 1, -1]
    assert average.tolist() == pytest.approx([0.5, 0.2], rel=1e-14)
    # Tasks with disjoint metrics only: no cluster at all.
    labels, average, sampled = cluster(kernels, columns_of([1.0, NAN], [NAN, 1.0]), 5.0)
    assert labels.tolist() == [-1, -1]
    assert average.size == 0
    assert sampled.size == 0


def test_clusters_are_numbered_by_first_member(kernels: ModuleType) -> None:
    # {1, 3} starts at task 1, {2, 4} at task 2; task 0 is alone.
    labels, average, _ = cluster(kernels, columns_of([50.0, 0.0, 10.0, 0.1, 10.3]), 1.0)
    assert labels.tolist() == [-1, 0, 1, 0, 1]
    assert average.tolist() == pytest.approx([0.1, 0.3], rel=1e-12)


def test_distance_equal_to_threshold_is_not_an_edge(kernels: ModuleType) -> None:
    # 3-4-5 triangle: distance exactly 5.0 (DBSCAN with eps = 5 would join these).
    columns = columns_of([0.0, 3.0], [0.0, 4.0])
    assert cluster(kernels, columns, 5.0)[0].tolist() == [-1, -1]
    assert cluster(kernels, columns, math.nextafter(5.0, INF))[0].tolist() == [0, 0]


def test_empty_inputs(kernels: ModuleType) -> None:
    labels, average, sampled = cluster(kernels, np.empty((2, 0)), 1.0)
    assert labels.size == 0 and average.size == 0 and sampled.size == 0
    labels, average, _ = cluster(kernels, np.empty((0, 3)), 1.0)
    assert labels.tolist() == [-1, -1, -1]
    assert average.size == 0
    labels, _, _ = cluster(kernels, columns_of([NAN, NAN, NAN]), 1.0)
    assert labels.tolist() == [-1, -1, -1]


@pytest.mark.parametrize("seed", range(6))
def test_clusters_match_dbscan_on_blobs(kernels: ModuleType, seed: int) -> None:
    rng = np.random.default_rng(seed)
    dims = 1 + seed % 4
    centers = rng.uniform(-20, 20, size=(6, dims))
    which = rng.integers(0, 6, size=400)
    points = centers[which] + rng.normal(scale=0.6, size=(400, dims))
    points = np.vstack([points, rng.uniform(-30, 30, size=(40, dims))])  # scattered noise
    threshold = [0.3, 0.8, 1.5][seed % 3]
    expected = DBSCAN(eps=threshold, min_samples=2).fit(points).labels_
    labels, average, sampled = cluster(kernels, np.ascontiguousarray(points.T), threshold)
    assert canonical(labels) == canonical(expected)
    assert labels.max() + 1 == average.size == len(set(expected.tolist()) - {-1})
    assert not sampled.any()


@pytest.mark.parametrize("seed", range(12))
def test_clusters_match_the_contract_with_absent_metrics(kernels: ModuleType, seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    metrics, tasks = 1 + seed % 4, 20 + 4 * seed
    columns = np.round(rng.normal(scale=2.0, size=(metrics, tasks)), 1)
    columns[rng.random((metrics, tasks)) < [0.0, 0.2, 0.5][seed % 3]] = NAN
    threshold = [0.5, 1.0, 2.5][seed % 3]
    labels, average = brute_force_clusters(columns, threshold)
    actual_labels, actual_average, sampled = cluster(kernels, columns, threshold)
    assert actual_labels.tolist() == labels
    assert actual_average.tolist() == pytest.approx(average, rel=1e-12)
    assert not sampled.any()


def test_clusters_of_offset_data(kernels: ModuleType) -> None:
    # 1e9 + small offsets: distances from exact differences, as for the plain data.
    rng = np.random.default_rng(5)
    plain = np.round(rng.normal(size=(3, 300)), 2)
    labels, average, _ = cluster(kernels, plain, 0.4)
    offset_labels, offset_average, _ = cluster(kernels, plain + 1e9, 0.4)
    expected_labels, expected_average = brute_force_clusters(plain + 1e9, 0.4)
    assert offset_labels.tolist() == expected_labels
    assert offset_average.tolist() == pytest.approx(expected_average, rel=1e-12)
    assert canonical(offset_labels) == canonical(labels)  # 2-decimal data survive the offset
    assert offset_average == pytest.approx(average, rel=1e-6)


def test_average_distance_is_exact_up_to_4096_members(kernels: ModuleType) -> None:
    # 4096 points on a line, all within the threshold of each other: one exact cluster.
    # Over sorted x: sum_{a<b} (x_b - x_a) = sum_k x_(k) (2k - n + 1).
    x = np.random.default_rng(1).uniform(0.0, 1.0, size=4096)
    labels, average, sampled = cluster(kernels, x[None, :], 2.0)
    assert (labels == 0).all()
    ordered = np.sort(x)
    k = np.arange(x.size)
    expected = math.fsum(ordered * (2 * k - x.size + 1)) / (x.size * (x.size - 1) / 2)
    assert average.tolist() == pytest.approx([expected], rel=1e-12)
    assert sampled.tolist() == [False]


def test_average_distance_is_sampled_above_4096_members(kernels: ModuleType) -> None:
    # Cluster 1 (4097 members, every other task from task 1 on) is estimated from the
    # SplitMix64 sample of the contract: seed 0x5EED_C1A5_7E00_0000 + 1, 240,000 draws,
    # pair s = (u_2s % k, u_2s+1 % k), a == b skipped, averaged in draw order.
    size = 4097
    rng = np.random.default_rng(2)
    line = rng.uniform(0.0, 1.0, size=size)
    tasks = np.empty(2 * size)
    tasks[0], tasks[2] = 100.0, 100.5  # cluster 0: tasks 0 and 2
    tasks[1::2] = line  # cluster 1
    tasks[4::2] = 1000.0 + 10.0 * np.arange(size - 2)  # far apart: unclustered
    labels, average, sampled = cluster(kernels, tasks[None, :], 2.0)
    assert labels[:3].tolist() == [0, 1, 0]
    assert (labels[1::2] == 1).all() and (labels[4::2] == -1).all()
    assert sampled.tolist() == [False, True]
    seed = 0x5EED_C1A5_7E00_0000 + 1
    draws = [splitmix64_reference(seed, i) for i in range(240_000)]
    total, count = 0.0, 0
    for s in range(120_000):
        a, b = draws[2 * s] % size, draws[2 * s + 1] % size
        if a != b:
            total += abs(line[a] - line[b])
            count += 1
    assert average.tolist() == pytest.approx([0.5, total / count], rel=1e-12)
    assert average[1] == pytest.approx(1 / 3, rel=0.01)  # E|U - V| for uniforms


def test_spent_budget_raises_cooling_timeout(kernels: ModuleType) -> None:
    columns = np.random.default_rng(0).normal(size=(3, 500))
    with pytest.raises(CoolingTimeoutError):
        cluster(kernels, columns, 1.0, deadline=0.0)
    labels, _, _ = cluster(kernels, columns, 1.0, deadline=3600.0)
    assert labels.shape == (500,)


def test_budget_is_checked_between_blocks(numpy_only: None) -> None:
    # 20,000 tasks in 12 dimensions take the NumPy backend far longer than 20 ms.
    columns = np.random.default_rng(0).normal(size=(12, 20_000))
    started = time.monotonic()
    with pytest.raises(CoolingTimeoutError, match="time budget"):
        numpy_detect.cluster_components(columns, 2.5, 0.02)
    assert time.monotonic() - started < 5.0


@pytest.mark.parametrize("threshold", [0.0, -1.0, NAN, INF])
def test_cluster_threshold_is_validated(kernels: ModuleType, threshold: float) -> None:
    with pytest.raises(ValueError, match=r"^threshold"):
        cluster(kernels, columns_of([1.0, 2.0]), threshold)


def test_numpy_kernels_validate_columns_and_deadline(numpy_only: None) -> None:
    with pytest.raises(ValueError, match=r"^columns must be a 2-D array"):
        numpy_detect.cluster_components(np.array([1.0, 2.0]), 1.0, INF)
    with pytest.raises(ValueError, match=r"^columns contains an infinite value"):
        numpy_detect.conservation_stats(columns_of([1.0, INF]), 0.1)
    with pytest.raises(ValueError, match=r"^deadline"):
        numpy_detect.cluster_components(columns_of([1.0, 2.0]), 1.0, NAN)


# --- phase transition ---------------------------------------------------------------------------

PHASE = {
    name: index
    for index, name in enumerate(
        "count first_avg second_avg mean_all shift p_value change_index delta detected".split()
    )
}


def test_phase_transition_hand_worked(kernels: ModuleType) -> None:
    first, second = [10.0, 12.0, 11.0, 13.0], [20.0, 22.0, 21.0, 24.0, 23.0]
    stats = np.asarray(kernels.phase_transition_stats(columns_of(first + second), 0.5))
    assert stats.shape == (1, 9)
    row = stats[0]
    # halves split at 9 // 2 = 4: means 46/4 = 11.5 and 110/5 = 22; all: 156/9 = 52/3
    assert row[PHASE["count"]] == 9
    assert row[PHASE["first_avg"]] == 11.5
    assert row[PHASE["second_avg"]] == 22.0
    assert row[PHASE["mean_all"]] == pytest.approx(52 / 3, rel=1e-15)
    assert row[PHASE["delta"]] == 10.5
    assert row[PHASE["shift"]] == pytest.approx(10.5 / (52 / 3), rel=1e-14)  # 0.6058
    welch = scipy.stats.ttest_ind(first, second, equal_var=False)
    assert row[PHASE["p_value"]] == pytest.approx(float(welch.pvalue), rel=1e-12)
    # S_k = prefix sums of x - 52/3: -22/3, -38/3, -19, -70/3, -62/3, -16, -40/3, -20/3;
    # S_k^2 * 9 / (k (9 - k)) peaks at k = 4: (70/3)^2 * 9 / 20 = 245 (k = 5: 192.2).
    assert row[PHASE["change_index"]] == 4
    assert row[PHASE["detected"]] == 1  # shift 0.61 > 0.5 and p = 1.6e-5 < 0.01


def test_phase_transition_change_index_at_a_planted_step(kernels: ModuleType) -> None:
    rng = np.random.default_rng(3)
    values = np.where(np.arange(200) < 130, 10.0, 13.0) + rng.normal(scale=0.1, size=200)
    row = np.asarray(kernels.phase_transition_stats(values[None, :], 0.1))[0]
    assert row[PHASE["change_index"]] == 130
    # halves: 100 values near 10; 30 near 10 and 70 near 13 → means ≈ 10 and 12.1
    assert row[PHASE["delta"]] == pytest.approx(2.1, abs=0.05)
    assert row[PHASE["p_value"]] < 1e-10
    assert row[PHASE["detected"]] == 1


def test_phase_transition_change_index_takes_the_first_of_equal_scores(kernels: ModuleType) -> None:
    # [0, 2, 0, 2], mean 1: S = -1, 0, -1 → scores 4/3, 0, 4/3 (exact) → k = 1
    row = np.asarray(kernels.phase_transition_stats(columns_of([0.0, 2.0, 0.0, 2.0]), 0.1))[0]
    assert row[PHASE["change_index"]] == 1


def test_phase_transition_significance_gate(kernels: ModuleType) -> None:
    # Halves of 4: shift (2.75 - 2.525) / 2.6375 = 0.085 > 0.01, but Welch p ≈ 0.95: no.
    noisy = [0.1, 5.0, 0.2, 4.8, 5.1, 0.3, 5.2, 0.4]
    row = np.asarray(kernels.phase_transition_stats(columns_of(noisy), 0.01))[0]
    assert row[PHASE["shift"]] == pytest.approx(0.225 / 2.6375, rel=1e-12)
    assert row[PHASE["p_value"]] > 0.9
    assert row[PHASE["detected"]] == 0
    # Halves of 3: no test required; shift (10/3 - 2) / (8/3) = 0.5 > 0.3 → detected.
    short = [1.0, 3.0, 2.0, 2.5, 6.0, 1.5]
    row = np.asarray(kernels.phase_transition_stats(columns_of(short), 0.3))[0]
    assert row[PHASE["shift"]] == pytest.approx(0.5, rel=1e-12)
    assert row[PHASE["p_value"]] > 0.3
    assert row[PHASE["detected"]] == 1
    # Zero-variance halves whose means differ: p = 0.
    row = np.asarray(kernels.phase_transition_stats(columns_of([1.0] * 4 + [3.0] * 4), 0.5))[0]
    assert row[[PHASE["shift"], PHASE["p_value"], PHASE["change_index"]]].tolist() == [
        1.0,
        0.0,
        4.0,
    ]
    assert row[PHASE["detected"]] == 1


def test_phase_transition_zero_mean_short_and_absent(kernels: ModuleType) -> None:
    columns = columns_of(
        [-1.0, 1.0, -1.0, 1.0, NAN],  # mean 0: shift undefined
        [NAN, 5.0, NAN, NAN, NAN],  # one value
        [NAN] * 5,  # none
        [1.0, NAN, 3.0, NAN, NAN],  # two values: halves of 1, no p-value
    )
    stats = np.asarray(kernels.phase_transition_stats(columns, 0.1))
    assert stats.shape == (4, 9)
    assert math.isnan(stats[0, PHASE["shift"]]) and stats[0, PHASE["detected"]] == 0
    for row, count in [(1, 1), (2, 0)]:
        assert stats[row, PHASE["count"]] == count
        assert np.isnan(stats[row, 1:8]).all()
        assert stats[row, PHASE["detected"]] == 0
    assert stats[3, [0, 1, 2, 3, 4, 6, 7, 8]].tolist() == [2, 1, 3, 2, 1, 1, 2, 1]
    assert math.isnan(stats[3, PHASE["p_value"]])


@pytest.mark.parametrize("sensitivity", [-0.1, NAN, INF])
def test_phase_transition_sensitivity_is_validated(kernels: ModuleType, sensitivity: float) -> None:
    with pytest.raises(ValueError, match=r"^sensitivity"):
        kernels.phase_transition_stats(columns_of([1.0, 2.0]), sensitivity)


# --- conservation ------------------------------------------------------------------------------

CONSERVATION = {
    name: index for index, name in enumerate("count total mean std cv is_counter detected".split())
}


def test_conservation_hand_worked(kernels: ModuleType) -> None:
    # mean 40/8 = 5; squared deviations 1, 9, 0, 1, 16, 1, 0, 4 = 32 → std sqrt(32/8) = 2
    values = [4.0, 2.0, 5.0, 4.0, 9.0, 4.0, 5.0, 7.0]
    row = np.asarray(kernels.conservation_stats(columns_of(values), 0.5))[0]
    assert row.tolist() == [8, 40, 5, 2, 0.4, 0, 1]
    row = np.asarray(kernels.conservation_stats(columns_of(values), 0.4))[0]
    assert row[CONSERVATION["detected"]] == 0  # cv < tolerance is strict


def test_conservation_excludes_counters(kernels: ModuleType) -> None:
    columns = np.full((6, 100), NAN)
    columns[0] = np.arange(100.0)  # an id: 0..99
    columns[1, :7] = np.arange(100.0, 107.0)  # 7 increasing values: too few to call
    columns[2, :8] = [5, 5, 6, 6, 6, 7, 7, 7]  # 8 non-decreasing, 3 distinct: counter
    columns[3, :8] = [9, 9, 8, 8, 8, 7, 7, 7]  # 8 non-increasing, 3 distinct: counter
    columns[4, :8] = [5, 5, 5, 5, 6, 6, 6, 6]  # 8 non-decreasing, 2 distinct: not a counter
    columns[5, :8] = [5, 6, 5, 6, 7, 7, 7, 7]  # not monotonic
    stats = np.asarray(kernels.conservation_stats(columns, 1.0))
    assert stats[:, CONSERVATION["is_counter"]].tolist() == [1, 0, 1, 1, 0, 0]
    assert stats[:, CONSERVATION["detected"]].tolist() == [0, 1, 0, 0, 1, 1]
    # 0..99: mean 49.5, population std sqrt((100^2 - 1) / 12); cv 0.58 < 1 but a counter
    assert stats[0, :5].tolist() == pytest.approx(
        [100, 4950, 49.5, math.sqrt(9999 / 12), math.sqrt(9999 / 12) / 49.5], rel=1e-14
    )
    # 100..106: mean 103, std 2
    assert stats[1, :5].tolist() == pytest.approx([7, 721, 103, 2, 2 / 103], rel=1e-14)


def test_conservation_constant_zero_short_and_absent(kernels: ModuleType) -> None:
    columns = columns_of(
        [0.1, 0.1, 0.1, 0.1, 0.1],
        [0.0, 0.0, 0.0, 0.0, 0.0],
        [5.0, NAN, NAN, NAN, NAN],
        [NAN] * 5,
    )
    stats = np.asarray(kernels.conservation_stats(columns, 0.1))
    # constant: mean exactly 0.1, std exactly 0 (not the 2e-17 of a rounded mean)
    assert stats[0, 2:].tolist() == [0.1, 0.0, 0.0, 0, 1]
    assert stats[0, CONSERVATION["total"]] == pytest.approx(0.5, rel=1e-15)
    assert math.isnan(stats[1, CONSERVATION["cv"]]) and stats[1, CONSERVATION["detected"]] == 0
    assert stats[2].tolist() == [1, 5, 5, 0, 0, 0, 0]
    assert stats[3, [0, 1, 5, 6]].tolist() == [0, 0, 0, 0]
    assert np.isnan(stats[3, 2:5]).all()
    # tolerance 0: cv < 0 never holds
    assert np.asarray(kernels.conservation_stats(columns, 0.0))[0, CONSERVATION["detected"]] == 0


@pytest.mark.parametrize("tolerance", [-0.1, NAN, INF])
def test_conservation_tolerance_is_validated(kernels: ModuleType, tolerance: float) -> None:
    with pytest.raises(ValueError, match=r"^tolerance"):
        kernels.conservation_stats(columns_of([1.0, 2.0]), tolerance)


# --- correlation -------------------------------------------------------------------------------


@pytest.mark.parametrize("offset", [0.0, 1e9])
def test_correlation_matches_scipy(kernels: ModuleType, offset: float) -> None:
    rng = np.random.default_rng(11)
    base = rng.normal(size=60)
    columns = np.vstack(
        [
            base,
            0.5 * base + rng.normal(scale=1.5, size=60),
            -0.3 * base + rng.normal(size=60),
            rng.normal(size=60),
        ]
    )
    columns[2, rng.random(60) < 0.3] = NAN
    columns[3, :25] = NAN
    columns += offset
    stats = np.asarray(kernels.correlation_stats(columns, 0.5))
    pairs = [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]
    assert stats[:, :2].tolist() == [list(pair) for pair in pairs]
    for row, (i, j) in zip(stats, pairs, strict=True):
        both = ~np.isnan(columns[i]) & ~np.isnan(columns[j])
        expected = scipy.stats.pearsonr(columns[i][both], columns[j][both])
        assert row[2] == both.sum()
        assert row[3] == pytest.approx(float(expected.statistic), rel=1e-12)
        assert row[4] == pytest.approx(float(expected.pvalue), rel=1e-12)
        # detected: |r| >= 0.5 and (n < 10 or p < 0.01)
        assert row[5] == float(abs(row[3]) >= 0.5 and row[4] < 0.01)


def test_correlation_of_data_offset_by_1e9_is_exact(kernels: ModuleType) -> None:
    # Deviations from the mean are exact for these integers + 1e9, so r equals the r of the
    # plain integers; raw sums (n Σxy - Σx Σy) would lose everything at this offset.
    x = np.array([1.0, 2.0, 4.0, 7.0, 11.0])
    y = np.array([2.0, 1.0, 5.0, 8.0, 9.0])
    plain = np.asarray(kernels.correlation_stats(np.vstack([x, y]), 0.9))[0]
    offset = np.asarray(kernels.correlation_stats(np.vstack([x, y]) + 1e9, 0.9))[0]
    # means 5 and 5: dx = -4, -3, -1, 2, 6; dy = -3, -4, 0, 3, 4
    # Σdxdy = 54, Σdx² = 66, Σdy² = 50 → r = 54 / sqrt(3300)
    assert plain[3] == pytest.approx(54 / math.sqrt(3300), rel=1e-14)
    assert offset[3] == pytest.approx(plain[3], rel=1e-14)
    assert offset[4] == pytest.approx(plain[4], rel=1e-12)


def test_correlation_zero_variance_short_and_perfect(kernels: ModuleType) -> None:
    columns = columns_of(
        [1.0, 2.0, 3.0, 4.0, 5.0],
        [0.1, 0.1, 0.1, 0.1, 0.1],  # zero variance
        [2.0, 4.0, 6.0, NAN, NAN],  # 3 shared values, on a line with metric 0
        [NAN, NAN, NAN, 7.0, 1.0],  # 2 shared with metric 0
    )
    stats = np.asarray(kernels.correlation_stats(columns, 0.9))
    rows = {(int(row[0]), int(row[1])): row[2:].tolist() for row in stats}
    assert rows[0, 1] == [5, 0.0, 1.0, 0]  # r = 0, t = 0 → p = 1
    assert rows[0, 2] == [3, 1.0, 0.0, 1]  # |r| = 1 → p = 0; n < 10 needs no p
    assert rows[0, 3][:2] == [2, -1.0]  # two points: r = -1 but n < 3
    assert math.isnan(rows[0, 3][2]) and rows[0, 3][3] == 0
    assert rows[1, 3][:2] == [2, 0.0]
    assert rows[2, 3][:2] == [0, 0.0]  # no shared task: nothing varies, r = 0
    assert math.isnan(rows[2, 3][2]) and rows[2, 3][3] == 0


def test_correlation_needs_significance_from_10_pairs(kernels: ModuleType) -> None:
    # |r| >= 0.3 with 20 pairs but p > 0.01: not detected; the same r with 8 pairs is.
    rng = np.random.default_rng(0)
    for _ in range(1000):
        x, y = rng.normal(size=20), rng.normal(size=20)
        result = scipy.stats.pearsonr(x, y)
        if 0.35 <= abs(result.statistic) and result.pvalue > 0.05:
            break
    else:  # pragma: no cover - the seed is fixed
        pytest.fail("no suitable sample")
    row = np.asarray(kernels.correlation_stats(np.vstack([x, y]), 0.3))[0]
    assert row[2] == 20 and abs(row[3]) >= 0.35 and row[4] > 0.05
    assert row[5] == 0
    short = np.vstack([x[:8], y[:8]])
    row = np.asarray(kernels.correlation_stats(short, 0.01))[0]
    assert row[2] == 8 and row[5] == 1


def test_correlation_of_fewer_than_two_metrics(kernels: ModuleType) -> None:
    assert np.asarray(kernels.correlation_stats(columns_of([1.0, 2.0, 3.0]), 0.5)).shape == (0, 6)


@pytest.mark.parametrize("threshold", [0.0, -0.5, 1.5, NAN])
def test_correlation_threshold_is_validated(kernels: ModuleType, threshold: float) -> None:
    with pytest.raises(ValueError, match=r"^threshold"):
        kernels.correlation_stats(columns_of([1.0, 2.0], [2.0, 1.0]), threshold)
    assert np.asarray(kernels.correlation_stats(columns_of([1.0, 2.0], [2.0, 1.0]), 1.0)).shape == (
        1,
        6,
    )


# --- the two backends agree ---------------------------------------------------------------------


@st.composite
def column_matrices(draw: st.DrawFn) -> Columns:
    """Up to 5 metrics over up to 200 tasks: small integers (ties, exact distances) and
    floats, with NaN for absent values."""
    metrics = draw(st.integers(1, 5))
    tasks = draw(st.integers(0, 200))
    elements = st.one_of(
        st.integers(-6, 6).map(float),
        st.floats(-50.0, 50.0, allow_nan=False, allow_infinity=False),
    )
    values = draw(hnp.arrays(np.float64, (metrics, tasks), elements=elements))
    absent = draw(hnp.arrays(np.bool_, (metrics, tasks)))
    values[absent] = NAN
    offset = draw(st.sampled_from([0.0, 0.0, 1e6]))
    return values + offset


def assert_same(numpy_result: NDArray[Any], native_result: NDArray[Any], exact: list[int]) -> None:
    numpy_result, native_result = np.asarray(numpy_result), np.asarray(native_result)
    assert numpy_result.shape == native_result.shape
    np.testing.assert_array_equal(numpy_result[:, exact], native_result[:, exact])
    np.testing.assert_allclose(numpy_result, native_result, rtol=1e-12, atol=1e-300)


@given(
    columns=column_matrices(),
    threshold=st.sampled_from([0.5, 1.5, 2.5, 4.0]),
    sensitivity=st.sampled_from([0.0, 0.1, 0.5]),
    tolerance=st.sampled_from([0.0, 0.1, 0.3]),
    correlation_threshold=st.sampled_from([0.5, 0.7, 1.0]),
)
def test_numpy_and_native_kernels_agree(
    backend: str,
    native: ModuleType,
    columns: Columns,
    threshold: float,
    sensitivity: float,
    tolerance: float,
    correlation_threshold: float,
) -> None:
    if backend != "python":
        pytest.skip("differential test: runs once, under the python parametrisation")
    native = _detect_kernels_or_skip(native)

    labels, average, sampled = numpy_detect.cluster_components(columns, threshold, INF)
    native_labels, native_average, native_sampled = native.cluster_components(
        columns, threshold, INF
    )
    np.testing.assert_array_equal(labels, np.asarray(native_labels))
    np.testing.assert_array_equal(sampled, np.asarray(native_sampled))
    np.testing.assert_allclose(average, np.asarray(native_average), rtol=1e-12)

    assert_same(
        numpy_detect.phase_transition_stats(columns, sensitivity),
        native.phase_transition_stats(columns, sensitivity),
        exact=[0, 6, 8],
    )
    assert_same(
        numpy_detect.conservation_stats(columns, tolerance),
        native.conservation_stats(columns, tolerance),
        exact=[0, 5, 6],
    )
    assert_same(
        numpy_detect.correlation_stats(columns, correlation_threshold),
        native.correlation_stats(columns, correlation_threshold),
        exact=[0, 1, 2, 5],
    )
