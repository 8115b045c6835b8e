"""The cooling loop: every registered detector in pattern-kind order, within one time
budget, then one Benjamini–Hochberg pass over every p-valued test of the report.

The loop owns what is common to all detectors: which ones the profile enables, the minimum
number of tasks, the metrics left out (ignored by the profile, declared an index, or found
to be an index column: ids, counters, row numbers, timestamps — SPEC §12 column roles; no
detector reads them), the deadline each kernel gets (the budget left), ``skipped`` and
``incomplete``, the bounds on wide data (pairs of at most MAX_PAIR_METRICS metrics, at most
MAX_PATTERNS_PER_KIND worded findings of a tested kind, no run with fewer tasks than a
detector can test), and the false-discovery control. Each detector's module only words its
own patterns.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from crackle_runtime import _backend
from crackle_runtime._numpy.detect.outlier import COUNT_MAX_DISTINCT
from crackle_runtime._numpy.detect.shared.seasonal import MIN_PHASE_GROUPS, PHASE_GROUP_VALUES
from crackle_runtime.detectors._base import (
    MAX_PAIR_METRICS,
    MAX_PATTERNS_PER_KIND,
    Detector,
    Findings,
    Test,
)
from crackle_runtime.detectors._data import DetectionData
from crackle_runtime.detectors._registry import REGISTRY
from crackle_runtime.detectors.outlier import EDGE_AFTER, EDGE_BEFORE
from crackle_runtime.errors import CoolingTimeoutError
from crackle_runtime.patterns import DETECTOR_ORDER, CracklePattern, PatternKind
from crackle_runtime.profile import ThermalProfile
from crackle_runtime.report import PatternReport

__all__ = [
    "MIN_FENCE_SEGMENT",
    "Tables",
    "benjamini_hochberg",
    "cool",
    "index_columns",
    "run_order",
    "segmented_result",
]

#: A detector's result table computed otherwise than by its kernel: (view, params) -> fields.
Tables = Callable[[DetectionData, Mapping[str, Any]], Mapping[str, NDArray[Any]]]

MIN_FENCE_SEGMENT = 30
"""A segmented detector reads a metric within the segments between its change points only
when each segment has at least this many values (changes closer to each other or to an end
are passed over): a scale estimated from fewer values is too loose to judge by."""
#: A persistent metric (a random walk, a memory gauge, a load: the change-point detector's
#: ``phi`` at least NEIGHBOUR_PHI) has no level to fence against, only a local one: within
#: each segment it is read by how far a value stands from the mean of its neighbours r
#: tasks before and after it, r = 1..NEIGHBOUR_REACH (the additive-outlier estimate of an
#: integrated series, Chen & Liu 1993: x_t - (x_(t-r) + x_(t+r)) / 2; r up to 3 finds every
#: task of a burst of up to 3), its multiplicity counting every reach. A flagged value
#: stands out on both sides: the smaller of x_t - x_(t-r) and x_t - x_(t+r) has the sign of
#: the larger and at least 1 / NEIGHBOUR_SIDES of its size (a level jump the search did not
#: cut moves one side only). Against the segment's median, a random walk's excursions were
#: outliers (0.9 per 2,000-task export) and a spike of 8 innovation SDs was found in 15%
#: of runs; against the neighbours 0 and 85% (AR(1) 0.9: 0.05 and 55% -> 0.05 and 100%).
#: A metric in whole numbers that moves by a few units (a queue of a few requests;
#: _neighbour_readable) keeps the median reading. A positive metric not in whole numbers
#: whose spread grows with its level (a latency driven by load) is read by the same
#: differences of its logs (_spread_grows_with_level).
NEIGHBOUR_PHI = 0.8
NEIGHBOUR_REACH = 3
NEIGHBOUR_SIDES = 3
#: The first and last values of a persistent segment are read against their one
#: neighbour (their ``row_reach`` EDGE_AFTER and EDGE_BEFORE, the outlier wording's): the
#: latest task of a memory gauge spiking is news.
LEVEL_GROUPS = 8  # the spread-versus-level slope reads this many groups of levels ...
LEVEL_GROUP_VALUES = 10  # ... of at least this many values each, their median levels
LEVEL_RATIO = 2.0  # ... at least this many times apart
#: A metric whose change-point ``phi`` is below this and whose spread repeats a cycle (its
#: own period, else the one most metrics repeat) is read within phase groups
#: (``phase_groups`` of the kernels): a group pools the values at the same phase of every
#: repetition, which only stand for the phase's spread when the values are nearly
#: independent (an AR(1) 0.9 metric's hour of each day is one excursion).
PHASE_PHI = 0.5
#: ... and within segments of at least this many values (the fewest groups of the fewest
#: values each: the kernel's MIN_PHASE_GROUPS x PHASE_GROUP_VALUES); its change points closer
#: to each other or to an end are passed over by the fences.
PHASE_SEGMENT = MIN_PHASE_GROUPS * PHASE_GROUP_VALUES


def benjamini_hochberg(p_values: NDArray[np.float64], q: float) -> NDArray[np.bool_]:
    """Which hypotheses the Benjamini–Hochberg step-up procedure rejects at level ``q``
    (Benjamini & Hochberg 1995): the k smallest p-values, k the largest i with
    p_(i) <= q i / m."""
    p = np.asarray(p_values, dtype=np.float64)
    m = p.size
    rejected = np.zeros(m, dtype=bool)
    if m == 0:
        return rejected
    order = np.argsort(p, kind="stable")
    below = p[order] <= q * np.arange(1, m + 1) / m
    if below.any():
        last = int(np.flatnonzero(below)[-1])
        rejected[order[: last + 1]] = True
    return rejected


class _Cooling:
    """The state of one cooling pass."""

    def __init__(self, profile: ThermalProfile, started: float, on_timeout: str) -> None:
        self.profile = profile
        self.started = started
        self.on_timeout = on_timeout
        self.patterns: list[CracklePattern] = []
        self.tests: list[Test] = []
        self.skipped: list[tuple[PatternKind, str]] = []
        self.incomplete: list[tuple[PatternKind, str]] = []
        self.notes: list[str] = []
        self.drifting: list[str] = []
        self.timings: dict[str, float] = {}

    def time_left(self) -> float:
        return self.profile.max_cooling_duration - (time.perf_counter() - self.started)

    def timed_out(self, kind: PatternKind, reason: str, error: CoolingTimeoutError) -> None:
        if self.on_timeout == "raise":
            raise error
        self.incomplete.append((kind, reason))

    def take(self, kind: PatternKind, found: Findings) -> None:
        self.patterns.extend(found.patterns)
        self.tests.extend(found.tests)
        self.notes.extend(found.notes)
        self.drifting.extend(found.drifting)
        if found.skipped is not None:
            self.skipped.append((kind, found.skipped))

    def decide(self) -> None:
        """The report-wide false-discovery control: a test's pattern is worded only when
        Benjamini–Hochberg at the profile's ``fdr`` rejects it."""
        if not self.tests:
            return
        rejected = benjamini_hochberg(
            np.array([test.p_value for test in self.tests]), self.profile.fdr
        )
        by_kind: dict[PatternKind, list[Test]] = {}
        for test, significant in zip(self.tests, rejected.tolist(), strict=True):
            if significant:
                by_kind.setdefault(test.kind, []).append(test)
        for kind, tests in by_kind.items():
            if len(tests) > MAX_PATTERNS_PER_KIND:
                # Only the strongest evidence is worded (ties: discovery order).
                p_values = np.array([test.p_value for test in tests])
                kept = np.sort(np.argsort(p_values, kind="stable")[:MAX_PATTERNS_PER_KIND])
                tests = [tests[index] for index in kept.tolist()]
                self.notes.append(
                    f"{len(p_values)} significant {kind.value} findings; the "
                    f"{MAX_PATTERNS_PER_KIND} with the smallest p-values are reported"
                )
            for test in tests:
                pattern = test.build()
                if pattern is not None:
                    self.patterns.append(pattern)


