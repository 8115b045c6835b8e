"""What a kiln hands back about its tasks: entries, their metadata and timestamps, and the
named matrices of the analyses (SPEC §4)."""

from __future__ import annotations

import datetime as _dt
import functools
import time
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

__all__ = ["MetricMatrix", "TaskEntry", "TaskMetadata", "Timestamp"]


@functools.total_ordering
class Timestamp:
    """Milliseconds since the Unix epoch."""

    __slots__ = ("_millis",)

    def __init__(self, millis: float) -> None:
        self._millis = float(millis)

    @classmethod
    def now(cls) -> Timestamp:
        return cls(time.time() * 1000.0)

    @classmethod
    def from_millis(cls, millis: float) -> Timestamp:
        return cls(millis)

    def as_millis(self) -> float:
        return self._millis

    def elapsed(self) -> float:
        """Seconds since this timestamp."""
        return time.time() - self._millis / 1000.0

    def to_datetime(self) -> _dt.datetime:
        return _dt.datetime.fromtimestamp(self._millis / 1000.0, tz=_dt.UTC)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Timestamp):
            return NotImplemented
        return self._millis == other._millis

    def __lt__(self, other: Timestamp) -> bool:
        if not isinstance(other, Timestamp):
            return NotImplemented
        return self._millis < other._millis

    def __hash__(self) -> int:
        return hash(self._millis)

    def __repr__(self) -> str:
        return f"Timestamp({self._millis!r})"


@dataclass(frozen=True)
class TaskMetadata:
    label: str
    fired_at: Timestamp
    cooled_at: Timestamp | None
    fire_duration: float


@dataclass(frozen=True)
class TaskEntry:
    """One recorded task: firing metrics, metrics returned by its cool hook, metadata."""

    label: str
    metrics: dict[str, float]
    cooled_metrics: dict[str, float]
    metadata: TaskMetadata

    def all_metrics(self) -> dict[str, float]:
        """Firing metrics with cooled metrics of the same name overriding them."""
        return {**self.metrics, **self.cooled_metrics}


class MetricMatrix(NamedTuple):
    names: list[str]
    values: NDArray[np.float64]
