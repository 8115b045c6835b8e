"""Order statistics, binning and entropies of codes shared by the detectors (the twin of
the Rust core's ``detect::shared::ranks``): quantile (rank) bins, equal-width bins, the
median, and the entropy of rows of codes (through the backend's one
``entropy_of_counts``, in ``crackle_runtime._numpy.info``).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from crackle_runtime._numpy.info import bin_indices, entropy_of_counts

__all__ = [
    "RankBinCache",
    "average_ranks",
    "doubled_midranks",
    "entropy",
    "entropy_rows",
    "equal_width_bins",
    "median",
    "rank_bins",
    "row_counts",
]

Float64Array = NDArray[np.float64]
Int64Array = NDArray[np.int64]
BoolArray = NDArray[np.bool_]


def average_ranks(values: Float64Array) -> Float64Array:
    """0-based average ranks: the mean ``(first + last) / 2`` of the positions a run of equal
    values takes in the ascending sort (Spearman's convention for ties)."""
    ordered = np.sort(values)
    first = np.searchsorted(ordered, values, side="left")
    last = np.searchsorted(ordered, values, side="right") - 1
    return np.asarray((first + last) / 2.0, dtype=np.float64)


def rank_bins(values: Float64Array, bins: int) -> Int64Array:
    """Quantile bins: ``floor(minrank * bins / n)``, minrank the 0-based position in the
    ascending sort of the first value equal to x (ties share a bin)."""
    n = values.size
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    minrank = np.searchsorted(np.sort(values), values, side="left").astype(np.int64)
    return (minrank * bins) // n


def equal_width_bins(values: Float64Array, bins: int) -> Int64Array:
    """SPEC §7 bins over [min, max] of ``values`` (finite) through the backend's one binning
    (``crackle_runtime._numpy.info.bin_indices``): width = (max - min) / bins, index =
    min(floor((v - min) / width), bins - 1); max == min puts everything in bin 0."""
    if values.size == 0:
        return np.zeros(0, dtype=np.int64)
    return bin_indices(values, bins, float(values.min()), float(values.max()))


def median(values: Float64Array, axis: int = -1) -> Float64Array:
    """Median along ``axis``: the middle value, or (a + b) / 2 of the two middle values for
    an even count (not np.median's mean, so the arithmetic is spelled out)."""
    values = np.moveaxis(values, axis, -1)
    count = values.shape[-1]
    if count == 0:
        raise ValueError("median of an empty sample")
    half = count // 2
    if count % 2:
        return np.asarray(np.partition(values, half, axis=-1)[..., half], dtype=np.float64)
    # After partitioning at ``half`` the lower middle value is the largest of the first half.
    middle = np.partition(values, half, axis=-1)
    lower = middle[..., :half].max(axis=-1)
    return np.asarray((lower + middle[..., half]) / 2.0, dtype=np.float64)


def row_counts(codes: Int64Array, cells: int) -> Int64Array:
    """Counts of the codes (each in [0, cells)) of every row of a 2-D array: rows x cells."""
    rows = codes.shape[0]
    offsets = (np.arange(rows, dtype=np.int64) * cells)[:, None]
    counts = np.bincount((codes + offsets).ravel(), minlength=rows * cells)
    return counts.reshape(rows, cells)


def entropy_rows(codes: Int64Array, cells: int) -> Float64Array:
    """Entropy (bits) of the codes of every row of a 2-D array."""
    return entropy_of_counts(row_counts(codes, cells), codes.shape[1])


def entropy(codes: Int64Array, cells: int) -> float:
    return float(entropy_rows(codes[None, :], cells)[0])


class RankBinCache:
    """Rank bins of a metric's values over a task subset, computed once per (metric,
    subset, bins) for the subsets shared by many pairs (every task, or a thinned / latest
    part of every task), so complete metrics are sorted once, not once per pair."""

    def __init__(self, values: Float64Array, complete: BoolArray) -> None:
        self.values = values
        self.complete = complete
        self.cache: dict[tuple[int, str, int], Int64Array] = {}

    def get(
        self, metric: int, other: int, mask: BoolArray, part: slice, key: str, bins: int
    ) -> Int64Array:
        shared = bool(self.complete[metric] and self.complete[other])
        if shared and (metric, key, bins) in self.cache:
            return self.cache[(metric, key, bins)]
        series = self.values[metric][mask][part]
        codes = rank_bins(series, bins)
        if shared:
            self.cache[(metric, key, bins)] = codes
        return codes


def doubled_midranks(values: Float64Array) -> Int64Array:
    """2 x the mid-rank of each value (1-based; ties share the mean of their ranks), an
    integer: a tie group occupying sorted positions i..j (0-based) gets i + j + 2."""
    n = values.size
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    ends = np.r_[starts[1:], n] - 1
    group = np.cumsum(np.r_[True, ordered[1:] != ordered[:-1]]) - 1
    ranks = np.empty(n, dtype=np.int64)
    ranks[order] = (starts + ends + 2)[group]
    return ranks
