"""The kiln: fire tasks, record their metrics column by column, cool to find patterns."""

from __future__ import annotations

import datetime as _dt
import functools
import itertools
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

from crackle_runtime import _backend, _optional, _persist, detectors, info
from crackle_runtime._store import MetricStore, validate_metrics
from crackle_runtime.added import run_added
from crackle_runtime.errors import (
    CoolingTimeoutError,
    CrackleError,
    InvalidMetricError,
    KilnCooledError,
    TaskPanickedError,
)
from crackle_runtime.patterns import DETECTOR_ORDER, CracklePattern, PatternKind
from crackle_runtime.profile import ThermalProfile
from crackle_runtime.report import PatternReport
from crackle_runtime.task import TaskOutput, fire_function, fixed_label, overrides_cool, task_label

__all__ = ["Kiln", "MetricMatrix", "TaskEntry", "TaskMetadata", "Timestamp"]

log = logging.getLogger("crackle_runtime")


@functools.total_ordering
class Timestamp:
    """Milliseconds since the Unix epoch."""

    __slots__ = ("_millis",)

    def __init__(self, millis: float) -> None:
        self._millis = float(millis)

    @classmethod
    def now(cls) -> Timestamp:
        return cls(time.time() * 1000.0)

    @classmethod
    def from_millis(cls, millis: float) -> Timestamp:
        return cls(millis)

    def as_millis(self) -> float:
        return self._millis

    def elapsed(self) -> float:
        """Seconds since this timestamp."""
        return time.time() - self._millis / 1000.0

    def to_datetime(self) -> _dt.datetime:
        return _dt.datetime.fromtimestamp(self._millis / 1000.0, tz=_dt.UTC)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Timestamp):
            return NotImplemented
        return self._millis == other._millis

    def __lt__(self, other: Timestamp) -> bool:
        if not isinstance(other, Timestamp):
            return NotImplemented
        return self._millis < other._millis

    def __hash__(self) -> int:
        return hash(self._millis)

    def __repr__(self) -> str:
        return f"Timestamp({self._millis!r})"


@dataclass(frozen=True)
class TaskMetadata:
    label: str
    fired_at: Timestamp
    cooled_at: Timestamp | None
    fire_duration: float


@dataclass(frozen=True)
class TaskEntry:
    """One recorded task: firing metrics, metrics returned by its cool hook, metadata."""

    label: str
    metrics: dict[str, float]
    cooled_metrics: dict[str, float]
    metadata: TaskMetadata

    def all_metrics(self) -> dict[str, float]:
        """Firing metrics with cooled metrics of the same name overriding them."""
        return {**self.metrics, **self.cooled_metrics}


class MetricMatrix(NamedTuple):
    names: list[str]
    values: NDArray[np.float64]


@dataclass
class _Hook:
    task: object
    output: TaskOutput


@dataclass
class _Cooled:
    report: PatternReport
    cooled_at: Timestamp
    overrides: dict[int, dict[str, float]] = field(default_factory=dict)


def _fire_timed(task: object) -> tuple[Any, float, float]:
    """Fire one task: ``(output, fired_at_ms, duration_s)`` (module level: picklable)."""
    fired_at = time.time() * 1000.0
    start = time.perf_counter()
    output = fire_function(task)()
    return output, fired_at, time.perf_counter() - start


def _as_output(label: str, output: Any) -> TaskOutput:
    if isinstance(output, TaskOutput):
        return output
    if hasattr(output, "metrics") and isinstance(output.metrics, Mapping):
        return output  # type: ignore[no-any-return]
    raise TaskPanickedError(
        label, f"task {label!r} returned {type(output).__name__}, expected a TaskOutput"
    )


_CHUNK = 8192  # at most this many tasks per fire_chunk call (one columnar append each)
_CHUNK_SECONDS = 0.2  # and at most this long, so a progress bar moves with slow tasks


