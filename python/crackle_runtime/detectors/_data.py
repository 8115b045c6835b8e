"""What every detector reads: the task labels, the metric names and the (metrics, tasks)
matrix, seen through a selection of its rows (no copy)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from crackle_runtime import _backend
from crackle_runtime._store import MetricStore, validate_metrics
from crackle_runtime.patterns import TaskLabels

__all__ = ["DetectionData"]


#: Metrics with a |value| above this are prewhitened in units of their largest |value|.
_PREWHITEN_LARGEST = 1e100


@dataclass
class DetectionData:
    """Labels, the names of the selected metrics, and the full matrix with the rows that
    hold them (``rows`` None: every row). Kernels read the rows in place. ``labels`` are
    only ever appended to (a kiln's); the first ``task_count`` are these tasks'.
    ``counts``, when known (a mergeable state's), is the number of present values of each
    row of ``matrix``: a row present on every task needs no scan for its mask."""

    labels: Sequence[str]
    names: Sequence[str]
    matrix: NDArray[np.float64]
    rows: NDArray[np.int64] | None = None
    counts: NDArray[np.int64] | None = field(default=None, repr=False)
    _present: dict[int, NDArray[np.bool_]] = field(default_factory=dict, repr=False)

    @property
    def task_count(self) -> int:
        return int(self.matrix.shape[1])

    def column(self, metric: int) -> NDArray[np.float64]:
        """The values of the selected metric ``metric`` (a view)."""
        row = metric if self.rows is None else int(self.rows[metric])
        return np.asarray(self.matrix[row], dtype=np.float64)

    @property
    def columns(self) -> NDArray[np.float64]:
        """The selected rows as one array (a view when every row is selected)."""
        return self.matrix if self.rows is None else self.matrix[self.rows]

    def present(self, metric: int) -> NDArray[np.bool_]:
        """Mask of the tasks having ``metric`` (cached)."""
        mask = self._present.get(metric)
        if mask is None:
            row = metric if self.rows is None else int(self.rows[metric])
            if self.counts is not None and int(self.counts[row]) == self.task_count:
                mask = np.ones(self.task_count, dtype=bool)
            else:
                mask = ~np.isnan(self.column(metric))
            self._present[metric] = mask
        return mask

    def complete(self) -> NDArray[np.bool_] | None:
        """Per selected metric, whether ``counts`` shows it present on every task (None
        when the counts are not known): a kernel need not read it to find gaps."""
        if self.counts is None:
            return None
        counts = self.counts if self.rows is None else self.counts[self.rows]
        return np.asarray(counts == self.task_count, dtype=np.bool_)

    def tasks(self, mask: NDArray[np.bool_] | None = None) -> TaskLabels:
        """Labels of the tasks in ``mask`` (all when None) in recording order, read when
        first used (:class:`TaskLabels`)."""
        n = self.task_count
        if mask is None or bool(mask.all()):
            return TaskLabels(self.labels, n)
        # one byte per task selects the labels (no object array of every label)
        chosen = np.ascontiguousarray(mask, dtype=np.bool_).view(np.uint8).tobytes()
        return TaskLabels(self.labels, n, chosen)

    def pair_tasks(self, i: int, j: int) -> TaskLabels:
        """Labels of the tasks having both metrics ``i`` and ``j``."""
        return self.tasks(self.present(i) & self.present(j))

    def select(self, keep: NDArray[np.bool_]) -> DetectionData:
        """The same tasks with only the selected metrics in ``keep`` (no copy)."""
        if bool(keep.all()):
            return self
        chosen = np.flatnonzero(keep)
        rows = chosen if self.rows is None else self.rows[chosen]
        return DetectionData(
            self.labels,
            [self.names[k] for k in chosen.tolist()],
            self.matrix,
            np.asarray(rows, dtype=np.int64),
            self.counts,
        )

    def prewhitened(self) -> DetectionData:
        """The same tasks and metrics with each selected metric replaced by its AR(p)
        prewhitened series (Box & Jenkins 1970; Haugh 1976; the backend's ``prewhiten``):
        over its present values in task order, the innovations of its own Yule–Walker AR
        model with the order chosen by AIC (at most min(12, n // 5)), at the task of each
        value; NaN where absent, and for a metric with fewer than 3 values. An
        autocorrelated series, a random walk, a shared trend, step or regular cycle (a daily
        cycle) then has (nearly) white residuals, so a permutation test of dependence or
        flow on them is valid (SPEC §12); a complete metric stays complete. A new matrix of
        the selected rows."""
        columns, rows = self.matrix, self.rows
        # Values near the largest float overflow the AR fit's sums of squares: such a
        # metric is prewhitened in units of its largest |value| (the test on the residuals
        # reads their ranks or bins, whatever the unit). Row by row: no copy of the matrix.
        largest = np.array(
            [
                max(np.nanmax(row, initial=-np.inf), -np.nanmin(row, initial=np.inf))
                for row in (self.column(k) for k in range(len(self.names)))
            ]
        )
        huge = largest > _PREWHITEN_LARGEST
        if huge.any():
            columns, rows = self.columns.copy(), None
            columns[huge] /= largest[huge, None]
        residuals = _backend.kernels().prewhiten(columns, rows)
        return DetectionData(self.labels, list(self.names), np.asarray(residuals))

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
