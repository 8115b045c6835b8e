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

__all__ = ["FROM_STATE", "state_rows_needed", "table_from_state"]

FROM_STATE = ("phase_transition", "correlation")
# a bucket is read when its bound reaches the best score found within this relative margin
_BOUND_MARGIN = 1e-9
# rows_needed asks for at most this many buckets of a metric's best-change search at a time
NEEDED_BATCH = 4
_EMPTY = series_of(np.empty(0))

Float64Array = NDArray[np.float64]
# SERIES_FIELDS positions
_COUNT, _OFFSET, _M2, _LAG, _FIRST, _LAST, _MIN, _MAX, _RANGE = 0, 1, 2, 3, 4, 5, 6, 7, 11


def _mean(s: list[float]) -> float:
    return s[_FIRST] + s[_OFFSET]


class _Rows:
    """The values the filtering pass reads: every task (``positions`` None) or the tasks at
    ``positions`` (``Rows`` in the Rust module); ``short_tail``: a correlation's p-value
    reads the latest gathered run even when it holds fewer tasks having both metrics than
    the p-value reads on every row."""

    def __init__(
        self,
        columns: Float64Array,
        positions: NDArray[np.int64] | None,
        short_tail: bool = False,
    ):
        self.columns = columns
        self.positions = positions
        self.short_tail = short_tail

    def check(self, metrics: int, tasks: int) -> None:
        values, positions = self.columns, self.positions
        expected = tasks if positions is None else positions.size
        if values.ndim != 2 or values.shape[0] != metrics or values.shape[1] != expected:
            gathered = "" if positions is None else " gathered tasks"
            raise ValueError(
                f"columns: expected {metrics} metrics of {expected} values (the state's"
                f"{gathered}), got {values.shape[0] if values.ndim else 0} of "
                f"{values.shape[1] if values.ndim == 2 else 0}"
            )
        if (
            positions is not None
            and positions.size
            and (np.any(np.diff(positions) <= 0) or positions[0] < 0 or positions[-1] >= tasks)
        ):
            raise ValueError(f"positions: must be strictly increasing task positions below {tasks}")

    def span(self, metric: int, low: int, high: int) -> Float64Array:
        """The values of ``metric`` at the tasks low..high (every one of them gathered)."""
        if self.positions is None:
            column: Float64Array = self.columns[metric, low:high]
            return column
        i, j = np.searchsorted(self.positions, [low, high])
        if j - i != high - low or metric >= self.columns.shape[0]:
            raise ValueError(
                f"positions: the tasks {low}..{high} the filtering pass reads were not "
                "gathered (see rows_needed)"
            )
        gathered: Float64Array = self.columns[metric, i:j]
        return gathered

    def tail(self, tasks: int) -> tuple[int, bool]:
        """Where the run of gathered tasks that ends at the last task starts, and whether
        it starts at the first task."""
        positions = self.positions
        if positions is None:
            return 0, True
        from_ = latest_run(positions, tasks)
        whole = from_ < positions.size and int(positions[from_]) == 0
        return from_, bool(whole or tasks == 0)


def latest_run(positions: NDArray[np.int64], tasks: int) -> int:
    """The index in ``positions`` (strictly increasing task positions) where the run of
    consecutive tasks that ends at the last task (``tasks - 1``) starts."""
    size = positions.size
    # contiguous up to the last task: position + (size - index) == tasks
    ends = positions + (size - np.arange(size)) == tasks
    return size - int(np.argmin(ends[::-1])) if not ends.all() else 0


