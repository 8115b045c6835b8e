"""Incremental cooling (SPEC §14): ``extend()`` then ``cool()`` equals a cool of every task;
``merge()`` appends another kiln's tasks; the state-computed tables equal the kernels'."""

from __future__ import annotations

import itertools
import re
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from crackle_runtime import CoolingState, Kiln, KilnCooledError, TaskOutput, _backend, _state
from crackle_runtime._incremental import conservation_table
from crackle_runtime.patterns import CracklePattern

NAMES = ["load", "latency_ms", "doubled", "offset", "ticks", "noise"]


def _matrix(n: int, seed: int = 0) -> np.ndarray:
    """(n, 6) tasks: a level step in latency, a strong correlation, a conserved metric
    offset by 1e9, a counter, gaps."""
    rng = np.random.default_rng(seed)
    load = 10.0 + rng.normal(size=n)
    latency = np.where(np.arange(n) < int(0.62 * n), 100.0, 260.0) + 5.0 * rng.normal(size=n)
    doubled = 2.0 * load + 0.05 * rng.normal(size=n)
    offset = 1e9 + rng.normal(size=n)
    ticks = np.arange(n, dtype=np.float64)
    noise = rng.standard_t(3, size=n)
    values = np.column_stack([load, latency, doubled, offset, ticks, noise])
    values[rng.random(n) < 0.05, 1] = np.nan
    values[rng.random(n) < 0.03, 5] = np.nan
    return values


def _labels(n: int, start: int = 0) -> list[str]:
    return [f"run-{i}" for i in range(start, start + n)]


def _printed(description: str) -> str:
    """The description with each number to 9 significant digits: a sum of 2,000 values near
    1e9 printed to 3 decimals shows 16 digits, more than two summation orders share."""
    return re.sub(r"-?\d+\.\d+", lambda number: f"{float(number.group()):.9g}", description)


def _key(pattern: CracklePattern) -> tuple[Any, ...]:
    return (
        pattern.kind,
        _printed(pattern.description),
        pattern.involved_tasks,
        repr(pattern.details),
    )


def _assert_same_report(got: list[CracklePattern], expected: list[CracklePattern]) -> None:
    assert [_key(p) for p in got] == [_key(p) for p in expected]
    for a, b in zip(got, expected, strict=True):
        assert a.metrics.keys() == b.metrics.keys()
        for name, value in b.metrics.items():
            assert a.metrics[name] == pytest.approx(value, rel=1e-9, abs=1e-300, nan_ok=True), (
                a.description,
                name,
            )


def _present(row: np.ndarray) -> dict[str, float]:
    return {name: v for name, v in zip(NAMES, row.tolist(), strict=True) if v == v}


@pytest.fixture
def small_buckets(monkeypatch: pytest.MonkeyPatch) -> None:
    """Buckets of 64 tasks, so that changes and halves fall inside buckets."""
    monkeypatch.setattr(_state, "DEFAULT_BUCKET_SIZE", 64)


@pytest.mark.usefixtures("small_buckets")
@pytest.mark.parametrize("first", [300, 1000, 1999])
def test_extend_then_cool_equals_cooling_everything(first: int) -> None:
    values = _matrix(2000)
    kiln = Kiln()
    kiln.add_matrix(values[:first], NAMES, _labels(first))
    kiln.cool()
    kiln.extend()
    assert not kiln.is_cooled
    kiln.add_matrix(values[first:], NAMES, _labels(2000 - first, first))
    report = kiln.cool()
    everything = Kiln()
    everything.add_matrix(values, NAMES, _labels(2000))
    expected = everything.cool()
    kinds = {p.kind.value for p in expected}
    assert {"phase transition", "correlation", "conservation law"} <= kinds
    _assert_same_report(report, expected)
    assert report.tests_run == expected.tests_run
    assert report.notes == expected.notes


@pytest.mark.usefixtures("small_buckets")
def test_every_recording_method_works_after_extend_and_repeated_extends() -> None:
    values = _matrix(600, seed=4)
    kiln = Kiln()
    kiln.add_matrix(values[:200], NAMES, _labels(200))
    kiln.cool()
    with pytest.raises(KilnCooledError, match="extend"):
        kiln.add_entry("x", {"load": 1.0})
    kiln.extend()
    kiln.add_entry("run-200", _present(values[200]))
    kiln.fire_and_record(lambda: TaskOutput(None, _present(values[201])))
    kiln.fire_all([lambda i=i: TaskOutput(None, _present(values[i])) for i in range(202, 300)])
    assert np.array_equal(kiln.metric_matrix()[2], values[:300], equal_nan=True)
    kiln.cool()
    kiln.extend()
    kiln.add_matrix(values[300:], NAMES, _labels(300, 300))
    report = kiln.cool()
    everything = Kiln()
    everything.add_matrix(values, NAMES, kiln.labels)
    _assert_same_report(report, everything.cool())