class _Recorder:
    """The Python side of the backends' ``fire_chunk``: everything beyond the common case
    (a TaskOutput whose metrics are a dict of str to float/int) calls back into these."""

    __slots__ = ("known_keys",)
    output_type = TaskOutput
    float64_type = np.float64

    def __init__(self, known_keys: set[tuple[str, ...]]) -> None:
        self.known_keys = known_keys

    @staticmethod
    def classify(task: object) -> tuple[str | None, bool]:
        """(the label every task of this class has, or None; whether it has a cool hook)."""
        return (task_label(task) if fixed_label(type(task)) else None), overrides_cool(task)

    label_of = staticmethod(task_label)
    fire_function = staticmethod(fire_function)

    def slow_record(self, label: str, output: Any) -> tuple[Any, tuple[str, ...], list[Any]]:
        if type(output) is not TaskOutput:
            output = _as_output(label, output)
        names, values = validate_metrics(label, output.metrics, self.known_keys)
        return output, names, values


class Kiln:
    """Fires tasks, records their metrics, and cools to find cross-task patterns."""

    def __init__(self, profile: ThermalProfile | None = None) -> None:
        if profile is None:
            profile = ThermalProfile.default()
        if not isinstance(profile, ThermalProfile):
            raise TypeError(f"profile must be a ThermalProfile, got {type(profile).__name__}")
        self._profile = profile
        self._lock = threading.RLock()
        self._firing = False  # fire_all is running (a task may not call back into the kiln)
        self._reset_state()

    def _reset_state(self) -> None:
        self._store = MetricStore()
        self._hooks: dict[int, _Hook] = {}
        self._failures: list[tuple[str, TaskPanickedError]] = []
        self._cooled: _Cooled | None = None

    # --- properties ---------------------------------------------------------------------
    @property
    def profile(self) -> ThermalProfile:
        return self._profile

    @property
    def task_count(self) -> int:
        return len(self._store)

    def __len__(self) -> int:
        return len(self._store)

    @property
    def is_cooled(self) -> bool:
        return self._cooled is not None

    @property
    def metric_names(self) -> list[str]:
        with self._lock:
            self._store.flush()
            names = list(self._store.names)
            if self._cooled is not None:
                for overrides in self._cooled.overrides.values():
                    names.extend(name for name in overrides if name not in names)
            return names

    @property
    def labels(self) -> list[str]:
        return list(self._store.labels)

    @property
    def failures(self) -> list[tuple[str, TaskPanickedError]]:
        return list(self._failures)

    @property
    def entries(self) -> list[TaskEntry]:
        with self._lock:
            store = self._store
            fired = store.fired_at().tolist()
            durations = store.durations().tolist()
            cooled_at = self._cooled.cooled_at if self._cooled else None
            overrides = self._cooled.overrides if self._cooled else {}
            entries = []
            all_metrics = store.metric_dicts()
            for position, (label, metrics) in enumerate(
                zip(store.labels, all_metrics, strict=True)
            ):
                entries.append(
                    TaskEntry(
                        label,
                        metrics,
                        dict(overrides.get(position, {})),
                        TaskMetadata(
                            label, Timestamp(fired[position]), cooled_at, durations[position]
                        ),
                    )
                )
            return entries

    # --- recording ----------------------------------------------------------------------
    def _check_not_firing(self, action: str) -> None:
        if self._firing:
            raise CrackleError(
                f"{action} was called from inside a task that fire_all() is firing; record or "
                "cool after fire_all() returns"
            )

    def _check_open(self) -> None:
        self._check_not_firing("recording")
        if self._cooled is not None:
            raise KilnCooledError("the kiln has been cooled; call reset() to record again")

    def _record(
        self,
        label: str,
        output: TaskOutput,
        fired_at: float,
        duration: float,
        task: object | None,
    ) -> None:
        names, values = validate_metrics(label, output.metrics, self._store.known_keys)
        position = len(self._store)
        self._store.append(label, names, values, fired_at, duration)
        if task is not None and overrides_cool(task):
            self._hooks[position] = _Hook(task, output)

    def fire_task(self, task: object) -> TaskOutput:
        """Fire ``task`` without recording it."""
        label = task_label(task)
        try:
            output = fire_function(task)()
        except Exception as exc:
            raise TaskPanickedError(label) from exc
        return _as_output(label, output)

    def fire_and_record(self, task: object) -> TaskOutput:
        """Fire ``task``, time it and record its metrics; returns its output."""
        with self._lock:
            self._check_open()
            label = task_label(task)
            fire = fire_function(task)
            fired_at = time.time() * 1000.0
            start = time.perf_counter()
            try:
                output = fire()
            except Exception as exc:
                raise TaskPanickedError(label) from exc
            duration = time.perf_counter() - start
            output = _as_output(label, output)
            self._record(label, output, fired_at, duration, task)
            return output

    def fire_all(
        self,
        tasks: Iterable[object],
        executor: Executor | None = None,
        progress: bool = False,
        on_error: Literal["raise", "skip"] = "raise",
    ) -> list[TaskOutput]:
        """Fire every task and record the results in submission order.

        ``on_error="raise"`` stops at the first failure (earlier tasks stay recorded);
        ``"skip"`` records every success and lists failures in ``kiln.failures``.
        ``executor`` is any ``concurrent.futures.Executor``; at most a bounded number of
        tasks are in flight.
        """
        if on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
        with self._lock:
            self._check_open()
            bar = _progress_bar(tasks, progress)
            self._firing = True
            try:
                if executor is None:
                    return self._fire_serial(tasks, on_error, bar)
                return self._fire_executor(tasks, executor, on_error, bar)
            finally:
                self._firing = False
                if bar is not None:
                    bar.close()

    def _fire_serial(self, tasks: Iterable[object], on_error: str, bar: Any) -> list[TaskOutput]:
        """Fire in chunks through the backend's ``fire_chunk`` and store each chunk in one
        columnar append; a chunk that stops on an error is stored before raising."""
        outputs: list[TaskOutput] = []
        store = self._store
        recorder = _Recorder(store.known_keys)
        fire_chunk = _backend.kernels().fire_chunk
        iterator = iter(tasks)
        skip = on_error == "skip"
        while True:
            chunk = fire_chunk(iterator, _CHUNK, skip, recorder, _CHUNK_SECONDS)
            (count, done, labels, fired, layouts, layout_of, values, fired_at, duration, hooks,
             failures, stop) = chunk  # fmt: skip
            base = len(store)
            try:
                store.append_chunk(labels, layouts, layout_of, values, fired_at, duration)
            except BaseException:
                # interrupted while storing (Ctrl-C): what was fired is stored, then raised
                if len(store) == base:
                    store.append_chunk(labels, layouts, layout_of, values, fired_at, duration)
                raise
            for index, task, output in hooks:
                self._hooks[base + index] = _Hook(task, output)
            for label, exc in failures:
                failure = TaskPanickedError(label)
                failure.__cause__ = exc
                self._failures.append((label, failure))
            outputs.extend(fired)
            if bar is not None:
                bar.update(count)
            if stop is not None:
                label, exc, task_failure = stop
                if task_failure:
                    raise TaskPanickedError(label) from exc
                raise exc
            if done:
                return outputs

    def _fire_executor(
        self, tasks: Iterable[object], executor: Executor, on_error: str, bar: Any
    ) -> list[TaskOutput]:
        outputs: list[TaskOutput] = []
        limit = 4 * (getattr(executor, "_max_workers", None) or 4)
        in_flight: deque[tuple[object, str, Future[tuple[Any, float, float]]]] = deque()
        iterator = iter(tasks)

        def collect(task: object, label: str, future: Future[tuple[Any, float, float]]) -> None:
            try:
                output, fired_at, duration = future.result()
            except Exception as exc:
                failure = TaskPanickedError(label)
                failure.__cause__ = exc
                if on_error == "raise":
                    raise failure from exc
                self._failures.append((label, failure))
            else:
                output = _as_output(label, output)
                self._record(label, output, fired_at, duration, task)
                outputs.append(output)
            if bar is not None:
                bar.update(1)

        try:
            for task in iterator:
                label = task_label(task)
                in_flight.append((task, label, executor.submit(_fire_timed, task)))
                if len(in_flight) >= limit:
                    collect(*in_flight.popleft())
            while in_flight:
                collect(*in_flight.popleft())
        finally:
            for _, _, future in in_flight:
                future.cancel()
        return outputs

    def add_entry(self, label: str, metrics: Mapping[str, Any] | Iterable[Any]) -> None:
        """Record precomputed metrics for a task labelled ``label``."""
        with self._lock:
            self._check_open()
            mapping = metrics if isinstance(metrics, Mapping) else dict(metrics)
            names, values = validate_metrics(str(label), mapping, self._store.known_keys)
            self._store.append(str(label), names, values, time.time() * 1000.0, 0.0)

    def add_matrix(
        self,
        values: ArrayLike,
        names: Sequence[str],
        labels: Sequence[str] | None = None,
    ) -> None:
        """Record many tasks at once: ``values`` is ``(n, m)``, NaN where a task lacks a
        metric; labels default to ``task-<index>``. All or nothing."""
        with self._lock:
            self._check_open()
            matrix = np.asarray(values)
            if matrix.dtype.kind not in "biuf":
                raise InvalidMetricError(f"values must be numeric, got dtype {matrix.dtype}")
            matrix = np.asarray(matrix, dtype=np.float64)
            if matrix.ndim != 2:
                raise InvalidMetricError(f"values must be 2-D (tasks, metrics), got {matrix.shape}")
            names = list(names)
            if matrix.shape[1] != len(names):
                raise InvalidMetricError(
                    f"values has {matrix.shape[1]} columns but {len(names)} names were given"
                )
            for name in names:
                if not isinstance(name, str) or not name:
                    raise InvalidMetricError(
                        f"metric names must be non-empty strings, got {name!r}", metric=str(name)
                    )
            if len(set(names)) != len(names):
                raise InvalidMetricError("metric names must be unique")
            start = len(self._store)
            if labels is None:
                label_list = [f"task-{start + i}" for i in range(matrix.shape[0])]
            else:
                label_list = [str(label) for label in labels]
                if len(label_list) != matrix.shape[0]:
                    raise InvalidMetricError(
                        f"labels has {len(label_list)} entries but values has "
                        f"{matrix.shape[0]} rows"
                    )
            infinite = np.isinf(matrix)
            if infinite.any():
                row, column = np.argwhere(infinite)[0].tolist()
                raise InvalidMetricError(
                    f"task {label_list[row]!r}: metric {names[column]!r} must be a finite real "
                    f"number, got {matrix[row, column]!r}",
                    task=label_list[row],
                    metric=names[column],
                )
            self._store.append_matrix(matrix, names, label_list, time.time() * 1000.0)

    # --- the data -----------------------------------------------------------------------
    def metric_matrix(self) -> tuple[list[str], list[str], NDArray[np.float64]]:
        """``(labels, names, values)`` with ``values`` a ``(tasks, metrics)`` float64 array,
        NaN where a task lacks a metric (cooled metrics override firing ones once cooled)."""
        with self._lock:
            names, columns = self._detection_columns()
            return list(self._store.labels), names, np.ascontiguousarray(columns.T)

    def _detection_columns(self) -> tuple[list[str], NDArray[np.float64]]:
        """The matrix detectors read: a view of the store, or a copy with cool overrides."""
        columns = self._store.columns()
        names = list(self._store.names)
        overrides = self._cooled.overrides if self._cooled else {}
        if not overrides:
            return names, columns
        extra: list[str] = []
        for values in overrides.values():
            extra.extend(name for name in values if name not in names and name not in extra)
        matrix = np.full((len(names) + len(extra), columns.shape[1]), np.nan)
        matrix[: len(names)] = columns
        names += extra
        index = {name: row for row, name in enumerate(names)}
        for position, values in overrides.items():
            for name, value in values.items():
                matrix[index[name], position] = value
        return names, matrix

    def to_pandas(self) -> Any:
        """One row per task (index = labels), one column per metric, NaN where absent."""
        try:
            import pandas as pd
        except ImportError as exc:
            raise ImportError("to_pandas() needs pandas: pip install pandas") from exc
        labels, names, values = self.metric_matrix()
        return pd.DataFrame(values, index=pd.Index(labels, name="label"), columns=names)

    def to_arrow(self) -> Any:
        """The recorded tasks as a ``pyarrow.Table`` (needs pyarrow): a ``label`` column
        (``task_label``, ``task_label_2``, … when a metric already has that name) and one
        float64 column per metric, null where a task lacks it. Labels and names must be
        valid Unicode (Arrow strings are UTF-8)."""
        pa = _optional.pyarrow()
        with self._lock:
            names, columns = self._detection_columns()
            labels = list(self._store.labels)
        label_name = "label"
        suffix = 1
        while label_name in names:
            label_name = "task_label" if suffix == 1 else f"task_label_{suffix}"
            suffix += 1
        _optional.require_utf8("metric names", names)
        _optional.require_utf8("labels", labels)
        arrays = [pa.array(labels, type=pa.string())]
        arrays += [pa.array(row, type=pa.float64(), mask=np.isnan(row)) for row in columns]
        return pa.Table.from_arrays(arrays, names=[label_name, *names])

    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object:
        """The Arrow PyCapsule stream of ``to_arrow()``: ``polars.DataFrame(kiln)`` and
        ``pyarrow.table(kiln)`` read the kiln directly."""
        return self.to_arrow().__arrow_c_stream__(requested_schema)

    def plot(self, *metrics: str, ax: Any = None) -> Any:
        """Metric values against the tasks' recording order (matplotlib); returns the Axes.

        ``metrics`` names the metrics to draw (default: the first 8). With more than one,
        each is drawn as robust z-scores ((value - median) / (1.4826 MAD)) so they share an
        axis. Once the kiln is cooled, change points of phase transitions and distribution
        shifts on the drawn metrics are dashed vertical lines and outlier values are
        circled.
        """
        plt = _optional.pyplot()
        with self._lock:
            names, columns = self._detection_columns()
            report = self._cooled.report if self._cooled else None
        unknown = [name for name in metrics if name not in names]
        if unknown:
            raise ValueError(f"metrics: no recorded metric named {', '.join(map(repr, unknown))}")
        chosen = list(metrics) if metrics else names[:8]
        if ax is None:
            _, ax = plt.subplots(figsize=(10, 4))
        scaled = len(chosen) > 1
        for name in chosen:
            row = columns[names.index(name)]
            positions = np.flatnonzero(~np.isnan(row))
            values = row[positions]
            if scaled and values.size:
                median = float(np.median(values))
                spread = 1.4826 * float(np.median(np.abs(values - median)))
                values = (values - median) / (spread if spread > 0 else 1.0)
            (line,) = ax.plot(positions, values, lw=0.8, label=name)
            for pattern in report or []:
                if pattern.details.get("metric") == name and "change_index" in pattern.metrics:
                    change = positions[int(pattern.metrics["change_index"])]
                    ax.axvline(change, color=line.get_color(), ls="--", lw=1.0)
                elif pattern.kind is PatternKind.OUTLIER and name in pattern.details["metrics"]:
                    task = int(pattern.details["task_index"])
                    at = int(np.searchsorted(positions, task))
                    ax.scatter([task], [values[at]], s=60, facecolors="none", edgecolors="red")
        ax.set_xlabel("task (recording order)")
        ax.set_ylabel("robust z-score" if scaled else chosen[0] if chosen else "value")
        if chosen:
            ax.legend(loc="best", fontsize="small")
        return ax

    @classmethod
    def from_pandas(
        cls, frame: Any, label: str | None = None, profile: ThermalProfile | None = None
    ) -> Kiln:
        """A kiln holding one task per row of ``frame``; numeric columns are metrics."""
        kiln = cls(profile)
        labels = (
            [str(v) for v in frame[label].tolist()]
            if label is not None
            else [str(v) for v in frame.index.tolist()]
        )
        numeric = frame.select_dtypes(include=["number", "bool"])
        if label is not None and label in numeric.columns:
            numeric = numeric.drop(columns=[label])
        kiln.add_matrix(
            numeric.to_numpy(dtype=np.float64), [str(c) for c in numeric.columns], labels
        )
        return kiln

    # --- saving -------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the recorded tasks and the profile to one file, atomically, without pickle.

        Labels, metric names, values (bit-identical), firing times and durations round-trip
        exactly. Cool hooks, the metrics they returned, the cooled state and ``failures``
        are not saved.
        """
        from crackle_runtime import __version__

        with self._lock:
            store = self._store
            store.flush()
            saved = _persist.Saved(
                self._profile,
                list(store.names),
                list(store.labels),
                store.columns(),
                store.fired_at(),
                store.durations(),
            )
            _persist.write(path, saved, __version__)

    @classmethod
    def load(cls, path: str | os.PathLike[str], profile: ThermalProfile | None = None) -> Kiln:
        """The kiln ``save()`` wrote to ``path``, open for recording, with the saved profile
        (or ``profile``). Raises CrackleError for a truncated, corrupted, foreign or newer
        file."""
        saved = _persist.read(path)
        kiln = cls(saved.profile if profile is None else profile)
        kiln._store = MetricStore.from_columns(
            saved.names, saved.labels, saved.values, saved.fired_at, saved.duration
        )
        return kiln

    # --- cooling ------------------------------------------------------------------------
    def cool(self, on_timeout: Literal["skip", "raise"] = "skip") -> PatternReport:
        """Run every enabled detector over the recorded tasks; returns a PatternReport.

        Calls each recorded task's ``cool`` hook first; their metrics override firing
        metrics for detection. Detectors that do not finish within the profile's
        ``max_cooling_duration`` are listed in ``report.incomplete`` (or raise
        CoolingTimeoutError with ``on_timeout="raise"``). Calling ``cool()`` again returns
        the same report.
        """
        if on_timeout not in ("skip", "raise"):
            raise ValueError(f"on_timeout must be 'skip' or 'raise', got {on_timeout!r}")
        with self._lock:
            self._check_not_firing("cool()")
            if self._cooled is not None:
                return self._cooled.report
            started = time.perf_counter()
            self._store.flush()
            overrides = self._run_hooks()
            self._cooled = _Cooled(PatternReport(), Timestamp.now(), overrides)
            try:
                names, columns = self._detection_columns()
                data = detectors.DetectionData(self._store.labels, names, columns)
                report = _run_detectors(data, self._profile, started, on_timeout)
            except BaseException:
                self._cooled = None
                raise
            self._cooled.report = report
            return report

    def _run_hooks(self) -> dict[int, dict[str, float]]:
        if not self._hooks:
            return {}
        labels = self._store.labels
        snapshot = list(zip(labels, self._store.metric_dicts(), strict=True))
        overrides: dict[int, dict[str, float]] = {}
        for position, hook in self._hooks.items():
            label = labels[position]
            try:
                returned = hook.task.cool(hook.output, snapshot)  # type: ignore[attr-defined]
            except Exception as exc:
                raise TaskPanickedError(label, f"task {label!r} raised in cool()") from exc
            mapping = returned if isinstance(returned, Mapping) else dict(returned or {})
            if mapping:
                names, values = validate_metrics(label, mapping, self._store.known_keys)
                overrides[position] = dict(zip(names, map(float, values), strict=True))
        return overrides

    def reset(self) -> None:
        """Forget every task, failure and pattern; the kiln records again."""
        with self._lock:
            self._check_not_firing("reset()")
            self._reset_state()

    # --- analyses -----------------------------------------------------------------------
    def _series(self) -> list[tuple[str, NDArray[np.float64]]]:
        names, columns = self._detection_columns()
        return [
            (name, np.ascontiguousarray(column[~np.isnan(column)]))
            for name, column in zip(names, columns, strict=True)
        ]

    def _pairwise(
        self,
        kernel: Callable[[NDArray[np.float64], NDArray[np.float64]], float],
        diagonal: Callable[[NDArray[np.float64]], float] | None,
    ) -> MetricMatrix:
        with self._lock:
            names, columns = self._detection_columns()
        m = len(names)
        values = np.zeros((m, m))
        present = ~np.isnan(columns)
        for i, j in itertools.product(range(m), repeat=2):
            if i == j and diagonal is not None:
                values[i, i] = diagonal(columns[i][present[i]])
                continue
            both = present[i] & present[j]
            values[i, j] = kernel(
                np.ascontiguousarray(columns[i][both]), np.ascontiguousarray(columns[j][both])
            )
        return MetricMatrix(names, values)

    def mi_matrix(self, bins: int = 10) -> MetricMatrix:
        """Mutual information between metrics (bits); entropy on the diagonal."""
        kernels = _backend.kernels()
        return self._pairwise(
            lambda x, y: kernels.mutual_information(x, y, bins),
            lambda x: kernels.entropy(x, bins),
        )

    def transfer_entropy_matrix(self, lag: int = 1, bins: int = 10) -> MetricMatrix:
        """``[i, j]`` = transfer entropy from metric i to metric j (bits)."""
        kernels = _backend.kernels()
        return self._pairwise(lambda x, y: kernels.transfer_entropy(x, y, lag, bins), None)

    def distribution_shift(self, bins: int = 10) -> list[tuple[str, float]]:
        """``KL(second half ‖ first half)`` per metric, descending."""
        with self._lock:
            series = self._series()
        shifts = [
            (name, info.kl_divergence(x[len(x) // 2 :], x[: len(x) // 2], bins))
            for name, x in series
        ]
        return sorted(shifts, key=lambda item: -item[1])

    def jsd_shift(self, bins: int = 10) -> list[tuple[str, float]]:
        """``JSD(first half, second half)`` per metric, descending."""
        with self._lock:
            series = self._series()
        shifts = [(name, info.jsd(x[: len(x) // 2], x[len(x) // 2 :], bins)) for name, x in series]
        return sorted(shifts, key=lambda item: -item[1])

    def permutation_entropies(self, order: int = 3) -> list[tuple[str, float]]:
        with self._lock:
            series = self._series()
        return [(name, info.permutation_entropy(x, order)) for name, x in series]

    def correlation_matrix(
        self, method: Literal["pearson", "spearman"] = "pearson"
    ) -> MetricMatrix:
        """Pairwise Pearson (or Spearman) correlation over the tasks having both metrics."""
        if method not in ("pearson", "spearman"):
            raise ValueError(f"method must be 'pearson' or 'spearman', got {method!r}")
        with self._lock:
            names, columns = self._detection_columns()
        m = len(names)
        values = np.eye(m)
        if m < 2:
            return MetricMatrix(names, values)
        kernels = _backend.kernels()
        if method == "pearson":
            stats = np.asarray(kernels.correlation_stats(columns, 1.0))
            for i, j, _n, r, _p, _d in stats.tolist():
                values[int(i), int(j)] = values[int(j), int(i)] = r
            return MetricMatrix(names, values)
        present = ~np.isnan(columns)
        for i in range(m):
            for j in range(i + 1, m):
                both = present[i] & present[j]
                pair = np.vstack([_rank(columns[i][both]), _rank(columns[j][both])])
                r = float(np.asarray(kernels.correlation_stats(pair, 1.0))[0, 3])
                values[i, j] = values[j, i] = r
        return MetricMatrix(names, values)

    def __repr__(self) -> str:
        state = "cooled" if self.is_cooled else "open"
        return f"Kiln({self.task_count} tasks, {len(self._store.names)} metrics, {state})"


def _rank(values: NDArray[np.float64]) -> NDArray[np.float64]:
    """Average ranks (ties share the mean rank), as Spearman's rho needs."""
    order = np.argsort(values, kind="stable")
    sorted_values = values[order]
    boundaries = np.flatnonzero(np.diff(sorted_values)) + 1
    starts = np.concatenate([[0], boundaries])
    ends = np.concatenate([boundaries, [len(values)]])
    average = (starts + ends - 1) / 2.0
    ranks = np.empty(len(values))
    ranks[order] = np.repeat(average, ends - starts)
    return ranks


