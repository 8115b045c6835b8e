"""Task files for ``crackle cool`` (SPEC §10, §13): CSV (also gzipped), JSON Lines and
Parquet, one row per task, read through pyarrow when it is installed and by the standard
library otherwise (Parquet needs pyarrow). Both readers give the same ``Columns``: NA, empty
and ``nan`` cells are absent values, a UTF-8 byte order mark is dropped, and columns that are
not numeric are kept by kind for the data notes. Every failure is a ``ValueError`` with a
one-line message naming the file.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import sys
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from crackle_runtime._frames import (
    EMPTY,
    NESTED,
    TEXT,
    TIMESTAMP,
    Columns,
    columns_from_arrow,
    first_duplicate,
    iso_seconds,
)

__all__ = ["NA_TOKENS", "STDIN", "read_columns"]

STDIN = "-"
# Cells that mean "absent", the same for both readers (pyarrow's defaults).
NA_TOKENS = (
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND",
    "1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
)  # fmt: skip
_NA = frozenset(NA_TOKENS)
_BOOLS = {"true": 1.0, "false": 0.0, "True": 1.0, "False": 0.0, "TRUE": 1.0, "FALSE": 0.0}
# pyarrow's JSON parser recurses without a limit and crashes the process on deep nesting:
# deeper files go to the standard-library reader, which fails cleanly.
_ARROW_MAX_JSON_DEPTH = 64
# pyarrow's CSV reader sets up each column (about 0.1 ms apiece): a file this wide is read
# faster by the standard library, whose cost follows the number of cells.
_ARROW_MAX_CSV_COLUMNS = 1000
_FORMATS = {".csv": "csv", ".txt": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl"}


def read_columns(source: str) -> tuple[Columns, str]:
    """The ``Columns`` of a task file (or of standard input for ``"-"``) and the name to use
    for it in messages."""
    if source == STDIN:
        where = "<stdin>"
        data = _gunzip(sys.stdin.buffer.read(), where)
        return _read(_sniff(data), data, where), where
    path = Path(source)
    where = str(path)
    if not path.is_file():
        raise ValueError(f"no such file: {path}" if not path.exists() else f"not a file: {path}")
    suffixes = [suffix.lower() for suffix in path.suffixes[-2:]]
    compressed = bool(suffixes) and suffixes[-1] == ".gz"
    suffix = suffixes[-2] if compressed and len(suffixes) == 2 else suffixes[-1] if suffixes else ""
    if suffix == ".parquet":
        return _parquet(path, where), where
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror or exc}") from None
    data = _gunzip(raw, where)
    return _read(_FORMATS.get(suffix) or _sniff(data), data, where), where


def _gunzip(data: bytes, where: str) -> bytes:
    if data[:2] != b"\x1f\x8b":
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:
        raise ValueError(f"cannot read {where}: not a valid gzip file ({exc})") from None


def _sniff(data: bytes) -> str:
    if data[:4] == b"PAR1":
        return "parquet"
    return "jsonl" if data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] == b"{" else "csv"


def _arrow() -> Any:
    try:
        import pyarrow
    except ImportError:
        return None
    return pyarrow


def _read(fmt: str, data: bytes, where: str) -> Columns:
    if fmt == "parquet":
        return _parquet(data, where)
    pa = _arrow()
    if fmt == "jsonl":
        if pa is not None and _json_depth(data) <= _ARROW_MAX_JSON_DEPTH:
            try:
                return _checked(columns_from_arrow(_arrow_json(pa, data)), where)
            except (pa.ArrowException, OSError):
                pass  # e.g. a column holding numbers and text: the reader below says which
        return _checked(_stdlib_jsonl(data, where), where)
    if pa is not None and _header_fields(data) <= _ARROW_MAX_CSV_COLUMNS:
        try:
            columns = columns_from_arrow(_arrow_csv(pa, data))
        except (pa.ArrowException, OSError) as exc:
            raise ValueError(f"cannot read {where} as CSV: {_first_line(exc)}") from None
        return _checked(_as_written(pa, data, columns), where)
    return _checked(_stdlib_csv(data, where), where)


def _as_written(pa: Any, data: bytes, columns: Columns) -> Columns:
    """The Arrow reader's ``columns`` made to read as the standard-library reader reads the
    same file: a text column whose cells are all numbers or NA tokens once the standard
    reader's rules apply (padded NA, `1_000`) is a metric, and a column's text is the cells
    as written (an id `0031` stays `0031`, not the number parsed from it)."""
    parsed = set(columns.numeric) | set(columns.times)
    for name in [n for n in columns.names if columns.kinds.get(n) == TEXT]:
        values = _csv_numbers(columns.texts(name))
        if values is not None:
            del columns.kinds[name]
            columns.numeric[name] = values
    arrow_texts = columns.texts
    written: dict[str, list[str]] = {}

    def texts(name: str) -> list[str]:
        if name not in parsed or columns.names.count(name) != 1:
            return arrow_texts(name)
        if name not in written:
            from pyarrow import csv as arrow_csv

            convert = arrow_csv.ConvertOptions(
                include_columns=[name],
                column_types={name: pa.string()},
                null_values=list(NA_TOKENS),
                strings_can_be_null=True,
            )
            table = arrow_csv.read_csv(pa.BufferReader(data), convert_options=convert)
            written[name] = ["" if c is None else str(c) for c in table.column(0).to_pylist()]
        return written[name]

    columns.texts = texts
    return columns


def _header_fields(data: bytes) -> int:
    """How many fields the first line of a CSV has (an upper bound: quoted commas count)."""
    end = data.find(b"\n")
    return (data[: end if end >= 0 else len(data)]).count(b",") + 1


def _checked(columns: Columns, where: str) -> Columns:
    if not columns.names:
        raise ValueError(f"{where} has no columns")
    for position, name in enumerate(columns.names):
        if not name.strip():
            raise ValueError(f"{where}: column {position + 1} has no name")
    return columns


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# --- pyarrow ----------------------------------------------------------------------------
def _arrow_csv(pa: Any, data: bytes) -> Any:
    from pyarrow import csv as arrow_csv

    convert = arrow_csv.ConvertOptions(null_values=list(NA_TOKENS), strings_can_be_null=True)
    return arrow_csv.read_csv(pa.BufferReader(data), convert_options=convert)


def _arrow_json(pa: Any, data: bytes) -> Any:
    from pyarrow import json as arrow_json

    return arrow_json.read_json(pa.BufferReader(data))


def _json_depth(data: bytes) -> int:
    """The deepest bracket nesting of ``data``, counting brackets inside strings too (an
    upper bound: enough to keep deep files away from pyarrow's parser)."""
    raw = np.frombuffer(data, dtype=np.uint8)
    opening = (raw == ord("{")) | (raw == ord("["))
    closing = (raw == ord("}")) | (raw == ord("]"))
    brackets = np.flatnonzero(opening | closing)
    if not len(brackets):
        return 0
    steps = np.where(opening[brackets], 1, -1).astype(np.int32)
    return int(np.cumsum(steps).max())


def _parquet(source: Path | bytes, where: str) -> Columns:
    return _checked(columns_from_arrow(_parquet_table(source, where)), where)


def _parquet_table(source: Path | bytes, where: str) -> Any:
    pa = _arrow()
    if pa is None:
        raise ValueError(f"reading Parquet ({where}) needs pyarrow: pip install pyarrow")
    import pyarrow.parquet as pq

    handle = pa.BufferReader(source) if isinstance(source, bytes) else source
    try:
        duplicate = first_duplicate(pq.read_schema(handle).names)
        if duplicate is not None:
            raise ValueError(f"{where}: duplicate column name {duplicate!r}")
        return pq.read_table(pa.BufferReader(source) if isinstance(source, bytes) else source)
    except (pa.ArrowException, OSError) as exc:
        raise ValueError(f"cannot read {where} as Parquet: {_first_line(exc)}") from None


def read_parquet_files(files: Sequence[str], where: str) -> Columns:
    """The ``Columns`` of Parquet files read one after the other (a directory or a glob, in
    name order) as one table; a column some files lack is absent from their rows."""
    tables = [_parquet_table(Path(name), name) for name in files]
    pa = _arrow()
    try:
        table = pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowException, OSError) as exc:
        raise ValueError(f"cannot read {where} as one table: {_first_line(exc)}") from None
    return _checked(columns_from_arrow(table), where)


