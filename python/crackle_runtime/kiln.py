"""The kiln: fire tasks, record their metrics column by column, cool to find patterns.

``Kiln`` is a facade: recording lives in ``_recording`` (the store, the chunk and executor
loops), entries and timestamps in ``_entries``, the analyses in ``_analyses``, DataFrames in
``_frames``, files in ``_persist``, plotting in ``_plotting`` and the cooling loop over the
detector registry in ``detectors``. The kiln holds the lock, the profile and the cooled
state.
"""

from __future__ import annotations

import html
import itertools
import logging
import os
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Executor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from crackle_runtime import _analyses, _frames, _incremental, _persist, _plotting
from crackle_runtime._entries import MetricMatrix, TaskEntry, TaskMetadata, Timestamp
from crackle_runtime._recording import (
    Recording,
    as_output,
    firing_in_this_thread,
    progress_bar,
)
from crackle_runtime._state import CoolingState
from crackle_runtime._store import MetricStore, validate_metrics
from crackle_runtime.detectors import _cooling
from crackle_runtime.detectors._data import DetectionData
from crackle_runtime.errors import (
    CrackleError,
    KilnCooledError,
    TaskPanickedError,
)
from crackle_runtime.profile import ThermalProfile
from crackle_runtime.report import PatternReport, printable
from crackle_runtime.task import TaskOutput, fire_function, task_label

__all__ = ["Kiln", "MetricMatrix", "TaskEntry", "TaskMetadata", "Timestamp"]

log = logging.getLogger("crackle_runtime")
_TOKENS = itertools.count(1)


@dataclass
class _Cooled:
    report: PatternReport
    cooled_at: Timestamp
    overrides: dict[int, dict[str, float]] = field(default_factory=dict)


