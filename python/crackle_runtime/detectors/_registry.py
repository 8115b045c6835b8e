"""The detectors, in the order of the pattern kinds: one line each."""

from __future__ import annotations

from crackle_runtime.detectors import (
    clustering,
    conservation,
    conservation_laws,
    correlation,
    dependence,
    distribution_shift,
    information_flow,
    outlier,
    phase_transition,
)
from crackle_runtime.detectors._base import Detector

__all__ = ["REGISTRY"]

REGISTRY: tuple[Detector, ...] = (
    clustering.DETECTOR,
    phase_transition.DETECTOR,
    conservation.DETECTOR,
    conservation_laws.DETECTOR,
    correlation.DETECTOR,
    outlier.DETECTOR,
    distribution_shift.DETECTOR,
    dependence.DETECTOR,
    information_flow.DETECTOR,
)
