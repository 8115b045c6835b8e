"""Conservation laws (SPEC §6): linear combinations of 2–4 metrics that stay constant across
the tasks (``records_in - records_out - dropped = 0``), with the tasks that violate them."""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import numpy as np

from crackle_runtime.detectors._base import Detector, Findings, Result
from crackle_runtime.detectors._data import DetectionData
from crackle_runtime.patterns import CracklePattern, PatternKind
from crackle_runtime.profile import ThermalProfile

__all__ = ["DETECTOR", "law_text"]


def _fmt_coefficient(coefficient: float, first: bool) -> str:
    magnitude = abs(coefficient)
    text = "" if magnitude == 1.0 else f"{_fmt_number(magnitude)}*"
    if first:
        return ("-" if coefficient < 0 else "") + text
    return (" - " if coefficient < 0 else " + ") + text


def _fmt_number(value: float) -> str:
    fraction = Fraction(value).limit_denominator(12)
    if fraction.denominator != 1 and abs(float(fraction) - value) <= 1e-12 * max(1.0, value):
        return f"{fraction.numerator}/{fraction.denominator}"
    return f"{value:g}"


def law_text(names: list[str], coefficients: list[float], constant: float) -> str:
    """``records_in - records_out - dropped = 0``."""
    terms = "".join(
        _fmt_coefficient(c, position == 0) + name
        for position, (name, c) in enumerate(zip(names, coefficients, strict=True))
    )
    return f"{terms} = {constant:g}"


def _params(profile: ThermalProfile) -> dict[str, Any]:
    return {}


def _findings(data: DetectionData, result: Result, params: dict[str, Any]) -> Findings:
    found = Findings()
    tasks = np.asarray(result["tasks"], dtype=np.int64)
    satisfied_all = np.asarray(result["satisfied"], dtype=bool).reshape(-1, tasks.size or 1)
    term_law = np.asarray(result["term_law"])
    for law, constant in enumerate(np.asarray(result["constant"]).tolist()):
        terms = np.flatnonzero(term_law == law)
        names = [data.names[int(k)] for k in np.asarray(result["term_metric"])[terms]]
        coefficients = [float(c) for c in np.asarray(result["term_coefficient"])[terms]]
        satisfied = satisfied_all[law][: tasks.size]
        holding = np.zeros(data.task_count, dtype=bool)
        holding[tasks[satisfied]] = True
        holds = data.tasks(holding)
        violations = [data.labels[k] for k in tasks[~satisfied].tolist()]
        residual_std = float(result["residual_std"][law])
        support = float(result["support"][law])
        text = law_text(names, coefficients, constant)
        metrics: dict[str, Any] = {f"coef:{n}": c for n, c in zip(names, coefficients, strict=True)}
        metrics.update(
            constant=constant,
            residual_std=residual_std,
            support=support,
            band=float(result["band"][law]),
            p_value=math.nan,
        )
        found.patterns.append(
            CracklePattern(
                PatternKind.CONSERVATION,
                f"law '{text}' holds across {len(holds)} of {len(tasks)} tasks "
                f"(residual std: {residual_std:.3g})",
                holds,
                support,
                metrics,
                {"metrics": names, "law": text, "violations": violations},
            )
        )
    return found


DETECTOR = Detector(
    "conservation_laws",
    PatternKind.CONSERVATION,
    _params,
    _findings,
    applies=lambda data: len(data.names) > 0,
)
