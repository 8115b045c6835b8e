"""Cooling a Dask DataFrame (SPEC §14) on a real ``dask.distributed.LocalCluster`` (two
worker processes on 127.0.0.1, started and stopped here): the report equals a
single-machine ``cool()`` of the same data, for any number of partitions."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from crackle_runtime import CoolingState, CrackleError, Kiln
from crackle_runtime.patterns import CracklePattern

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


def test_dask_cool_refuses_more_rows_than_it_may_gather(client: Any) -> None:
    ddf = dd.from_pandas(_frame(200), npartitions=2)
    with pytest.raises(CrackleError, match="200 rows are more than gather_rows = 100"):
        crackle_dask.cool(ddf, label="run", gather_rows=100)
    with pytest.raises(ValueError, match="order_by: no column 'nope'"):
        crackle_dask.cool(ddf, order_by="nope")
    with pytest.raises(TypeError, match="ddf must be a Dask DataFrame"):
        crackle_dask.cool(_frame(10))


def test_a_second_local_cluster_beside_the_first_starts_without_a_warning(client: Any) -> None:
    # The scheduler's HTTP routes used port 8787 even without a dashboard: a second cluster
    # on the machine (another test run, a user's notebook) made Dask warn, which failed
    # under warnings-as-errors. They now take any free port on 127.0.0.1.
    with crackle_dask.local_client(1) as second:
        assert second.scheduler_info()["address"] != client.scheduler_info()["address"]
        assert second.submit(sum, [1, 2]).result() == 3
