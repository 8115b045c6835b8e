"""The overview a person reads first (SPEC §13), and the order findings are ranked in.

The overview groups what the detectors found into a few statements: incidents (changes of
several metrics at about the same task, each with its before → after), laws with their
violators, the strongest relationships, the most severe outliers and the largest clusters
(the top ten and a count), the steady metrics (conserved quantities that neither change nor
drift, in one line) and the data notes (metrics left out and why, detectors skipped or cut
short). It is built from the report's patterns; the cooling loop also passes each
change's task position, so changes of metrics recorded by different tasks group correctly.

Ranking orders findings by what they are, then by evidence and size: changes first, then
laws, relationships, outliers (the most severe first) and clusters; within a group the
smallest p-value first, then the highest confidence, then the most tasks. The detectors'
``confidence`` formulas are not touched: the ranking is a separate key.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from crackle_runtime.patterns import CracklePattern, PatternKind, json_safe

__all__ = ["Change", "Incident", "Law", "Overview", "Steady", "build_overview", "rank_key"]

TOP = 10  # outliers and clusters listed by name; the rest are counted
TOP_RELATIONSHIPS = 5
# changes at most this share of the tasks apart (and at least this many tasks) are one
# incident: a degradation that builds up over a few dozen tasks of a thousand is one event
INCIDENT_SHARE = 0.03
INCIDENT_MIN_TASKS = 3

_CHANGES = (PatternKind.DISTRIBUTION_SHIFT, PatternKind.PHASE_TRANSITION)
_LAWS = (PatternKind.CONSERVATION,)  # conserved quantities and conservation laws
_RELATIONSHIPS = (PatternKind.CORRELATION, PatternKind.DEPENDENCE, PatternKind.INFORMATION_FLOW)
_TIER = {
    **dict.fromkeys(_CHANGES, 0),
    **dict.fromkeys(_LAWS, 1),
    **dict.fromkeys(_RELATIONSHIPS, 2),
    # An outlier passed a fence with a multiplicity correction; a cluster is a distance
    # rule in raw units (SPEC §6), which finds hundreds of small groups in an ordinary CI
    # export: outliers first, or a runner's 5x hiccup ranks below them all.
    PatternKind.OUTLIER: 3,
    PatternKind.CLUSTERING: 4,
}


def _p_value(pattern: CracklePattern) -> float:
    p = pattern.metrics.get("p_value")
    return p if p is not None and not math.isnan(p) else 1.0


def rank_key(pattern: CracklePattern) -> tuple[int, float, float, int]:
    """Sort key: kind group, p-value (an outlier's: none, so its severity instead, the most
    severe first), -confidence, -number of tasks (smallest first)."""
    evidence = -_severity(pattern) if pattern.kind == PatternKind.OUTLIER else _p_value(pattern)
    return (
        _TIER.get(pattern.kind, 6),
        evidence,
        -pattern.confidence,
        -len(pattern.involved_tasks),
    )


@dataclass(frozen=True)
class Change:
    """One metric's change at one task: the typical value before and after it."""

    metric: str
    label: str
    position: int | None  # the task's position in recording order, when known
    before: float
    after: float
    p_value: float
    # what before and after are: "" the typical value (median, or a half's mean), "mean"
    # when the medians tie (a discrete metric), "spread" (standard deviations) for a change
    # of spread
    measure: str = ""

    @property
    def relative(self) -> float:
        """(after - before) / |before|; inf when before is 0 and after is not."""
        if self.before == 0.0:
            return 0.0 if self.after == 0.0 else math.copysign(math.inf, self.after)
        return (self.after - self.before) / abs(self.before)

    def describe(self) -> str:
        relative = self.relative
        percent = "" if math.isinf(relative) else f" ({relative * 100:+.0f}%)"
        measure = f" {self.measure}" if self.measure else ""
        return f"{self.metric}{measure} {_number(self.before)} → {_number(self.after)}{percent}"


