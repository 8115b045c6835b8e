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
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from crackle_runtime import _backend
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
#: A persistent metric (a random walk, phi -> 1: the change-point detector's ``phi`` at least
#: its DRIFT_RHO) has no level to fence against, only a local one: its drifting span is
#: fenced in windows of DRIFT_WINDOW values (more when the span would make more than
#: DRIFT_WINDOWS of them).
PERSISTENT_PHI = 0.93
DRIFT_WINDOW = MIN_FENCE_SEGMENT
DRIFT_WINDOWS = 200
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
    """The registry in the order the detectors run: a segmented detector right after the
    distribution-shift detector, whose change points it reads."""
    plain = [detector for detector in REGISTRY if not detector.segmented]
    segmented = [detector for detector in REGISTRY if detector.segmented]
    after = next(
        (k + 1 for k, d in enumerate(plain) if d.kind == PatternKind.DISTRIBUTION_SHIFT),
        len(plain),
    )
    return [*plain[:after], *segmented, *plain[after:]]


def _segment_bounds(
    result: Mapping[str, NDArray[Any]], data: DetectionData
) -> dict[int, list[int]]:
    """metric -> the bounds of its segments (positions among its present values, 0 first and
    the count last) from a distribution-shift result, for the metrics with a change kept
    or a persistent drift (each segment >= MIN_FENCE_SEGMENT values; a persistent drifting
    span cut into windows, see PERSISTENT_PHI: on a 4,032-sample random walk of a monitoring
    export, 41 consecutive samples of one excursion were outliers against the global median,
    0-8 within windows)."""
    cuts: dict[int, list[int]] = {}
    metrics = np.asarray(result["metric"]).tolist()
    for metric, change in zip(metrics, np.asarray(result["change_index"]).tolist(), strict=True):
        cuts.setdefault(int(metric), []).append(int(change))
    drifting = np.asarray(result["drifting"]).tolist()
    phi = np.asarray(result["phi"]).tolist()
    starts, ends = (
        np.asarray(result["drift_start"]).tolist(),
        np.asarray(result["drift_end"]).tolist(),
    )
    for metric, drifts in enumerate(drifting):
        if drifts and phi[metric] >= PERSISTENT_PHI:
            start, end = int(starts[metric]), int(ends[metric])
            width = max(DRIFT_WINDOW, -(-(end - start) // DRIFT_WINDOWS))
            cuts.setdefault(metric, []).extend([start, *range(start + width, end, width), end])
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
) -> dict[str, NDArray[Any]]:
    """The result of ``detector`` (fields task, metric, ..., a per-metric ``scale`` and
    ``period``) with each metric of ``bounds`` read within its segments (one kernel run per
    segment, over the tasks from its first to its last value), a metric of ``cycles`` whose
    spread repeats its period within phase groups of each segment (``period``: that period,
    else 0), and the others in one run; flagged rows sorted by task, then metric. A
    metric's ``scale`` is that of its longest piece, a flagged row's ``row_scale`` that of
    its own. ``family``: the fewest values a
    kernel's multiplicity counts (a run of a larger series)."""
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
    plain = np.array([k not in bounds and k not in cycles for k in range(len(view.names))])
    scale = np.zeros(len(view.names), dtype=np.int64)
    phased = np.zeros(len(view.names), dtype=np.int64)
    pieces: list[tuple[dict[str, Any], NDArray[np.int64], int]] = []
    if plain.any():
        kept = view.select(plain)
        result = run(kept.matrix, kept.rows, {})
        metrics = np.flatnonzero(plain)
        scale[metrics] = np.asarray(result["scale"])
        pieces.append((result, metrics, 0))
    for metric in sorted(set(bounds) | set(cycles)):
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
            segment = np.ascontiguousarray(column[None, first:last])
            split = [segment]
            if metric in cycles:
                split = _phase_pieces(segment[0], first, cycles[metric])
                if len(split) > 1:
                    phased[metric] = cycles[metric]
            for piece in split:
                result = run(piece, None, counted)
                pieces.append((result, np.array([metric], dtype=np.int64), first))
                size = int(np.count_nonzero(~np.isnan(piece)))
                if size > longest:
                    longest, scale[metric] = size, int(np.asarray(result["scale"])[0])
    tasks_flagged = np.concatenate([np.asarray(r["task"]) + offset for r, _, offset in pieces])
    metrics_flagged = np.concatenate(
        [m[np.asarray(r["metric"], dtype=np.int64)] for r, m, _ in pieces]
    )
    order = np.lexsort((metrics_flagged, tasks_flagged))
    merged: dict[str, NDArray[Any]] = {
        "task": tasks_flagged[order],
        "metric": metrics_flagged[order],
    }
    for name in pieces[0][0]:
        if name not in ("task", "metric", "scale"):
            merged[name] = np.concatenate([np.asarray(r[name]) for r, _, _ in pieces])[order]
    if "scale" in pieces[0][0]:  # each flagged row's scale: that of the run that scored it
        merged["row_scale"] = np.concatenate(
            [np.asarray(r["scale"])[np.asarray(r["metric"], dtype=np.int64)] for r, _, _ in pieces]
        )[order]
    merged["scale"] = scale
    merged["period"] = phased
    return merged


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
            result = _result(state, detector, read, params, remaining, table, (bounds, cycles))
        except CoolingTimeoutError as error:
            budget = profile.max_cooling_duration
            state.timed_out(detector.kind, f"not finished within {budget:g} s", error)
            continue
        finally:
            state.timings[detector.name] = time.perf_counter() - began
        if detector.kind == PatternKind.DISTRIBUTION_SHIFT and "change_index" in result:
            bounds, cycles = _segment_bounds(result, view), _cycles(result)
        state.take(detector.kind, detector.findings(view, result, params))


def _result(
    state: _Cooling,
    detector: Detector,
    read: DetectionData,
    params: dict[str, Any],
    remaining: float,
    table: Tables | None,
    segments: tuple[dict[int, list[int]], dict[int, int]],
) -> Mapping[str, NDArray[Any]]:
    """A detector's result: from ``table`` when the kiln's state gives it, segment by
    segment (and phase group by phase group) for a segmented detector when some metric has
    change points (or a cycle: ``segments`` is (bounds, cycles)), else its kernel over
    ``read`` with the time left as its deadline."""
    if table is not None:
        return table(read, params)
    if detector.segmented and (segments[0] or segments[1]):
        return _run_segmented(detector, read, params, segments[0], state, cycles=segments[1])
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
    result = _result(state, shift, data, shift.params(profile), state.time_left(), None, ({}, {}))
    bounds, cycles = _segment_bounds(result, data), _cycles(result)
    params = {**detector.params(profile), "family": family}
    if bounds or cycles:
        return _run_segmented(detector, data, params, bounds, state, family, cycles)
    return _result(state, detector, data, params, state.time_left(), None, ({}, {}))
