"""The clustering detector (SPEC §6 "Clustering", docs/kernels.md): connected components of
the graph joining tasks that share a metric and lie closer than ``threshold``, with each
cluster's average pairwise distance (exact up to 4,096 members, else from a fixed SplitMix64
sample). Expected values are worked out by hand, written out with loops from the contract,
or come from scikit-learn's DBSCAN (``min_samples=2``)."""

from __future__ import annotations

import math
import time
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray
from references import Columns, columns_of, splitmix64_reference
from sklearn.cluster import DBSCAN

from crackle_runtime import _backend
from crackle_runtime.errors import CoolingTimeoutError

NAN, INF = math.nan, math.inf


def cluster(
    kernels: ModuleType, columns: Columns, threshold: float, deadline: float = INF
) -> tuple[NDArray[np.int64], NDArray[np.float64], NDArray[np.bool_]]:
    """``(label, avg_distance, sampled)`` of the clustering detector."""
    result = kernels.run_detector(
        "clustering",
        np.ascontiguousarray(columns, dtype=np.float64),
        params={"threshold": threshold, "deadline": deadline},
    )
    return result["label"], result["avg_distance"], result["sampled"]


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
    # No metric rows: no labels at all (the registry's contract; the former
    # ``cluster_components`` labelled every task -1 here).
    labels, average, sampled = cluster(kernels, np.empty((0, 3)), 1.0)
    assert labels.size == 0 and average.size == 0 and sampled.size == 0
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


@pytest.mark.parametrize("case", ["noise", "noise with gaps", "overlapping blobs"])
def test_numpy_skips_the_pairs_inside_a_giant_component(
    numpy_only: None, native: ModuleType, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    # Dense data: 8-d noise is one giant component at threshold 2.5, where every pair is a
    # sweep candidate. The NumPy backend joins tasks to anchors first and then forms only
    # the pairs with a task outside each block's largest component; the components and
    # averages stay those of the native kd-tree.
    from crackle_runtime._numpy.detect import clustering

    rng = np.random.default_rng(11)
    tasks = 6_000
    if case == "overlapping blobs":
        centers = rng.uniform(0, 6, size=(3, 4))
        columns = (centers[rng.integers(0, 3, tasks)] + rng.normal(size=(tasks, 4))).T
    else:
        columns = rng.normal(size=(8, tasks))
    if case == "noise with gaps":
        columns[rng.random(columns.shape) < 0.05] = NAN
    columns = np.ascontiguousarray(columns)
    formed = [0]
    edges = clustering._PairIndex._edges

    def counting_edges(index: Any, parent: Any, rows: Any, others: Any) -> Any:
        sizes = [len(range(tasks)[i]) if isinstance(i, slice) else len(i) for i in (rows, others)]
        formed[0] += sizes[0] * sizes[1]
        return edges(index, parent, rows, others)

    monkeypatch.setattr(clustering._PairIndex, "_edges", counting_edges)
    labels, average, sampled = cluster(_backend.numpy_module(), columns, 2.5)
    expected = cluster(native, columns, 2.5)
    assert labels.tolist() == expected[0].tolist()
    assert average.tolist() == pytest.approx(expected[1].tolist(), rel=1e-12)
    assert sampled.tolist() == expected[2].tolist()
    assert np.bincount(labels[labels >= 0]).max() > 0.9 * tasks  # one giant component
    # The plain sweep forms nearly all tasks^2 / 2 pairs here; the skipping far fewer.
    assert formed[0] < 0.2 * tasks * tasks / 2


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
        cluster(_backend.numpy_module(), columns, 2.5, deadline=0.02)
    assert time.monotonic() - started < 5.0


@pytest.mark.parametrize("threshold", [0.0, -1.0, NAN, INF])
def test_cluster_threshold_is_validated(kernels: ModuleType, threshold: float) -> None:
    with pytest.raises(ValueError, match=r"^threshold"):
        cluster(kernels, columns_of([1.0, 2.0]), threshold)


def test_columns_and_deadline_are_validated(kernels: ModuleType) -> None:
    with pytest.raises(ValueError, match=r"^columns contains an infinite value"):
        cluster(kernels, columns_of([1.0, INF], [2.0, 3.0]), 1.0)
    with pytest.raises(ValueError, match=r"^deadline"):
        cluster(kernels, columns_of([1.0, 2.0]), 1.0, deadline=NAN)


def test_numpy_backend_refuses_columns_of_another_shape(numpy_only: None) -> None:
    with pytest.raises(ValueError, match=r"^columns must be a 2-D array"):
        _backend.numpy_module().run_detector("clustering", np.array([1.0, 2.0]))
