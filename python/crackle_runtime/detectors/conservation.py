"""Single-metric conservation (SPEC §6): a metric whose coefficient of variation stays below
``conservation_tolerance``, unless it is an id or a counter."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from crackle_runtime.detectors._base import Detector, Findings, Result, detect_with, flagged
from crackle_runtime.detectors._data import DetectionData
from crackle_runtime.patterns import CracklePattern, PatternKind
from crackle_runtime.profile import ThermalProfile

__all__ = ["DETECTOR", "ConservationPattern"]


def _params(profile: ThermalProfile) -> dict[str, Any]:
    return {"tolerance": float(profile.conservation_tolerance)}


def _findings(data: DetectionData, result: Result, params: dict[str, Any]) -> Findings:
    found = Findings()
    for metric in flagged(result, "detected"):
        count = int(result["count"][metric])
        total = float(result["total"][metric])
        std = float(result["std"][metric])
        cv = float(result["cv"][metric])
        name = data.names[metric]
        found.patterns.append(
            CracklePattern(
                PatternKind.CONSERVATION,
                f"metric '{name}' is conserved across {count} tasks "
                f"(sum: {total:.3f}, std_dev: {std:.3f})",
                data.tasks(data.present(metric)),
                1.0 - min(cv, 1.0),
                {"total": total, "std_dev": std, "coefficient_of_variation": cv},
                {"metric": name},
            )
        )
    return found


DETECTOR = Detector(
    "conservation",
    PatternKind.CONSERVATION,
    _params,
    _findings,
    applies=lambda data: len(data.names) > 0,
)


class ConservationPattern:
    """A metric that stays (nearly) constant across tasks; counters excluded."""

    @staticmethod
    def detect(
        labels: Sequence[str], metrics: Sequence[Any], threshold: float
    ) -> list[CracklePattern]:
        data = DetectionData.from_records(labels, metrics)
        return detect_with(DETECTOR, data, {"tolerance": threshold})
