"""Every argument check of the NumPy backend's detectors, in one place.

The twin of the Rust core's ``args`` module: a kernel's parameters arrive as a mapping of
loosely typed values over the kernel's defaults (:meth:`Params.resolve`), and each is read
through a typed accessor that raises ``ValueError`` naming the argument. The time budget
(:class:`Budget`) raises :class:`~crackle_runtime.errors.CoolingTimeoutError` once spent.
"""

from __future__ import annotations

import math
import operator
import time
from collections.abc import Mapping
from typing import Any

from crackle_runtime.errors import CoolingTimeoutError

__all__ = ["Budget", "Params"]

_I64_MAX = (1 << 63) - 1
_U64_LIMIT = 1 << 64


def _type_name(value: object) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    return type(value).__name__


def _as_integer(value: object) -> int | None:
    """The integer a value stands for (ints and NumPy integers; not bools or floats)."""
    if isinstance(value, bool) or isinstance(value, float):
        return None
    try:
        return operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        return None


class Params:
    """The parameters of one kernel call: the caller's values over the kernel's defaults."""

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, Any] | None = None) -> None:
        self._values: dict[str, Any] = dict(values or {})

    def resolve(self, kernel: str, defaults: Mapping[str, Any]) -> Params:
        """The caller's values over ``defaults``; an unknown name raises ValueError naming
        it (a misspelt parameter never passes silently)."""
        for name in self._values:
            if name not in defaults:
                raise ValueError(
                    f"params: {kernel} has no parameter {name!r} (known: {', '.join(defaults)})"
                )
        return Params({name: self._values.get(name, default) for name, default in defaults.items()})

    def _get(self, name: str) -> Any:
        if name not in self._values:
            raise ValueError(f"{name} is required")
        return self._values[name]

    def number(self, name: str) -> float:
        """A number (an int is read as its float value)."""
        value = self._get(name)
        if isinstance(value, bool | str | bytes | bytearray):
            raise ValueError(f"{name} must be a number, got {_type_name(value)}")
        integer = _as_integer(value)
        if integer is not None:
            if abs(integer) >= 1 << 127:
                raise ValueError(
                    f"{name} must be a number that fits in 64 bits, got a larger integer"
                )
            return float(integer)
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be a number, got {_type_name(value)}") from None

    def finite(self, name: str, low: float, *, inclusive: bool) -> float:
        """A finite number >= ``low`` (or > ``low`` when not ``inclusive``)."""
        value = self.number(name)
        ok = math.isfinite(value) and (value >= low if inclusive else value > low)
        if not ok:
            bound = ">=" if inclusive else ">"
            raise ValueError(f"{name} must be finite and {bound} {low:g}, got {value}")
        return value

    def unit_interval(self, name: str) -> float:
        """A number in (0, 1]."""
        value = self.number(name)
        if not 0.0 < value <= 1.0:
            raise ValueError(f"{name} must be in (0, 1], got {value}")
        return value

    def integer(self, name: str, low: int, high: int) -> int:
        """An integer in ``low..=high``."""
        value = self._get(name)
        integer = _as_integer(value)
        if integer is None:
            raise ValueError(f"{name} must be an integer, got {_type_name(value)}")
        if abs(integer) >= 1 << 127:
            raise ValueError(
                f"{name} must be an integer that fits in 64 bits, got a larger integer"
            )
        if integer < low:
            raise ValueError(f"{name} must be >= {low}, got {integer}")
        if integer > high:
            raise ValueError(f"{name} must be <= {high}, got {integer}")
        return integer

    def count(self, name: str, low: int) -> int:
        """A count >= ``low`` (at most 2**63 - 1)."""
        return self.integer(name, low, _I64_MAX)

    def seed(self, name: str) -> int:
        """A seed in [0, 2**64)."""
        value = self._get(name)
        integer = _as_integer(value)
        if integer is None:
            raise ValueError(f"{name} must be an integer, got {_type_name(value)}")
        if not 0 <= integer < _U64_LIMIT:
            raise ValueError(f"{name} must be in [0, 2**64)")
        return integer

    def deadline(self, name: str) -> Budget:
        """The time budget: ``seconds`` from now (NaN refused; inf or > 1e9 s: none)."""
        seconds = self.number(name)
        if math.isnan(seconds):
            raise ValueError(f"{name} must be a number of seconds (inf for no limit), got NaN")
        if not math.isfinite(seconds) or seconds > 1e9:
            return Budget(math.inf)
        return Budget(max(seconds, 0.0))


class Budget:
    """A point in time past which long work stops with CoolingTimeoutError."""

    __slots__ = ("end",)

    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds if math.isfinite(seconds) else math.inf

    def expired(self) -> bool:
        return time.monotonic() >= self.end

    def check(self, stage: str) -> None:
        if self.end != math.inf and time.monotonic() >= self.end:
            raise CoolingTimeoutError(f"time budget exhausted during {stage}")