@dataclass(frozen=True)
class Incident:
    """Changes of one or more metrics at about the same task."""

    label: str
    position: int | None
    changes: tuple[Change, ...]

    @property
    def p_value(self) -> float:
        return min(change.p_value for change in self.changes)

    @property
    def size(self) -> float:
        """The largest |relative change| of its metrics (NaN counts as 0)."""
        return max(abs(c.relative) if c.relative == c.relative else 0.0 for c in self.changes)

    def describe(self) -> str:
        return f"at task {self.label!r}: " + ", ".join(c.describe() for c in self.changes)


@dataclass(frozen=True)
class Law:
    """A conservation law, and the tasks that violate it."""

    description: str
    violators: tuple[str, ...]


@dataclass(frozen=True)
class Steady:
    """A conserved quantity (SPEC §6: a metric whose spread stays under the profile's
    tolerance of its mean) that neither changes nor drifts: its coefficient of variation."""

    metric: str
    cv: float

    def describe(self) -> str:
        return f"'{self.metric}' (cv {self.cv:.2g})"


@dataclass(frozen=True, repr=False)
class Overview:
    """What a person reads first; ``lines()`` words it (``str()`` and ``print()`` show
    those lines), ``to_dict()`` serialises it."""

    incidents: tuple[Incident, ...] = ()
    laws: tuple[Law, ...] = ()
    relationships: tuple[CracklePattern, ...] = ()
    steady: tuple[Steady, ...] = ()
    outliers: tuple[CracklePattern, ...] = ()
    outlier_count: int = 0
    clusters: tuple[CracklePattern, ...] = ()
    cluster_count: int = 0
    notes: tuple[str, ...] = field(default=())

    def lines(self) -> list[str]:
        lines: list[str] = []
        for number, incident in enumerate(self.incidents, 1):
            lines.append(f"incident {number}: {incident.describe()}")
        for law in self.laws:
            violators = (
                f"; violated by {len(law.violators)} task(s): {_names(law.violators)}"
                if law.violators
                else ""
            )
            lines.append(f"law: {law.description}{violators}")
        for pattern in self.relationships:
            lines.append(f"relationship: {pattern.description}")
        if self.outlier_count:
            shown = ", ".join(_outlier_name(pattern) for pattern in self.outliers)
            lines.append(f"outliers: {self.outlier_count} task(s); most severe: {shown}")
        if self.cluster_count:
            sizes = ", ".join(str(len(pattern.involved_tasks)) for pattern in self.clusters)
            lines.append(f"clusters: {self.cluster_count}; largest sizes: {sizes}")
        if self.steady:
            shown = ", ".join(quantity.describe() for quantity in self.steady)
            lines.append(f"steady (spread well under the mean, no change): {shown}")
        lines.extend(f"note: {note}" for note in self.notes)
        return lines or ["nothing found"]

    def __str__(self) -> str:
        return "\n".join(self.lines())

    def __repr__(self) -> str:
        counts = (
            f"{len(self.incidents)} incident(s), {len(self.laws)} law(s), "
            f"{len(self.relationships)} relationship(s), {self.outlier_count} outlier(s), "
            f"{self.cluster_count} cluster(s), {len(self.steady)} steady metric(s), "
            f"{len(self.notes)} note(s)"
        )
        return f"<Overview: {counts}; print() it to read it>"

    def to_dict(self) -> dict[str, Any]:
        return {
            "incidents": [
                {
                    "label": incident.label,
                    "position": incident.position,
                    "p_value": json_safe(incident.p_value),
                    "changes": [
                        {
                            "metric": change.metric,
                            "label": change.label,
                            "position": change.position,
                            "before": json_safe(change.before),
                            "after": json_safe(change.after),
                            "relative": json_safe(change.relative),
                            "p_value": json_safe(change.p_value),
                            "measure": change.measure,
                        }
                        for change in incident.changes
                    ],
                }
                for incident in self.incidents
            ],
            "laws": [
                {"description": law.description, "violators": list(law.violators)}
                for law in self.laws
            ],
            "relationships": [pattern.description for pattern in self.relationships],
            "steady": [
                {"metric": quantity.metric, "cv": json_safe(quantity.cv)}
                for quantity in self.steady
            ],
            "outliers": {
                "count": self.outlier_count,
                "most_severe": [pattern.description for pattern in self.outliers],
            },
            "clusters": {
                "count": self.cluster_count,
                "largest": [pattern.description for pattern in self.clusters],
            },
            "notes": list(self.notes),
        }