def index_columns(data: DetectionData) -> dict[str, str]:
    """The metrics of ``data`` whose role is ``index`` (SPEC §12), name -> why, in words
    for the report's data notes."""
    roles = _backend.kernels().column_roles(data.matrix, data.rows, data.complete())
    found: dict[str, str] = {}
    for k, name in enumerate(data.names):
        if not bool(roles["index"][k]):
            continue
        if bool(roles["counter"][k]):
            found[name] = (
                "an index column (it never decreases or never increases: an id or a counter)"
            )
        else:
            rho, share = float(roles["spearman"][k]), float(roles["distinct_share"][k])
            found[name] = (
                f"an index column (it moves with the task order: Spearman rho = {rho:.3f} "
                f"with the row position, {share:.0%} distinct values)"
            )
    return found


def cool(
    data: DetectionData,
    profile: ThermalProfile,
    started: float,
    on_timeout: str,
    left_out: Mapping[str, str],
    tables: Mapping[str, Tables] | None = None,
) -> PatternReport:
    """Run every enabled detector over ``data`` (minus the metrics ``left_out``, name ->
    why) and return the report. ``started`` is the ``time.perf_counter()`` the budget
    counts from; ``on_timeout`` "raise" turns a detector cut by the budget into
    CoolingTimeoutError. ``tables`` (detector name -> function of the view and the
    parameters) gives a detector's result table in place of its kernel (incremental
    cooling reads it from a mergeable state)."""
    state = _Cooling(profile, started, on_timeout)
    data = _leave_out(state, data, left_out)
    if data.task_count >= profile.min_tasks_for_detection and len(data.names):
        data = _leave_out(state, data, index_columns(data))
    n = data.task_count
    if n < profile.min_tasks_for_detection:
        reason = (
            f"{n} task(s) recorded, fewer than min_tasks_for_detection = "
            f"{profile.min_tasks_for_detection}"
        )
        state.skipped.extend((kind, reason) for kind in DETECTOR_ORDER if kind in profile.detectors)
    elif len(data.names):
        _run(state, data, tables or {})
    state.decide()
    return PatternReport(
        state.patterns,
        task_count=n,
        metric_count=len(data.names),
        skipped=state.skipped,
        incomplete=state.incomplete,
        tests_run=len(state.tests),
        fdr=profile.fdr,
        elapsed=time.perf_counter() - started,
        notes=state.notes,
        timings=state.timings,
        change_positions=_change_positions(state.patterns, data),
        drifting=state.drifting,
        source=data,
    )


