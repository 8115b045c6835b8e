"""Shared machinery of the benchmark suite: timing, targets, correctness flags, the table.

Every benchmark is measured in the run that prints it: a row's ratio compares two timings
taken seconds apart on the same machine, never a number from another run. One benchmark
(an id of SPEC §11) yields several rows, one per implementation, orjson-style: the
implementation under test, its baseline (ratio 1.00) and any informative peers. The row
under test carries the SPEC target and the verdict (PASS/FAIL); rows whose result has a
reference carry a correctness flag: "ok", "MISMATCH", or "-" when there is nothing to
compare with (the reference itself, a pure timing baseline, a memory reading).
"""

from __future__ import annotations

import contextlib
import gc
import math
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

# Correctness flags.
OK = "ok"
MISMATCH = "MISMATCH"
NOT_CHECKED = "-"

# Verdicts: PASS/FAIL for the row under test; the others are not judged.
PASS, FAIL = "PASS", "FAIL"
BASELINE, INFO, SKIP, ERROR = "baseline", "info", "skip", "ERROR"

# Two float results agree when within this relative tolerance (or both NaN / equal inf):
# the backends are specified to compute the same numbers, so only summation order may
# differ between a parallel Rust reduction and NumPy's pairwise sums.
REL_TOL = 1e-9
ABS_TOL = 1e-12


class Skip(Exception):
    """A benchmark (or one implementation of it) cannot run here; the message says why."""


@dataclass(frozen=True)
class Config:
    quick: bool
    repeats: int

    @classmethod
    def make(cls, quick: bool) -> Config:
        return cls(quick=quick, repeats=1 if quick else 5)

    def size(self, full: int, quick: int) -> int:
        return quick if self.quick else full


@dataclass
class Row:
    id: str
    workload: str
    implementation: str
    seconds: float | None = None  # or bytes, when unit == "bytes"
    unit: str = "s"
    ratio: float | None = None  # see ratio_label
    ratio_label: str = ""
    target: str = ""
    verdict: str = INFO
    correct: str = NOT_CHECKED
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Target:
    """A SPEC target on a ratio: ``kind`` is "time" (t / t_baseline must be <= limit),
    "speedup" (t_baseline / t must be >= limit) or "max" (a plain value <= limit)."""

    kind: str
    limit: float
    text: str

    def judge(self, ratio: float) -> str:
        if not math.isfinite(ratio):
            return FAIL
        if self.kind == "speedup":
            return PASS if ratio >= self.limit else FAIL
        return PASS if ratio <= self.limit else FAIL


@dataclass
class Group:
    """The rows of one benchmark, filled in as its implementations are measured."""

    id: str
    workload: str
    rows: list[Row] = field(default_factory=list)

    def add(self, implementation: str, **fields: Any) -> Row:
        row = Row(self.id, self.workload, implementation, **fields)
        self.rows.append(row)
        return row

    def skip(self, implementation: str, reason: str) -> Row:
        return self.add(implementation, verdict=SKIP, note=reason)

    def compare(
        self,
        rows: list[Row],
        baseline: Row,
        target: Target | None = None,
        kind: str = "time",
    ) -> None:
        """Fill the ratio of ``rows`` against ``baseline`` (t / t_base for kind "time",
        t_base / t for "speedup"); judge them when a ``target`` is given."""
        if target is not None:
            kind = target.kind
        label = "faster" if kind == "speedup" else "time"
        baseline.verdict, baseline.ratio, baseline.ratio_label = BASELINE, 1.0, label
        for row in rows:
            if row.seconds is None or baseline.seconds is None:
                continue
            if kind == "speedup":
                row.ratio = baseline.seconds / row.seconds
            else:
                row.ratio = row.seconds / baseline.seconds
            row.ratio_label = label
            if target is not None:
                row.target = target.text
                row.verdict = target.judge(row.ratio)


