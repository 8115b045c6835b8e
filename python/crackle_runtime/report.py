"""PatternReport: the list of patterns one cooling found, with renderings (SPEC §6, §10)."""

from __future__ import annotations

import csv
import html
import io
import json
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from crackle_runtime import _html, _optional
from crackle_runtime._overview import Overview, build_overview, rank_key
from crackle_runtime.patterns import (
    DETECTOR_ORDER,
    CracklePattern,
    PatternKind,
    json_safe,
    printable,
)

if TYPE_CHECKING:
    from crackle_runtime.detectors._data import DetectionData

__all__ = ["PatternReport", "printable"]

_RANK = {kind: rank for rank, kind in enumerate(DETECTOR_ORDER)}


class PatternReport(list[CracklePattern]):
    """Patterns sorted by confidence (descending), ties in detector order then discovery
    order. ``skipped`` and ``incomplete`` list ``(kind, reason)`` for detectors that lacked
    data or time; ``tests_run`` counts the p-valued tests in the FDR correction."""

    def __init__(
        self,
        patterns: Iterable[CracklePattern] = (),
        *,
        task_count: int = 0,
        metric_count: int = 0,
        skipped: Iterable[tuple[PatternKind, str]] = (),
        incomplete: Iterable[tuple[PatternKind, str]] = (),
        tests_run: int = 0,
        fdr: float = 0.01,
        elapsed: float = 0.0,
        notes: Iterable[str] = (),
        timings: dict[str, float] | None = None,
        change_positions: Mapping[int, int] | None = None,
        source: DetectionData | None = None,
        drifting: Iterable[str] = (),
    ) -> None:
        indexed = list(enumerate(patterns))
        indexed.sort(key=lambda item: (-item[1].confidence, _RANK[item[1].kind], item[0]))
        super().__init__(pattern for _, pattern in indexed)
        self.task_count = task_count
        self.metric_count = metric_count
        self.skipped: list[tuple[PatternKind, str]] = list(skipped)
        self.incomplete: list[tuple[PatternKind, str]] = list(incomplete)
        self.tests_run = tests_run
        self.fdr = fdr
        self.elapsed = elapsed
        self.notes: list[str] = list(notes)
        # seconds each detector's kernel took, by detector name, in the order they ran
        self.timings: dict[str, float] = dict(timings or {})
        # id(pattern) -> the task position of a change pattern's change (from cooling)
        self._change_positions = dict(change_positions or {})
        # the metrics the change-point detector found drifting (from cooling)
        self._drifting = tuple(drifting)
        self._overview: Overview | None = None
        # the metrics the report was cooled from (no copy), for the HTML page's figures
        self._source = source

    def _with(
        self,
        patterns: Iterable[CracklePattern],
        notes: Iterable[str],
        replaced: Mapping[int, CracklePattern | None] | None = None,
    ) -> PatternReport:
        """A report of the same cooling with more ``patterns``, each pattern whose ``id``
        ``replaced`` maps given in its place (None: left out), and these ``notes`` (a
        cluster's outliers and laws, worded apart from the sample)."""
        swap = replaced or {}
        kept = [swap.get(id(p), p) for p in self]
        return PatternReport(
            [*(p for p in kept if p is not None), *patterns],
            task_count=self.task_count,
            metric_count=self.metric_count,
            skipped=self.skipped,
            incomplete=self.incomplete,
            tests_run=self.tests_run,
            fdr=self.fdr,
            elapsed=self.elapsed,
            notes=notes,
            timings=self.timings,
            change_positions=self._change_positions,
            source=self._source,
            drifting=self._drifting,
        )

    # --- views --------------------------------------------------------------------------
    def by_kind(self, kind: PatternKind | str) -> list[CracklePattern]:
        wanted = PatternKind.parse(kind)
        return [pattern for pattern in self if pattern.kind is wanted]

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for pattern in self:
            counts[pattern.kind.value] = counts.get(pattern.kind.value, 0) + 1
        return counts

    def overview(self) -> Overview:
        """What to read first (SPEC §13): incidents (changes of several metrics at about the
        same task, each metric's before → after), laws with their violators, the strongest
        relationships, the most severe outliers and largest clusters (top ten and a count)
        and the data notes. ``overview().lines()`` words it."""
        if self._overview is None:
            self._overview = build_overview(
                self,
                task_count=self.task_count,
                notes=self.notes,
                skipped=self.skipped,
                incomplete=self.incomplete,
                positions=self._change_positions,
                drifting=self._drifting,
            )
        return self._overview

    def ranked(self) -> list[CracklePattern]:
        """The patterns by evidence and size: changes, laws, relationships, clusters, then
        outliers; within each, the smallest p-value, the highest confidence, the most tasks
        first. The renderings (table, CSV, JSON, HTML) list patterns in this order."""
        return sorted(self, key=rank_key)

    def summary(self) -> str:
        """The overview, then what was cooled, what was found and how it was tested."""
        return "\n".join([*self.overview().lines(), "", self._statistics()])

    def _statistics(self) -> str:
        lines = [
            f"{len(self)} pattern(s) across {self.task_count} task(s) and "
            f"{self.metric_count} metric(s) in {self.elapsed:.3f} s"
        ]
        if self:
            lines.append(
                "found: " + ", ".join(f"{count} {kind}" for kind, count in self.counts().items())
            )
        lines.append(
            f"significance: Benjamini-Hochberg at q = {self.fdr:g} over {self.tests_run} test(s)"
        )
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "overview": self.overview().to_dict(),
            "patterns": [pattern.to_dict() for pattern in self.ranked()],
            "task_count": self.task_count,
            "metric_count": self.metric_count,
            "tests_run": self.tests_run,
            "fdr": self.fdr,
            "skipped": [[kind.value, reason] for kind, reason in self.skipped],
            "incomplete": [[kind.value, reason] for kind, reason in self.incomplete],
            "notes": list(self.notes),
            "elapsed": json_safe(self.elapsed),
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    def to_pandas(self) -> Any:
        """A DataFrame: kind, description, confidence, involved_tasks, metrics, details; the
        patterns in :meth:`ranked` order, as every rendering lists them."""
        try:
            import pandas as pd
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError("to_pandas() needs pandas: pip install pandas") from exc
        ranked = self.ranked()
        return pd.DataFrame(
            {
                "kind": [pattern.kind.value for pattern in ranked],
                "description": [pattern.description for pattern in ranked],
                "confidence": [pattern.confidence for pattern in ranked],
                "involved_tasks": [list(pattern.involved_tasks) for pattern in ranked],
                "metrics": [dict(pattern.metrics) for pattern in ranked],
                "details": [dict(pattern.details) for pattern in ranked],
            },
            columns=["kind", "description", "confidence", "involved_tasks", "metrics", "details"],
        )

    def to_arrow(self) -> Any:
        """The patterns as a ``pyarrow.Table`` (needs pyarrow): kind, description,
        confidence, involved_tasks (a list of labels), and metrics and details as JSON text
        (NaN and inf as null); the patterns in :meth:`ranked` order."""
        pa = _optional.pyarrow()
        ranked = self.ranked()
        _optional.require_utf8("descriptions", (pattern.description for pattern in ranked))
        _optional.require_utf8(
            "involved tasks", (label for pattern in ranked for label in pattern.involved_tasks)
        )
        table = pa.table(
            {
                "kind": pa.array([pattern.kind.value for pattern in ranked], pa.string()),
                "description": pa.array([p.description for p in ranked], pa.string()),
                "confidence": pa.array([p.confidence for p in ranked], pa.float64()),
                "involved_tasks": pa.array(
                    [list(pattern.involved_tasks) for pattern in ranked], pa.list_(pa.string())
                ),
                "metrics": pa.array(
                    [json.dumps(json_safe(pattern.metrics)) for pattern in ranked], pa.string()
                ),
                "details": pa.array(
                    [json.dumps(json_safe(pattern.details)) for pattern in ranked], pa.string()
                ),
            }
        )
        return table

    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object:
        """The Arrow PyCapsule stream of ``to_arrow()`` (``pyarrow.RecordBatchReader.
        from_stream(report)``, ``polars.DataFrame(report)``; ``pyarrow.table`` treats a
        report as the list it is, so use ``report.to_arrow()`` there)."""
        return self.to_arrow().__arrow_c_stream__(requested_schema)

    def to_table(self, width: int | None = None, max_per_kind: int | None = None) -> str:
        """A plain-text table, one pattern per row, then the summary; rows longer than
        ``width`` characters are cut (None: never); with ``max_per_kind``, only the first
        patterns of each kind are listed and a line counts the rest."""
        rows: list[tuple[str, str, str, str]] = [("kind", "conf", "tasks", "description")]
        shown: dict[PatternKind, int] = {}
        for pattern in self.ranked():
            shown[pattern.kind] = shown.get(pattern.kind, 0) + 1
            if max_per_kind is not None and shown[pattern.kind] > max_per_kind:
                continue
            rows.append(
                (
                    pattern.kind.value,
                    f"{pattern.confidence:.2f}",
                    str(len(pattern.involved_tasks)),
                    pattern.description,
                )
            )
        if max_per_kind is not None:
            for kind, count in shown.items():
                if count > max_per_kind:
                    rows.append(
                        (
                            kind.value,
                            "",
                            "",
                            f"… and {count - max_per_kind} more {kind.value} patterns",
                        )
                    )
        kind_w = max(len(row[0]) for row in rows)
        task_w = max(len(row[2]) for row in rows)
        lines = [*self.overview().lines(), ""]
        for kind_text, confidence, tasks, description in rows:
            line = f"{kind_text:<{kind_w}}  {confidence:>4}  {tasks:>{task_w}}  {description}"
            lines.append(line if width is None or len(line) <= width else line[: width - 1] + "…")
        lines.append("")
        lines.append(self._statistics())
        return "\n".join(lines)

    def to_csv(self) -> str:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["kind", "confidence", "description", "involved_tasks", "metrics"])
        for pattern in self.ranked():
            writer.writerow(
                [
                    pattern.kind.value,
                    repr(pattern.confidence),
                    pattern.description,
                    len(pattern.involved_tasks),
                    json.dumps(json_safe(pattern.metrics)),
                ]
            )
        return buffer.getvalue()

    def to_html(self, figures: bool = True) -> str:
        """A standalone HTML page (no external resource): the overview, then one block per
        top finding with a small inline SVG figure of its metrics (when ``figures`` and the
        report comes from ``cool()``), then a table of every pattern."""
        return _html.page(self, figures)

    def _repr_html_(self) -> str:
        overview = "".join(f"<li>{html.escape(line)}</li>" for line in self.overview().lines())
        statistics = "<br>".join(html.escape(line) for line in self._statistics().splitlines())
        rows = "".join(
            f"<tr><td>{html.escape(pattern.kind.value)}</td><td>{pattern.confidence:.2f}</td>"
            f"<td>{len(pattern.involved_tasks)}</td><td>{html.escape(pattern.description)}</td></tr>"
            for pattern in self.ranked()
        )
        return (
            f"<section class='overview'><h2>Overview</h2><ul>{overview}</ul></section>"
            f"<p>{statistics}</p><table><thead><tr><th>kind</th><th>confidence</th>"
            f"<th>tasks</th><th>description</th></tr></thead><tbody>{rows}</tbody></table>"
        )

    def plot(self, ax: Any = None, top: int = 20) -> Any:
        """Bar chart of the confidences of the ``top`` first findings in ranked order
        (matplotlib); returns the Axes."""
        plt = _optional.pyplot()
        shown = self.ranked()[:top]
        if ax is None:
            _, ax = plt.subplots(figsize=(8, max(2.0, 0.3 * len(shown) + 1)))
        labels = [printable(f"{p.kind.value}: {p.description[:50]}") for p in shown]
        ax.barh(range(len(shown)), [p.confidence for p in shown])
        ax.set_yticks(range(len(shown)), labels)
        ax.invert_yaxis()
        ax.set_xlim(0, 1)
        ax.set_xlabel("confidence")
        return ax

    def __repr__(self) -> str:
        return f"PatternReport({len(self)} patterns, tasks={self.task_count})"

    def __str__(self) -> str:
        """``print(report)`` shows :meth:`summary`: the overview, then the statistics."""
        return self.summary()