def _change_positions(patterns: list[CracklePattern], data: DetectionData) -> dict[int, int]:
    """``id(pattern)`` -> the task position (recording order) of each change pattern's
    change: its ``change_index`` counts the tasks having the metric."""
    index = {name: row for row, name in enumerate(data.names)}
    positions: dict[int, int] = {}
    for pattern in patterns:
        metric = index.get(pattern.details.get("metric"))  # type: ignore[arg-type]
        change = pattern.metrics.get("change_index")
        if metric is None or change is None or change != change:
            continue
        having = data.present(metric).nonzero()[0]
        if 0 <= int(change) < having.size:
            positions[id(pattern)] = int(having[int(change)])
    return positions


def _leave_out(state: _Cooling, data: DetectionData, left_out: Mapping[str, str]) -> DetectionData:
    """``data`` without the metrics ``left_out`` (name -> why), each noted with its reason."""
    keep = np.array([name not in left_out for name in data.names], dtype=bool)
    if keep.all():
        return data
    state.notes.extend(
        f"'{name}' takes part in no detector: {left_out[name]}"
        for name in data.names
        if name in left_out
    )
    return data.select(keep)


def run_order() -> list[Detector]:
    """The registry in the order the detectors run: a segmented detector (or one that reads
    the cycles) right after the distribution-shift detector, whose change points (and
    cycles) it reads."""
    reads_shift = [d for d in REGISTRY if d.segmented or d.cycles is not None]
    plain = [detector for detector in REGISTRY if detector not in reads_shift]
    after = next(
        (k + 1 for k, d in enumerate(plain) if d.kind == PatternKind.DISTRIBUTION_SHIFT),
        len(plain),
    )
    return [*plain[:after], *reads_shift, *plain[after:]]


def _segment_bounds(
    result: Mapping[str, NDArray[Any]], data: DetectionData
) -> dict[int, list[int]]:
    """metric -> the bounds of its segments (positions among its present values, 0 first and
    the count last) from a distribution-shift result, for the metrics with a change kept
    (each segment >= MIN_FENCE_SEGMENT values)."""
    cuts: dict[int, list[int]] = {}
    metrics = np.asarray(result["metric"]).tolist()
    for metric, change in zip(metrics, np.asarray(result["change_index"]).tolist(), strict=True):
        cuts.setdefault(int(metric), []).append(int(change))
    bounds: dict[int, list[int]] = {}
    for metric, candidates in cuts.items():
        kept = _spaced(candidates, int(np.count_nonzero(data.present(metric))), MIN_FENCE_SEGMENT)
        if len(kept) > 2:
            bounds[metric] = kept
    return bounds


