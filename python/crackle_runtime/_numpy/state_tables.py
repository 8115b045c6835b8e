"""The NumPy twin of ``src-rust/state/tables.rs``: the phase-transition and correlation
tables from a flat mergeable state, reading only a few buckets of the values (SPEC §14).

The method, its exactness (the kernels' values up to rounding) and the bound that leaves
most buckets unread are documented in the Rust module. The bucket merges run over a Python
list (one entry per bucket of 4,096 tasks by default), so this twin costs O(buckets + the
buckets read), not O(tasks).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from crackle_runtime._args import Params
from crackle_runtime._numpy._stats import pearson_from_sums, welch_from_moments
from crackle_runtime._numpy.detect import correlation, phase_transition
from crackle_runtime._numpy.detect.shared.columns import empty_result, store
from crackle_runtime._numpy.state import (
    HEADER_WIDTH,
    PAIR_WIDTH,
    SERIES_WIDTH,
    _header,
    flat_length,
    merge_series,
    series_of,
)

__all__ = ["FROM_STATE", "table_from_state"]

FROM_STATE = ("phase_transition", "correlation")
# a bucket is read when its bound reaches the best score found within this relative margin
_BOUND_MARGIN = 1e-9
_EMPTY = series_of(np.empty(0))

Float64Array = NDArray[np.float64]
# SERIES_FIELDS positions
_COUNT, _OFFSET, _M2, _LAG, _FIRST, _LAST, _MIN, _MAX, _RANGE = 0, 1, 2, 3, 4, 5, 6, 7, 11


def _mean(s: list[float]) -> float:
    return s[_FIRST] + s[_OFFSET]


class _Buckets:
    """One metric's non-empty buckets in task order, with the filtering pass over its
    column (``Buckets`` in the Rust module)."""

    def __init__(self, flat: Float64Array, header: list[int], metric: int, column: Float64Array):
        m, start, tasks, size, first_bucket, bucket_count, _ = header
        at = flat_length(m, 0)  # the buckets follow everything else
        rows = flat[at:].reshape(bucket_count, m, SERIES_WIDTH)[:, metric, :]
        self.column = column
        self.series: list[list[float]] = []
        self.spans: list[tuple[int, int]] = []
        self.before = [0]
        for b, row in enumerate(rows.tolist()):
            if row[_COUNT] == 0.0:
                continue
            bucket = first_bucket + b
            low = max(bucket * size, start) - start
            high = min((bucket + 1) * size, start + tasks) - start
            self.before.append(self.before[-1] + int(row[_COUNT]))
            self.series.append(row)
            self.spans.append((low, high))

    def values(self, index: int) -> Float64Array:
        low, high = self.spans[index]
        values = self.column[low:high]
        return values[~np.isnan(values)]

    def bucket_of(self, k: int) -> int:
        return int(np.searchsorted(self.before, k, side="right")) - 1

    def range(self, low: int, high: int) -> list[float]:
        """The summary of the present values at positions low..high."""
        if low >= high:
            return list(_EMPTY)
        a, b = self.bucket_of(low), self.bucket_of(high - 1)
        start_a, start_b = self.before[a], self.before[b]
        if a == b:
            return series_of(self.values(a)[low - start_a : high - start_a])
        summary = self.series[a] if low == start_a else series_of(self.values(a)[low - start_a :])
        for bucket in self.series[a + 1 : b]:
            summary = merge_series(summary, bucket)
        last = (
            self.series[b]
            if high == self.before[b + 1]
            else series_of(self.values(b)[: high - start_b])
        )
        return merge_series(summary, last)

    def best_change(self, whole: list[float]) -> int:
        """argmax_k S_k^2 n / (k (n - k)), first k on ties; 1 when every value is equal."""
        n = whole[_COUNT]
        if whole[_M2] == 0.0:
            return 1

        def deviation(s: list[float]) -> float:
            return (s[_FIRST] - whole[_FIRST]) + (s[_OFFSET] - whole[_OFFSET])

        partial_before: list[float] = []
        candidates: list[tuple[float, int]] = []
        prefix = list(_EMPTY)
        for bucket in self.series:
            before = 0.0 if prefix[_COUNT] == 0 else prefix[_COUNT] * deviation(prefix)
            partial_before.append(before)
            prefix = merge_series(prefix, bucket)
            k = prefix[_COUNT]
            if 1 <= k < n:
                partial = k * deviation(prefix)
                candidates.append((partial * partial * n / (k * (n - k)), int(k)))
        best = max((s for s, _ in candidates), default=-math.inf)
        bounds: list[tuple[float, int]] = []
        for index, bucket in enumerate(self.series):
            c = bucket[_COUNT]
            if c < 2:
                continue
            k0 = float(self.before[index])
            reach = abs(partial_before[index]) + bucket[_RANGE] + c * abs(deviation(bucket))
            denominator = min((k0 + 1.0) * (n - k0 - 1.0), (k0 + c - 1.0) * (n - k0 - c + 1.0))
            if denominator > 0.0:
                bounds.append((reach * reach * n / denominator, index))
        bounds.sort(key=lambda item: (-item[0], item[1]))
        for bound, index in bounds:
            if bound < best * (1.0 - _BOUND_MARGIN):
                break
            values = self.values(index)
            k0 = self.before[index]
            # the running sum continued value by value, as the Rust loop adds them
            steps = ((values[:-1] - whole[_FIRST]) - whole[_OFFSET]).tolist()
            partials = itertools.accumulate(steps, initial=partial_before[index])
            next(partials)
            for t, partial in enumerate(partials):
                k = k0 + t + 1
                if k < n:
                    score = partial * partial * n / (k * (n - k))
                    candidates.append((score, k))
                    best = max(best, score)
        return min((k for s, k in candidates if s == best), default=1)


def _pieces_rho(pieces: list[list[float]], count: float) -> float:
    """residual_rho from the pieces' summaries (``pieces_rho`` in the Rust module)."""
    energy = 0.0
    for piece in pieces:
        energy += piece[_M2]
    if energy <= 0.0:
        return 0.0
    products = 0.0
    for piece in pieces:
        products += piece[_LAG]
    for a, b in itertools.pairwise(pieces):
        products += ((a[_LAST] - a[_FIRST]) - a[_OFFSET]) * -b[_OFFSET]
    rho = products / energy
    return rho + len(pieces) * (1.0 + 3.0 * rho) / count


