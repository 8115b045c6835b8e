"""References written straight from the kernel contract (docs/kernels.md), with Python
integers and loops: the SplitMix64 stream, the seeded permutations, the per-test round
seeds and the sequential permutation p-value with its exponential tail. The detector tests
hold both backends to these.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

MASK64 = (1 << 64) - 1

Columns = NDArray[np.float64]


def row(result: dict[str, NDArray[Any]], index: int) -> dict[str, Any]:
    """The fields of one row of a detector's result (a metric, a pair), as Python numbers."""
    return {name: values[index].item() for name, values in result.items()}


def columns_of(*rows: list[float]) -> Columns:
    """A (metrics, tasks) float64 matrix from one list of values per metric."""
    return np.array(rows, dtype=np.float64).reshape(len(rows), -1)


def splitmix64_reference(seed: int, index: int) -> int:
    """Output ``index`` of the SplitMix64 stream ``seed``, in Python integers."""
    z = (seed + (index + 1) * 0x9E3779B97F4A7C15) & MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def permutation_reference(seed: int, n: int) -> list[int]:
    """The stable argsort of the high 32 bits of outputs 0..n-1 of stream ``seed``."""
    keys = [splitmix64_reference(seed, i) >> 32 for i in range(n)]
    return sorted(range(n), key=lambda i: (keys[i], i))


def round_permutation(seed: int, test_id: int, r: int, n: int) -> list[int]:
    """The permutation of round ``r`` of test (family) ``test_id``: its seed is output r of
    the stream ``seed ^ (test_id * 0x9E3779B9)``."""
    stream = (seed ^ (test_id * 0x9E3779B9)) & MASK64
    return permutation_reference(splitmix64_reference(stream, r), n)


def decorrelation_reference(codes: list[int]) -> int:
    """The first lag k in 1..n//4 where the sample autocorrelation of ``codes`` is <= 0 or
    below 2/sqrt(n) (n//4 when none, at least 1; 1 for a constant series), from the
    definition in exact integers: ``A_k = sum (n c_t - T)(n c_{t+k} - T)``."""
    n, total = len(codes), sum(codes)
    centered = [n * c - total for c in codes]
    variance = sum(d * d for d in centered)
    longest = max(n // 4, 1)
    if variance == 0:
        return 1
    for k in range(1, min(longest, n - 1) + 1):
        covariance = sum(centered[t] * centered[t + k] for t in range(n - k))
        if covariance <= 0 or covariance / variance * math.sqrt(n) < 2.0:
            return k
    return longest


def round_shift(seed: int, test_id: int, r: int, codes: list[int], floor: int) -> list[int]:
    """The gather order of round ``r``'s circular-shift surrogate of ``codes`` in test
    (family) ``test_id``: shift k = shortest + floor(u * range / 2**32), u the top 32 bits of
    output 0 of the round's stream, shortest = min(floor + L - 1, max(n // 4, 1)) with L the
    :func:`decorrelation_reference`, limited to (n - 1) // 2, range = n - 2 shortest + 1."""
    n = len(codes)
    shortest = min(floor + decorrelation_reference(codes) - 1, max(n // 4, 1))
    shortest = min(shortest, (n - 1) // 2)
    stream = (seed ^ (test_id * 0x9E3779B9)) & MASK64
    u = splitmix64_reference(splitmix64_reference(stream, r), 0) >> 32
    k = shortest + (u * (n - 2 * shortest + 1) >> 32)
    return [(t + k) % n for t in range(n)]


def sequential_reference(
    observed: float, statistic_of_round: Callable[[int], float], budget: int
) -> tuple[float, int]:
    """The sequential p-value of the contract, one round at a time: ``(p, rounds run)``."""
    hits, values = 0, []
    for r in range(budget):
        value = statistic_of_round(r)
        values.append(value)
        hits += value >= observed * (1 - 1e-9)
        if hits == 5:
            return 5 / (r + 1), r + 1
    # The exponential tail over the largest floor(B / 4) values, written out.
    k = budget // 4
    ordered = sorted(values, reverse=True)
    if k >= 10:
        threshold = ordered[k]
        scale = sum(v - threshold for v in ordered[:k]) / k
        if scale > 0:
            tail = (k + 1) / (budget + 1) * math.exp(-max(observed - threshold, 0.0) / scale)
            return max(tail, 1e-300), budget
    return (hits + 1) / (budget + 1), budget
