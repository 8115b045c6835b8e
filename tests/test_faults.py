"""Regression tests for defects found under fault injection (SPEC §8): data loss, hangs,
re-entry, silent conversions and unclear errors. Each test failed before its fix; every
test runs on both backends (the autouse ``backend`` fixture).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest

from crackle_runtime import (
    CrackleError,
    CrackleTask,
    Kiln,
    TaskOutput,
    TaskPanickedError,
)


class Emit(CrackleTask):
    def __init__(self, name: str, metrics: dict[str, Any]) -> None:
        self.name, self.metrics = name, metrics

    def label(self) -> str:
        return self.name

    def fire(self) -> TaskOutput:
        return TaskOutput(None, dict(self.metrics))


# --- data loss -----------------------------------------------------------------------------


def test_metrics_between_two_metric_less_entries_are_kept() -> None:
    kiln = Kiln()
    kiln.add_entry("t0", {})
    kiln.add_entry("t1", {"latency": 12.5})
    kiln.add_entry("t2", {})
    assert kiln.metric_names == ["latency"]
    assert [entry.metrics for entry in kiln.entries] == [{}, {"latency": 12.5}, {}]


def test_metrics_between_two_simple_outputs_reach_cool() -> None:
    class Simple(CrackleTask):
        def fire(self) -> TaskOutput:
            return TaskOutput.simple("nothing measured")

    kiln = Kiln()
    kiln.fire_and_record(Simple())
    for i in range(30):
        kiln.fire_and_record(Emit(f"t{i}", {"x": float(i % 7), "y": float(i)}))
    kiln.fire_and_record(Simple())
    _, names, matrix = kiln.metric_matrix()
    assert names == ["x", "y"]
    assert matrix[1:31, 1].tolist() == [float(i) for i in range(30)]
    assert np.isnan(matrix[[0, 31]]).all()
    kiln.cool()  # sees the metrics: runs without error on the recorded columns


class Failing(CrackleTask):
    def label(self) -> str:
        raise RuntimeError("no label")

    def fire(self) -> TaskOutput:
        return TaskOutput(None, {})


def _tasks_then(error: BaseException | None, count: int) -> Iterator[object]:
    for i in range(count):
        yield Emit(f"t{i}", {"x": float(i)})
    if error is not None:
        raise error
    yield Failing()


@pytest.mark.parametrize("from_iterator", [True, False], ids=["iterator", "label"])
def test_executor_records_submitted_tasks_when_the_iterator_or_a_label_raises(
    from_iterator: bool,
) -> None:
    kiln = Kiln()
    error = ValueError("iterator broke") if from_iterator else None
    with ThreadPoolExecutor(2) as pool, pytest.raises((ValueError, RuntimeError)):
        kiln.fire_all(_tasks_then(error, 5), executor=pool)
    assert kiln.labels == [f"t{i}" for i in range(5)]
    serial = Kiln()
    with pytest.raises((ValueError, RuntimeError)):
        serial.fire_all(_tasks_then(ValueError("iterator broke") if from_iterator else None, 5))
    assert serial.labels == kiln.labels


# --- hangs and re-entry ----------------------------------------------------------------------

ACTIONS = {
    "add_entry": lambda kiln: kiln.add_entry("inner", {"x": 0.0}),
    "metric_names": lambda kiln: kiln.metric_names,
    "entries": lambda kiln: kiln.entries,
    "metric_matrix": lambda kiln: kiln.metric_matrix(),
    "cool": lambda kiln: kiln.cool(),
    "reset": lambda kiln: kiln.reset(),
    "fire_and_record": lambda kiln: kiln.fire_and_record(Emit("inner", {"x": 0.0})),
    "mi_matrix": lambda kiln: kiln.mi_matrix(),
}


@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_a_task_run_by_an_executor_touching_the_kiln_fails_instead_of_hanging(
    action: str,
) -> None:
    kiln = Kiln()

    class Meddling(CrackleTask):
        def fire(self) -> TaskOutput:
            ACTIONS[action](kiln)
            return TaskOutput(None, {"x": 1.0})

    outcome: list[BaseException | None] = []

    def run() -> None:
        with ThreadPoolExecutor(2) as pool:
            try:
                kiln.fire_all([Emit("t0", {"x": 0.0}), Meddling()], executor=pool)
            except BaseException as exc:
                outcome.append(exc)
            else:
                outcome.append(None)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout=20)
    assert not worker.is_alive(), "fire_all hung"
    (error,) = outcome
    assert isinstance(error, TaskPanickedError)
    assert isinstance(error.__cause__, CrackleError)
    assert "from inside a task that fire_all() is firing" in str(error.__cause__)
    assert kiln.labels == ["t0"]  # the task before is kept
    kiln.add_entry("after", {"x": 2.0})  # and the kiln works once fire_all returned
    assert kiln.labels == ["t0", "after"]


@pytest.mark.parametrize("action", ["cool", "reset", "add_entry", "fire_and_record"])
def test_a_task_fired_by_fire_and_record_may_not_cool_reset_or_record(action: str) -> None:
    kiln = Kiln()
    kiln.add_entry("t0", {"x": 1.0})

    class Meddling(CrackleTask):
        def fire(self) -> TaskOutput:
            ACTIONS[action](kiln)
            return TaskOutput(None, {"x": 2.0})

    with pytest.raises(TaskPanickedError) as info:
        kiln.fire_and_record(Meddling())
    assert isinstance(info.value.__cause__, CrackleError)
    assert "fire_and_record()" in str(info.value.__cause__)
    assert not kiln.is_cooled
    assert kiln.labels == ["t0"]
    kiln.add_entry("t1", {"x": 3.0})
    assert kiln.metric_matrix()[2][:, 0].tolist() == [1.0, 3.0]


@pytest.mark.parametrize("action", ["cool", "reset", "add_entry", "fire_and_record"])
def test_a_cool_hook_may_not_cool_reset_or_record(action: str) -> None:
    kiln = Kiln()

    class Hooked(Emit):
        def cool(self, output: TaskOutput, all_metrics: list[dict[str, float]]) -> dict[str, float]:
            ACTIONS[action](kiln)
            return {}

    kiln.fire_all([Hooked(f"t{i}", {"x": float(i)}) for i in range(3)])
    with pytest.raises(TaskPanickedError) as info:
        kiln.cool()
    assert isinstance(info.value.__cause__, CrackleError)
    assert "cool()" in str(info.value.__cause__)
    assert not kiln.is_cooled
    assert kiln.metric_matrix()[2][:, 0].tolist() == [0.0, 1.0, 2.0]
    kiln.add_entry("after", {"x": 3.0})  # the kiln still records: nothing was lost
    assert kiln.labels == ["t0", "t1", "t2", "after"]
