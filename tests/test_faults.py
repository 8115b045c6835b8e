"""Regression tests for defects found under fault injection (SPEC §8): data loss, hangs,
re-entry, silent conversions and unclear errors. Each test failed before its fix; every
test runs on both backends (the autouse ``backend`` fixture).
"""

from __future__ import annotations

import json
import math
import struct
import threading
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from crackle_runtime import (
    CrackleError,
    CrackleTask,
    InvalidMetricError,
    InvalidProfileError,
    Kiln,
    TaskOutput,
    TaskPanickedError,
    ThermalProfile,
    _persist,
    info,
)
from crackle_runtime.detectors.clustering import ClusteringPattern


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


# --- silent wrong answers and unclear errors -------------------------------------------------


def test_a_range_wider_than_the_float_range_bins_without_overflow() -> None:
    values = np.array([-1e308, 0.0, 1e307, 1e308])
    # equal-width bins do not change under scaling: the same as the halved values (1.5 bits)
    assert info.entropy(values) == info.entropy(values / 2) == 1.5
    assert info.mutual_information(values, values) == 1.5
    assert info.joint_entropy(values, values[::-1].copy()) == 1.5


def test_masked_arrays_are_refused_or_read_as_absent_values() -> None:
    masked = np.ma.masked_array([1.0, 2.0, 3.0, 1e9], mask=[0, 0, 0, 1])
    with pytest.raises(TypeError, match=r"values is a masked array.*compressed\(\)"):
        info.entropy(masked)
    kiln = Kiln()
    kiln.add_matrix(np.ma.masked_array(np.ones((2, 2)), mask=[[0, 1], [0, 0]]), ["p", "q"])
    matrix = kiln.metric_matrix()[2]
    assert np.isnan(matrix[0, 1]) and matrix[[0, 1, 1], [0, 0, 1]].tolist() == [1.0] * 3


def test_names_and_labels_given_as_one_string_are_refused() -> None:
    kiln = Kiln()
    with pytest.raises(TypeError, match="names must be a sequence of strings"):
        kiln.add_matrix(np.ones((2, 2)), "xy")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="labels must be a sequence of strings"):
        kiln.add_matrix(np.ones((2, 1)), ["x"], "ab")  # type: ignore[arg-type]
    assert len(kiln) == 0


def test_a_metric_named_twice_in_pairs_is_an_error() -> None:
    kiln = Kiln()
    with pytest.raises(InvalidMetricError, match="'x' is given more than once"):
        kiln.add_entry("a", [("x", 1.0), ("y", 3.0), ("x", 2.0)])
    with pytest.raises(InvalidMetricError, match="'x' is given more than once"):
        TaskOutput(None, [("x", 1.0), ("x", 2.0)])
    assert len(kiln) == 0


def test_dataframe_complex_columns_are_named_in_the_notes_and_timedeltas_are_seconds() -> None:
    pd = pytest.importorskip("pandas")
    kiln = Kiln.from_pandas(pd.DataFrame({"c": [1 + 2j, 3 + 0j, 1j], "d": [1.0, 2.0, 3.0]}))
    assert kiln.metric_names == ["d"]
    assert kiln.cool().notes == ["'c' takes part in no detector: it is not numeric (complex)"]
    frame = pd.DataFrame({"t": pd.to_timedelta([1.5, None], unit="s"), "d": [1.0, 2.0]})
    matrix = Kiln.from_pandas(frame).metric_matrix()[2]
    assert matrix[0].tolist() == [1.5, 1.0] and np.isnan(matrix[1, 0])


@pytest.mark.parametrize(
    ("call", "argument"),
    [
        (lambda: info.entropy([1.0, 2.0], bins=2**63), "bins"),
        (lambda: info.transfer_entropy([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], lag=2**63), "lag"),
        (lambda: info.permutation_entropy([1.0, 2.0, 3.0], order=-(2**70)), "order"),
        (lambda: info.entropy([10**400, 1]), "values"),
        (lambda: Kiln().mi_matrix(bins=2**64), "bins"),
    ],
)
def test_out_of_range_integers_are_value_errors_naming_the_argument(
    call: Any, argument: str
) -> None:
    with pytest.raises(ValueError, match=rf"^{argument} ") as info_:
        call()
    assert not isinstance(info_.value, OverflowError)


def test_matrix_analyses_check_their_integers_like_the_functions() -> None:
    kiln = Kiln()
    kiln.add_matrix(np.arange(20.0).reshape(10, 2), ["a", "b"])
    for call in (
        lambda: kiln.mi_matrix(bins=True),
        lambda: kiln.transfer_entropy_matrix(lag=True),
        lambda: kiln.permutation_entropies(order=True),
        lambda: Kiln().mi_matrix(bins=True),  # also with nothing recorded
    ):
        with pytest.raises(TypeError, match="must be an integer, got bool"):
            call()


