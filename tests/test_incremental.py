"""Incremental cooling (SPEC §14): ``extend()`` then ``cool()`` equals a cool of every task;
``merge()`` appends another kiln's tasks; the state-computed tables equal the kernels'."""

from __future__ import annotations

import itertools
import re
from typing import Any

import numpy as np
import pytest
import scipy.signal
from hypothesis import example, given, settings
from hypothesis import strategies as st

from crackle_runtime import (
    CoolingState,
    CrackleError,
    Kiln,
    KilnCooledError,
    TaskOutput,
    _backend,
    _state,
)
from crackle_runtime._incremental import conservation_table
from crackle_runtime._numpy.detect import correlation as numpy_correlation
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


@pytest.mark.usefixtures("small_buckets")
@pytest.mark.parametrize("before", ["nothing", "tasks without metrics"])
def test_a_kiln_cooled_without_metrics_cools_again_after_extend_and_merge(before: str) -> None:
    values = _matrix(400, seed=6)
    first = 0 if before == "nothing" else 5

    def cooled() -> Kiln:
        kiln = Kiln()
        for i in range(first):
            kiln.add_entry(f"empty-{i}", {})
        kiln.cool()
        return kiln

    labels = [f"empty-{i}" for i in range(first)] + _labels(400)
    everything = Kiln()
    for i in range(first):
        everything.add_entry(f"empty-{i}", {})
    everything.add_matrix(values, NAMES, _labels(400))
    expected = everything.cool()
    assert len(expected) > 0
    extended = cooled()
    extended.extend()
    extended.add_matrix(values, NAMES, _labels(400))
    _assert_same_report(extended.cool(), expected)
    other = Kiln()
    other.add_matrix(values, NAMES, _labels(400))
    merged = cooled().merge(other)
    assert merged.labels == labels
    _assert_same_report(merged.cool(), expected)


class _Hooked:
    """A task whose ``cool`` hook adds the metric ``hooked`` (after the recorded ones)."""

    def __init__(self, row: np.ndarray) -> None:
        self.row = row

    def fire(self) -> TaskOutput:
        return TaskOutput(None, _present(self.row))

    def cool(self, output: Any, snapshot: Any) -> dict[str, float]:
        return {"hooked": float(np.nansum(self.row))}


@pytest.mark.usefixtures("small_buckets")
def test_new_metrics_after_a_hook_metric_keep_the_state_in_the_kilns_order() -> None:
    # The hook's metric comes after the recorded ones; a metric first recorded after
    # extend() comes before it in the kiln's order but after it in the merged state's.
    values = _matrix(300, seed=8)
    kiln = Kiln()
    kiln.fire_all([_Hooked(row) for row in values[:200]])
    kiln.cool()
    kiln.extend()
    for i, row in enumerate(values[200:], start=200):
        kiln.add_entry(f"late-{i}", {**_present(row), "late": float(i % 7)})
    report = kiln.cool()
    assert report.task_count == 300
    again = Kiln()
    again.fire_all([_Hooked(row) for row in values[:200]])
    for i, row in enumerate(values[200:], start=200):
        again.add_entry(f"late-{i}", {**_present(row), "late": float(i % 7)})
    _assert_same_report(report, again.cool())


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


_EQUAL_HALVES = np.array(
    [
        [1.0, 0.0, np.nan, -2.0, 0.0, -2.0, 1.0],  # both halves' means -1/3
        [1.0, 1.0, 1.0, 0.0, -1.0, -0.0, 2.0],
        [-1.0, -0.0, -1.0, -1.0, -0.0, 0.0, -0.0],
    ]
)


@given(_columns(), st.sampled_from([0.0, 0.1, 0.5]))
@example((_EQUAL_HALVES, 1, [0, 7]), 0.0)
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
        shifts = float(got["shift"][metric]), float(expected["shift"][metric])
        if max(abs(shift - sensitivity) for shift in shifts) <= 1e-12:
            # "shift > sensitivity" on a shift equal to it to rounding (equal halves' means
            # from the state's merged moments and the kernel's sums): either answer holds
            got["detected"][metric] = expected["detected"][metric]
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