def _phase(
    flat: Float64Array, header: list[int], metric: int, column: Float64Array, sensitivity: float
) -> dict[str, Any]:
    at = HEADER_WIDTH + metric * SERIES_WIDTH
    whole = flat[at : at + SERIES_WIDTH].tolist()
    count = int(whole[_COUNT])
    if count < 2:
        return {"count": count}
    buckets = _Buckets(flat, header, metric, column)
    half = count // 2
    first, second = buckets.range(0, half), buckets.range(half, count)
    change = buckets.best_change(whole)
    cuts = sorted({0, half, change, count})
    pieces = [buckets.range(low, high) for low, high in itertools.pairwise(cuts)]
    rho = _pieces_rho(pieces, count)
    difference = (first[_FIRST] - second[_FIRST]) + (first[_OFFSET] - second[_OFFSET])
    _, p_value = welch_from_moments(
        (first[_COUNT], first[_M2]),
        (second[_COUNT], second[_M2]),
        difference,
        phase_transition.autocorrelation_inflation(rho),
    )
    largest = max(abs(whole[_MIN]), abs(whole[_MAX]))
    halves = (_mean(first), _mean(second), _mean(whole))
    row = phase_transition.phase_row(count, halves, largest, change, rho, p_value, sensitivity)
    return {"count": count, **row}


def _correlation(
    flat: Float64Array,
    header: list[int],
    pair: tuple[int, int],
    columns: tuple[Float64Array, Float64Array],
    threshold: float,
) -> dict[str, Any]:
    m = header[0]
    # the pair's statistics are symmetric: either order reads the same summary
    a, b = min(pair), max(pair)
    index = a * m - a * (a + 1) // 2 + (b - a - 1)
    at = HEADER_WIDTH + m * SERIES_WIDTH + index * PAIR_WIDTH
    row = flat[at : at + PAIR_WIDTH].tolist()
    n = int(row[0])
    m2_x, m2_y, comoment = row[3], row[4], row[5]
    constant = row[12] == row[14] or row[13] == row[15]
    r = 0.0 if n < 2 or constant else pearson_from_sums(comoment, m2_x, m2_y)
    p_value = math.nan
    if abs(r) >= threshold:
        x, y = columns
        both = ~np.isnan(x) & ~np.isnan(y)
        # the latest MAX_TESTED_PAIRS tasks having both are all association_p_value reads
        seen = np.cumsum(both[::-1])
        reach = int(np.searchsorted(seen, correlation.MAX_TESTED_PAIRS)) + 1
        start = max(x.size - reach, 0)
        p_value = correlation.association_p_value(x[start:], y[start:])
    return correlation.correlation_row(pair, n, r, p_value, threshold)


def table_from_state(
    name: str,
    flat: Float64Array,
    columns: Float64Array,
    metrics: NDArray[np.int64],
    params: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The table of detector ``name`` (one of :data:`FROM_STATE`) over the state metrics
    ``metrics`` from the flat state ``flat``, reading a few buckets of ``columns`` (the
    state's metrics x its tasks, NaN = absent); ``table_from_state`` in the Rust module."""
    flat = np.asarray(flat, dtype=np.float64)
    header = _header(flat, "state")
    values = np.asarray(columns, dtype=np.float64)
    m, tasks = header[0], header[2]
    if values.ndim != 2 or values.shape[0] != m or values.shape[1] != tasks:
        raise ValueError(
            f"columns: expected {m} metrics of {tasks} values (the state's), got "
            f"{values.shape[0] if values.ndim else 0} of "
            f"{values.shape[1] if values.ndim == 2 else 0}"
        )
    selection = [int(k) for k in np.asarray(metrics).tolist()]
    for k in selection:
        if not 0 <= k < m:
            raise ValueError(f"metrics: index {k} out of range for {m} metrics")
    if name not in FROM_STATE:
        raise ValueError(f"name: no table from the state for {name!r} (one of {list(FROM_STATE)})")
    module = phase_transition if name == "phase_transition" else correlation
    checked = Params(params).resolve(name, module.PARAMS)
    if name == "phase_transition":
        sensitivity = checked.finite("sensitivity", 0.0, inclusive=True)
        fields = phase_transition.FIELDS
        result = empty_result(
            fields, len(selection), ints=("count", "change_index"), bools=("detected",)
        )
        result["change_index"][:] = -1
        for row, k in enumerate(selection):
            store(result, row, _phase(flat, header, k, values[k], sensitivity))
        return result
    threshold = checked.unit_interval("threshold")
    pairs = list(itertools.combinations(range(len(selection)), 2))
    result = empty_result(correlation.FIELDS, len(pairs), ints=("i", "j", "n"), bools=("detected",))
    for row, (i, j) in enumerate(pairs):
        a, b = selection[i], selection[j]
        found = _correlation(flat, header, (a, b), (values[a], values[b]), threshold)
        store(result, row, {**found, "i": i, "j": j})
    return result
