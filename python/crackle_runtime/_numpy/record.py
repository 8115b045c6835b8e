"""The serial recording loop of ``Kiln.fire_all``: fire a chunk of tasks, hand it back
in columnar form.

The native ``fire_chunk`` runs the same loop in Rust, keeping the common case (a
``TaskOutput`` whose metrics are a dict of str to float/int) out of the interpreter; both
call the same recorder methods for everything else, so labels, errors and messages agree.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterable
from typing import Any, Protocol, TypedDict

import numpy as np
from numpy.typing import NDArray

__all__ = ["CHUNK_FIELDS", "Chunk", "Recorder", "fire_chunk"]


class Recorder(Protocol):
    """What ``fire_chunk`` calls back into (see ``crackle_runtime.kiln``)."""

    output_type: type
    float64_type: type  # numpy.float64: read directly by the native fast path

    def classify(self, task: object) -> tuple[str | None, bool]:
        """(the fixed label of the task's class or None, whether it has a cool hook)."""

    def label_of(self, task: object) -> str:
        """The label of one task whose class has no fixed label."""

    def fire_function(self, task: object) -> Any:
        """The callable that fires a task without a callable ``fire`` (or raise)."""

    def slow_record(self, label: str, output: Any) -> tuple[Any, tuple[str, ...], list[Any]]:
        """(output, names, values) of a validated output, or raise."""

    pending: Chunk | None  # set to the chunk before fire_chunk returns it


CHUNK_FIELDS = (
    "count",  # tasks taken from the iterator (recorded and failed)
    "done",  # the iterator is exhausted
    "labels",  # labels of the recorded tasks
    "outputs",  # their outputs
    "layouts",  # the distinct metric-name layouts, in first-seen order
    "layout_of",  # each recorded task's layout (int64)
    "values",  # every recorded value, task after task, in layout order (float64)
    "fired_at",  # firing times, ms since the epoch (float64)
    "duration",  # firing durations, s (float64)
    "hooks",  # (index in chunk, task, output) of tasks with cool hooks
    "failures",  # (label, error) of failed tasks when skip is true
    "stop",  # None, or (label or None, error, whether the task's fire() raised)
)


class Chunk(TypedDict):
    """One chunk of fired tasks, as ``fire_chunk`` returns it (fields: ``CHUNK_FIELDS``)."""

    count: int
    done: bool
    labels: list[str]
    outputs: list[Any]
    layouts: list[tuple[str, ...]]
    layout_of: NDArray[np.int64]
    values: NDArray[np.float64]
    fired_at: NDArray[np.float64]
    duration: NDArray[np.float64]
    hooks: list[tuple[int, object, Any]]
    failures: list[tuple[str, BaseException]]
    stop: tuple[str | None, BaseException, bool] | None


def fire_chunk(
    tasks: Iterable[object], limit: int, skip: bool, recorder: Recorder, max_seconds: float
) -> Chunk:
    """Fire at most ``limit`` tasks taken from the iterator ``tasks`` and return the chunk;
    the chunk also ends after the task during which it reached ``max_seconds``.

    A task whose ``fire()`` raises an ``Exception`` is listed in ``failures`` when ``skip``,
    else it stops the loop with ``stop = (label, error, True)``; any other error (a bad
    output, invalid metrics, a failing ``label()``, KeyboardInterrupt) stops the loop with
    ``stop = (label or None, error, False)``. Tasks recorded before a stop are in the
    chunk, so the caller stores them before raising.
    """
    iterator = iter(tasks)
    perf_counter = time.perf_counter
    wall_zero = time.time() * 1000.0 - perf_counter() * 1000.0
    deadline = perf_counter() + max_seconds
    # one tuple per recorded task, appended in one call, so an interrupt (Ctrl-C) between
    # two statements never leaves a task half recorded
    records: list[tuple[str, Any, int, list[Any], float, float, object]] = []
    layouts: dict[tuple[str, ...], int] = {}
    failures: list[tuple[str, BaseException]] = []
    stop: tuple[str | None, BaseException, bool] | None = None
    kinds: dict[type, tuple[str | None, bool]] = {}
    count = 0
    done = False
    label: str | None = None
    interrupt: BaseException | None = None
    try:
        while count < limit:
            label = None
            try:
                task = next(iterator)
            except StopIteration:
                done = True
                break
            count += 1
            label, hook = _label_and_hook(task, kinds, recorder)
            fire = _fire_of(task, recorder)
            start = perf_counter()
            try:
                output = fire()
            except Exception as exc:
                if not skip:
                    stop = (label, exc, True)
                    break
                failures.append((label, exc))
                if perf_counter() >= deadline:
                    break
                continue
            seconds = perf_counter() - start
            output, names, numbers, interrupt = _checked(recorder, label, output)
            layout = layouts.setdefault(names, len(layouts))
            hooked = task if hook else None
            records.append(
                (label, output, layout, numbers, wall_zero + start * 1000.0, seconds, hooked)
            )
            if interrupt is not None:
                stop = (label, interrupt, False)
                break
            if start + seconds >= deadline:
                break
    except BaseException as exc:  # a bad output or label, an interrupt (Ctrl-C): stop
        stop = (label, exc, False)
    # the chunk is also left on the recorder before returning, so an interrupt (Ctrl-C)
    # that arrives while it is assembled or returned loses nothing: the caller finds it there
    while True:
        try:
            chunk = _assemble(count, done, records, layouts, failures, stop)
            recorder.pending = chunk
            return chunk
        except BaseException as exc:  # interrupted while assembling: assemble again
            if stop is None:
                stop = (None, exc, False)


def _label_and_hook(
    task: object, kinds: dict[type, tuple[str | None, bool]], recorder: Recorder
) -> tuple[str, bool]:
    """The task's label and whether it has a cool hook (the class's answer is cached)."""
    known = kinds.get(type(task))
    if known is None:
        known = kinds[type(task)] = recorder.classify(task)
    fixed, hook = known
    return (recorder.label_of(task) if fixed is None else fixed), hook


def _fire_of(task: object, recorder: Recorder) -> Any:
    """The task's ``fire`` method, or the recorder's callable for tasks without one."""
    fire = getattr(task, "fire", None)
    return fire if callable(fire) else recorder.fire_function(task)


def _checked(
    recorder: Recorder, label: str, output: Any
) -> tuple[Any, tuple[str, ...], list[Any], BaseException | None]:
    """``slow_record`` of a fired task's output, and the interrupt (Ctrl-C) that arrived
    while it was checked, if one did: the output is then checked again, so the task is
    recorded before the loop stops."""
    try:
        return (*recorder.slow_record(label, output), None)
    except Exception:
        raise
    except BaseException as exc:
        return (*recorder.slow_record(label, output), exc)


def _assemble(
    count: int,
    done: bool,
    records: list[tuple[str, Any, int, list[Any], float, float, object]],
    layouts: dict[tuple[str, ...], int],
    failures: list[tuple[str, BaseException]],
    stop: tuple[str | None, BaseException, bool] | None,
) -> Chunk:
    columns = zip(*records, strict=True) if records else [()] * 7
    labels, outputs, layout_of, numbers, fired_at, duration, hooked = map(list, columns)
    return Chunk(
        count=count,
        done=done,
        labels=labels,
        outputs=outputs,
        layouts=list(layouts),
        layout_of=np.array(layout_of, dtype=np.int64),
        values=np.fromiter(itertools.chain.from_iterable(numbers), dtype=np.float64),
        fired_at=np.array(fired_at, dtype=np.float64),
        duration=np.array(duration, dtype=np.float64),
        hooks=[
            (index, task, outputs[index]) for index, task in enumerate(hooked) if task is not None
        ],
        failures=failures,
        stop=stop,
    )
