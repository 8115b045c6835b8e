"""The kiln: recording, lifecycle, bad input, hooks, executors (SPEC §3, §4, §8)."""

from __future__ import annotations

import datetime as dt
import math
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pytest

from crackle_runtime import (
    CrackleTask,
    GlazeLayer,
    InvalidMetricError,
    Kiln,
    KilnCooledError,
    TaskOutput,
    TaskPanickedError,
    ThermalProfile,
    Timestamp,
)


class Sensor(CrackleTask):
    def __init__(self, reading: float, sid: str) -> None:
        self.reading, self.sid = reading, sid

    def fire(self) -> TaskOutput:
        return TaskOutput(
            self.reading, {"value": self.reading, "is_anomaly": float(self.reading > 40)}
        )

    def label(self) -> str:
        return self.sid


class Exploding(CrackleTask):
    def fire(self) -> TaskOutput:
        raise RuntimeError("boom")

    def label(self) -> str:
        return "exploding"


class Bad(CrackleTask):
    def __init__(self, metrics: dict[str, object]) -> None:
        self.metrics = metrics

    def fire(self) -> TaskOutput:
        return TaskOutput(None, self.metrics)

    def label(self) -> str:
        return "bad"


class Doubling(CrackleTask):
    """Its cool hook reports a corrected metric that overrides the fired one."""

    calls = 0

    def __init__(self, x: float) -> None:
        self.x = x

    def fire(self) -> TaskOutput:
        return TaskOutput(self.x, {"x": self.x})

    def label(self) -> str:
        return f"d{self.x:g}"

    def cool(self, output, all_metrics):  # type: ignore[no-untyped-def]
        Doubling.calls += 1
        assert len(all_metrics) == self.expected_entries
        return {"x": output.value * 2, "seen": float(len(all_metrics))}


def _plain_task() -> TaskOutput:
    return TaskOutput(1, [("a", 1.0), ("b", 2)])


class DuckTask:
    def fire(self) -> TaskOutput:
        return TaskOutput.simple(3).with_metric("duck", 3.0)


# --- tasks and outputs -------------------------------------------------------------------
def test_task_output_forms() -> None:
    out = TaskOutput(5, [("a", 1.0), ("b", 2.0)])
    assert out.metrics == {"a": 1.0, "b": 2.0}
    assert list(out.metrics) == ["a", "b"]
    assert TaskOutput.simple(1).metrics == {}
    chained = TaskOutput.simple(1).with_metric("x", 1.0).with_metric("y", 2.0)
    assert chained.metrics == {"x": 1.0, "y": 2.0}
    # construction does not validate; recording does
    assert TaskOutput(None, {"x": "nope"}).metrics == {"x": "nope"}


def test_fire_and_record_sensor_example() -> None:
    kiln = Kiln()
    out = kiln.fire_and_record(Sensor(22.5, "sensor-1"))
    assert out.value == 22.5
    assert kiln.task_count == len(kiln) == 1
    entry = kiln.entries[0]
    assert entry.label == "sensor-1"
    assert entry.metrics == {"value": 22.5, "is_anomaly": 0.0}
    assert entry.metadata.fire_duration >= 0.0
    assert entry.metadata.cooled_at is None
    assert abs(entry.metadata.fired_at.as_millis() - time.time() * 1000) < 60_000


def test_duck_typed_and_callable_tasks() -> None:
    kiln = Kiln()
    kiln.fire_and_record(DuckTask())
    kiln.fire_and_record(_plain_task)
    assert kiln.labels == ["anonymous task", "_plain_task"]
    assert kiln.metric_names == ["duck", "a", "b"]
    with pytest.raises(TypeError, match="fire"):
        kiln.fire_and_record(42)


def test_fire_task_does_not_record() -> None:
    kiln = Kiln()
    assert kiln.fire_task(Sensor(1.0, "s")).value == 1.0
    assert kiln.task_count == 0


