"""Task files for ``crackle cool`` (SPEC §13): both readers (pyarrow and the standard
library) give the same columns; absent cells, BOMs, text and timestamp columns; bad files
are a one-line ValueError."""

from __future__ import annotations

import gzip
import json
import math
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from crackle_runtime import _frames, _readers

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

CSV = (
    "\ufeffrun,started,branch,build_s,tests,cache_hit\n"
    "r1,2026-01-01T00:00:02,main,10.5,100,true\n"
    "r2,2026-01-01T00:00:01,dev,NA,,false\n"
    "r3,2026-01-01T00:00:03,main,nan,102,true\n"
    "r4,,main,12.0,N/A,false\n"
)


@pytest.fixture(autouse=True)
def backend() -> str:
    """Reading does not depend on the kernel backend: run once."""
    return "any"


@pytest.fixture(params=["arrow", "stdlib"])
def reader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Read through pyarrow, or with pyarrow made unimportable."""
    if request.param == "stdlib":
        monkeypatch.setitem(sys.modules, "pyarrow", None)
    yield request.param


def _nan_list(values: np.ndarray) -> list[float | None]:
    return [None if math.isnan(v) else float(v) for v in values]


def test_csv_absent_cells_bom_text_and_timestamps(tmp_path: Path, reader: str) -> None:
    path = tmp_path / "runs.csv"
    path.write_text(CSV, encoding="utf-8")
    columns, where = _readers.read_columns(str(path))
    assert where == str(path)
    assert columns.names == ["run", "started", "branch", "build_s", "tests", "cache_hit"]
    assert columns.rows == 4
    assert list(columns.numeric) == ["build_s", "tests", "cache_hit"]
    assert _nan_list(columns.numeric["build_s"]) == [10.5, None, None, 12.0]
    assert _nan_list(columns.numeric["tests"]) == [100.0, None, 102.0, None]
    assert _nan_list(columns.numeric["cache_hit"]) == [1.0, 0.0, 1.0, 0.0]
    assert columns.kinds == {"run": "text", "started": "timestamps", "branch": "text"}
    assert _nan_list(columns.times["started"]) == [1767225602.0, 1767225601.0, 1767225603.0, None]
    assert columns.texts("run") == ["r1", "r2", "r3", "r4"]
    assert columns.texts("tests")[:3] == ["100", "", "102"]


def test_prepare_orders_by_a_timestamp_and_notes_other_columns(tmp_path: Path, reader: str) -> None:
    path = tmp_path / "runs.csv"
    path.write_text(CSV, encoding="utf-8")
    columns, where = _readers.read_columns(str(path))
    prepared = _frames.prepare(columns, "run", "started", ["tests"], where=where)
    assert prepared.labels == ["r2", "r1", "r3", "r4"]  # absent start time last
    assert prepared.names == ["build_s", "tests", "cache_hit"]
    assert _nan_list(prepared.values[:, 0]) == [None, 10.5, None, 12.0]
    assert prepared.index_columns == {"tests": "ignored (ignore=)"}
    assert prepared.notes == [
        "'started' takes part in no detector: it orders the tasks (order_by=)",
        "'branch' takes part in no detector: it is not numeric (text)",
    ]


def test_gzip_jsonl_and_stdin(tmp_path: Path, reader: str, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [{"id": i, "x": i * 0.5, "tag": "7", "nested": {"k": i}} for i in range(5)]
    rows[2]["x"] = None
    text = "\n".join(json.dumps(row) for row in rows) + "\n"
    path = tmp_path / "runs.jsonl.gz"
    path.write_bytes(gzip.compress(text.encode()))
    columns, _ = _readers.read_columns(str(path))
    assert list(columns.numeric) == ["id", "x"]
    assert _nan_list(columns.numeric["x"]) == [0.0, 0.5, None, 1.5, 2.0]
    assert columns.kinds == {"tag": "text", "nested": "nested values"}  # JSON text stays text
    assert columns.texts("id") == ["0", "1", "2", "3", "4"]

    class Stdin:
        buffer = __import__("io").BytesIO(gzip.compress(CSV.encode()))

    monkeypatch.setattr(sys, "stdin", Stdin)
    columns, where = _readers.read_columns("-")
    assert where == "<stdin>" and columns.names[0] == "run"


def test_header_only_csv_has_empty_columns(tmp_path: Path, reader: str) -> None:
    path = tmp_path / "empty.csv"
    path.write_text("a,b\n")
    columns, _ = _readers.read_columns(str(path))
    assert columns.rows == 0 and columns.kinds == {"a": "empty", "b": "empty"}


def test_parquet_needs_pyarrow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "runs.parquet"
    pq.write_table(pa.table({"x": [1.0, None, 3.0], "s": ["a", "b", "c"]}), path)
    columns, _ = _readers.read_columns(str(path))
    assert _nan_list(columns.numeric["x"]) == [1.0, None, 3.0]
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    with pytest.raises(ValueError, match=r"needs pyarrow: pip install pyarrow"):
        _readers.read_columns(str(path))


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("big.jsonl", '{"x": ' + "9" * 401 + '}\n{"x": 1}\n', "not finite or too large"),
        ("deep.jsonl", '{"x": 1}\n{"x": ' + "[" * 100_000 + "]" * 100_000 + "}\n", "deeply"),
        ("list.jsonl", "[1, 2]\n", "line 1 is not a JSON object"),
        ("ragged.csv", "a,b\n1,2\n3\n", "CSV"),
        ("dup.csv", "a,a\n1,2\n", "duplicate column name 'a'"),
        ("noname.csv", "a,\n1,2\n", "column 2 has no name"),
        ("bad.gz", "", "not a valid gzip file"),
    ],
)
def test_bad_files_are_one_line_errors(
    tmp_path: Path, reader: str, name: str, content: str, message: str
) -> None:
    path = tmp_path / name
    if name.endswith(".gz"):
        path.write_bytes(b"\x1f\x8b" + b"broken")
    else:
        path.write_text(content)
    with pytest.raises(ValueError, match=message) as caught:
        columns, where = _readers.read_columns(str(path))
        _frames.prepare(columns, None, where=where)
    assert "\n" not in str(caught.value)


def test_parquet_with_duplicate_column_names(tmp_path: Path) -> None:
    path = tmp_path / "dup.parquet"
    table = pa.Table.from_arrays([pa.array([1.0]), pa.array([2.0])], names=["a", "a"])
    pq.write_table(table, path)
    with pytest.raises(ValueError, match=r"^.*dup.parquet: duplicate column name 'a'$"):
        _readers.read_columns(str(path))


def test_wide_csv_reads_in_bounded_time(wide_csv: Path, reader: str) -> None:
    path = wide_csv
    started = time.perf_counter()
    columns, where = _readers.read_columns(str(path))
    prepared = _frames.prepare(columns, None, where=where)
    assert time.perf_counter() - started < 5.0
    assert prepared.values.shape == (3, 20_000)


def test_csv_cells_read_alike_by_both_readers(tmp_path: Path, reader: str) -> None:
    """Padded NA tokens leave a column numeric; an id keeps the text it was written with;
    integers beyond 2**53 (nanosecond epochs) are numbers, rounded as pandas rounds them."""
    path = tmp_path / "runs.csv"
    path.write_text(
        "job,b,ts_ns\n0031,1.5, 1700000000123456789\n1.50, NA,1700000001123456789\n"
        "1e3,NA ,1700000002123456789\n0007,4,\n"
    )
    columns, _ = _readers.read_columns(str(path))
    assert _nan_list(columns.numeric["b"]) == [1.5, None, None, 4.0]
    assert columns.texts("job") == ["0031", "1.50", "1e3", "0007"]
    assert _nan_list(columns.numeric["ts_ns"])[:3] == [
        float(1700000000123456789),
        float(1700000001123456789),
        float(1700000002123456789),
    ]


def test_parquet_timestamps_of_any_unit_and_range(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    nanos = pa.array([1704067200000000001, None, 1704067199000000000], pa.timestamp("ns"))
    days = pa.array([0, 2932896, None], pa.date32())  # 9999-12-31: an open end
    seconds = pa.array([253402214400, 0, 1], pa.timestamp("s", tz="UTC"))
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"n": nanos, "d": days, "s": seconds, "x": [1.0, 2.0, 3.0]}), path)
    columns, _ = _readers.read_columns(str(path))
    assert _nan_list(columns.times["n"]) == [1704067200.000000001, None, 1704067199.0]
    assert _nan_list(columns.times["d"]) == [0.0, 2932896 * 86400.0, None]
    assert _nan_list(columns.times["s"]) == [253402214400.0, 0.0, 1.0]
    assert _frames.row_order(columns, "d").tolist() == [0, 1, 2]
