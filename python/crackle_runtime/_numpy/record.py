"""The serial recording loop of ``Kiln.fire_all``: fire a chunk of tasks, hand it back
in columnar form.

The native ``fire_chunk`` runs the same loop in Rust, keeping the common case (a
``TaskOutput`` whose metrics are a dict of str to float/int) out of the interpreter; both
call the same recorder methods for everything else, so labels, errors and messages agree.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

__all__ = ["Recorder", "fire_chunk"]


class Recorder(Protocol):
    """What ``fire_chunk`` calls back into (see ``crackle_runtime.kiln``)."""

    output_type: type

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
    labels: list[str] = []
    outputs: list[Any] = []
    layouts: dict[tuple[str, ...], int] = {}
    layout_of: list[int] = []
    values: list[Any] = []
    fired_at: list[float] = []
    duration: list[float] = []
    hooks: list[tuple[int, object, Any]] = []
    failures: list[tuple[str, BaseException]] = []
    stop: tuple[str | None, BaseException, bool] | None = None
    kinds: dict[type, tuple[str | None, bool]] = {}
    count = 0
    done = False
    while count < limit:
        label: str | None = None
        try:
            task = next(iterator)
        except StopIteration:
            done = True
            break
        except BaseException as exc:
            stop = (None, exc, False)
            break
        count += 1
        try:
            known = kinds.get(type(task))
            if known is None:
                known = kinds[type(task)] = classify(task)
            label = known[0]
            if label is None:
                label = label_of(task)
            fire = getattr(task, "fire", None)
            if not callable(fire):
                fire = recorder.fire_function(task)
        except BaseException as exc:
            stop = (label, exc, False)
            break
        start = perf_counter()
        try:
            output = fire()
        except Exception as exc:
            if skip:
                failures.append((label, exc))
                if perf_counter() >= deadline:
                    break
                continue
            stop = (label, exc, True)
            break
        except BaseException as exc:
            stop = (label, exc, False)
            break
        seconds = perf_counter() - start
        try:
            output, names, numbers = slow_record(label, output)
        except BaseException as exc:
            stop = (label, exc, False)
            break
        layout = layouts.get(names)
        if layout is None:
            layout = layouts[names] = len(layouts)
        if known[1]:
            hooks.append((len(labels), task, output))
        labels.append(label)
        outputs.append(output)
        layout_of.append(layout)
        values.extend(numbers)
        fired_at.append(wall_zero + start * 1000.0)
        duration.append(seconds)
        if start + seconds >= deadline:
            break
    return (
        count,
        done,
        labels,
        outputs,
        list(layouts),
        np.array(layout_of, dtype=np.int64),
        np.array(values, dtype=np.float64),
        np.array(fired_at, dtype=np.float64),
        np.array(duration, dtype=np.float64),
        hooks,
        failures,
        stop,
    )
