"""Change points (SPEC §12 ``DISTRIBUTION_SHIFT``): every change of a metric's level or
spread is its own pattern, with the segments on each side, the effect in the metric's units
and relative, its direction and a p-value valid on autocorrelated data (decided by the
report's Benjamini–Hochberg pass). Drifting metrics (a random walk, a trend) are said once,
in the report's notes, instead of as a cascade of changes."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from crackle_runtime import _backend
from crackle_runtime.detectors._base import Detector, Findings, Result, Test, flagged
from crackle_runtime.detectors._data import DetectionData
from crackle_runtime.patterns import CracklePattern, PatternKind
from crackle_runtime.profile import ThermalProfile

__all__ = ["DETECTOR"]


def _params(profile: ThermalProfile) -> dict[str, Any]:
    return {}


def _percent(before: float, after: float) -> float:
    """The relative change after / before - 1 (NaN when before is 0)."""
    return (after - before) / abs(before) if before != 0.0 else math.nan


def _centres(field: dict[str, float]) -> tuple[float, float, str]:
    """(before, after, "median"), or the means when the medians tie (a discrete metric)."""
    if field["median_before"] == field["median_after"]:
        return field["mean_before"], field["mean_after"], "mean"
    return field["median_before"], field["median_after"], "median"


def _wording(
    name: str, field: dict[str, float], spread: bool, differenced: bool = False
) -> tuple[str, str]:
    """(direction, what changed) of one change, e.g. ("up", "'build_s' rose 25% (255 → 320
    median)"); of a drifting metric's task-to-task differences, its trend, e.g. ("up", "the
    trend of 'gdp' rose (+0.12 → +0.85 per task, median)")."""
    if differenced:  # a level change of the differences: the trend's slope
        before, after, what = _centres(field)
        direction = "up" if after > before else "down"
        verb = "rose" if direction == "up" else "fell"
        return direction, (
            f"the trend of '{name}' {verb} ({before:+.4g} → {after:+.4g} per task, {what})"
        )
    if spread:
        before, after = field["std_before"], field["std_after"]
        direction = "up" if after > before else "down"
        verb = "rose" if direction == "up" else "fell"
        ratio = f" ×{after / before:.3g}" if before > 0.0 else ""
        return direction, f"spread of '{name}' {verb}{ratio} (std {before:.4g} → {after:.4g})"
    before, after, what = _centres(field)
    direction = "up" if after > before else "down"
    verb = "rose" if direction == "up" else "fell"
    relative = _percent(before, after)
    amount = (
        f"{abs(relative) * 100:.3g}%" if math.isfinite(relative) else f"by {after - before:.4g}"
    )
    return direction, f"'{name}' {verb} {amount} ({before:.4g} → {after:.4g} {what})"


def _pattern(data: DetectionData, result: Result, change: int) -> CracklePattern:
    sides = [f"{what}_{side}" for what in ("mean", "median", "std") for side in ("before", "after")]
    names = ["change_index", "segment_start", "segment_end", "statistic", "p_value", *sides]
    field = {name: float(result[name][change]) for name in names}
    metric = int(result["metric"][change])
    name = data.names[metric]
    mask = data.present(metric)
    rows = mask.nonzero()[0]
    index = int(result["change_index"][change])
    start, end = int(result["segment_start"][change]), int(result["segment_end"][change])
    label = data.labels[int(rows[index])]
    # Between two constant sides only the level can have moved, whichever score's test
    # found the change (three stages of a load test: the middle one steps both).
    constant_sides = field["std_before"] == 0.0 and field["std_after"] == 0.0
    spread = bool(result["spread"][change]) and not constant_sides
    differenced = bool(result["differenced"][change])
    direction, what = _wording(name, field, spread, differenced)
    p_value = field["p_value"]
    median_delta = field["median_after"] - field["median_before"]
    return CracklePattern(
        PatternKind.DISTRIBUTION_SHIFT,
        f"{what} at task '{label}' (p = {p_value:.2g})",
        data.tasks(mask),
        1.0 - p_value,
        {
            **field,
            "delta_median": median_delta,
            "delta_mean": field["mean_after"] - field["mean_before"],
            "relative_change": _percent(field["median_before"], field["median_after"]),
            "n": float(rows.size),
        },
        {
            "metric": name,
            "change_label": label,
            "direction": direction,
            "changed": "trend" if differenced else ("spread" if spread else "level"),
            "segment_start_label": data.labels[int(rows[start])],
            "segment_end_label": data.labels[int(rows[end - 1])],
        },
    )


#: A drift note's medians read at least this many values at each end of the span.
DRIFT_NOTE_SHARE_MIN = 10


def _drift_note(data: DetectionData, result: Result, metric: int) -> str:
    name = data.names[metric]
    rows = data.present(metric).nonzero()[0]
    start, end = int(result["drift_start"][metric]), int(result["drift_end"][metric])
    values = data.column(metric)[rows]
    # the medians of the drifting span's first and last tenth (at least 10 values, at most
    # half the span): ten values alone gave the wrong direction on noisy metrics
    width = min(max(DRIFT_NOTE_SHARE_MIN, (end - start) // 10), max(1, (end - start) // 2))
    head, tail = values[start : start + width], values[end - width : end]
    first, last, measure = float(np.median(head)), float(np.median(tail)), "median"
    if first == last:  # tied medians (a flag, a count): the means tell, as for a change
        first, last, measure = float(np.mean(head)), float(np.mean(tail)), "mean"
    way = "up" if last > first else "down" if last < first else "around"
    where = (
        "over all its values"
        if start == 0 and end == rows.size
        else f"from task '{data.labels[int(rows[start])]}' to task "
        f"'{data.labels[int(rows[end - 1])]}'"
    )
    # a metric drifting over all its values reports only its jumps as level changes
    jumps = (result["metric"] == metric) & ~result["differenced"]
    apart = (
        ", apart from its abrupt jumps" if start == 0 and end == rows.size and jumps.any() else ""
    )
    return (
        f"'{name}' drifts {way} {where} ({measure} {first:.4g} → {last:.4g}): a trend or a "
        f"random walk, reported as a drift rather than as a series of changes{apart}"
    )


def _findings(data: DetectionData, result: Result, params: dict[str, Any]) -> Findings:
    found = Findings()
    if not flagged(result, "tested"):
        min_segment = int(
            params.get(
                "min_segment",
                _backend.kernels().DETECTORS["distribution_shift"]["params"]["min_segment"],
            )
        )
        found.skipped = (
            f"no metric has {2 * min_segment} or more varying values ({min_segment} per segment)"
        )
        return found
    drifting = flagged(result, "drifting")
    found.notes = [
        f"'{data.names[metric]}' repeats a cycle of {int(period)} tasks: its changes are "
        "searched with the cycle removed"
        for metric, period in enumerate(result["period"].tolist())
        if period > 0
    ]
    found.notes += [_drift_note(data, result, metric) for metric in drifting]
    found.drifting = [data.names[metric] for metric in drifting]
    found.tests = [
        Test(
            PatternKind.DISTRIBUTION_SHIFT,
            float(result["p_value"][change]),
            lambda change=change: _pattern(data, result, change),  # type: ignore[misc]
        )
        for change in range(len(result["metric"]))
    ]
    return found


DETECTOR = Detector("distribution_shift", PatternKind.DISTRIBUTION_SHIFT, _params, _findings)
