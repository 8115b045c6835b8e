"""Arrow streams and plots (SPEC §10): ``__arrow_c_stream__`` on kilns and reports,
``kiln.plot`` and ``report.plot``."""

from __future__ import annotations

import json
import math
import sys

import numpy as np
import pytest

from crackle_runtime import CracklePattern, Kiln, PatternKind, PatternReport, ThermalProfile

pa = pytest.importorskip("pyarrow")
matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def _read(source: object) -> object:
    return pa.RecordBatchReader.from_stream(source).read_all()


def _planted_kiln() -> Kiln:
    """400 tasks: `level` jumps at task 200, `noise` has one +12 sigma value at task 77."""
    rng = np.random.default_rng(3)
    level = np.concatenate([rng.normal(0, 1, 200), rng.normal(6, 1, 200)])
    noise = rng.normal(0, 1, 400)
    noise[77] = 12.0
    kiln = Kiln(ThermalProfile.default().only(PatternKind.PHASE_TRANSITION, PatternKind.OUTLIER))
    kiln.add_matrix(np.column_stack([level, noise]), ["level", "noise"])
    return kiln


def test_kiln_arrow_stream_has_labels_and_nulls_for_absent_metrics() -> None:
    kiln = Kiln()
    kiln.add_entry("a", {"x": 1.5, "y": 2.0})
    kiln.add_entry("b", {"y": -1.0})
    kiln.add_entry("ç", {"x": math.pi})
    table = _read(kiln)
    assert table.column_names == ["label", "x", "y"]
    assert table.schema.field("x").type == pa.float64()
    assert table.to_pydict() == {
        "label": ["a", "b", "ç"],
        "x": [1.5, None, math.pi],
        "y": [2.0, -1.0, None],
    }
    assert pa.table(kiln).num_rows == 3


def test_kiln_arrow_stream_renames_label_column_on_clash() -> None:
    kiln = Kiln()
    kiln.add_entry("t", {"label": 1.0})
    assert _read(kiln).column_names == ["task_label", "label"]
    assert _read(Kiln()).num_rows == 0


def test_report_arrow_stream() -> None:
    kiln = _planted_kiln()
    report = kiln.cool()
    table = _read(report)
    assert table.num_rows == len(report) > 0
    rows = table.to_pylist()
    ranked = report.ranked()  # the order of every rendering
    assert [row["description"] for row in rows] == [pattern.description for pattern in ranked]
    assert rows[0]["involved_tasks"] == list(ranked[0].involved_tasks)
    assert json.loads(rows[0]["metrics"]).keys() == ranked[0].metrics.keys()
    frame = report.to_pandas()
    assert frame["description"].tolist() == [pattern.description for pattern in ranked]


def test_report_tables_list_patterns_ranked() -> None:
    # An outlier of confidence 1.0 comes first by confidence, after the change by rank.
    outlier = CracklePattern(PatternKind.OUTLIER, "task 'a' is an outlier", ("a",), 1.0)
    change = CracklePattern(
        PatternKind.DISTRIBUTION_SHIFT, "'x' rose", ("a", "b"), 0.5, {"p_value": 1e-9}
    )
    report = PatternReport([outlier, change], task_count=2, metric_count=1)
    assert list(report) == [outlier, change]
    assert report.ranked() == [change, outlier]
    assert report.to_arrow().column("kind").to_pylist() == ["distribution shift", "outlier"]
    assert report.to_pandas()["kind"].tolist() == ["distribution shift", "outlier"]


def test_arrow_stream_and_plots_without_the_extras(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    kiln = Kiln()
    kiln.add_entry("t", {"x": 1.0})
    with pytest.raises(ImportError, match=r"crackle_runtime\[arrow\]"):
        kiln.__arrow_c_stream__()
    with pytest.raises(ImportError, match=r"crackle_runtime\[arrow\]"):
        kiln.cool().__arrow_c_stream__()
    with pytest.raises(ImportError, match=r"crackle_runtime\[plot\]"):
        kiln.plot()


def test_kiln_plot_draws_metrics_change_points_and_outliers() -> None:
    kiln = _planted_kiln()
    ax = kiln.plot()
    assert [line.get_label() for line in ax.get_lines()] == ["level", "noise"]
    assert ax.get_ylabel() == "robust z-score"
    assert not ax.collections  # nothing marked before cooling
    plt.close(ax.figure)

    report = kiln.cool()
    change = next(p for p in report if p.kind is PatternKind.PHASE_TRANSITION)
    ax = kiln.plot()
    vertical = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
    assert [line.get_xdata()[0] for line in vertical] == [int(change.metrics["change_index"])]
    marked = [tuple(c.get_offsets()[0]) for c in ax.collections]
    assert len(marked) == 1 and marked[0][0] == 77.0
    assert marked[0][1] > 5  # the robust z-score of the +12 sigma value
    plt.close(ax.figure)

    ax = kiln.plot("noise")
    assert ax.get_ylabel() == "noise"
    np.testing.assert_array_equal(ax.get_lines()[0].get_ydata(), kiln.metric_matrix()[2][:, 1])
    plt.close(ax.figure)
    with pytest.raises(ValueError, match="metrics: no recorded metric named 'nope'"):
        kiln.plot("nope")


def test_report_plot_draws_one_bar_per_pattern() -> None:
    report = _planted_kiln().cool()
    ax = report.plot()
    assert len(ax.patches) == len(report)
    assert [bar.get_width() for bar in ax.patches] == [p.confidence for p in report]
    plt.close(ax.figure)


def test_html_report_embeds_a_figure_per_top_finding() -> None:
    report = _planted_kiln().cool()
    page = report.to_html()
    assert page.startswith("<!DOCTYPE html>") and "<svg" in page
    assert "<svg" not in report.to_html(figures=False)
    assert report.to_html(figures=False).count("<tr>") == len(report) + 1


def test_arrow_tables_and_awkward_names() -> None:
    kiln = Kiln()
    kiln.add_entry("t", {"label": 1.0, "task_label": 2.0})
    table = kiln.to_arrow()
    assert table.column_names == ["task_label_2", "label", "task_label"]
    assert table.column("task_label_2").to_pylist() == ["t"]
    kiln.add_entry("bad \ud800", {"label": 3.0})
    with pytest.raises(ValueError, match="labels: 'bad \\\\ud800' is not valid Unicode"):
        kiln.to_arrow()
    report = _planted_kiln().cool()
    assert pa.table(report.to_arrow()).num_rows == len(report)
    assert report.to_arrow().equals(_read(report))