def _spaced(cuts: list[int], count: int, least: int) -> list[int]:
    """0, the ``cuts`` (positions among ``count`` values) that leave at least ``least``
    values before them (after the previous one kept) and after them, and ``count``."""
    kept = [0]
    for cut in sorted(set(cuts)):
        if cut - kept[-1] >= least and count - cut >= least:
            kept.append(cut)
    return [*kept, count]


def _cycles(result: Mapping[str, NDArray[Any]]) -> dict[int, int]:
    """metric -> the period its spread may repeat (see PHASE_PHI), from a distribution-shift
    result: its own cycle's, else the period most metrics repeat (the shortest on ties)."""
    periods = np.asarray(result["period"], dtype=np.int64)
    phi = np.asarray(result["phi"], dtype=np.float64)
    found = periods[periods > 0]
    if not found.size:
        return {}
    values, counts = np.unique(found, return_counts=True)
    common = int(values[np.argmax(counts)])
    return {
        metric: int(period) if period > 0 else common
        for metric, period in enumerate(periods.tolist())
        if phi[metric] < PHASE_PHI  # NaN (untested) is not below
    }


def _persistent(result: Mapping[str, NDArray[Any]]) -> frozenset[int]:
    """The metrics whose change-point ``phi`` is at least NEIGHBOUR_PHI (read by their
    neighbours)."""
    phi = np.asarray(result["phi"], dtype=np.float64)
    return frozenset(np.flatnonzero(phi >= NEIGHBOUR_PHI).tolist())


def _spread_grows_with_level(values: NDArray[np.float64]) -> bool:
    """Whether a persistent metric's values (in task order) are read on the log scale: all
    positive, not all whole numbers (a queue's 1 and 2 are no ratio apart), and the slope of
    the spread-versus-level plot (Tukey 1977; the power 1 - slope stabilises the spread) at
    least 1/2, nearer the log (slope 1) than the raw values (0). Level: the mean of a
    value's two neighbours; spread: |x_t - level|; the slope a least-squares line through
    (log median level, log median spread) of LEVEL_GROUPS groups of tasks by level, whose
    highest and lowest median levels are LEVEL_RATIO apart or more (closer, the two
    readings differ little and the slope is noise: a random walk around 1,000). A CPU
    with noise of its own in its units has slope about 0; a log-normal latency under a
    persistent load about 1."""
    if values.size < LEVEL_GROUPS * LEVEL_GROUP_VALUES + 2 or not np.all(values > 0.0):
        return False
    if np.all(values == np.round(values)):
        return False
    level = values[:-2] * 0.5 + values[2:] * 0.5
    spread = np.abs(values[1:-1] - level)
    groups = np.array_split(np.argsort(level, kind="stable"), LEVEL_GROUPS)
    x = np.log([np.median(level[group]) for group in groups])
    y = np.array([np.median(spread[group]) for group in groups])
    if not np.all(y > 0.0) or np.ptp(x) < math.log(LEVEL_RATIO):
        return False  # levels too close to tell a spread that grows with them
    slope = float(np.polyfit(x, np.log(y), 1)[0])
    return slope >= 0.5


def _neighbour_pieces(
    column: NDArray[np.float64], tasks: NDArray[np.int64], first: int, last: int, logs: bool
) -> list[tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.bool_], int]]:
    """Per reach r = 1..NEIGHBOUR_REACH (while the tasks ``first:last`` outnumber 2 r), at
    each task of ``first:last`` whose value and the values r tasks before and after it are
    present (``tasks``: the present ones), NaN or False elsewhere: the statistic
    (y_t - (y_(t-r) + y_(t+r)) / 2) / 2 with y = log x when ``logs`` (a positive metric whose
    spread grows with its level), else x (halved: finite for any finite values; the kernel's
    reading does not depend on its scale); x_t minus its neighbours' mean (geometric when
    ``logs``), in the metric's units; whether the value stands out on both sides; r."""
    size = last - first
    values = np.full(size, np.nan)
    values[tasks - first] = column[tasks]
    read = np.log(values) if logs else values
    pieces = []
    for reach in range(1, NEIGHBOUR_REACH + 1):
        if size <= 2 * reach:
            break
        middle, left, right = read[reach:-reach], read[: -2 * reach], read[2 * reach :]
        # halves of x_t - x_(t-r) and x_t - x_(t+r)
        before, after = middle * 0.5 - left * 0.5, middle * 0.5 - right * 0.5
        small = np.minimum(np.abs(before), np.abs(after))
        large = np.maximum(np.abs(before), np.abs(after))
        statistic, deviation = np.full(size, np.nan), np.full(size, np.nan)
        sides = np.zeros(size, dtype=bool)
        statistic[reach:-reach] = middle * 0.5 - (left * 0.25 + right * 0.25)
        neighbours = left * 0.5 + right * 0.5
        deviation[reach:-reach] = values[reach:-reach] - (
            np.exp(neighbours) if logs else neighbours
        )
        with np.errstate(invalid="ignore"):  # NaN where a neighbour is absent: no reading
            sides[reach:-reach] = (np.sign(before) == np.sign(after)) & (
                NEIGHBOUR_SIDES * small >= large
            )
        pieces.append((statistic, deviation, sides, reach))
    return pieces


