"""The ``crackle`` command: ``crackle demo`` and ``crackle cool FILE|-`` (SPEC §10, §13).

Exit status: 0 when the command ran (and, with ``--fail-on``, found no pattern of those
kinds), 1 when ``--fail-on`` kinds were found, 2 on bad usage or bad input with a one-line
message on standard error.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from crackle_runtime import _frames, _readers
from crackle_runtime.errors import CrackleError
from crackle_runtime.kiln import Kiln
from crackle_runtime.patterns import PatternKind
from crackle_runtime.profile import ThermalProfile
from crackle_runtime.report import PatternReport, printable

__all__ = ["main"]

_PROFILES = {
    "fast": ThermalProfile.fast_cooling,
    "normal": ThermalProfile.default,
    "slow": ThermalProfile.slow_cooling,
}
_KIND_NAMES = ", ".join(kind.name.lower() for kind in PatternKind)
ANY = "any"

TABLE_ROWS_PER_KIND = 12  # the table lists this many patterns per kind; json/csv list all

FOUND, NOT_FOUND, BAD_USAGE = 1, 0, 2

# The pairwise detectors' work grows with the square of the metric count and does not yet
# stop at the time budget (on 2 cores: 1,000 metrics x 3 tasks took 13 s to cool, 2,000 took
# 71 s): beyond this many metrics the CLI asks for them to be left out rather than hang.
PAIRWISE = frozenset(
    {PatternKind.CORRELATION, PatternKind.DEPENDENCE, PatternKind.INFORMATION_FLOW}
)
MAX_PAIRWISE_METRICS = 1000

_COOL_EXAMPLES = """\
examples:
  crackle cool runs.csv --label run_id --order-by started_at
  crackle cool builds.jsonl.gz --ignore build_number,commit --format json --output report.json
  crackle cool metrics.parquet --only distribution_shift,outlier --fdr 0.05
  crackle cool runs.csv --fail-on distribution_shift,conservation   # exit 1 if found (CI gate)
  zcat runs.csv.gz | crackle cool - --format html > report.html
  crackle cool 'exports/*.parquet' --workers 2 --label run_id   # on a local Dask cluster
  crackle cool exports/ --scheduler tcp://10.0.0.5:8786         # on a running cluster

exit status: 0 ran (no --fail-on pattern found), 1 a --fail-on pattern was found,
2 bad usage or bad input (one line on standard error).
"""


class UsageError(Exception):
    """Bad usage or bad input: exit status 2 with a one-line message."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def _kinds(text: str) -> frozenset[PatternKind]:
    """``KIND[,KIND]``: kinds by name (``phase_transition``) or value (``phase transition``)."""
    kinds = set()
    for part in text.split(","):
        if not part.strip():
            raise argparse.ArgumentTypeError(f"empty kind in {text!r} (kinds: {_KIND_NAMES})")
        try:
            kinds.add(PatternKind.parse(part.strip().replace("-", "_")))
        except ValueError:
            try:
                kinds.add(PatternKind.parse(part.strip().replace("_", " ").replace("-", " ")))
            except ValueError:
                raise argparse.ArgumentTypeError(
                    f"unknown pattern kind {part.strip()!r} (kinds: {_KIND_NAMES})"
                ) from None
    return frozenset(kinds)


def _fail_on(text: str) -> frozenset[PatternKind]:
    return frozenset(PatternKind) if text.strip().lower() == ANY else _kinds(text)


def _columns(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",")]
    if not all(names):
        raise argparse.ArgumentTypeError(f"empty column name in {text!r}")
    return names


def _in_range(convert: Callable[[str], float], low: float, high: float, what: str) -> Any:
    """An argparse type: ``convert`` the text, then require ``low < value < high``
    (``low <= value <= high`` for whole numbers)."""

    def parse(text: str) -> float:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not {what}: {text!r}") from None
        inside = low <= value <= high if convert is int else low < value < high
        if not inside:
            bounds = "inclusive" if convert is int else "exclusive"
            raise argparse.ArgumentTypeError(
                f"must be between {low} and {high} ({bounds}), got {text}"
            )
        return value

    return parse


