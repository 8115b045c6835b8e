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
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

__all__ = ["Recorder", "fire_chunk"]


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


Chunk = tuple[
    int,  # count: tasks taken from the iterator (recorded and failed)
    bool,  # done: the iterator is exhausted
    list[str],  # labels of the recorded tasks
    list[Any],  # their outputs
    list[tuple[str, ...]],  # the distinct metric-name layouts, in first-seen order
    NDArray[np.int64],  # each recorded task's layout
    NDArray[np.float64],  # every recorded value, task after task, in layout order
    NDArray[np.float64],  # firing times, ms since the epoch
    NDArray[np.float64],  # firing durations, s
    list[tuple[int, object, Any]],  # (index in chunk, task, output) of tasks with cool hooks
    list[tuple[str, BaseException]],  # (label, error) of failed tasks when skip is true
    tuple[str | None, BaseException, bool] | None,  # stop: (label, error, fire raised)
]


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
    classify, label_of, slow_record = recorder.classify, recorder.label_of, recorder.slow_record
    # one tuple per recorded task, appended in one call, so an interrupt (Ctrl-C) between
    # two statements never leaves a task half recorded
    records: list[tuple[str, Any, int, list[Any], float, float, object]] = []
    layouts: dict[tuple[str, ...], int] = {}
    failures: list[tuple[str, BaseException]] = []
    stop: tuple[str | None, BaseException, bool] | None = None
    kinds: dict[type, tuple[str | None, bool]] = {}
    count = 0
    done = False
    while count < limit:
        label: str | None = None
        try:
            try:
                task = next(iterator)
            except StopIteration:
                done = True
                break
            count += 1
            known = kinds.get(type(task))
            if known is None:
                known = kinds[type(task)] = classify(task)
            label = known[0]
            if label is None:
                label = label_of(task)
            fire = getattr(task, "fire", None)
            if not callable(fire):
                fire = recorder.fire_function(task)
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
            output, names, numbers = slow_record(label, output)
            layout = layouts.get(names)
            if layout is None:
                layout = layouts[names] = len(layouts)
            hooked = task if known[1] else None
            records.append(
                (label, output, layout, numbers, wall_zero + start * 1000.0, seconds, hooked)
            )
            if start + seconds >= deadline:
                break
        except BaseException as exc:
            stop = (label, exc, False)
            break
    columns = zip(*records, strict=True) if records else [()] * 7
    labels, outputs, layout_of, numbers, fired_at, duration, hooked = map(list, columns)
    return (
        count,
        done,
        labels,
        outputs,
        list(layouts),
        np.array(layout_of, dtype=np.int64),
        np.fromiter(itertools.chain.from_iterable(numbers), dtype=np.float64),
        np.array(fired_at, dtype=np.float64),
        np.array(duration, dtype=np.float64),
        [(index, task, outputs[index]) for index, task in enumerate(hooked) if task is not None],
        failures,
        stop,
    )