class _Buckets:
    """One metric's non-empty buckets in task order; the filtering pass reads their values
    from a ``_Rows`` (``Buckets`` in the Rust module)."""

    def __init__(self, flat: Float64Array, header: list[int], metric: int):
        m, start, tasks, size, first_bucket, bucket_count, _ = header
        at = flat_length(m, 0)  # the buckets follow everything else
        rows = flat[at:].reshape(bucket_count, m, SERIES_WIDTH)[:, metric, :]
        self.metric = metric
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

    def values(self, rows: _Rows, index: int) -> Float64Array:
        """The present values of the index-th bucket; as many as the state counts there,
        or the rows are not those the state summarises."""
        low, high = self.spans[index]
        values = rows.span(self.metric, low, high)
        present = values[~np.isnan(values)]
        counted = int(self.series[index][_COUNT])
        if present.size != counted:
            raise ValueError(
                f"columns: tasks {low}..{high} hold {present.size} values of metric "
                f"{self.metric}, where the state counts {counted} (not the rows it summarises)"
            )
        return present

    def gathered(self, rows: _Rows, index: int) -> bool:
        """Whether ``rows`` holds every task of the index-th bucket."""
        low, high = self.spans[index]
        try:
            rows.span(self.metric, low, high)
        except ValueError:
            return False
        return True

    def bucket_of(self, k: int) -> int:
        return int(np.searchsorted(self.before, k, side="right")) - 1

    def range(self, rows: _Rows, low: int, high: int) -> list[float]:
        """The summary of the present values at positions low..high."""
        if low >= high:
            return list(_EMPTY)
        a, b = self.bucket_of(low), self.bucket_of(high - 1)
        start_a, start_b = self.before[a], self.before[b]
        if a == b:
            return series_of(self.values(rows, a)[low - start_a : high - start_a])
        summary = (
            self.series[a] if low == start_a else series_of(self.values(rows, a)[low - start_a :])
        )
        for bucket in self.series[a + 1 : b]:
            summary = merge_series(summary, bucket)
        last = (
            self.series[b]
            if high == self.before[b + 1]
            else series_of(self.values(rows, b)[: high - start_b])
        )
        return merge_series(summary, last)

    def scan(
        self, whole: list[float]
    ) -> tuple[list[float], list[tuple[float, int]], list[tuple[float, int]]]:
        """S_k at each bucket's start, the exact scores at the bucket boundaries and each
        bucket's bound on the scores inside it, highest first (``scan`` in the Rust
        module)."""
        n = whole[_COUNT]

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
        return partial_before, candidates, bounds

    def best_change(self, rows: _Rows, whole: list[float], missing: list[int] | None = None) -> int:
        """argmax_k S_k^2 n / (k (n - k)), first k on ties; 1 when every value is equal.
        A bucket ``rows`` lacks raises ValueError when ``missing`` is None; otherwise it is
        recorded there and skipped, up to NEEDED_BATCH of them."""
        n = whole[_COUNT]
        if whole[_M2] == 0.0:
            return 1
        partial_before, candidates, bounds = self.scan(whole)
        best = max((s for s, _ in candidates), default=-math.inf)
        for bound, index in bounds:
            if bound < best * (1.0 - _BOUND_MARGIN):
                break
            try:
                values = self.values(rows, index)
            except ValueError:
                if missing is None:
                    raise
                missing.append(index)
                if len(missing) >= NEEDED_BATCH:
                    break
                continue
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

    def needed(self, rows: _Rows, whole: list[float]) -> list[int]:
        """The buckets _phase reads that ``rows`` lacks: those of the best-change search
        (NEEDED_BATCH at a time), then those the cuts at the halves and the change fall in."""
        count = int(whole[_COUNT])
        if count < 2:
            return []
        missing: list[int] = []
        change = self.best_change(rows, whole, missing)
        if missing:
            return missing
        half = count // 2
        cuts = (0, half - 1, half, change - 1, change, count - 1)
        return sorted({i for i in map(self.bucket_of, cuts) if not self.gathered(rows, i)})


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
    flat: Float64Array, header: list[int], metric: int, rows: _Rows, sensitivity: float
) -> dict[str, Any]:
    at = HEADER_WIDTH + metric * SERIES_WIDTH
    whole = flat[at : at + SERIES_WIDTH].tolist()
    count = int(whole[_COUNT])
    if count < 2:
        return {"count": count}
    buckets = _Buckets(flat, header, metric)
    half = count // 2
    first, second = buckets.range(rows, 0, half), buckets.range(rows, half, count)
    change = buckets.best_change(rows, whole)
    cuts = sorted({0, half, change, count})
    pieces = [buckets.range(rows, low, high) for low, high in itertools.pairwise(cuts)]
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


def _complete_tested(
    rows: _Rows, tasks: int, k: int, cache: dict[int, Any]
) -> tuple[Float64Array, Float64Array] | None:
    """Metric k's tested latest MAX_TESTED_PAIRS gathered values (``correlation.tested``)
    when it has all of them, else None; prepared once per table (the Rust ``TailTests``)."""
    if k not in cache:
        tail, _ = rows.tail(tasks)
        column = rows.columns[k, tail:][-correlation.MAX_TESTED_PAIRS :]
        usable = column.size >= correlation.MIN_DIFFERENCED_PAIRS
        cache[k] = correlation.tested(column) if usable and not np.isnan(column).any() else None
    found: tuple[Float64Array, Float64Array] | None = cache[k]
    return found