# --- the standard library ---------------------------------------------------------------
def _stdlib_csv(data: bytes, where: str) -> Columns:
    try:
        text = data.decode("utf-8-sig")
        rows = [row for row in csv.reader(io.StringIO(text, newline="")) if row]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ValueError(f"cannot read {where} as CSV: {_first_line(exc)}") from None
    if not rows:
        raise ValueError(f"{where} has no header row")
    header, body = rows[0], rows[1:]
    width = len(header)
    for number, row in enumerate(body, start=2):
        if len(row) != width:
            raise ValueError(
                f"cannot read {where} as CSV: row {number} has {len(row)} fields, "
                f"the header has {width}"
            )
    cells: list[Sequence[str]] = list(zip(*body, strict=True)) if body else [()] * width
    return _typed(header, cells, len(body), _csv_numbers, _na)


def _stdlib_jsonl(data: bytes, where: str) -> Columns:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"cannot read {where}: {_first_line(exc)}") from None
    records: list[dict[str, Any]] = []
    names: dict[str, None] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{where}: line {number} is not JSON: {exc.msg}") from None
        except RecursionError:
            raise ValueError(f"{where}: line {number} is nested too deeply") from None
        except ValueError as exc:  # e.g. an integer beyond Python's digit limit
            raise ValueError(f"{where}: line {number}: {_first_line(exc)}") from None
        if not isinstance(record, dict):
            raise ValueError(f"{where}: line {number} is not a JSON object")
        records.append(record)
        names.update(dict.fromkeys(record))
    columns = [[record.get(name) for record in records] for name in names]
    return _typed(list(names), columns, len(records), _json_numbers, _is_none)