class Kiln:
    """Fires tasks, records their metrics, and cools to find cross-task patterns."""

    def __init__(self, profile: ThermalProfile | None = None) -> None:
        if profile is None:
            profile = ThermalProfile.default()
        if not isinstance(profile, ThermalProfile):
            raise TypeError(f"profile must be a ThermalProfile, got {type(profile).__name__}")
        self._profile = profile
        self._lock = threading.RLock()
        self._token = next(_TOKENS)  # names this kiln to the tasks it fires in other threads
        # what runs user code right now ("fire_all()", "fire_and_record()", "cool()"): the
        # code it runs (a task, a cool hook) may not record, cool or reset this kiln
        self._busy: str | None = None
        self._reset_state()

    def _reset_state(self) -> None:
        self._recording = Recording()
        self._cooled: _Cooled | None = None
        # Columns declared an index (e.g. the ``order_by`` column of a DataFrame): name ->
        # why. They take part in no detector; the report's notes say so.
        self._index_columns: dict[str, str] = {}
        # Notes on the columns of a DataFrame or file that are not metrics (SPEC §13).
        self._column_notes: list[str] = []
        # Incremental cooling (SPEC §14): after extend(), the mergeable state of the tasks
        # cooled so far and the metrics their cool hooks returned (kept across extend()).
        self._state: CoolingState | None = None
        # set by _cool_from_gathered for the length of one cool()
        self._gathered: tuple[CoolingState, _incremental.Gathered] | None = None
        self._kept_overrides: dict[int, dict[str, float]] = {}

    @property
    def _overrides(self) -> dict[int, dict[str, float]]:
        """The metrics cool hooks returned, by task position."""
        return self._cooled.overrides if self._cooled is not None else self._kept_overrides

    @property
    def _store(self) -> MetricStore:
        return self._recording.store

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
        with self._guard("metric_names"):
            self._store.flush()
            names = list(self._store.names)
            for overrides in self._overrides.values():
                names.extend(name for name in overrides if name not in names)
            return names

    @property
    def labels(self) -> list[str]:
        return list(self._store.labels)

    @property
    def failures(self) -> list[tuple[str, TaskPanickedError]]:
        return list(self._recording.failures)

    @property
    def entries(self) -> list[TaskEntry]:
        with self._guard("entries"):
            store = self._store
            fired = store.fired_at().tolist()
            durations = store.durations().tolist()
            cooled_at = self._cooled.cooled_at if self._cooled else None
            overrides = self._overrides
            return [
                TaskEntry(
                    label,
                    metrics,
                    dict(overrides.get(position, {})),
                    TaskMetadata(label, Timestamp(fired[position]), cooled_at, durations[position]),
                )
                for position, (label, metrics) in enumerate(
                    zip(store.labels, store.metric_dicts(), strict=True)
                )
            ]

    # --- recording ----------------------------------------------------------------------
    @contextmanager
    def _guard(self, action: str) -> Iterator[None]:
        """Hold the kiln's lock for ``action``. A task that ``fire_all(executor=...)`` runs
        in another thread cannot wait for the lock (fire_all holds it until that very task
        is done): it gets a CrackleError instead of a deadlock."""
        if firing_in_this_thread(self._token):
            raise CrackleError(
                f"{action} was called from inside a task that fire_all() is firing; record, "
                "read or cool the kiln after fire_all() returns"
            )
        with self._lock:
            yield

    def _check_idle(self, action: str) -> None:
        if self._busy == "fire_all()":
            raise CrackleError(
                f"{action} was called from inside a task that fire_all() is firing; record or "
                "cool after fire_all() returns"
            )
        if self._busy is not None:
            raise CrackleError(
                f"{action} was called from inside a task or cool hook that {self._busy} is "
                f"running; call it after {self._busy} returns"
            )

    @contextmanager
    def _running_user_code(self, action: str) -> Iterator[None]:
        """Mark the kiln busy with ``action`` while it runs tasks or hooks (lock held)."""
        self._busy = action
        try:
            yield
        finally:
            self._busy = None

    def _check_open(self) -> None:
        self._check_idle("recording")
        if self._cooled is not None:
            raise KilnCooledError(
                "the kiln has been cooled; call extend() to record more tasks or reset() to "
                "start over"
            )

    def fire_task(self, task: object) -> TaskOutput:
        """Fire ``task`` without recording it."""
        label = task_label(task)
        try:
            output = fire_function(task)()
        except Exception as exc:
            raise TaskPanickedError(label) from exc
        return as_output(label, output)

    def fire_and_record(self, task: object) -> TaskOutput:
        """Fire ``task``, time it and record its metrics; returns its output."""
        with self._guard("fire_and_record()"):
            self._check_open()
            label = task_label(task)
            fire = fire_function(task)
            fired_at = time.time() * 1000.0
            start = time.perf_counter()
            try:
                with self._running_user_code("fire_and_record()"):
                    output = fire()
            except Exception as exc:
                raise TaskPanickedError(label) from exc
            duration = time.perf_counter() - start
            output = as_output(label, output)
            self._recording.record(label, output, fired_at, duration, task)
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
        with self._guard("fire_all()"):
            self._check_open()
            bar = progress_bar(tasks, progress)
            try:
                with self._running_user_code("fire_all()"):
                    if executor is None:
                        return self._recording.fire_serial(tasks, on_error, bar)
                    return self._recording.fire_executor(
                        tasks, executor, on_error, bar, self._token
                    )
            finally:
                if bar is not None:
                    bar.close()

    def add_entry(self, label: str, metrics: Mapping[str, Any] | Iterable[Any]) -> None:
        """Record precomputed metrics for a task labelled ``label``."""
        with self._guard("add_entry()"):
            self._check_open()
            self._recording.add_entry(label, metrics)

    def add_matrix(
        self,
        values: ArrayLike,
        names: Sequence[str],
        labels: Sequence[str] | None = None,
    ) -> None:
        """Record many tasks at once: ``values`` is ``(n, m)``, NaN where a task lacks a
        metric; labels default to ``task-<index>``. All or nothing."""
        with self._guard("add_matrix()"):
            self._check_open()
            self._recording.add_matrix(values, names, labels)

    # --- the data -----------------------------------------------------------------------
    def metric_matrix(self) -> tuple[list[str], list[str], NDArray[np.float64]]:
        """``(labels, names, values)`` with ``values`` a ``(tasks, metrics)`` float64 array,
        NaN where a task lacks a metric (cooled metrics override firing ones once cooled)."""
        with self._guard("metric_matrix()"):
            names, columns = self._detection_columns()
            return list(self._store.labels), names, np.ascontiguousarray(columns.T)

    def _detection_columns(self) -> tuple[list[str], NDArray[np.float64]]:
        """The matrix detectors read: a view of the store, or a copy with cool overrides."""
        columns = self._store.columns()
        names = list(self._store.names)
        overrides = self._overrides
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
        with self._guard("to_pandas()"):
            names, columns = self._detection_columns()
            labels = list(self._store.labels)
        return _frames.to_pandas(labels, names, columns)

    def to_arrow(self) -> Any:
        """The recorded tasks as a ``pyarrow.Table`` (needs pyarrow): a ``label`` column
        (``task_label``, ``task_label_2``, … when a metric already has that name) and one
        float64 column per metric, null where a task lacks it. Labels and names must be
        valid Unicode (Arrow strings are UTF-8)."""
        with self._guard("to_arrow()"):
            names, columns = self._detection_columns()
            labels = list(self._store.labels)
        return _frames.to_arrow(labels, names, columns)

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
        with self._guard("plot()"):
            names, columns = self._detection_columns()
            report = self._cooled.report if self._cooled else None
        return _plotting.plot_metrics(names, columns, report, metrics, ax)

    @classmethod
    def from_pandas(
        cls,
        frame: Any,
        label: str | None = None,
        profile: ThermalProfile | None = None,
        *,
        order_by: str | None = None,
        ignore: Iterable[str] | str | None = None,
    ) -> Kiln:
        """A kiln holding one task per row of ``frame``: bool, integer and float columns
        are metrics (NA absent), labels come from the ``label`` column or the index.

        ``order_by`` names the column that orders the tasks in time (rows are sorted by
        it, stably, and it takes part in no detector); ``ignore`` names columns to leave
        out. Columns that are not numeric are named in the report's notes. A polars (or any
        Arrow) frame goes to ``from_arrow``."""
        if not _frames.is_pandas(frame):
            if hasattr(frame, "__arrow_c_stream__"):
                return cls.from_arrow(
                    frame, label=label, order_by=order_by, ignore=ignore, profile=profile
                )
            raise TypeError(f"frame must be a pandas DataFrame, got {type(frame).__name__}")
        return cls._from_prepared(_frames.prepare_pandas(frame, label, order_by, ignore), profile)

    @classmethod
    def from_arrow(
        cls,
        obj: Any,
        label: str | None = None,
        *,
        order_by: str | None = None,
        ignore: Iterable[str] | str | None = None,
        profile: ThermalProfile | None = None,
    ) -> Kiln:
        """A kiln holding one task per row of ``obj``, anything with ``__arrow_c_stream__``
        (a polars DataFrame, a pyarrow Table, a DuckDB result; needs pyarrow). Arguments
        as in ``from_pandas``; labels default to ``row-1``, ``row-2``, …"""
        table = _frames.arrow_table(obj)
        prepared = _frames.prepare(_frames.columns_from_arrow(table), label, order_by, ignore)
        return cls._from_prepared(prepared, profile)

    @classmethod
    def _from_prepared(cls, prepared: _frames.Prepared, profile: ThermalProfile | None) -> Kiln:
        """A kiln recording ``prepared`` (from ``_frames.prepare``), its index columns
        declared and its notes kept for the report."""
        kiln = cls(profile)
        kiln.add_matrix(prepared.values, prepared.names, prepared.labels)
        kiln._index_columns.update(prepared.index_columns)
        kiln._column_notes.extend(prepared.notes)
        return kiln

    # --- saving -------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the recorded tasks and the profile to one file, atomically, without pickle.

        Labels, metric names, values (bit-identical), firing times and durations round-trip
        exactly. Cool hooks, the metrics they returned, the cooled state and ``failures``
        are not saved.
        """
        from crackle_runtime import __version__

        with self._guard("save()"):
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
        kiln._recording = Recording(
            MetricStore.from_columns(
                saved.names, saved.labels, saved.values, saved.fired_at, saved.duration
            )
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
        with self._guard("cool()"):
            self._check_idle("cool()")
            if self._cooled is not None:
                return self._cooled.report
            started = time.perf_counter()
            self._store.flush()
            state = self._state
            # after extend(): only the hooks of the tasks recorded since run
            since = 0 if state is None else state.tasks
            with self._running_user_code("cool()"):
                overrides = {**self._kept_overrides, **self._run_hooks(since)}
            self._cooled = _Cooled(PatternReport(), Timestamp.now(), overrides)
            try:
                names, columns = self._detection_columns()
                counts = None
                tables = None
                if self._gathered is not None:
                    tables = _incremental.tables_from_state(*self._gathered)
                elif state is not None:
                    state = _extended_state(state, names, columns)
                    tables = _incremental.tables_from_state(state)
                    counts = np.asarray(state.series["count"], dtype=np.int64)
                data = DetectionData(self._store.labels, names, columns, counts=counts)
                left_out = {name: "ignored by the profile" for name in self._profile.ignored}
                left_out.update(self._index_columns)
                report = _cooling.cool(
                    data, self._profile, started, on_timeout, left_out, tables=tables
                )
                report.notes.extend(self._column_notes)
            except BaseException:
                self._cooled = None
                raise
            self._state = state
            self._cooled.report = report
            return report

    def _cool_from_state(self, state: CoolingState) -> PatternReport:
        """``cool()`` with ``state`` the mergeable state of every recorded task (made
        elsewhere, e.g. on a Dask cluster): the exact detectors read it."""
        with self._guard("cool()"):
            self._check_idle("cool()")
            if state.tasks != len(self._store):
                raise ValueError(
                    f"state: covers {state.tasks} tasks, the kiln holds {len(self._store)}"
                )
            self._state = state
            self._cooled = None
            return self.cool()

    def _cool_from_gathered(
        self, state: CoolingState, gathered: _incremental.Gathered
    ) -> PatternReport:
        """``cool()`` of a kiln holding some of the tasks ``state`` summarises (those at
        ``gathered.view_positions``, e.g. a cluster's sample): the exact detectors read the
        state and the rows of ``gathered``, the others the kiln's tasks."""
        with self._guard("cool()"):
            self._check_idle("cool()")
            if gathered.view_positions.size != len(self._store):
                raise ValueError(
                    f"gathered: {gathered.view_positions.size} view positions, the kiln holds "
                    f"{len(self._store)} tasks"
                )
            self._state, self._cooled, self._gathered = None, None, (state, gathered)
            try:
                return self.cool()
            finally:
                self._gathered = None

    def extend(self) -> None:
        """Reopen a cooled kiln for recording (every recording method works again); the
        next ``cool()`` reports on every task, old and new.

        The kiln keeps a mergeable summary of the tasks cooled so far (SPEC §14), so the
        next ``cool()`` computes conservation from it and the new tasks alone, phase
        transitions and correlations from it plus a few buckets and the latest 10,000
        tasks; the other detectors read every task. Cool hooks of the tasks already
        cooled do not run again: the metrics they returned stay. Nothing happens on a kiln
        that is not cooled.
        """
        with self._guard("extend()"):
            self._check_idle("extend()")
            self._reopen()

    def _reopen(self) -> None:
        if self._cooled is None:
            return
        if self._state is None or self._state.tasks != len(self._store):
            names, columns = self._detection_columns()
            self._state = CoolingState.of(names, columns)
        self._kept_overrides = self._cooled.overrides
        self._cooled = None

    def merge(self, other: Kiln) -> Kiln:
        """Append the tasks of ``other`` (which come after this kiln's) and return this
        kiln, open for recording. Labels, metrics (with the metrics ``other``'s cool hooks
        returned), firing times and durations are copied; ``other`` is unchanged. When
        this kiln was cooled, the next ``cool()`` is incremental, as after ``extend()``."""
        if not isinstance(other, Kiln):
            raise TypeError(f"other must be a Kiln, got {type(other).__name__}")
        if other is self:
            raise ValueError("other: a kiln cannot merge itself")
        with other._guard("merge()"):
            other._store.flush()
            names, columns = other._detection_columns()
            labels = list(other._store.labels)
            fired, durations = other._store.fired_at().copy(), other._store.durations().copy()
            columns = np.array(columns, dtype=np.float64)
        with self._guard("merge()"):
            self._check_idle("merge()")
            self._reopen()
            if labels:
                self._store.append_matrix(
                    np.ascontiguousarray(columns.T), names, labels, fired, durations
                )
        return self

    def _run_hooks(self, since: int = 0) -> dict[int, dict[str, float]]:
        """Run the cool hooks of the tasks at positions >= ``since``; their metrics."""
        hooks = {
            position: hook for position, hook in self._recording.hooks.items() if position >= since
        }
        if not hooks:
            return {}
        labels = self._store.labels
        snapshot = list(zip(labels, self._store.metric_dicts(), strict=True))
        overrides: dict[int, dict[str, float]] = {}
        for position, hook in hooks.items():
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
        with self._guard("reset()"):
            self._check_idle("reset()")
            self._reset_state()

    # --- analyses -----------------------------------------------------------------------
    def _names_and_columns(self) -> tuple[list[str], NDArray[np.float64]]:
        with self._guard("an analysis"):
            return self._detection_columns()

    def mi_matrix(self, bins: int = 10) -> MetricMatrix:
        """Mutual information between metrics (bits); entropy on the diagonal."""
        return _analyses.mi_matrix(*self._names_and_columns(), bins)

    def transfer_entropy_matrix(self, lag: int = 1, bins: int = 10) -> MetricMatrix:
        """``[i, j]`` = transfer entropy from metric i to metric j (bits)."""
        return _analyses.transfer_entropy_matrix(*self._names_and_columns(), lag, bins)

    def distribution_shift(self, bins: int = 10) -> list[tuple[str, float]]:
        """``KL(second half ‖ first half)`` per metric, descending."""
        return _analyses.distribution_shift(*self._names_and_columns(), bins)

    def jsd_shift(self, bins: int = 10) -> list[tuple[str, float]]:
        """``JSD(first half, second half)`` per metric, descending."""
        return _analyses.jsd_shift(*self._names_and_columns(), bins)

    def permutation_entropies(self, order: int = 3) -> list[tuple[str, float]]:
        return _analyses.permutation_entropies(*self._names_and_columns(), order)

    def correlation_matrix(
        self, method: Literal["pearson", "spearman"] = "pearson"
    ) -> MetricMatrix:
        """Pairwise Pearson (or Spearman) correlation over the tasks having both metrics."""
        if method not in ("pearson", "spearman"):
            raise ValueError(f"method must be 'pearson' or 'spearman', got {method!r}")
        return _analyses.correlation_matrix(*self._names_and_columns(), method)

    def _repr_html_(self) -> str:
        """The kiln in a notebook: counts, state and the first metrics."""
        with self._lock:
            names = self.metric_names
            state = "cooled" if self._cooled is not None else "open"
            tasks = len(self._store)
        shown = ", ".join(html.escape(name) for name in names[:12])
        more = f", … ({len(names)} in all)" if len(names) > 12 else ""
        found = ""
        if self._cooled is not None:
            found = f"<br>{len(self._cooled.report)} pattern(s) found"
        return printable(
            f"<div><b>Kiln</b>: {tasks} task(s), {len(names)} metric(s), {state}"
            f"<br>metrics: {shown or '(none)'}{more}{found}</div>"
        )

    def __repr__(self) -> str:
        state = "cooled" if self.is_cooled else "open"
        return f"Kiln({self.task_count} tasks, {len(self._store.names)} metrics, {state})"


def _extended_state(
    state: CoolingState, names: list[str], columns: NDArray[np.float64]
) -> CoolingState:
    """``state`` (of the first ``state.tasks`` tasks) merged with the state of the tasks
    recorded since, read from ``columns`` (every task, metrics ``names``), over the metrics
    in the order of ``names`` (a merge puts the metrics new to ``state`` last)."""
    tasks = columns.shape[1]
    if state.tasks == tasks:
        return state.aligned(names)
    new = CoolingState.of(
        names, columns[:, state.tasks :], start=state.tasks, bucket_size=state.bucket_size
    )
    return state.merge(new).aligned(names)
