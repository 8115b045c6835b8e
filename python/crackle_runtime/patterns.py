"""Patterns found by cooling, and their kinds (SPEC §6)."""

from __future__ import annotations

import enum
import itertools
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, overload

__all__ = [
    "DETECTOR_ORDER",
    "CracklePattern",
    "PatternKind",
    "TaskLabels",
    "json_safe",
    "printable",
]


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


class TaskLabels(Sequence[str]):
    """The labels of a pattern's tasks, in recording order: the first ``count`` labels of
    ``source`` (a kiln's labels, which are only ever appended to), or those at the non-zero
    bytes of ``chosen`` (one byte per task). An immutable sequence that reads ``source``
    the first time its items are asked for, then holds them as a tuple: a pattern over a
    million tasks costs no million-label tuple until someone reads its tasks (``cool()``
    after ``extend()`` does not pay for every task's label). Equal to the tuple of the same
    labels, with the same hash, ordered against tuples, and ``+`` / ``*`` give tuples;
    ``tuple(labels)`` is the tuple itself (for ``json.dumps`` or an ``isinstance`` check,
    which a sequence does not pass)."""

    __slots__ = ("_chosen", "_count", "_items", "_size", "_source")

    def __init__(self, source: Sequence[str], count: int, chosen: bytes | None = None) -> None:
        if count > len(source) or (chosen is not None and len(chosen) != count):
            raise ValueError("TaskLabels: count exceeds the labels, or chosen is not count long")
        self._source = source
        self._count = count
        self._chosen = chosen
        self._size = count if chosen is None else count - chosen.count(0)
        self._items: tuple[str, ...] | None = None

    def _tuple(self) -> tuple[str, ...]:
        if self._items is None:
            head = itertools.islice(self._source, self._count)
            chosen = head if self._chosen is None else itertools.compress(head, self._chosen)
            self._items = tuple(chosen)
            self._source = ()  # the labels are held: the kiln's list may go
        return self._items

    def __len__(self) -> int:
        return self._size

    @overload
    def __getitem__(self, index: int) -> str: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[str, ...]: ...
    def __getitem__(self, index: int | slice) -> str | tuple[str, ...]:
        return self._tuple()[index]

    def __iter__(self) -> Iterator[str]:
        return iter(self._tuple())

    def __contains__(self, label: object) -> bool:
        return label in self._tuple()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TaskLabels | tuple):
            return NotImplemented
        return len(self) == len(other) and self._tuple() == _tuple_of(other)

    def __hash__(self) -> int:
        return hash(self._tuple())

    # What a tuple of the labels supports, with tuples as results.
    def __add__(self, other: object) -> tuple[str, ...]:
        items = _tuple_of(other)
        return NotImplemented if items is None else self._tuple() + items

    def __radd__(self, other: object) -> tuple[str, ...]:
        if isinstance(other, tuple):
            return other + self._tuple()
        return NotImplemented

    def __mul__(self, times: int) -> tuple[str, ...]:
        return self._tuple() * times

    __rmul__ = __mul__

    def __lt__(self, other: object) -> bool:
        items = _tuple_of(other)
        return NotImplemented if items is None else self._tuple() < items

    def __le__(self, other: object) -> bool:
        items = _tuple_of(other)
        return NotImplemented if items is None else self._tuple() <= items

    def __gt__(self, other: object) -> bool:
        items = _tuple_of(other)
        return NotImplemented if items is None else self._tuple() > items

    def __ge__(self, other: object) -> bool:
        items = _tuple_of(other)
        return NotImplemented if items is None else self._tuple() >= items

    def __repr__(self) -> str:
        return repr(self._tuple())

    def __reduce__(self) -> tuple[Any, ...]:
        return (tuple, (self._tuple(),))


def _tuple_of(other: object) -> tuple[str, ...] | None:
    """The labels of a TaskLabels or a tuple (what TaskLabels compares with), else None."""
    if isinstance(other, TaskLabels):
        return other._tuple()
    return other if isinstance(other, tuple) else None


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
    #: The labels of the tasks the pattern involves, in recording order: a tuple, or a
    #: :class:`TaskLabels` (equal to the tuple of the same labels) read when first used.
    involved_tasks: Sequence[str]
    confidence: float
    metrics: dict[str, float] = field(default_factory=dict, hash=False)
    details: dict[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", PatternKind.parse(self.kind))
        if not isinstance(self.involved_tasks, TaskLabels):
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
