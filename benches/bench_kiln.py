"""P4, P6–P9: the kiln — correlation matrix, cooling, firing, and cooling's peak memory.

Cooling runs the four seed detectors (clustering, phase transition, conservation,
correlation: ``ThermalProfile.default().only(...)``) with a time budget large enough that no
detector is cut short; a report that still comes back ``incomplete`` is flagged, since its
timing would not measure the whole work.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from _data import task_metrics
from _harness import (
    BASELINE,
    FAIL,
    Config,
    Group,
    Row,
    Skip,
    Target,
    backend,
    best_of,
    detector_breakdown,
    flag,
    kernels_present,
    native_or_skip,
    require_kernels,
    same_arrays,
    same_report,
)

DETECTOR_KERNELS = ("run_detector",)
_BACKEND_NAMES = {"native": "native", "python": "NumPy"}
COOLING_BUDGET = 900.0  # seconds: far above any run here, so nothing is skipped


def seed_profile() -> Any:
    from crackle_runtime import PatternKind, ThermalProfile

    return (
        ThermalProfile.default()
        .only(
            PatternKind.CLUSTERING,
            PatternKind.PHASE_TRANSITION,
            PatternKind.CONSERVATION,
            PatternKind.CORRELATION,
        )
        .with_max_cooling_duration(COOLING_BUDGET)
    )


def filled_kiln(values: np.ndarray[Any, Any], names: list[str], profile: Any = None) -> Any:
    from crackle_runtime import Kiln

    kiln = Kiln(profile if profile is not None else seed_profile())
    kiln.add_matrix(values, names)
    return kiln


def _require(which: str, kernels: tuple[str, ...] = DETECTOR_KERNELS) -> None:
    """Skip unless backend ``which`` ("native" or "python") has ``kernels``."""
    from crackle_runtime import _backend

    if which == "native":
        require_kernels(native_or_skip(), kernels, "native")
    else:
        require_kernels(_backend.numpy_module(), kernels, "NumPy")


def default_profile() -> Any:
    """The default profile (every detector) with a budget nothing here reaches."""
    from crackle_runtime import ThermalProfile

    return ThermalProfile.default().with_max_cooling_duration(COOLING_BUDGET)


def _cool_rows(
    group: Group,
    values: np.ndarray[Any, Any],
    names: list[str],
    which: str,
    repeats: int,
    profile: Any = None,
    suffix: str = "",
) -> tuple[Row, Any]:
    """Time ``cool()`` of a freshly filled kiln (filling untimed) under backend ``which``
    with ``profile`` (default: the seed detectors)."""
    label = "crackle native cool()" if which == "native" else "crackle NumPy backend cool()"
    _require(which)
    with backend(which), kernels_present(_BACKEND_NAMES[which]):
        seconds, report = best_of(
            lambda kiln: kiln.cool(),
            repeats,
            setup=lambda: (filled_kiln(values, names, profile),),
        )
    row = group.add(label + suffix, seconds=seconds, note=_report_note(report))
    if which == "native" and report is not None:
        row.note += "; " + detector_breakdown(report)
    return row, report


def _fail_if_incomplete(row: Row, report: Any) -> None:
    """A cut-short cooling did not do the whole work: its timing cannot pass."""
    if report is not None and report.incomplete:
        row.verdict = FAIL


def _report_note(report: Any) -> str:
    kinds: dict[str, int] = {}
    for pattern in report:
        kinds[str(pattern.kind.value)] = kinds.get(str(pattern.kind.value), 0) + 1
    found = ", ".join(f"{count} {kind}" for kind, count in kinds.items()) or "no patterns"
    note = f"{len(report)} patterns ({found})"
    if report.incomplete:
        note += f"; INCOMPLETE: {report.incomplete}"
    return note


# --- P4 ----------------------------------------------------------------------------------


def p4(config: Config) -> list[Group]:
    n = config.size(1_000_000, 20_000)
    m = 64 if not config.quick else 16
    rng = np.random.default_rng(41)
    # Correlated metrics: 8 latent factors, offset far from zero (stable centring matters).
    values = rng.normal(size=(n, 8)) @ rng.normal(size=(8, m)) + rng.normal(size=(n, m))
    values += rng.uniform(0.0, 1e3, size=m)
    names = [f"metric_{k}" for k in range(m)]
    group = Group("P4", f"correlation_matrix {n:,} x {m}")
    seconds, expected = best_of(lambda: np.corrcoef(values, rowvar=False), config.repeats)
    baseline = group.add("np.corrcoef", seconds=seconds, verdict=BASELINE)
    kiln = filled_kiln(values, names)
    rows = []
    for which, repeats in (("native", config.repeats), ("python", min(config.repeats, 2))):
        label = (
            "crackle native correlation_matrix"
            if which == "native"
            else "crackle NumPy backend correlation_matrix"
        )
        try:
            _require(which)
            with backend(which), kernels_present(_BACKEND_NAMES[which]):
                seconds, matrix = best_of(kiln.correlation_matrix, repeats)
        except Skip as exc:
            group.skip(label, str(exc))
            continue
        rows.append(
            group.add(label, seconds=seconds, correct=flag(same_arrays(matrix.values, expected)))
        )
    if rows and rows[0].implementation.startswith("crackle native"):
        group.compare(rows[:1], baseline, Target("time", 1.0, "<= 1x np.corrcoef time"))
        group.compare(rows[1:], baseline)
    else:
        group.compare(rows, baseline)
    return [group]


# --- P6 ----------------------------------------------------------------------------------


def p6(config: Config) -> list[Group]:
    """cool() at 30k x 12, native against the NumPy backend: with the seed detectors (the
    profile of the kiln issue) and with the whole default profile."""
    n = config.size(30_000, 1_000)
    m = 12
    values, names = task_metrics(n, m, seed=61)
    groups = []
    for title, profile, suffix in (
        ("seed detectors", seed_profile(), ""),
        ("default profile, all detectors", default_profile(), ", all"),
    ):
        group = Group("P6", f"cool() {title}, {n:,} x {m}")
        groups.append(group)
        native: Row | None
        numpy_row: Row | None
        try:
            native, native_report = _cool_rows(
                group, values, names, "native", config.repeats, profile, suffix
            )
        except Skip as exc:
            group.skip("crackle native cool()" + suffix, str(exc))
            native = native_report = None
        try:
            numpy_row, numpy_report = _cool_rows(
                group, values, names, "python", min(config.repeats, 2), profile, suffix
            )
        except Skip as exc:
            group.skip("crackle NumPy backend cool()" + suffix, str(exc))
            numpy_row = numpy_report = None
        if not suffix:
            group.skip(
                "seed crate crackle-runtime 0.2", "the Rust seed crate is not available here"
            )
        if native is not None and numpy_row is not None:
            agrees, detail = same_report(native_report, numpy_report)
            native.correct = numpy_row.correct = flag(agrees)
            if not agrees:
                native.note += f"; differs from NumPy backend: {detail}"
            group.compare([native], numpy_row, Target("speedup", 10.0, ">= 10x faster"))
        if native is not None:
            _fail_if_incomplete(native, native_report)
    return groups


# --- P7 ----------------------------------------------------------------------------------


def p7(config: Config) -> list[Group]:
    small, large = (100_000, 1_000_000) if not config.quick else (2_000, 20_000)
    m = config.size(16, 8)
    groups = []
    for title, profile in (
        ("seed detectors", seed_profile()),
        ("default profile, all detectors", default_profile()),
    ):
        group = Group("P7", f"cool() {title}, growth {small:,} -> {large:,} x {m}")
        groups.append(group)
        try:
            _require("native")
        except Skip as exc:
            group.skip("crackle native cool()", str(exc))
            continue
        seconds = []
        complete = True
        for n, repeats in ((small, config.repeats), (large, min(config.repeats, 3))):
            values, names = task_metrics(n, m, seed=71)
            row, report = _cool_rows(group, values, names, "native", repeats, profile)
            row.implementation = f"crackle native cool(), n = {n:,}"
            seconds.append(row.seconds or math.nan)
            complete = complete and not report.incomplete
            del values, report
        exponent = math.log(seconds[1] / seconds[0]) / math.log(large / small)
        group.add(
            f"time exponent log(t_large / t_small) / log({large // small})",
            ratio=exponent,
            ratio_label="",
            target="<= 1.15",
            verdict=Target("max", 1.15, "").judge(exponent) if complete else FAIL,
        )
    return groups


# --- P8 ----------------------------------------------------------------------------------


def _trivial_task_class() -> type:
    from crackle_runtime import CrackleTask, TaskOutput

    class Trivial(CrackleTask):
        """A task whose work is only building its output: 8 metrics from one number."""

        __slots__ = ("value",)

        def __init__(self, value: float) -> None:
            self.value = value

        def fire(self) -> Any:
            v = self.value
            return TaskOutput(
                v,
                {
                    "m0": v,
                    "m1": v + 1.0,
                    "m2": v + 2.0,
                    "m3": v + 3.0,
                    "m4": v + 4.0,
                    "m5": v + 5.0,
                    "m6": v + 6.0,
                    "m7": v + 7.0,
                },
            )

    return Trivial


def p8(config: Config) -> list[Group]:
    from crackle_runtime import Kiln, ThermalProfile

    n = config.size(1_000_000, 20_000)
    trivial = _trivial_task_class()
    tasks = [trivial(float(i)) for i in range(n)]
    group = Group("P8", f"fire_all of {n:,} trivial tasks, 8 metrics")

    def bare_loop() -> list[Any]:
        outputs = []
        for task in tasks:
            outputs.append(task.fire())
        return outputs

    repeats = min(config.repeats, 3)
    seconds, outputs = best_of(bare_loop, repeats)
    baseline = group.add("bare loop: fire() + append", seconds=seconds, verdict=BASELINE)
    expected = np.array([list(output.metrics.values()) for output in outputs])
    del outputs

    def fire_all(kiln: Any) -> Any:
        kiln.fire_all(tasks)
        return kiln

    rows = {}
    for which in ("native", "python"):
        _require(which, ("fire_chunk",))
        with backend(which):
            seconds, kiln = best_of(
                fire_all, repeats, setup=lambda: (Kiln(ThermalProfile.default()),)
            )
        _, names, recorded = kiln.metric_matrix()
        agrees = kiln.task_count == n and names == [f"m{k}" for k in range(8)]
        agrees = agrees and bool(np.array_equal(recorded, expected))
        del kiln
        rows[which] = group.add(
            "Kiln.fire_all" if which == "native" else "Kiln.fire_all, NumPy backend",
            seconds=seconds,
            correct=flag(agrees),
        )
    rows["native"].note = "correct = the kiln's metric matrix equals the bare loop's outputs"
    group.compare([rows["native"]], baseline, Target("time", 3.0, "<= 3x bare loop time"))
    group.compare([rows["python"]], baseline)
    return [group]


# --- P9 ----------------------------------------------------------------------------------

_CHILD = Path(__file__).with_name("_memory_child.py")


def p9(config: Config) -> list[Group]:
    n = config.size(1_000_000, 20_000)
    m = config.size(16, 8)
    try:
        _require("native")
    except Skip as exc:
        group = Group("P9", f"peak memory of cool(), {n:,} x {m}")
        group.skip("crackle native cool()", str(exc))
        return [group]
    return [
        _p9_group(n, m, "seed", "seed detectors"),
        _p9_group(n, m, "default", "default profile, all detectors"),
    ]


def _p9_group(n: int, m: int, profile: str, title: str) -> Group:
    group = Group("P9", f"peak memory of cool() {title}, {n:,} x {m}")
    completed = subprocess.run(
        [sys.executable, str(_CHILD), str(n), str(m), "native", profile],
        capture_output=True,
        text=True,
        check=False,
        timeout=1800,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"memory child failed: {completed.stderr.strip()[-500:]}")
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    if "skip" in result:
        group.skip("crackle native cool()", result["skip"])
        return group
    matrix = float(n * m * 8)
    increase = float(result["cool_peak_increase"])
    ratio = increase / matrix
    row = group.add(
        "crackle native cool()",
        seconds=increase,
        unit="bytes",
        ratio=ratio,
        ratio_label="matrix",
        target="increase <= 2x matrix",
        verdict=Target("max", 2.0, "").judge(ratio),
        note=(
            f"peak increase during cool() = {increase / 1e6:.1f} MB over the filled kiln "
            f"(matrix {matrix / 1e6:.1f} MB; peak-hwm reset: {result['hwm_reset']}); "
            f"peak above the interpreter baseline = "
            f"{result['peak_above_baseline'] / 1e6:.1f} MB "
            f"({result['peak_above_baseline'] / matrix:.2f}x matrix); "
            f"cool took {result['cool_seconds']:.2f} s; {result['patterns']} patterns"
        ),
    )
    if result["incomplete"]:
        row.verdict = FAIL
        row.note += f"; INCOMPLETE: {result['incomplete']}"
    return group


BENCHMARKS = {"P4": p4, "P6": p6, "P7": p7, "P8": p8, "P9": p9}
