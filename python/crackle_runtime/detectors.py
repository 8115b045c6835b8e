"""The seed's four detectors: kernels (Rust or NumPy) compute, this module words the patterns.

Every detector reads one ``(metrics, tasks)`` float64 matrix (NaN = absent). The kernels
return per-metric or per-pair statistics with a ``detected`` flag; here they become
:class:`CracklePattern` values with the seed's descriptions.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from crackle_runtime import _backend
from crackle_runtime._store import MetricStore, validate_metrics
from crackle_runtime.patterns import CracklePattern, PatternKind

__all__ = [
    "ClusteringPattern",
    "ConservationPattern",
    "CorrelationPattern",
    "DetectionData",
    "PhaseTransitionPattern",
]


@dataclass
class DetectionData:
    """What every detector reads: labels, metric names and the column matrix."""

    labels: Sequence[str]
    names: Sequence[str]
    columns: NDArray[np.float64]
    _label_array: NDArray[Any] | None = field(default=None, repr=False)
    _all: tuple[str, ...] | None = field(default=None, repr=False)
    _present: dict[int, NDArray[np.bool_]] = field(default_factory=dict, repr=False)

    @property
    def task_count(self) -> int:
        return int(self.columns.shape[1])

    def present(self, metric: int) -> NDArray[np.bool_]:
        """Mask of the tasks having ``metric`` (cached)."""
        mask = self._present.get(metric)
        if mask is None:
            mask = ~np.isnan(self.columns[metric])
            self._present[metric] = mask
        return mask

    def tasks(self, mask: NDArray[np.bool_] | None = None) -> tuple[str, ...]:
        """Labels of the tasks in ``mask`` (all when None) in recording order."""
        if self._all is None:
            self._all = tuple(self.labels)
        if mask is None or bool(mask.all()):
            return self._all
        if self._label_array is None:
            self._label_array = np.array(self._all, dtype=object)
        return tuple(self._label_array[mask].tolist())

    def select(self, keep: NDArray[np.bool_]) -> DetectionData:
        """The same tasks with only the metrics in ``keep`` (no copy when all are kept)."""
        if bool(keep.all()):
            return self
        rows = np.flatnonzero(keep)
        return DetectionData(
            self.labels,
            [self.names[k] for k in rows.tolist()],
            self.columns[rows],
            self._label_array,
            self._all,
        )

    def positions(self, mask: NDArray[np.bool_]) -> NDArray[np.intp]:
        return np.flatnonzero(mask)

    @classmethod
    def from_records(
        cls, labels: Sequence[str], metrics: Sequence[Mapping[str, Any] | Iterable[Any]]
    ) -> DetectionData:
        """Validate per-task metric mappings (or pair lists) into a column matrix."""
        if len(labels) != len(metrics):
            raise ValueError(
                f"labels and metrics must have the same length ({len(labels)} != {len(metrics)})"
            )
        store = MetricStore()
        for label, record in zip(labels, metrics, strict=True):
            mapping = record if isinstance(record, Mapping) else dict(record)
            names, values = validate_metrics(str(label), mapping, store.known_keys)
            store.append(str(label), names, values, 0.0, 0.0)
        columns = store.columns()  # flushes: names are known after this
        return cls(list(store.labels), list(store.names), columns)


def _involved_pair(data: DetectionData, i: int, j: int) -> tuple[str, ...]:
    return data.tasks(data.present(i) & data.present(j))


# --- clustering -------------------------------------------------------------------------
def detect_clustering(
    data: DetectionData, threshold: float, deadline: float = math.inf
) -> list[CracklePattern]:
    if data.task_count < 2 or not len(data.names):
        return []
    labels, avg_distance, sampled = _backend.kernels().cluster_components(
        data.columns, float(threshold), float(deadline)
    )
    labels = np.asarray(labels)
    patterns = []
    if len(avg_distance):
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
            patterns.append(
                CracklePattern(
                    PatternKind.CLUSTERING,
                    f"{size} tasks clustered together in metric space (avg distance: {avg:.3f})",
                    tuple(all_tasks[k] for k in members.tolist()),
                    1.0 - min(avg / threshold, 1.0),
                    metrics,
                )
            )
    return patterns


# --- phase transitions ------------------------------------------------------------------
def detect_phase_transitions(data: DetectionData, sensitivity: float) -> list[CracklePattern]:
    if not len(data.names):
        return []
    stats = np.asarray(_backend.kernels().phase_transition_stats(data.columns, float(sensitivity)))
    patterns = []
    for metric in np.flatnonzero(stats[:, 8] > 0).tolist():
        _count, first, second, _mean, shift, p_value, change, delta, _ = stats[metric].tolist()
        name = data.names[metric]
        mask = data.present(metric)
        change_label = data.labels[int(data.positions(mask)[int(change)])]
        patterns.append(
            CracklePattern(
                PatternKind.PHASE_TRANSITION,
                f"metric '{name}' shifted by {shift * 100:.1f}% between first and second "
                "half of tasks",
                data.tasks(mask),
                min(shift / sensitivity, 1.0) if sensitivity > 0 else 1.0,
                {
                    "shift_magnitude": shift,
                    "first_half_avg": first,
                    "second_half_avg": second,
                    "delta": delta,
                    "change_index": change,
                    "p_value": p_value,
                },
                {"metric": name, "change_label": change_label},
            )
        )
    return patterns


# --- conservation -----------------------------------------------------------------------
def detect_conservation(data: DetectionData, tolerance: float) -> list[CracklePattern]:
    if not len(data.names):
        return []
    stats = np.asarray(_backend.kernels().conservation_stats(data.columns, float(tolerance)))
    patterns = []
    for metric in np.flatnonzero(stats[:, 6] > 0).tolist():
        count, total, _mean, std, cv, _counter, _ = stats[metric].tolist()
        name = data.names[metric]
        patterns.append(
            CracklePattern(
                PatternKind.CONSERVATION,
                f"metric '{name}' is conserved across {int(count)} tasks "
                f"(sum: {total:.3f}, std_dev: {std:.3f})",
                data.tasks(data.present(metric)),
                1.0 - min(cv, 1.0),
                {"total": total, "std_dev": std, "coefficient_of_variation": cv},
                {"metric": name},
            )
        )
    return patterns


def counter_mask(data: DetectionData) -> NDArray[np.bool_]:
    """Which metrics are ids or counters (SPEC §6): they take no part in laws."""
    stats = np.asarray(_backend.kernels().conservation_stats(data.columns, 0.0))
    return stats[:, 5] > 0


# --- correlation ------------------------------------------------------------------------
def detect_correlations(data: DetectionData, threshold: float) -> list[CracklePattern]:
    if len(data.names) < 2:
        return []
    stats = np.asarray(_backend.kernels().correlation_stats(data.columns, float(threshold)))
    patterns = []
    for row in stats[stats[:, 5] > 0].tolist():
        i, j, n, r, p_value, _ = row
        a, b = data.names[int(i)], data.names[int(j)]
        sign = "positive" if r > 0 else "negative"
        patterns.append(
            CracklePattern(
                PatternKind.CORRELATION,
                f"strong {sign} correlation between '{a}' and '{b}' (r = {r:.3f})",
                _involved_pair(data, int(i), int(j)),
                abs(r),
                {"correlation": r, "n": n, "p_value": p_value},
                {"metrics": [a, b]},
            )
        )
    return patterns


# --- the seed's public detector classes -------------------------------------------------
class ClusteringPattern:
    """Clustering as connected components of tasks closer than the threshold."""

    @staticmethod
    def detect(
        labels: Sequence[str], metrics: Sequence[Any], threshold: float
    ) -> list[CracklePattern]:
        return detect_clustering(DetectionData.from_records(labels, metrics), threshold)

    @staticmethod
    def metric_distance(a: Mapping[str, float], b: Mapping[str, float]) -> float:
        """Euclidean distance over the metrics both have; ``inf`` when they share none."""
        shared = [name for name in a if name in b]
        if not shared:
            return math.inf
        return math.sqrt(sum((float(a[name]) - float(b[name])) ** 2 for name in shared))


class PhaseTransitionPattern:
    """A metric whose mean moved between the first and second half of the tasks."""

    @staticmethod
    def detect(
        labels: Sequence[str], metrics: Sequence[Any], threshold: float
    ) -> list[CracklePattern]:
        return detect_phase_transitions(DetectionData.from_records(labels, metrics), threshold)


class ConservationPattern:
    """A metric that stays (nearly) constant across tasks; counters excluded."""

    @staticmethod
    def detect(
        labels: Sequence[str], metrics: Sequence[Any], threshold: float
    ) -> list[CracklePattern]:
        return detect_conservation(DetectionData.from_records(labels, metrics), threshold)


class CorrelationPattern:
    """Pairs of metrics with a strong, significant Pearson correlation."""

    @staticmethod
    def detect(
        labels: Sequence[str], metrics: Sequence[Any], threshold: float
    ) -> list[CracklePattern]:
        return detect_correlations(DetectionData.from_records(labels, metrics), threshold)

    @staticmethod
    def pearson_correlation(pairs: Iterable[tuple[float, float]]) -> float:
        """Pearson r of ``(x, y)`` pairs, computed stably; 0 with zero variance."""
        array = np.asarray(list(pairs), dtype=np.float64).reshape(-1, 2)
        if not np.isfinite(array).all():
            raise ValueError("pairs must contain finite numbers")
        stats = _backend.kernels().correlation_stats(np.ascontiguousarray(array.T), 1.0)
        return float(np.asarray(stats)[0, 3])