def _phase_group_count(column: NDArray[np.float64], first: int, period: int) -> int:
    """The kernels' ``phase_groups`` of one column (its first task at phase ``first``)."""
    return int(_backend.kernels().phase_groups(column[None, :], np.array([period]), first)[0])


def _phase_pieces(
    column: NDArray[np.float64], first: int, period: int
) -> list[NDArray[np.float64]]:
    """The column ``column`` (its first task at ``first``) as one copy per phase group
    (values of the other groups NaN) when its spread repeats the cycle of ``period`` tasks,
    else the column alone."""
    groups = _phase_group_count(column, first, period)
    if not groups:
        return [column[None, :]]
    group = (first + np.arange(column.size)) % period * groups // period
    return [np.where(group == g, column, np.nan)[None, :] for g in range(groups)]


def _run_segmented(
    detector: Detector,
    view: DetectionData,
    params: dict[str, Any],
    bounds: dict[int, list[int]],
    state: _Cooling,
    family: int = 0,
    cycles: Mapping[int, int] | None = None,
    persistent: frozenset[int] = frozenset(),
) -> dict[str, NDArray[Any]]:
    """The result of ``detector`` (fields task, metric, ..., a per-metric ``scale`` and
    ``period``) with each metric of ``bounds`` read within its segments (one kernel run per
    segment, over the tasks from its first to its last value), a metric of ``cycles`` whose
    spread repeats its period within phase groups of each segment (``period``: that period,
    else 0), a metric of ``persistent`` by its neighbours in each segment (see
    NEIGHBOUR_PHI; a row's ``row_reach`` is the reach r that flagged it, -r when read on
    the log scale, 0 for the others),
    and the others in one run; flagged rows sorted by task, then metric, one per (task,
    metric): the most severe. A metric's ``scale`` is that of its longest piece (its reach-1
    reading when persistent), a flagged row's ``row_scale`` that of its own. ``family``:
    the fewest values a kernel's multiplicity counts (a run of a larger series)."""
    kernels = _backend.kernels()
    cycles = cycles or {}

    def run(
        matrix: NDArray[np.float64], rows: NDArray[np.int64] | None, extra: dict[str, int]
    ) -> dict[str, Any]:
        deadline = {"deadline": state.time_left()}
        result: dict[str, Any] = kernels.run_detector(
            detector.name, matrix, rows, {**params, **extra, **deadline}
        )
        return result

    counts_family = "family" in kernels.DETECTORS[detector.name]["params"]
    special = set(bounds) | set(cycles) | persistent
    plain = np.array([k not in special for k in range(len(view.names))])
    scale = np.zeros(len(view.names), dtype=np.int64)
    phased = np.zeros(len(view.names), dtype=np.int64)
    # (result, its metrics, the offset of its tasks, the reach that read it)
    pieces: list[tuple[dict[str, Any], NDArray[np.int64], int, int]] = []
    if plain.any():
        kept = view.select(plain)
        result = run(kept.matrix, kept.rows, {})
        metrics = np.flatnonzero(plain)
        scale[metrics] = np.asarray(result["scale"])
        pieces.append((result, metrics, 0, 0))
    for metric in sorted(special):
        tasks = view.present(metric).nonzero()[0]
        column = view.column(metric)
        longest = -1
        edges = bounds.get(metric, [0, int(tasks.size)])
        if metric in cycles and len(edges) > 2 and _phase_group_count(column, 0, cycles[metric]):
            # a metric read by phase keeps the segments that hold enough values for it
            edges = _spaced(edges[1:-1], int(tasks.size), PHASE_SEGMENT)
        for start, end in itertools.pairwise(edges):
            first, last = int(tasks[start]), int(tasks[end - 1]) + 1
            # the multiplicity of the metric's tests is all of its values, not the segment's
            counted = {"family": max(int(tasks.size), family)} if counts_family else {}
            if metric in persistent and _neighbour_readable(column[tasks[start:end]]):
                runs = _neighbour_runs(run, column, tasks[start:end], (first, last), counted)
                pieces.extend((r, np.array([metric]), first, reach) for r, reach in runs)
                if runs and end - start > longest:
                    longest, scale[metric] = end - start, int(np.asarray(runs[0][0]["scale"])[0])
                continue
            segment = np.ascontiguousarray(column[None, first:last])
            split = [segment]
            if metric in cycles:
                split = _phase_pieces(segment[0], first, cycles[metric])
                if len(split) > 1:
                    phased[metric] = cycles[metric]
            for piece in split:
                result = run(piece, None, counted)
                pieces.append((result, np.array([metric], dtype=np.int64), first, 0))
                size = int(np.count_nonzero(~np.isnan(piece)))
                if size > longest:
                    longest, scale[metric] = size, int(np.asarray(result["scale"])[0])
    tasks_flagged = np.concatenate([np.asarray(r["task"]) + offset for r, _, offset, _ in pieces])
    metrics_flagged = np.concatenate(
        [m[np.asarray(r["metric"], dtype=np.int64)] for r, m, _, _ in pieces]
    )
    row: dict[str, NDArray[Any]] = {
        name: np.concatenate([np.asarray(r[name]) for r, *_ in pieces])
        for name in pieces[0][0]
        if name not in ("task", "metric", "scale")
    }
    if "scale" in pieces[0][0]:  # each flagged row's scale: that of the run that scored it
        row["row_scale"] = np.concatenate(
            [np.asarray(r["scale"])[np.asarray(r["metric"], dtype=np.int64)] for r, *_ in pieces]
        )
    row["row_reach"] = np.concatenate(
        [np.full(np.asarray(r["task"]).size, reach, dtype=np.int64) for r, _, _, reach in pieces]
    )
    # by task, then metric, the most severe row of a (task, metric) first (several reaches
    # may flag one value); one row each
    severity = row.get("severity", np.zeros(tasks_flagged.size))
    order = np.lexsort((-severity, metrics_flagged, tasks_flagged))
    tasks_flagged, metrics_flagged = tasks_flagged[order], metrics_flagged[order]
    first_of = np.ones(order.size, dtype=bool)
    first_of[1:] = (np.diff(tasks_flagged) != 0) | (np.diff(metrics_flagged) != 0)
    merged: dict[str, NDArray[Any]] = {
        "task": tasks_flagged[first_of],
        "metric": metrics_flagged[first_of],
    }
    merged.update({name: values[order][first_of] for name, values in row.items()})
    merged["scale"] = scale
    merged["period"] = phased
    return merged


