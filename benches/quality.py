"""Statistical quality of the tested detectors, outliers and laws (SPEC §6, "Conservation laws").

    python benches/quality.py                     # 100 seeds, full sizes
    python benches/quality.py --seeds 500 --json quality.json
    python benches/quality.py --quick             # 5 seeds, small sizes: a smoke test

For every seed and case a kiln is filled from ``numpy.random.default_rng([seed, case_id])``
and cooled with only these detectors switched on (OUTLIER, DISTRIBUTION_SHIFT,
DEPENDENCE, INFORMATION_FLOW, CONSERVATION — the last also runs the seed's single-metric
conservation rule, which is reported apart from the laws).

Recall cases (a pattern is planted; "found" means found *at the right place*):

1. outlier — 300 tasks x 3 iid N(0, 1) metrics plus one task (at a random position) whose
   ``metric_1`` is +10 sigma: an OUTLIER pattern involving exactly that task and naming
   ``metric_1``. Plus the README example (22.5, 23.1, 45.2: ``sensor-3`` flagged), run once.
2. shift — 400 tasks, ``shifted`` ~ N(0, 1) for the first 200 then N(0, 3) (sd 3, same
   mean), plus 2 noise metrics: DISTRIBUTION_SHIFT on ``shifted`` with ``change_index``
   within +-20 of 200.
3. dependence — 400 tasks, x ~ U(-1, 1), y = x^2 + N(0, 0.05), plus 2 noise metrics:
   DEPENDENCE on {x, y}.
4. flow — 600 tasks, x iid N(0, 1), y[t] = 0.8 x[t-2] + N(0, 0.3), plus 1 noise metric:
   INFORMATION_FLOW with source x, target y, lag 2.
5. law — 500 tasks, records_in ~ integers 500..1500, dropped ~ Poisson(20),
   records_out = records_in - dropped, 5% of the tasks (random) with records_out reduced by
   50..200, plus 2 noise metrics: a CONSERVATION law with coefficients exactly +1
   (records_in), -1 (records_out), -1 (dropped), constant 0, and ``details["violations"]``
   exactly the planted violators.

Columns: recall (share of seeds found at the right place), wrong (seeds where the kind was
reported but never at the right place), extra (mean other patterns of the case's kind per
seed: spurious outliers, extra laws...), other (mean tested patterns of *other* kinds —
all false in these designs), cool() time.

Null cases (nothing planted): 300 tasks x 5 iid N(0, 1) metrics, and 300 x 5 iid U(0, 1).
Every tested pattern (DISTRIBUTION_SHIFT, DEPENDENCE, INFORMATION_FLOW) is a false
discovery, so the per-seed false-discovery proportion is 1 when any is reported, else 0: its
mean (the FDR) equals the family-wise rate, which Benjamini-Hochberg bounds by the profile's
``fdr`` under the complete null. OUTLIER is a rule, not a test: on Gaussian data about
1500 * 2 * (1 - Phi(3.5)) = 0.70 values per seed exceed |z| = 3.5, i.e. ~50% of seeds; the
measured rate is printed as it is. Conservation laws are not p-valued; any law on null data
is false and counted too.

Exit status: 0 when everything ran; in full mode 1 when an acceptance criterion failed
(recall < 0.95, or a null false-discovery rate significantly above ``fdr``). ``--quick``
never fails on numbers (5 seeds judge nothing).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

import crackle_runtime
from crackle_runtime import (
    CracklePattern,
    CrackleTask,
    Kiln,
    PatternKind,
    TaskOutput,
    ThermalProfile,
    _backend,
)
from crackle_runtime.report import PatternReport

RECALL_TARGET = 0.95
SHIFT_TOLERANCE = 20
TESTED_KINDS = (
    PatternKind.DISTRIBUTION_SHIFT,
    PatternKind.DEPENDENCE,
    PatternKind.INFORMATION_FLOW,
)
QUALITY_KINDS = (PatternKind.OUTLIER, *TESTED_KINDS, PatternKind.CONSERVATION)
PROFILE = ThermalProfile.default().only(*QUALITY_KINDS)
MAX_EXAMPLES = 5  # misses described in the printed diagnosis (all of them go to --json)


@dataclass(frozen=True)
class Sizes:
    outlier: int
    shift: int
    dependence: int
    flow: int
    law: int
    null: int

    @classmethod
    def make(cls, quick: bool) -> Sizes:
        if quick:
            return cls(outlier=150, shift=200, dependence=200, flow=300, law=200, null=150)
        return cls(outlier=300, shift=400, dependence=400, flow=600, law=500, null=300)


Matrix = NDArray[np.float64]


@dataclass
class Planted:
    """One generated data set: the kiln input and what a correct report must contain."""

    values: Matrix
    names: list[str]
    truth: dict[str, Any] = field(default_factory=dict)


@dataclass
class RecallSeed:
    seed: int
    found: bool
    wrong_place: bool
    extra: int
    other_tested: int
    seconds: float
    tests_run: int
    reported: list[str]


@dataclass
class NullSeed:
    seed: int
    tests_run: int
    false_tested: int
    by_kind: dict[str, int]
    outliers: int
    laws: int
    single_conservation: int
    seconds: float
    reported: list[str]


# --- data ---------------------------------------------------------------------------------
def labels(n: int) -> list[str]:
    return [f"task-{i}" for i in range(n)]


def make_outlier(rng: np.random.Generator, n: int) -> Planted:
    values = rng.normal(0.0, 1.0, size=(n + 1, 3))
    where = int(rng.integers(0, n + 1))
    values[where, 0] = 10.0  # mean + 10 sigma
    return Planted(
        values,
        ["metric_1", "metric_2", "metric_3"],
        {"task": f"task-{where}", "metric": "metric_1"},
    )


def make_shift(rng: np.random.Generator, n: int) -> Planted:
    change = n // 2
    shifted = np.concatenate([rng.normal(0.0, 1.0, change), rng.normal(0.0, 3.0, n - change)])
    values = np.column_stack([shifted, rng.normal(size=n), rng.normal(size=n)])
    return Planted(
        values, ["shifted", "noise_1", "noise_2"], {"metric": "shifted", "change": change}
    )


def make_dependence(rng: np.random.Generator, n: int) -> Planted:
    x = rng.uniform(-1.0, 1.0, n)
    y = x**2 + rng.normal(0.0, 0.05, n)
    values = np.column_stack([x, y, rng.normal(size=n), rng.normal(size=n)])
    return Planted(values, ["x", "y", "noise_1", "noise_2"], {"metrics": ["x", "y"]})


def make_flow(rng: np.random.Generator, n: int) -> Planted:
    lag = 2
    x = rng.normal(0.0, 1.0, n)
    y = rng.normal(0.0, 0.3, n)
    y[lag:] += 0.8 * x[:-lag]
    values = np.column_stack([x, y, rng.normal(size=n)])
    return Planted(values, ["x", "y", "noise"], {"source": "x", "target": "y", "lag": lag})


def make_law(rng: np.random.Generator, n: int) -> Planted:
    records_in = rng.integers(500, 1501, n).astype(np.float64)
    dropped = rng.poisson(20.0, n).astype(np.float64)
    records_out = records_in - dropped
    violators = np.sort(rng.choice(n, size=round(0.05 * n), replace=False))
    records_out[violators] -= rng.integers(50, 201, violators.size)
    values = np.column_stack(
        [records_in, records_out, dropped, rng.normal(size=n), rng.normal(size=n)]
    )
    return Planted(
        values,
        ["records_in", "records_out", "dropped", "noise_1", "noise_2"],
        {
            "coefficients": {"records_in": 1.0, "records_out": -1.0, "dropped": -1.0},
            "constant": 0.0,
            "violations": [f"task-{i}" for i in violators.tolist()],
        },
    )


def make_null_gauss(rng: np.random.Generator, n: int) -> Planted:
    return Planted(rng.normal(0.0, 1.0, (n, 5)), [f"m{k}" for k in range(1, 6)])


def make_null_uniform(rng: np.random.Generator, n: int) -> Planted:
    return Planted(rng.uniform(0.0, 1.0, (n, 5)), [f"m{k}" for k in range(1, 6)])


# --- judging ------------------------------------------------------------------------------
def is_law(pattern: CracklePattern) -> bool:
    return pattern.kind is PatternKind.CONSERVATION and "law" in pattern.details


def right_outlier(p: CracklePattern, truth: dict[str, Any]) -> bool:
    return p.involved_tasks == (truth["task"],) and truth["metric"] in p.details.get("metrics", [])


def right_shift(p: CracklePattern, truth: dict[str, Any]) -> bool:
    change = p.metrics.get("change_index", math.nan)
    return bool(
        p.details.get("metric") == truth["metric"]
        and abs(change - truth["change"]) <= SHIFT_TOLERANCE
    )


def right_dependence(p: CracklePattern, truth: dict[str, Any]) -> bool:
    return sorted(p.details.get("metrics", [])) == sorted(truth["metrics"])


def right_flow(p: CracklePattern, truth: dict[str, Any]) -> bool:
    d = p.details
    return bool(
        d.get("source") == truth["source"]
        and d.get("target") == truth["target"]
        and d.get("lag") == truth["lag"]
        and p.metrics.get("lag") == truth["lag"]
    )


def right_law(p: CracklePattern, truth: dict[str, Any]) -> bool:
    coefficients = {k[len("coef:") :]: v for k, v in p.metrics.items() if k.startswith("coef:")}
    return (
        coefficients == truth["coefficients"]
        and p.metrics.get("constant") == truth["constant"]
        and sorted(p.details.get("violations", [])) == sorted(truth["violations"])
    )


def describe(p: CracklePattern) -> str:
    keys = ("change_index", "lag", "constant", "p_value", "correlation", "information_coefficient")
    shown = {
        k: float(f"{v:.4g}") for k, v in p.metrics.items() if k in keys or k.startswith("coef:")
    }
    details = {k: v for k, v in p.details.items() if k != "violations"}
    if "violations" in p.details:
        details["violations"] = len(p.details["violations"])
    return f"[{p.kind.value}] {p.description} metrics={shown} details={details}"


@dataclass(frozen=True)
class RecallCase:
    name: str
    case_id: int
    kind: PatternKind
    make: Callable[[np.random.Generator, int], Planted]
    size: Callable[[Sizes], int]
    right: Callable[[CracklePattern, dict[str, Any]], bool]
    of_kind: Callable[[CracklePattern], bool]


def _kind(kind: PatternKind) -> Callable[[CracklePattern], bool]:
    return lambda p: p.kind is kind


RECALL_CASES = (
    RecallCase(
        "outlier +10sd",
        1,
        PatternKind.OUTLIER,
        make_outlier,
        lambda s: s.outlier,
        right_outlier,
        _kind(PatternKind.OUTLIER),
    ),
    RecallCase(
        "shift sd 1->3",
        2,
        PatternKind.DISTRIBUTION_SHIFT,
        make_shift,
        lambda s: s.shift,
        right_shift,
        _kind(PatternKind.DISTRIBUTION_SHIFT),
    ),
    RecallCase(
        "dependence y=x^2",
        3,
        PatternKind.DEPENDENCE,
        make_dependence,
        lambda s: s.dependence,
        right_dependence,
        _kind(PatternKind.DEPENDENCE),
    ),
    RecallCase(
        "flow x->y lag 2",
        4,
        PatternKind.INFORMATION_FLOW,
        make_flow,
        lambda s: s.flow,
        right_flow,
        _kind(PatternKind.INFORMATION_FLOW),
    ),
    RecallCase(
        "law in-out-dropped",
        5,
        PatternKind.CONSERVATION,
        make_law,
        lambda s: s.law,
        right_law,
        is_law,
    ),
)
NULL_CASES: tuple[tuple[str, int, Callable[[np.random.Generator, int], Planted]], ...] = (
    ("null gaussian", 6, make_null_gauss),
    ("null uniform", 7, make_null_uniform),
)


def cool(planted: Planted) -> tuple[PatternReport, float]:
    kiln = Kiln(PROFILE)
    kiln.add_matrix(planted.values, planted.names, labels(planted.values.shape[0]))
    started = time.perf_counter()
    report = kiln.cool()
    return report, time.perf_counter() - started


def run_recall(case: RecallCase, seed: int, sizes: Sizes) -> RecallSeed:
    planted = case.make(np.random.default_rng([seed, case.case_id]), case.size(sizes))
    report, seconds = cool(planted)
    of_kind = [p for p in report if case.of_kind(p)]
    right = [p for p in of_kind if case.right(p, planted.truth)]
    found = bool(right)
    other = [p for p in report if p.kind in TESTED_KINDS and p.kind is not case.kind]
    shown = of_kind if not found else [p for p in of_kind if p not in right]
    return RecallSeed(
        seed=seed,
        found=found,
        wrong_place=not found and bool(of_kind),
        extra=len(of_kind) - min(len(right), 1),
        other_tested=len(other),
        seconds=seconds,
        tests_run=report.tests_run,
        reported=[describe(p) for p in shown + other],
    )


class _Sensor(CrackleTask):
    """The README's example task."""

    def __init__(self, reading: float, sid: str) -> None:
        self.reading, self.sid = reading, sid

    def fire(self) -> TaskOutput:
        return TaskOutput(
            self.reading, {"value": self.reading, "is_anomaly": float(self.reading > 40)}
        )

    def label(self) -> str:
        return self.sid


