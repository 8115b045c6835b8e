"""Clustering (SPEC §6): the connected components of tasks closer than
``cluster_threshold``, one pattern per cluster."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from crackle_runtime.detectors._base import Detector, Findings, Result, detect_with
from crackle_runtime.detectors._data import DetectionData
from crackle_runtime.patterns import CracklePattern, PatternKind
from crackle_runtime.profile import ThermalProfile
from crackle_runtime.task import MetricsLike, metric_dict

__all__ = ["DETECTOR", "ClusteringPattern"]


def _params(profile: ThermalProfile) -> dict[str, Any]:
    return {"threshold": float(profile.cluster_threshold)}


def _findings(data: DetectionData, result: Result, params: dict[str, Any]) -> Findings:
    threshold = float(params["threshold"])
    labels = np.asarray(result["label"])
    avg_distance = np.asarray(result["avg_distance"])
    sampled = np.asarray(result["sampled"])
    found = Findings()
    if not len(avg_distance):
        return found
    order = np.argsort(labels, kind="stable")
    sorted_labels = labels[order]
    starts = np.searchsorted(sorted_labels, np.arange(len(avg_distance)))
    ends = np.searchsorted(sorted_labels, np.arange(len(avg_distance)), side="right")
    all_tasks = data.tasks()
    for cluster, (start, end) in enumerate(zip(starts.tolist(), ends.tolist(), strict=True)):
        members = order[start:end]
        avg = float(avg_distance[cluster])
        size = end - start
        metrics = {"avg_distance": avg, "cluster_size": float(size)}
        if bool(sampled[cluster]):
            metrics["avg_distance_sampled"] = 1.0
        found.patterns.append(
            CracklePattern(
                PatternKind.CLUSTERING,
                f"{size} tasks clustered together in metric space (avg distance: {avg:.3f})",
                tuple(all_tasks[k] for k in members.tolist()),
                1.0 - min(avg / threshold, 1.0),
                metrics,
            )
        )
    return found


DETECTOR = Detector(
    "clustering",
    PatternKind.CLUSTERING,
    _params,
    _findings,
    applies=lambda data: data.task_count >= 2 and len(data.names) > 0,
)


class ClusteringPattern:
    """Clustering as connected components of tasks closer than the threshold."""

    @staticmethod
    def detect(
        labels: Sequence[str], metrics: Sequence[Any], threshold: float
    ) -> list[CracklePattern]:
        data = DetectionData.from_records(labels, metrics)
        return detect_with(DETECTOR, data, {"threshold": threshold})

    @staticmethod
    def metric_distance(a: MetricsLike, b: MetricsLike) -> float:
        """Euclidean distance over the metrics both have; ``inf`` when they share none.
        ``a`` and ``b`` are mappings or ``(name, value)`` pairs."""
        a, b = metric_dict(a), metric_dict(b)
        shared = [name for name in a if name in b]
        if not shared:
            return math.inf
        return math.sqrt(sum((float(a[name]) - float(b[name])) ** 2 for name in shared))
