"""Patterns, kinds and reports (SPEC §6)."""

from __future__ import annotations

import json
import math

import pytest

from crackle_runtime import CracklePattern, PatternKind, PatternReport


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
    parsed = json.loads(report.to_json())
    assert [p["description"] for p in parsed["patterns"]] == ["out", "clu", "corr-1", "corr-2"]
    assert parsed["tests_run"] == 3


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