def test_extend_on_an_open_kiln_changes_nothing() -> None:
    kiln = Kiln()
    kiln.add_matrix(_matrix(50), NAMES, _labels(50))
    kiln.extend()
    assert not kiln.is_cooled and kiln.task_count == 50
    assert len(kiln.cool()) == len(Kiln.from_pandas(kiln.to_pandas()).cool())


@pytest.mark.usefixtures("small_buckets")
def test_merge_appends_another_kilns_later_tasks() -> None:
    values = _matrix(900, seed=2)
    kiln = Kiln()
    kiln.add_matrix(values[:500], NAMES, _labels(500))
    kiln.cool()
    later = Kiln()
    # the later kiln has its metrics in another order and one more metric
    later.add_matrix(
        np.column_stack([values[500:, ::-1], np.ones(400)]),
        [*NAMES[::-1], "extra"],
        _labels(400, 500),
    )
    assert kiln.merge(later) is kiln
    assert later.task_count == 400  # unchanged
    assert kiln.task_count == 900 and kiln.labels == _labels(900)
    assert kiln.metric_names == [*NAMES, "extra"]
    everything = Kiln()
    everything.add_matrix(values, NAMES, _labels(900))
    everything.add_matrix(np.ones((0, 1)), ["extra"], [])
    merged_report = kiln.cool()
    matrix = np.column_stack([values, np.r_[np.full(500, np.nan), np.ones(400)]])
    reference = Kiln()
    reference.add_matrix(matrix, [*NAMES, "extra"], _labels(900))
    _assert_same_report(merged_report, reference.cool())
    with pytest.raises(ValueError, match="other"):
        kiln.merge(kiln)
    with pytest.raises(TypeError, match="other must be a Kiln"):
        kiln.merge("kiln")  # type: ignore[arg-type]


def test_merge_into_an_open_kiln_keeps_timings() -> None:
    first, second = Kiln(), Kiln()
    first.add_entry("a", {"x": 1.0})
    second.fire_and_record(lambda: TaskOutput(None, {"x": 2.0}))
    first.merge(second)
    assert first.labels[0] == "a" and first.task_count == 2
    assert first.entries[1].metadata.fire_duration == second.entries[0].metadata.fire_duration
    assert first.entries[1].metadata.fired_at == second.entries[0].metadata.fired_at


# --- the tables from the state equal the kernels' ------------------------------------------


def _kernel(name: str, columns: np.ndarray, params: dict[str, Any]) -> dict[str, np.ndarray]:
    result: dict[str, np.ndarray] = _backend.kernels().run_detector(name, columns, None, params)
    return result


def _assert_tables_equal(
    got: dict[str, np.ndarray], expected: dict[str, np.ndarray], columns: np.ndarray
) -> None:
    """Equal fields; floats to 1e-9 relative, or to what a kernel's sequential mean of n
    values of size |x| carries (n·eps·|x|: its sums are less precise than the state's on
    data offset far from zero); p-values, whose t divides such a difference of means, to
    1e-6."""
    assert got.keys() == expected.keys()
    finite = np.abs(columns[np.isfinite(columns)])
    carried = 1e-13 * columns.shape[1] * float(finite.max(initial=1.0))
    for field, values in expected.items():
        if values.dtype == np.float64:
            rtol = 1e-6 if field == "p_value" else 1e-9
            np.testing.assert_allclose(
                got[field], values, rtol=rtol, atol=carried, equal_nan=True, err_msg=field
            )
        else:
            assert got[field].tolist() == values.tolist(), field


@st.composite
def _columns(draw: st.DrawFn) -> tuple[np.ndarray, int, list[int]]:
    n = draw(st.integers(2, 120))
    kind = draw(st.sampled_from(["normal", "steps", "discrete", "offset"]))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    columns = rng.normal(size=(3, n))
    if kind == "steps":
        cut = draw(st.integers(1, n))
        columns[:, cut:] += draw(st.sampled_from([0.5, 3.0, 50.0]))
    elif kind == "discrete":
        columns = np.round(columns)
    elif kind == "offset":
        columns += 1e6
    columns[rng.random((3, n)) < draw(st.sampled_from([0.0, 0.1, 0.4]))] = np.nan
    bucket = draw(st.integers(1, 40))
    cuts = sorted(set([*draw(st.lists(st.integers(0, n), max_size=4)), 0, n]))
    return columns, bucket, cuts


def _merged_state(columns: np.ndarray, bucket: int, cuts: list[int]) -> CoolingState:
    names = ["x", "y", "z"]
    state = CoolingState.of(names, columns[:, : cuts[1]], bucket_size=bucket)
    for a, b in itertools.pairwise(cuts[1:]):
        state = state.merge(CoolingState.of(names, columns[:, a:b], start=a, bucket_size=bucket))
    return state


