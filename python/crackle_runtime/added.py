"""The added detectors: outliers, distribution shifts, nonlinear dependence, information
flow and conservation laws, with one Benjamini–Hochberg correction for the whole report.

The kernels (Rust or NumPy, same results for the same seed) compute statistics and
permutation p-values; this module applies the false-discovery correction and words the
patterns. Permutation tests use :data:`PERMUTATION_SEED`, so a report is reproducible.

A permutation p-value is sequential: a test stops once 10 permuted statistics reach the
observed one (p = 10 / rounds); otherwise, after ``profile.permutations`` rounds B, p comes
from an exponential tail fitted to the exceedances of the permuted statistics over their
upper quarter (k = B // 4, threshold u = the (k + 1)-th largest, sigma = their mean excess
over u: p = (k + 1) / (B + 1) * exp(-(T - u) / sigma)), which errs on the conservative side
in the far tail where the Benjamini–Hochberg correction decides; a test whose tail p-value
is below 1e-12 after B // 4 rounds stops there. The tests of one detector share their
permutations (the same permutation of each length in a round).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np
from numpy.typing import NDArray

from crackle_runtime import _backend
from crackle_runtime.detectors import DetectionData
from crackle_runtime.patterns import CracklePattern, PatternKind
from crackle_runtime.profile import ThermalProfile

__all__ = [
    "MAX_LAG",
    "MAX_TEST_N",
    "MIN_FLOW_VALUES",
    "MIN_PAIRS",
    "MIN_SEGMENT",
    "PERMUTATION_SEED",
    "AddedResult",
    "benjamini_hochberg",
    "run_added",
]

PERMUTATION_SEED = 0x5EED_CAFE
"""Seed of every permutation test: the same data always gives the same report."""
MIN_SEGMENT = 20  # values per segment for a distribution shift
MIN_PAIRS = 30  # tasks having both metrics for a dependence test
MIN_FLOW_VALUES = 50  # tasks having both metrics for an information-flow test
MAX_LAG = 3
MAX_TEST_N = 10_000  # longer series are tested on a thinned (or the latest) subset
LAW_EIGENVALUE = 1e-4  # a law's residual std is <= 1% of its standardized terms
LAW_MAX_TERMS = 4
LAW_SAMPLE = 2_000
MAX_OUTLIER_PATTERNS = 200
NONLINEAR_EXCESS = 0.15


@dataclass
class _Test:
    kind: PatternKind
    p_value: float
    build: Callable[[], CracklePattern | None]


@dataclass
class AddedResult:
    patterns: list[CracklePattern] = field(default_factory=list)
    skipped: list[tuple[PatternKind, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    tests_run: int = 0


def benjamini_hochberg(p_values: NDArray[np.float64], q: float) -> NDArray[np.bool_]:
    """Which hypotheses the Benjamini–Hochberg step-up procedure rejects at level ``q``."""
    p = np.asarray(p_values, dtype=np.float64)
    m = p.size
    rejected = np.zeros(m, dtype=bool)
    if m == 0:
        return rejected
    order = np.argsort(p, kind="stable")
    below = p[order] <= q * np.arange(1, m + 1) / m
    if below.any():
        last = int(np.flatnonzero(below)[-1])
        rejected[order[: last + 1]] = True
    return rejected


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


# --- the detectors ----------------------------------------------------------------------
def _outliers(data: DetectionData, profile: ThermalProfile, result: AddedResult) -> None:
    counts = (~np.isnan(data.columns)).sum(axis=1)
    if not (counts >= 3).any():
        result.skipped.append((PatternKind.OUTLIER, "no metric has 3 or more values"))
        return
    tasks, metrics, zs, deviations = _backend.kernels().outlier_scores(
        data.columns, float(profile.outlier_z)
    )
    tasks = np.asarray(tasks)
    if not tasks.size:
        return
    boundaries = np.flatnonzero(np.diff(tasks)) + 1
    groups = np.split(np.arange(tasks.size), boundaries)
    worst = np.array([np.max(np.asarray(zs)[g]) for g in groups])
    order = np.argsort(-worst, kind="stable")
    if len(groups) > MAX_OUTLIER_PATTERNS:
        result.notes.append(
            f"outlier: {len(groups)} tasks exceed z = {profile.outlier_z:g}; the "
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
        top = max(z_values)
        described = ", ".join(
            f"'{name}' (z = {z:.1f}, {float(deviations[k]):+.4g} from the median)"
            for name, z, k in zip(names, z_values, group, strict=True)
        )
        result.patterns.append(
            CracklePattern(
                PatternKind.OUTLIER,
                f"task '{label}' is an outlier on {described}",
                (label,),
                min(top / (2 * profile.outlier_z), 1.0),
                metric_values,
                {"metrics": names, "task": label, "task_index": task},
            )
        )


def _shift_tests(data: DetectionData, profile: ThermalProfile, result: AddedResult) -> list[_Test]:
    stats = np.asarray(
        _backend.kernels().distribution_shift_stats(
            data.columns, MIN_SEGMENT, int(profile.permutations), PERMUTATION_SEED, MAX_TEST_N
        )
    )
    tested = stats[:, 12] > 0 if stats.size else np.zeros(0, dtype=bool)
    if not tested.any():
        result.skipped.append(
            (
                PatternKind.DISTRIBUTION_SHIFT,
                f"no metric has {2 * MIN_SEGMENT} or more varying values "
                f"({MIN_SEGMENT} per segment)",
            )
        )
        return []
    tests = []
    for metric in np.flatnonzero(tested).tolist():
        row = stats[metric].tolist()

        def build(metric: int = metric, row: list[float] = row) -> CracklePattern:
            (count, change, _stat, jsd, p, perms, mean_b, mean_a, std_b, std_a, med_b, med_a, _) = (
                row
            )
            name = data.names[metric]
            mask = data.present(metric)
            change_label = data.labels[int(data.positions(mask)[int(change)])]
            return CracklePattern(
                PatternKind.DISTRIBUTION_SHIFT,
                f"distribution of '{name}' changed at task '{change_label}' "
                f"(JSD {jsd:.3f}; median {med_b:.4g} → {med_a:.4g}, "
                f"std {std_b:.4g} → {std_a:.4g})",
                data.tasks(mask),
                math.sqrt(max(jsd, 0.0)),
                {
                    "jsd": jsd,
                    "p_value": p,
                    "change_index": change,
                    "mean_before": mean_b,
                    "mean_after": mean_a,
                    "std_before": std_b,
                    "std_after": std_a,
                    "median_before": med_b,
                    "median_after": med_a,
                    "delta_median": med_a - med_b,
                    "delta_std": std_a - std_b,
                    "permutations": perms,
                    "n": count,
                },
                {"metric": name, "change_label": change_label},
            )

        tests.append(_Test(PatternKind.DISTRIBUTION_SHIFT, float(row[4]), build))
    return tests


def _dependence_tests(
    data: DetectionData, profile: ThermalProfile, result: AddedResult
) -> list[_Test]:
    stats = np.asarray(
        _backend.kernels().dependence_stats(
            data.columns,
            float(profile.correlation_threshold),
            MIN_PAIRS,
            int(profile.permutations),
            PERMUTATION_SEED,
            MAX_TEST_N,
        )
    )
    tested = stats[:, 11] > 0 if stats.size else np.zeros(0, dtype=bool)
    if not tested.any():
        result.skipped.append(
            (
                PatternKind.DEPENDENCE,
                f"no metric pair has {MIN_PAIRS} or more tasks with both and |r| below "
                f"{profile.correlation_threshold:g}",
            )
        )
        return []
    minimum = profile.correlation_threshold / 2
    tests = []
    # A linear relation of correlation r carries an information coefficient of about |r|
    # (exactly |r| for Gaussian data); dependence is reported only when the information
    # coefficient exceeds |r| by NONLINEAR_EXCESS, i.e. when it is not just a moderate
    # linear correlation below the correlation threshold.
    for row in stats[tested].tolist():

        def build(row: list[float] = row) -> CracklePattern | None:
            i, j, n, r, mi, mi_corrected, p, perms, info_coef, effect, bins, _, _ = row
            if info_coef < minimum or info_coef < abs(r) + NONLINEAR_EXCESS:
                return None
            a, b = data.names[int(i)], data.names[int(j)]
            return CracklePattern(
                PatternKind.DEPENDENCE,
                f"'{b}' depends on '{a}' nonlinearly (information coefficient "
                f"{info_coef:.2f} vs |r| = {abs(r):.2f}, MI {mi_corrected:.3f} bits; mean of "
                f"'{b}' varies by {effect:.4g} across '{a}')",
                data.tasks(data.present(int(i)) & data.present(int(j))),
                info_coef,
                {
                    "mutual_information": mi_corrected,
                    "mutual_information_raw": mi,
                    "p_value": p,
                    "correlation": r,
                    "information_coefficient": info_coef,
                    "conditional_mean_range": effect,
                    "bins": bins,
                    "permutations": perms,
                    "n": n,
                },
                {"metrics": [a, b]},
            )

        tests.append(_Test(PatternKind.DEPENDENCE, float(row[6]), build))
    return tests


def _flow_tests(data: DetectionData, profile: ThermalProfile, result: AddedResult) -> list[_Test]:
    stats = np.asarray(
        _backend.kernels().information_flow_stats(
            data.columns,
            MIN_FLOW_VALUES,
            int(profile.permutations),
            PERMUTATION_SEED,
            MAX_TEST_N,
            MAX_LAG,
        )
    )
    tested = stats[:, 9] > 0 if stats.size else np.zeros(0, dtype=bool)
    if not tested.any():
        result.skipped.append(
            (
                PatternKind.INFORMATION_FLOW,
                f"no metric pair has {MIN_FLOW_VALUES} or more tasks with both",
            )
        )
        return []
    tests = []
    for row in stats[tested].tolist():

        def build(row: list[float] = row) -> CracklePattern | None:
            i, j, n, lag, te, te_reverse, p, perms, bins, _, _, _ = row
            if not te > te_reverse:
                return None
            source, target = data.names[int(i)], data.names[int(j)]
            return CracklePattern(
                PatternKind.INFORMATION_FLOW,
                f"'{source}' leads '{target}' by {int(lag)} task(s): transfer entropy "
                f"{te:.3f} bits vs {te_reverse:.3f} bits in reverse",
                data.tasks(data.present(int(i)) & data.present(int(j))),
                te / (te + te_reverse) if te + te_reverse > 0 else 0.0,
                {
                    "transfer_entropy": te,
                    "reverse_transfer_entropy": te_reverse,
                    "net_transfer_entropy": te - te_reverse,
                    "lag": lag,
                    "p_value": p,
                    "bins": bins,
                    "permutations": perms,
                    "n": n,
                },
                {"source": source, "target": target, "lag": int(lag), "metrics": [source, target]},
            )

        tests.append(_Test(PatternKind.INFORMATION_FLOW, float(row[6]), build))
    return tests


def _laws(data: DetectionData, counters: NDArray[np.bool_], result: AddedResult) -> None:
    laws = _backend.kernels().conservation_laws(
        data.columns, counters, LAW_EIGENVALUE, PERMUTATION_SEED, LAW_MAX_TERMS, LAW_SAMPLE
    )
    all_tasks = data.tasks()
    for law in laws:
        metric_ids = [int(k) for k in law["metrics"]]
        names = [data.names[k] for k in metric_ids]
        coefficients = [float(c) for c in law["coefficients"]]
        constant = float(law["constant"])
        satisfied = np.asarray(law["satisfied"], dtype=bool)
        tasks = np.asarray(law["tasks"], dtype=np.int64)
        holds = [all_tasks[k] for k in tasks[satisfied].tolist()]
        violations = [all_tasks[k] for k in tasks[~satisfied].tolist()]
        text = law_text(names, coefficients, constant)
        metrics: dict[str, Any] = {f"coef:{n}": c for n, c in zip(names, coefficients, strict=True)}
        metrics.update(
            constant=constant,
            residual_std=float(law["residual_std"]),
            support=float(law["support"]),
            p_value=math.nan,
        )
        result.patterns.append(
            CracklePattern(
                PatternKind.CONSERVATION,
                f"law '{text}' holds across {len(holds)} of {len(tasks)} tasks "
                f"(residual std: {float(law['residual_std']):.3g})",
                tuple(holds),
                float(law["support"]),
                metrics,
                {"metrics": names, "law": text, "violations": violations},
            )
        )


def run_added(
    data: DetectionData,
    profile: ThermalProfile,
    counters: NDArray[np.bool_] | None,
    time_left: Callable[[], float],
    incomplete: list[tuple[PatternKind, str]],
) -> AddedResult:
    """Run every enabled added detector, then one BH correction over all their tests."""
    result = AddedResult()
    enabled = profile.detectors
    # Ids and counters are an index, not a measurement: they take no part in laws, and
    # every monotonic metric would otherwise "lead" or "depend on" them.
    measured = data if counters is None else data.select(~counters)
    tests: list[_Test] = []
    steps: list[tuple[PatternKind, Callable[[], None]]] = []
    if PatternKind.OUTLIER in enabled:
        steps.append((PatternKind.OUTLIER, lambda: _outliers(measured, profile, result)))
    if PatternKind.CONSERVATION in enabled and counters is not None:
        steps.append((PatternKind.CONSERVATION, lambda: _laws(data, counters, result)))
    if PatternKind.DISTRIBUTION_SHIFT in enabled:
        steps.append(
            (
                PatternKind.DISTRIBUTION_SHIFT,
                lambda: tests.extend(_shift_tests(measured, profile, result)),
            )
        )
    if PatternKind.DEPENDENCE in enabled:
        steps.append(
            (
                PatternKind.DEPENDENCE,
                lambda: tests.extend(_dependence_tests(measured, profile, result)),
            )
        )
    if PatternKind.INFORMATION_FLOW in enabled:
        steps.append(
            (
                PatternKind.INFORMATION_FLOW,
                lambda: tests.extend(_flow_tests(measured, profile, result)),
            )
        )
    for kind, step in steps:
        if time_left() <= 0:
            incomplete.append((kind, "time budget exhausted before it started"))
            continue
        step()
    result.tests_run = len(tests)
    if tests:
        rejected = benjamini_hochberg(np.array([t.p_value for t in tests]), profile.fdr)
        for test, significant in zip(tests, rejected.tolist(), strict=True):
            if significant:
                pattern = test.build()
                if pattern is not None:
                    result.patterns.append(pattern)
    return result
