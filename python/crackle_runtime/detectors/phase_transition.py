"""Phase transitions (SPEC §6, §12): a metric's mean moved between the first and second half
of the tasks by more than ``phase_transition_sensitivity`` of its mean (and significantly,
when both halves have 4 or more values, by Welch's test with the halves' AR(1) long-run
variance); a drifting metric (random walk, φ → 1) has no phase transition."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

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


DETECTOR = Detector(
    "phase_transition",
    PatternKind.PHASE_TRANSITION,
    _params,
    _findings,
    applies=lambda data: len(data.names) > 0,
)


class PhaseTransitionPattern:
    """A metric whose mean moved between the first and second half of the tasks."""

    @staticmethod
    def detect(
        labels: Sequence[str], metrics: Sequence[Any], threshold: float
    ) -> list[CracklePattern]:
        data = DetectionData.from_records(labels, metrics)
        return detect_with(DETECTOR, data, {"sensitivity": threshold})