def run_readme() -> RecallSeed:
    """The README example, verbatim (fast_cooling, every detector): sensor-3 flagged."""
    kiln = Kiln(ThermalProfile.fast_cooling())
    for reading, sid in [(22.5, "sensor-1"), (23.1, "sensor-2"), (45.2, "sensor-3")]:
        kiln.fire_and_record(_Sensor(reading, sid))
    started = time.perf_counter()
    report = kiln.cool()
    seconds = time.perf_counter() - started
    truth = {"task": "sensor-3", "metric": "value"}
    outliers = [p for p in report if p.kind is PatternKind.OUTLIER]
    right = [p for p in outliers if right_outlier(p, truth)]
    return RecallSeed(
        seed=0,
        found=bool(right),
        wrong_place=not right and bool(outliers),
        extra=len(outliers) - min(len(right), 1),
        other_tested=sum(p.kind in TESTED_KINDS for p in report),
        seconds=seconds,
        tests_run=report.tests_run,
        reported=[describe(p) for p in outliers if p not in right],
    )


def run_null(
    case_id: int, make: Callable[[np.random.Generator, int], Planted], seed: int, n: int
) -> NullSeed:
    planted = make(np.random.default_rng([seed, case_id]), n)
    report, seconds = cool(planted)
    by_kind = {kind.value: sum(p.kind is kind for p in report) for kind in TESTED_KINDS}
    laws = sum(is_law(p) for p in report)
    single = sum(p.kind is PatternKind.CONSERVATION and not is_law(p) for p in report)
    return NullSeed(
        seed=seed,
        tests_run=report.tests_run,
        false_tested=sum(by_kind.values()),
        by_kind=by_kind,
        outliers=sum(p.kind is PatternKind.OUTLIER for p in report),
        laws=laws,
        single_conservation=single,
        seconds=seconds,
        reported=[describe(p) for p in report if p.kind is not PatternKind.OUTLIER],
    )


