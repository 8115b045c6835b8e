"""What a kiln has recorded, and the loops that record it (SPEC §3, §4, §8).

:class:`Recording` owns the metric store, the tasks whose ``cool`` hook must run, and the
failures ``fire_all(on_error="skip")`` kept. The serial ``fire_all`` loop runs as the
backend's ``fire_chunk`` kernel (Rust when native) and stores each chunk in one columnar
append; the executor loop keeps a bounded number of tasks in flight and records them in
submission order.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from crackle_runtime import _backend
from crackle_runtime._executors import in_flight_limit
from crackle_runtime._store import MetricStore, validate_metrics
from crackle_runtime.errors import InvalidMetricError, TaskPanickedError
from crackle_runtime.task import (
    TaskOutput,
    fire_function,
    fixed_label,
    metric_dict,
    overrides_cool,
    task_label,
)

__all__ = ["Hook", "Recording", "as_output", "firing_in_this_thread", "progress_bar"]

log = logging.getLogger("crackle_runtime")

CHUNK = 8192  # at most this many tasks per fire_chunk call (one columnar append each)
CHUNK_SECONDS = 0.2  # and at most this long, so a progress bar moves with slow tasks


@dataclass
class Hook:
    """A recorded task whose class overrides ``cool``, with the output it fired."""

    task: object
    output: TaskOutput


_END = object()  # the end of a task iterator
_this_thread = threading.local()  # .kiln: the token of the kiln whose task this thread runs


def firing_in_this_thread(kiln_token: int) -> bool:
    """Whether this thread is running a task that the kiln ``kiln_token`` fires through an
    executor (the kiln is then locked by the thread waiting for that task)."""
    return getattr(_this_thread, "kiln", None) == kiln_token


def fire_timed(task: object, kiln_token: int = 0) -> tuple[Any, float, float]:
    """Fire one task: ``(output, fired_at_ms, duration_s)`` (module level: picklable). While
    it runs, this thread is marked as running a task of the kiln ``kiln_token``."""
    outer = getattr(_this_thread, "kiln", None)
    _this_thread.kiln = kiln_token
    try:
        fired_at = time.time() * 1000.0
        start = time.perf_counter()
        output = fire_function(task)()
        return output, fired_at, time.perf_counter() - start
    finally:
        _this_thread.kiln = outer


def as_output(label: str, output: Any) -> TaskOutput:
    """``output`` when it is a TaskOutput (or quacks like one), else TaskPanickedError."""
    if isinstance(output, TaskOutput):
        return output
    if hasattr(output, "metrics") and isinstance(output.metrics, Mapping):
        return output  # type: ignore[no-any-return]
    raise TaskPanickedError(
        label, f"task {label!r} returned {type(output).__name__}, expected a TaskOutput"
    )


class Recorder:
    """The Python side of the backends' ``fire_chunk``: everything beyond the common case
    (a TaskOutput whose metrics are a dict of str to float/int) calls back into these."""

    __slots__ = ("known_keys", "pending")
    output_type = TaskOutput
    float64_type = np.float64

    def __init__(self, known_keys: set[tuple[str, ...]]) -> None:
        self.known_keys = known_keys
        # the chunk fire_chunk is returning: set before it returns, cleared once stored
        self.pending: dict[str, Any] | None = None

    @staticmethod
    def classify(task: object) -> tuple[str | None, bool]:
        """(the label every task of this class has, or None; whether it has a cool hook)."""
        return (task_label(task) if fixed_label(type(task)) else None), overrides_cool(task)

    label_of = staticmethod(task_label)
    fire_function = staticmethod(fire_function)

    def slow_record(self, label: str, output: Any) -> tuple[Any, tuple[str, ...], list[Any]]:
        if type(output) is not TaskOutput:
            output = as_output(label, output)
        names, values = validate_metrics(label, output.metrics, self.known_keys)
        return output, names, values


def progress_bar(tasks: Iterable[object], progress: bool) -> Any:
    """A tqdm bar when ``progress`` and tqdm is installed, else None."""
    if not progress:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        log.info("progress=True needs tqdm (pip install tqdm); continuing without a bar")
        return None
    total = len(tasks) if isinstance(tasks, Sequence) else None
    return tqdm(total=total, unit="task")


class Recording:
    """The recorded tasks: a columnar metric store, cool hooks and failures."""

    def __init__(self, store: MetricStore | None = None) -> None:
        self.store = MetricStore() if store is None else store
        self.hooks: dict[int, Hook] = {}
        self.failures: list[tuple[str, TaskPanickedError]] = []

    def __len__(self) -> int:
        return len(self.store)

    # --- one task at a time ------------------------------------------------------------
    def record(
        self,
        label: str,
        output: TaskOutput,
        fired_at: float,
        duration: float,
        task: object | None,
    ) -> None:
        """Validate and store one fired task (and keep it when it has a cool hook)."""
        names, values = validate_metrics(label, output.metrics, self.store.known_keys)
        position = len(self.store)
        self.store.append(label, names, values, fired_at, duration)
        if task is not None and overrides_cool(task):
            self.hooks[position] = Hook(task, output)

    def add_entry(self, label: str, metrics: Mapping[str, Any] | Iterable[Any]) -> None:
        mapping = metrics if isinstance(metrics, Mapping) else metric_dict(metrics)
        names, values = validate_metrics(str(label), mapping, self.store.known_keys)
        self.store.append(str(label), names, values, time.time() * 1000.0, 0.0)

    def add_matrix(
        self, values: ArrayLike, names: Sequence[str], labels: Sequence[str] | None
    ) -> None:
        """Validate a ``(tasks, metrics)`` block and store it whole, or nothing. Masked
        cells of a masked array are absent values (NaN)."""
        for argument, given in (("names", names), ("labels", labels)):
            if isinstance(given, str | bytes):
                raise TypeError(
                    f"{argument} must be a sequence of strings, got one {type(given).__name__} "
                    f"({given!r}); pass a list such as [{given!r}]"
                )
        if isinstance(values, np.ma.MaskedArray):
            values = np.ma.filled(np.ma.asarray(values, dtype=np.float64), np.nan)
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
        start = len(self.store)
        if labels is None:
            label_list = [f"task-{start + i}" for i in range(matrix.shape[0])]
        else:
            label_list = [str(label) for label in labels]
            if len(label_list) != matrix.shape[0]:
                raise InvalidMetricError(
                    f"labels has {len(label_list)} entries but values has {matrix.shape[0]} rows"
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
        self.store.append_matrix(matrix, names, label_list, time.time() * 1000.0)

    # --- fire_all -------------------------------------------------------------------------
    def fire_serial(self, tasks: Iterable[object], on_error: str, bar: Any) -> list[TaskOutput]:
        """Fire in chunks through the backend's ``fire_chunk`` and store each chunk in one
        columnar append; a chunk that stops on an error is stored before raising."""
        outputs: list[TaskOutput] = []
        store = self.store
        recorder = Recorder(store.known_keys)
        fire_chunk = _backend.kernels().fire_chunk
        iterator = iter(tasks)
        skip = on_error == "skip"
        while True:
            base = len(store)
            try:
                fire_chunk(iterator, CHUNK, skip, recorder, CHUNK_SECONDS)
                chunk = self._store_chunk(recorder, base)
            except BaseException:
                # interrupted (Ctrl-C) as the chunk came back or while it was stored: what
                # was fired is stored, then the interrupt is raised
                if recorder.pending is not None:
                    self._store_chunk(recorder, base)
                raise
            outputs.extend(chunk["outputs"])
            if bar is not None:
                bar.update(chunk["count"])
            stop = chunk["stop"]
            if stop is not None:
                label, exc, task_failure = stop
                if task_failure:
                    raise TaskPanickedError(label) from exc
                raise exc
            if chunk["done"]:
                return outputs

    def _store_chunk(self, recorder: Recorder, base: int) -> dict[str, Any]:
        """Store ``recorder.pending`` (the chunk fire_chunk returned) unless a first,
        interrupted call already did, with its hooks and failures; clear it."""
        chunk = recorder.pending
        assert chunk is not None
        store = self.store
        if len(store) == base:  # append_chunk commits in its last two statements
            store.append_chunk(
                chunk["labels"],
                chunk["layouts"],
                chunk["layout_of"],
                chunk["values"],
                chunk["fired_at"],
                chunk["duration"],
            )
            for label, exc in chunk["failures"]:
                failure = TaskPanickedError(label)
                failure.__cause__ = exc
                self.failures.append((label, failure))
        for index, task, output in chunk["hooks"]:
            self.hooks[base + index] = Hook(task, output)
        recorder.pending = None
        return chunk

    def fire_executor(
        self,
        tasks: Iterable[object],
        executor: Executor,
        on_error: str,
        bar: Any,
        kiln_token: int = 0,
    ) -> list[TaskOutput]:
        """Submit tasks to ``executor`` with a bounded number in flight; record the results
        in submission order. When the task iterator or a task's ``label()`` raises, the
        tasks already submitted are still recorded (an Exception waits for them; an
        interrupt such as Ctrl-C records those already done and cancels the rest)."""
        outputs: list[TaskOutput] = []
        limit = in_flight_limit(executor)
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
                self.failures.append((label, failure))
            else:
                output = as_output(label, output)
                self.record(label, output, fired_at, duration, task)
                outputs.append(output)
            if bar is not None:
                bar.update(1)

        try:
            while True:
                try:
                    task = next(iterator, _END)
                    if task is _END:
                        break
                    label = task_label(task)
                except BaseException as exc:
                    # record what was submitted (an interrupt: what is done), then raise
                    wait = isinstance(exc, Exception)
                    while in_flight and (wait or in_flight[0][2].done()):
                        collect(*in_flight.popleft())
                    raise
                in_flight.append((task, label, executor.submit(fire_timed, task, kiln_token)))
                if len(in_flight) >= limit:
                    collect(*in_flight.popleft())
            while in_flight:
                collect(*in_flight.popleft())
        finally:
            for _, _, future in in_flight:
                future.cancel()
        return outputs
