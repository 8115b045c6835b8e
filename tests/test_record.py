"""``Kiln.fire_all``'s recording loop, the backends' ``fire_chunk`` (SPEC §4, §8).

Every test runs on both backends (the autouse ``backend`` fixture); the differential test
fires the same random task sequences through both and compares the whole kiln.
"""

from __future__ import annotations

import enum
import itertools
import math
import time
from collections.abc import Iterator
from decimal import Decimal
from fractions import Fraction
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from crackle_runtime import (
    CrackleError,
    CrackleTask,
    InvalidMetricError,
    Kiln,
    TaskOutput,
    TaskPanickedError,
    _backend,
    _recording,
)
from crackle_runtime import kiln as kiln_module


class Emit(CrackleTask):
    """A task with the default (fixed) label that returns the given metrics."""

    def __init__(self, metrics: Any, value: object = None) -> None:
        self.metrics, self.value = metrics, value

    def fire(self) -> Any:
        return TaskOutput(self.value, self.metrics)


class Named(Emit):
    """Overrides label(): labelled per task."""

    def __init__(self, metrics: Any, name: str) -> None:
        super().__init__(metrics)
        self.name = name

    def label(self) -> str:
        return self.name


class Hooked(Named):
    def cool(self, output: TaskOutput, all_metrics: list[dict[str, float]]) -> dict[str, float]:
        return {"hooked": 1.0}


class Raising(Named):
    def __init__(self, error: BaseException, name: str = "raising") -> None:
        super().__init__({}, name)
        self.error = error

    def fire(self) -> Any:
        raise self.error


class Returns(Named):
    """Returns any object (not necessarily a TaskOutput)."""

    def fire(self) -> Any:
        return self.metrics


class Duck:
    def __init__(self, metrics: dict[str, Any]) -> None:
        self.metrics = metrics

    def fire(self) -> TaskOutput:
        return TaskOutput(None, self.metrics)

    def label(self) -> str:
        return "duck"


class DuckOutput:
    def __init__(self, metrics: dict[str, Any]) -> None:
        self.metrics = metrics


class Level(enum.IntEnum):
    HIGH = 3


