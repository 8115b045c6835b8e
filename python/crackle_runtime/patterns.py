"""Patterns found by cooling, and their kinds (SPEC §6)."""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["DETECTOR_ORDER", "CracklePattern", "PatternKind", "json_safe", "printable"]


class PatternKind(enum.StrEnum):
    """The kind of a pattern; ``str(kind)`` is the seed's display text."""

    CLUSTERING = "clustering"
    PHASE_TRANSITION = "phase transition"
    CONSERVATION = "conservation law"
    CORRELATION = "correlation"
    OUTLIER = "outlier"
    DISTRIBUTION_SHIFT = "distribution shift"
    DEPENDENCE = "dependence"
    INFORMATION_FLOW = "information flow"

    def __str__(self) -> str:
        return self.value

    @classmethod
    def parse(cls, kind: PatternKind | str) -> PatternKind:
        """A kind from a member, its value ("phase transition") or its name ("PHASE_TRANSITION")."""
        if isinstance(kind, PatternKind):
            return kind
        if isinstance(kind, str):
            text = kind.strip()
            for member in cls:
                if text.lower() in (member.value, member.name.lower()):
                    return member
        raise ValueError(f"unknown pattern kind {kind!r}")


# Detector order: ties in confidence are broken by this order, then by discovery order.
DETECTOR_ORDER: tuple[PatternKind, ...] = tuple(PatternKind)


def json_safe(value: Any) -> Any:
    """``value`` with NaN/inf → None, NumPy scalars → Python numbers, tuples → lists."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    item = getattr(value, "item", None)  # NumPy scalars
    if callable(item):
        return json_safe(item())
    if hasattr(value, "tolist"):
        return json_safe(value.tolist())
    return str(value)


def _clamp_confidence(confidence: float) -> float:
    value = float(confidence)
    if math.isnan(value):
        return 0.0
    return min(max(value, 0.0), 1.0)


@dataclass(frozen=True, eq=True, slots=True)
class CracklePattern:
    """One pattern: an immutable value. ``confidence`` is clamped to [0, 1]."""

    kind: PatternKind
    description: str
    involved_tasks: tuple[str, ...]
    confidence: float
    metrics: dict[str, float] = field(default_factory=dict, hash=False)
    details: dict[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", PatternKind.parse(self.kind))
        object.__setattr__(self, "involved_tasks", tuple(self.involved_tasks))
        object.__setattr__(self, "confidence", _clamp_confidence(self.confidence))
        object.__setattr__(self, "metrics", {str(k): float(v) for k, v in self.metrics.items()})
        object.__setattr__(self, "details", dict(self.details))

    def with_metric(self, name: str, value: float) -> CracklePattern:
        """A copy with one more metric (or one replaced)."""
        return CracklePattern(
            self.kind,
            self.description,
            self.involved_tasks,
            self.confidence,
            {**self.metrics, name: value},
            self.details,
        )

    def with_metrics(self, metrics: Mapping[str, float]) -> CracklePattern:
        """A copy whose metrics are replaced by ``metrics`` (as the seed does)."""
        return CracklePattern(
            self.kind,
            self.description,
            self.involved_tasks,
            self.confidence,
            dict(metrics),
            self.details,
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (NaN and inf become None)."""
        return {
            "kind": self.kind.value,
            "description": self.description,
            "involved_tasks": list(self.involved_tasks),
            "confidence": json_safe(self.confidence),
            "metrics": json_safe(self.metrics),
            "details": json_safe(self.details),
        }

    def __str__(self) -> str:
        return f"[{self.kind}] {self.description} (confidence {self.confidence:.2f})"


def printable(text: str) -> str:
    """``text`` as valid Unicode: a lone surrogate (from a label or a metric name that came
    through ``surrogateescape`` or a JSON escape) becomes its backslash escape."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")