def _gathered(columns: np.ndarray, spans: list[tuple[int, int]], tail: int) -> np.ndarray:
    """The positions of ``spans`` plus the latest ``tail`` tasks."""
    keep = np.zeros(columns.shape[1], dtype=bool)
    for low, high in spans:
        keep[low:high] = True
    keep[columns.shape[1] - tail :] = True
    return np.flatnonzero(keep).astype(np.int64)


def _gather_in_rounds(
    state: CoolingState, columns: np.ndarray, metrics: list[int], tail: int
) -> tuple[np.ndarray, int]:
    """The positions a cluster's client gathers: state_rows_needed's spans, asked again
    with what was gathered until nothing more is needed, plus the latest ``tail`` tasks."""
    kernels = _backend.kernels()
    selected = np.array(metrics, dtype=np.int64)
    spans: list[tuple[int, int]] = []
    rounds = 0
    while True:
        positions = _gathered(columns, spans, 0)
        more = kernels.state_rows_needed(
            state.flat, selected, np.ascontiguousarray(columns[:, positions]), positions
        )
        assert more.shape[1] == 2 and np.all(more[:, 0] < more[:, 1])
        if more.shape[0] == 0:
            break
        spans.extend((int(a), int(b)) for a, b in more)
        rounds += 1
        assert rounds < 50
    return _gathered(columns, spans, tail), rounds


@settings(max_examples=40)
@given(_columns(), st.integers(0, 130))
def test_tables_from_gathered_rows_equal_the_tables_of_every_row(
    case: tuple[np.ndarray, int, list[int]], tail: int
) -> None:
    """The filtering pass on the tasks state_rows_needed names (plus the latest tasks for
    a correlation's p-value) gives the tables of every task, bit for bit."""
    columns, bucket, cuts = case
    state = _merged_state(columns, bucket, cuts)
    positions, _ = _gather_in_rounds(state, columns, [0, 1, 2], min(tail, columns.shape[1]))
    kernels = _backend.kernels()
    gathered = np.ascontiguousarray(columns[:, positions])
    selected = np.array([0, 1, 2], dtype=np.int64)
    for name, params in (("phase_transition", {"sensitivity": 0.1}), ("correlation", {})):
        expected = kernels.table_from_state(name, state.flat, columns, selected, params)
        try:
            got = kernels.table_from_state(name, state.flat, gathered, selected, params, positions)
        except ValueError as exc:
            # too few of the latest tasks for a p-value: said, never a wrong value
            assert name == "correlation" and "latest" in str(exc)
            continue
        for field, values in expected.items():
            np.testing.assert_array_equal(got[field], values, err_msg=field)


def test_a_long_series_needs_few_rows_in_few_rounds() -> None:
    """At 200,000 tasks x 3 metrics (a step, AR noise, gaps), the phase-transition
    filtering pass needs a few buckets in a few rounds; both backends name the same ones."""
    rng = np.random.default_rng(11)
    n = 200_000
    columns = scipy.signal.lfilter([1.0], [1.0, -0.5], rng.normal(size=(3, n)), axis=1)
    columns[1, 130_000:] += 1.5
    columns[2, rng.random(n) < 0.1] = np.nan
    state = _merged_state(columns, 1024, [0, 77_777, n])
    positions, rounds = _gather_in_rounds(state, columns, [0, 1, 2], 12_000)
    assert 1 <= rounds <= 6
    assert positions.size < n // 5  # 33,088 of 200,000 (12,000 of them the latest)
    kernels = _backend.kernels()
    selected = np.arange(3, dtype=np.int64)
    gathered = np.ascontiguousarray(columns[:, positions])
    for name in ("phase_transition", "correlation"):
        expected = kernels.table_from_state(name, state.flat, columns, selected, {})
        got = kernels.table_from_state(name, state.flat, gathered, selected, {}, positions)
        for field, values in expected.items():
            np.testing.assert_array_equal(got[field], values, err_msg=field)