def test_metric_names_in_first_seen_order_and_matrix() -> None:
    kiln = Kiln()
    kiln.add_entry("t1", {"zeta": 1.0, "alpha": 2.0})
    kiln.add_entry("t2", {"mid": 3.0, "zeta": 4.0})
    kiln.add_entry("t3", [("alpha", 5), ("omega", True)])
    assert kiln.metric_names == ["zeta", "alpha", "mid", "omega"]
    labels, names, values = kiln.metric_matrix()
    assert labels == ["t1", "t2", "t3"]
    assert names == ["zeta", "alpha", "mid", "omega"]
    np.testing.assert_array_equal(
        values,
        [[1.0, 2.0, np.nan, np.nan], [4.0, np.nan, 3.0, np.nan], [np.nan, 5.0, np.nan, 1.0]],
    )
    assert values.dtype == np.float64


def test_storage_grows_past_flush_and_capacity_boundaries() -> None:
    kiln = Kiln()
    n = 70_000  # crosses the pending-batch size and several buffer doublings
    for i in range(n):
        kiln.add_entry(f"t{i}", {"i": float(i), "half": float(i % 2)} if i % 3 else {"i": float(i)})
    labels, names, values = kiln.metric_matrix()
    assert len(labels) == n and names == ["i", "half"]
    np.testing.assert_array_equal(values[:, 0], np.arange(n))
    expected_half = np.where(np.arange(n) % 3 == 0, np.nan, np.arange(n) % 2)
    np.testing.assert_array_equal(values[:, 1], expected_half)


@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        (1, 1.0),
        (True, 1.0),
        (2.5, 2.5),
        (np.float32(1.5), 1.5),
        (np.int64(7), 7.0),
        (np.bool_(True), 1.0),
        (Fraction(1, 4), 0.25),
    ],
)
def test_accepted_metric_values(value: object, accepted: float) -> None:
    kiln = Kiln()
    kiln.add_entry("t", {"m": value})
    assert kiln.entries[0].metrics == {"m": accepted}


@pytest.mark.parametrize(
    "value", [math.nan, math.inf, -math.inf, "1.0", None, 1 + 2j, Decimal("1.5"), [1.0], 10**400]
)
def test_invalid_metric_values_name_task_and_metric_and_record_nothing(value: object) -> None:
    kiln = Kiln()
    kiln.add_entry("before", {"ok": 1.0})
    with pytest.raises(InvalidMetricError, match=r"task 'bad'.*metric 'broken'") as info:
        kiln.fire_and_record(Bad({"fine": 1.0, "broken": value}))
    assert info.value.task == "bad" and info.value.metric == "broken"
    assert kiln.labels == ["before"]
    assert kiln.metric_names == ["ok"]
    kiln.add_entry("after", {"ok": 2.0})
    assert kiln.metric_matrix()[2].tolist() == [[1.0], [2.0]]


@pytest.mark.parametrize("name", ["", 3, None])
def test_invalid_metric_names(name: object) -> None:
    kiln = Kiln()
    with pytest.raises(InvalidMetricError, match=r"task 't'.*non-empty strings"):
        kiln.add_entry("t", {name: 1.0})  # type: ignore[dict-item]
    assert kiln.task_count == 0


def test_add_entry_and_fire_all_invalid_paths() -> None:
    kiln = Kiln()
    with pytest.raises(InvalidMetricError, match="metric 'x'"):
        kiln.add_entry("t", [("x", math.nan)])
    with pytest.raises(InvalidMetricError, match="task 'bad'"):
        kiln.fire_all([Sensor(1.0, "a"), Bad({"x": math.inf}), Sensor(2.0, "b")])
    assert kiln.labels == ["a"]


def test_task_that_raises_gives_task_panicked_error_with_cause() -> None:
    kiln = Kiln()
    with pytest.raises(TaskPanickedError, match="exploding") as info:
        kiln.fire_and_record(Exploding())
    assert isinstance(info.value.__cause__, RuntimeError)
    assert kiln.task_count == 0
    with pytest.raises(TaskPanickedError):
        kiln.fire_task(Exploding())


def test_fire_all_raise_stops_at_first_failure_keeping_earlier() -> None:
    kiln = Kiln()
    tasks = [Sensor(1.0, "a"), Sensor(2.0, "b"), Exploding(), Sensor(3.0, "c")]
    with pytest.raises(TaskPanickedError) as info:
        kiln.fire_all(tasks)
    assert isinstance(info.value.__cause__, RuntimeError)
    assert kiln.labels == ["a", "b"]


