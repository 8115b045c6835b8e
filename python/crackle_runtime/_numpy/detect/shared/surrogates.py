"""Circular time-shift surrogates and their shared draws (the twin of the Rust core's
``detect::shared::surrogates``, operation for operation).

A pair test's surrogate keeps each series' whole serial structure and breaks only their
alignment: the tested series is circularly shifted, ``s_t = v[(t + k) mod N]``, by a random
k between ``shortest`` and ``N - shortest`` (Quiroga et al. 2002; Schreiber & Schmitz 2000;
the source surrogates of transfer-entropy testing, Lindner et al. 2011, Wibral et al.
2013). An iid permutation would destroy whatever autocorrelation prewhitening left in the
series and make the null too narrow. ``shortest`` is the shifted series' decorrelation
length plus the lags the test scans (the block length from the estimated autocorrelation,
as in Kirch 2007), so no surrogate is a near copy of the original alignment.

- :func:`decorrelation_length` of codes c (length N): with ``d_t = N c_t - sum(c)`` and
  ``A_k = sum_{t < N-k} d_t d_{t+k}`` (exact integers), the first lag k in 1..N//4 with
  ``A_k <= 0`` or ``(A_k / A_0) sqrt(N) < 2``; N//4 when none (at least 1); 1 for a
  constant series.
- :func:`shortest_shift` = min(floor + L - 1, max(N//4, 1)).
- :func:`shift_rows`: round r's shift is ``shortest + (u * range) >> 32`` with u the top 32
  bits of output 0 of the round's stream and range = N - 2 shortest + 1 (shortest limited
  to (N - 1) // 2).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from crackle_runtime._numpy.detect.shared.permutation import stream_outputs

__all__ = ["circular_shifts", "decorrelation_length", "shift_rows", "shortest_shift"]

Int64Array = NDArray[np.int64]
UInt64Array = NDArray[np.uint64]


def decorrelation_length(codes: NDArray[np.integer]) -> int:
    """The first lag where the codes' sample autocorrelation falls inside the white-noise
    band 2/sqrt(N) (see the module docstring)."""
    n = int(codes.size)
    longest = max(n // 4, 1)
    values = np.asarray(codes, dtype=np.int64)
    total = int(values.sum())
    # A_k = n^2 S_k - n T (P_k + Q_k) + (n - k) T^2 with S_k = sum c_t c_{t+k},
    # P_k = sum_{t < n-k} c_t, Q_k = sum_{t >= k} c_t: small exact sums, combined as Python
    # integers (the Rust core sums the products in i128).
    prefix = np.concatenate([[0], np.cumsum(values)])

    def lagged(k: int) -> int:
        products = int(np.dot(values[: n - k], values[k:]))
        head, tail = int(prefix[n - k]), total - int(prefix[k])
        return n * n * products - n * total * (head + tail) + (n - k) * total * total

    variance = lagged(0)
    if variance == 0:
        return 1
    band = math.sqrt(n)
    for k in range(1, min(longest, n - 1) + 1):
        covariance = lagged(k)
        if covariance <= 0 or (float(covariance) / float(variance)) * band < 2.0:
            return k
    return longest


def shortest_shift(codes: NDArray[np.integer], floor: int) -> int:
    """min(floor + L - 1, max(N // 4, 1)), L = :func:`decorrelation_length`."""
    return min(max(floor, 1) + decorrelation_length(codes) - 1, max(int(codes.size) // 4, 1))


def circular_shifts(seeds: UInt64Array, n: int, shortest: int) -> Int64Array:
    """The shift of each round seed for N values (0 for N <= 1)."""
    seeds = np.asarray(seeds, dtype=np.uint64)
    if n <= 1:
        return np.zeros(seeds.size, dtype=np.int64)
    shortest = min(shortest, (n - 1) // 2)
    span = np.uint64(n - 2 * shortest + 1)
    draws = stream_outputs(seeds, 1)[:, 0] >> np.uint64(32)
    return (shortest + ((draws * span) >> np.uint64(32))).astype(np.int64)


def shift_rows(seeds: UInt64Array, n: int, shortest: int) -> Int64Array:
    """``(len(seeds), n)`` gather indices: row r is ``(t + k_r) mod n``."""
    shifts = circular_shifts(seeds, n, shortest)
    rows: Int64Array = (np.arange(n, dtype=np.int64)[None, :] + shifts[:, None]) % max(n, 1)
    return rows
