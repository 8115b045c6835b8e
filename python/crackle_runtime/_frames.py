"""DataFrames in and out of a kiln (SPEC §10, §12, §13): pandas and Arrow.

Every source (a pandas or Arrow table, a CSV, JSON Lines or Parquet file) becomes one
``Columns``: numeric columns as float64 arrays (NaN where a cell is absent), the other columns
by kind. ``prepare`` then applies ``label``, ``order_by`` and ``ignore`` the same way for all
of them and says in notes which columns take part in no detector and why.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray

from crackle_runtime import _optional

__all__ = [
    "Columns",
    "Prepared",
    "columns_from_arrow",
    "columns_from_pandas",
    "iso_seconds",
    "order_key",
    "prepare",
    "prepare_pandas",
    "row_order",
    "to_arrow",
    "to_pandas",
]

# Words for the kinds of columns that are not metrics, as the data notes print them.
TEXT, TIMESTAMP, EMPTY, NESTED = "text", "timestamps", "empty", "nested values"


@dataclass
class Columns:
    """A table of tasks, one row per task, column by column."""

    rows: int
    names: list[str]  # every column, in order
    numeric: dict[str, NDArray[np.float64]]  # metric candidates; NaN where absent
    kinds: dict[str, str]  # the other columns: name -> TEXT, TIMESTAMP, EMPTY, NESTED, ...
    texts: Callable[[str], list[str]]  # any column's cells as text (labels, text ordering)
    times: dict[str, NDArray[np.float64]] = field(default_factory=dict)  # seconds, NaN absent
    # ordered categories: each cell's position among the declared categories, NaN absent
    orders: dict[str, NDArray[np.float64]] = field(default_factory=dict)


@dataclass
class Prepared:
    """What a kiln records from ``Columns``: a ``(tasks, metrics)`` matrix, names and
    labels, the columns that take part in no detector (name -> why) and data notes about
    the columns that are not metrics."""

    values: NDArray[np.float64]
    names: list[str]
    labels: list[str]
    index_columns: dict[str, str]
    notes: list[str]


def _keyword(argument: str) -> str:
    return f"{argument}="


def prepare(
    columns: Columns,
    label: str | None,
    order_by: str | None = None,
    ignore: Iterable[str] | str | None = None,
    *,
    where: str = "the table",
    spell: Callable[[str], str] = _keyword,
    labels: bool = True,
    in_order: bool = False,
) -> Prepared:
    """Apply ``label``, ``order_by`` (rows sorted by it, stably, absent values last; it
    becomes an index column) and ``ignore`` (columns left out) to ``columns``. ``spell``
    names an argument in messages (``label=`` for the API, ``--label`` for the CLI).
    ``labels`` False leaves ``Prepared.labels`` empty (the values alone are wanted);
    ``in_order`` True says the rows are already sorted by ``order_by`` (a frame sorted by
    ``order_key`` elsewhere, read in pieces), which then only takes its role."""
    ignored = _check_arguments(columns, label, order_by, ignore, where, spell)
    order = None if in_order else row_order(columns, order_by)
    metric_names = [name for name in columns.names if name in columns.numeric and name != label]
    values = np.empty((columns.rows, len(metric_names)), dtype=np.float64)
    for j, name in enumerate(metric_names):
        values[:, j] = columns.numeric[name]
    kept = [j for j, name in enumerate(metric_names) if name not in ignored]
    _require_finite(values[:, kept], [metric_names[j] for j in kept], where)
    for j, name in enumerate(metric_names):
        if name in ignored:  # left out, it takes part in nothing: too large is absent
            column = values[:, j]
            column[np.isinf(column)] = np.nan
    texts: list[str] = []
    if labels:
        texts = [f"row-{i + 1}" for i in range(columns.rows)] if label is None else []
        texts = texts if label is None else columns.texts(label)
    if order is not None:
        values = values[order]
        texts = [texts[i] for i in order.tolist()] if texts else texts

    index_columns, notes = _roles(columns, label, order_by, ignored, spell)
    return Prepared(values, metric_names, texts, index_columns, notes)


def _check_arguments(
    columns: Columns,
    label: str | None,
    order_by: str | None,
    ignore: Iterable[str] | str | None,
    where: str,
    spell: Callable[[str], str],
) -> list[str]:
    """Unique column names, and ``label``, ``order_by`` and ``ignore`` naming columns;
    returns the ignored names."""
    duplicate = first_duplicate(columns.names)
    if duplicate is not None:
        raise ValueError(f"{where}: duplicate column name {duplicate!r}")
    known = set(columns.names)
    ignored = _names_argument(ignore, spell("ignore"))
    for argument, wanted in (("label", [label]), ("order_by", [order_by]), ("ignore", ignored)):
        for name in wanted:
            if name is not None and name not in known:
                raise ValueError(
                    f"{spell(argument)} {name!r}: no such column in {where} "
                    f"(columns: {_shorten(columns.names)})"
                )
    return ignored


def _roles(
    columns: Columns,
    label: str | None,
    order_by: str | None,
    ignored: Sequence[str],
    spell: Callable[[str], str],
) -> tuple[dict[str, str], list[str]]:
    """The numeric columns that take part in no detector (name -> why) and the notes on
    the columns that are not metrics."""
    index_columns: dict[str, str] = {}
    notes: list[str] = []
    for name in columns.names:
        if name == label:
            continue
        numeric = name in columns.numeric
        if name == order_by:
            why = f"it orders the tasks ({spell('order_by')})"
        elif name in ignored:
            why = f"ignored ({spell('ignore')})"
        elif numeric:
            continue
        else:
            why = _kind_note(columns.kinds[name], name, spell)
        if numeric:
            index_columns[name] = why
        else:
            notes.append(f"'{name}' takes part in no detector: {why}")
    return index_columns, notes


def first_duplicate(names: Sequence[str]) -> str | None:
    """The first name that appears twice in ``names``, or None."""
    seen: set[str] = set()
    for name in names:
        if name in seen:
            return name
        seen.add(name)
    return None


def _names_argument(names: Iterable[str] | str | None, argument: str) -> list[str]:
    if names is None:
        return []
    if isinstance(names, str):
        return [names]
    listed = list(names)
    for name in listed:
        if not isinstance(name, str):
            raise TypeError(f"{argument} must name columns (str), got {name!r}")
    return listed


def _shorten(names: Sequence[str], most: int = 8) -> str:
    shown = ", ".join(repr(name) for name in names[:most])
    return shown + (f", … ({len(names)} in all)" if len(names) > most else "")


def _kind_note(kind: str, name: str, spell: Callable[[str], str]) -> str:
    if kind == TIMESTAMP:
        return f"it holds timestamps (order the tasks by it with {spell('order_by')} {name!r})"
    if kind == EMPTY:
        return "it has no values"
    return f"it is not numeric ({kind})"


def row_order(columns: Columns, name: str | None) -> NDArray[np.intp] | None:
    """The stable sort of the rows by column ``name`` (absent values last); None when no
    column orders them."""
    if name is None:
        return None
    return np.argsort(order_key(columns, name), kind="stable")  # NaN sorts last


def order_key(columns: Columns, name: str) -> NDArray[Any]:
    """The key whose stable sort is the order of the rows by column ``name``: its values
    as float64 (NaN last) for metrics and timestamps, the position among the declared
    categories for an ordered categorical (pandas ``ordered=True``, an ordered Arrow
    dictionary such as a polars ``Enum``); for other columns the text after
    "0", and "1" for a blank (absent) cell, which sorts it last. One key, so that a sorter
    that splits on its first key (Dask) sees the text."""
    if name in columns.numeric:
        return columns.numeric[name]
    if name in columns.times:
        return columns.times[name]
    if name in columns.orders:
        return columns.orders[name]
    cells = np.array(columns.texts(name), dtype=str)
    return np.where(cells == "", "1", np.char.add("0", cells))


def _require_finite(values: NDArray[np.float64], names: Sequence[str], where: str) -> None:
    infinite = np.isinf(values)
    if infinite.any():
        row, column = np.argwhere(infinite)[0].tolist()
        raise ValueError(
            f"{where}: row {row + 1}, column {names[column]!r} is not finite or too large "
            f"for a float64 ({float(values[row, column])!r})"
        )


# --- pandas -----------------------------------------------------------------------------
def is_pandas(frame: object) -> bool:
    return hasattr(frame, "select_dtypes") and hasattr(frame, "columns")


def columns_from_pandas(frame: Any) -> tuple[Columns, Callable[[], list[str]]]:
    """``Columns`` of a pandas DataFrame, and its index as text (the default labels, made
    when called).
    Bool, integer and float columns (nullable ones too) are metrics; timedeltas are
    metrics in seconds; datetimes are timestamps; anything else is not numeric."""
    names = [str(name) for name in frame.columns]
    numeric: dict[str, NDArray[np.float64]] = {}
    kinds: dict[str, str] = {}
    times: dict[str, NDArray[np.float64]] = {}
    orders: dict[str, NDArray[np.float64]] = {}
    for position, name in enumerate(names):
        series = frame.iloc[:, position]
        kind = getattr(series.dtype, "kind", "O")
        if getattr(series.dtype, "ordered", False):  # an ordered Categorical
            codes = np.asarray(series.cat.codes, dtype=np.float64)
            orders[name] = np.where(codes < 0, np.nan, codes)
        if kind in "biuf":
            numeric[name] = series.to_numpy(dtype=np.float64, na_value=np.nan)
        elif kind == "m":
            numeric[name] = series.dt.total_seconds().to_numpy(dtype=np.float64, na_value=np.nan)
        elif kind == "M":
            kinds[name] = TIMESTAMP
            # the ticks of the column's own unit: no conversion to nanoseconds, which
            # overflows beyond 1677-2262 (a 9999-12-31 open end)
            unit = str(getattr(series.dt, "unit", "ns"))
            ticks = np.asarray(series.array.asi8, dtype=np.int64)
            seconds = ticks.astype(np.float64) / TICKS_PER_SECOND[unit]
            seconds[series.isna().to_numpy()] = np.nan
            times[name] = seconds
        elif kind == "c":
            kinds[name] = "complex"
        elif series.isna().all():
            kinds[name] = EMPTY
        else:
            kinds[name] = TEXT

    def texts(name: str) -> list[str]:
        # a missing cell (None, NaN, NA) is blank, as in an Arrow table: absent
        series = frame.iloc[:, names.index(name)]
        missing = series.isna().to_numpy().tolist()
        return [
            "" if gap else str(value) for value, gap in zip(series.tolist(), missing, strict=True)
        ]

    def index() -> list[str]:
        return [str(value) for value in frame.index.tolist()]

    return Columns(len(frame), names, numeric, kinds, texts, times, orders), index


def prepare_pandas(
    frame: Any,
    label: str | None,
    order_by: str | None,
    ignore: Iterable[str] | str | None,
    *,
    labels: bool = True,
    in_order: bool = False,
) -> Prepared:
    """``prepare`` for a pandas DataFrame, whose index gives the labels when ``label`` is
    None (sorted with the rows); ``labels`` and ``in_order`` as in ``prepare``."""
    columns, index_texts = columns_from_pandas(frame)
    prepared = prepare(columns, label, order_by, ignore, labels=labels, in_order=in_order)
    if label is None and labels:
        index = index_texts()
        order = None if in_order else row_order(columns, order_by)
        prepared.labels = index if order is None else [index[i] for i in order.tolist()]
    return prepared


# --- Arrow ------------------------------------------------------------------------------
def columns_from_arrow(table: Any) -> Columns:
    """``Columns`` of a ``pyarrow.Table``: bool, integer, float and decimal columns are
    metrics (nulls absent), timestamps and dates are timestamps, the rest is not numeric."""
    pa = _optional.pyarrow()
    types = pa.types
    names = [str(name) for name in table.column_names]
    numeric: dict[str, NDArray[np.float64]] = {}
    kinds: dict[str, str] = {}
    times: dict[str, NDArray[np.float64]] = {}
    cells: dict[str, list[Any]] = {}
    orders: dict[str, NDArray[np.float64]] = {}
    for position, name in enumerate(names):
        column = table.column(position)
        kind = column.type
        if types.is_dictionary(kind) and kind.ordered and column.num_chunks:
            orders[name] = _category_positions(pa, column)
        if types.is_boolean(kind) or types.is_integer(kind) or types.is_floating(kind):
            # integers beyond 2**53 (nanosecond epochs, snowflake ids) round, as in pandas
            numeric[name] = _arrow_floats(column.cast(pa.float64(), safe=False))
        elif types.is_decimal(kind):
            numeric[name] = _arrow_floats(column.cast(pa.float64(), safe=False))
        elif types.is_timestamp(kind) or types.is_date(kind):
            kinds[name] = TIMESTAMP
            times[name] = _arrow_seconds(pa, column)
        elif types.is_null(kind) or column.null_count == len(column):
            kinds[name] = EMPTY
        elif _is_text(types, kind):
            cells[name] = column.to_pylist()  # every layout converts; not every one casts
            seconds = iso_seconds(cells[name]) if _looks_iso(cells[name]) else None
            if seconds is None:
                kinds[name] = TEXT
            else:
                kinds[name], times[name] = TIMESTAMP, seconds
        elif types.is_nested(kind):
            kinds[name] = NESTED
        else:
            kinds[name] = str(kind)

    def texts(name: str) -> list[str]:
        if name not in cells:
            cells[name] = table.column(names.index(name)).to_pylist()
        return ["" if value is None else str(value) for value in cells[name]]

    return Columns(table.num_rows, names, numeric, kinds, texts, times, orders)


def _category_positions(pa: Any, column: Any) -> NDArray[np.float64]:
    """Each cell's position among the declared categories of an ordered Arrow dictionary
    column (the first chunk's dictionary), NaN where null: a chunk's indices translated
    through its dictionary (per category, not per cell)."""
    declared = column.chunk(0).dictionary.to_pylist()
    where = {value: float(position) for position, value in enumerate(declared)}
    parts = []
    for chunk in column.chunks:
        translate = np.array([where.get(v, np.nan) for v in chunk.dictionary.to_pylist()])
        indices = _arrow_floats(pa.chunked_array([chunk.indices.cast(pa.float64())]))
        present = ~np.isnan(indices)
        positions = np.full(indices.size, np.nan)
        positions[present] = translate[indices[present].astype(np.int64)]
        parts.append(positions)
    return np.concatenate(parts)


#: Ticks per second of each datetime unit (pandas, NumPy and Arrow name them alike).
TICKS_PER_SECOND = {"s": 1.0, "ms": 1e3, "us": 1e6, "ns": 1e9}


def _arrow_seconds(pa: Any, column: Any) -> NDArray[np.float64]:
    """Seconds since the epoch of an Arrow timestamp or date column, read from its own ticks
    (no cast to another unit: a nanosecond stamp is not a whole microsecond, a 9999-12-31
    open end does not fit in nanoseconds), NaN where null."""
    kind = column.type
    if pa.types.is_date32(kind):
        ticks, per_second = column.cast(pa.int32()), 1.0 / 86_400.0
    elif pa.types.is_date64(kind):
        ticks, per_second = column.cast(pa.int64()), 1e3
    else:
        ticks, per_second = column.cast(pa.int64()), TICKS_PER_SECOND[kind.unit]
    return _arrow_floats(ticks.cast(pa.float64(), safe=False)) / per_second


def _is_text(types: Any, kind: Any) -> bool:
    """Strings of any Arrow layout (polars exports ``string_view``) and categoricals."""
    return bool(
        types.is_string(kind)
        or types.is_large_string(kind)
        or getattr(types, "is_string_view", lambda _: False)(kind)
        or types.is_dictionary(kind)
    )


def _looks_iso(cells: list[Any]) -> bool:
    """Whether the first present cell of a text column reads as an ISO timestamp."""
    first = next((cell for cell in cells if cell is not None and cell != ""), None)
    return first is not None and iso_seconds([first]) is not None


def _is_blank(cell: Any) -> bool:
    return cell is None or cell == ""


def iso_seconds(
    column: Sequence[Any], absent: Callable[[Any], bool] = _is_blank
) -> NDArray[np.float64] | None:
    """ISO 8601 timestamps as seconds since the epoch (naive ones read as UTC), NaN where
    ``absent``; None unless every present cell is one."""
    rows = [row for row, cell in enumerate(column) if not absent(cell)]
    cells = [column[row] for row in rows]
    if not cells or not all(_iso_shaped(cell) for cell in cells):
        return None
    seconds = np.full(len(column), np.nan)
    stamps = _numpy_seconds(cells)
    if stamps is None:
        try:
            stamps = np.array([_python_seconds(cell) for cell in cells], dtype=np.float64)
        except ValueError:
            return None
    seconds[rows] = stamps
    return seconds


def _iso_shaped(cell: Any) -> bool:
    return isinstance(cell, str) and len(cell) >= 10 and cell[4:5] == "-"


def _numpy_seconds(cells: list[str]) -> NDArray[np.float64] | None:
    """NumPy's parser: fast, for timestamps without a zone (None otherwise)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a zone is deprecated in NumPy: leave it to Python
        try:
            stamps = np.array(cells, dtype="datetime64[us]")
        except (ValueError, DeprecationWarning, UserWarning):
            return None
    if np.isnat(stamps).any():
        return None
    return stamps.astype(np.int64).astype(np.float64) / 1e6


def _python_seconds(cell: str) -> float:
    stamp = datetime.fromisoformat(cell.strip())
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return stamp.timestamp()


def _arrow_floats(column: Any) -> NDArray[np.float64]:
    """A float64 Arrow column as a NumPy array, NaN where null: read from the buffers, since
    pyarrow's own conversions of arrays with nulls import pandas (0.6 s)."""
    out = np.empty(len(column), dtype=np.float64)
    start = 0
    for chunk in column.chunks:
        size, offset = len(chunk), chunk.offset
        if size == 0:
            continue
        validity, data = chunk.buffers()[:2]
        out[start : start + size] = np.frombuffer(data, np.float64, offset + size)[offset:]
        if chunk.null_count:
            bits = np.unpackbits(np.frombuffer(validity, np.uint8), bitorder="little")
            out[start : start + size][bits[offset : offset + size] == 0] = np.nan
        start += size
    return out


def arrow_table(source: Any) -> Any:
    """A ``pyarrow.Table`` from anything with ``__arrow_c_stream__`` (polars, DuckDB,
    pyarrow)."""
    pa = _optional.pyarrow()
    if isinstance(source, pa.Table):
        return source
    if not hasattr(source, "__arrow_c_stream__"):
        raise TypeError(
            "obj must export an Arrow stream (__arrow_c_stream__: polars, pyarrow, DuckDB), "
            f"got {type(source).__name__}"
        )
    return pa.table(source)


def to_pandas(labels: Sequence[str], names: Sequence[str], columns: NDArray[np.float64]) -> Any:
    """One row per task (index = labels), one column per metric, NaN where absent."""
    try:
        import pandas as pd
    except ImportError as exc:
        raise ImportError("to_pandas() needs pandas: pip install pandas") from exc
    return pd.DataFrame(
        np.ascontiguousarray(columns.T),
        index=pd.Index(list(labels), name="label"),
        columns=list(names),
    )


def to_arrow(labels: Sequence[str], names: Sequence[str], columns: NDArray[np.float64]) -> Any:
    """A ``pyarrow.Table``: a ``label`` column (``task_label``, ``task_label_2``, … when a
    metric already has that name) and one float64 column per metric, null where absent."""
    pa = _optional.pyarrow()
    label_name = "label"
    suffix = 1
    while label_name in names:
        label_name = "task_label" if suffix == 1 else f"task_label_{suffix}"
        suffix += 1
    _optional.require_utf8("metric names", names)
    _optional.require_utf8("labels", labels)
    arrays = [pa.array(list(labels), type=pa.string())]
    arrays += [pa.array(row, type=pa.float64(), mask=np.isnan(row)) for row in columns]
    return pa.Table.from_arrays(arrays, names=[label_name, *names])
