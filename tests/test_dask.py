"""Cooling a Dask DataFrame (SPEC §14) on a real ``dask.distributed.LocalCluster`` (two
worker processes on 127.0.0.1, started and stopped here): the report equals a
single-machine ``cool()`` of the same data, for any number of partitions."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from crackle_runtime import CoolingState, Kiln, ThermalProfile, _frames
from crackle_runtime.patterns import CracklePattern, PatternKind

distributed = pytest.importorskip("distributed")
dd = pytest.importorskip("dask.dataframe")
pd = pytest.importorskip("pandas")

from crackle_runtime import dask as crackle_dask  # noqa: E402 - after the skips


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    with crackle_dask.local_client(2) as client:
        yield client


def _frame(n: int, seed: int = 0) -> Any:
    rng = np.random.default_rng(seed)
    records_in = rng.integers(900, 1100, size=n).astype(np.float64)
    dropped = rng.integers(0, 5, size=n).astype(np.float64)
    latency = np.where(np.arange(n) < int(0.58 * n), 100.0, 240.0) + 4.0 * rng.normal(size=n)
    latency[rng.random(n) < 0.05] = np.nan
    load = 10.0 + rng.normal(size=n)
    frame = pd.DataFrame(
        {
            "run": [f"run-{i:05d}" for i in range(n)],
            "started": 1.7e9 + np.arange(n, dtype=np.float64),  # the order of the tasks
            "records_in": records_in,
            "records_out": records_in - dropped,
            "dropped": dropped,
            "latency_ms": latency,
            "load": load,
            "cpu": 2.0 * load + 0.1 * rng.normal(size=n),
            "offset": 1e9 + rng.normal(size=n),
        }
    )
    # rows in another order than the tasks ran: order_by="started" restores it
    return frame.iloc[rng.permutation(n)].reset_index(drop=True)


def _printed(description: str) -> str:
    return re.sub(r"-?\d+\.\d+", lambda number: f"{float(number.group()):.9g}", description)


def _assert_same_report(got: list[CracklePattern], expected: list[CracklePattern]) -> None:
    key = [(p.kind, _printed(p.description), p.involved_tasks, repr(p.details)) for p in got]
    assert key == [
        (p.kind, _printed(p.description), p.involved_tasks, repr(p.details)) for p in expected
    ]
    for a, b in zip(got, expected, strict=True):
        for name, value in b.metrics.items():
            assert a.metrics[name] == pytest.approx(value, rel=1e-9, nan_ok=True), name


@pytest.mark.parametrize("partitions", [1, 3, 8])
def test_dask_cool_equals_a_single_machine_cool(client: Any, partitions: int) -> None:
    frame = _frame(3000)
    ddf = dd.from_pandas(frame, npartitions=partitions)
    report = crackle_dask.cool(ddf, label="run", order_by="started")
    expected = Kiln.from_pandas(frame, label="run", order_by="started").cool()
    kinds = {p.kind.value for p in expected}
    assert {"phase transition", "correlation", "conservation law"} <= kinds
    _assert_same_report(report, expected)
    assert report.notes == expected.notes
    assert report.tests_run == expected.tests_run


def test_the_merged_state_equals_the_state_of_the_whole_frame(client: Any) -> None:
    frame = _frame(1000, seed=3)
    state = crackle_dask.states(dd.from_pandas(frame, npartitions=5), label="run")
    names = [c for c in frame.columns if c != "run"]
    whole = CoolingState.of(names, frame[names].to_numpy(dtype=np.float64).T)
    assert state.names == whole.names and state.tasks == 1000
    for field in ("count", "mean", "m2", "lag"):
        np.testing.assert_allclose(state.series[field], whole.series[field], rtol=1e-12)
    np.testing.assert_allclose(
        state.pairs["comoment"], whole.pairs["comoment"], rtol=1e-12, atol=1e-6
    )


def test_dask_cool_names_its_bad_arguments(client: Any) -> None:
    ddf = dd.from_pandas(_frame(200), npartitions=2)
    with pytest.raises(ValueError, match="gather_rows must be >= 0, got -1"):
        crackle_dask.cool(ddf, label="run", gather_rows=-1)
    with pytest.raises(ValueError, match="order_by: no column 'nope'"):
        crackle_dask.cool(ddf, order_by="nope")
    with pytest.raises(ValueError, match="label: no column 'nope'"):
        crackle_dask.cool(ddf, label="nope")
    with pytest.raises(TypeError, match="ddf must be a Dask DataFrame"):
        crackle_dask.cool(_frame(10))


def test_a_second_local_cluster_beside_the_first_starts_without_a_warning(client: Any) -> None:
    # The scheduler's HTTP routes used port 8787 even without a dashboard: a second cluster
    # on the machine (another test run, a user's notebook) made Dask warn, which failed
    # under warnings-as-errors. They now take any free port on 127.0.0.1.
    with crackle_dask.local_client(1) as second:
        assert second.scheduler_info()["address"] != client.scheduler_info()["address"]
        assert second.submit(sum, [1, 2]).result() == 3


def _exact(patterns: list[CracklePattern]) -> list[CracklePattern]:
    """The patterns of the detectors a cluster computes from every row: phase transitions,
    correlations and conserved metrics (not laws, which read the sample)."""
    kinds = {PatternKind.PHASE_TRANSITION, PatternKind.CORRELATION, PatternKind.CONSERVATION}
    return [p for p in patterns if p.kind in kinds and "law" not in p.details]


def _sparse_frame(n: int) -> Any:
    """A correlated pair present together on 1 task in 5, and a load: the latest 10,000
    tasks hold too few of the pair for a correlation's p-value (the cluster's client
    gathers more of the latest tasks, doubling, until they hold 10,000)."""
    rng = np.random.default_rng(9)
    base = rng.normal(size=n)
    present = rng.random(n) < 0.2
    return pd.DataFrame(
        {
            "run": [f"run-{i:06d}" for i in range(n)],
            "queue": np.where(present, base, np.nan),
            "wait": np.where(present, 3.0 * base + 0.05 * rng.normal(size=n), np.nan),
            "load": 10.0 + rng.normal(size=n),
        }
    )


def _assert_same_exact(report: Any, expected: Any) -> None:
    got, want = _exact(list(report)), _exact(list(expected))
    assert [(p.kind, _printed(p.description), repr(p.details)) for p in got] == [
        (p.kind, _printed(p.description), repr(p.details)) for p in want
    ]
    for a, b in zip(got, want, strict=True):
        for name, value in b.metrics.items():
            assert a.metrics[name] == pytest.approx(value, rel=1e-9, nan_ok=True), name


def test_above_gather_rows_the_exact_detectors_read_every_row(client: Any) -> None:
    frame = _frame(30_000, seed=5)
    expected = Kiln.from_pandas(frame, label="run", order_by="started").cool()
    assert {p.kind for p in _exact(list(expected))} == {
        PatternKind.PHASE_TRANSITION,
        PatternKind.CORRELATION,
        PatternKind.CONSERVATION,
    }
    reports = [
        crackle_dask.cool(
            dd.from_pandas(frame, npartitions=partitions),
            label="run",
            order_by="started",
            gather_rows=0,
            sample_rows=2_000,
        )
        for partitions in (3, 7)
    ]
    for report in reports:
        assert report.task_count == 30_000
        _assert_same_exact(report, expected)
        found = re.search(r"a coordinated sample of (\d+) tasks", report.notes[-1])
        assert found is not None and 1_500 < int(found.group(1)) < 2_500
    # the sample is keyed on the labels: the same tasks for any partitioning (outliers,
    # fenced within each partition, are tested with planted bursts below)
    first, second = (
        [(p.kind, p.involved_tasks) for p in report if p.kind != PatternKind.OUTLIER]
        for report in reports
    )
    assert first == second


def test_a_correlation_far_from_the_latest_tasks_is_gathered(client: Any) -> None:
    frame = _sparse_frame(100_000)
    expected = Kiln.from_pandas(frame, label="run").cool()
    report = crackle_dask.cool(
        dd.from_pandas(frame, npartitions=3), label="run", gather_rows=0, sample_rows=1_000
    )
    pairs = [p.details["metrics"] for p in report if p.kind == PatternKind.CORRELATION]
    assert ["queue", "wait"] in pairs
    _assert_same_exact(report, expected)


@pytest.mark.parametrize("partitions", [1, 4])
def test_a_sample_of_every_row_gives_the_single_machine_report(
    client: Any, partitions: int
) -> None:
    """With every row in the sample, the report is a single machine's; outliers too when
    one partition holds every row (with more, each is fenced within its partition)."""
    frame = _frame(12_000, seed=2)
    report = crackle_dask.cool(
        dd.from_pandas(frame, npartitions=partitions),
        label="run",
        order_by="started",
        gather_rows=0,
        sample_rows=12_000,
    )
    expected = Kiln.from_pandas(frame, label="run", order_by="started").cool()
    if partitions == 1:
        _assert_same_report(list(report), list(expected))
        assert report.notes[:-1] == expected.notes
    else:
        _assert_same_report(
            [p for p in report if p.kind != PatternKind.OUTLIER],
            [p for p in expected if p.kind != PatternKind.OUTLIER],
        )
    assert "a coordinated sample of 12000 tasks" in report.notes[-1]


def test_bad_sample_rows_is_named(client: Any) -> None:
    ddf = dd.from_pandas(_frame(50), npartitions=2)
    with pytest.raises(ValueError, match="sample_rows must be >= 1, got 0"):
        crackle_dask.cool(ddf, label="run", gather_rows=0, sample_rows=0)


def test_above_gather_rows_outliers_are_read_in_every_row(client: Any) -> None:
    """Outliers come from every row (each partition scored within its change points'
    segments, Bonferroni over every row), not from the sample of 1,000: five planted bursts
    are found wherever the partitions cut, and the step of 'latency_ms' makes none."""
    frame = _frame(30_000, seed=7).sort_values("started").reset_index(drop=True)
    planted = [1_234, 9_876, 17_401, 17_402, 29_990]
    frame.loc[planted, "load"] = 40.0  # 30 standard deviations
    labels = {str(frame.loc[p, "run"]) for p in planted}
    for partitions in (2, 5):
        report = crackle_dask.cool(
            dd.from_pandas(frame, npartitions=partitions),
            label="run",
            gather_rows=0,
            sample_rows=1_000,
        )
        outliers = [p for p in report if p.kind == PatternKind.OUTLIER]
        bursts = [p for p in outliers if p.details["task"] in labels]
        assert sorted(p.details["task_index"] for p in bursts) == planted
        assert all(p.details["metrics"] == ["load"] for p in bursts)
        # the rest are borderline normal values (the fence is 4.7 here; a single machine
        # reports one of them too): a partition's fence and scale are its own
        others = [p.metrics["severity"] for p in outliers if p.details["task"] not in labels]
        assert len(others) <= 5 and all(severity < 6 for severity in others)
        assert all(p.metrics["severity"] > 13 for p in bursts)
        assert "outliers (fenced within each partition)" in report.notes[-1]
        assert not any("latency_ms" in p.details["metrics"] for p in outliers)


def test_empty_and_tiny_partitions_are_cooled(client: Any) -> None:
    """An empty partition and one of 2 rows (too few to score an outlier: scale -1) take
    part like any other."""
    frame = _frame(6_000, seed=1)
    pieces = [frame.iloc[:4_000], frame.iloc[:0], frame.iloc[4_000:4_002], frame.iloc[4_002:]]
    ddf = dd.concat([dd.from_pandas(piece, npartitions=1) for piece in pieces])
    report = crackle_dask.cool(ddf, label="run", gather_rows=0, sample_rows=500)
    assert report.task_count == 6_000
    _assert_same_exact(report, Kiln.from_pandas(frame, label="run").cool())


def test_a_frame_without_metrics_is_cooled(client: Any) -> None:
    """Partitions with a label and no numeric column: states that count their tasks."""
    frame = pd.DataFrame({"run": [f"run-{i}" for i in range(60)]})
    expected = Kiln.from_pandas(frame, label="run").cool()
    for partitions in (1, 2):
        report = crackle_dask.cool(dd.from_pandas(frame, npartitions=partitions), label="run")
        assert report.task_count == 60
        assert len(report) == len(expected) == 0


def _awkward_order(frame: Any) -> Any:
    """``frame`` with orders that a plain ``sort_values`` would not give as a single
    machine does: 'started' with ties and absent values, 'when' text with blanks."""
    frame = frame.copy()
    rng = np.random.default_rng(3)
    frame["started"] = frame["started"] // 7
    frame.loc[rng.choice(len(frame), size=len(frame) // 20, replace=False), "started"] = np.nan
    frame["when"] = [f"t{int(s):012d}" if s == s else "" for s in frame["started"]]
    # missing text cells are blank too, whatever the string dtype Dask converts them to
    frame.loc[rng.choice(len(frame), size=50, replace=False), "when"] = None
    return frame


@pytest.mark.parametrize("order_by", ["started", "when"])
def test_order_by_sorts_as_a_single_machine_with_ties_blanks_and_absent_values(
    client: Any, order_by: str
) -> None:
    """The cluster sorts by the keys a single machine sorts by, ties in their order,
    blanks and absent values last, so every read of a partition sees the same rows in the
    same order (a plain sort puts blank text first and orders ties as it likes)."""
    frame = _awkward_order(_frame(20_000, seed=4))
    ignore = "when" if order_by == "started" else "started"
    frame = frame.drop(columns=[ignore])
    expected = Kiln.from_pandas(frame, label="run", order_by=order_by).cool()
    ddf = dd.from_pandas(frame, npartitions=3)
    gathered = crackle_dask.cool(ddf, label="run", order_by=order_by)
    _assert_same_report(list(gathered), list(expected))
    sampled = crackle_dask.cool(
        ddf, label="run", order_by=order_by, gather_rows=0, sample_rows=2_000
    )
    _assert_same_exact(sampled, expected)
    phase = [p for p in _exact(list(expected)) if p.kind == PatternKind.PHASE_TRANSITION]
    assert phase and all(p.details["change_label"] for p in phase)
    # every outlier's task index is the position of its task in a single machine's order
    order = _frames.row_order(_frames.columns_from_pandas(frame)[0], order_by)
    assert order is not None
    labels = frame["run"].to_numpy()[order]
    outliers = [p for p in sampled if p.kind == PatternKind.OUTLIER]
    assert outliers
    assert [labels[p.details["task_index"]] for p in outliers] == [
        p.details["task"] for p in outliers
    ]


def _queue_wait(report: Any) -> list[CracklePattern]:
    """The correlation patterns of the pair 'queue', 'wait'."""
    return [
        p
        for p in report
        if p.kind == PatternKind.CORRELATION and p.details["metrics"] == ["queue", "wait"]
    ]


def _gathered_rows(caplog: Any) -> int:
    found = re.findall(r"(\d+) rows gathered", caplog.text)
    assert found, caplog.text
    return int(found[-1])


def test_the_latest_rows_gathered_for_a_p_value_are_bounded(
    client: Any, monkeypatch: Any, caplog: Any
) -> None:
    """A pair present together on 1 task in 5 needs the latest 50,000 tasks for the 10,000
    its p-value reads; bounded at 20,000, the p-value reads the ~4,000 there, the note
    says so, and r still reads every task. Without the correlation detector no more than
    the first 10,000 latest tasks are read."""
    frame = _sparse_frame(100_000)
    expected = Kiln.from_pandas(frame, label="run").cool()
    caplog.set_level(logging.INFO, logger="crackle_runtime.dask")
    gathered = {}
    reports = {}
    for case, bound, profile in [
        ("unbounded", crackle_dask.TAIL_ROWS, ThermalProfile()),
        ("bounded", 20_000, ThermalProfile()),
        ("no correlation", 20_000, ThermalProfile().without(PatternKind.CORRELATION)),
    ]:
        monkeypatch.setattr(crackle_dask, "TAIL_ROWS", bound)
        caplog.clear()
        reports[case] = crackle_dask.cool(
            dd.from_pandas(frame, npartitions=3),
            profile,
            label="run",
            gather_rows=0,
            sample_rows=1_000,
        )
        gathered[case] = _gathered_rows(caplog)
    # without correlation no latest tasks are read; bounded 20,000; doubling reads 80,000
    assert gathered["bounded"] <= gathered["no correlation"] + 20_000
    assert gathered["unbounded"] >= gathered["no correlation"] + 30_000
    assert not [p for p in reports["no correlation"] if p.kind == PatternKind.CORRELATION]
    report = reports["bounded"]
    pair, want = (_queue_wait(r)[0] for r in (report, expected))
    assert pair.metrics["correlation"] == pytest.approx(want.metrics["correlation"], rel=1e-12)
    assert pair.metrics["n"] == want.metrics["n"]
    note = next(n for n in report.notes if n.startswith("correlation: 'queue' and 'wait'"))
    found = re.search(r"have (\d+) tasks having both among the latest (\d+);", note)
    assert found is not None
    tail = frame.iloc[-int(found.group(2)) :]
    assert int(found.group(2)) >= 20_000
    assert int(found.group(1)) == int((tail["queue"].notna() & tail["wait"].notna()).sum())
    assert not [n for n in reports["unbounded"].notes if n.startswith("correlation: ")]
    _assert_same_exact(reports["unbounded"], expected)


@pytest.mark.parametrize("arrow", [False, True])
def test_a_sparse_metric_is_fenced_over_its_own_values(client: Any, arrow: bool) -> None:
    """The Bonferroni family of a metric's fence is its present values in the whole frame
    (as on one machine), not every row: a metric present on 1 task in 10 keeps the
    single machine's fence, and its three values 4 standard deviations out are found.
    ``arrow``: the metric is an Arrow float column holding NaN as a value (not null), as
    Parquet written elsewhere reads with ``dtype_backend="pyarrow"``: absent all the same."""
    rng = np.random.default_rng(1)
    n = 20_000
    present = rng.random(n) < 0.1
    sparse = np.where(present, rng.normal(size=n), np.nan)
    planted = np.flatnonzero(present)[[100, 700, 1500]]
    sparse[planted] = [4.0, 4.15, 4.3]
    column: Any = sparse
    if arrow:
        pa = pytest.importorskip("pyarrow")
        column = pd.Series(pa.array(sparse, from_pandas=False), dtype=pd.ArrowDtype(pa.float64()))
        assert column.count() == n  # pandas counts every NaN value as present
    frame = pd.DataFrame(
        {
            "run": [f"r{i:06d}" for i in range(n)],
            "sparse": column,
            "dense": rng.normal(size=n),
        }
    )
    expected = Kiln.from_pandas(frame, label="run").cool()

    def outliers(report: Any) -> list[tuple[str, float]]:
        return sorted(
            (str(p.details["task"]), round(p.metrics["severity"], 9))
            for p in report
            if p.kind == PatternKind.OUTLIER
        )

    assert [task for task, _ in outliers(expected)] == list(frame["run"].iloc[planted])
    for partitions in (1, 3):
        report = crackle_dask.cool(
            dd.from_pandas(frame, npartitions=partitions),
            label="run",
            gather_rows=0,
            sample_rows=2_000,
        )
        if partitions == 1:
            assert outliers(report) == outliers(expected)
        else:
            # each partition's own scale: the first third's 660 values have a medcouple of
            # 0.115 (noise: 0 ± 0.04), whose skew adjustment widens its upper fence past the
            # value 4.0 sd out; the others are found, and nothing else
            found = [t for t, _ in outliers(report)]
            assert set(found) <= {t for t, _ in outliers(expected)} and len(found) >= 2


def test_a_pair_whose_p_value_loses_its_tasks_is_noted(client: Any, monkeypatch: Any) -> None:
    """A pair present together only long before the latest tasks: bounded, the p-value has
    no task to read and the pattern is not reported; a note says why."""
    frame = _sparse_frame(50_000)
    frame.loc[10_000:, "wait"] = np.nan
    expected = Kiln.from_pandas(frame, label="run").cool()
    assert _queue_wait(expected)
    monkeypatch.setattr(crackle_dask, "TAIL_ROWS", 10_000)
    report = crackle_dask.cool(
        dd.from_pandas(frame, npartitions=3), label="run", gather_rows=0, sample_rows=500
    )
    assert not _queue_wait(report)
    note = next(n for n in report.notes if n.startswith("correlation: 'queue' and 'wait'"))
    assert "have 0 tasks having both" in note and "no p-value" in note


def test_laws_fitted_on_the_sample_are_checked_on_every_row(client: Any) -> None:
    """A conservation law found in a sample of 2,000 of 30,000 tasks is checked on every
    row: the tasks holding it and its violators (four planted, most outside the sample)
    are a single machine's."""
    frame = _frame(30_000, seed=3).sort_values("started").reset_index(drop=True)
    planted = [100, 5_000, 12_345, 29_000]
    frame.loc[planted, "records_out"] -= 50
    expected = Kiln.from_pandas(frame, label="run").cool()

    def laws(report: Any) -> list[tuple[str, list[str], float]]:
        return [
            (p.description, p.details["violations"], round(p.confidence, 12))
            for p in report
            if p.kind == PatternKind.CONSERVATION and "law" in p.details
        ]

    assert laws(expected)[0][1] == list(frame["run"].iloc[planted])
    report = crackle_dask.cool(
        dd.from_pandas(frame, npartitions=3), label="run", gather_rows=0, sample_rows=2_000
    )
    assert laws(report) == laws(expected)
    assert "conservation laws, fitted on the sample, are checked on every task" in report.notes[-1]
    sampled = re.search(r"a coordinated sample of (\d+) tasks", report.notes[-1])
    assert sampled is not None and int(sampled.group(1)) < 3_000


