"""The standalone HTML page of a report (SPEC §13): the overview at the top, then one block
per finding with a small inline SVG figure, then the table of every pattern.

Figures are drawn here as SVG text (no plotting library, no external resource) from the
metrics the report was cooled from: a changed metric over task order with the change
marked, a scatter for a pair of metrics, a law's residuals with its violating tasks marked,
an outlier's metric with the task marked. Series are downsampled to a fixed number of points
(the minimum and maximum of each bucket of tasks, so spikes survive), which keeps a page for
100,000 tasks about as small as one for 1,000.
"""

from __future__ import annotations

import html
import itertools
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from crackle_runtime.patterns import CracklePattern, PatternKind, printable

if TYPE_CHECKING:
    from crackle_runtime.report import PatternReport

__all__ = ["page"]

FIGURES = 40  # findings drawn (in ranked order); the table lists every pattern
BUCKETS = 120  # a series is drawn as the min and max of at most this many task buckets
SCATTER_POINTS = 300
WIDTH, HEIGHT, PAD = 360, 110, 6

_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:1.5em;max-width:70em;color:#222}"
    "h1{font-size:1.4em;margin:0 0 .4em}h2{font-size:1.15em;margin:1em 0 .3em}"
    ".overview ul{margin:.2em 0;padding-left:1.2em}.overview li{margin:.15em 0}"
    ".finding{border-top:1px solid #ddd;padding:.5em 0;display:flex;gap:1em;"
    "align-items:center}.finding p{margin:0;flex:1}.kind{color:#555;font-size:.9em}"
    "svg{background:#fafafa;border:1px solid #eee;flex:none}"
    "table{border-collapse:collapse;font-size:.9em}"
    "td,th{border:1px solid #ccc;padding:3px 6px;text-align:left}"
)


def _text(value: str) -> str:
    """HTML-escaped text that is valid UTF-8 whatever the labels hold."""
    return html.escape(printable(value))


def page(report: PatternReport, figures: bool = True) -> str:
    overview = "".join(f"<li>{_text(line)}</li>" for line in report.overview().lines())
    blocks = []
    for pattern in report.ranked()[:FIGURES]:
        figure = _figure(report, pattern) if figures else ""
        p_value = pattern.metrics.get("p_value")
        evidence = f"; p = {p_value:.2g}" if p_value is not None and p_value == p_value else ""
        blocks.append(
            f"<div class='finding'>{figure}<p><span class='kind'>{_text(pattern.kind.value)} · "
            f"confidence {pattern.confidence:.2f}{evidence}</span><br>"
            f"{_text(pattern.description)}</p></div>"
        )
    rows = "".join(
        f"<tr><td>{_text(pattern.kind.value)}</td><td>{pattern.confidence:.2f}</td>"
        f"<td>{len(pattern.involved_tasks)}</td><td>{_text(pattern.description)}</td></tr>"
        for pattern in report.ranked()
    )
    statistics = "<br>".join(_text(line) for line in report._statistics().splitlines())
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width'><title>crackle report</title>"
        f"<style>{_STYLE}</style></head><body><h1>crackle_runtime report</h1>"
        f"<section class='overview' id='overview'><h2>Overview</h2><ul>{overview}</ul>"
        f"<p class='kind'>{statistics}</p></section>"
        f"<section id='findings'><h2>Findings</h2>{''.join(blocks)}</section>"
        f"<section id='patterns'><h2>Every pattern</h2><table><thead><tr><th>kind</th>"
        "<th>confidence</th><th>tasks</th><th>description</th></tr></thead>"
        f"<tbody>{rows}</tbody></table></section></body></html>"
    )


# --- figures --------------------------------------------------------------------------------


def _figure(report: PatternReport, pattern: CracklePattern) -> str:
    data = report._source
    if data is None:
        return ""
    index = {name: row for row, name in enumerate(data.names)}
    details, metrics = pattern.details, pattern.metrics
    involved = [index[name] for name in _metric_names(details) if name in index]
    kind = pattern.kind
    if kind in (PatternKind.DISTRIBUTION_SHIFT, PatternKind.PHASE_TRANSITION) and involved:
        marks = [report._change_positions.get(id(pattern))]
        return _series_figure(data.column(involved[0]), marks=marks)
    if kind is PatternKind.CONSERVATION and "law" in details:
        residual = np.full(data.task_count, metrics.get("constant", 0.0))
        for metric in involved:
            residual += metrics.get(f"coef:{data.names[metric]}", 0.0) * data.column(metric)
        where = _positions(data.labels, details.get("violations", ()))
        return _series_figure(residual, points=where)
    if kind is PatternKind.OUTLIER and involved:
        task = details.get("task_index")
        return _series_figure(data.column(involved[0]), points=[] if task is None else [task])
    if kind in (PatternKind.CORRELATION, PatternKind.DEPENDENCE, PatternKind.INFORMATION_FLOW):
        if len(involved) >= 2:
            return _scatter_figure(data.column(involved[0]), data.column(involved[1]))
    if kind is PatternKind.CONSERVATION and involved:
        return _series_figure(data.column(involved[0]))
    return ""