class Name(str):
    pass


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks of 3 tasks, so a few tasks cross several chunk boundaries."""
    monkeypatch.setattr(_recording, "CHUNK", 3)


def matrix(kiln: Kiln) -> tuple[list[str], list[str], list[list[float]]]:
    labels, names, values = kiln.metric_matrix()
    return labels, names, values.tolist()


# --- values and names ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        (2, 2.0),
        (True, 1.0),
        (2.5, 2.5),
        (-0.0, -0.0),
        (2**60 + 1, float(2**60 + 1)),
        (np.float64(1.25), 1.25),
        (np.float32(1.5), 1.5),
        (np.int64(7), 7.0),
        (np.bool_(True), 1.0),
        (Fraction(1, 4), 0.25),
        (Level.HIGH, 3.0),
        (1e308, 1e308),
    ],
)
def test_fire_all_accepts_real_values(value: object, accepted: float) -> None:
    kiln = Kiln()
    kiln.fire_all([Emit({"a": 1.0, "m": value}), Emit({"a": 2.0, "m": 1e308})])
    assert kiln.metric_matrix()[2].tolist() == [[1.0, accepted], [2.0, 1e308]]


@pytest.mark.parametrize(
    "value", [math.nan, math.inf, -math.inf, "1.0", None, 1 + 2j, Decimal("1.5"), [1.0], 10**400]
)
@pytest.mark.usefixtures("small_chunks")
def test_fire_all_invalid_value_names_task_and_metric_keeps_earlier_tasks(value: object) -> None:
    kiln = Kiln()
    tasks = [Named({"ok": float(i), "broken": 0.0}, f"t{i}") for i in range(4)]
    tasks.append(Named({"ok": 9.0, "broken": value}, "bad"))
    tasks.append(Named({"ok": 10.0, "broken": 0.0}, "after"))
    with pytest.raises(InvalidMetricError, match=r"task 'bad'.*metric 'broken'") as info:
        kiln.fire_all(tasks)
    assert info.value.task == "bad" and info.value.metric == "broken"
    assert kiln.labels == ["t0", "t1", "t2", "t3"]
    assert kiln.metric_matrix()[2][:, 0].tolist() == [0.0, 1.0, 2.0, 3.0]


@pytest.mark.parametrize("name", ["", 3, None])
def test_fire_all_invalid_metric_names(name: object) -> None:
    kiln = Kiln()
    with pytest.raises(InvalidMetricError, match=r"task 'bad'.*non-empty strings"):
        kiln.fire_all([Named({"x": 1.0}, "good"), Named({"x": 1.0, name: 1.0}, "bad")])
    assert kiln.labels == ["good"] and kiln.metric_names == ["x"]


def test_fire_all_str_subclass_names_and_changing_layouts() -> None:
    kiln = Kiln()
    kiln.fire_all(
        [
            Emit({"a": 1.0, "b": 2.0}),
            Emit({Name("b"): 3.0, "a": 4.0}),  # same names, other order and objects
            Emit({}),
            Emit({"c": 5.0}),
            Emit({"a": 6.0, "b": 7.0}),
        ]
    )
    nan = math.nan
    _, names, values = kiln.metric_matrix()
    assert names == ["a", "b", "c"]
    np.testing.assert_array_equal(
        values,
        [[1.0, 2.0, nan], [4.0, 3.0, nan], [nan, nan, nan], [nan, nan, 5.0], [6.0, 7.0, nan]],
    )


# --- outputs, labels and failures ------------------------------------------------------------
def test_fire_all_output_forms_and_labels() -> None:
    def plain() -> TaskOutput:
        return TaskOutput(1, {"p": 1.0})

    kiln = Kiln()
    outputs = kiln.fire_all(
        [
            Emit({"p": 0.0}, value="v"),
            Duck({"p": 2.0}),
            plain,
            lambda: TaskOutput(2, {"p": 3.0}),
            Returns(DuckOutput({"p": 4.0}), "duck-output"),
            Emit(TaskOutput(None, {"p": 5.0}).metrics.items()),
        ]
    )
    assert kiln.labels == [
        "anonymous task",
        "duck",
        "plain",
        "<lambda>",
        "duck-output",
        "anonymous task",
    ]
    assert kiln.metric_matrix()[2][:, 0].tolist() == [0.0, 2.0, 1.0, 3.0, 4.0, 5.0]
    assert outputs[0].value == "v" and isinstance(outputs[4], DuckOutput)


def test_fire_all_wrong_output_type_stops_with_task_panicked() -> None:
    kiln = Kiln()
    with pytest.raises(TaskPanickedError, match="returned int, expected a TaskOutput"):
        kiln.fire_all([Emit({"x": 1.0}), Returns(5, "five"), Emit({"x": 2.0})], on_error="skip")
    assert kiln.labels == ["anonymous task"]


def test_fire_all_task_that_is_no_task() -> None:
    kiln = Kiln()
    with pytest.raises(TypeError, match="fire\\(\\) method or be callable, got int"):
        kiln.fire_all([Emit({"x": 1.0}), 5])
    assert kiln.labels == ["anonymous task"]


@pytest.mark.usefixtures("small_chunks")
def test_fire_all_failures_across_chunks() -> None:
    kiln = Kiln()
    tasks: list[object] = []
    for i in range(10):
        tasks.append(Named({"i": float(i)}, f"t{i}"))
        if i % 4 == 1:
            tasks.append(Raising(ValueError(f"no {i}"), f"r{i}"))
    outputs = kiln.fire_all(tasks, on_error="skip")
    assert [o.value for o in outputs] == [None] * 10
    assert kiln.labels == [f"t{i}" for i in range(10)]
    assert [label for label, _ in kiln.failures] == ["r1", "r5", "r9"]
    assert [str(error.__cause__) for _, error in kiln.failures] == ["no 1", "no 5", "no 9"]
    assert all(isinstance(error, TaskPanickedError) for _, error in kiln.failures)

    kiln = Kiln()
    with pytest.raises(TaskPanickedError, match="'r5'") as info:
        kiln.fire_all(tasks[3:])
    assert isinstance(info.value.__cause__, ValueError)
    assert kiln.labels == ["t2", "t3", "t4", "t5"] and kiln.failures == []


@pytest.mark.usefixtures("small_chunks")
def test_fire_all_base_exceptions_propagate_and_keep_earlier_tasks() -> None:
    kiln = Kiln()
    tasks = [Named({"i": float(i)}, f"t{i}") for i in range(7)]
    tasks.insert(5, Raising(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        kiln.fire_all(tasks, on_error="skip")
    assert kiln.labels == [f"t{i}" for i in range(5)]

    def generated() -> Iterator[object]:
        yield from tasks[:4]
        raise LookupError("the source failed")

    kiln = Kiln()
    with pytest.raises(LookupError, match="the source failed"):
        kiln.fire_all(generated())
    assert kiln.labels == [f"t{i}" for i in range(4)]


def test_fire_all_label_that_raises_propagates() -> None:
    class BadLabel(Emit):
        def label(self) -> str:
            raise AttributeError("no label today")

    kiln = Kiln()
    with pytest.raises(AttributeError, match="no label today"):
        kiln.fire_all([Emit({"x": 1.0}), BadLabel({"x": 2.0})], on_error="skip")
    assert kiln.labels == ["anonymous task"]


@pytest.mark.usefixtures("small_chunks")
def test_fire_all_hooks_keep_their_positions_across_chunks() -> None:
    kiln = Kiln()
    tasks = [(Hooked if i % 3 == 2 else Named)({"x": float(i)}, f"t{i}") for i in range(11)]
    kiln.fire_all(tasks)
    kiln.cool()
    hooked = [entry.label for entry in kiln.entries if entry.cooled_metrics]
    assert hooked == ["t2", "t5", "t8"]
    assert kiln.metric_names == ["x", "hooked"]


def test_fire_all_records_times_and_durations() -> None:
    class Sleepy(Emit):
        def fire(self) -> Any:
            time.sleep(0.002)
            return super().fire()

    kiln = Kiln()
    before = time.time() * 1000.0
    kiln.fire_all([Sleepy({"x": float(i)}) for i in range(5)])
    after = time.time() * 1000.0
    entries = kiln.entries
    fired = [entry.metadata.fired_at.as_millis() for entry in entries]
    # clocks: one wall-clock reading per chunk, then the monotonic clock (1 ms slack)
    assert before - 1.0 <= fired[0] and fired[-1] <= after + 1.0
    assert all(later - earlier >= 2.0 for earlier, later in itertools.pairwise(fired))
    assert all(0.002 <= entry.metadata.fire_duration < 1.0 for entry in entries)


# --- both backends agree ------------------------------------------------------------------
_NAMES = ["a", "b", "c", "d"]
_VALUES = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(-(2**70), 2**70),
    st.booleans(),
    st.floats(allow_nan=False, allow_infinity=False, width=32).map(np.float32),
    st.integers(-(2**40), 2**40).map(np.int64),
)
_TASKS = st.lists(
    st.one_of(
        st.tuples(
            st.just("emit"),
            st.lists(st.sampled_from(_NAMES), unique=True).flatmap(
                lambda names: st.fixed_dictionaries({name: _VALUES for name in names})
            ),
        ),
        st.tuples(st.just("raise"), st.just({})),
        st.tuples(st.just("hook"), st.fixed_dictionaries({"a": st.floats(-5, 5)})),
    ),
    max_size=40,
)


def _build(spec: list[tuple[str, dict[str, Any]]]) -> list[object]:
    tasks: list[object] = []
    for position, (kind, metrics) in enumerate(spec):
        if kind == "emit":
            tasks.append(Named(metrics, f"t{position}") if position % 2 else Emit(metrics))
        elif kind == "raise":
            tasks.append(Raising(RuntimeError(str(position)), f"r{position}"))
        else:
            tasks.append(Hooked(metrics, f"h{position}"))
    return tasks


def _fire(which: str, spec: list[tuple[str, dict[str, Any]]], on_error: str) -> dict[str, Any]:
    previous = _backend.name
    _backend.use(which)
    try:
        kiln = Kiln()
        outcome = "ok"
        try:
            kiln.fire_all(_build(spec), on_error=on_error)  # type: ignore[arg-type]
        except (InvalidMetricError, TaskPanickedError) as error:
            outcome = f"{type(error).__name__}: {error}"
        labels, names, values = kiln.metric_matrix()
        return {
            "outcome": outcome,
            "labels": labels,
            "names": names,
            "values": values,
            "failures": [label for label, _ in kiln.failures],
            "hooks": sorted(kiln._recording.hooks),
            "durations": len(kiln.entries),
        }
    finally:
        _backend.use(previous)


# NumPy warns when a float32 meets an int beyond its range while values are summed.
@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
@given(spec=_TASKS, on_error=st.sampled_from(["raise", "skip"]), chunk=st.integers(1, 8))
def test_fire_all_backends_record_identically(
    spec: list[tuple[str, dict[str, Any]]], on_error: str, chunk: int, native: Any, backend: str
) -> None:
    if backend != "python":
        pytest.skip("differential test: runs once, under the python parametrisation")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_recording, "CHUNK", chunk)
        numpy_side = _fire("python", spec, on_error)
        native_side = _fire("native", spec, on_error)
    numpy_values = numpy_side.pop("values")
    native_values = native_side.pop("values")
    assert numpy_side == native_side
    np.testing.assert_array_equal(numpy_values, native_values)


class _Bar:
    def __init__(self) -> None:
        self.updates: list[int] = []

    def update(self, count: int) -> None:
        self.updates.append(count)

    def close(self) -> None:
        pass


@pytest.mark.parametrize("on_error", ["raise", "skip"])
def test_fire_all_chunks_end_on_time_so_progress_moves(
    monkeypatch: pytest.MonkeyPatch, on_error: str
) -> None:
    bar = _Bar()
    monkeypatch.setattr(kiln_module, "progress_bar", lambda tasks, progress: bar)
    monkeypatch.setattr(_recording, "CHUNK_SECONDS", 0.0)  # every task ends its chunk
    tasks: list[object] = [Named({"i": float(i)}, f"t{i}") for i in range(5)]
    if on_error == "skip":
        tasks.insert(2, Raising(ValueError("no")))
    kiln = Kiln()
    kiln.fire_all(tasks, progress=True, on_error=on_error)  # type: ignore[arg-type]
    assert [count for count in bar.updates if count] == [1] * len(tasks)
    assert kiln.labels == [f"t{i}" for i in range(5)]

    bar.updates.clear()
    monkeypatch.setattr(_recording, "CHUNK_SECONDS", 60.0)
    Kiln().fire_all(tasks, progress=True, on_error=on_error)  # type: ignore[arg-type]
    assert bar.updates == [len(tasks)]


# --- values that only look like numbers, names that misbehave, re-entrancy -----------------
class _Sneaky:
    """Not a number, but ``0 + sneaky`` is 0.0."""

    def __radd__(self, other: object) -> float:
        return 0.0


class _Ninety(float):
    def __float__(self) -> float:
        return 99.0


@pytest.mark.parametrize(
    "metrics",
    [{"a": 10**400, "b": -(10**400)}, {"a": 1.0, "b": _Sneaky()}],
    ids=["cancelling-huge-ints", "radd-object"],
)
def test_values_are_checked_one_by_one_not_by_their_sum(metrics: dict[str, object]) -> None:
    for record in ("fire_all", "fire_and_record", "add_entry"):
        kiln = Kiln()
        kiln.add_entry("ok", {"a": 1.0, "b": 2.0})
        with pytest.raises(InvalidMetricError, match=r"task 'bad'.*must be a finite real"):
            if record == "fire_all":
                kiln.fire_all([Named({"a": 0.0, "b": 0.0}, "fine"), Named(metrics, "bad")])
            elif record == "fire_and_record":
                kiln.fire_and_record(Named(metrics, "bad"))
            else:
                kiln.add_entry("bad", metrics)
        kept = ["ok", "fine"] if record == "fire_all" else ["ok"]
        assert kiln.labels == kept
        assert kiln.metric_matrix()[2].shape == (len(kept), 2)


def test_float_subclasses_are_read_through_float() -> None:
    kiln = Kiln()
    kiln.fire_all([Emit({"x": _Ninety(1.0), "y": np.float64(2.5)})])
    kiln.add_entry("t", {"x": _Ninety(1.0), "y": 1.0})
    assert kiln.metric_matrix()[2].tolist() == [[99.0, 2.5], [99.0, 1.0]]


def test_a_value_that_edits_the_metrics_while_converted() -> None:
    output = TaskOutput(None, {"a": 1.0})

    class Editing(float):
        def __float__(self) -> float:
            output.metrics["zz"] = 5.0
            return 2.0

    output.metrics["b"] = Editing(7.0)
    kiln = Kiln()
    kiln.fire_all([lambda: output])
    # the names are those the output had when it was validated, the value is float(value)
    assert kiln.metric_names == ["a", "b"]
    assert kiln.metric_matrix()[2].tolist() == [[1.0, 2.0]]


def test_a_name_whose_comparison_raises_stops_keeping_earlier_tasks() -> None:
    class Touchy(str):
        __hash__ = str.__hash__

        def __eq__(self, other: object) -> bool:
            raise RuntimeError("eq boom")

    kiln = Kiln()
    with pytest.raises(RuntimeError, match="eq boom"):
        kiln.fire_all([Emit({"a": 1.0}), Emit({Touchy("a"): 2.0})])
    assert kiln.labels == ["anonymous task"] and kiln.metric_names == ["a"]


def test_tasks_may_not_call_back_into_the_kiln_while_it_fires() -> None:
    kiln = Kiln()

    class Meddling(Emit):
        def __init__(self, action: str) -> None:
            super().__init__({"x": 1.0})
            self.action = action

        def fire(self) -> Any:
            if self.action == "add_entry":
                kiln.add_entry("inner", {"x": 0.0})
            elif self.action == "reset":
                kiln.reset()
            elif self.action == "cool":
                kiln.cool()
            else:
                kiln.fire_all([Emit({"x": 2.0})])
            return super().fire()

    for action in ("add_entry", "reset", "cool", "fire_all"):
        kiln.reset()
        with pytest.raises(TaskPanickedError) as info:
            kiln.fire_all([Emit({"x": 0.0}), Meddling(action), Emit({"x": 3.0})])
        assert isinstance(info.value.__cause__, CrackleError)
        assert "from inside a task that fire_all() is firing" in str(info.value.__cause__)
        assert kiln.metric_matrix()[2].tolist() == [[0.0]]
    kiln.add_entry("after", {"x": 4.0})  # usable again once fire_all returned
    assert kiln.labels == ["anonymous task", "after"]


def test_an_interrupt_while_a_chunk_is_stored_still_stores_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from crackle_runtime._store import MetricStore

    real = MetricStore.append_chunk
    calls = []

    def interrupted(self: MetricStore, *chunk: Any) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise KeyboardInterrupt
        real(self, *chunk)

    monkeypatch.setattr(MetricStore, "append_chunk", interrupted)
    kiln = Kiln()
    with pytest.raises(KeyboardInterrupt):
        kiln.fire_all([Emit({"x": float(i)}) for i in range(5)])
    assert kiln.metric_matrix()[2][:, 0].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
