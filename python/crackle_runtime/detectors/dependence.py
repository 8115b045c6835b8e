"""Nonlinear dependence (SPEC §6 ``DEPENDENCE``): strong mutual information between two
metrics whose linear correlation stays below the threshold (e.g. y = x²); tested against
circular time-shift surrogates that keep each series' autocorrelation (SPEC §12), in the
report's FDR pass. The kernel reads each metric AR(p)-prewhitened
(``DetectionData.prewhitened``), so autocorrelation, drift and a shared trend, step or
daily cycle give no dependence (SPEC §12); r, MI and the conditional-mean range are those of the
prewhitened series."""

from __future__ import annotations

from typing import Any

from crackle_runtime import _backend
from crackle_runtime.detectors._base import Detector, Findings, Result, Test, flagged
from crackle_runtime.detectors._data import DetectionData
from crackle_runtime.patterns import CracklePattern, PatternKind
from crackle_runtime.profile import ThermalProfile

__all__ = ["DETECTOR", "NONLINEAR_EXCESS"]

# A linear relation of correlation r carries an information coefficient of about |r|
# (exactly |r| for Gaussian data); dependence is reported only when the information
# coefficient exceeds |r| by this much, i.e. when it is not just a moderate linear
# correlation below the correlation threshold.
NONLINEAR_EXCESS = 0.15


def _params(profile: ThermalProfile) -> dict[str, Any]:
    return {
        "threshold_r": float(profile.correlation_threshold),
        "permutations": int(profile.permutations),
    }


def _pattern(
    data: DetectionData, result: Result, row: int, params: dict[str, Any]
) -> CracklePattern | None:
    def field(name: str) -> float:
        return float(result[name][row])

    r, info_coef = field("r"), field("info_coef")
    minimum = float(params["threshold_r"]) / 2
    if info_coef < minimum or info_coef < abs(r) + NONLINEAR_EXCESS:
        return None
    i, j = int(result["i"][row]), int(result["j"][row])
    a, b = data.names[i], data.names[j]
    mi_corrected, effect = field("mi_corrected"), field("effect")
    return CracklePattern(
        PatternKind.DEPENDENCE,
        # symmetric (mutual information), and of the prewhitened values: no direction and
        # no raw-unit effect size in the words (the conditional-mean range is a metric)
        f"'{a}' and '{b}' are related nonlinearly (information coefficient "
        f"{info_coef:.2f} vs |r| = {abs(r):.2f}, MI {mi_corrected:.3f} bits, between their "
        "prewhitened values)",
        data.pair_tasks(i, j),
        info_coef,
        {
            "mutual_information": mi_corrected,
            "mutual_information_raw": field("mi"),
            "p_value": field("p_value"),
            "correlation": r,
            "information_coefficient": info_coef,
            "conditional_mean_range": effect,
            "bins": field("bins"),
            "permutations": field("perms_run"),
            "n": field("n"),
        },
        {"metrics": [a, b]},
    )


def _findings(data: DetectionData, result: Result, params: dict[str, Any]) -> Findings:
    found = Findings()
    tested = flagged(result, "tested")
    if not tested:
        min_pairs = _backend.kernels().DETECTORS["dependence"]["params"]["min_pairs"]
        found.skipped = (
            f"no metric pair has {min_pairs} or more tasks with both and |r| below "
            f"{float(params['threshold_r']):g}"
        )
        return found
    found.tests = [
        Test(
            PatternKind.DEPENDENCE,
            float(result["p_value"][row]),
            lambda row=row: _pattern(data, result, row, params),  # type: ignore[misc]
        )
        for row in tested
    ]
    return found


DETECTOR = Detector(
    "dependence",
    PatternKind.DEPENDENCE,
    _params,
    _findings,
    pairwise=True,
    min_tasks="min_pairs",
    prepare=DetectionData.prewhitened,
)
