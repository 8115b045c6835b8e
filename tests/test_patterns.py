"""Patterns, kinds and reports (SPEC §6)."""

from __future__ import annotations

import json
import math
import pickle
from typing import Any

import numpy as np
import pytest

from crackle_runtime import CracklePattern, Kiln, PatternKind, PatternReport, ThermalProfile
from crackle_runtime.patterns import TaskLabels


def test_kind_display_text_is_the_seeds() -> None:
    assert str(PatternKind.CLUSTERING) == "clustering"
    assert str(PatternKind.PHASE_TRANSITION) == "phase transition"
    assert str(PatternKind.CONSERVATION) == "conservation law"
    assert str(PatternKind.CORRELATION) == "correlation"
    assert PatternKind.OUTLIER.value == "outlier"
    assert PatternKind.DISTRIBUTION_SHIFT.value == "distribution shift"
    assert PatternKind.DEPENDENCE.value == "dependence"
    assert PatternKind.INFORMATION_FLOW.value == "information flow"
    assert isinstance(PatternKind.CLUSTERING, str)


@pytest.mark.parametrize(("given", "expected"), [(1.7, 1.0), (-0.2, 0.0), (0.25, 0.25)])
def test_confidence_is_clamped(given: float, expected: float) -> None:
    pattern = CracklePattern(PatternKind.CORRELATION, "x", ("a",), given)
    assert pattern.confidence == expected


def test_task_labels_read_the_source_when_first_used() -> None:
    source = ["a", "b", "c", "d"]
    every = TaskLabels(source, 3)
    chosen = TaskLabels(source, 4, bytes([1, 0, 1, 1]))
    source.append("e")  # a kiln's labels are appended to after the pattern is made
    assert len(every) == 3 and len(chosen) == 3
    assert every == ("a", "b", "c") and ("a", "b", "c") == every
    assert chosen == ("a", "c", "d") and chosen != ("a", "c") and chosen != ["a", "c", "d"]
    assert hash(chosen) == hash(("a", "c", "d"))
    assert chosen[1] == "c" and chosen[-1] == "d" and chosen[:2] == ("a", "c")
    assert list(chosen) == ["a", "c", "d"] and "d" in chosen and "b" not in chosen
    assert repr(chosen) == repr(("a", "c", "d"))
    assert pickle.loads(pickle.dumps(chosen)) == ("a", "c", "d")
    assert TaskLabels(source, 0) == () and not TaskLabels(source, 2, bytes(2))
    # what a tuple supports, with tuples as results
    assert chosen + ("x",) == ("a", "c", "d", "x")  # noqa: RUF005 (the operator is tested)
    assert ("x",) + chosen == ("x", "a", "c", "d")  # noqa: RUF005
    assert chosen * 2 == 2 * chosen == ("a", "c", "d") * 2
    assert every < chosen and chosen > ("a", "b") and sorted([chosen, every]) == [every, chosen]
    with pytest.raises(TypeError):
        _ = chosen < ["a"]
    with pytest.raises(ValueError, match="count"):
        TaskLabels(source, 9)
    with pytest.raises(ValueError, match="chosen"):
        TaskLabels(source, 3, bytes(2))


def test_patterns_with_task_labels_equal_those_with_tuples() -> None:
    lazy = CracklePattern(PatternKind.CONSERVATION, "d", TaskLabels(["x", "y"], 2), 0.5)
    plain = CracklePattern(PatternKind.CONSERVATION, "d", ("x", "y"), 0.5)
    assert isinstance(lazy.involved_tasks, TaskLabels)
    assert lazy == plain and hash(lazy) == hash(plain)
    assert lazy.to_dict() == plain.to_dict()
    assert lazy.with_metric("k", 1.0).involved_tasks == ("x", "y")


def test_a_cooled_kiln_extended_keeps_its_patterns_tasks() -> None:
    rng = np.random.default_rng(5)
    kiln = Kiln(ThermalProfile.default().only(PatternKind.CONSERVATION))
    kiln.add_matrix(10.0 + 0.01 * rng.normal(size=(50, 1)), ["steady"])
    before = next(p for p in kiln.cool() if p.kind == PatternKind.CONSERVATION)
    kiln.extend()
    new = [f"new-{i}" for i in range(5)]
    kiln.add_matrix(10.0 + 0.01 * rng.normal(size=(5, 1)), ["steady"], new)
    after = next(p for p in kiln.cool() if p.kind == PatternKind.CONSERVATION)
    assert len(before.involved_tasks) == 50 and "new-0" not in before.involved_tasks
    assert after.involved_tasks == tuple(kiln.labels)