# --- statistics ---------------------------------------------------------------------------
def _binom_cdf(k: int, n: int, p: float) -> float:
    if k < 0:
        return 0.0
    if k >= n or p <= 0.0:
        return 1.0
    if p >= 1.0:
        return 0.0
    log_p, log_q = math.log(p), math.log1p(-p)
    total = 0.0
    for i in range(k + 1):
        log_term = (
            math.lgamma(n + 1)
            - math.lgamma(i + 1)
            - math.lgamma(n - i + 1)
            + i * log_p
            + (n - i) * log_q
        )
        total += math.exp(log_term)
    return min(total, 1.0)


def _solve(f: Callable[[float], float], target: float) -> float:
    """p in [0, 1] with f(p) = target, f decreasing in p (bisection)."""
    lo, hi = 0.0, 1.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if f(mid) > target:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def clopper_pearson(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Exact two-sided confidence interval of a binomial proportion."""
    alpha = 1.0 - level
    lower = 0.0 if k == 0 else _solve(lambda p: _binom_cdf(k - 1, n, p), 1.0 - alpha / 2)
    upper = 1.0 if k == n else _solve(lambda p: _binom_cdf(k, n, p), alpha / 2)
    return lower, upper


# --- summaries ----------------------------------------------------------------------------
@dataclass
class RecallSummary:
    case: str
    seeds: int
    found: int
    recall: float
    recall_ci95: tuple[float, float]
    wrong_place: int
    mean_extra: float
    mean_other_tested: float
    mean_tests_run: float
    mean_cool_ms: float
    verdict: str
    misses: list[RecallSeed]
    extras: list[RecallSeed]


def summarize_recall(case: str, rows: list[RecallSeed], judge: bool) -> RecallSummary:
    n = len(rows)
    found = sum(r.found for r in rows)
    recall = found / n
    verdict = ("PASS" if recall >= RECALL_TARGET else "FAIL") if judge else "info"
    return RecallSummary(
        case=case,
        seeds=n,
        found=found,
        recall=recall,
        recall_ci95=clopper_pearson(found, n),
        wrong_place=sum(r.wrong_place for r in rows),
        mean_extra=sum(r.extra for r in rows) / n,
        mean_other_tested=sum(r.other_tested for r in rows) / n,
        mean_tests_run=sum(r.tests_run for r in rows) / n,
        mean_cool_ms=1e3 * sum(r.seconds for r in rows) / n,
        verdict=verdict,
        misses=[r for r in rows if not r.found],
        extras=[r for r in rows if r.found and r.reported],
    )


@dataclass
class NullSummary:
    case: str
    seeds: int
    values_per_seed: int
    mean_tests_run: float
    seeds_with_false_tested: int
    familywise_rate: float  # = mean false-discovery proportion under the complete null
    familywise_ci95: tuple[float, float]
    mean_false_per_seed: float
    false_per_test: float
    any_rate_by_kind: dict[str, float]
    law_rate: float
    single_conservation_rate: float
    outlier_seed_rate: float
    mean_outliers_per_seed: float
    nothing_but_outliers_rate: float  # share of seeds with no pattern but OUTLIER
    nothing_rate: float  # share of seeds with no pattern of these kinds at all
    mean_cool_ms: float
    verdict: str
    examples: list[NullSeed]


def summarize_null(
    case: str, rows: list[NullSeed], values_per_seed: int, fdr: float, judge: bool
) -> NullSummary:
    n = len(rows)
    hit = sum(r.false_tested > 0 for r in rows)
    ci = clopper_pearson(hit, n)
    rate = hit / n
    # BH bounds the FDR (= the family-wise rate here) by fdr; fail only when the measured
    # rate is significantly above it (the lower end of its 95% interval exceeds fdr).
    if not judge:
        verdict = "info"
    elif rate <= fdr:
        verdict = "PASS"
    elif ci[0] <= fdr:
        verdict = "PASS~"  # above fdr, but not significantly with this many seeds
    else:
        verdict = "FAIL"
    tests = sum(r.tests_run for r in rows)
    quiet = [r for r in rows if r.false_tested == 0 and r.laws == 0 and r.single_conservation == 0]
    return NullSummary(
        case=case,
        seeds=n,
        values_per_seed=values_per_seed,
        mean_tests_run=tests / n,
        seeds_with_false_tested=hit,
        familywise_rate=rate,
        familywise_ci95=ci,
        mean_false_per_seed=sum(r.false_tested for r in rows) / n,
        false_per_test=sum(r.false_tested for r in rows) / max(tests, 1),
        any_rate_by_kind={
            kind.value: sum(r.by_kind[kind.value] > 0 for r in rows) / n for kind in TESTED_KINDS
        },
        law_rate=sum(r.laws > 0 for r in rows) / n,
        single_conservation_rate=sum(r.single_conservation > 0 for r in rows) / n,
        outlier_seed_rate=sum(r.outliers > 0 for r in rows) / n,
        mean_outliers_per_seed=sum(r.outliers for r in rows) / n,
        nothing_but_outliers_rate=len(quiet) / n,
        nothing_rate=sum(r.outliers == 0 for r in quiet) / n,
        mean_cool_ms=1e3 * sum(r.seconds for r in rows) / n,
        verdict=verdict,
        examples=[r for r in rows if r.reported],
    )


# --- output -------------------------------------------------------------------------------
def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[k]) for r in rows)) for k, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(lines)


def render(recalls: list[RecallSummary], nulls: list[NullSummary], fdr: float) -> str:
    out = [
        "Recall (found at the right place; target >= "
        f"{RECALL_TARGET:.2f}; 95% Clopper-Pearson interval)",
        _table(
            [
                "case",
                "seeds",
                "recall",
                "95% CI",
                "wrong",
                "extra",
                "other",
                "tests",
                "cool ms",
                "",
            ],
            [
                [
                    s.case,
                    str(s.seeds),
                    f"{s.recall:.3f} ({s.found}/{s.seeds})",
                    f"[{s.recall_ci95[0]:.3f}, {s.recall_ci95[1]:.3f}]",
                    str(s.wrong_place),
                    f"{s.mean_extra:.2f}",
                    f"{s.mean_other_tested:.2f}",
                    f"{s.mean_tests_run:.1f}",
                    f"{s.mean_cool_ms:.2f}",
                    s.verdict,
                ]
                for s in recalls
            ],
        ),
        "",
        f"Null (nothing planted; fdr = {fdr:g}; FWER = share of seeds with >= 1 false tested "
        "discovery = mean FDP)",
        _table(
            [
                "case",
                "seeds",
                "tests",
                "FWER (=FDR)",
                "95% CI",
                "false/seed",
                "false/test",
                "shift",
                "dep",
                "flow",
                "law",
                "1-metric cons",
                "outlier seeds",
                "outliers/seed",
                "silent*",
                "silent",
                "cool ms",
                "",
            ],
            [
                [
                    s.case,
                    str(s.seeds),
                    f"{s.mean_tests_run:.1f}",
                    f"{s.familywise_rate:.3f} ({s.seeds_with_false_tested}/{s.seeds})",
                    f"[{s.familywise_ci95[0]:.3f}, {s.familywise_ci95[1]:.3f}]",
                    f"{s.mean_false_per_seed:.3f}",
                    f"{s.false_per_test:.4f}",
                    *(f"{s.any_rate_by_kind[k.value]:.3f}" for k in TESTED_KINDS),
                    f"{s.law_rate:.3f}",
                    f"{s.single_conservation_rate:.3f}",
                    f"{s.outlier_seed_rate:.3f}",
                    f"{s.mean_outliers_per_seed:.2f}",
                    f"{s.nothing_but_outliers_rate:.3f}",
                    f"{s.nothing_rate:.3f}",
                    f"{s.mean_cool_ms:.2f}",
                    s.verdict,
                ]
                for s in nulls
            ],
        ),
        "",
        "wrong = seeds where the kind was reported but never at the right place; extra = mean "
        "other patterns of the case's kind per seed; other = mean tested patterns of other kinds "
        "per seed (all false); tests = report.tests_run; shift/dep/flow/law/1-metric cons/outlier "
        "seeds = share of seeds with >= 1 such pattern; silent* = share of seeds with no pattern "
        "except outliers; silent = no pattern at all. Expected Gaussian outlier rate: "
        f"{_expected_outliers(nulls)}.",
    ]
    return "\n".join(out)


def _expected_outliers(nulls: list[NullSummary]) -> str:
    # Robust z of Gaussian data ~ |N(0, 1)| (the MAD is consistent): P(|z| > outlier_z).
    values = nulls[0].values_per_seed
    tail = math.erfc(PROFILE.outlier_z / math.sqrt(2))
    mean = values * tail
    return f"{mean:.2f} per seed, P(>= 1) ~ {-math.expm1(-mean):.2f} ({values} values x {tail:.2e})"


def diagnosis(recalls: list[RecallSummary], nulls: list[NullSummary]) -> str:
    lines: list[str] = []
    for s in recalls:
        if s.misses:
            lines.append(f"{s.case}: {len(s.misses)} miss(es); reported instead:")
            for r in s.misses[:MAX_EXAMPLES]:
                lines.append(
                    f"  seed {r.seed}: " + ("; ".join(r.reported) or "nothing of the kind")
                )
        if s.extras:
            lines.append(f"{s.case}: {len(s.extras)} seed(s) found it plus other patterns, e.g.:")
            for r in s.extras[:MAX_EXAMPLES]:
                lines.append(f"  seed {r.seed}: " + "; ".join(r.reported))
    for n in nulls:
        if n.examples:
            lines.append(f"{n.case}: {len(n.examples)} seed(s) with a non-outlier pattern, e.g.:")
            for e in n.examples[:MAX_EXAMPLES]:
                lines.append(f"  seed {e.seed}: " + "; ".join(e.reported))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--seeds", type=int, default=None, help="seeds per case (default 100)")
    parser.add_argument("--quick", action="store_true", help="5 seeds, small sizes")
    parser.add_argument("--json", type=Path, default=None, help="write every result here")
    args = parser.parse_args(argv)
    seeds = args.seeds if args.seeds is not None else (5 if args.quick else 100)
    if seeds < 1:
        parser.error("--seeds must be >= 1")
    sizes = Sizes.make(args.quick)
    judge = not args.quick
    started = time.perf_counter()
    backend: str = _backend.name
    if backend == "native":
        backend += f" ({_backend.build_profile()} build)"
    print(
        f"crackle_runtime {crackle_runtime.__version__}, backend {backend}, "
        f"{'quick' if args.quick else 'full'} mode, {seeds} seeds, "
        f"fdr {PROFILE.fdr:g}, outlier_z {PROFILE.outlier_z:g}, permutations "
        f"{PROFILE.permutations}"
    )
    recalls = [summarize_recall("README sensors", [run_readme()], judge)]
    for case in RECALL_CASES:
        rows = [run_recall(case, seed, sizes) for seed in range(seeds)]
        recalls.append(summarize_recall(case.name, rows, judge))
    nulls = [
        summarize_null(
            name,
            [run_null(case_id, make, s, sizes.null) for s in range(seeds)],
            5 * sizes.null,
            PROFILE.fdr,
            judge,
        )
        for name, case_id, make in NULL_CASES
    ]
    total = time.perf_counter() - started
    print()
    print(render(recalls, nulls, PROFILE.fdr))
    text = diagnosis(recalls, nulls)
    if text:
        print()
        print(text)
    print()
    print(f"total runtime {total:.1f} s")
    if args.json is not None:
        payload = {
            "seeds": seeds,
            "mode": "quick" if args.quick else "full",
            "sizes": asdict(sizes),
            "backend": _backend.name,
            "fdr": PROFILE.fdr,
            "total_seconds": total,
            "recall": [asdict(s) for s in recalls],
            "null": [asdict(s) for s in nulls],
        }
        args.json.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    failed = [s.case for s in recalls if s.verdict == "FAIL"]
    failed += [s.case for s in nulls if s.verdict == "FAIL"]
    if failed:
        print("FAILED: " + ", ".join(failed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
