"""Correlation (SPEC §6, §12): metric pairs whose Pearson |r| reaches
``correlation_threshold`` and, from 10 pairs on, whose first differences (Spearman) and AR(p)
residuals (Pearson) are both associated too (p < 0.01 with an effective sample size,
Bretherton et al. 1999): two random walks, two autocorrelated series or a shared trend,
step or daily cycle give a high r but no pattern."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from crackle_runtime import _backend
from crackle_runtime.detectors._base import (
    Detector,
    Findings,
    Result,
    detect_with,
    flagged,
    strongest,
)
from crackle_runtime.detectors._data import DetectionData
from crackle_runtime.patterns import CracklePattern, PatternKind
from crackle_runtime.profile import ThermalProfile

__all__ = ["DETECTOR", "CorrelationPattern"]


def _params(profile: ThermalProfile) -> dict[str, Any]:
    return {"threshold": float(profile.correlation_threshold)}


def _findings(data: DetectionData, result: Result, params: dict[str, Any]) -> Findings:
    found = Findings()
    rows, note = strongest(flagged(result, "detected"), np.abs(result["r"]), "strong correlations")
    found.notes.extend([note] if note else [])
    for row in rows:
        i, j = int(result["i"][row]), int(result["j"][row])
        r = float(result["r"][row])
        a, b = data.names[i], data.names[j]
        sign = "positive" if r > 0 else "negative"
        found.patterns.append(
            CracklePattern(
                PatternKind.CORRELATION,
                f"strong {sign} correlation between '{a}' and '{b}' (r = {r:.3f})",
                data.pair_tasks(i, j),
                abs(r),
                {
                    "correlation": r,
                    "n": float(result["n"][row]),
                    "p_value": float(result["p_value"][row]),
                },
                {"metrics": [a, b]},
            )
        )
    return found


DETECTOR = Detector(
    "correlation",
    PatternKind.CORRELATION,
    _params,
    _findings,
    applies=lambda data: len(data.names) >= 2,
    pairwise=True,
)


class CorrelationPattern:
    """Pairs of metrics with a strong, significant Pearson correlation."""

    @staticmethod
    def detect(
        labels: Sequence[str], metrics: Sequence[Any], threshold: float
    ) -> list[CracklePattern]:
        data = DetectionData.from_records(labels, metrics)
        return detect_with(DETECTOR, data, {"threshold": threshold})

    @staticmethod
    def pearson_correlation(pairs: Iterable[tuple[float, float]]) -> float:
        """Pearson r of ``(x, y)`` pairs, computed stably; 0 with zero variance."""
        array = np.asarray(list(pairs), dtype=np.float64).reshape(-1, 2)
        if not np.isfinite(array).all():
            raise ValueError("pairs must contain finite numbers")
        result = _backend.kernels().run_detector(
            "correlation", np.ascontiguousarray(array.T), None, {"threshold": 1.0}
        )
        return float(result["r"][0])
