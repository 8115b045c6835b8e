"""Thermal profiles: which detectors run and with what thresholds (SPEC §5)."""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Iterable, Mapping
from numbers import Real
from typing import Any

import numpy as np

from crackle_runtime.errors import InvalidProfileError
from crackle_runtime.patterns import DETECTOR_ORDER, PatternKind

__all__ = ["CoolingRate", "ThermalProfile"]

# The seed's table: one row per rate, one column per threshold. The single source of truth.
_THRESHOLD_NAMES = (
    "cluster_threshold",
    "correlation_threshold",
    "min_tasks_for_detection",
    "phase_transition_sensitivity",
    "conservation_tolerance",
)
_RATE_TABLE: dict[str, tuple[float, float, int, float, float]] = {
    "fast": (1.5, 0.5, 2, 0.3, 0.5),
    "normal": (2.5, 0.7, 3, 0.5, 0.3),
    "slow": (4.0, 0.9, 5, 0.8, 0.1),
}
_DEFAULT_OUTLIER_Z = 3.5
_DEFAULT_FDR = 0.01
_DEFAULT_DURATION = {"fast": 10.0, "normal": 60.0, "slow": 300.0}
_DEFAULT_PERMUTATIONS = 199


class CoolingRate(enum.Enum):
    """How fast the kiln cools: each rate carries the seed's thresholds."""

    FAST = "fast"
    NORMAL = "normal"
    SLOW = "slow"

    def _row(self) -> tuple[float, float, int, float, float]:
        return _RATE_TABLE[self.value]

    def cluster_threshold(self) -> float:
        return self._row()[0]

    def correlation_threshold(self) -> float:
        return self._row()[1]

    def min_tasks_for_detection(self) -> int:
        return self._row()[2]

    def phase_transition_sensitivity(self) -> float:
        return self._row()[3]

    def conservation_tolerance(self) -> float:
        return self._row()[4]

    @classmethod
    def parse(cls, rate: CoolingRate | str) -> CoolingRate:
        if isinstance(rate, CoolingRate):
            return rate
        if isinstance(rate, str):
            for member in cls:
                if rate.strip().lower() in (member.value, member.name.lower()):
                    return member
        raise InvalidProfileError(f"unknown cooling rate {rate!r} (fast, normal or slow)")


_TUNABLE = (
    *_THRESHOLD_NAMES,
    "outlier_z",
    "fdr",
    "permutations",
)


@dataclasses.dataclass(frozen=True)
class ThermalProfile:
    """An immutable profile; build it with the constructors and ``with_*`` / ``without*``."""

    rate: CoolingRate = CoolingRate.NORMAL
    cluster_threshold: float = 2.5
    correlation_threshold: float = 0.7
    min_tasks_for_detection: int = 3
    phase_transition_sensitivity: float = 0.5
    conservation_tolerance: float = 0.3
    outlier_z: float = _DEFAULT_OUTLIER_Z
    fdr: float = _DEFAULT_FDR
    permutations: int = _DEFAULT_PERMUTATIONS
    max_cooling_duration: float = 60.0
    detectors: frozenset[PatternKind] = frozenset(DETECTOR_ORDER)
    ignored: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        _validate(self)

    # --- constructors -------------------------------------------------------------------
    @classmethod
    def default(cls) -> ThermalProfile:
        return cls.for_rate(CoolingRate.NORMAL)

    @classmethod
    def fast_cooling(cls) -> ThermalProfile:
        return cls.for_rate(CoolingRate.FAST)

    @classmethod
    def slow_cooling(cls) -> ThermalProfile:
        return cls.for_rate(CoolingRate.SLOW)

    @classmethod
    def no_detection(cls) -> ThermalProfile:
        return cls.default().only()

    @classmethod
    def for_rate(cls, rate: CoolingRate | str) -> ThermalProfile:
        rate = CoolingRate.parse(rate)
        return cls(
            rate=rate,
            max_cooling_duration=_DEFAULT_DURATION[rate.value],
            **dict(zip(_THRESHOLD_NAMES, rate._row(), strict=True)),  # type: ignore[arg-type]
        )

    # --- builders -----------------------------------------------------------------------
    def with_rate(self, rate: CoolingRate | str) -> ThermalProfile:
        """Every threshold from ``rate``'s row; duration, fdr, outlier_z, detectors kept."""
        rate = CoolingRate.parse(rate)
        thresholds: dict[str, Any] = dict(zip(_THRESHOLD_NAMES, rate._row(), strict=True))
        return dataclasses.replace(self, rate=rate, **thresholds)

    def with_thresholds(self, **thresholds: float) -> ThermalProfile:
        unknown = sorted(set(thresholds) - set(_TUNABLE))
        if unknown:
            raise InvalidProfileError(
                f"unknown threshold(s) {', '.join(unknown)}; known: {', '.join(_TUNABLE)}"
            )
        return dataclasses.replace(self, **thresholds)  # type: ignore[arg-type]

    def with_max_cooling_duration(self, seconds: float) -> ThermalProfile:
        return dataclasses.replace(self, max_cooling_duration=seconds)

    def without(self, *kinds: PatternKind | str) -> ThermalProfile:
        """This profile with the detectors of ``kinds`` switched off."""
        return dataclasses.replace(self, detectors=self.detectors - _kinds(kinds))

    def only(self, *kinds: PatternKind | str) -> ThermalProfile:
        """This profile with exactly the detectors of ``kinds`` switched on."""
        return dataclasses.replace(self, detectors=_kinds(kinds))

    def with_detectors(self, *kinds: PatternKind | str) -> ThermalProfile:
        """This profile with the detectors of ``kinds`` switched on as well."""
        return dataclasses.replace(self, detectors=self.detectors | _kinds(kinds))

    def ignoring(self, *names: str) -> ThermalProfile:
        """This profile with the metrics ``names`` left out of every detector (as well as
        those it ignored already); the report's data notes list them."""
        return dataclasses.replace(self, ignored=self.ignored | _names(names))

    def without_clustering(self) -> ThermalProfile:
        return self.without(PatternKind.CLUSTERING)

    def without_phase_transitions(self) -> ThermalProfile:
        return self.without(PatternKind.PHASE_TRANSITION)

    def without_conservation(self) -> ThermalProfile:
        return self.without(PatternKind.CONSERVATION)

    def without_correlations(self) -> ThermalProfile:
        return self.without(PatternKind.CORRELATION)

    def enabled(self, kind: PatternKind) -> bool:
        return kind in self.detectors

    def to_dict(self) -> dict[str, Any]:
        """The fields as JSON-safe values (``from_dict`` is the inverse)."""
        values = dataclasses.asdict(self)
        values["rate"] = self.rate.value
        values["detectors"] = [kind.value for kind in DETECTOR_ORDER if kind in self.detectors]
        values["ignored"] = sorted(self.ignored)
        return values

    @classmethod
    def from_dict(cls, fields: Mapping[str, Any]) -> ThermalProfile:
        """The profile ``to_dict()`` described; missing fields take their defaults, unknown
        ones raise InvalidProfileError, and the values are validated as usual."""
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(str(name) for name in fields if name not in known)
        if unknown:
            raise InvalidProfileError(f"unknown profile fields: {', '.join(unknown)}")
        return cls(**fields)


