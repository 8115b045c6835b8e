"""P5: clustering kernel vs scikit-learn DBSCAN and scipy's kd-tree + connected components.

The workload has real clusters: ~20 Gaussian blobs in 4-D, spread 1 around centres drawn in
[0, 100]^4, joined at distance 0.8 (96%+ of the tasks end in the 20 blob components; the
rest are tail singletons and a few small fragments). Every implementation must give the
same partition up to renumbering, singletons being DBSCAN's noise. DBSCAN joins at
``<= eps`` and crackle at ``< threshold``: equal only up to exact ties, which continuous
random data does not produce.
"""

from __future__ import annotations

import importlib
import math
from typing import Any

import numpy as np

from _data import gaussian_blobs
from _harness import (
    Config,
    Group,
    Skip,
    Target,
    best_of,
    flag,
    native_or_skip,
    require_kernels,
    same_partition,
    singletons_as_noise,
)

DIMS = 4
SPREAD = 1.0
THRESHOLD = 0.8
KERNEL = ("run_detector",)


def _peers(
    group: Group, points: np.ndarray[Any, Any], n: int, config: Config
) -> tuple[list[Any], np.ndarray[Any, Any] | None]:
    """Time DBSCAN and cKDTree + connected components; the rows and the reference partition."""
    peers = []
    reference: np.ndarray[Any, Any] | None = None
    try:
        cluster = importlib.import_module("sklearn.cluster")
        seconds, labels = best_of(
            lambda: cluster.DBSCAN(eps=THRESHOLD, min_samples=2, n_jobs=-1).fit(points).labels_,
            config.repeats,
        )
        reference = np.asarray(labels)
        peers.append(group.add("sklearn DBSCAN(min_samples=2, n_jobs=-1)", seconds=seconds))
    except ImportError:
        group.skip("sklearn DBSCAN", "scikit-learn not installed")
    try:
        spatial = importlib.import_module("scipy.spatial")
        sparse = importlib.import_module("scipy.sparse")
        csgraph = importlib.import_module("scipy.sparse.csgraph")

        def kd_components() -> np.ndarray[Any, Any]:
            pairs = spatial.cKDTree(points).query_pairs(THRESHOLD, output_type="ndarray")
            graph = sparse.coo_matrix(
                (np.ones(len(pairs), dtype=np.int8), (pairs[:, 0], pairs[:, 1])), shape=(n, n)
            )
            return csgraph.connected_components(graph, directed=False)[1]  # type: ignore[no-any-return]

        seconds, labels = best_of(kd_components, config.repeats)
        labels = singletons_as_noise(labels)
        row = group.add("scipy cKDTree.query_pairs + connected_components", seconds=seconds)
        if reference is None:
            reference = labels
        else:
            row.correct = flag(same_partition(labels, reference))
        peers.append(row)
    except ImportError:
        group.skip("scipy cKDTree", "scipy not installed")
    return peers, reference


def p5(config: Config) -> list[Group]:
    from crackle_runtime import _backend

    n = config.size(100_000, 4_000)
    blobs = 20 if not config.quick else 5
    points, _ = gaussian_blobs(n, DIMS, blobs, SPREAD, seed=51)
    columns = np.ascontiguousarray(points.T)  # the kernels read (metrics, tasks)
    group = Group("P5", f"clustering {n:,} x {DIMS}, {blobs} blobs, threshold {THRESHOLD}")
    peers, reference = _peers(group, points, n, config)

    if reference is not None:
        group.rows[0].note = (
            f"the reference partition: {int(reference.max()) + 1} clusters of >= 2 holding "
            f"{float((reference >= 0).mean()):.1%} of the tasks"
        )

    def run(module: Any) -> Any:
        def cluster() -> tuple[Any, Any, Any]:
            result = module.run_detector("clustering", columns, None, {"threshold": THRESHOLD})
            return result["label"], result["avg_distance"], result["sampled"]

        return cluster

    native_row = numpy_row = None
    native_result: Any = None
    try:
        native = native_or_skip()
        require_kernels(native, KERNEL, "native")
        seconds, native_result = best_of(run(native), config.repeats)
        native_row = group.add(
            "crackle native clustering",
            seconds=seconds,
            note=f"{len(native_result[1])} clusters; the kernel also computes each cluster's "
            "average distance, which the peers do not",
        )
        if reference is not None:
            native_row.correct = flag(same_partition(native_result[0], reference))
    except Skip as exc:
        group.skip("crackle native clustering", str(exc))
    try:
        numpy_module = _backend.numpy_module()
        require_kernels(numpy_module, KERNEL, "NumPy")
        seconds, (labels, averages, _) = best_of(run(numpy_module), min(config.repeats, 2))
        # Against the native result when there is one (labels and average distances),
        # else against the peers' partition.
        if native_result is not None:
            agrees = same_partition(labels, native_result[0]) and np.allclose(
                averages, native_result[1], rtol=1e-9
            )
        else:
            agrees = reference is None or same_partition(labels, reference)
        numpy_row = group.add(
            "crackle NumPy backend clustering", seconds=seconds, correct=flag(agrees)
        )
    except Skip as exc:
        group.skip("crackle NumPy backend clustering", str(exc))
    if peers:
        best = min(peers, key=lambda peer: peer.seconds or math.inf)
        group.compare([peer for peer in peers if peer is not best], best, kind="speedup")
        if native_row is not None:
            target = Target("speedup", 2.0, ">= 2x faster than best peer")
            group.compare([native_row], best, target)
        if numpy_row is not None:
            group.compare([numpy_row], best, kind="speedup")
    return [group]


BENCHMARKS = {"P5": p5}
