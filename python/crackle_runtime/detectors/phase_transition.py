"""Phase transitions (SPEC §6, §12): a metric's mean moved between the first and second half
of the tasks by more than ``phase_transition_sensitivity`` of its mean (and significantly,
when both halves have 4 or more values, by Welch's test with the halves' AR(1) long-run
variance); a drifting metric (random walk, φ → 1) has no phase transition.

In a cooling that runs the distribution-shift detector, a metric that repeats a cycle (the
period that detector removed before its search) is tested again with each value minus the
mean of its phase (by task position; the test compares means, and a phase's median leaves
a queue that is empty on most windows of the peak with its waits): over a few repetitions
the halves hold unequal shares of the cycle (three days of 1-minute windows: one half
holds two daily peaks, the other one), and their means differ by the cycle alone. The
transition stands when the kernel detects it there too (p < 0.01, not drifting); its
``p_value`` is the larger of the two."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from crackle_runtime import _backend
from crackle_runtime.detectors._base import Detector, Findings, Result, detect_with, flagged
from crackle_runtime.detectors._data import DetectionData
from crackle_runtime.patterns import CracklePattern, PatternKind
from crackle_runtime.profile import ThermalProfile

__all__ = ["DETECTOR", "PhaseTransitionPattern"]


def _params(profile: ThermalProfile) -> dict[str, Any]:
    return {"sensitivity": float(profile.phase_transition_sensitivity)}


def _findings(data: DetectionData, result: Result, params: dict[str, Any]) -> Findings:
    sensitivity = float(params["sensitivity"])
    found = Findings()
    for metric in flagged(result, "detected"):
        shift = float(result["shift"][metric])
        change = int(result["change_index"][metric])
        name = data.names[metric]
        mask = data.present(metric)
        change_label = data.labels[int(mask.nonzero()[0][change])]
        found.patterns.append(
            CracklePattern(
                PatternKind.PHASE_TRANSITION,
                f"metric '{name}' shifted by {shift * 100:.1f}% between first and second "
                "half of tasks",
                data.tasks(mask),
                min(shift / sensitivity, 1.0) if sensitivity > 0 else 1.0,
                {
                    "shift_magnitude": shift,
                    "first_half_avg": float(result["first_avg"][metric]),
                    "second_half_avg": float(result["second_avg"][metric]),
                    "delta": float(result["delta"][metric]),
                    "change_index": float(change),
                    "p_value": float(result["p_value"][metric]),
                },
                {"metric": name, "change_label": change_label},
            )
        )
    return found


def _without_cycles(data: DetectionData, result: Result, periods: dict[int, int]) -> Result:
    """``result`` with each detected metric that repeats a cycle (``periods``) tested again
    on its values minus the mean of their phase plus the mean of all (task position mod the
    period; a cycle with a phase never seen is not removed): detected only when the kernel
    detects that too at sensitivity 0 (p below 0.01, and not drifting once the cycle is
    out), and ``p_value`` the larger of the two."""
    detected = np.array(result["detected"], dtype=np.bool_)
    p_values = np.array(result["p_value"], dtype=np.float64)
    for metric, period in periods.items():
        if not detected[metric]:
            continue
        column = data.column(metric)
        tasks = np.flatnonzero(~np.isnan(column))
        phases = tasks % period
        counts = np.bincount(phases, minlength=period)
        if counts.min() == 0:
            continue
        values = column[tasks]
        with np.errstate(over="ignore", invalid="ignore"):
            profile = np.bincount(phases, values, minlength=period) / counts
            # the mean of all added back: the kernel's shift (and so its decision) needs it
            removed = values - profile[phases] + float(np.mean(values))
        if not np.all(np.isfinite(removed)):
            continue
        adjusted = np.full(column.size, np.nan)
        adjusted[tasks] = removed
        again = _backend.kernels().run_detector(
            "phase_transition", adjusted[None, :], None, {"sensitivity": 0.0}
        )
        p_cycle = float(again["p_value"][0])
        p_values[metric] = max(float(p_values[metric]), p_cycle)
        detected[metric] = bool(again["detected"][0])
    return {**result, "detected": detected, "p_value": p_values}


DETECTOR = Detector(
    "phase_transition",
    PatternKind.PHASE_TRANSITION,
    _params,
    _findings,
    applies=lambda data: len(data.names) > 0,
    cycles=_without_cycles,
)


class PhaseTransitionPattern:
    """A metric whose mean moved between the first and second half of the tasks."""

    @staticmethod
    def detect(
        labels: Sequence[str], metrics: Sequence[Any], threshold: float
    ) -> list[CracklePattern]:
        data = DetectionData.from_records(labels, metrics)
        return detect_with(DETECTOR, data, {"sensitivity": threshold})