def _metric_names(details: dict[str, Any]) -> list[str]:
    if "source" in details and "target" in details:
        return [str(details["source"]), str(details["target"])]
    if isinstance(details.get("metrics"), list | tuple):
        return [str(name) for name in details["metrics"]]
    if isinstance(details.get("metric"), str):
        return [details["metric"]]
    return []


def _positions(labels: Sequence[str], wanted: Any) -> list[int]:
    wanted = set(wanted or ())
    return [position for position, label in enumerate(labels) if label in wanted][:200]


def _scale(values: NDArray[np.float64], low: float, high: float, size: int) -> NDArray[np.float64]:
    span = high - low
    if not math.isfinite(span) or span <= 0:
        return np.full(values.shape, size / 2)
    return PAD + (values - low) / span * (size - 2 * PAD)


def _svg(content: str, label: str) -> str:
    return (
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{WIDTH}' height='{HEIGHT}' "
        f"viewBox='0 0 {WIDTH} {HEIGHT}' role='img' aria-label='{label}'>{content}</svg>"
    )


def _series_figure(
    row: NDArray[np.float64],
    marks: Sequence[int | None] = (),
    points: Sequence[int] = (),
) -> str:
    """The series over task order (min/max per bucket), dashed lines at ``marks`` and
    circles at the tasks ``points``."""
    tasks = np.flatnonzero(np.isfinite(row))
    if tasks.size == 0:
        return ""
    values = row[tasks]
    n = row.size
    edges = np.linspace(0, tasks.size, min(BUCKETS, tasks.size) + 1).astype(np.int64)
    xs: list[float] = []
    ys: list[float] = []
    for start, end in itertools.pairwise(edges.tolist()):
        if end <= start:
            continue
        bucket = values[start:end]
        low, high = int(np.argmin(bucket)), int(np.argmax(bucket))
        for offset in sorted({low, high}):
            xs.append(float(tasks[start + offset]))
            ys.append(float(bucket[offset]))
    low_y, high_y = float(values.min()), float(values.max())
    px = _scale(np.asarray(xs), 0.0, max(n - 1, 1), WIDTH)
    py = HEIGHT - _scale(np.asarray(ys), low_y, high_y, HEIGHT)
    path = " ".join(f"{x:.0f},{y:.1f}" for x, y in zip(px, py, strict=True))
    content = f"<polyline fill='none' stroke='#3465a4' stroke-width='1' points='{path}'/>"
    for mark in marks:
        if mark is not None:
            x = float(_scale(np.asarray([float(mark)]), 0.0, max(n - 1, 1), WIDTH)[0])
            content += (
                f"<line x1='{x:.1f}' x2='{x:.1f}' y1='0' y2='{HEIGHT}' stroke='#c00' "
                "stroke-dasharray='4 3'/>"
            )
    for point in points:
        if 0 <= point < n and math.isfinite(row[point]):
            x = float(_scale(np.asarray([float(point)]), 0.0, max(n - 1, 1), WIDTH)[0])
            y = HEIGHT - float(_scale(np.asarray([row[point]]), low_y, high_y, HEIGHT)[0])
            content += f"<circle cx='{x:.1f}' cy='{y:.1f}' r='4' fill='none' stroke='#c00'/>"
    return _svg(content, "metric over task order")


def _scatter_figure(x: NDArray[np.float64], y: NDArray[np.float64]) -> str:
    both = np.flatnonzero(np.isfinite(x) & np.isfinite(y))
    if both.size == 0:
        return ""
    chosen = both[np.linspace(0, both.size - 1, min(SCATTER_POINTS, both.size)).astype(np.int64)]
    xs, ys = x[chosen], y[chosen]
    px = _scale(xs, float(x[both].min()), float(x[both].max()), WIDTH)
    py = HEIGHT - _scale(ys, float(y[both].min()), float(y[both].max()), HEIGHT)
    # one path of zero-length round-capped segments: a dot per point in ~12 bytes
    dots = "".join(f"M{a:.0f} {b:.0f}h0" for a, b in zip(px, py, strict=True))
    return _svg(
        f"<path d='{dots}' stroke='#3465a4' stroke-opacity='.6' stroke-width='3' "
        "stroke-linecap='round'/>",
        "scatter of two metrics",
    )