def _neighbour_readable(values: NDArray[np.float64]) -> bool:
    """Whether a persistent metric's segment (its values in task order) is read by its
    neighbours: more than 2 values, and not whole numbers whose reach-1 differences take at
    most COUNT_MAX_DISTINCT values (a queue of a few requests: its differences are too
    coarse for a fence, 0.6 false outliers per 2,000-sample export against 0 on the median
    reading)."""
    if values.size <= 2:
        return False
    if np.any(values != np.round(values)):
        return True
    differences = values[1:-1] - (values[:-2] * 0.5 + values[2:] * 0.5)
    return int(np.unique(differences).size) > COUNT_MAX_DISTINCT


def _neighbour_runs(
    run: Callable[..., dict[str, Any]],
    column: NDArray[np.float64],
    tasks: NDArray[np.int64],
    span: tuple[int, int],
    counted: dict[str, int],
) -> list[tuple[dict[str, Any], int]]:
    """(result, signed reach) of the kernel ``run`` on each of :func:`_neighbour_pieces` of
    a persistent metric's segment (its present values at ``tasks``, its pieces over the
    tasks ``span``), its multiplicity ``counted`` times NEIGHBOUR_REACH (every reach reads
    every value): the deviations in the metric's units, without the rows that do not stand
    out on both sides; the reach negative when read on the log scale."""
    first, last = span
    logs = _spread_grows_with_level(column[tasks])
    # every reach reads every value, and the edges are read once more
    counted = {name: count * (NEIGHBOUR_REACH + 1) for name, count in counted.items()}
    found = []
    for piece, deviation, sides, reach in _neighbour_pieces(column, tasks, first, last, logs):
        result = run(piece[None, :], None, counted)
        result["deviation"] = deviation[np.asarray(result["task"], dtype=np.int64)]
        found.append((_rows_where(result, sides), -reach if logs else reach))
    piece, deviation, edges = _edge_piece(column, tasks, first, last, logs)
    # an edge whose neighbour stands out is read against a spike: not read
    flagged_inside = {int(t) for result, _ in found for t in np.asarray(result["task"])}
    edges[0] &= 1 not in flagged_inside
    edges[-1] &= edges.size - 2 not in flagged_inside
    if edges.any():
        result = run(piece[None, :], None, counted)
        flagged = np.asarray(result["task"], dtype=np.int64)
        result["deviation"] = deviation[flagged]
        result = _rows_where(result, edges)
        # the first value is read against the one after it, the last against the one before
        after = np.asarray(result["task"], dtype=np.int64) == 0
        found.append((_rows_where_mask(result, after), EDGE_AFTER))
        found.append((_rows_where_mask(result, ~after), EDGE_BEFORE))
    return found