_fdr = _in_range(float, 0.0, 1.0, "a number")
_tasks = _in_range(int, 1, 10_000_000, "a whole number")


def _parser() -> argparse.ArgumentParser:
    from crackle_runtime import __version__

    parser = _Parser(
        prog="crackle",
        description="Record the metrics of many tasks and find what no single task shows.",
        epilog="examples:\n  crackle demo\n  crackle cool runs.csv --label run_id\n"
        "  crackle cool --help",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"crackle {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    demo = commands.add_parser(
        "demo",
        help="fire and cool the built-in event-stream scenario",
        description="Fire the built-in event-stream scenario (healthy batches, a degrading "
        "system, a records-in/records-out check), cool it and print the report.",
        epilog="examples:\n  crackle demo\n  crackle demo --tasks 5000 --seed 1 --format html "
        "--output demo.html",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    demo.add_argument(
        "--tasks", type=_tasks, default=1000, help="number of batches, e.g. --tasks 5000 "
        "(default 1000)"
    )  # fmt: skip
    demo.add_argument("--seed", type=int, default=7, help="random seed, e.g. --seed 1 (default 7)")
    demo.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    _output_options(demo)
    cool = commands.add_parser(
        "cool",
        help="cool the tasks of a CSV, JSON Lines or Parquet file",
        description="Cool the tasks of a file, one row per task: numeric columns are metrics; "
        "other columns are named in the report's notes. CSV (also .gz), JSON Lines and Parquet "
        "are read through pyarrow when it is installed; NA, empty and nan cells are absent.",
        epilog=_COOL_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cool.add_argument(
        "file",
        metavar="FILE|-",
        help="the tasks: a .csv, .csv.gz, .jsonl, .jsonl.gz or .parquet file, or - for "
        "standard input (format sniffed), e.g. runs.csv",
    )
    cool.add_argument(
        "--label",
        metavar="COLUMN",
        help="column holding the task labels, e.g. --label run_id (default: row-1, row-2, …)",
    )
    cool.add_argument(
        "--order-by",
        metavar="COLUMN",
        help="column that orders the tasks in time (numbers or ISO timestamps); rows are "
        "sorted by it and it takes part in no detector, e.g. --order-by started_at",
    )
    cool.add_argument(
        "--ignore",
        metavar="COL[,COL]",
        type=_columns,
        default=[],
        help="columns to leave out of every detector (ids, counters), e.g. --ignore "
        "build_number,commit",
    )
    cool.add_argument(
        "--only",
        metavar="KIND[,KIND]",
        type=_kinds,
        help=f"run only these detectors, e.g. --only distribution_shift,outlier (kinds: "
        f"{_KIND_NAMES})",
    )
    cool.add_argument(
        "--without",
        metavar="KIND[,KIND]",
        type=_kinds,
        help="switch these detectors off, e.g. --without clustering",
    )
    cool.add_argument(
        "--fdr",
        metavar="Q",
        type=_fdr,
        help="false discovery rate of the Benjamini-Hochberg correction, e.g. --fdr 0.05 "
        "(default: the profile's, 0.01)",
    )
    cool.add_argument(
        "--fail-on",
        metavar="KIND[,KIND]|any",
        type=_fail_on,
        help="exit with status 1 when a pattern of these kinds is found (a CI gate), e.g. "
        "--fail-on distribution_shift or --fail-on any",
    )
    cool.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="cool on this Dask cluster (needs the dask extra): partitions to mergeable "
        "states on the workers, e.g. --scheduler tcp://10.0.0.5:8786; FILE may then be a "
        "directory or a glob of Parquet files",
    )
    cool.add_argument(
        "--workers",
        metavar="N",
        type=int,
        help="cool on a local Dask cluster of N worker processes (needs the dask extra), "
        "e.g. --workers 2; FILE may then be a directory or a glob of Parquet files",
    )
    cool.add_argument(
        "--gather-rows",
        metavar="N",
        type=int,
        help="with --scheduler or --workers: gather every row to this process up to N rows "
        "(default 10,000,000); above, the detectors that need the values read a sample",
    )
    cool.add_argument(
        "--sample-rows",
        metavar="N",
        type=int,
        help="with --scheduler or --workers, above --gather-rows: about how many rows the "
        "sample holds (default 1,000,000)",
    )
    _output_options(cool)
    return parser


def _output_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--profile",
        choices=sorted(_PROFILES),
        default="normal",
        help="detector thresholds: fast (coarse, quick), normal or slow (finer), e.g. "
        "--profile fast (default normal)",
    )
    parser.add_argument(
        "--format",
        choices=["table", "json", "csv", "html"],
        default="table",
        help="report format, e.g. --format json (default table)",
    )
    parser.add_argument(
        "--output",
        metavar="PATH",
        type=Path,
        help="write the report here instead of standard output, e.g. --output report.html",
    )


