"""The NumPy twin of the mergeable cooling state (``src-rust/state/``): the same flat f64
body, the same summaries, the same merge formulas in the same order, so both backends give
the same state (bit for bit, the sums being sequential on both sides).

A state's flat body: ``[metrics, start, tasks, bucket_size, first_bucket, bucket_count,
complete_count]``, then one series per metric (SERIES_FIELDS), one pair series per metric
pair i < j and one of the pair's first differences (PAIR_FIELDS each), the complete tasks'
first values (m), mean offsets (m) and co-moments (m×m, row-major), then one series per
bucket and metric (bucket-major). A mean is held as ``mean - first`` (``mean_offset``), so
that data offset by 1e9 merges to the same M2 as a two-pass computation. See
``crackle_runtime._state`` for the byte form.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from crackle_runtime._numpy._stats import sequential_sum

__all__ = [
    "HEADER_WIDTH",
    "STATE_PAIR_FIELDS",
    "STATE_SERIES_FIELDS",
    "flat_length",
    "merge_series",
    "series_of",
    "state_merge",
    "state_of_columns",
]

Float64Array = NDArray[np.float64]

STATE_SERIES_FIELDS = [
    "count",
    "mean_offset",
    "m2",
    "lag",
    "first",
    "last",
    "min",
    "max",
    "changes",
    "non_decreasing",
    "non_increasing",
    "range",
]
STATE_PAIR_FIELDS = [
    "count",
    "mean_offset_x",
    "mean_offset_y",
    "m2_x",
    "m2_y",
    "comoment",
    "lag_x",
    "lag_y",
    "first_x",
    "first_y",
    "last_x",
    "last_y",
    "min_x",
    "min_y",
    "max_x",
    "max_y",
]
SERIES_WIDTH = len(STATE_SERIES_FIELDS)
PAIR_WIDTH = len(STATE_PAIR_FIELDS)
HEADER_WIDTH = 7

_EMPTY_SERIES = [0.0, 0.0, 0.0, 0.0, math.nan, math.nan, math.inf, -math.inf, 0.0, 1.0, 1.0, 0.0]
_EMPTY_PAIR = [0.0] * 8 + [math.nan] * 4 + [math.inf] * 2 + [-math.inf] * 2


def flat_length(metrics: int, buckets: int) -> int:
    """Length of the flat body of a state over ``metrics`` metrics and ``buckets`` buckets."""
    pairs = metrics * (metrics - 1) // 2
    return (
        HEADER_WIDTH
        + metrics * SERIES_WIDTH
        + 2 * pairs * PAIR_WIDTH
        + 2 * metrics
        + metrics * metrics
        + buckets * metrics * SERIES_WIDTH
    )


def series_of(values: Float64Array) -> list[float]:
    """The series summary of ``values`` (in order, none NaN); Series::of."""
    if values.size == 0:
        return list(_EMPTY_SERIES)
    first = float(values[0])
    shifted = values - first
    offset = sequential_sum(shifted) / values.size
    centred = shifted - offset
    steps = np.diff(values)
    partial = np.cumsum(centred)
    return [
        float(values.size),
        offset,
        sequential_sum(centred * centred),
        sequential_sum(centred[:-1] * centred[1:]),
        first,
        float(values[-1]),
        float(values.min()),
        float(values.max()),
        float(np.count_nonzero(steps != 0.0)),
        float(bool((steps >= 0.0).all())),
        float(bool((steps <= 0.0).all())),
        float(np.abs(partial).max()),
    ]


def _pair(xs: Float64Array, ys: Float64Array) -> list[float]:
    """The pair series summary of ``(xs[t], ys[t])``; PairSeries::of."""
    if xs.size == 0:
        return list(_EMPTY_PAIR)
    x, y = series_of(xs), series_of(ys)
    comoment = sequential_sum(((xs - x[4]) - x[1]) * ((ys - y[4]) - y[1]))
    return [
        x[0],
        x[1],
        y[1],
        x[2],
        y[2],
        comoment,
        x[3],
        y[3],
        x[4],
        y[4],
        x[5],
        y[5],
        x[6],
        y[6],
        x[7],
        y[7],
    ]


def _check_bucket_size(bucket_size: int) -> None:
    if bucket_size < 1 or bucket_size >= 2**53:
        raise ValueError(f"bucket_size must be >= 1 and < 2**53, got {bucket_size}")


def state_of_columns(columns: Float64Array, start: int, bucket_size: int) -> Float64Array:
    """The flat state of the tasks in ``columns`` ((metrics, tasks), NaN = absent), the
    first at position ``start``; RunState::of_columns."""
    _check_bucket_size(bucket_size)
    columns = np.asarray(columns, dtype=np.float64)
    if columns.ndim != 2:
        raise ValueError("columns: every metric must have one value per task")
    if np.isinf(columns).any():
        raise ValueError("columns: values must be finite (NaN marks an absent value)")
    metrics, tasks = columns.shape  # without metrics: the tasks are counted, no bucket
    if start < 0 or start + tasks >= 2**53:
        raise ValueError(f"start: tasks {start}.. go beyond 2**53 (positions are stored as f64)")
    present = ~np.isnan(columns)
    series: list[list[float]] = []
    pairs: list[list[float]] = []
    differences: list[list[float]] = []
    complete_count = 0
    origin = np.zeros(metrics)
    means = np.zeros(metrics)
    comoment = np.zeros((metrics, metrics))
    buckets: list[list[float]] = []
    first_bucket = start // bucket_size
    if tasks:
        series = [series_of(columns[k][present[k]]) for k in range(metrics)]
        for i in range(metrics):
            for j in range(i + 1, metrics):
                both = present[i] & present[j]
                xs, ys = columns[i][both], columns[j][both]
                pairs.append(_pair(xs, ys))
                differences.append(_pair(np.diff(xs), np.diff(ys)))
        complete = present.all(axis=0) if metrics else np.zeros(0, dtype=bool)
        complete_count = int(np.count_nonzero(complete))
        if complete_count and metrics:
            rows = columns[:, complete]
            origin = rows[:, 0].copy()
            shifted = rows - origin[:, None]
            means = np.array([sequential_sum(row) / complete_count for row in shifted])
            centred = shifted - means[:, None]
            comoment = np.array(
                [
                    [sequential_sum(centred[a] * centred[b]) for b in range(metrics)]
                    for a in range(metrics)
                ]
            )
        if metrics:
            last_bucket = (start + tasks - 1) // bucket_size
            for bucket in range(first_bucket, last_bucket + 1):
                low = max(bucket * bucket_size, start) - start
                high = min((bucket + 1) * bucket_size, start + tasks) - start
                for k in range(metrics):
                    values = columns[k, low:high]
                    buckets.append(series_of(values[~np.isnan(values)]))
    else:
        series = [list(_EMPTY_SERIES) for _ in range(metrics)]
        pairs = [list(_EMPTY_PAIR) for _ in range(metrics * (metrics - 1) // 2)]
        differences = [list(_EMPTY_PAIR) for _ in pairs]
    bucket_count = len(buckets) // metrics if metrics else 0
    header = [metrics, start, tasks, bucket_size, first_bucket, bucket_count, complete_count]
    parts = [
        np.array(header, dtype=np.float64),
        np.array(series, dtype=np.float64).reshape(-1),
        np.array(pairs + differences, dtype=np.float64).reshape(-1),
        origin,
        means.reshape(-1),
        comoment.reshape(-1),
        np.array(buckets, dtype=np.float64).reshape(-1),
    ]
    return np.concatenate(parts)


# --- merging -----------------------------------------------------------------------------------


def _moments(
    a: list[float], b: list[float], at: tuple[int, int, int, int, int]
) -> tuple[float, float, float, float, float, float]:
    """Moments::merge of the runs ``a`` and ``b`` for the value whose count, mean offset, lag,
    first and last sit at ``at[0..5]`` (indices into the rows): ``(delta, weight,
    mean_offset, lag, shift_a, shift_b)``."""
    count, offset, lag, first, last = at
    na, nb = a[count], b[count]
    n = na + nb
    mean_b = (b[first] - a[first]) + b[offset]
    delta = mean_b - a[offset]
    mean_offset = a[offset] + delta * nb / n
    d_a, d_b = a[offset] - mean_offset, mean_b - mean_offset
    first_dev_a, last_dev_a = -a[offset], (a[last] - a[first]) - a[offset]
    first_dev_b, last_dev_b = -b[offset], (b[last] - b[first]) - b[offset]
    seam = (last_dev_a + d_a) * (first_dev_b + d_b)
    lag_a = a[lag] - d_a * (last_dev_a + first_dev_a) + (na - 1.0) * d_a * d_a
    lag_b = b[lag] - d_b * (last_dev_b + first_dev_b) + (nb - 1.0) * d_b * d_b
    return delta, na * nb / n, mean_offset, lag_a + lag_b + seam, na * abs(d_a), nb * abs(d_b)


def merge_series(a: list[float], b: list[float]) -> list[float]:
    """Series::merge: ``a`` followed by ``b``."""
    if b[0] == 0.0:
        return list(a)
    if a[0] == 0.0:
        return list(b)
    delta, weight, offset, lag, shift_a, shift_b = _moments(a, b, (0, 1, 3, 4, 5))
    return [
        a[0] + b[0],
        offset,
        a[2] + b[2] + delta * delta * weight,
        lag,
        a[4],
        b[5],
        min(a[6], b[6]),
        max(a[7], b[7]),
        a[8] + b[8] + float(b[4] != a[5]),
        float(a[9] != 0.0 and b[9] != 0.0 and b[4] >= a[5]),
        float(a[10] != 0.0 and b[10] != 0.0 and b[4] <= a[5]),
        max(a[11] + shift_a, shift_a + b[11] + shift_b),
    ]


def _merge_pair(a: list[float], b: list[float]) -> list[float]:
    """PairSeries::merge: ``a`` followed by ``b``."""
    if b[0] == 0.0:
        return list(a)
    if a[0] == 0.0:
        return list(b)
    out = list(_EMPTY_PAIR)
    out[0] = a[0] + b[0]
    deltas = [0.0, 0.0]
    weight = 0.0
    for k in range(2):
        delta, weight, offset, lag, _, _ = _moments(a, b, (0, 1 + k, 6 + k, 8 + k, 10 + k))
        deltas[k] = delta
        out[1 + k] = offset
        out[3 + k] = a[3 + k] + b[3 + k] + delta * delta * weight
        out[6 + k] = lag
        out[8 + k] = a[8 + k]
        out[10 + k] = b[10 + k]
        out[12 + k] = min(a[12 + k], b[12 + k])
        out[14 + k] = max(a[14 + k], b[14 + k])
    out[5] = a[5] + b[5] + deltas[0] * deltas[1] * weight
    return out


def _header(flat: Float64Array, name: str) -> list[int]:
    if flat.ndim != 1 or flat.size < HEADER_WIDTH:
        raise ValueError(f"{name}: {flat.size} values, fewer than the {HEADER_WIDTH} of the header")
    header = flat[:HEADER_WIDTH]
    if not (
        np.isfinite(header).all() and (header >= 0).all() and (header == np.floor(header)).all()
    ):
        raise ValueError(f"{name}: header values {header.tolist()} are not counts")
    metrics, start, tasks, bucket_size, first_bucket, bucket_count, complete = (
        int(v) for v in header
    )
    if bucket_size < 1:
        raise ValueError(f"{name}: bucket_size is 0")
    expected_buckets = (
        0
        if tasks == 0 or metrics == 0
        else (start + tasks - 1) // bucket_size - start // bucket_size + 1
    )
    if first_bucket != start // bucket_size or bucket_count != expected_buckets:
        raise ValueError(
            f"{name}: buckets {first_bucket} + {bucket_count} do not cover tasks "
            f"{start}..{start + tasks}"
        )
    expected = flat_length(metrics, bucket_count)
    if flat.size != expected:
        raise ValueError(
            f"{name}: {flat.size} values where {metrics} metrics and {bucket_count} buckets "
            f"take {expected}"
        )
    counts = [metrics, start, tasks, bucket_size, first_bucket, bucket_count, complete]
    check_counts(flat, counts, name)
    return counts


def check_counts(flat: Float64Array, header: list[int], name: str) -> None:
    """ValueError unless each bucket counts at most its tasks and each metric's count is
    the sum of its buckets' (``RunState::from_flat`` checks the same)."""
    metrics, start, tasks, size, first, buckets, _ = header
    series = flat[HEADER_WIDTH : HEADER_WIDTH + metrics * SERIES_WIDTH]
    counts = series.reshape(metrics, SERIES_WIDTH)[:, 0]
    per_bucket = flat[flat_length(metrics, 0) :].reshape(buckets, metrics, SERIES_WIDTH)[:, :, 0]
    index = first + np.arange(buckets)
    spans = np.minimum((index + 1) * size, start + tasks) - np.maximum(index * size, start)
    fits = (per_bucket >= 0) & (per_bucket <= spans[:, None]) & (per_bucket == np.floor(per_bucket))
    if not fits.all():
        b, k = (int(v) for v in np.argwhere(~fits)[0])
        raise ValueError(
            f"{name}: bucket {b} of metric {k} counts {per_bucket[b, k]:g} values in "
            f"{int(spans[b])} tasks"
        )
    summed = per_bucket.sum(axis=0)
    if not np.array_equal(summed, counts):
        k = int(np.flatnonzero(summed != counts)[0])
        raise ValueError(
            f"{name}: metric {k} counts {int(counts[k])} values, its buckets {int(summed[k])}"
        )