def test_pattern_is_an_immutable_value_with_builders() -> None:
    pattern = CracklePattern(PatternKind.CLUSTERING, "d", ["a", "b"], 0.5, {"k": 1.0})
    assert pattern.involved_tasks == ("a", "b")
    with pytest.raises(AttributeError):
        pattern.confidence = 0.9  # type: ignore[misc]
    added = pattern.with_metric("extra", 2.0)
    assert added.metrics == {"k": 1.0, "extra": 2.0}
    assert pattern.metrics == {"k": 1.0}
    replaced = pattern.with_metrics({"only": 3.0})
    assert replaced.metrics == {"only": 3.0}
    assert pattern == CracklePattern(PatternKind.CLUSTERING, "d", ("a", "b"), 0.5, {"k": 1.0})


def test_to_dict_is_json_safe() -> None:
    pattern = CracklePattern(
        PatternKind.PHASE_TRANSITION,
        "d",
        ("a",),
        0.5,
        {"p_value": math.nan, "shift": math.inf, "delta": 1.5},
        {"metric": "m", "nested": (1, math.nan)},
    )
    data = pattern.to_dict()
    assert data == {
        "kind": "phase transition",
        "description": "d",
        "involved_tasks": ["a"],
        "confidence": 0.5,
        "metrics": {"p_value": None, "shift": None, "delta": 1.5},
        "details": {"metric": "m", "nested": [1, None]},
    }
    json.dumps(data, allow_nan=False)


def test_printing_a_report_shows_its_summary() -> None:
    pattern = CracklePattern(PatternKind.OUTLIER, "task 'a' is an outlier", ("a",), 1.0)
    report = PatternReport([pattern], task_count=4, tests_run=0)
    assert str(report) == report.summary()
    assert str(report).startswith("outliers: 1 task(s); most severe: 'a'")
    assert repr(report) == "PatternReport(1 patterns, tasks=4)"


def test_outliers_rank_by_severity_above_clusters() -> None:
    mild = CracklePattern(PatternKind.OUTLIER, "mild", ("a",), 1.0, {"severity": 4.2})
    severe = CracklePattern(PatternKind.OUTLIER, "severe", ("b",), 1.0, {"severity": 9.0})
    pair = CracklePattern(PatternKind.CLUSTERING, "pair", ("c", "d"), 1.0)
    report = PatternReport([pair, mild, severe], task_count=4)
    assert [p.description for p in report.ranked()] == ["severe", "mild", "pair"]


def test_report_sorts_by_confidence_then_detector_order_then_discovery() -> None:
    a = CracklePattern(PatternKind.CORRELATION, "corr-1", (), 0.8)
    b = CracklePattern(PatternKind.CLUSTERING, "clu", (), 0.8)
    c = CracklePattern(PatternKind.CORRELATION, "corr-2", (), 0.8)
    d = CracklePattern(PatternKind.OUTLIER, "out", (), 0.95)
    report = PatternReport([a, b, c, d], task_count=4, tests_run=3, fdr=0.01)
    assert [p.description for p in report] == ["out", "clu", "corr-1", "corr-2"]
    assert isinstance(report, list)
    summary = report.summary()
    assert "4 pattern(s) across 4 task(s)" in summary
    assert "q = 0.01 over 3 test(s)" in summary
    # the renderings list patterns ranked: relationships, outliers, then clusters
    parsed = json.loads(report.to_json())
    assert [p["description"] for p in parsed["patterns"]] == ["corr-1", "corr-2", "out", "clu"]
    assert parsed["tests_run"] == 3


def _change(metric: str, label: str, index: int, before: float, after: float, p: float) -> Any:
    return CracklePattern(
        PatternKind.DISTRIBUTION_SHIFT,
        f"distribution of {metric!r} changed at task {label!r}",
        (),
        0.3,
        {"median_before": before, "median_after": after, "change_index": index, "p_value": p},
        {"metric": metric, "change_label": label},
    )