def _typed(
    names: list[str],
    cells: Sequence[Sequence[Any]],
    rows: int,
    numbers: Callable[[Sequence[Any]], NDArray[np.float64] | None],
    absent: Callable[[Any], bool],
) -> Columns:
    """``Columns`` from cells by column: ``numbers`` converts a numeric column (None for
    any other), ``absent`` says which cells hold no value."""
    numeric: dict[str, NDArray[np.float64]] = {}
    kinds: dict[str, str] = {}
    times: dict[str, NDArray[np.float64]] = {}
    for name, column in zip(names, cells, strict=True):
        values = numbers(column)
        if values is not None:
            numeric[name] = values
            continue
        seconds = iso_seconds(column, absent)
        if seconds is not None:
            kinds[name], times[name] = TIMESTAMP, seconds
        elif all(absent(cell) for cell in column):
            kinds[name] = EMPTY
        elif any(isinstance(cell, dict | list) for cell in column):
            kinds[name] = NESTED
        else:
            kinds[name] = TEXT
    by_name = dict(zip(names, cells, strict=True))

    def texts(name: str) -> list[str]:
        return ["" if absent(cell) else _text(cell) for cell in by_name[name]]

    return Columns(rows, names, numeric, kinds, texts, times)


def _na(cell: str) -> bool:
    """A CSV cell that means "absent"."""
    return cell.strip() in _NA


def _is_none(cell: Any) -> bool:
    return cell is None


def _text(cell: Any) -> str:
    if isinstance(cell, str):
        return cell
    return json.dumps(cell) if isinstance(cell, dict | list) else str(cell)


def _csv_numbers(column: Sequence[str]) -> NDArray[np.float64] | None:
    """A CSV column as float64 (NaN where absent; true/false as 1/0), or None when a cell is
    not a number. Python's ``float`` parses text faster than NumPy does; ``map`` keeps the
    common cases (all numbers, numbers and NA tokens) out of a Python loop."""
    for cells in (column, ["nan" if cell in _NA else cell for cell in column]):
        try:
            array = np.fromiter(map(float, cells), dtype=np.float64, count=len(cells))
        except ValueError:
            continue
        return None if np.isnan(array).all() else array
    values = np.full(len(column), np.nan)
    for row, cell in enumerate(column):  # padded NA tokens, true/false, or not numbers
        stripped = cell.strip()
        if stripped in _BOOLS:
            values[row] = _BOOLS[stripped]
        elif stripped not in _NA:
            try:
                values[row] = float(stripped)
            except ValueError:
                return None
    return None if np.isnan(values).all() else values


def _json_numbers(column: Sequence[Any]) -> NDArray[np.float64] | None:
    """A JSON column of numbers, booleans and nulls as float64 (NaN where null), or None. An
    integer too large for a float64 becomes inf (rejected later with the row named)."""
    values = np.full(len(column), np.nan)
    present = False
    for row, cell in enumerate(column):
        if cell is None:
            continue
        if not isinstance(cell, bool | int | float):
            return None
        try:
            values[row] = float(cell)
        except OverflowError:
            values[row] = np.inf
        present = True
    return values if present else None
