"""The columnar metric store behind a kiln.

One float64 row per metric name (first-seen order) in one 2-D buffer ``(metrics, tasks)``;
NaN means the task lacks that metric. ``Kiln.fire_all`` appends whole chunks (one flat
value buffer per chunk, from the backend's ``fire_chunk``); single tasks go to a pending
batch (one small tuple per task) that is flushed into the buffer in bulk. Cooling hands
Rust one buffer with no per-value Python objects.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from numbers import Real
from typing import Any

import numpy as np
from numpy.typing import NDArray

from crackle_runtime.errors import InvalidMetricError

__all__ = ["MetricStore", "validate_metrics"]

_FLUSH_EVERY = 65536


def _bad_value(label: str, name: object, value: object) -> InvalidMetricError:
    return InvalidMetricError(
        f"task {label!r}: metric {name!r} must be a finite real number, got {value!r}",
        task=label,
        metric=str(name),
    )


_EXACT_FLOATS = frozenset({float, np.float64})


def _is_real(value: object) -> bool:
    return isinstance(value, Real | np.bool_ | np.integer | np.floating)


def validate_metrics(
    label: str, metrics: Mapping[str, Any], known_keys: set[tuple[str, ...]]
) -> tuple[tuple[str, ...], list[Any]]:
    """Check names and values of one task's metrics; return ``(names, values)``.

    Raises InvalidMetricError naming the task and the metric. The values returned are
    floats. The fast path takes values that are all exactly ``float`` (or ``numpy.float64``):
    their sum is finite only when every one is (an inf or NaN makes any float sum
    non-finite). Anything else is checked and converted one value at a time.
    """
    names = tuple(metrics)
    values = list(metrics.values())
    if names not in known_keys:
        for name in names:
            if not isinstance(name, str) or not name:
                raise InvalidMetricError(
                    f"task {label!r}: metric names must be non-empty strings, got {name!r}",
                    task=label,
                    metric=str(name),
                )
        known_keys.add(names)
    kinds = set(map(type, values))
    if kinds <= _EXACT_FLOATS:
        if float in kinds and len(kinds) == 1:
            total = sum(values)
        else:
            with np.errstate(over="ignore"):  # numpy.float64 sums may overflow to inf
                total = sum(values)
        if math.isfinite(total):
            return names, values
    numbers = []
    for name, value in zip(names, values, strict=True):
        if not _is_real(value):
            raise _bad_value(label, name, value)
        try:
            number = float(value)
        except (TypeError, OverflowError, ValueError):
            raise _bad_value(label, name, value) from None
        if not math.isfinite(number):
            raise _bad_value(label, name, value)
        numbers.append(number)
    return names, numbers


class MetricStore:
    """Columnar storage of metric values, labels and firing metadata."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.index: dict[str, int] = {}
        self.labels: list[str] = []
        self._data: NDArray[np.float64] = np.full((0, 0), np.nan)
        self._fired_at: NDArray[np.float64] = np.empty(0)
        self._duration: NDArray[np.float64] = np.empty(0)
        self._count = 0  # tasks flushed into the buffers
        self._pending_keys: list[tuple[str, ...]] = []
        self._pending_values: list[list[Any]] = []
        self._pending_fired_at: list[float] = []
        self._pending_duration: list[float] = []
        self.known_keys: set[tuple[str, ...]] = set()

    def __len__(self) -> int:
        return len(self.labels)

    @classmethod
    def from_columns(
        cls,
        names: list[str],
        labels: list[str],
        columns: NDArray[np.float64],
        fired_at_ms: NDArray[np.float64],
        duration: NDArray[np.float64],
    ) -> MetricStore:
        """A store holding ``columns`` (``(metrics, tasks)``, NaN = absent) as its buffer."""
        store = cls()
        store.names = list(names)
        store.index = {name: row for row, name in enumerate(store.names)}
        store.labels = list(labels)
        store._data = np.ascontiguousarray(columns, dtype=np.float64)
        store._fired_at = np.ascontiguousarray(fired_at_ms, dtype=np.float64)
        store._duration = np.ascontiguousarray(duration, dtype=np.float64)
        store._count = len(store.labels)
        return store

    # --- appending ----------------------------------------------------------------------
    def append(
        self,
        label: str,
        names: tuple[str, ...],
        values: list[Any],
        fired_at_ms: float,
        duration: float,
    ) -> None:
        """Append one validated task."""
        self.labels.append(label)
        self._pending_keys.append(names)
        self._pending_values.append(values)
        self._pending_fired_at.append(fired_at_ms)
        self._pending_duration.append(duration)
        if len(self._pending_keys) >= _FLUSH_EVERY:
            self.flush()

    def append_matrix(
        self,
        values: NDArray[np.float64],
        names: Sequence[str],
        labels: Sequence[str],
        fired_at_ms: float | NDArray[np.float64],
        duration: float | NDArray[np.float64] = 0.0,
    ) -> None:
        """Append a validated ``(n, m)`` block (NaN = absent) in one copy; firing times and
        durations are one value for the block or one per task."""
        self.flush()
        rows = self._metric_rows(names)
        n = values.shape[0]
        self._reserve(self._count + n)
        self._data[rows, self._count : self._count + n] = values.T
        self._fired_at[self._count : self._count + n] = fired_at_ms
        self._duration[self._count : self._count + n] = duration
        self._count += n
        self.labels.extend(labels)

    def _metric_rows(self, names: Sequence[str]) -> list[int]:
        rows = []
        for name in names:
            row = self.index.get(name)
            if row is None:
                row = len(self.names)
                self.index[name] = row
                self.names.append(name)
            rows.append(row)
        if len(self.names) > self._data.shape[0]:
            self._grow(len(self.names), self._data.shape[1])
        return rows

    def _reserve(self, tasks: int) -> None:
        if tasks > self._data.shape[1]:
            self._grow(self._data.shape[0], max(tasks, 2 * self._data.shape[1], 1024))

    def _grow(self, metrics: int, tasks: int) -> None:
        metrics = max(metrics, self._data.shape[0])
        if metrics > self._data.shape[0]:
            metrics = max(metrics, 2 * self._data.shape[0], 8)
        data = np.full((metrics, tasks), np.nan)
        old_m, old_n = self._data.shape
        data[:old_m, : min(old_n, tasks)] = self._data[:, : min(old_n, tasks)]
        fired_at, duration = np.zeros(tasks), np.zeros(tasks)
        fired_at[: self._fired_at.shape[0]] = self._fired_at
        duration[: self._duration.shape[0]] = self._duration
        # one statement swaps all three (no interrupt can land between the assignments),
        # so a Ctrl-C while growing leaves the old buffers or the new ones, never a mix
        self._data, self._fired_at, self._duration = data, fired_at, duration

    def append_chunk(
        self,
        labels: list[str],
        layouts: list[tuple[str, ...]],
        layout_of: NDArray[np.int64],
        values: NDArray[np.float64],
        fired_at_ms: NDArray[np.float64],
        duration: NDArray[np.float64],
    ) -> None:
        """Append a chunk of validated tasks (a backend's ``fire_chunk``): ``values`` holds
        every task's values one task after another, in the order of its layout
        ``layouts[layout_of[task]]``. A layout no task uses registers no metric.

        Safe to run again after an interruption (KeyboardInterrupt): the chunk is committed
        by the last two statements, and until the labels are extended a second run writes
        the same cells again."""
        n = len(labels)
        if not n:
            return
        self.flush()
        start = len(self.labels)  # == self._count once flushed
        self._reserve(start + n)
        if len(layouts) == 1:
            if layouts[0]:
                rows = self._metric_rows(layouts[0])
                self._data[rows, start : start + n] = values.reshape(n, len(layouts[0])).T
        else:
            # one scatter of every value to (its metric's row, its task's column)
            used = np.zeros(len(layouts), dtype=bool)
            used[layout_of] = True
            layout_rows: list[int] = []
            for names, in_use in zip(layouts, used.tolist(), strict=True):
                layout_rows += self._metric_rows(names) if in_use else [0] * len(names)
            widths = np.array([len(names) for names in layouts], dtype=np.int64)
            first_row = np.cumsum(widths) - widths
            task_widths = widths[layout_of]
            task_offsets = np.cumsum(task_widths) - task_widths
            value_task = np.repeat(np.arange(n), task_widths)
            within = np.arange(values.size) - task_offsets[value_task]
            value_rows = np.asarray(layout_rows, dtype=np.int64)[
                first_row[layout_of][value_task] + within
            ]
            self._data[value_rows, start + value_task] = values
        self._fired_at[start : start + n] = fired_at_ms
        self._duration[start : start + n] = duration
        self._count = start + n
        self.labels.extend(labels)

    def flush(self) -> None:
        """Move the pending tasks into the column buffers, grouped by their name tuples."""
        pending = len(self._pending_keys)
        if not pending:
            return
        start = self._count
        self._reserve(start + pending)
        keys = self._pending_keys
        groups: dict[tuple[str, ...], list[int]] = {}
        # list.count compares by identity first, so the common case costs one pass; an
        # identity test of the first and last keys alone is not enough (the empty tuple
        # is a singleton, and other tasks may sit between two equal keys)
        if keys.count(keys[0]) == pending:
            groups[keys[0]] = []  # the common case: every task has the same names
        else:
            for position, key in enumerate(keys):
                groups.setdefault(key, []).append(position)
        for key, positions in groups.items():
            if not key:
                continue
            rows = self._metric_rows(key)
            if positions:
                block = np.array([self._pending_values[p] for p in positions], dtype=np.float64)
                columns = np.asarray(positions) + start
                self._data[np.ix_(np.asarray(rows), columns)] = block.T
            else:
                # one flat pass over the values (much cheaper than np.array of nested lists)
                block = np.fromiter(
                    itertools.chain.from_iterable(self._pending_values),
                    dtype=np.float64,
                    count=pending * len(key),
                ).reshape(pending, len(key))
                self._data[rows, start : start + pending] = block.T
        self._fired_at[start : start + pending] = self._pending_fired_at
        self._duration[start : start + pending] = self._pending_duration
        self._count += pending
        self._pending_keys.clear()
        self._pending_values.clear()
        self._pending_fired_at.clear()
        self._pending_duration.clear()

    # --- reading ------------------------------------------------------------------------
    def columns(self) -> NDArray[np.float64]:
        """The ``(metrics, tasks)`` view of the values (no copy); NaN = absent."""
        self.flush()
        return self._data[: len(self.names), : self._count]

    def fired_at(self) -> NDArray[np.float64]:
        self.flush()
        return self._fired_at[: self._count]

    def durations(self) -> NDArray[np.float64]:
        self.flush()
        return self._duration[: self._count]

    def metric_dicts(self) -> list[dict[str, float]]:
        """Every task's metrics as a ``{name: value}`` dict (absent metrics left out), built
        from one conversion of the matrix."""
        names = self.names
        return [
            {name: value for name, value in zip(names, row, strict=True) if value == value}
            for row in self.columns().T.tolist()
        ]