def _render(report: PatternReport, fmt: str) -> str:
    if fmt == "json":
        return report.to_json()
    if fmt == "csv":
        return report.to_csv()
    if fmt == "html":
        return report.to_html()
    return report.to_table(max_per_kind=TABLE_ROWS_PER_KIND)


def _emit(text: str, output: Path | None) -> None:
    text = printable(text if text.endswith("\n") else text + "\n")
    if output is None:
        try:
            sys.stdout.write(text)
            sys.stdout.flush()
        except BrokenPipeError:  # e.g. `crackle cool … | head`: the reader has gone
            # Point stdout at /dev/null so the interpreter's final flush cannot fail again;
            # the exit status still says what was found.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write {output}: {exc.strerror or exc}") from None


def _option(argument: str) -> str:
    return "--" + argument.replace("_", "-")


# --- commands ---------------------------------------------------------------------------
def _demo(args: argparse.Namespace) -> int:
    from crackle_runtime.scenarios import event_stream

    kiln = Kiln(_PROFILES[args.profile]())
    kiln.fire_all(event_stream(args.tasks, args.seed), progress=not args.no_progress)
    report = kiln.cool()
    _emit(_render(report, args.format), args.output)
    return 0


def _cool_profile(args: argparse.Namespace) -> ThermalProfile:
    profile = _PROFILES[args.profile]()
    if args.only is not None:
        profile = profile.only(*args.only)
    if args.without is not None:
        profile = profile.without(*args.without)
    if args.fdr is not None:
        profile = profile.with_thresholds(fdr=args.fdr)
    return profile


def _parquet_files(pattern: str) -> list[str] | None:
    """The Parquet files ``pattern`` names when it is a directory (its ``*.parquet``) or a
    glob, sorted by name (the order of the tasks); None for a single file or ``-``."""
    path = Path(pattern)
    if path.is_file() or pattern == "-":
        return None  # a file whose name holds *, ? or [ is that file, not a glob
    if path.is_dir():
        files = sorted(str(p) for p in path.glob("*.parquet"))
    elif any(character in pattern for character in "*?["):
        files = sorted(glob.glob(pattern))
    else:
        return None
    if not files:
        raise UsageError(f"{pattern}: no Parquet files")
    return files


def _dask_files(pattern: str) -> list[str]:
    """The Parquet files ``--scheduler``/``--workers`` read: a directory, a glob or a file."""
    if pattern == "-":
        raise UsageError("--scheduler and --workers read Parquet files, not standard input")
    files = _parquet_files(pattern)
    if files is None and not Path(pattern).is_file():
        raise UsageError(f"{pattern}: no such file or directory")
    return files or [pattern]


