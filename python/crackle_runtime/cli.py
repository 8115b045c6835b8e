"""The ``crackle`` command: ``crackle demo`` and ``crackle cool FILE``."""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from crackle_runtime.errors import CrackleError
from crackle_runtime.kiln import Kiln
from crackle_runtime.profile import ThermalProfile
from crackle_runtime.report import PatternReport

__all__ = ["main"]

_PROFILES = {
    "fast": ThermalProfile.fast_cooling,
    "normal": ThermalProfile.default,
    "slow": ThermalProfile.slow_cooling,
}


TABLE_ROWS_PER_KIND = 12  # the table lists this many patterns per kind; json/csv list all


class UsageError(Exception):
    """Bad usage or bad input: exit status 2 with a one-line message."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="crackle",
        description="Record the metrics of many tasks and find what no single task shows.",
    )
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    demo = commands.add_parser("demo", help="fire and cool the built-in event-stream scenario")
    demo.add_argument("--tasks", type=int, default=1000, help="number of batches (default 1000)")
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    _output_options(demo)
    cool = commands.add_parser("cool", help="cool the tasks of a CSV, JSON Lines or Parquet file")
    cool.add_argument("file", type=Path)
    cool.add_argument("--label", help="column holding the task labels (default: row number)")
    _output_options(cool)
    return parser


def _output_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", choices=sorted(_PROFILES), default="normal")
    parser.add_argument("--format", choices=["table", "json", "csv", "html"], default="table")
    parser.add_argument("--output", type=Path, help="write the report here instead of stdout")


def _render(report: PatternReport, fmt: str) -> str:
    if fmt == "json":
        return report.to_json()
    if fmt == "csv":
        return report.to_csv()
    if fmt == "html":
        return report.to_html()
    return report.to_table(max_per_kind=TABLE_ROWS_PER_KIND)


def _emit(text: str, output: Path | None) -> None:
    if output is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        return
    try:
        output.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write {output}: {exc.strerror or exc}") from None


# --- reading task files -----------------------------------------------------------------
def _number(text: str) -> float | None:
    """A metric value from a text cell; None when the cell is empty."""
    stripped = text.strip()
    if not stripped:
        return None
    return float(stripped)


def read_tasks(path: Path, label: str | None) -> tuple[list[str], list[str], np.ndarray]:
    """``(labels, metric names, values)`` from a CSV, JSON Lines or Parquet file."""
    if not path.exists():
        raise UsageError(f"no such file: {path}")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return _read_parquet(path, label)
    if suffix in (".jsonl", ".ndjson", ".json"):
        return _read_jsonl(path, label)
    return _read_csv(path, label)


def _table(
    rows: list[dict[str, Any]], columns: list[str], label: str | None, where: str
) -> tuple[list[str], list[str], np.ndarray]:
    if label is not None and label not in columns:
        raise UsageError(f"--label {label!r}: no such column in {where}")
    metric_columns = []
    for column in columns:
        if column == label:
            continue
        cells = [row.get(column) for row in rows]
        if all(_is_number_cell(cell) for cell in cells) and any(
            cell not in (None, "") for cell in cells
        ):
            metric_columns.append(column)
    values = np.full((len(rows), len(metric_columns)), np.nan)
    for i, row in enumerate(rows):
        for j, column in enumerate(metric_columns):
            cell = row.get(column)
            if cell is None or cell == "":
                continue
            value = float(cell)
            if not math.isfinite(value):
                raise UsageError(f"{where}: row {i + 1}, column {column!r} is not finite ({cell})")
            values[i, j] = value
    labels = (
        [str(row.get(label, "")) for row in rows]
        if label is not None
        else [f"row-{i + 1}" for i in range(len(rows))]
    )
    return labels, metric_columns, values


def _is_number_cell(cell: Any) -> bool:
    if cell is None or cell == "":
        return True
    if isinstance(cell, bool):
        return True
    if isinstance(cell, int | float):
        return True
    if isinstance(cell, str):
        try:
            float(cell)
        except ValueError:
            return False
        return True
    return False


def _read_csv(path: Path, label: str | None) -> tuple[list[str], list[str], np.ndarray]:
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            rows = list(reader)
            columns = list(reader.fieldnames or [])
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UsageError(f"cannot read {path} as CSV: {exc}") from None
    if not columns:
        raise UsageError(f"{path} has no header row")
    return _table(rows, columns, label, str(path))


def _read_jsonl(path: Path, label: str | None) -> tuple[list[str], list[str], np.ndarray]:
    rows: list[dict[str, Any]] = []
    columns: dict[str, None] = {}
    try:
        with path.open(encoding="utf-8") as fh:
            for number, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                record = json.loads(line)
                if not isinstance(record, dict):
                    raise UsageError(f"{path}: line {number} is not a JSON object")
                rows.append(record)
                columns.update(dict.fromkeys(record))
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"{path}: line {exc.lineno if hasattr(exc, 'lineno') else '?'} is not JSON: {exc.msg}"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from None
    return _table(rows, list(columns), label, str(path))


def _read_parquet(path: Path, label: str | None) -> tuple[list[str], list[str], np.ndarray]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise UsageError("reading Parquet needs pyarrow: pip install pyarrow") from None
    try:
        table = pq.read_table(path)
    except Exception as exc:
        raise UsageError(f"cannot read {path} as Parquet: {exc}") from None
    rows = table.to_pylist()
    return _table(rows, list(table.column_names), label, str(path))


# --- commands ---------------------------------------------------------------------------
def _demo(args: argparse.Namespace) -> int:
    from crackle_runtime.scenarios import event_stream

    if args.tasks < 1:
        raise UsageError("--tasks must be at least 1")
    kiln = Kiln(_PROFILES[args.profile]())
    kiln.fire_all(event_stream(args.tasks, args.seed), progress=not args.no_progress)
    report = kiln.cool()
    _emit(_render(report, args.format), args.output)
    return 0


def _cool(args: argparse.Namespace) -> int:
    labels, names, values = read_tasks(args.file, args.label)
    if not names:
        raise UsageError(f"{args.file}: no numeric columns to use as metrics")
    kiln = Kiln(_PROFILES[args.profile]())
    kiln.add_matrix(values, names, labels)
    report = kiln.cool()
    _emit(_render(report, args.format), args.output)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
        if args.command == "demo":
            return _demo(args)
        return _cool(args)
    except UsageError as exc:
        print(f"crackle: error: {exc}", file=sys.stderr)
        return 2
    except (CrackleError, ValueError) as exc:
        print(
            f"crackle: error: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}",
            file=sys.stderr,
        )
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