def _edge_piece(
    column: NDArray[np.float64], tasks: NDArray[np.int64], first: int, last: int, logs: bool
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.bool_]]:
    """The reading of a persistent segment's first and last values, which have no
    neighbours on one side: over the tasks ``first:last``, the halved difference of each
    value from the one 1 task before it (y = log x when ``logs``), the first value's from
    the one after it (the kernel's scale is that of these one-sided differences); x_t
    minus that neighbour; and the mask of the two edges (when their neighbour is present,
    and the segment has 3 tasks or more)."""
    size = last - first
    values = np.full(size, np.nan)
    values[tasks - first] = column[tasks]
    read = np.log(values) if logs else values
    piece, deviation = np.full(size, np.nan), np.full(size, np.nan)
    edges = np.zeros(size, dtype=bool)
    if size < 3:
        return piece, deviation, edges
    piece[1:] = read[1:] * 0.5 - read[:-1] * 0.5
    piece[0] = read[0] * 0.5 - read[1] * 0.5
    deviation[[0, -1]] = values[[0, -1]] - values[[1, -2]]
    edges[[0, -1]] = ~np.isnan(piece[[0, -1]])
    return piece, deviation, edges


def _rows_where_mask(result: dict[str, Any], rows: NDArray[np.bool_]) -> dict[str, Any]:
    """A one-metric outlier result with only its flagged rows ``rows`` (the per-metric
    ``scale`` kept)."""
    return {
        name: value if name == "scale" else np.asarray(value)[rows]
        for name, value in result.items()
    }


def _rows_where(result: dict[str, Any], keep: NDArray[np.bool_]) -> dict[str, Any]:
    """A one-metric outlier result over a piece without its flagged rows at the tasks where
    ``keep`` is False (the per-metric ``scale`` kept)."""
    return _rows_where_mask(result, keep[np.asarray(result["task"], dtype=np.int64)])


def _run(state: _Cooling, data: DetectionData, tables: Mapping[str, Tables]) -> None:
    profile = state.profile
    kernels = _backend.kernels()
    # A prepared copy (e.g. prewhitened) is made once for the detectors sharing its
    # ``prepare`` and dropped after the last of them: at most one copy of the matrix lives.
    prepared: dict[object, DetectionData] = {}
    # metric -> segment bounds, and the period its spread may repeat, from the
    # distribution-shift detector (segmented detectors)
    bounds: dict[int, list[int]] = {}
    cycles: dict[int, int] = {}
    persistent: frozenset[int] = frozenset()
    # metric -> the period of the cycle the distribution-shift detector removed
    periods: dict[int, int] = {}
    for detector in run_order():
        if detector.kind not in profile.detectors:
            continue
        view = data
        if not detector.applies(view):
            continue
        params = detector.params(profile)
        if detector.min_tasks is not None:
            fewest = kernels.DETECTORS[detector.name]["params"][detector.min_tasks]
            if view.task_count < int(params.get(detector.min_tasks, fewest)):
                # No row can be tested: nothing to run, the wording says why.
                fields = kernels.DETECTORS[detector.name]["fields"]
                untested = {field: np.empty(0) for field in fields}
                state.take(detector.kind, detector.findings(view, untested, params))
                continue
        if detector.pairwise:
            view = _bounded_pairs(state, detector, view)
        remaining = state.time_left()
        if remaining <= 0:
            state.timed_out(
                detector.kind,
                "time budget exhausted before it started",
                CoolingTimeoutError(f"time budget exhausted before {detector.name}"),
            )
            continue
        began = time.perf_counter()
        if detector.prepare is None:
            prepared.clear()
            read = view
        else:
            if detector.prepare not in prepared:
                prepared.clear()
                prepared[detector.prepare] = detector.prepare(view)
            read = prepared[detector.prepare]
            # The kernel's deadline is the budget's: what preparing took is spent.
            remaining = max(state.time_left(), 0.0)
        try:
            table = tables.get(detector.name)
            segments = (bounds, cycles, persistent)
            result = _result(state, detector, read, params, remaining, table, segments)
            if detector.cycles is not None and periods:
                result = detector.cycles(read, result, periods)
        except CoolingTimeoutError as error:
            budget = profile.max_cooling_duration
            state.timed_out(detector.kind, f"not finished within {budget:g} s", error)
            continue
        finally:
            state.timings[detector.name] = time.perf_counter() - began
        if detector.kind == PatternKind.DISTRIBUTION_SHIFT and "change_index" in result:
            bounds, cycles = _segment_bounds(result, view), _cycles(result)
            persistent = _persistent(result)
            found = np.asarray(result["period"], dtype=np.int64).tolist()
            periods = {metric: period for metric, period in enumerate(found) if period > 0}
        state.take(detector.kind, detector.findings(view, result, params))