def test_fire_all_skip_records_every_success_and_lists_failures() -> None:
    kiln = Kiln()
    tasks = [Sensor(1.0, "a"), Exploding(), Sensor(3.0, "c"), Exploding()]
    outputs = kiln.fire_all(tasks, on_error="skip")
    assert [o.value for o in outputs] == [1.0, 3.0]
    assert kiln.labels == ["a", "c"]
    assert [label for label, _ in kiln.failures] == ["exploding", "exploding"]
    assert all(isinstance(err.__cause__, RuntimeError) for _, err in kiln.failures)
    kiln.reset()
    assert kiln.failures == [] and kiln.task_count == 0
    with pytest.raises(ValueError, match="on_error"):
        kiln.fire_all([], on_error="ignore")  # type: ignore[arg-type]


@pytest.mark.parametrize("executor_type", [ThreadPoolExecutor, ProcessPoolExecutor])
def test_fire_all_with_executor_keeps_submission_order(executor_type: type) -> None:
    kiln = Kiln()
    tasks = [Sensor(float(i), f"s{i}") for i in range(40)]
    with executor_type(max_workers=2) as pool:
        outputs = kiln.fire_all(tasks, executor=pool)
    assert [o.value for o in outputs] == [float(i) for i in range(40)]
    assert kiln.labels == [f"s{i}" for i in range(40)]


def test_fire_all_with_executor_skip_and_hooks_run_on_the_callers_task() -> None:
    kiln = Kiln()
    tasks = [Doubling(1.0), Exploding(), Doubling(2.0)]
    for task in tasks:
        task.expected_entries = 2  # type: ignore[attr-defined]
    with ThreadPoolExecutor(max_workers=2) as pool:
        kiln.fire_all(tasks, executor=pool, on_error="skip")
    assert kiln.labels == ["d1", "d2"]
    assert len(kiln.failures) == 1
    kiln.cool()
    assert [e.cooled_metrics["x"] for e in kiln.entries] == [2.0, 4.0]


def test_cool_hooks_are_called_and_override_for_detection() -> None:
    Doubling.calls = 0
    kiln = Kiln(ThermalProfile.no_detection())
    tasks = [Doubling(float(i)) for i in range(1, 4)]
    for task in tasks:
        task.expected_entries = 3  # type: ignore[attr-defined]
    kiln.fire_all(tasks)
    kiln.add_entry("plain", {"x": 10.0})
    for task in tasks:
        task.expected_entries = 4  # type: ignore[attr-defined]
    kiln.cool()
    assert Doubling.calls == 3
    entries = kiln.entries
    assert entries[0].metrics == {"x": 1.0}
    assert entries[0].cooled_metrics == {"x": 2.0, "seen": 4.0}
    assert entries[0].all_metrics() == {"x": 2.0, "seen": 4.0}
    assert entries[3].cooled_metrics == {}
    _, names, values = kiln.metric_matrix()
    assert names == ["x", "seen"]
    np.testing.assert_array_equal(values[:, 0], [2.0, 4.0, 6.0, 10.0])
    assert all(e.metadata.cooled_at is not None for e in entries)


def test_hooks_run_below_min_tasks() -> None:
    Doubling.calls = 0
    kiln = Kiln()
    task = Doubling(1.0)
    task.expected_entries = 1  # type: ignore[attr-defined]
    kiln.fire_and_record(task)
    report = kiln.cool()
    assert Doubling.calls == 1
    assert list(report) == []


def test_glaze_layer_adds_derived_metrics_and_label() -> None:
    glazed = (
        GlazeLayer(Sensor(50.0, "s1"))
        .with_derived_metric("double", lambda out: out.value * 2)
        .with_label("glazed")
    )
    kiln = Kiln(ThermalProfile.no_detection())
    kiln.fire_and_record(glazed)
    entry = kiln.entries[0]
    assert entry.label == "glazed"
    assert entry.metrics == {"value": 50.0, "is_anomaly": 1.0, "double": 100.0}
    kiln.cool()
    assert kiln.entries[0].cooled_metrics == {"double": 100.0}
    assert GlazeLayer(Sensor(1.0, "inner")).label() == "inner"