def _progress_bar(tasks: Iterable[object], progress: bool) -> Any:
    if not progress:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        log.info("progress=True needs tqdm (pip install tqdm); continuing without a bar")
        return None
    total = len(tasks) if isinstance(tasks, Sequence) else None
    return tqdm(total=total, unit="task")


_SEED_DETECTORS: tuple[tuple[PatternKind, Callable[..., list[CracklePattern]], str], ...] = (
    (PatternKind.CLUSTERING, detectors.detect_clustering, "cluster_threshold"),
    (
        PatternKind.PHASE_TRANSITION,
        detectors.detect_phase_transitions,
        "phase_transition_sensitivity",
    ),
    (PatternKind.CONSERVATION, detectors.detect_conservation, "conservation_tolerance"),
    (PatternKind.CORRELATION, detectors.detect_correlations, "correlation_threshold"),
)


def _run_detectors(
    data: detectors.DetectionData,
    profile: ThermalProfile,
    started: float,
    on_timeout: str,
) -> PatternReport:
    patterns: list[CracklePattern] = []
    incomplete: list[tuple[PatternKind, str]] = []
    skipped: list[tuple[PatternKind, str]] = []
    notes: list[str] = []
    tests_run = 0
    n = data.task_count
    budget = profile.max_cooling_duration

    def time_left() -> float:
        return budget - (time.perf_counter() - started)

    def timed_out(kind: PatternKind, exc: CoolingTimeoutError) -> None:
        if on_timeout == "raise":
            raise exc
        incomplete.append((kind, f"not finished within {budget:g} s"))

    if n < profile.min_tasks_for_detection:
        reason = (
            f"{n} task(s) recorded, fewer than min_tasks_for_detection = "
            f"{profile.min_tasks_for_detection}"
        )
        skipped.extend((kind, reason) for kind in DETECTOR_ORDER if kind in profile.detectors)
    else:
        for kind, detect, threshold_name in _SEED_DETECTORS:
            if kind not in profile.detectors:
                continue
            try:
                remaining = time_left()
                if remaining <= 0:
                    raise CoolingTimeoutError(f"time budget exhausted before {kind}")
                threshold = getattr(profile, threshold_name)
                if kind is PatternKind.CLUSTERING:
                    patterns.extend(detect(data, threshold, remaining))
                else:
                    patterns.extend(detect(data, threshold))
            except CoolingTimeoutError as exc:
                timed_out(kind, exc)
        if profile.detectors & _ADDED_KINDS and len(data.names):
            counters = detectors.counter_mask(data)
            try:
                added = run_added(data, profile, counters, time_left, incomplete)
            except CoolingTimeoutError as exc:
                timed_out(PatternKind.OUTLIER, exc)
            else:
                if on_timeout == "raise" and incomplete:
                    raise CoolingTimeoutError(
                        f"cooling exceeded max_cooling_duration = {budget:g} s"
                    )
                patterns.extend(added.patterns)
                skipped.extend(added.skipped)
                notes.extend(added.notes)
                tests_run = added.tests_run
    return PatternReport(
        patterns,
        task_count=n,
        metric_count=len(data.names),
        skipped=skipped,
        incomplete=incomplete,
        tests_run=tests_run,
        fdr=profile.fdr,
        elapsed=time.perf_counter() - started,
        notes=notes,
    )


_ADDED_KINDS = frozenset(
    {
        PatternKind.OUTLIER,
        PatternKind.CONSERVATION,
        PatternKind.DISTRIBUTION_SHIFT,
        PatternKind.DEPENDENCE,
        PatternKind.INFORMATION_FLOW,
    }
)