def _result(
    state: _Cooling,
    detector: Detector,
    read: DetectionData,
    params: dict[str, Any],
    remaining: float,
    table: Tables | None,
    segments: tuple[dict[int, list[int]], dict[int, int], frozenset[int]],
) -> Mapping[str, NDArray[Any]]:
    """A detector's result: from ``table`` when the kiln's state gives it, segment by
    segment (and phase group by phase group) for a segmented detector when some metric has
    change points (or a cycle, or persistence: ``segments`` is (bounds, cycles,
    persistent)), else its kernel over
    ``read`` with the time left as its deadline."""
    if table is not None:
        return table(read, params)
    bounds, cycles, persistent = segments
    if detector.segmented and (bounds or cycles or persistent):
        return _run_segmented(detector, read, params, bounds, state, 0, cycles, persistent)
    result: Mapping[str, NDArray[Any]] = _backend.kernels().run_detector(
        detector.name, read.matrix, read.rows, {**params, "deadline": remaining}, read.complete()
    )
    return result


def _bounded_pairs(state: _Cooling, detector: Detector, view: DetectionData) -> DetectionData:
    """``view`` with at most MAX_PAIR_METRICS metrics (the first) for a pairwise detector;
    when some were left out, the detector is listed as incomplete and a note says so."""
    metrics = len(view.names)
    if metrics <= MAX_PAIR_METRICS:
        return view
    reason = (
        f"compared the pairs of the first {MAX_PAIR_METRICS} of {metrics} metrics "
        f"({MAX_PAIR_METRICS * (MAX_PAIR_METRICS - 1) // 2} of "
        f"{metrics * (metrics - 1) // 2} pairs)"
    )
    state.incomplete.append((detector.kind, reason))
    state.notes.append(f"{detector.kind.value}: {reason}")
    return view.select(np.arange(metrics) < MAX_PAIR_METRICS)


def segmented_result(
    name: str, data: DetectionData, profile: ThermalProfile, family: int
) -> Mapping[str, NDArray[Any]]:
    """The result of segmented detector ``name`` over ``data`` as the cooling loop computes
    it (each metric within the segments between the distribution-shift detector's change
    points), its multiplicity counting at least ``family`` values: the run of a larger
    series (a cluster's partition)."""
    state = _Cooling(profile, time.perf_counter(), "raise")
    detector = next(d for d in REGISTRY if d.name == name)
    shift = next(d for d in REGISTRY if d.kind == PatternKind.DISTRIBUTION_SHIFT)
    nothing: tuple[dict[int, list[int]], dict[int, int], frozenset[int]] = ({}, {}, frozenset())
    result = _result(state, shift, data, shift.params(profile), state.time_left(), None, nothing)
    bounds, cycles, persistent = _segment_bounds(result, data), _cycles(result), _persistent(result)
    params = {**detector.params(profile), "family": family}
    if bounds or cycles or persistent:
        return _run_segmented(detector, data, params, bounds, state, family, cycles, persistent)
    return _result(state, detector, data, params, state.time_left(), None, nothing)