def _from_state(
    name: str, state: CoolingState, columns: np.ndarray, metrics: list[int], params: dict[str, Any]
) -> dict[str, np.ndarray]:
    selected = np.array(metrics, dtype=np.int64)
    kernels = _backend.kernels()
    result: dict[str, np.ndarray] = kernels.table_from_state(
        name, state.flat, columns, selected, params
    )
    return result


@given(_columns(), st.sampled_from([0.0, 0.1, 0.5]))
def test_phase_transition_from_state_equals_the_kernel(
    case: tuple[np.ndarray, int, list[int]], sensitivity: float
) -> None:
    columns, bucket, cuts = case
    state = _merged_state(columns, bucket, cuts)
    params = {"sensitivity": sensitivity}
    got = _from_state("phase_transition", state, columns, [0, 1, 2], params)
    expected = _kernel("phase_transition", columns, params)
    for metric in range(3):
        k_got, k_expected = int(got["change_index"][metric]), int(expected["change_index"][metric])
        if k_got != k_expected:
            # a tie to rounding (discrete or constant data): both positions score the same;
            # the p-value, whose residuals are demeaned on each side of the change, differs
            values = columns[metric][~np.isnan(columns[metric])]
            partial = np.cumsum(values - values.mean())
            n = values.size
            score = [partial[k - 1] ** 2 * n / (k * (n - k)) for k in (k_got, k_expected)]
            assert score[0] == pytest.approx(score[1], rel=1e-9, abs=1e-12)
            for field in ("change_index", "p_value", "detected"):
                got[field][metric] = expected[field][metric]
    _assert_tables_equal(got, expected, columns)


@given(_columns(), st.sampled_from([0.05, 0.5, 0.9]))
def test_correlation_from_state_equals_the_kernel(
    case: tuple[np.ndarray, int, list[int]], threshold: float
) -> None:
    columns, bucket, cuts = case
    columns[1] = columns[0] * 2.0 + 0.3 * columns[1]  # a correlated pair
    state = _merged_state(columns, bucket, cuts)
    params = {"threshold": threshold}
    got = _from_state("correlation", state, columns, [0, 1, 2], params)
    _assert_tables_equal(got, _kernel("correlation", columns, params), columns)
    # metrics in another order: the same pairs seen the other way round
    swapped = _from_state("correlation", state, columns, [2, 1, 0], params)
    flipped = columns[::-1].copy()
    _assert_tables_equal(swapped, _kernel("correlation", flipped, params), flipped)


def test_correlation_from_state_reads_the_latest_pairs_of_a_long_series() -> None:
    """Beyond 10,000 tasks having both metrics the p-value reads the latest 10,000 (gaps
    included), as the kernel does; r reads every task."""
    rng = np.random.default_rng(5)
    n = 25_000
    x = np.cumsum(rng.normal(size=n))
    columns = np.vstack([x, x + rng.normal(size=n), rng.normal(size=n)])
    columns[0, rng.random(n) < 0.2] = np.nan
    state = _merged_state(columns, 512, [0, 9_000, 17_321, n])
    params = {"threshold": 0.5}
    got = _from_state("correlation", state, columns, [0, 1, 2], params)
    _assert_tables_equal(got, _kernel("correlation", columns, params), columns)
    assert np.isfinite(got["p_value"][0]) and got["n"][0] > 10_000


def test_tables_from_state_name_their_bad_arguments() -> None:
    columns = np.random.default_rng(1).normal(size=(3, 50))
    state = _merged_state(columns, 8, [0, 50])
    selected = [0, 1]
    with pytest.raises(ValueError, match="name"):
        _from_state("clustering", state, columns, selected, {})
    with pytest.raises(ValueError, match="columns"):
        _from_state("correlation", state, columns[:2], selected, {})
    with pytest.raises(ValueError, match="metrics"):
        _from_state("phase_transition", state, columns, [0, 7], {})
    with pytest.raises(ValueError, match="sensitivity"):
        _from_state("phase_transition", state, columns, selected, {"sensitivity": -1.0})
    with pytest.raises(ValueError, match="threshold"):
        _from_state("phase_transition", state, columns, selected, {"threshold": 0.5})


@given(_columns(), st.sampled_from([0.1, 0.3]))
def test_conservation_from_state_equals_the_kernel(
    case: tuple[np.ndarray, int, list[int]], tolerance: float
) -> None:
    columns, bucket, cuts = case
    columns = np.abs(columns) + 5.0
    state = _merged_state(columns, bucket, cuts)
    params = {"tolerance": tolerance}
    got = conservation_table(state, [0, 1, 2], params)
    _assert_tables_equal(got, _kernel("conservation", columns, params), columns)