def test_lifecycle_cooled_kiln_refuses_recording_until_reset() -> None:
    kiln = Kiln()
    for i in range(3):
        kiln.add_entry(f"t{i}", {"x": float(i)})
    first = kiln.cool()
    assert kiln.is_cooled
    assert kiln.cool() is first
    for record in (
        lambda: kiln.add_entry("t", {"x": 1.0}),
        lambda: kiln.fire_and_record(Sensor(1.0, "s")),
        lambda: kiln.fire_all([Sensor(1.0, "s")]),
        lambda: kiln.add_matrix(np.ones((1, 1)), ["x"]),
    ):
        with pytest.raises(KilnCooledError):
            record()
    kiln.reset()
    assert not kiln.is_cooled and kiln.task_count == 0
    kiln.add_entry("t", {"x": 1.0})
    assert kiln.task_count == 1


def test_add_matrix_records_in_bulk_and_validates_all_or_nothing() -> None:
    kiln = Kiln()
    kiln.add_entry("first", {"b": 9.0})
    values = np.array([[1.0, np.nan], [3.0, 4.0]])
    kiln.add_matrix(values, ["a", "b"], labels=["r0", "r1"])
    kiln.add_matrix(np.array([[5.0, 6.0]]), ["a", "c"])
    labels, names, matrix = kiln.metric_matrix()
    assert labels == ["first", "r0", "r1", "task-3"]
    assert names == ["b", "a", "c"]
    np.testing.assert_array_equal(
        matrix,
        [[9.0, np.nan, np.nan], [np.nan, 1.0, np.nan], [4.0, 3.0, np.nan], [np.nan, 5.0, 6.0]],
    )
    with pytest.raises(InvalidMetricError, match=r"task 'x1'.*metric 'b'"):
        kiln.add_matrix(np.array([[1.0, 2.0], [3.0, np.inf]]), ["a", "b"], labels=["x0", "x1"])
    with pytest.raises(InvalidMetricError, match="columns"):
        kiln.add_matrix(np.ones((2, 3)), ["a", "b"])
    with pytest.raises(InvalidMetricError, match="unique"):
        kiln.add_matrix(np.ones((2, 2)), ["a", "a"])
    with pytest.raises(InvalidMetricError, match="numeric"):
        kiln.add_matrix(np.array([["x"]]), ["a"])
    with pytest.raises(InvalidMetricError, match="labels"):
        kiln.add_matrix(np.ones((2, 1)), ["a"], labels=["only-one"])
    assert kiln.task_count == 4


def test_timestamp() -> None:
    stamp = Timestamp.from_millis(1_700_000_000_000)
    assert stamp.as_millis() == 1_700_000_000_000
    assert stamp.to_datetime() == dt.datetime(2023, 11, 14, 22, 13, 20, tzinfo=dt.UTC)
    assert Timestamp.from_millis(1) < Timestamp.from_millis(2)
    assert {Timestamp.from_millis(5), Timestamp.from_millis(5)} == {Timestamp.from_millis(5)}
    assert Timestamp.now().elapsed() < 5.0
    assert stamp.elapsed() > 0


def test_to_and_from_pandas_round_trip() -> None:
    pd = pytest.importorskip("pandas")
    kiln = Kiln()
    kiln.add_entry("a", {"x": 1.0, "y": 2.0})
    kiln.add_entry("b", {"x": 3.0})
    frame = kiln.to_pandas()
    assert list(frame.index) == ["a", "b"] and list(frame.columns) == ["x", "y"]
    assert math.isnan(frame.loc["b", "y"])
    df = pd.DataFrame({"name": ["p", "q"], "v": [1.0, 2.0], "s": ["u", "w"]})
    back = Kiln.from_pandas(df, label="name")
    assert back.labels == ["p", "q"] and back.metric_names == ["v"]


def test_kiln_is_usable_from_several_threads() -> None:
    kiln = Kiln()

    def record(offset: int) -> None:
        for i in range(2000):
            kiln.add_entry(f"t{offset}-{i}", {"x": float(i)})

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(record, range(4)))
    assert kiln.task_count == 8000
    assert np.nansum(kiln.metric_matrix()[2]) == 4 * sum(range(2000))
