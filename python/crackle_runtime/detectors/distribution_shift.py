"""Distribution shifts (SPEC §6 ``DISTRIBUTION_SHIFT``): a metric's distribution (level,
spread or shape) changed at a change point; permutation tested, in the report's FDR pass."""

from __future__ import annotations

import math
from typing import Any

from crackle_runtime import _backend
from crackle_runtime.detectors._base import Detector, Findings, Result, Test, flagged
from crackle_runtime.detectors._data import DetectionData
from crackle_runtime.patterns import CracklePattern, PatternKind
from crackle_runtime.profile import ThermalProfile

__all__ = ["DETECTOR"]


def _params(profile: ThermalProfile) -> dict[str, Any]:
    return {"permutations": int(profile.permutations)}


def _pattern(data: DetectionData, result: Result, metric: int) -> CracklePattern:
    def field(name: str) -> float:
        return float(result[name][metric])

    name = data.names[metric]
    mask = data.present(metric)
    change = int(result["change_index"][metric])
    change_label = data.labels[int(mask.nonzero()[0][change])]
    med_b, med_a = field("median_before"), field("median_after")
    std_b, std_a = field("std_before"), field("std_after")
    jsd = field("jsd")
    return CracklePattern(
        PatternKind.DISTRIBUTION_SHIFT,
        f"distribution of '{name}' changed at task '{change_label}' "
        f"(JSD {jsd:.3f}; median {med_b:.4g} → {med_a:.4g}, std {std_b:.4g} → {std_a:.4g})",
        data.tasks(mask),
        math.sqrt(max(jsd, 0.0)),
        {
            "jsd": jsd,
            "p_value": field("p_value"),
            "change_index": float(change),
            "mean_before": field("mean_before"),
            "mean_after": field("mean_after"),
            "std_before": std_b,
            "std_after": std_a,
            "median_before": med_b,
            "median_after": med_a,
            "delta_median": med_a - med_b,
            "delta_std": std_a - std_b,
            "permutations": field("perms_run"),
            "n": field("count"),
        },
        {"metric": name, "change_label": change_label},
    )


def _findings(data: DetectionData, result: Result, params: dict[str, Any]) -> Findings:
    found = Findings()
    tested = flagged(result, "tested")
    if not tested:
        min_segment = _backend.kernels().DETECTORS["distribution_shift"]["params"]["min_segment"]
        found.skipped = (
            f"no metric has {2 * min_segment} or more varying values ({min_segment} per segment)"
        )
        return found
    found.tests = [
        Test(
            PatternKind.DISTRIBUTION_SHIFT,
            float(result["p_value"][metric]),
            lambda metric=metric: _pattern(data, result, metric),  # type: ignore[misc]
        )
        for metric in tested
    ]
    return found


DETECTOR = Detector("distribution_shift", PatternKind.DISTRIBUTION_SHIFT, _params, _findings)
