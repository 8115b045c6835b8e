"""The cooling loop (``crackle_runtime.detectors._cooling``): one pass over the detector
registry within one time budget, then one Benjamini–Hochberg pass over every p-valued test.

- ``benjamini_hochberg`` against scipy's ``false_discovery_control`` and by hand.
- The report: ``tests_run`` counts every p-valued test, ``skipped`` (too few tasks, a
  detector lacking data) and ``incomplete`` (a spent budget, a kernel cut by its deadline,
  or CoolingTimeoutError with ``on_timeout="raise"``); metrics left out, and index
  columns (ids, counters, row numbers, timestamps), take part in no pattern, with a note.
- For every pattern kind, a kiln with a planted signal gives patterns of that kind worded
  as SPEC §6 documents, with exactly the ``details`` keys the kind's wording module sets.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import scipy.stats
from numpy.typing import NDArray

from crackle_runtime import Kiln, ThermalProfile, _backend
from crackle_runtime.detectors import _cooling
from crackle_runtime.detectors._cooling import benjamini_hochberg, cool, run_order
from crackle_runtime.detectors._data import DetectionData
from crackle_runtime.detectors._registry import REGISTRY
from crackle_runtime.errors import CoolingTimeoutError
from crackle_runtime.patterns import DETECTOR_ORDER, CracklePattern, PatternKind
from crackle_runtime.report import PatternReport

NAN = math.nan
TESTED_KINDS = (
    PatternKind.DISTRIBUTION_SHIFT,
    PatternKind.DEPENDENCE,
    PatternKind.INFORMATION_FLOW,
)


def data_of(columns: NDArray[np.float64], names: list[str]) -> DetectionData:
    """Detection data of a (metrics, tasks) matrix, tasks labelled t0, t1, ..."""
    labels = [f"t{i}" for i in range(columns.shape[1])]
    return DetectionData(labels, names, np.ascontiguousarray(columns, dtype=np.float64))


def cool_now(
    data: DetectionData,
    profile: ThermalProfile | None = None,
    on_timeout: str = "skip",
    left_out: dict[str, str] | None = None,
    started: float | None = None,
) -> PatternReport:
    return cool(
        data,
        profile or ThermalProfile.default(),
        time.perf_counter() if started is None else started,
        on_timeout,
        left_out or {},
    )


def named_metrics(pattern: CracklePattern) -> set[str]:
    """Every metric name a pattern's details mention."""
    details = pattern.details
    names = set(details.get("metrics", []))
    names.update(details[key] for key in ("metric", "source", "target") if key in details)
    return names


# --- Benjamini–Hochberg ------------------------------------------------------------------------


@pytest.mark.parametrize("size", [1, 2, 10, 100, 1000])
@pytest.mark.parametrize("q", [0.01, 0.05, 0.2])
def test_benjamini_hochberg_matches_scipy(size: int, q: float) -> None:
    rng = np.random.default_rng([size, int(q * 100)])
    for _ in range(20):
        # a mixture of null (uniform) and signal (near 0) p-values, in random order
        signal = rng.random(size) < rng.uniform(0.0, 0.5)
        p = np.where(signal, rng.beta(0.1, 10.0, size), rng.random(size))
        adjusted = scipy.stats.false_discovery_control(p, method="bh")
        rejected = benjamini_hochberg(p, q)
        assert rejected.dtype == np.bool_
        assert rejected.tolist() == (adjusted <= q).tolist()


@pytest.mark.parametrize(
    ("p_values", "q", "expected"),
    [
        ([], 0.05, []),
        # all below their step: every one rejected
        ([1e-6, 1e-5, 1e-4], 0.05, [True, True, True]),
        # none below: 0.2 > 0.05 / 3, 0.5 > 0.1 / 3, 0.9 > 0.05
        ([0.9, 0.2, 0.5], 0.05, [False, False, False]),
        # ties: steps 0.0125, 0.025, 0.0375, 0.05; the three 0.01s are all rejected
        ([0.01, 0.5, 0.01, 0.01], 0.05, [True, False, True, True]),
        # ties above their own step are rejected with a larger p below its step (step-up):
        # sorted 0.03 x 4 against 0.0125 .. 0.05, the 4th is below 0.05
        ([0.03, 0.03, 0.03, 0.03], 0.05, [True, True, True, True]),
        # step-up: 0.04 and 0.045 exceed their steps (0.025, 0.0375) but 0.049 <= 0.05
        ([0.04, 0.045, 0.001, 0.049], 0.05, [True, True, True, True]),
        ([0.04, 0.045, 0.001, 0.9], 0.05, [False, False, True, False]),
        # a p-value equal to its step is rejected
        ([0.05], 0.05, [True]),
        ([0.05000000000000001], 0.05, [False]),
    ],
)
def test_benjamini_hochberg_by_hand(p_values: list[float], q: float, expected: list[bool]) -> None:
    assert benjamini_hochberg(np.array(p_values, dtype=np.float64), q).tolist() == expected