def _kinds(kinds: Iterable[PatternKind | str]) -> frozenset[PatternKind]:
    try:
        return frozenset(PatternKind.parse(kind) for kind in kinds)
    except ValueError as exc:
        raise InvalidProfileError(str(exc)) from None


def _names(names: Iterable[object]) -> frozenset[str]:
    if isinstance(names, str):
        raise InvalidProfileError(f"ignored must be a collection of metric names, got {names!r}")
    for name in names:
        if not isinstance(name, str) or not name:
            raise InvalidProfileError(
                f"ignored metric names must be non-empty strings, got {name!r}"
            )
    return frozenset(names)  # type: ignore[arg-type]


def _number(profile: ThermalProfile, name: str) -> float:
    """The field ``name`` as a non-negative float (Python or NumPy numbers alike)."""
    value = getattr(profile, name)
    if isinstance(value, bool | np.bool_) or not isinstance(value, Real):
        raise InvalidProfileError(f"{name} must be a number, got {value!r}")
    try:
        number = float(value)
    except OverflowError:
        raise InvalidProfileError(f"{name} is too large for a float (beyond ~1.8e308)") from None
    if math.isnan(number) or number < 0:
        raise InvalidProfileError(f"{name} must be a non-negative number, got {value!r}")
    return number


# Fields a detector needs finite (max_cooling_duration may be inf: no time limit).
_FINITE = (
    "cluster_threshold",
    "phase_transition_sensitivity",
    "conservation_tolerance",
    "outlier_z",
)
_MAX_PERMUTATIONS = 1_000_000  # the kernels' limit (a p-value resolution of 1e-6)
_COUNTS = ("min_tasks_for_detection", "permutations")


def _normalise_numbers(profile: ThermalProfile) -> None:
    """Counts as ints (a float must be a whole number), every other number as a float."""
    for name in (*_TUNABLE, "max_cooling_duration"):
        number = _number(profile, name)
        if name in _COUNTS:
            if not number.is_integer():
                raise InvalidProfileError(
                    f"{name} must be a whole number, got {getattr(profile, name)!r}"
                )
            object.__setattr__(profile, name, int(number))
        else:
            object.__setattr__(profile, name, number)


def _validate(profile: ThermalProfile) -> None:
    if not isinstance(profile.rate, CoolingRate):
        object.__setattr__(profile, "rate", CoolingRate.parse(profile.rate))
    _normalise_numbers(profile)
    for name in _FINITE:
        if math.isinf(getattr(profile, name)):
            raise InvalidProfileError(f"{name} must be finite, got {getattr(profile, name)!r}")
    if not 1 <= profile.permutations <= _MAX_PERMUTATIONS:
        raise InvalidProfileError(
            f"permutations must be between 1 and {_MAX_PERMUTATIONS:,}, "
            f"got {profile.permutations!r}"
        )
    for name in ("correlation_threshold", "fdr"):
        value = float(getattr(profile, name))
        if not 0.0 < value <= 1.0:
            raise InvalidProfileError(f"{name} must be in (0, 1], got {value!r}")
    for name in ("cluster_threshold", "outlier_z", "max_cooling_duration"):
        if float(getattr(profile, name)) <= 0.0:
            raise InvalidProfileError(f"{name} must be > 0, got {getattr(profile, name)!r}")
    if not isinstance(profile.ignored, frozenset) or not all(
        isinstance(name, str) and name for name in profile.ignored
    ):
        object.__setattr__(profile, "ignored", _names(profile.ignored))
    if not isinstance(profile.detectors, frozenset):
        object.__setattr__(profile, "detectors", _kinds(profile.detectors))
    elif not all(isinstance(kind, PatternKind) for kind in profile.detectors):
        object.__setattr__(profile, "detectors", _kinds(profile.detectors))