def _cool_on_dask(args: argparse.Namespace, profile: ThermalProfile) -> PatternReport:
    """``crackle_runtime.dask.cool`` of the Parquet file(s) on the cluster the options
    name (one partition per file and row group, in file order)."""
    try:
        import dask.dataframe as dd
        import distributed as _distributed
    except ImportError as exc:
        raise UsageError(
            "--scheduler and --workers need Dask: pip install 'crackle_runtime[dask]'"
        ) from exc
    from crackle_runtime import dask as crackle_dask

    distributed: Any = _distributed  # untyped
    for option, value, least in (
        ("--workers", args.workers, 1),
        ("--gather-rows", args.gather_rows, 0),
        ("--sample-rows", args.sample_rows, 1),
    ):
        if value is not None and value < least:
            raise UsageError(f"{option} must be >= {least}, got {value}")
    files = _dask_files(args.file)
    profile = profile.ignoring(*args.ignore) if args.ignore else profile
    with contextlib.ExitStack() as stack:
        if args.scheduler is not None:
            stack.enter_context(distributed.Client(args.scheduler))
        else:
            stack.enter_context(crackle_dask.local_client(args.workers))
        ddf = dd.read_parquet(files)
        sizes = {
            "gather_rows": crackle_dask.DEFAULT_GATHER_ROWS
            if args.gather_rows is None
            else args.gather_rows,
            "sample_rows": crackle_dask.DEFAULT_SAMPLE_ROWS
            if args.sample_rows is None
            else args.sample_rows,
        }
        return crackle_dask.cool(ddf, profile, label=args.label, order_by=args.order_by, **sizes)


def _cool(args: argparse.Namespace) -> int:
    profile = _cool_profile(args)
    on_dask = args.scheduler is not None or args.workers is not None
    if not on_dask and (args.gather_rows is not None or args.sample_rows is not None):
        raise UsageError("--gather-rows and --sample-rows need --scheduler or --workers")
    if on_dask:
        report = _cool_on_dask(args, profile)
        _emit(_render(report, args.format), args.output)
        return _exit_status(args, report)
    files = _parquet_files(args.file)
    if files is not None:  # a directory or a glob: one table, as a single file is read
        columns, where = _readers.read_parquet_files(files, args.file), args.file
    else:
        columns, where = _readers.read_columns(args.file)
    prepared = _frames.prepare(
        columns, args.label, args.order_by, args.ignore, where=where, spell=_option
    )
    if not prepared.names:
        raise UsageError(f"{where}: no numeric columns to use as metrics")
    _check_width(prepared, profile, where)
    report = Kiln._from_prepared(prepared, profile).cool()
    _emit(_render(report, args.format), args.output)
    return _exit_status(args, report)


def _exit_status(args: argparse.Namespace, report: PatternReport) -> int:
    if args.fail_on is not None and any(pattern.kind in args.fail_on for pattern in report):
        return FOUND
    return NOT_FOUND


def _check_width(prepared: _frames.Prepared, profile: ThermalProfile, where: str) -> None:
    metrics = sum(name not in prepared.index_columns for name in prepared.names)
    pairwise = sorted(kind.name.lower() for kind in PAIRWISE & profile.detectors)
    if metrics > MAX_PAIRWISE_METRICS and pairwise:
        raise UsageError(
            f"{where}: {metrics:,} metric columns, more than the {MAX_PAIRWISE_METRICS:,} the "
            f"pairwise detectors take; leave them out with --without {','.join(pairwise)} "
            "or name fewer columns (--ignore)"
        )


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return printable(text.splitlines()[0] if text else type(exc).__name__)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args: argparse.Namespace | None = None
    try:
        try:
            args = _parser().parse_args(argv)
        except SystemExit as exc:  # --help and --version print and stop
            return exc.code if isinstance(exc.code, int) else 0
        if args.command == "demo":
            return _demo(args)
        return _cool(args)
    except (UsageError, CrackleError, ValueError, TypeError, OverflowError) as exc:
        message = _one_line(exc)
    except OSError as exc:  # a file the cluster or a reader could not open
        message = f"cannot read {getattr(args, 'file', 'the input')}: {_one_line(exc)}"
    except (RecursionError, MemoryError) as exc:
        message = f"the input is too large or too deeply nested ({type(exc).__name__})"
    print(f"crackle: error: {message}", file=sys.stderr)
    return BAD_USAGE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