# --- the report ---------------------------------------------------------------------------------


def test_tests_run_counts_every_p_valued_test(kernels: ModuleType) -> None:
    # Three independent metrics of 200 tasks and a fourth with two steps: 2 change tests
    # (one per change found), 6 dependence tests (every pair: |r| < 0.7) and 12 flow tests
    # (every ordered pair).
    rng = np.random.default_rng(3)
    steps = rng.normal(size=200) + np.repeat([0.0, 4.0, 0.0], [70, 60, 70])
    columns = np.vstack([rng.normal(size=(3, 200)), steps])
    profile = ThermalProfile.default()
    report = cool_now(data_of(columns, ["a", "b", "c", "steps"]), profile)
    assert report.tests_run == 2 + 6 + 12
    # the same count from the kernels: one test per change found, else per ``tested`` flag
    counted = 0
    for detector in REGISTRY:
        result = kernels.run_detector(detector.name, columns, None, detector.params(profile))
        if detector.name == "distribution_shift":
            counted += len(result["change_index"])
        else:
            counted += int(np.count_nonzero(result.get("tested", [])))
    assert counted == report.tests_run
    assert report.skipped == [] and report.incomplete == []
    # in run order: the outlier detector reads the change points and the phase transition
    # the cycles the change-point search removed, so they run after it
    assert list(report.timings) == [detector.name for detector in run_order()]
    order = [detector.name for detector in run_order()]
    assert order[4:7] == ["distribution_shift", "phase_transition", "outlier"]
    assert sorted(report.timings) == sorted(detector.name for detector in REGISTRY)


@pytest.mark.parametrize("tasks", [0, 1, 2])
def test_too_few_tasks_skip_every_enabled_detector(tasks: int) -> None:
    columns = np.arange(2.0 * tasks).reshape(2, tasks)
    report = cool_now(data_of(columns, ["a", "b"]))
    reason = f"{tasks} task(s) recorded, fewer than min_tasks_for_detection = 3"
    assert report.skipped == [(kind, reason) for kind in DETECTOR_ORDER]
    assert list(report) == [] and report.incomplete == [] and report.tests_run == 0
    assert report.timings == {}
    only = ThermalProfile.default().only(PatternKind.OUTLIER, PatternKind.CLUSTERING)
    report = cool_now(data_of(columns, ["a", "b"]), only)
    assert report.skipped == [
        (PatternKind.CLUSTERING, reason),
        (PatternKind.OUTLIER, reason),
    ]


def test_detectors_lacking_data_are_skipped_with_the_reason() -> None:
    # 7 tasks: too few for a change (2 x 4), dependence (30 pairs) or flow (50 values).
    columns = np.random.default_rng(4).normal(size=(2, 7))
    report = cool_now(data_of(columns, ["a", "b"]))
    assert report.skipped == [
        (
            PatternKind.DISTRIBUTION_SHIFT,
            "no metric has 8 or more varying values (4 per segment)",
        ),
        (PatternKind.DEPENDENCE, "no metric pair has 30 or more tasks with both and |r| below 0.7"),
        (PatternKind.INFORMATION_FLOW, "no metric pair has 50 or more tasks with both"),
    ]
    assert report.incomplete == [] and report.tests_run == 0
    # Every metric with fewer than 3 values: no outlier can be scored.
    sparse = np.full((2, 6), NAN)
    sparse[0, :2] = [1.0, 2.0]
    sparse[1, 3:5] = [5.0, 9.0]
    report = cool_now(data_of(sparse, ["a", "b"]), ThermalProfile.default().only("outlier"))
    assert report.skipped == [(PatternKind.OUTLIER, "no metric has 3 or more values")]


def test_a_detector_with_nothing_to_read_is_neither_run_nor_skipped() -> None:
    # One metric: correlation has no pair to read (it does not apply); dependence and flow
    # run and find no pair to test.
    report = cool_now(data_of(np.random.default_rng(5).normal(size=(1, 60)), ["a"]))
    assert PatternKind.CORRELATION not in {kind for kind, _ in report.skipped}
    assert "correlation" not in report.timings
    assert [kind for kind, _ in report.skipped] == [
        PatternKind.DEPENDENCE,
        PatternKind.INFORMATION_FLOW,
    ]
    assert report.tests_run == 0  # the one metric is searched and has no change


def test_a_spent_budget_leaves_every_detector_incomplete() -> None:
    profile = ThermalProfile.default()
    data = data_of(np.random.default_rng(6).normal(size=(2, 60)), ["a", "b"])
    spent = time.perf_counter() - profile.max_cooling_duration  # 0 seconds left
    report = cool_now(data, profile, started=spent)
    assert report.incomplete == [
        (detector.kind, "time budget exhausted before it started") for detector in run_order()
    ]
    assert list(report) == [] and report.tests_run == 0 and report.skipped == []
    assert report.timings == {}
    with pytest.raises(CoolingTimeoutError, match="time budget exhausted before clustering"):
        cool_now(data, profile, on_timeout="raise", started=spent)