def _rows(flat: Float64Array, at: int, count: int, width: int) -> list[list[float]]:
    return [flat[at + r * width : at + (r + 1) * width].tolist() for r in range(count)]


def state_merge(first: Float64Array, second: Float64Array) -> Float64Array:
    """The flat state of the run ``first`` followed by the run ``second``; RunState::merge."""
    a = np.asarray(first, dtype=np.float64)
    b = np.asarray(second, dtype=np.float64)
    ha, hb = _header(a, "state"), _header(b, "state")
    m = ha[0]
    if m != hb[0]:
        raise ValueError(f"other: states over different numbers of metrics ({m} and {hb[0]})")
    if ha[3] != hb[3]:
        raise ValueError(f"other: states with different bucket sizes ({ha[3]} and {hb[3]})")
    if ha[1] + ha[2] != hb[1]:
        raise ValueError(
            f"other: runs are not consecutive (this one covers tasks {ha[1]}..{ha[1] + ha[2]}, "
            f"the next starts at {hb[1]})"
        )
    if ha[2] == 0:
        return b.copy()
    if hb[2] == 0:
        return a.copy()
    p = m * (m - 1) // 2
    at = HEADER_WIDTH
    series = [
        merge_series(x, y)
        for x, y in zip(_rows(a, at, m, SERIES_WIDTH), _rows(b, at, m, SERIES_WIDTH), strict=True)
    ]
    at += m * SERIES_WIDTH
    pairs_a, pairs_b = _rows(a, at, p, PAIR_WIDTH), _rows(b, at, p, PAIR_WIDTH)
    at += p * PAIR_WIDTH
    diffs_a, diffs_b = _rows(a, at, p, PAIR_WIDTH), _rows(b, at, p, PAIR_WIDTH)
    at += p * PAIR_WIDTH
    pairs = [_merge_pair(x, y) for x, y in zip(pairs_a, pairs_b, strict=True)]
    differences = []
    for x, y, dx, dy in zip(pairs_a, pairs_b, diffs_a, diffs_b, strict=True):
        if x[0] == 0.0 or y[0] == 0.0:
            differences.append(_merge_pair(dx, dy))
            continue
        seam = _pair(np.array([y[8] - x[10]]), np.array([y[9] - x[11]]))
        differences.append(_merge_pair(_merge_pair(dx, seam), dy))
    na, nb = float(ha[6]), float(hb[6])
    origin_a, origin_b = a[at : at + m], b[at : at + m]
    means_a, means_b = a[at + m : at + 2 * m], b[at + m : at + 2 * m]
    co_a, co_b = a[at + 2 * m : at + 2 * m + m * m], b[at + 2 * m : at + 2 * m + m * m]
    at += 2 * m + m * m
    if nb == 0.0:
        complete, origin, means, comoment = ha[6], origin_a.copy(), means_a.copy(), co_a.copy()
    elif na == 0.0:
        complete, origin, means, comoment = hb[6], origin_b.copy(), means_b.copy(), co_b.copy()
    else:
        n = na + nb
        deltas = [
            ((float(origin_b[k]) - float(origin_a[k])) + float(means_b[k])) - float(means_a[k])
            for k in range(m)
        ]
        means = np.array([float(means_a[k]) + deltas[k] * nb / n for k in range(m)])
        weight = na * nb / n
        comoment = np.array(
            [
                float(co_a[index])
                + float(co_b[index])
                + deltas[index // m] * deltas[index % m] * weight
                for index in range(m * m)
            ]
        )
        origin = origin_a.copy()
        complete = ha[6] + hb[6]
    buckets_a = a[at:].reshape(-1, SERIES_WIDTH)
    buckets_b = b[at:].reshape(-1, SERIES_WIDTH)
    last_bucket = ha[4] + ha[5] - 1
    if m and hb[4] == last_bucket:
        shared = [merge_series(buckets_a[-m + k].tolist(), buckets_b[k].tolist()) for k in range(m)]
        buckets = np.concatenate(
            [buckets_a[:-m].reshape(-1), np.array(shared).reshape(-1), buckets_b[m:].reshape(-1)]
        )
        bucket_count = ha[5] + hb[5] - 1
    else:
        buckets = np.concatenate([buckets_a.reshape(-1), buckets_b.reshape(-1)])
        bucket_count = ha[5] + hb[5]
    header = [m, ha[1], ha[2] + hb[2], ha[3], ha[4], bucket_count, complete]
    return np.concatenate(
        [
            np.array(header, dtype=np.float64),
            np.array(series, dtype=np.float64).reshape(-1),
            np.array(pairs + differences, dtype=np.float64).reshape(-1),
            np.asarray(origin, dtype=np.float64),
            np.asarray(means, dtype=np.float64),
            np.asarray(comoment, dtype=np.float64),
            buckets,
        ]
    )