def _number(value: float) -> str:
    return f"{value:.4g}"


def _names(labels: Sequence[str], shown: int = 5) -> str:
    text = ", ".join(repr(label) for label in labels[:shown])
    return text + (f" and {len(labels) - shown} more" if len(labels) > shown else "")


def _outlier_name(pattern: CracklePattern) -> str:
    task = pattern.details.get("task", pattern.involved_tasks[0] if pattern.involved_tasks else "")
    return repr(task)


def _severity(pattern: CracklePattern) -> float:
    """An outlier's severity (the detector's largest equivalent Gaussian z over its
    metrics), else its largest |z:metric|, else its confidence."""
    severity = pattern.metrics.get("severity", math.nan)
    if not math.isnan(severity):
        return severity
    scores = [abs(v) for k, v in pattern.metrics.items() if k.startswith("z:") and v == v]
    return max(scores) if scores else pattern.confidence


def _change(pattern: CracklePattern, positions: Mapping[int, int]) -> Change | None:
    metrics, details = pattern.metrics, pattern.details
    name = details.get("metric")
    if not isinstance(name, str):
        return None
    measure = ""
    medians = ("median_before" in metrics and "median_after" in metrics) and (
        metrics["median_before"],
        metrics["median_after"],
    )
    means = ("mean_before" in metrics and "mean_after" in metrics) and (
        metrics["mean_before"],
        metrics["mean_after"],
    )
    changed = details.get("changed")
    if changed == "spread" and "std_before" in metrics and "std_after" in metrics:
        (before, after), measure = (metrics["std_before"], metrics["std_after"]), "spread"
    elif changed == "trend" and medians:  # the medians of the task-to-task changes
        (before, after), measure = medians, "trend per task"
    elif medians and (medians[0] != medians[1] or not means):
        before, after = medians
    elif means:  # the medians tie (a discrete metric): the means tell, as the description
        (before, after), measure = means, "mean"
    elif "first_half_avg" in metrics and "second_half_avg" in metrics:
        before, after = metrics["first_half_avg"], metrics["second_half_avg"]
    else:
        return None
    return Change(
        name,
        str(details.get("change_label", "")),
        positions.get(id(pattern)),
        before,
        after,
        _p_value(pattern),
        measure,
    )


def _incidents(changes: list[Change], task_count: int) -> tuple[Incident, ...]:
    """Changes grouped by position: consecutive changes at most a window apart join one
    incident, unless their metric changed in it already (a regression and its fix 40
    tasks later are two incidents; changes without a position group by label); each
    metric once per incident (its smallest p-value), incidents ordered by their largest
    relative change, then by their smallest p-value and their number of metrics."""
    window = max(INCIDENT_MIN_TASKS, int(INCIDENT_SHARE * task_count))
    placed = sorted((c for c in changes if c.position is not None), key=lambda c: c.position or 0)
    groups: list[list[Change]] = []
    for change in placed:
        last = groups[-1][-1].position if groups else None
        again = bool(groups) and any(c.metric == change.metric for c in groups[-1])
        if (
            last is not None
            and change.position is not None
            and change.position - last <= window
            and not again
        ):
            groups[-1].append(change)
        else:
            groups.append([change])
    by_label: dict[str, list[Change]] = {}
    for change in changes:
        if change.position is None:
            by_label.setdefault(change.label, []).append(change)
    groups.extend(by_label.values())
    incidents = []
    for group in groups:
        best: dict[str, Change] = {}
        for change in group:
            if change.metric not in best or change.p_value < best[change.metric].p_value:
                best[change.metric] = change
        ordered = tuple(sorted(best.values(), key=lambda c: (c.p_value, -abs(c.relative))))
        first = min(group, key=lambda c: -1 if c.position is None else c.position)
        incidents.append(Incident(first.label, first.position, ordered))
    # every incident passed the report-wide false-discovery control: the largest change
    # leads (a +25% build time before a +2% test count), then the stronger evidence
    incidents.sort(key=lambda i: (-i.size, i.p_value, -len(i.changes), i.position or 0))
    return tuple(incidents)