@dataclass
class DeadlineRecorder:
    """A kernel module whose ``run_detector`` records each detector's deadline and raises
    CoolingTimeoutError for the detectors in ``cut``."""

    kernels: ModuleType
    cut: set[str]
    deadlines: dict[str, float] = field(default_factory=dict)

    def run_detector(
        self,
        name: str,
        columns: Any,
        metrics: Any = None,
        params: Any = None,
        complete: Any = None,
    ) -> dict[str, Any]:
        self.deadlines[name] = float((params or {})["deadline"])
        if name in self.cut:
            raise CoolingTimeoutError(f"time budget exhausted during {name}")
        result: dict[str, Any] = self.kernels.run_detector(name, columns, metrics, params, complete)
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self.kernels, name)


def test_a_kernel_cut_by_its_deadline_is_incomplete(
    kernels: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder = DeadlineRecorder(kernels, cut={"dependence"})
    monkeypatch.setattr(_backend, "kernels", lambda: recorder)
    profile = ThermalProfile.default()
    data = data_of(np.random.default_rng(7).normal(size=(3, 120)), ["a", "b", "c"])
    report = cool_now(data, profile)
    assert report.incomplete == [(PatternKind.DEPENDENCE, "not finished within 60 s")]
    assert report.skipped == []
    assert report.tests_run == 6  # the flow tests still count (no metric has a change)
    # each kernel gets the budget left, which only shrinks
    deadlines = [recorder.deadlines[detector.name] for detector in run_order()]
    assert all(0.0 < d <= profile.max_cooling_duration for d in deadlines)
    assert deadlines == sorted(deadlines, reverse=True)
    with pytest.raises(CoolingTimeoutError, match="during dependence"):
        cool_now(data, profile, on_timeout="raise")


def test_left_out_metrics_take_part_in_no_pattern_and_are_noted() -> None:
    rng = np.random.default_rng(8)
    x = rng.normal(size=60)
    columns = np.vstack([x, rng.normal(size=60), x + 0.01 * rng.normal(size=60)])
    names = ["x", "y", "shadow"]
    profile = ThermalProfile.fast_cooling()
    # Without leaving it out, 'shadow' (a copy of x) correlates with x: the test can fail.
    everything = cool_now(data_of(columns, names), profile)
    assert any("shadow" in named_metrics(pattern) for pattern in everything)
    report = cool_now(data_of(columns, names), profile, left_out={"shadow": "declared an index"})
    assert report.notes[0] == "'shadow' takes part in no detector: declared an index"
    assert report.metric_count == 2
    for pattern in report:
        assert "shadow" not in named_metrics(pattern)
        assert "shadow" not in pattern.description
        assert not any("shadow" in key for key in pattern.metrics)
    # through a kiln, with the profile's ignored metrics
    kiln = Kiln(profile.ignoring("shadow"))
    kiln.add_matrix(columns.T, names)
    report = kiln.cool()
    assert "'shadow' takes part in no detector: ignored by the profile" in report.notes
    assert all("shadow" not in named_metrics(pattern) for pattern in report)


def test_index_columns_take_part_in_no_detector() -> None:
    rng = np.random.default_rng(9)
    n = 200
    step = np.r_[rng.normal(0.0, 1.0, 100), rng.normal(3.0, 1.0, 100)]
    # a start timestamp recorded in completion order: not monotone, rho ~ 1 with the row
    started = 1.7e9 + 10.0 * np.arange(n) + rng.uniform(0.0, 25.0, n)
    columns = np.vstack([np.arange(float(n)), started, 2.0 * np.arange(float(n)), step])
    names = ["row", "started", "bytes_total", "level"]
    roles = _backend.kernels().column_roles(columns)
    assert roles["index"].tolist() == [True, True, True, False]
    assert roles["counter"].tolist() == [True, False, True, False]
    report = cool_now(data_of(columns, names))
    # one change test (of 'level'); no pair of measured metrics for dependence or flow
    assert report.tests_run == 1
    assert [kind for kind, _ in report.skipped] == [
        PatternKind.DEPENDENCE,
        PatternKind.INFORMATION_FLOW,
    ]
    shifts = report.by_kind(PatternKind.DISTRIBUTION_SHIFT)
    assert [pattern.details["metric"] for pattern in shifts] == ["level"]
    for pattern in report:
        assert not {"row", "started", "bytes_total"} & set(named_metrics(pattern))
    assert (
        "'row' takes part in no detector: an index column (it never decreases or never "
        "increases: an id or a counter)"
    ) in report.notes
    rho = float(roles["spearman"][1])
    assert (
        f"'started' takes part in no detector: an index column (it moves with the task "
        f"order: Spearman rho = {rho:.3f} with the row position, 100% distinct values)"
    ) in report.notes
    # the same ids in clustering, correlation and phase transition: no pattern names them
    assert not report.by_kind(PatternKind.CORRELATION)


# --- the wording of every kind ------------------------------------------------------------------


@dataclass(frozen=True)
class Planted:
    """A kiln with one planted signal, the detector that must find it, the wording its
    patterns must have (SPEC §6) and the ``details`` keys its wording module sets."""

    detector: str
    names: list[str]
    columns: Callable[[np.random.Generator], NDArray[np.float64]]
    wording: str
    details: frozenset[str]
    check: Callable[[CracklePattern, re.Match[str]], None]


def _clusters(rng: np.random.Generator) -> NDArray[np.float64]:
    near, far = rng.normal(0.0, 0.1, (2, 20)), rng.normal(50.0, 0.1, (2, 20))
    return np.hstack([near, far])


def _check_cluster(pattern: CracklePattern, match: re.Match[str]) -> None:
    assert int(match["k"]) == len(pattern.involved_tasks) == 20
    assert match["avg"] == f"{pattern.metrics['avg_distance']:.3f}"


def _step(rng: np.random.Generator) -> NDArray[np.float64]:
    step = np.concatenate([10.0 + rng.normal(0, 0.1, 20), 20.0 + rng.normal(0, 0.1, 20)])
    return step[None, :]


def _check_step(pattern: CracklePattern, match: re.Match[str]) -> None:
    assert match["metric"] == pattern.details["metric"] == "latency"
    assert match["shift"] == f"{pattern.metrics['shift_magnitude'] * 100:.1f}"
    assert pattern.details["change_label"] == "t20"


def _conserved(rng: np.random.Generator) -> NDArray[np.float64]:
    return np.vstack([100.0 + rng.normal(0.0, 0.5, 40), rng.normal(size=40)])


def _check_conserved(pattern: CracklePattern, match: re.Match[str]) -> None:
    assert match["metric"] == pattern.details["metric"] == "energy"
    assert int(match["n"]) == len(pattern.involved_tasks) == 40
    assert match["sum"] == f"{pattern.metrics['total']:.3f}"


def _records(rng: np.random.Generator) -> NDArray[np.float64]:
    records_in = rng.integers(100, 1000, 200).astype(float)
    dropped = rng.integers(0, 50, 200).astype(float)
    records_out = records_in - dropped
    records_out[[3, 77]] -= 150.0  # two violators
    return np.vstack([records_in, records_out, dropped])


def _check_law(pattern: CracklePattern, match: re.Match[str]) -> None:
    assert match["law"] == pattern.details["law"] == "records_in - records_out - dropped = 0"
    assert pattern.details["metrics"] == ["records_in", "records_out", "dropped"]
    assert pattern.details["violations"] == ["t3", "t77"]
    assert (int(match["k"]), int(match["n"])) == (198, 200) == (len(pattern.involved_tasks), 200)


def _correlated(rng: np.random.Generator) -> NDArray[np.float64]:
    a = rng.normal(size=50)
    return np.vstack([a, -2.0 * a + 0.1 * rng.normal(size=50)])


def _check_correlated(pattern: CracklePattern, match: re.Match[str]) -> None:
    assert match["sign"] == "negative"
    assert [match["a"], match["b"]] == pattern.details["metrics"] == ["a", "b"]
    assert match["r"] == f"{pattern.metrics['correlation']:.3f}"


def _spike(rng: np.random.Generator) -> NDArray[np.float64]:
    latency = rng.normal(100.0, 1.0, 50)
    latency[17] = 1100.0
    return latency[None, :]


def _check_spike(pattern: CracklePattern, match: re.Match[str]) -> None:
    assert match["task"] == pattern.details["task"] == "t17" and pattern.details["task_index"] == 17
    assert [match["metric"]] == pattern.details["metrics"] == ["latency"]
    assert pattern.involved_tasks == ("t17",)
    assert math.isnan(pattern.metrics["p_value"])  # a rule, not a test
    assert match["severity"] == f"{pattern.metrics['severity']:.1f}"
    assert math.isfinite(pattern.metrics["severity:latency"])


def _spread(rng: np.random.Generator) -> NDArray[np.float64]:
    spread = np.concatenate([rng.normal(0.0, 1.0, 150), rng.normal(0.0, 3.0, 150)])
    return spread[None, :]


def _check_spread(pattern: CracklePattern, match: re.Match[str]) -> None:
    assert match["metric"] == pattern.details["metric"] == "build_s"
    assert match["change"] == pattern.details["change_label"]
    assert abs(int(pattern.details["change_label"][1:]) - 150) <= 15
    assert pattern.details["direction"] == "up" and pattern.details["changed"] == "spread"


def _square(rng: np.random.Generator) -> NDArray[np.float64]:
    x = rng.normal(size=300)
    return np.vstack([x, x**2 + 0.1 * rng.normal(size=300)])


def _check_square(pattern: CracklePattern, match: re.Match[str]) -> None:
    assert (match["a"], match["b"]) == ("x", "y") and pattern.details["metrics"] == ["x", "y"]
    assert match["info"] == f"{pattern.metrics['information_coefficient']:.2f}"


def _lagged(rng: np.random.Generator) -> NDArray[np.float64]:
    cause = rng.normal(size=300)
    return np.vstack([cause, np.r_[0.0, cause[:-1]] + 0.3 * rng.normal(size=300)])


def _check_lagged(pattern: CracklePattern, match: re.Match[str]) -> None:
    details = pattern.details
    assert (match["source"], match["target"]) == (details["source"], details["target"])
    assert (details["source"], details["target"]) == ("cause", "effect")
    assert int(match["lag"]) == details["lag"] == 1
    assert details["metrics"] == ["cause", "effect"]


PLANTED = [
    Planted(
        "clustering",
        ["x", "y"],
        _clusters,
        r"(?P<k>\d+) tasks clustered together in metric space "
        r"\(avg distance: (?P<avg>\d+\.\d{3})\)",
        frozenset(),
        check=_check_cluster,
    ),
    Planted(
        "phase_transition",
        ["latency"],
        _step,
        r"metric '(?P<metric>[^']+)' shifted by (?P<shift>\d+\.\d)% between first and second "
        r"half of tasks",
        frozenset({"metric", "change_label"}),
        check=_check_step,
    ),
    Planted(
        "conservation",
        ["energy", "noise"],
        _conserved,
        r"metric '(?P<metric>[^']+)' is conserved across (?P<n>\d+) tasks "
        r"\(sum: (?P<sum>-?\d+\.\d{3}), std_dev: \d+\.\d{3}\)",
        frozenset({"metric"}),
        check=_check_conserved,
    ),
    Planted(
        "conservation_laws",
        ["records_in", "records_out", "dropped"],
        _records,
        r"law '(?P<law>.+ = -?[\d.e+-]+)' holds across (?P<k>\d+) of (?P<n>\d+) tasks "
        r"\(residual std: \S+\)",
        frozenset({"metrics", "law", "violations"}),
        check=_check_law,
    ),
    Planted(
        "correlation",
        ["a", "b"],
        _correlated,
        r"strong (?P<sign>positive|negative) correlation between '(?P<a>[^']+)' and "
        r"'(?P<b>[^']+)' \(r = (?P<r>-?\d\.\d{3})\)",
        frozenset({"metrics"}),
        check=_check_correlated,
    ),
    Planted(
        "outlier",
        ["latency"],
        _spike,
        r"task '(?P<task>[^']+)' is an outlier on '(?P<metric>[^']+)' "
        r"\(severity (?P<severity>\d+\.\d), [+-]\S+ from the median, (?P<scale>[a-z ]+)\)",
        frozenset({"metrics", "task", "task_index"}),
        check=_check_spike,
    ),
    Planted(
        "distribution_shift",
        ["build_s"],
        _spread,
        r"spread of '(?P<metric>[^']+)' (?:rose|fell) ×\S+ \(std \S+ → \S+\) at task "
        r"'(?P<change>[^']+)' \(p = \S+\)",
        frozenset(
            {
                "metric",
                "change_label",
                "direction",
                "changed",
                "segment_start_label",
                "segment_end_label",
            }
        ),
        check=_check_spread,
    ),
    Planted(
        "dependence",
        ["x", "y"],
        _square,
        r"'(?P<a>[^']+)' and '(?P<b>[^']+)' are related nonlinearly \(information coefficient "
        r"(?P<info>\d\.\d{2}) vs \|r\| = \d\.\d{2}, MI \d+\.\d{3} bits, between their "
        r"prewhitened values\)",
        frozenset({"metrics"}),
        check=_check_square,
    ),
    Planted(
        "information_flow",
        ["cause", "effect"],
        _lagged,
        r"'(?P<source>[^']+)' leads '(?P<target>[^']+)' by (?P<lag>\d+) task\(s\): transfer "
        r"entropy \d+\.\d{3} bits vs \d+\.\d{3} bits in reverse",
        frozenset({"source", "target", "lag", "metrics"}),
        check=_check_lagged,
    ),
]
BY_DETECTOR = {planted.detector: planted for planted in PLANTED}


def test_every_detector_and_kind_has_a_planted_kiln() -> None:
    assert list(BY_DETECTOR) == [detector.name for detector in REGISTRY]
    kinds = {detector.kind for detector in REGISTRY if detector.name in BY_DETECTOR}
    assert kinds == set(PatternKind)


def test_the_documented_shift_example() -> None:
    # SPEC §6 / the seed's README: "metric 'value' shifted by 38.5% ..."
    kiln = Kiln(ThermalProfile.fast_cooling().only(PatternKind.PHASE_TRANSITION))
    for reading, sensor in [(22.5, "sensor-1"), (23.1, "sensor-2"), (45.2, "sensor-3")]:
        kiln.add_entry(sensor, {"value": reading})
    (pattern,) = kiln.cool()
    assert pattern.description == (
        "metric 'value' shifted by 38.5% between first and second half of tasks"
    )
    assert pattern.details == {"metric": "value", "change_label": "sensor-3"}


@pytest.mark.parametrize("planted", PLANTED, ids=[planted.detector for planted in PLANTED])
def test_a_planted_signal_is_worded_as_documented(planted: Planted) -> None:
    detector = next(detector for detector in REGISTRY if detector.name == planted.detector)
    columns = planted.columns(np.random.default_rng(10))
    kiln = Kiln(ThermalProfile.default().only(detector.kind))
    kiln.add_matrix(columns.T, planted.names, [f"t{i}" for i in range(columns.shape[1])])
    report = kiln.cool()
    assert report.incomplete == []
    patterns = report.by_kind(detector.kind)
    assert patterns, f"{planted.detector} found nothing in its planted kiln"
    for pattern in patterns:
        match = re.fullmatch(planted.wording, pattern.description)
        assert match is not None, pattern.description
        assert set(pattern.details) == planted.details, pattern.details
        planted.check(pattern, match)
        if detector.kind in TESTED_KINDS:
            # kept by the report's Benjamini–Hochberg pass: p <= q k / m <= q
            assert pattern.metrics["p_value"] <= report.fdr
            assert report.tests_run >= 1


# --- dependence and flow read prewhitened series ------------------------------------------------


def test_prewhitened_is_the_ar_residual_over_present_values() -> None:
    column = np.array([1.0, NAN, 3.0, 2.0, 5.0])
    data = data_of(np.vstack([column, [1.0, 2.0, NAN, NAN, NAN]]), ["x", "short"])
    white = data.prewhitened()
    # present values 1, 3, 2, 5: four values fit AR order 0 (at most n // 5): centered
    np.testing.assert_allclose(white.column(0), [-1.75, NAN, 0.25, -0.75, 2.25], rtol=1e-14)
    assert np.isnan(white.column(1)).all()  # fewer than 3 values: nothing to test
    assert list(white.names) == ["x", "short"] and white.task_count == 5
    # An AR(1) series of 400 values: order >= 1, the residuals nearly white, none lost.
    rng = np.random.default_rng(3)
    series = _ar1_pair(rng, 0.8, 400)
    residuals = data_of(series, ["a", "b"]).prewhitened()
    for k in range(2):
        e = residuals.column(k)
        assert not np.isnan(e).any()
        assert abs(np.corrcoef(e[:-1], e[1:])[0, 1]) < 0.1
        assert abs(np.corrcoef(series[k][:-1], series[k][1:])[0, 1]) > 0.7


def _ar1_pair(rng: np.random.Generator, phi: float, n: int) -> NDArray[np.float64]:
    series = np.zeros((2, n))
    noise = rng.normal(size=(2, n))
    for t in range(1, n):
        series[:, t] = phi * series[:, t - 1] + noise[:, t]
    return series


@pytest.mark.parametrize("case", ["ar1 0.9", "random walks", "shared trend", "shared daily cycle"])
def test_no_dependence_or_flow_from_autocorrelation_or_drift(case: str) -> None:
    """Independent autocorrelated or drifting pairs, or a shared daily cycle (20 seeds, n =
    300): at most one run with a DEPENDENCE or INFORMATION_FLOW pattern (on the raw series:
    27-100%; a daily cycle gave flow in 10% of runs with AR(1) prewhitening)."""
    profile = ThermalProfile.default().only(PatternKind.DEPENDENCE, PatternKind.INFORMATION_FLOW)
    false = 0
    for seed in range(20):
        rng = np.random.default_rng(seed)
        if case == "ar1 0.9":
            columns = _ar1_pair(rng, 0.9, 300)
        elif case == "random walks":
            columns = np.cumsum(rng.normal(size=(2, 300)), axis=1)
        elif case == "shared daily cycle":
            cycle = np.sin(2 * np.pi * np.arange(300) / 24.0)
            columns = np.vstack([3 * cycle, 2 * cycle]) + _ar1_pair(rng, 0.5, 300)
        else:
            columns = np.linspace(0.0, 8.0, 300) + _ar1_pair(rng, 0.5, 300)
        false += len(cool_now(data_of(columns, ["a", "b"]), profile)) > 0
    assert false <= 1


def test_lead_lag_flow_is_found_in_the_right_direction_on_prewhitened_series() -> None:
    profile = ThermalProfile.default().only(PatternKind.INFORMATION_FLOW)
    right = 0
    for seed in range(10):
        rng = np.random.default_rng(seed)
        x = _ar1_pair(rng, 0.5, 300)[0]
        y = np.zeros(300)
        noise = rng.normal(size=300)
        for t in range(1, 300):
            y[t] = 0.5 * y[t - 1] + 0.8 * x[t - 1] + noise[t]
        flows = cool_now(data_of(np.vstack([x, y]), ["cause", "effect"]), profile)
        right += [(p.details["source"], p.details["lag"]) for p in flows] == [("cause", 1)]
    assert right >= 9


# --- outliers within change-point segments ------------------------------------------------------


def test_outliers_are_scored_within_the_segments_between_change_points(kernels: ModuleType) -> None:
    """A log-normal metric whose level triples half-way with x5 bursts on five tasks: one
    scale for both regimes hides every burst; within the two segments the change detector
    finds, the bursts stand out. Each segment's flagged tasks are exactly those of the
    kernel run on that segment alone, its multiplicity the metric's 600 values."""
    rng = np.random.default_rng(4)
    values = rng.lognormal(3.0, 0.2, 600)
    values[300:] *= 3.0
    planted = [40, 150, 290, 420, 555]
    values[planted] *= 5.0
    data = data_of(values[None, :], ["latency"])
    report = cool_now(data, ThermalProfile.default())
    changes = [p for p in report if p.kind == PatternKind.DISTRIBUTION_SHIFT]
    assert [int(p.metrics["change_index"]) for p in changes] == [300]
    flagged = sorted(int(p.details["task_index"]) for p in report if p.kind == PatternKind.OUTLIER)
    expected = []
    for start, end in ((0, 300), (300, 600)):
        alone = kernels.run_detector("outlier", values[None, start:end], None, {"family": 600})
        expected.extend((np.asarray(alone["task"]) + start).tolist())
    assert flagged == sorted(expected)
    assert set(planted) <= set(flagged)
    # one scale for the whole metric (distribution shift off): the bursts are not found
    only = ThermalProfile.default().only(PatternKind.OUTLIER)
    hidden = {int(p.details["task_index"]) for p in cool_now(data, only)}
    assert not set(planted) & hidden


def test_a_random_walk_is_read_against_its_neighbours(kernels: ModuleType) -> None:
    """A 4,000-step random walk (the change-point detector's phi >= 0.8: persistent) with a
    spike of 25 step sizes at task 2,000 and a burst of 3 tasks at 3,000: against the walk's
    global median its widest excursion would be dozens of outliers and the spike ordinary
    (in windows of 30 values, as before, the spike stood out but the walk's own wanderings
    did too); against the mean of the values 1 to 3 tasks before and after each, the spike
    and the whole burst are found, and nothing else."""
    rng = np.random.default_rng(12)
    walk = np.cumsum(rng.normal(0.0, 2.0, 4000)) + 1000.0
    walk[2000] += 50.0
    walk[3000:3003] += 40.0
    data = data_of(walk[None, :], ["mem_mb"])
    report = cool_now(data, ThermalProfile.default())
    assert report.notes and any("'mem_mb' drifts" in note for note in report.notes)
    outliers = report.by_kind(PatternKind.OUTLIER)
    flagged = {int(p.details["task_index"]) for p in outliers}
    assert flagged == {2000, 3000, 3001, 3002}
    spike = next(p for p in outliers if p.details["task_index"] == 2000)
    expected = walk[2000] - (walk[1999] + walk[2001]) / 2
    assert spike.metrics["deviation:mem_mb"] == pytest.approx(expected, rel=1e-12)
    assert f"{expected:+.4g} from the mean of the values 1 task before and after it" in (
        spike.description
    )
    middle = next(p for p in outliers if p.details["task_index"] == 3001)
    assert "from the mean of the values 2 tasks before and after it" in middle.description
    # one scale for the whole walk (distribution shift off): the spike is lost
    only = ThermalProfile.default().only(PatternKind.OUTLIER)
    assert 2000 not in {int(p.details["task_index"]) for p in cool_now(data, only)}


def test_persistent_metrics_keep_the_nominal_false_outliers(kernels: ModuleType) -> None:
    """Random walks, AR(1) 0.9 and a log-normal metric driven by an AR(1) 0.95 load (2,000
    tasks each, 10 seeds): against their neighbours the fences keep about their nominal
    0.1 false outlier per metric (a walk's excursions gave 0.9 per metric against its
    median). The log-normal one is read on the log scale, against the geometric mean of its
    neighbours: its spread grows with its level, and the raw differences gave 42 false
    outliers per metric."""
    false = 0
    for seed in range(10):
        rng = np.random.default_rng(seed)
        walk = np.cumsum(rng.normal(size=2000))
        ar = np.zeros(2000)
        load = np.zeros(2000)
        noise = rng.normal(size=(2, 2000))
        for t in range(1, 2000):
            ar[t] = 0.9 * ar[t - 1] + noise[0, t]
            load[t] = 0.95 * load[t - 1] + noise[1, t] * math.sqrt(1 - 0.95**2)
        columns = np.vstack([walk, ar, 100.0 * np.exp(load)])
        report = cool_now(data_of(columns, ["walk", "ar", "latency"]), ThermalProfile.default())
        false += len(report.by_kind(PatternKind.OUTLIER))
    assert false <= 6
    # a spike of the log-normal metric: x3 its neighbours
    latency = 100.0 * np.exp(load)
    latency[1000] *= 3.0
    outliers = cool_now(data_of(latency[None, :], ["latency"]), ThermalProfile.default())
    spike = [p for p in outliers.by_kind(PatternKind.OUTLIER) if p.details["task_index"] == 1000]
    assert spike and "from the geometric mean of the values" in spike[0].description
    reach = int(spike[0].description.split("geometric mean of the values ")[1].split()[0])
    mean = math.sqrt(latency[1000 - reach] * latency[1000 + reach])
    assert spike[0].metrics["deviation:latency"] == pytest.approx(latency[1000] - mean, rel=1e-9)


def test_a_persistent_metric_is_read_at_its_edges_and_across_gaps(kernels: ModuleType) -> None:
    """The first and last values (the latest task of a memory gauge) are read against their
    one neighbour, unless that neighbour is the spike; a value's neighbours are the values
    r tasks away, so with 40% of the values absent a walk gives no false outlier at its gaps
    and the wording names the tasks read; values near the largest float are read too."""
    for at, found, word in ((0, 0, "after"), (1, 1, "mean"), (1999, 1999, "before")):
        walk = np.cumsum(np.random.default_rng(5).normal(size=2000)) + 500.0
        walk[at] += 100.0
        outliers = cool_now(data_of(walk[None, :], ["mem"]), ThermalProfile.default())
        flagged = outliers.by_kind(PatternKind.OUTLIER)
        assert [int(p.details["task_index"]) for p in flagged] == [found]
        if word != "mean":
            assert f"from the value 1 task {word} it" in flagged[0].description
    false = 0
    for seed in range(5):
        rng = np.random.default_rng(seed)
        whole = np.cumsum(rng.normal(size=2000)) + 100.0
        walk = np.where(rng.random(2000) < 0.4, np.nan, whole)
        walk[997:1004] = whole[997:1004]  # the spike's neighbours present
        walk[1000] += 60.0
        report = cool_now(data_of(walk[None, :], ["mem"]), ThermalProfile.default())
        outliers = report.by_kind(PatternKind.OUTLIER)
        spike = [p for p in outliers if p.details["task_index"] == 1000]
        assert spike
        words = re.search(
            r"mean of the values (\d) tasks? before and after it", spike[0].description
        )
        assert words is not None
        reach = int(words[1])
        mean = (walk[1000 - reach] + walk[1000 + reach]) / 2
        assert spike[0].metrics["deviation:mem"] == pytest.approx(walk[1000] - mean)
        false += len(outliers) - 1
    assert false <= 1
    load = np.zeros(400)
    noise = np.random.default_rng(0).normal(size=400)
    for t in range(1, 400):
        load[t] = 0.95 * load[t - 1] + noise[t] * math.sqrt(1 - 0.95**2)
    huge = np.exp(load) * (1.7e308 / np.exp(load).max())
    cool_now(data_of(huge[None, :], ["m"]), ThermalProfile.default())  # no overflow


def test_the_spread_versus_level_slope_chooses_the_log_reading() -> None:
    """A load-driven latency (log-normal: its spread grows with its level) is read in logs;
    a CPU following the same load with noise of its own in its units, whole numbers, values
    at or below 0 and short series are read as they are."""
    rng = np.random.default_rng(3)
    load = np.zeros(2000)
    for t in range(1, 2000):
        load[t] = 0.95 * load[t - 1] + rng.normal() * math.sqrt(1 - 0.95**2)
    latency = 100.0 * np.exp(load + rng.normal(0.0, 0.1, 2000))
    cpu = 40.0 + 10.0 * load + rng.normal(0.0, 1.0, 2000)
    grows = _cooling._spread_grows_with_level
    assert grows(latency)
    assert not grows(cpu)
    assert not grows(np.round(latency))
    assert not grows(latency - 200.0)
    assert not grows(latency[:80])


def test_a_value_stands_out_from_its_neighbours_on_both_sides() -> None:
    """A spike moves both one-sided differences; a level jump the change-point search did
    not cut moves one only, and reads as no outlier."""
    values = np.array([0.0, 0.1, -0.1, 0.0, 9.0, 0.1, 0.0, 10.0, 10.1, 9.9, 10.0])
    tasks = np.arange(values.size)
    pieces = _cooling._neighbour_pieces(values, tasks, 0, values.size, logs=False)
    assert [reach for *_, reach in pieces] == [1, 2, 3]
    statistic, deviation, sides, _ = pieces[0]
    assert np.isnan(statistic[0]) and np.isnan(statistic[-1])
    assert deviation[4] == pytest.approx(9.0 - (0.0 + 0.1) / 2)
    assert statistic[4] == pytest.approx(deviation[4] / 2)  # halved: finite for any values
    assert sides[4]  # the spike: +9.0 and +8.9
    assert not sides[6] and not sides[7]  # the jump: 0 -> 10 on one side only
    logs = _cooling._neighbour_pieces(values + 20.0, tasks, 0, values.size, logs=True)
    assert logs[0][1][4] == pytest.approx(29.0 - math.sqrt(20.0 * 20.1))