def test_a_law_of_the_sample_that_fails_on_every_row_is_not_reported(
    client: Any, monkeypatch: Any
) -> None:
    """A law holding on the sample's tasks but on fewer than 90% of every row's is left
    out, as one machine leaves it out, and a note says so. The sample is made to miss the
    violators: half the rows outside it break the law."""
    frame = _frame(20_000, seed=6).sort_values("started").reset_index(drop=True)
    keys = frame["run"].to_numpy()
    sampled = crackle_dask._sampled(keys, (2**64 * 1_000) // 20_000)
    broken = ~sampled & (np.random.default_rng(2).random(len(frame)) < 0.5)
    frame.loc[broken, "records_out"] -= 40.0
    expected = Kiln.from_pandas(frame, label="run").cool()
    report = crackle_dask.cool(
        dd.from_pandas(frame, npartitions=2), label="run", gather_rows=0, sample_rows=1_000
    )

    def laws(report: Any) -> list[str]:
        return [
            p.details["law"]
            for p in report
            if p.kind == PatternKind.CONSERVATION and "law" in p.details
        ]

    assert laws(expected) == [] == laws(report)
    assert any(
        n.startswith("conservation laws: 'records_in - records_out - dropped = 0'")
        for n in report.notes
    )


def test_outliers_read_by_phase_on_the_cluster_say_so(client: Any) -> None:
    """Two weeks of 5-minute error rates whose traffic falls fifteenfold at night: each
    partition reads the rate within phase groups of the day as one machine does, and the
    wording names the cycle (one partition: the outliers equal a single machine's)."""
    rng = np.random.default_rng(3)
    t = np.arange(4032)
    requests = rng.poisson(1600 * (1 - 0.9 * np.cos(2 * np.pi * t / 288)) + 60)
    rate = rng.binomial(requests, 0.002) / requests
    planted = [700, 2500, 3300]
    rate[planted] += 0.05
    frame = pd.DataFrame({"window": t, "requests": requests.astype(float), "error_rate": rate})
    expected = [
        p
        for p in Kiln.from_pandas(frame, order_by="window").cool()
        if p.kind == PatternKind.OUTLIER
    ]
    for partitions in (1, 2):
        report = crackle_dask.cool(
            dd.from_pandas(frame, npartitions=partitions), order_by="window", gather_rows=0
        )
        outliers = [p for p in report if p.kind == PatternKind.OUTLIER]
        if partitions == 1:
            _assert_same_report(outliers, expected)
        bursts = [p for p in outliers if p.details["task_index"] in planted]
        assert len(bursts) == 3 and len(outliers) <= 5
        assert all("at its phase of the 288-task cycle" in p.description for p in bursts)
