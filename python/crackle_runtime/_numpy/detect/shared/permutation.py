"""Seeded permutations and the sequential permutation p-value (the twin of the Rust core's
``detect::shared::permutation``), operation for operation: SplitMix64 permutations, the
per-test round seeds, the sequential (Besag–Clifford) permutation p-value with its
exponential (peaks-over-threshold) tail.

Permutations of many rounds are drawn at once: round ``r`` of a test is one row of a
``(rounds, n)`` array, so the statistic of a batch of rounds is computed vectorised.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from crackle_runtime._args import Budget
from crackle_runtime._numpy._rng import GOLDEN_GAMMA, mix64, splitmix64

__all__ = [
    "DECISIVE_P_VALUE",
    "HIT_TOLERANCE",
    "MAX_PERMUTATIONS",
    "PERMUTATION_SEED",
    "STOP_HITS",
    "SharedPermutations",
    "batch_limit",
    "decisive_round",
    "exponential_tail",
    "permutation",
    "permutations",
    "round_seeds",
    "sequential_p_value",
    "smallest_positions",
    "stream_outputs",
]

Float64Array = NDArray[np.float64]
Int64Array = NDArray[np.int64]
UInt64Array = NDArray[np.uint64]

_MASK64 = (1 << 64) - 1
_HIGH32 = np.uint64(0xFFFF_FFFF_0000_0000)
_LOW32 = np.uint64(0xFFFF_FFFF)
_TEST_STRIDE = 0x9E3779B9  # test id t selects the round stream seed ^ (t * 0x9E3779B9)

STOP_HITS = 5  # the sequential test stops once this many permuted statistics reach T
HIT_TOLERANCE = 1e-9  # T_r counts as a hit when T_r >= T * (1 - HIT_TOLERANCE)
HIT_ABSOLUTE = 1e-12  # statistics within this of T are ties, whatever the rounding near zero
_MIN_P_VALUE = 1e-300
TAIL_SHARE_DIVISOR = 4  # the tail is fitted to the largest floor(B / 4) permuted statistics
MIN_TAIL_EXCEEDANCES = 10  # fewer (B < 40) fit no tail
TIE_RELATIVE = 1e-9  # a mean excess this small against the statistics' magnitude is rounding
DECISIVE_P_VALUE = 1e-12  # a tail p-value below this after decisive_round(B) rounds stops
MAX_PERMUTATIONS = 1_000_000  # the most rounds a test takes (more is refused)
PERMUTATION_SEED = 0x5EED_CAFE  # the seed of every randomized detector: reproducible reports
# Elements of the per-batch work arrays (rounds x series length): bounds the memory of a
# batch of permutation rounds to a few arrays of this many values.
_BATCH_ELEMENTS = 1 << 20


def batch_limit(length: int) -> int:
    """Permutation rounds evaluated at once for sequences of ``length`` values."""
    return max(1, _BATCH_ELEMENTS // max(length, 1))


# --- SplitMix64 permutations ------------------------------------------------------------------


def stream_outputs(seeds: UInt64Array, count: int) -> UInt64Array:
    """``(len(seeds), count)`` array: row r holds outputs 0..count-1 of stream ``seeds[r]``."""
    with np.errstate(over="ignore"):
        steps = np.arange(1, count + 1, dtype=np.uint64) * GOLDEN_GAMMA
        z = seeds[:, None] + steps[None, :]
    return mix64(z)


def _sorted_keys(seeds: UInt64Array, n: int) -> UInt64Array:
    """Per row, ``(key << 32) | index`` sorted ascending, key = output >> 32: the stable
    argsort of the u32 keys sits in the low 32 bits (the combined values are distinct, so an
    unstable sort gives the stable order)."""
    if n >= 1 << 32:
        raise ValueError(f"n must be < 2**32, got {n}")
    combined = stream_outputs(seeds, n)
    combined &= _HIGH32
    combined |= np.arange(n, dtype=np.uint64)[None, :]
    combined.sort(axis=1)
    return combined


def permutations(seeds: UInt64Array, n: int) -> Int64Array:
    """``(len(seeds), n)`` array whose row r is ``permutation(seeds[r], n)``."""
    return (_sorted_keys(np.asarray(seeds, dtype=np.uint64), n) & _LOW32).astype(np.int64)


def permutation(seed: int, n: int) -> Int64Array:
    """The stable argsort of the keys ``(splitmix64 output i of stream seed) >> 32``,
    i = 0..n-1."""
    row: Int64Array = permutations(np.array([seed & _MASK64], dtype=np.uint64), n)[0]
    return row


def smallest_positions(seeds: UInt64Array, n: int, count: int) -> Int64Array:
    """``(len(seeds), count)``: the first ``count`` entries of ``permutation(seeds[r], n)``
    (without sorting the whole row)."""
    combined = stream_outputs(np.asarray(seeds, dtype=np.uint64), n)
    combined &= _HIGH32
    combined |= np.arange(n, dtype=np.uint64)[None, :]
    if count < n:
        combined = np.partition(combined, count - 1, axis=1)[:, :count]
    combined.sort(axis=1)
    return (combined[:, :count] & _LOW32).astype(np.int64)


def round_seeds(seed: int, test_id: int, rounds: int) -> UInt64Array:
    """seed_tr for r = 0..rounds-1: output r of stream ``seed ^ (test_id * 0x9E3779B9)``
    (wrapping u64)."""
    stream = (seed ^ (test_id * _TEST_STRIDE)) & _MASK64
    return splitmix64(stream, rounds)


class SharedPermutations:
    """The permutations shared by the tests of one detector (test family ``family``): round r
    of every test whose permuted sequence has n values uses
    ``permutation(round_seed(seed, family, r), n)``. A batch of rounds is drawn once per
    length and reused by every test of the family (each test still sees uniformly random
    permutations, so its p-value stays valid)."""

    def __init__(self, seed: int, family: int, budget: int) -> None:
        self.seeds = round_seeds(seed, family, budget)
        self._rows: dict[tuple[int, int, int], Int64Array] = {}

    def rows(self, seeds: UInt64Array, n: int) -> Int64Array:
        """``permutations(seeds, n)`` for a batch ``seeds`` of ``self.seeds``, memoised."""
        key = (int(seeds[0]) if seeds.size else 0, int(seeds.size), n)
        rows = self._rows.get(key)
        if rows is None:
            rows = permutations(seeds, n)
            self._rows[key] = rows
        return rows


# --- sequential permutation p-value ---------------------------------------------------------


def sequential_p_value(
    observed: float,
    seeds: UInt64Array,
    statistics: Callable[[UInt64Array], Float64Array],
    batch_limit: int,
    deadline: tuple[Budget, str],
) -> tuple[float, int]:
    """Besag–Clifford sequential p-value with an exponential tail: ``(p_value, perms_run)``.

    ``seeds`` holds seed_tr of every round of the budget B = len(seeds); ``statistics`` maps
    the seeds of a batch of rounds to their permuted statistics T_r. The test stops at the
    first round r where the number of hits T_r >= T (1 - 1e-9) - 1e-12 reaches 5:
    p = 5 / (r + 1). After B rounds with fewer hits h, p = :func:`exponential_tail`.
    Overwhelmingly significant tests stop early too: after R = :func:`decisive_round` rounds
    (floor(B / 4), for B >= 160) with fewer than 5 hits, when the tail p-value of those R
    values is below 1e-12, p is that value and perms_run = R (no Benjamini–Hochberg
    threshold of a report comes near 1e-12, so only the precision of such p-values drops).

    Rounds are evaluated in batches (16, then half the rounds run so far, at most
    ``batch_limit``); rounds past the stopping round are discarded, so the result does not
    depend on the batching. ``deadline`` is ``(budget, stage)``: checked before every batch.
    """
    time_budget, stage = deadline
    budget = len(seeds)
    threshold = observed * (1.0 - HIT_TOLERANCE) - HIT_ABSOLUTE
    decisive = decisive_round(budget)
    hits = 0
    done = 0
    values: list[Float64Array] = []
    while done < budget:
        time_budget.check(stage)
        size = min(budget - done, max(1, batch_limit), max(16, done // 2))
        batch = np.asarray(statistics(seeds[done : done + size]), dtype=np.float64)
        hit = batch >= threshold
        total = np.cumsum(hit) + hits
        reached = np.flatnonzero(total >= STOP_HITS)
        stop = done + int(reached[0]) + 1 if reached.size else budget + 1
        if done < decisive <= done + size and decisive < stop:
            head = np.concatenate([*values, batch[: decisive - done]])
            p_value = exponential_tail(observed, int(total[decisive - done - 1]), head)
            if p_value < DECISIVE_P_VALUE:
                return p_value, decisive
        if stop <= budget:
            return STOP_HITS / stop, stop
        hits = int(total[-1])
        values.append(batch)
        done += size
    return exponential_tail(observed, hits, np.concatenate(values)), budget


def decisive_round(budget: int) -> int:
    """The round after which an overwhelmingly significant test stops: floor(B / 4) when
    that many rounds fit a tail of at least 10 exceedances (B >= 160), else never (0)."""
    rounds = budget // TAIL_SHARE_DIVISOR
    return rounds if rounds // TAIL_SHARE_DIVISOR >= MIN_TAIL_EXCEEDANCES else 0


def exponential_tail(observed: float, hits: int, permuted: Float64Array) -> float:
    """The tail p-value of ``observed`` after B = len(permuted) rounds with ``hits`` < 5:
    an exponential (generalized Pareto, shape 0) tail fitted to the exceedances of the
    permuted statistics over their upper quarter.

    k = floor(B / 4); s = the values sorted descending; threshold u = s[k]; mean excess
    sigma = sum(s[:k] - u) / k (summed left to right). If k >= 10 and sigma exceeds
    TIE_RELATIVE x the largest of |T|, |s[0]|, |s[-1]| (a smaller spread is rounding among
    statistics tied in exact arithmetic):
    p = (k + 1) / (B + 1) * exp(-max(T - u, 0) / sigma), at least 1e-300; else
    p = (h + 1) / (B + 1).

    The statistics tested (split G, plug-in mutual information, transfer entropy, and their
    maxima over split points or lags) have gamma-like permutation distributions: their
    exceedances over a high threshold tend to an exponential (Gumbel domain, generalized
    Pareto shape 0), and their mean excess decreases with the threshold, so the exponential
    fitted at the upper quarter over-states the far tail — the p-value errs on the
    conservative side, unlike a moment-fitted gamma (too light for maxima, noisy shape).
    """
    budget = permuted.size
    fallback = (hits + 1) / (budget + 1)
    exceedances = budget // TAIL_SHARE_DIVISOR
    if exceedances < MIN_TAIL_EXCEEDANCES:
        return fallback
    ordered = np.sort(permuted)[::-1]
    threshold = float(ordered[exceedances])
    scale = float(np.cumsum(ordered[:exceedances] - threshold)[-1]) / exceedances
    magnitude = max(abs(observed), abs(float(ordered[0])), abs(float(ordered[-1])))
    if not scale > TIE_RELATIVE * magnitude:
        return fallback
    share = (exceedances + 1) / (budget + 1)
    return max(share * math.exp(-max(observed - threshold, 0.0) / scale), _MIN_P_VALUE)
