"""DataFrames into a kiln (SPEC §12, §13): ``Kiln.from_arrow`` for anything with
``__arrow_c_stream__`` (pyarrow, polars, DuckDB), ``label=``, ``order_by=`` and ``ignore=`` on
it and on ``from_pandas``, notes on columns that are not metrics, ``_repr_html_``."""

from __future__ import annotations

import datetime as dt
import math
import sys

import numpy as np
import pytest

from crackle_runtime import Kiln, PatternKind, ThermalProfile

pa = pytest.importorskip("pyarrow")
pd = pytest.importorskip("pandas")

SHIFT_ONLY = ThermalProfile.default().only(PatternKind.DISTRIBUTION_SHIFT)


def _runs(n: int = 80) -> dict[str, list[object]]:
    """Runs listed out of order: build_s steps +25% from the 41st run by start time."""
    rng = np.random.default_rng(2)
    order = rng.permutation(n).tolist()
    start = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    return {
        "run": [f"run-{i:03d}" for i in order],
        "started": [start + dt.timedelta(minutes=i) for i in order],
        "build_s": [(100.0 if i < n // 2 else 125.0) + float(rng.normal(0, 1)) for i in order],
        "seq": [float(i) for i in order],
        "retries": [None if i % 9 == 0 else i % 3 for i in order],
        "branch": ["main"] * n,
    }


def _check_runs_kiln(kiln: Kiln) -> None:
    labels, names, values = kiln.metric_matrix()
    assert labels[:3] == ["run-000", "run-001", "run-002"]
    assert names == ["build_s", "seq", "retries"]
    assert values[:, 1].tolist() == [float(i) for i in range(80)]
    assert [math.isnan(v) for v in values[:10, 2]] == [i % 9 == 0 for i in range(10)]
    report = kiln.cool()
    shift = report.by_kind(PatternKind.DISTRIBUTION_SHIFT)
    assert [p.details["metric"] for p in shift] == ["build_s"]
    assert shift[0].details["change_label"] == "run-040"
    # retries = run % 3 repeats every 3 runs, but every 9th run lacks it: a metric with
    # gaps is not searched for a cycle (positions among its values are not phases)
    assert "repeats a cycle" not in " ".join(report.notes)
    assert [note for note in report.notes if "takes part in no detector" in note] == [
        "'seq' takes part in no detector: ignored (ignore=)",
        "'started' takes part in no detector: it orders the tasks (order_by=)",
        "'branch' takes part in no detector: it is not numeric (text)",
    ]


def test_from_arrow_with_a_pyarrow_table() -> None:
    kiln = Kiln.from_arrow(
        pa.table(_runs()), label="run", order_by="started", ignore=["seq"], profile=SHIFT_ONLY
    )
    _check_runs_kiln(kiln)


def test_from_arrow_and_from_pandas_with_polars() -> None:
    pl = pytest.importorskip("polars")
    frame = pl.DataFrame(_runs())
    _check_runs_kiln(
        Kiln.from_arrow(frame, label="run", order_by="started", ignore="seq", profile=SHIFT_ONLY)
    )
    # was AttributeError: 'DataFrame' object has no attribute 'select_dtypes'
    _check_runs_kiln(Kiln.from_pandas(frame, "run", SHIFT_ONLY, order_by="started", ignore=["seq"]))


def test_from_pandas_order_by_and_ignore() -> None:
    frame = pd.DataFrame(_runs())
    frame["retries"] = frame["retries"].astype("Int64")  # nullable integers: NA is absent
    _check_runs_kiln(
        Kiln.from_pandas(frame, label="run", order_by="started", ignore=["seq"], profile=SHIFT_ONLY)
    )
    indexed = Kiln.from_pandas(frame.set_index("run"), order_by="seq")
    assert indexed.labels[:2] == ["run-000", "run-001"]  # the index, sorted with the rows


def test_from_arrow_with_duckdb() -> None:
    duckdb = pytest.importorskip("duckdb")
    relation = duckdb.sql(
        "select 'r' || i::varchar as name, i * 1.5 as x, i % 2 = 0 as even "
        "from range(5) t(i) order by i desc"
    )
    kiln = Kiln.from_arrow(relation, label="name", order_by="x")
    assert kiln.labels == ["r0", "r1", "r2", "r3", "r4"]
    assert kiln.metric_names == ["x", "even"]
    assert kiln.metric_matrix()[2][:, 1].tolist() == [1.0, 0.0, 1.0, 0.0, 1.0]


def test_the_label_column_may_also_order_the_tasks() -> None:
    """Five-minute windows labelled by their start time and ordered by it."""
    starts = pd.date_range("2024-03-01", periods=6, freq="5min", tz="UTC")
    frame = pd.DataFrame({"start": starts, "p99": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]})
    shuffled = frame.iloc[[3, 0, 5, 1, 4, 2]]
    for kiln in (
        Kiln.from_pandas(shuffled, label="start", order_by="start"),
        Kiln.from_arrow(
            pa.Table.from_pandas(shuffled, preserve_index=False), label="start", order_by="start"
        ),
    ):
        assert kiln.labels == [str(start) for start in starts]
        assert kiln.metric_names == ["p99"]
        assert kiln.metric_matrix()[2][:, 0].tolist() == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"label": "nope"}, ValueError, r"label= 'nope': no such column in the table"),
        ({"order_by": "nope"}, ValueError, r"order_by= 'nope': no such column"),
        ({"ignore": ["x", "nope"]}, ValueError, r"ignore= 'nope': no such column"),
        ({"ignore": [1]}, TypeError, r"ignore= must name columns"),
    ],
)
def test_bad_arguments_name_the_argument(
    kwargs: dict[str, object], error: type[Exception], message: str
) -> None:
    table = pa.table({"x": [1.0, 2.0], "s": ["a", "b"]})
    with pytest.raises(error, match=message):
        Kiln.from_arrow(table, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(error, match=message):
        Kiln.from_pandas(table.to_pandas(), **kwargs)  # type: ignore[arg-type]


def test_not_a_frame_is_a_type_error() -> None:
    with pytest.raises(TypeError, match=r"obj must export an Arrow stream .* got list"):
        Kiln.from_arrow([1, 2])
    with pytest.raises(TypeError, match=r"frame must be a pandas DataFrame, got dict"):
        Kiln.from_pandas({"x": [1.0]})


def test_from_arrow_without_pyarrow(monkeypatch: pytest.MonkeyPatch) -> None:
    table = pa.table({"x": [1.0]})
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    with pytest.raises(ImportError, match=r"crackle_runtime\[arrow\]"):
        Kiln.from_arrow(table)


def test_report_arrow_stream_equals_to_arrow_in_polars() -> None:
    pl = pytest.importorskip("polars")
    kiln = Kiln.from_arrow(pa.table(_runs()), label="run", order_by="started")
    report = kiln.cool()
    streamed = pa.RecordBatchReader.from_stream(report).read_all()
    assert streamed.equals(report.to_arrow())
    assert pl.from_arrow(streamed).equals(pl.DataFrame(report.to_arrow()))


def test_kiln_repr_html_and_report_html_with_a_lone_surrogate() -> None:
    kiln = Kiln(ThermalProfile.default().only(PatternKind.PHASE_TRANSITION))
    values = np.r_[np.zeros(30), np.full(30, 5.0)][:, None]
    kiln.add_matrix(values, ["<x\udc80>"], [f"t{i}" for i in range(60)])
    page = kiln._repr_html_()
    assert page == (
        "<div><b>Kiln</b>: 60 task(s), 1 metric(s), open<br>metrics: &lt;x\\udc80&gt;</div>"
    )
    report = kiln.cool()
    assert "1 pattern(s) found" in kiln._repr_html_()
    html = report.to_html()  # was TypeError from matplotlib
    assert "metric &#x27;&lt;x\\udc80&gt;&#x27; shifted" in html
    html.encode("utf-8")


def test_from_arrow_reads_sliced_chunks_with_nulls() -> None:
    first = pa.array([1.0, None, 3.0, None, 5.0, 6.0, 7.0, 8.0, None, 10.0]).slice(1, 9)
    column = pa.chunked_array([first, pa.array([], pa.float64()), pa.array([None, 2.5])])
    kiln = Kiln.from_arrow(pa.table({"x": column}))
    values = kiln.metric_matrix()[2][:, 0]
    assert [None if math.isnan(v) else v for v in values] == column.to_pylist()


def test_order_by_dates_past_2262_and_ordered_categories() -> None:
    pd = pytest.importorskip("pandas")
    stamps = pd.Series(pd.to_datetime(["2020-01-02", "9999-12-31", "2020-01-01"]))
    frame = pd.DataFrame(
        {
            "run": ["a", "far", "b"],
            "t": stamps.astype("datetime64[s]"),
            "stage": pd.Categorical(["late", "early", "late"], ["early", "late"], ordered=True),
            "x": [1.0, 2.0, 3.0],
        }
    )
    assert Kiln.from_pandas(frame, label="run", order_by="t").labels == ["b", "a", "far"]
    assert Kiln.from_pandas(frame, label="run", order_by="stage").labels == ["far", "a", "b"]
    pa = pytest.importorskip("pyarrow")
    table = pa.Table.from_pandas(frame, preserve_index=False)
    assert table.schema.field("stage").type.ordered
    assert Kiln.from_arrow(table, label="run", order_by="stage").labels == ["far", "a", "b"]
    assert Kiln.from_arrow(table, label="run", order_by="t").labels == ["b", "a", "far"]


def test_a_column_left_out_may_hold_values_too_large_for_a_float() -> None:
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "raw": [1.0, np.inf, 2.0, -np.inf]})
    kiln = Kiln.from_pandas(frame, ignore="raw")
    assert kiln.task_count == 4
    with pytest.raises(ValueError, match="'raw' is not finite"):
        Kiln.from_pandas(frame)