def test_state_rows_needed_agrees_between_backends(native: Any, numpy_backend: Any) -> None:
    rng = np.random.default_rng(3)
    columns = rng.normal(size=(3, 5_000))
    columns[0, 2_000:] += 0.7
    columns[2, ::5] = np.nan
    state = _merged_state(columns, 128, [0, 1_500, 5_000])
    selected = np.arange(3, dtype=np.int64)
    first = native.state_rows_needed(state.flat, selected)
    np.testing.assert_array_equal(first, numpy_backend.state_rows_needed(state.flat, selected))
    positions = _gathered(columns, [(int(a), int(b)) for a, b in first], 0)
    gathered = np.ascontiguousarray(columns[:, positions])
    np.testing.assert_array_equal(
        native.state_rows_needed(state.flat, selected, gathered, positions),
        numpy_backend.state_rows_needed(state.flat, selected, gathered, positions),
    )


def test_a_short_tail_gives_the_p_value_of_the_latest_gathered_tasks(
    native: Any, numpy_backend: Any
) -> None:
    """With ``short_tail``, a pair present together on fewer than 10,000 of the latest
    gathered tasks has its p-value from those (the same on both backends); without it,
    that is an error naming the shortfall."""
    rng = np.random.default_rng(5)
    base = rng.normal(size=30_000)
    columns = np.vstack([base, 0.06 * base + rng.normal(size=30_000), rng.normal(size=30_000)])
    columns[1, rng.random(30_000) < 0.5] = np.nan
    state = _merged_state(columns, 4_096, [0, 11_000, 30_000])
    selected = np.arange(3, dtype=np.int64)
    positions = _gathered(columns, [], 8_000)
    gathered = np.ascontiguousarray(columns[:, positions])
    weak = {"threshold": 0.03}
    tables = []
    for kernels in (native, numpy_backend):
        with pytest.raises(ValueError, match="latest gathered tasks hold"):
            kernels.table_from_state("correlation", state.flat, gathered, selected, weak, positions)
        tables.append(
            kernels.table_from_state(
                "correlation", state.flat, gathered, selected, weak, positions, True
            )
        )
    x, y = columns[0, -8_000:], columns[1, -8_000:]
    alone = numpy_correlation.association_p_value(x, y)
    for table in tables:
        assert table["p_value"][0] == pytest.approx(alone, rel=1e-12)
        assert table["n"][0] == np.sum(~np.isnan(columns[1]))
        assert 1e-12 < table["p_value"][0] < 0.05


def test_gathered_rows_name_their_bad_arguments() -> None:
    columns = np.random.default_rng(1).normal(size=(3, 50))
    state = _merged_state(columns, 8, [0, 50])
    kernels = _backend.kernels()
    selected = np.array([0, 1], dtype=np.int64)
    for positions in ([0, 2, 1], [0, 1, 50], [-1, 0, 1]):
        gathered = np.ascontiguousarray(columns[:, :3])
        with pytest.raises(ValueError, match="positions"):
            kernels.table_from_state(
                "correlation", state.flat, gathered, selected, {}, np.array(positions)
            )
    with pytest.raises(ValueError, match="columns"):
        kernels.table_from_state(
            "correlation", state.flat, columns[:, :3].copy(), selected, {}, np.array([0, 1])
        )
    with pytest.raises(ValueError, match="positions"):
        # the buckets of the halves' split were not gathered
        kernels.table_from_state(
            "phase_transition", state.flat, columns[:, :3].copy(), selected, {}, np.arange(3)
        )
    with pytest.raises(ValueError, match="metrics"):
        kernels.state_rows_needed(state.flat, np.array([5]))
    with pytest.raises(ValueError, match="named twice"):
        kernels.table_from_state("correlation", state.flat, columns, np.array([0, 0]), {})
    # a state whose metric counts more values than its buckets hold (bytes from elsewhere)
    bad = state.flat.copy()
    bad[_state.HEADER_WIDTH] *= 2
    with pytest.raises(ValueError, match="metric 0 counts 100"):
        kernels.table_from_state("phase_transition", bad, columns, selected, {})
    with pytest.raises(ValueError, match="metric 0 counts 100"):
        kernels.state_rows_needed(bad, selected)
    with pytest.raises(CrackleError, match="metric 0 counts 100"):
        CoolingState.from_bytes(CoolingState(state.names, bad).to_bytes())
    # every row gathered, but not the rows the state summarises: values made absent
    holed = columns.copy()
    holed[:, 20:30] = np.nan
    with pytest.raises(ValueError, match="not the rows it summarises"):
        kernels.table_from_state("phase_transition", state.flat, holed, selected, {}, np.arange(50))


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