def best_of(
    function: Callable[..., Any],
    repeats: int,
    setup: Callable[[], tuple[Any, ...]] | None = None,
) -> tuple[float, Any]:
    """Minimum wall time of ``repeats`` calls (``time.perf_counter``) and the last result.

    ``setup`` (untimed) builds fresh arguments for every call, e.g. a new kiln to cool.
    A single repeat without ``setup`` is preceded by an untimed warm-up call.
    The garbage collector is paused while timing, as ``timeit`` does. The conservation-law
    fits the backend keeps for recent samples are forgotten before every call, so that a
    cool is timed from scratch.
    """
    from crackle_runtime import _backend

    best = math.inf
    result: Any = None
    if repeats <= 1 and setup is None:
        function()  # one untimed call: thread pools, caches and page faults warm up
    for _ in range(max(1, repeats)):
        arguments = setup() if setup is not None else ()
        _backend.kernels().forget_law_fits()
        gc.collect()
        enabled = gc.isenabled()
        gc.disable()
        try:
            start = time.perf_counter()
            result = function(*arguments)
            elapsed = time.perf_counter() - start
        finally:
            if enabled:
                gc.enable()
        best = min(best, elapsed)
        del arguments
    return best, result


def same_float(a: float, b: float, rel_tol: float = REL_TOL, abs_tol: float = ABS_TOL) -> bool:
    a, b = float(a), float(b)
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if math.isinf(a) or math.isinf(b):
        return a == b
    return math.isclose(a, b, rel_tol=rel_tol, abs_tol=abs_tol)


def same_arrays(a: Any, b: Any, rel_tol: float = REL_TOL, abs_tol: float = ABS_TOL) -> bool:
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if x.shape != y.shape:
        return False
    return bool(np.allclose(x, y, rtol=rel_tol, atol=abs_tol, equal_nan=True))


def flag(agrees: bool) -> str:
    return OK if agrees else MISMATCH


def same_partition(a: Any, b: Any) -> bool:
    """Whether two labelings (``-1`` = noise/singleton) are the same partition up to
    renumbering: same noise set and a one-to-one map between cluster labels."""
    x, y = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    if x.shape != y.shape:
        return False
    noise = x < 0
    if not np.array_equal(noise, y < 0):
        return False
    x, y = x[~noise], y[~noise]
    if x.size == 0:
        return True
    pairs = int(np.unique(np.stack([x, y]), axis=1).shape[1])
    return pairs == int(np.unique(x).size) == int(np.unique(y).size)


def singletons_as_noise(labels: Any) -> np.ndarray[Any, np.dtype[np.int64]]:
    """Component labels with the members of one-element components replaced by -1."""
    labels = np.asarray(labels, dtype=np.int64)
    sizes = np.bincount(labels)
    return np.where(sizes[labels] >= 2, labels, -1)


def same_report(a: Any, b: Any) -> tuple[bool, str]:
    """Whether two PatternReports hold the same patterns (as multisets; floats to REL_TOL).

    Returns ``(agrees, detail)`` with the first difference found."""
    if len(a) != len(b):
        return False, f"{len(a)} vs {len(b)} patterns"

    def key(pattern: Any) -> tuple[str, str, tuple[str, ...]]:
        return (str(pattern.kind.value), pattern.description, tuple(pattern.involved_tasks))

    for left, right in zip(sorted(a, key=key), sorted(b, key=key), strict=True):
        if key(left) != key(right):
            return False, f"{left.description!r} vs {right.description!r}"
        if not same_float(left.confidence, right.confidence):
            return False, f"confidence of {left.description!r}"
        if set(left.metrics) != set(right.metrics):
            return False, f"metric names of {left.description!r}"
        for name, value in left.metrics.items():
            if not same_float(value, right.metrics[name]):
                return (
                    False,
                    f"{name} of {left.description!r}: {value!r} vs {right.metrics[name]!r}",
                )
    return True, ""


@contextlib.contextmanager
def backend(name: str) -> Iterator[None]:
    """Use the ``name`` backend ("native" or "python") inside the block."""
    from crackle_runtime import _backend

    previous = _backend.name
    _backend.use(name)
    try:
        yield
    finally:
        _backend.use(previous)