def _correlation(
    flat: Float64Array,
    header: list[int],
    pair: tuple[int, int],
    rows: _Rows,
    threshold: float,
    cache: dict[int, Any],
) -> dict[str, Any]:
    m, tasks = header[0], header[2]
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
        tail, whole = rows.tail(tasks)
        x, y = rows.columns[pair[0], tail:], rows.columns[pair[1], tail:]
        both = ~np.isnan(x) & ~np.isnan(y)
        # the latest MAX_TESTED_PAIRS tasks having both are all association_p_value reads
        seen = np.cumsum(both[::-1])
        found = int(seen[-1]) if seen.size else 0
        if found < correlation.MAX_TESTED_PAIRS and not whole and not rows.short_tail:
            raise ValueError(
                f"positions: the latest gathered tasks hold {found} tasks having both metrics "
                f"{pair[0]} and {pair[1]}, fewer than the {correlation.MAX_TESTED_PAIRS} the "
                "p-value reads; gather more of the latest tasks"
            )
        reach = int(np.searchsorted(seen, correlation.MAX_TESTED_PAIRS)) + 1
        start = max(x.size - reach, 0)
        tested = [_complete_tested(rows, tasks, k, cache) for k in pair]
        if tested[0] is not None and tested[1] is not None:
            p_value = correlation.association(tested[0], tested[1])
        else:
            p_value = correlation.association_p_value(x[start:], y[start:])
    return correlation.correlation_row(pair, n, r, p_value, threshold)


def _selection(metrics: NDArray[np.int64], m: int) -> list[int]:
    selection = [int(k) for k in np.asarray(metrics).tolist()]
    for k in selection:
        if not 0 <= k < m:
            raise ValueError(f"metrics: index {k} out of range for {m} metrics")
    if len(set(selection)) != len(selection):
        raise ValueError(f"metrics: an index is named twice in {selection}")
    return selection


def table_from_state(
    name: str,
    flat: Float64Array,
    columns: Float64Array,
    metrics: NDArray[np.int64],
    params: Mapping[str, Any] | None = None,
    positions: NDArray[np.int64] | None = None,
    short_tail: bool = False,
) -> dict[str, Any]:
    """The table of detector ``name`` (one of :data:`FROM_STATE`) over the state metrics
    ``metrics`` from the flat state ``flat``, reading a few buckets of ``columns`` (the
    state's metrics x its tasks, or x the tasks at ``positions``; NaN = absent);
    ``short_tail`` True lets a correlation's p-value read fewer than the latest 10,000
    tasks having both metrics when those are all the latest gathered tasks hold;
    ``table_from_state`` in the Rust module."""
    flat = np.asarray(flat, dtype=np.float64)
    header = _header(flat, "state")
    m, tasks = header[0], header[2]
    rows = _Rows(
        np.asarray(columns, dtype=np.float64),
        None if positions is None else np.asarray(positions, dtype=np.int64),
        bool(short_tail),
    )
    rows.check(m, tasks)
    selection = _selection(metrics, m)
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
            store(result, row, _phase(flat, header, k, rows, sensitivity))
        return result
    threshold = checked.unit_interval("threshold")
    pairs = list(itertools.combinations(range(len(selection)), 2))
    result = empty_result(correlation.FIELDS, len(pairs), ints=("i", "j", "n"), bools=("detected",))
    cache: dict[int, Any] = {}  # metric -> its tested latest values, when complete
    for row, (i, j) in enumerate(pairs):
        a, b = selection[i], selection[j]
        found = _correlation(flat, header, (a, b), rows, threshold, cache)
        store(result, row, {**found, "i": i, "j": j})
    return result


def state_rows_needed(
    flat: Float64Array,
    metrics: NDArray[np.int64],
    columns: Float64Array | None = None,
    positions: NDArray[np.int64] | None = None,
) -> NDArray[np.int64]:
    """The tasks the phase-transition table of the state metrics ``metrics`` reads next
    and the gathered ``columns`` (x the tasks at ``positions``; None: nothing gathered)
    lack, as (n, 2) ``[low, high)`` spans, sorted and disjoint; ``state_rows_needed`` in
    the Rust module (``rows_needed`` in ``src-rust/state/tables.rs``)."""
    flat = np.asarray(flat, dtype=np.float64)
    header = _header(flat, "state")
    m, tasks = header[0], header[2]
    selection = _selection(metrics, m)
    if columns is None:
        rows = _Rows(np.empty((0, 0)), np.empty(0, dtype=np.int64))
    else:
        rows = _Rows(
            np.asarray(columns, dtype=np.float64),
            np.asarray([] if positions is None else positions, dtype=np.int64),
        )
        rows.check(m, tasks)
    spans: list[tuple[int, int]] = []
    for k in selection:
        at = HEADER_WIDTH + k * SERIES_WIDTH
        buckets = _Buckets(flat, header, k)
        whole = flat[at : at + SERIES_WIDTH].tolist()
        spans.extend(buckets.spans[i] for i in buckets.needed(rows, whole))
    merged: list[list[int]] = []
    for low, high in sorted(spans):
        if merged and low <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], high)
        else:
            merged.append([low, high])
    return np.array(merged, dtype=np.int64).reshape(len(merged), 2)
