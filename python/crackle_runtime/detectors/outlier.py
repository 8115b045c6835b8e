"""Outliers (SPEC §6 ``OUTLIER`` as amended by §12): tasks that stand out on some metric, on
the scale the kernel chose for it (modified z, skew-adjusted; the log scale for positive
right-skewed metrics; a Bonferroni-corrected geometric tail for counts and flags), each with
a finite ``severity`` (an equivalent Gaussian z) above the fence
max(outlier_z, Φ⁻¹(1 − 0.1 / m)) (Bonferroni over the metric's m values, or its segment's).
A metric with change points (the distribution-shift detector's, in the same cooling) is
scored within each segment between them (SPEC §12: fences within segments), so a regime
change neither hides the outliers of a regime nor makes one. A metric nearly independent
from task to task whose spread repeats a cycle (an error rate per window whose requests fall
tenfold at night) is scored within phase groups of each segment: against the values at the
same phase of the other repetitions (the seasonal reading of Hochenbaum, Vallis & Kejariwal
2017). A persistent metric (a random walk, a memory gauge) is scored by how far a value
stands from the mean of its neighbours 1, 2 or 3 tasks before and after it (the
additive-outlier estimate of an integrated series, Chen & Liu 1993), on both sides (of
its logs, against their geometric mean, when it is positive and skewed). A
metric at a floor (its smallest value on at least 3 tasks and 1/20 of them, or 0 under right-skewed
positive values)
reads its excess over the floor as a hurdle model. Many values past
the fence on one side that lie close together (at least 1% of the values: a runner pool
twice as slow) are a mode of the metric, not outliers: each is read against that mode. A run
of 2 to 8
consecutive tasks that stand out together (a burst) is flagged as one when its iid
probability, Bonferroni over the starts, sides and lengths, is below 0.02 per metric, on
metrics whose consecutive values are nearly independent (the kernel's run test). One
pattern per task; a rule,
not a test (no p-value, not in the FDR pass). The report keeps the most severe: at most
``MAX_PER_METRIC`` per metric and ``MAX_OUTLIER_PATTERNS`` tasks, with a note giving the
total."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from crackle_runtime.detectors._base import Detector, Findings, Result
from crackle_runtime.detectors._data import DetectionData
from crackle_runtime.patterns import CracklePattern, PatternKind
from crackle_runtime.profile import ThermalProfile

__all__ = [
    "DETECTOR",
    "EDGE_AFTER",
    "EDGE_BEFORE",
    "MAX_OUTLIER_PATTERNS",
    "MAX_PER_METRIC",
    "SCALE_WORDS",
    "most_severe",
]

MAX_OUTLIER_PATTERNS = 200  # a report lists at most this many outlier tasks, the most severe
MAX_PER_METRIC = 50  # ... and at most this many (task, metric) outliers of one metric
SCALE_WORDS = {
    0: "robust z",
    1: "log scale",
    2: "count tail",
    3: "mean deviation",
    4: "excess tail",
}


def _scale_word(scale: int, deviation: float) -> str:
    """How the kernel scored a value: a metric on the log scale reads its lower side on the
    raw scale (only a mildly skewed one reads that side at all)."""
    return SCALE_WORDS[0] if scale == 1 and deviation < 0.0 else SCALE_WORDS[scale]


#: A ``row_reach`` of the cooling loop: a persistent segment's first value read against the
#: value 1 task after it, its last against the value 1 task before it.
EDGE_AFTER, EDGE_BEFORE = 4, 5


def _median_word(period: int, reach: int = 0) -> str:
    """What a deviation is measured from: the median, that of the value's phase when the
    metric's spread repeats a cycle (the cooling loop reads it within phase groups), or the
    mean of its neighbours ``reach`` tasks away (a persistent metric; their geometric mean
    when ``reach`` is negative: read on the log scale), or, for a persistent segment's
    first or last value, its one neighbour."""
    if reach in (EDGE_AFTER, EDGE_BEFORE):  # a segment's first or last value
        return f"value 1 task {'after' if reach == EDGE_AFTER else 'before'} it"
    if reach:  # negative: read on the log scale
        mean = "geometric mean" if reach < 0 else "mean"
        away = abs(reach)
        return f"{mean} of the values {away} task{'s' if away > 1 else ''} before and after it"
    return f"median at its phase of the {period}-task cycle" if period else "median"


def _run_words(length: int) -> str:
    """How a row flagged with the tasks next to it says so (nothing for a row on its own)."""
    return f", one of {length} consecutive tasks that stand out together" if length > 1 else ""


def _params(profile: ThermalProfile) -> dict[str, Any]:
    return {"z_threshold": float(profile.outlier_z)}


def most_severe(metrics: np.ndarray[Any, Any], severity: np.ndarray[Any, Any]) -> Any:
    """Mask of the flagged (task, metric) rows kept: each metric's ``MAX_PER_METRIC`` most
    severe (ties in task order)."""
    order = np.lexsort((-severity, metrics))  # by metric, most severe first
    sorted_metrics = metrics[order]
    starts = np.searchsorted(sorted_metrics, sorted_metrics, side="left")
    keep = np.zeros(metrics.size, dtype=bool)
    keep[order[np.arange(metrics.size) - starts < MAX_PER_METRIC]] = True
    return keep


def _findings(data: DetectionData, result: Result, params: dict[str, Any]) -> Findings:
    z_threshold = float(params["z_threshold"])
    found = Findings()
    counts = [int(np.count_nonzero(data.present(k))) for k in range(len(data.names))]
    if not any(count >= 3 for count in counts):
        found.skipped = "no metric has 3 or more values"
        return found
    tasks = np.asarray(result["task"])
    if not tasks.size:
        return found
    metrics = np.asarray(result["metric"])
    severity = np.asarray(result["severity"], dtype=np.float64)
    deviations, scales = np.asarray(result["deviation"]), np.asarray(result["scale"])
    periods = np.asarray(result.get("period", np.zeros(scales.size, dtype=np.int64)))
    # the scale each row was scored on (a metric read in pieces has one per piece)
    row_scales = np.asarray(result.get("row_scale", scales[metrics]))
    # the reach of the neighbours a persistent metric's row was read against (0: none)
    row_reaches = np.asarray(result.get("row_reach", np.zeros(tasks.size, dtype=np.int64)))
    # the length of the run of consecutive tasks a row was flagged in (1: on its own)
    run_lengths = np.asarray(result.get("run_length", np.ones(tasks.size, dtype=np.int64)))
    flagged_tasks = np.unique(tasks).size
    kept = most_severe(metrics, severity)
    tasks, metrics, severity, deviations, row_scales, row_reaches, run_lengths = (
        tasks[kept],
        metrics[kept],
        severity[kept],
        deviations[kept],
        row_scales[kept],
        row_reaches[kept],
        run_lengths[kept],
    )
    boundaries = np.flatnonzero(np.diff(tasks)) + 1
    groups = np.split(np.arange(tasks.size), boundaries)
    worst = np.array([np.max(severity[g]) for g in groups])
    order = np.argsort(-worst, kind="stable")[:MAX_OUTLIER_PATTERNS]
    if len(groups) < flagged_tasks or order.size < len(groups):
        found.notes.append(
            f"outlier: {flagged_tasks} tasks stand out (severity > {z_threshold:g} and the "
            f"metric's Bonferroni fence); the "
            f"{order.size} most severe are reported (at most {MAX_PER_METRIC} per metric)"
        )
    for group_index in order.tolist():
        found.patterns.append(
            _pattern(
                data,
                groups[group_index],
                (tasks, metrics, severity, deviations, row_scales, row_reaches, run_lengths),
                periods,
                z_threshold,
            )
        )
    return found


def _pattern(
    data: DetectionData,
    group: np.ndarray[Any, Any],
    flagged: tuple[np.ndarray[Any, Any], ...],
    periods: np.ndarray[Any, Any],
    z_threshold: float,
) -> CracklePattern:
    tasks, metrics, severity, deviations, row_scales, row_reaches, run_lengths = flagged
    task = int(tasks[group[0]])
    label = data.labels[task]
    names = [data.names[int(metrics[k])] for k in group]
    worst = float(np.max(severity[group]))
    values: dict[str, float] = {"p_value": math.nan, "severity": worst}
    for name, k in zip(names, group, strict=True):
        values[f"severity:{name}"] = float(severity[k])
        values[f"deviation:{name}"] = float(deviations[k])
        values[f"run_length:{name}"] = float(run_lengths[k])
    described = ", ".join(
        f"'{name}' (severity {float(severity[k]):.1f}, {float(deviations[k]):+.4g} from the "
        f"{_median_word(int(periods[int(metrics[k])]), int(row_reaches[k]))}, "
        f"{_scale_word(int(row_scales[k]), float(deviations[k]))}{_run_words(int(run_lengths[k]))})"
        for name, k in zip(names, group, strict=True)
    )
    return CracklePattern(
        PatternKind.OUTLIER,
        f"task '{label}' is an outlier on {described}",
        (label,),
        min(worst / (2 * z_threshold), 1.0),
        values,
        {"metrics": names, "task": label, "task_index": task},
    )


DETECTOR = Detector("outlier", PatternKind.OUTLIER, _params, _findings, segmented=True)
