"""SplitMix64, the only random number generator of the kernels (both backends draw the same
numbers, so sampled estimates agree between them)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = ["GOLDEN_GAMMA", "mix64", "splitmix64"]

_MASK64 = (1 << 64) - 1
GOLDEN_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def mix64(z: NDArray[np.uint64]) -> NDArray[np.uint64]:
    """The SplitMix64 output function, applied in place to ``z`` (wrapping u64); returns
    ``z``."""
    with np.errstate(over="ignore"):
        z ^= z >> np.uint64(30)
        z *= _MIX1
        z ^= z >> np.uint64(27)
        z *= _MIX2
        z ^= z >> np.uint64(31)
    return z


def splitmix64(seed: int, count: int, start: int = 0) -> NDArray[np.uint64]:
    """Outputs ``start .. start + count - 1`` of the SplitMix64 stream ``seed``.

    Output ``i`` is ``mix(seed + (i + 1) * 0x9E3779B97F4A7C15)`` in wrapping u64 arithmetic;
    ``seed`` is taken modulo 2**64.
    """
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    if start < 0:
        raise ValueError(f"start must be >= 0, got {start}")
    # uint64 array arithmetic wraps silently; errstate covers the NumPy versions that warn.
    with np.errstate(over="ignore"):
        steps = np.arange(count, dtype=np.uint64)
        steps += np.uint64((start + 1) & _MASK64)
        z = steps * GOLDEN_GAMMA
        z += np.uint64(seed & _MASK64)
    return mix64(z)