def build_overview(
    patterns: Iterable[CracklePattern],
    *,
    task_count: int = 0,
    notes: Iterable[str] = (),
    skipped: Iterable[tuple[PatternKind, str]] = (),
    incomplete: Iterable[tuple[PatternKind, str]] = (),
    positions: Mapping[int, int] | None = None,
    drifting: Iterable[str] = (),
) -> Overview:
    """The overview of ``patterns``. ``positions`` maps ``id(pattern)`` of change patterns
    to the task position of their change (the cooling loop knows it); ``drifting`` names
    the metrics found drifting.

    A metric that changes or drifts is not listed as a conserved quantity, even when its
    coefficient of variation stays under the tolerance (a CPU share ramping from 43% to
    81% has cv 0.26 < 0.3): its conservation pattern stays in the report, but the
    overview's laws are the statements a person can rely on across the tasks."""
    patterns = list(patterns)
    positions = positions or {}
    located = {
        pattern.details.get("metric")
        for pattern in patterns
        if pattern.kind is PatternKind.DISTRIBUTION_SHIFT
    }
    # a phase transition compares halves of the tasks: it names an incident only for
    # metrics the change-point detector did not locate
    changes = [
        change
        for pattern in patterns
        if pattern.kind in _CHANGES
        and not (
            pattern.kind is PatternKind.PHASE_TRANSITION
            and pattern.details.get("metric") in located
        )
        and (change := _change(pattern, positions)) is not None
    ]
    moving = {change.metric for change in changes} | set(drifting)
    conserved = sorted((p for p in patterns if p.kind in _LAWS), key=rank_key)
    laws = tuple(
        Law(
            str(pattern.details["law"]),
            tuple(str(label) for label in pattern.details.get("violations", ()) or ()),
        )
        for pattern in conserved
        if "law" in pattern.details
    )
    # A conserved quantity (a near-constant metric) is no law across metrics, and a noisy
    # count or CPU share passes the tolerance: one line of steady metrics, the steadiest
    # first, without those that change or drift.
    steady = tuple(
        sorted(
            (
                Steady(
                    str(pattern.details["metric"]),
                    float(pattern.metrics.get("coefficient_of_variation", math.nan)),
                )
                for pattern in conserved
                if "law" not in pattern.details
                and "metric" in pattern.details
                and pattern.details["metric"] not in moving
            ),
            key=lambda quantity: (math.isnan(quantity.cv), quantity.cv),
        )
    )
    relationships = sorted((p for p in patterns if p.kind in _RELATIONSHIPS), key=rank_key)
    outliers = sorted(
        (p for p in patterns if p.kind is PatternKind.OUTLIER), key=lambda p: -_severity(p)
    )
    clusters = sorted(
        (p for p in patterns if p.kind is PatternKind.CLUSTERING),
        key=lambda p: -len(p.involved_tasks),
    )
    all_notes = [
        *notes,
        *(f"skipped {kind}: {reason}" for kind, reason in skipped),
        *(f"incomplete {kind}: {reason}" for kind, reason in incomplete),
    ]
    return Overview(
        incidents=_incidents(changes, task_count),
        laws=laws,
        relationships=tuple(relationships[:TOP_RELATIONSHIPS]),
        steady=steady,
        outliers=tuple(outliers[:TOP]),
        outlier_count=len(outliers),
        clusters=tuple(clusters[:TOP]),
        cluster_count=len(clusters),
        notes=tuple(all_notes),
    )