def native_or_skip() -> Any:
    from crackle_runtime import _backend

    try:
        return _backend.native_module()
    except ImportError as exc:
        raise Skip(f"native extension not built ({exc.__class__.__name__})") from None


def require_kernels(module: Any, names: tuple[str, ...], which: str) -> None:
    missing = [name for name in names if not hasattr(module, name)]
    if missing:
        raise Skip(f"{which} backend lacks kernel(s) {', '.join(missing)}")


@contextlib.contextmanager
def kernels_present(which: str) -> Iterator[None]:
    """Turn a kernel missing from a backend module (an AttributeError raised on the module
    itself, e.g. a detector kernel not written yet) into a Skip naming it."""
    from crackle_runtime import _backend

    try:
        yield
    except AttributeError as exc:
        modules = [_backend.numpy_module()]
        with contextlib.suppress(ImportError):
            modules.append(_backend.native_module())
        if any(getattr(exc, "obj", None) is module for module in modules):
            raise Skip(f"{which} backend lacks kernel {exc.name}") from None
        raise


def detector_breakdown(report: Any) -> str:
    """Where a cooling's time went among the detectors, from ``report.timings``, e.g.
    "conservation_laws 4.1 s, clustering 0.2 s of 4.6 s"."""
    top = sorted(report.timings.items(), key=lambda item: -item[1])[:4]
    parts = ", ".join(f"{name} {seconds:.2f} s" for name, seconds in top)
    return f"{parts or 'no detector ran'} of {report.elapsed:.2f} s"


def error_rows(group_id: str, workload: str, exc: BaseException) -> list[Row]:
    traceback.print_exception(exc)
    return [
        Row(
            group_id,
            workload,
            "(benchmark)",
            verdict=ERROR,
            correct=MISMATCH if isinstance(exc, AssertionError) else NOT_CHECKED,
            note=f"{type(exc).__name__}: {exc}"[:200],
        )
    ]


# --- the table ---------------------------------------------------------------------------


def format_amount(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "bytes":
        return f"{value / 1e6:.1f} MB"  # decimal, as the SPEC's "128 MB" for 1M x 16
    if unit == "":
        return f"{value:.3f}"
    if value >= 1.0:
        return f"{value:.3f} s"
    if value >= 1e-3:
        return f"{value * 1e3:.2f} ms"
    return f"{value * 1e6:.1f} µs"


def format_ratio(row: Row) -> str:
    if row.ratio is None:
        return "-"
    number = f"{row.ratio:.2f}" if abs(row.ratio) < 100 else f"{row.ratio:.0f}"
    return f"{number}x {row.ratio_label}" if row.ratio_label else number


def render(rows: list[Row]) -> str:
    """The rows as a text table; id and workload are printed once per group of rows."""
    header = ("id", "workload", "implementation", "time", "ratio", "target", "verdict", "correct")
    body = []
    previous: tuple[str, str] | None = None
    for row in rows:
        same_group = previous == (row.id, row.workload)
        body.append(
            (
                "" if same_group else row.id,
                "" if same_group else row.workload,
                row.implementation,
                format_amount(row.seconds, row.unit),
                format_ratio(row),
                row.target,
                row.verdict,
                row.correct,
            )
        )
        previous = (row.id, row.workload)
    widths = [max(len(line[k]) for line in [header, *body]) for k in range(len(header))]

    def join(cells: tuple[str, ...]) -> str:
        return "  ".join(cell.ljust(widths[k]) for k, cell in enumerate(cells)).rstrip()

    lines = [join(header), join(tuple("-" * width for width in widths))]
    for index, line in enumerate(body):
        if index and line[0]:
            lines.append("")
        lines.append(join(line))
    notes: list[str] = []
    for row in rows:
        note = f"  {row.id} {row.implementation}: {row.note}"
        if row.note and note not in notes:
            notes.append(note)
    if notes:
        lines += ["", "notes:", *notes]
    return "\n".join(lines)
