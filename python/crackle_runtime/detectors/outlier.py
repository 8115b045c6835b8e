"""Outliers (SPEC §6 ``OUTLIER``): tasks whose robust z-score exceeds ``outlier_z`` on some
metric, one pattern per task; a rule, not a test (no p-value, not in the FDR pass)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from crackle_runtime.detectors._base import Detector, Findings, Result
from crackle_runtime.detectors._data import DetectionData
from crackle_runtime.patterns import CracklePattern, PatternKind
from crackle_runtime.profile import ThermalProfile

__all__ = ["DETECTOR", "MAX_OUTLIER_PATTERNS"]

MAX_OUTLIER_PATTERNS = 200  # a report lists at most this many outlier tasks, the most extreme


def _params(profile: ThermalProfile) -> dict[str, Any]:
    return {"z_threshold": float(profile.outlier_z)}


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
    metrics, zs, deviations = result["metric"], result["z"], result["deviation"]
    boundaries = np.flatnonzero(np.diff(tasks)) + 1
    groups = np.split(np.arange(tasks.size), boundaries)
    worst = np.array([np.max(np.asarray(zs)[g]) for g in groups])
    order = np.argsort(-worst, kind="stable")
    if len(groups) > MAX_OUTLIER_PATTERNS:
        found.notes.append(
            f"outlier: {len(groups)} tasks exceed z = {z_threshold:g}; the "
            f"{MAX_OUTLIER_PATTERNS} most extreme are reported"
        )
        order = order[:MAX_OUTLIER_PATTERNS]
    for group_index in sorted(order.tolist()):
        group = groups[group_index]
        task = int(tasks[group[0]])
        label = data.labels[task]
        names = [data.names[int(metrics[k])] for k in group]
        z_values = [float(zs[k]) for k in group]
        metric_values: dict[str, float] = {"p_value": math.nan}
        for name, k in zip(names, group, strict=True):
            metric_values[f"z:{name}"] = float(zs[k])
            metric_values[f"deviation:{name}"] = float(deviations[k])
        described = ", ".join(
            f"'{name}' (z = {z:.1f}, {float(deviations[k]):+.4g} from the median)"
            for name, z, k in zip(names, z_values, group, strict=True)
        )
        found.patterns.append(
            CracklePattern(
                PatternKind.OUTLIER,
                f"task '{label}' is an outlier on {described}",
                (label,),
                min(max(z_values) / (2 * z_threshold), 1.0),
                metric_values,
                {"metrics": names, "task": label, "task_index": task},
            )
        )
    return found


DETECTOR = Detector("outlier", PatternKind.OUTLIER, _params, _findings)