def test_a_significant_regression_outranks_every_outlier_and_leads_the_overview() -> None:
    outliers = [
        CracklePattern(
            PatternKind.OUTLIER,
            f"task 't{i}' is an outlier",
            (f"t{i}",),
            1.0,
            {"z:x": 10.0 + i, "p_value": 1e-12},
            {"task": f"t{i}"},
        )
        for i in range(15)
    ]
    regression = _change("build_s", "t3000", 3000, 100.0, 125.0, 1e-84)
    fix = _change("queue", "t3002", 3002, 10.0, 5.0, 1e-6)
    later = _change("tests", "t4000", 4000, 812.0, 830.0, 1e-3)
    law = CracklePattern(
        PatternKind.CONSERVATION,
        "law 'a - b = 0' holds across 4990 of 5000 tasks",
        (),
        0.99,
        {"p_value": 1e-30},
        {"law": "a - b = 0", "violations": ["t7", "t8"]},
    )
    report = PatternReport(
        [*outliers, later, law, regression, fix],
        task_count=5000,
        change_positions={id(regression): 3000, id(fix): 3002, id(later): 4000},
    )
    assert report.ranked()[0] is regression
    assert all(report.ranked().index(o) > report.ranked().index(later) for o in outliers)
    overview = report.overview()
    assert str(overview) == "\n".join(overview.lines())
    assert str(overview).startswith("incident 1: at task 't3000': build_s")
    assert "t4999" not in repr(overview) and repr(overview).startswith("<Overview: 2 incident")
    first, second = overview.incidents
    assert [c.metric for c in first.changes] == ["build_s", "queue"]
    assert first.label == "t3000" and first.position == 3000
    assert math.isclose(first.changes[0].relative, 0.25)
    assert [c.metric for c in second.changes] == ["tests"]
    assert overview.laws[0].violators == ("t7", "t8")
    assert overview.outlier_count == 15 and len(overview.outliers) == 10
    assert overview.outliers[0].details["task"] == "t14"  # the most severe first
    lines = report.summary().splitlines()
    assert lines[0] == "incident 1: at task 't3000': build_s 100 → 125 (+25%), queue 10 → 5 (-50%)"
    assert lines[1] == "incident 2: at task 't4000': tests 812 → 830 (+2%)"
    assert lines[2] == "law: a - b = 0; violated by 2 task(s): 't7', 't8'"
    assert lines[3].startswith("outliers: 15 task(s); most severe: 't14', 't13'")
    assert report.to_table().splitlines()[0] == lines[0]
    parsed = json.loads(report.to_json())
    assert parsed["overview"]["incidents"][0]["changes"][0]["relative"] == 0.25
    assert parsed["overview"]["outliers"]["count"] == 15
    assert parsed["patterns"][0]["description"] == regression.description
    page = report.to_html(figures=False)
    assert page.index("incident 1") < page.index("<table>")


def test_the_overview_lists_no_metric_that_changes_or_drifts_as_conserved() -> None:
    def conserved(metric: str, cv: float) -> CracklePattern:
        return CracklePattern(
            PatternKind.CONSERVATION,
            f"metric '{metric}' is conserved across 1000 tasks",
            (),
            1.0 - cv,
            {"coefficient_of_variation": cv},
            {"metric": metric},
        )

    steady, ramping, stepping = (
        conserved("records_in", 0.04),
        conserved("cpu_pct", 0.26),
        (conserved("records_out", 0.05)),
    )
    fell = _change("records_out", "t716", 716, 996.0, 953.0, 1e-14)
    law = CracklePattern(
        PatternKind.CONSERVATION, "law 'a - b = 0'", (), 1.0, {}, {"law": "a - b = 0"}
    )
    patterns = [steady, ramping, stepping, fell, law]
    report = PatternReport(
        patterns, task_count=1000, change_positions={id(fell): 716}, drifting=["cpu_pct", "a"]
    )
    overview = report.overview()
    assert [law.description for law in overview.laws] == ["a - b = 0"]
    # conserved quantities are one line of steady metrics, not laws
    assert [(q.metric, q.cv) for q in overview.steady] == [("records_in", 0.04)]
    assert "steady (spread well under the mean, no change): 'records_in' (cv 0.04)" in str(overview)
    assert overview.to_dict()["steady"] == [{"metric": "records_in", "cv": 0.04}]
    # the patterns themselves stay (SPEC §6); only the overview leaves them out
    assert ramping in report and stepping in report
    # a kiln: a metric ramping from ~43 to ~81 keeps cv < 0.3 (a conservation pattern) but
    # drifts, so the overview does not call it conserved
    rng = np.random.default_rng(3)
    cpu = np.r_[np.full(600, 43.0), np.linspace(43.0, 81.0, 400)] + rng.normal(0, 2, 1000)
    load = rng.normal(100.0, 3.0, 1000)
    kiln = Kiln(ThermalProfile.default().only(PatternKind.CONSERVATION, "distribution_shift"))
    kiln.add_matrix(np.c_[cpu, load], ["cpu_pct", "load"])
    cooled = kiln.cool()
    assert {p.details["metric"] for p in cooled.by_kind(PatternKind.CONSERVATION)} == {
        "cpu_pct",
        "load",
    }
    assert [q.metric for q in cooled.overview().steady] == ["load"]
    assert cooled.overview().laws == ()