@pytest.mark.parametrize(
    "thresholds",
    [
        {"permutations": 0},
        {"outlier_z": math.inf},
        {"phase_transition_sensitivity": math.inf},
        {"conservation_tolerance": math.inf},
        {"fdr": 10**400},
    ],
)
def test_profiles_refuse_what_cool_would_refuse(thresholds: dict[str, Any]) -> None:
    with pytest.raises(InvalidProfileError, match=next(iter(thresholds))):
        ThermalProfile.default().with_thresholds(**thresholds)


def test_profiles_take_numpy_numbers() -> None:
    profile = ThermalProfile.default().with_thresholds(
        permutations=np.int64(99), outlier_z=np.float32(3.0), min_tasks_for_detection=np.int8(4)
    )
    assert (profile.permutations, profile.min_tasks_for_detection) == (99, 4)
    assert type(profile.permutations) is int and profile.outlier_z == 3.0
    assert ThermalProfile.from_dict(profile.to_dict()) == profile


def _saved(tmp_path: Path) -> Path:
    kiln = Kiln()
    kiln.add_matrix(np.arange(6.0).reshape(3, 2), ["a", "b"])
    path = tmp_path / "run.kiln"
    kiln.save(path)
    return path


def _rewrite(path: Path, header_edit: Any = None, body_edit: Any = None) -> None:
    """Rewrite a saved kiln with valid checksums after editing its header or body."""
    data = path.read_bytes()
    magic = len(_persist.MAGIC)
    version, size, _ = _persist._PREFIX.unpack_from(data, magic)
    start = magic + _persist._PREFIX.size
    header = json.loads(data[start : start + size])
    body = bytearray(data[start + size :])
    if body_edit is not None:
        body_edit(body)
        header["crc32"] = zlib.crc32(bytes(body))
    if header_edit is not None:
        header_edit(header)
    encoded = json.dumps(header).encode().replace(b'"__1e999__"', b"1e999")
    prefix = _persist._PREFIX.pack(version, len(encoded), zlib.crc32(encoded))
    path.write_bytes(data[:magic] + prefix + encoded + bytes(body))


def test_crafted_kiln_files_fail_on_load_with_a_crackle_error(tmp_path: Path) -> None:
    path = _saved(tmp_path)
    _rewrite(path, header_edit=lambda header: header.update(tasks="__1e999__"))
    with pytest.raises(CrackleError, match="header is corrupted"):
        Kiln.load(path)
    path = _saved(tmp_path)
    _rewrite(
        path, body_edit=lambda body: body.__setitem__(slice(0, 8), struct.pack("<d", math.inf))
    )
    with pytest.raises(CrackleError, match="infinite"):
        Kiln.load(path)


def test_a_save_removes_what_killed_saves_of_the_same_file_left(tmp_path: Path) -> None:
    path = _saved(tmp_path)
    stale = tmp_path / f"{_persist.temporary_prefix(path)}abc123.tmp"
    stale.write_bytes(b"x" * 1000)
    other = tmp_path / f"{_persist.temporary_prefix(tmp_path / 'other')}abc.tmp"  # left alone
    other.write_bytes(b"y")
    Kiln.load(path).save(path)
    assert not stale.exists() and other.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [other.name, "run.kiln"]


def test_a_save_in_progress_elsewhere_keeps_its_temporary(tmp_path: Path) -> None:
    fcntl = pytest.importorskip("fcntl")
    path = _saved(tmp_path)
    live = tmp_path / f"{_persist.temporary_prefix(path)}live.tmp"
    with open(live, "wb") as handle:
        # another process's save holds the lock on its temporary (flock locks are per open
        # file description, so a second open file of this process contends like one)
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        Kiln.load(path).save(path)
        assert live.exists()


def test_subnormal_and_huge_metrics_cool_alike_on_both_backends(backend: str) -> None:
    rng = np.random.default_rng(7)
    for scale in (1e-310, 1e-305, 1e300):
        values = rng.normal(size=(30, 3)) * scale
        values[:, 2] = values[:, 0] + values[:, 1]
        kiln = Kiln()
        kiln.add_matrix(values, ["a", "b", "c"])
        kiln.cool()  # LinAlgError on the NumPy backend before


def test_task_outputs_store_ints_and_bools_as_floats() -> None:
    output = TaskOutput("p", {"b": 2, "c": True, "d": np.int32(3), "e": 1.5})
    assert output.metrics == {"b": 2.0, "c": 1.0, "d": 3.0, "e": 1.5}
    assert all(type(value) is float for value in output.metrics.values())
    assert type(output.with_metric("f", 7).metrics["f"]) is float


def test_metric_distance_takes_pairs_as_the_seed_did() -> None:
    pairs = [("a", 1.0), ("b", 2.0)]
    assert ClusteringPattern.metric_distance(pairs, {"a": 4.0, "b": 6.0}) == 5.0
    assert ClusteringPattern.metric_distance(pairs, [("c", 1.0)]) == math.inf