def test_a_regression_and_its_fix_are_two_incidents() -> None:
    """A latency regression for 40 of 2,000 requests: its start and its end are within the
    incident window (3% of the tasks) of each other, but the same metric changing again is
    the fix, a second incident, not a second change of the first."""
    rose = _change("latency_ms", "r1200", 1200, 119.0, 224.0, 1e-12)
    errors = _change("errors", "r1200", 1200, 0.0, 2.0, 1e-10)
    fell = _change("latency_ms", "r1241", 1241, 224.0, 120.0, 1e-9)
    back = _change("errors", "r1234", 1234, 2.0, 0.0, 1e-9)
    patterns = [rose, errors, fell, back]
    positions = {id(p): p.metrics["change_index"] for p in patterns}
    report = PatternReport(patterns, task_count=2000, change_positions=positions)
    first, second = report.overview().incidents
    assert (first.position, second.position) == (1200, 1234)
    assert [c.metric for c in first.changes] == ["latency_ms", "errors"]
    assert {c.metric for c in second.changes} == {"latency_ms", "errors"}
    lines = report.summary().splitlines()
    assert lines[0].startswith("incident 1: at task 'r1200': latency_ms 119 → 224 (+88%)")
    assert lines[1].startswith("incident 2: at task 'r1234':")


def test_an_incident_says_which_measure_moved() -> None:
    # a status code whose 500s went from 1% to 6%: the medians tie at 200, the means move;
    # a change of spread is worded with the standard deviations, as its description is
    def shift(metric: str, changed: str, **values: float) -> CracklePattern:
        return CracklePattern(
            PatternKind.DISTRIBUTION_SHIFT,
            metric,
            (),
            1.0,
            {"change_index": 100, "p_value": 1e-20, **values},
            {"metric": metric, "change_label": "t100", "changed": changed},
        )

    status = shift(
        "status", "level", median_before=200, median_after=200, mean_before=203, mean_after=218
    )
    jitter = shift("jitter", "spread", median_before=5, median_after=5.1, std_before=1, std_after=3)
    positions = {id(status): 100, id(jitter): 100}
    report = PatternReport([status, jitter], task_count=1000, change_positions=positions)
    assert report.summary().splitlines()[0] == (
        "incident 1: at task 't100': jitter spread 1 → 3 (+200%), status mean 203 → 218 (+7%)"
    )
    changes = json.loads(report.to_json())["overview"]["incidents"][0]["changes"]
    assert [c["measure"] for c in changes] == ["spread", "mean"]


def test_an_empty_report_says_nothing_was_found() -> None:
    assert PatternReport().summary().splitlines()[0] == "nothing found"


def test_report_to_pandas_columns() -> None:
    pytest.importorskip("pandas")
    report = PatternReport([CracklePattern(PatternKind.CLUSTERING, "c", ("a", "b"), 0.4)])
    frame = report.to_pandas()
    assert list(frame.columns) == [
        "kind",
        "description",
        "confidence",
        "involved_tasks",
        "metrics",
        "details",
    ]
    assert frame.loc[0, "involved_tasks"] == ["a", "b"]


def test_report_html_escapes_descriptions() -> None:
    report = PatternReport([CracklePattern(PatternKind.CLUSTERING, "<b>x</b>", (), 0.4)])
    page = report.to_html()
    assert "&lt;b&gt;x&lt;/b&gt;" in page
    assert page.startswith("<!DOCTYPE html>")
