"""The added detector kernels of the NumPy backend (design/kernels5.md): outlier scores,
distribution shifts, nonlinear dependence, information flow and conservation laws.

``columns`` is a float64 array (metrics x tasks), NaN where a task lacks a metric. Every
kernel mirrors the Rust core name for name and gives the same results for the same seed:
permutations come from SplitMix64 (:mod:`._perm`), sums that feed a discrete decision run
left to right (bin by bin, cell by cell), and many permutation rounds are evaluated at once
as the rows of one array.
"""

from __future__ import annotations

import math
import operator
from itertools import combinations
from typing import Any

import numpy as np
from numpy.typing import NDArray

from crackle_runtime._numpy._perm import (
    SharedPermutations,
    equal_width_bins,
    median,
    permutation,
    rank_bins,
    sequential_p_value,
    smallest_positions,
    stream_outputs,
)
from crackle_runtime._numpy._stats import (
    all_equal,
    mean_and_sum_of_squares,
    pearson,
    sequential_sum,
)
from crackle_runtime._numpy.detect import as_columns

__all__ = [
    "conservation_laws",
    "dependence_stats",
    "distribution_shift_stats",
    "information_flow_stats",
    "outlier_scores",
]

Float64Array = NDArray[np.float64]
Int64Array = NDArray[np.int64]
BoolArray = NDArray[np.bool_]
UInt64Array = NDArray[np.uint64]

MAD_SCALE = 0.6745  # robust z = 0.6745 |x - median| / MAD
SHIFT_FIELDS = 13
DEPENDENCE_FIELDS = 13
FLOW_FIELDS = 12
# Test families: the tests of a detector share their permutations (SharedPermutations).
SHIFT_TEST_FAMILY = 0
DEPENDENCE_TEST_FAMILY = 1000
FLOW_TEST_FAMILY = 100_000
LAW_MAX_CANDIDATES = 16
LAW_MIN_TASKS = 10
LAW_ELEMENTAL_STARTS = 6
LAW_C_STEPS = 2
LAW_MIN_WEIGHT = 1e-6  # every term of a law has |w_k| >= this (standardized, unit w)
LAW_MIN_TRIMMED_VARIANCE = 1e-3  # every term varies over the trimmed rows (standardized)
FLOW_LAG_TIE = 1e-12  # transfer entropies (bits) this close tie when choosing the lag
LAW_TRIM_QUANTUM = 1e-12  # residual distances this close tie when trimming
LAW_SCREEN_EIGENVALUE = 0.05  # full-sample fits above this skip the elemental starts
LAW_IDENTIFIABLE_GAP = 1e-9  # relative eigenvalue gap of a determined smallest eigenvector
LAW_SNAP_DENOMINATORS = 12
LAW_SNAP_TOLERANCE = 1e-6
LAW_SPAN_TOLERANCE = 1e-6
LAW_ZERO_EIGENVALUE = 1e-12  # eigenvalues this small order as 0 (exact laws)
LAW_MIN_SUPPORT = 0.9
_LN2 = math.log(2.0)
_MAX_SEED = 1 << 64
# Elements of the per-batch work arrays (rounds x series length): bounds the memory of a
# batch of permutation rounds to a few arrays of this many values.
_BATCH_ELEMENTS = 1 << 20


# --- argument checks ------------------------------------------------------------------------


def _integer(value: int, name: str, low: int) -> int:
    number = operator.index(value)
    if number < low:
        raise ValueError(f"{name} must be >= {low}, got {number}")
    return number


def _seed(value: int) -> int:
    number = operator.index(value)
    if not 0 <= number < _MAX_SEED:
        raise ValueError(f"seed must be in [0, 2**64), got {number}")
    return number


def _finite(value: float, name: str, low: float, *, inclusive: bool) -> float:
    number = float(value)
    ok = math.isfinite(number) and (number >= low if inclusive else number > low)
    if not ok:
        bound = ">=" if inclusive else ">"
        raise ValueError(f"{name} must be finite and {bound} {low:g}, got {number}")
    return number


def _batch_limit(length: int) -> int:
    return max(1, _BATCH_ELEMENTS // max(length, 1))


# --- entropies ------------------------------------------------------------------------------


def _row_counts(codes: Int64Array, cells: int) -> Int64Array:
    """Counts of the codes (each in [0, cells)) of every row of a 2-D array: rows x cells."""
    rows = codes.shape[0]
    offsets = (np.arange(rows, dtype=np.int64) * cells)[:, None]
    counts = np.bincount((codes + offsets).ravel(), minlength=rows * cells)
    return counts.reshape(rows, cells)


def _entropy_of_counts(counts: Int64Array, total: int) -> Float64Array:
    """Entropy (bits) of each row of counts summing to ``total``: -sum p log2 p with
    p = count / total over the non-empty cells in increasing cell order, left to right."""
    if total == 0:
        return np.zeros(counts.shape[0])
    probabilities = counts / float(total)
    terms = np.zeros_like(probabilities)
    np.log2(probabilities, out=terms, where=counts > 0)
    terms *= probabilities
    return np.asarray(0.0 - np.cumsum(terms, axis=1)[:, -1], dtype=np.float64)


def _entropy_rows(codes: Int64Array, cells: int) -> Float64Array:
    """Entropy (bits) of the codes of every row of a 2-D array."""
    return _entropy_of_counts(_row_counts(codes, cells), codes.shape[1])


def _entropy(codes: Int64Array, cells: int) -> float:
    return float(_entropy_rows(codes[None, :], cells)[0])


# --- outliers -------------------------------------------------------------------------------


def outlier_scores(
    columns: Float64Array, z_threshold: float
) -> tuple[Int64Array, Int64Array, Float64Array, Float64Array]:
    """Every (task, metric) whose robust z = 0.6745 |x - median| / MAD exceeds
    ``z_threshold`` (metrics with >= 3 values; MAD = 0: z = inf off the median, else 0),
    sorted by task then metric: ``(task, metric, z, deviation = x - median)``."""
    threshold = _finite(z_threshold, "z_threshold", 0.0, inclusive=False)
    values = as_columns(columns)
    found_tasks: list[Int64Array] = []
    found_metrics: list[Int64Array] = []
    found_z: list[Float64Array] = []
    found_deviations: list[Float64Array] = []
    for metric in range(values.shape[0]):
        row = values[metric]
        tasks = np.flatnonzero(~np.isnan(row))
        if tasks.size < 3:
            continue
        present = row[tasks]
        center = float(median(present))
        deviation = present - center
        distance = np.abs(deviation)
        spread = float(median(distance))
        if spread == 0.0:
            z = np.where(distance != 0.0, math.inf, 0.0)
        else:
            z = MAD_SCALE * distance / spread
        selected = z > threshold
        found_tasks.append(tasks[selected].astype(np.int64))
        found_metrics.append(np.full(int(selected.sum()), metric, dtype=np.int64))
        found_z.append(z[selected])
        found_deviations.append(deviation[selected])
    if not found_tasks:
        return (
            np.zeros(0, dtype=np.int64),
            np.zeros(0, dtype=np.int64),
            np.zeros(0),
            np.zeros(0),
        )
    task = np.concatenate(found_tasks)
    metric_index = np.concatenate(found_metrics)
    order = np.lexsort((metric_index, task))
    return (
        task[order],
        metric_index[order],
        np.concatenate(found_z)[order],
        np.concatenate(found_deviations)[order],
    )


# --- distribution shift ---------------------------------------------------------------------


def _shift_bins(count: int) -> int:
    """min(64, max(8, floor(2 cbrt(count)))), the floor taken exactly: the largest k with
    k**3 <= 8 count (a libm cbrt may return 14.999999999999998 for cbrt(3375))."""
    k = math.floor(2.0 * math.cbrt(count))
    while k**3 > 8 * count:
        k -= 1
    while (k + 1) ** 3 <= 8 * count:
        k += 1
    return min(64, max(8, k))


def _x_log_x(limit: int) -> Float64Array:
    """n ln n for n = 0..limit (0 ln 0 = 0)."""
    n = np.arange(limit + 1, dtype=np.float64)
    table = np.zeros(limit + 1)
    np.log(n, out=table, where=n > 0)
    table *= n
    return table


def _split_gains(
    codes: Int64Array, totals: Int64Array, min_segment: int, table: Float64Array
) -> Float64Array:
    """G_k = L(all) - L(left) - L(right), clipped at 0, for every row of ``codes`` (rounds x
    N, every row with the per-bin ``totals``) and k = min_segment..N - min_segment (columns),
    L(counts) = S ln S - sum_j n_j ln n_j, with table[n] = n ln n.

    The sums over the bins are updated as k moves one code from the right side to the left,
    as the Rust core does: SL_0 = 0, SR_0 = sum_j table[total_j] (bins in order); moving code
    c (a of them on the left, b on the right) adds table[a + 1] - table[a] to SL and
    table[b - 1] - table[b] to SR; the updates are accumulated left to right (np.cumsum).
    G_k = max(0, (L_all - (table[k] - SL_k)) - (table[N - k] - SR_k)), L_all = table[N] - SR_0.
    """
    rows, length = codes.shape
    # before[r, i]: occurrences of codes[r, i] among codes[r, :i] (stable sort by code).
    order = np.argsort(codes.astype(np.uint8), axis=1, kind="stable")
    group_start = np.concatenate(([0], np.cumsum(totals)[:-1]))
    ranks = np.arange(length, dtype=np.int64) - group_start[np.take_along_axis(codes, order, 1)]
    before = np.empty_like(ranks)
    np.put_along_axis(before, order, ranks, axis=1)
    after = totals[codes] - before  # occurrences among codes[r, i:]
    right_start = float(np.cumsum(table[totals])[-1])
    sums_left = np.zeros((rows, length + 1))
    np.cumsum(table[before + 1] - table[before], axis=1, out=sums_left[:, 1:])
    steps_right = np.empty((rows, length + 1))
    steps_right[:, 0] = right_start
    np.subtract(table[after - 1], table[after], out=steps_right[:, 1:])
    sums_right = np.cumsum(steps_right, axis=1)
    splits = np.arange(min_segment, length - min_segment + 1)
    entropy_all = float(table[length]) - right_start
    entropy_left = table[splits] - sums_left[:, splits]
    entropy_right = table[length - splits] - sums_right[:, splits]
    gains: Float64Array = np.maximum((entropy_all - entropy_left) - entropy_right, 0.0)
    return gains


def _jsd_of_counts(first: Int64Array, second: Int64Array) -> float:
    """Equal-weight Jensen–Shannon divergence (bits) of two histograms on the same bins."""
    p = first / float(first.sum())
    q = second / float(second.sum())
    mixture = (p + q) / 2.0

    def relative_entropy(distribution: Float64Array) -> float:
        terms = np.zeros_like(distribution)
        support = distribution > 0.0
        np.divide(distribution, mixture, out=terms, where=support)
        np.log2(terms, out=terms, where=support)
        terms *= distribution
        return float(np.cumsum(terms)[-1])

    divergence = 0.5 * relative_entropy(p) + 0.5 * relative_entropy(q)
    return min(max(divergence, 0.0), 1.0)


def _population_std(values: Float64Array) -> float:
    _, sum_of_squares = mean_and_sum_of_squares(values)
    return math.sqrt(sum_of_squares / values.size)


def distribution_shift_stats(
    columns: Float64Array, min_segment: int, permutations: int, seed: int, max_test_n: int
) -> Float64Array:
    """Per metric: [count, change_index, statistic, jsd, p_value, perms_run, mean_before,
    mean_after, std_before, std_after, median_before, median_after, tested]
    (design/kernels5.md)."""
    min_segment = _integer(min_segment, "min_segment", 1)
    budget = _integer(permutations, "permutations", 1)
    seed = _seed(seed)
    max_test_n = _integer(max_test_n, "max_test_n", 4 * min_segment)
    values_by_metric = as_columns(columns)
    metrics = values_by_metric.shape[0]
    stats = np.full((metrics, SHIFT_FIELDS), np.nan)
    stats[:, 12] = 0.0
    shared = SharedPermutations(seed, SHIFT_TEST_FAMILY, budget)
    for metric in range(metrics):
        row = values_by_metric[metric]
        values = row[~np.isnan(row)]
        count = values.size
        stats[metric, 0] = count
        if count < 2 * min_segment or all_equal(values):
            continue
        bins = _shift_bins(count)
        codes = equal_width_bins(values, bins)
        table = _x_log_x(count)
        totals = np.bincount(codes, minlength=bins)
        gains = _split_gains(codes[None, :], totals, min_segment, table)[0]
        best = int(np.argmax(gains))
        change = min_segment + best
        statistic = float(gains[best])
        before, after = values[:change], values[change:]
        jsd = _jsd_of_counts(
            np.bincount(codes[:change], minlength=bins), np.bincount(codes[change:], minlength=bins)
        )
        if count <= max_test_n:
            tested, tested_totals, observed = codes, totals, statistic
        else:
            tested = codes[:: -(-count // max_test_n)]
            tested_totals = np.bincount(tested, minlength=bins)
            observed = float(_split_gains(tested[None, :], tested_totals, min_segment, table).max())

        def permuted(
            seeds: UInt64Array,
            tested: Int64Array = tested,
            totals: Int64Array = tested_totals,
            table: Float64Array = table,
        ) -> Float64Array:
            shuffled = tested[shared.rows(seeds, tested.size)]
            return np.asarray(
                _split_gains(shuffled, totals, min_segment, table).max(axis=1), dtype=np.float64
            )

        p_value, perms_run = sequential_p_value(
            observed,
            shared.seeds,
            permuted,
            _batch_limit(tested.size),
        )
        stats[metric, 1:] = (
            change,
            statistic,
            jsd,
            p_value,
            perms_run,
            mean_and_sum_of_squares(before)[0],
            mean_and_sum_of_squares(after)[0],
            _population_std(before),
            _population_std(after),
            float(median(before)),
            float(median(after)),
            1.0,
        )
    return stats


# --- dependence -----------------------------------------------------------------------------


def _dependence_bins(n: int) -> int:
    """min(16, max(4, round(sqrt(n / 5)))), round half to even (no exact half occurs)."""
    return min(16, max(4, round(math.sqrt(n / 5.0))))


def _flow_bins(n: int) -> int:
    """min(8, max(2, round(cbrt(n / 10)))), round half to even (no exact half occurs)."""
    return min(8, max(2, round(math.cbrt(n / 10.0))))


class _RankBinCache:
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


def _mutual_information(
    x_codes: Int64Array, y_codes: Int64Array, bins: int
) -> tuple[float, int, int, int]:
    """Plug-in MI (bits) = max(0, H(X) + H(Y) - H(X, Y)) and the numbers of non-empty x, y
    and (x, y) cells."""
    joint = x_codes * bins + y_codes
    information = max(
        0.0,
        (_entropy(x_codes, bins) + _entropy(y_codes, bins)) - _entropy(joint, bins * bins),
    )
    occupied_x = int(np.count_nonzero(np.bincount(x_codes, minlength=bins)))
    occupied_y = int(np.count_nonzero(np.bincount(y_codes, minlength=bins)))
    occupied_xy = int(np.count_nonzero(np.bincount(joint, minlength=bins * bins)))
    return information, occupied_x, occupied_y, occupied_xy


def dependence_stats(
    columns: Float64Array,
    threshold_r: float,
    min_pairs: int,
    permutations: int,
    seed: int,
    max_test_n: int,
) -> Float64Array:
    """Per metric pair (i < j, row-major order): [i, j, n, r, mi, mi_corrected, p_value,
    perms_run, info_coef, effect, bins, tested, _reserved] (design/kernels5.md)."""
    threshold_r = float(threshold_r)
    if not 0.0 < threshold_r <= 1.0:
        raise ValueError(f"threshold_r must be in (0, 1], got {threshold_r}")
    min_pairs = _integer(min_pairs, "min_pairs", 1)
    budget = _integer(permutations, "permutations", 1)
    seed = _seed(seed)
    max_test_n = _integer(max_test_n, "max_test_n", 1)
    values = as_columns(columns)
    metrics = values.shape[0]
    present = ~np.isnan(values)
    complete: BoolArray = np.asarray(present.all(axis=1), dtype=np.bool_)
    ranks = _RankBinCache(values, complete)
    shared = SharedPermutations(seed, DEPENDENCE_TEST_FAMILY, budget)
    stats = np.full((metrics * (metrics - 1) // 2, DEPENDENCE_FIELDS), np.nan)
    pair = -1
    for i in range(metrics):
        for j in range(i + 1, metrics):
            pair += 1
            both = present[i] & present[j]
            x, y = values[i][both], values[j][both]
            n = x.size
            r = pearson(x, y)
            bins = _dependence_bins(n)
            stats[pair, :4] = (i, j, n, r)
            stats[pair, 10:12] = (bins, 0.0)
            if n < min_pairs or not abs(r) < threshold_r or all_equal(x) or all_equal(y):
                continue
            every = slice(None)
            x_codes = ranks.get(i, j, both, every, "all", bins)
            y_codes = ranks.get(j, i, both, every, "all", bins)
            mi, occupied_x, occupied_y, occupied_xy = _mutual_information(x_codes, y_codes, bins)
            # Miller–Madow: each plug-in entropy is low by (B - 1) / (2 n) nats, so the
            # plug-in MI is high by (Bxy - Bx - By + 1) / (2 n) nats.
            bias = (occupied_xy - occupied_x - occupied_y + 1) / (2.0 * n * _LN2)
            mi_corrected = max(0.0, mi - bias)
            info_coef = math.sqrt(1.0 - math.exp2(-2.0 * mi_corrected))
            y_sums = np.bincount(x_codes, weights=y, minlength=bins)
            x_counts = np.bincount(x_codes, minlength=bins)
            occupied = x_counts > 0
            bin_means = y_sums[occupied] / x_counts[occupied]
            effect = float(bin_means.max() - bin_means.min())
            if n <= max_test_n:
                tested_x, tested_y, tested_bins = x_codes, y_codes, bins
                observed = mi
            else:
                part = slice(None, None, -(-n // max_test_n))
                length = len(range(n)[part])
                tested_bins = _dependence_bins(length)
                tested_x = ranks.get(i, j, both, part, "thinned", tested_bins)
                tested_y = ranks.get(j, i, both, part, "thinned", tested_bins)
                observed = _mutual_information(tested_x, tested_y, tested_bins)[0]
            marginals = _entropy(tested_x, tested_bins) + _entropy(tested_y, tested_bins)

            def permuted(
                seeds: UInt64Array,
                tested_x: Int64Array = tested_x,
                tested_y: Int64Array = tested_y,
                tested_bins: int = tested_bins,
                marginals: float = marginals,
            ) -> Float64Array:
                shuffled = tested_y[shared.rows(seeds, tested_y.size)]
                joint = tested_x[None, :] * tested_bins + shuffled
                joint_entropy = _entropy_rows(joint, tested_bins * tested_bins)
                return np.maximum(marginals - joint_entropy, 0.0)

            p_value, perms_run = sequential_p_value(
                observed,
                shared.seeds,
                permuted,
                _batch_limit(tested_x.size),
            )
            stats[pair, 4:10] = (mi, mi_corrected, p_value, perms_run, info_coef, effect)
            stats[pair, 11] = 1.0
    return stats


# --- information flow -----------------------------------------------------------------------


def _transfer_entropy_rows(
    scaled_source: Int64Array, target: Int64Array, lag: int, bins: int
) -> Float64Array:
    """TE source -> target (bits, clipped at 0) at ``lag`` for every row of
    ``scaled_source`` (rounds x N, the source codes times ``bins``) against one ``target``
    series: H(Y+, Y) - H(Y) - H(Y+, X, Y) + H(X, Y) over t = 0..N-1-lag, cells numbered
    y+ b + y, (y+ b + x) b + y and x b + y; 0 when N <= lag + 1."""
    length = target.size
    rows = scaled_source.shape[0]
    if length <= lag + 1:
        return np.zeros(rows)
    steps = length - lag
    future, past = target[lag:], target[:steps]
    square = bins * bins
    cube = square * bins
    future_and_past = _entropy(future * bins + past, square)
    past_only = _entropy(past, bins)
    # cell (y+ b + x) b + y = x b + (y+ b^2 + y), offset by the row so one bincount counts
    # every row; summing the (Y+, X, Y) counts over y+ gives the (X, Y) counts.
    codes = scaled_source[:, :steps] + (future * square + past)
    codes += (np.arange(rows, dtype=np.int64) * cube)[:, None]
    counts = np.bincount(codes.ravel(), minlength=rows * cube).reshape(rows, cube)
    with_source = _entropy_of_counts(counts, steps)
    source_and_past = _entropy_of_counts(counts.reshape(rows, bins, square).sum(axis=1), steps)
    transfer = ((future_and_past - past_only) - with_source) + source_and_past
    return np.maximum(transfer, 0.0)


def _max_transfer_entropy(
    scaled_source: Int64Array, target: Int64Array, max_lag: int, bins: int
) -> Float64Array:
    best = _transfer_entropy_rows(scaled_source, target, 1, bins)
    for lag in range(2, max_lag + 1):
        best = np.maximum(best, _transfer_entropy_rows(scaled_source, target, lag, bins))
    return best


def information_flow_stats(
    columns: Float64Array,
    min_values: int,
    permutations: int,
    seed: int,
    max_test_n: int,
    max_lag: int,
) -> Float64Array:
    """Per ordered metric pair (i -> j, i != j, row-major order): [i, j, n, best_lag, te,
    te_reverse, p_value, perms_run, bins, tested, _r1, _r2] (design/kernels5.md)."""
    min_values = _integer(min_values, "min_values", 1)
    budget = _integer(permutations, "permutations", 1)
    seed = _seed(seed)
    max_test_n = _integer(max_test_n, "max_test_n", 1)
    max_lag = _integer(max_lag, "max_lag", 1)
    values = as_columns(columns)
    metrics = values.shape[0]
    present = ~np.isnan(values)
    complete: BoolArray = np.asarray(present.all(axis=1), dtype=np.bool_)
    ranks = _RankBinCache(values, complete)
    constant = [all_equal(values[k][present[k]]) for k in range(metrics)]
    shared = SharedPermutations(seed, FLOW_TEST_FAMILY, budget)
    stats = np.full((metrics * (metrics - 1), FLOW_FIELDS), np.nan)
    pair = -1
    for i in range(metrics):
        for j in range(metrics):
            if i == j:
                continue
            pair += 1
            both = present[i] & present[j]
            n = int(np.count_nonzero(both))
            bins = _flow_bins(n)
            stats[pair, :3] = (i, j, n)
            stats[pair, 8:10] = (bins, 0.0)
            if n < min_values:
                continue
            if (constant[i] or constant[j]) or (
                all_equal(values[i][both]) or all_equal(values[j][both])
            ):
                continue
            every = slice(None)
            source = ranks.get(i, j, both, every, "all", bins)
            target = ranks.get(j, i, both, every, "all", bins)
            transfer = [
                float(_transfer_entropy_rows(source[None, :] * bins, target, lag, bins)[0])
                for lag in range(1, max_lag + 1)
            ]
            best_lag = _first_best(transfer) + 1
            te = transfer[best_lag - 1]
            te_reverse = float(
                _transfer_entropy_rows(target[None, :] * bins, source, best_lag, bins)[0]
            )
            if n <= max_test_n:
                tested_source, tested_target, tested_bins = source, target, bins
                observed = max(transfer)
            else:
                part = slice(n - max_test_n, None)
                tested_bins = _flow_bins(max_test_n)
                tested_source = ranks.get(i, j, both, part, "latest", tested_bins)
                tested_target = ranks.get(j, i, both, part, "latest", tested_bins)
                observed = float(
                    _max_transfer_entropy(
                        tested_source[None, :] * tested_bins, tested_target, max_lag, tested_bins
                    )[0]
                )
            scaled_source = tested_source * tested_bins

            def permuted(
                seeds: UInt64Array,
                scaled_source: Int64Array = scaled_source,
                tested_target: Int64Array = tested_target,
                tested_bins: int = tested_bins,
            ) -> Float64Array:
                shuffled = scaled_source[shared.rows(seeds, scaled_source.size)]
                return _max_transfer_entropy(shuffled, tested_target, max_lag, tested_bins)

            p_value, perms_run = sequential_p_value(
                observed,
                shared.seeds,
                permuted,
                _batch_limit(tested_source.size),
            )
            stats[pair, 3:8] = (best_lag, te, te_reverse, p_value, perms_run)
            stats[pair, 9] = 1.0
    return stats


# --- conservation laws ----------------------------------------------------------------------


def _law_candidates(
    values: Float64Array, present: BoolArray, excluded: BoolArray
) -> tuple[list[int], BoolArray]:
    """Candidate metrics (not excluded, >= 2 distinct values over the complete tasks, the
    first 16) and the complete tasks (those having every candidate).

    "Complete" depends on the candidates and "varies" on the complete tasks: start from
    every non-excluded metric and drop the metrics constant over the tasks having all
    remaining ones until none is dropped (dropping a metric only adds complete tasks, so a
    kept metric keeps varying)."""
    candidates = np.flatnonzero(~excluded).tolist()
    tasks = values.shape[1]
    while True:
        complete: BoolArray = np.asarray(
            present[candidates].all(axis=0) if candidates else np.ones(tasks), dtype=np.bool_
        )
        varying = [k for k in candidates if not all_equal(values[k][complete])]
        if varying == candidates:
            break
        candidates = varying
    if len(candidates) > LAW_MAX_CANDIDATES:
        candidates = candidates[:LAW_MAX_CANDIDATES]
        complete = np.asarray(present[candidates].all(axis=0), dtype=np.bool_)
    return candidates, complete


def _first_best(values: list[float]) -> int:
    """Index of the largest value, where values within FLOW_LAG_TIE of the best so far tie
    and the first wins (rounding differs between implementations and must not decide)."""
    best = 0
    for index in range(1, len(values)):
        if values[index] > values[best] + FLOW_LAG_TIE:
            best = index
    return best


def _smallest_eigenpairs(
    matrices: Float64Array,
) -> tuple[Float64Array, Float64Array, BoolArray]:
    """Smallest eigenvalue, its unit eigenvector, and whether that eigenvector is determined
    (gap to the next eigenvalue > LAW_IDENTIFIABLE_GAP x the largest |eigenvalue|: a zero
    matrix or a repeated smallest eigenvalue has no unique smallest eigenvector), for each
    symmetric matrix of a stack."""
    eigenvalues, eigenvectors = np.linalg.eigh(matrices)
    largest = np.abs(eigenvalues).max(axis=-1)
    gap = eigenvalues[..., 1] - eigenvalues[..., 0]
    identifiable = (gap > LAW_IDENTIFIABLE_GAP * largest) & (largest > 0.0)
    return eigenvalues[..., 0], eigenvectors[..., :, 0], identifiable


def _trimmed_mask(deviation: Float64Array, keep: int) -> BoolArray:
    """The ``keep`` smallest entries of each row (the earlier position first on ties)."""
    kth = np.partition(deviation, keep - 1, axis=-1)[..., keep - 1 : keep]
    mask = deviation < kth
    needed = keep - mask.sum(axis=-1, keepdims=True)
    equal = deviation == kth
    surplus = (equal.sum(axis=-1, keepdims=True) > needed)[..., 0]
    if surplus.any():  # ties at the cut: only the earliest ones are kept
        equal[surplus] &= np.cumsum(equal[surplus], axis=-1) <= needed[surplus]
    mask |= equal
    return mask


def _trimmed_covariance(
    z: Float64Array, products: Float64Array, mask: BoolArray, keep: int
) -> Float64Array:
    """Population covariance of the rows of ``z`` (subsets x tasks x terms) selected by
    ``mask`` (subsets x starts x tasks): subsets x starts x terms x terms, as the mean of
    the ``products`` z z^T of the rows minus the outer product of their mean (z is
    standardized, so the means are small and the subtraction loses nothing that matters)."""
    size = z.shape[2]
    weights = mask.astype(np.float64)
    means = np.matmul(weights, z) / keep  # subsets x starts x terms
    second = np.matmul(weights, products) / keep  # subsets x starts x terms**2
    second = second.reshape(*second.shape[:2], size, size)
    covariance: Float64Array = second - means[..., :, None] * means[..., None, :]
    return covariance


def _fit_subsets(
    sample: Float64Array,
    subsets: Int64Array,
    ranks: Int64Array,
    seed: int,
    keep: int,
    full_covariance: Float64Array,
) -> tuple[Float64Array, Float64Array, BoolArray]:
    """Robust fit of every subset (rows of ``subsets``, candidate columns of ``sample``):
    the best of the full-sample start and 6 elemental starts after 2 C-steps each.
    Returns the final eigenvalue, unit vector and trimmed rows of each subset."""
    count, size = subsets.shape
    sampled = sample.shape[0]
    z = np.ascontiguousarray(sample[:, subsets].transpose(1, 0, 2))  # subsets x tasks x terms
    starts = np.empty((count, 1 + LAW_ELEMENTAL_STARTS, size))
    full = full_covariance[subsets[:, :, None], subsets[:, None, :]]
    # Starts whose eigenvector is undetermined are abandoned (eigenvalue +inf at the end).
    abandoned = np.zeros((count, 1 + LAW_ELEMENTAL_STARTS), dtype=np.bool_)
    _, starts[:, 0, :], identifiable = _smallest_eigenpairs(full)
    abandoned[:, 0] = ~identifiable
    # start e of subset g: output e of the stream seed ^ g
    streams = stream_outputs(
        np.uint64(seed) ^ ranks.astype(np.uint64), LAW_ELEMENTAL_STARTS
    ).ravel()
    positions = smallest_positions(streams, sampled, size).reshape(count, -1)
    points = np.take_along_axis(z, positions[:, :, None], axis=1).reshape(
        count, LAW_ELEMENTAL_STARTS, size, size
    )
    differences = points[:, :, :-1, :] - points[:, :, -1:, :]
    normal = np.matmul(differences.transpose(0, 1, 3, 2), differences)
    _, starts[:, 1:, :], identifiable = _smallest_eigenpairs(normal)
    abandoned[:, 1:] = ~identifiable
    products = (z[:, :, :, None] * z[:, :, None, :]).reshape(count, sampled, size * size)
    weights = starts
    eigenvalues = np.empty((count, 1 + LAW_ELEMENTAL_STARTS))
    mask = np.empty((count, 1 + LAW_ELEMENTAL_STARTS, sampled), dtype=np.bool_)
    for _ in range(LAW_C_STEPS):
        # residuals r = Z w of every start, as subsets x starts x tasks
        residuals = np.ascontiguousarray(np.matmul(weights, z.transpose(0, 2, 1)))
        residuals -= median(residuals, axis=-1)[..., None]
        # distances within LAW_TRIM_QUANTUM tie (the earlier row wins), so rounding of the
        # eigenvector cannot decide which of two near-equal rows is trimmed
        np.abs(residuals, out=residuals)
        mask = _trimmed_mask(np.floor(residuals / LAW_TRIM_QUANTUM), keep)
        eigenvalues, weights, identifiable = _smallest_eigenpairs(
            _trimmed_covariance(z, products, mask, keep)
        )
        abandoned |= ~identifiable
    eigenvalues = np.where(abandoned, np.inf, eigenvalues)
    best = np.argmin(eigenvalues, axis=1)
    # Screen: a subset whose full-sample fit ends above LAW_SCREEN_EIGENVALUE is not a law and
    # keeps that fit (the elemental starts only rescue laws hidden by a few gross violators).
    best[~(eigenvalues[:, 0] <= LAW_SCREEN_EIGENVALUE)] = 0
    chosen = np.arange(count)
    return eigenvalues[chosen, best], weights[chosen, best], mask[chosen, best]


def _terms_vary(sample: Float64Array, subset: Int64Array, mask: BoolArray) -> bool:
    """Every term varies over the trimmed rows (population variance >= LAW_MIN_TRIMMED_VARIANCE
    in standardized units): a term that is constant once a few extreme tasks are trimmed
    satisfies any "law" trivially."""
    rows = np.flatnonzero(mask)
    if rows.size == 0:
        return False
    for column in subset.tolist():
        values = sample[rows, column]
        mean = sequential_sum(values) / rows.size
        variance = sequential_sum((values - mean) * (values - mean)) / rows.size
        if variance < LAW_MIN_TRIMMED_VARIANCE:
            return False
    return True


def _snap(coefficient: float) -> float:
    """The p/q (q = 1..12) within 1e-6 of ``coefficient``, else the coefficient."""
    best, distance = coefficient, math.inf
    for denominator in range(1, LAW_SNAP_DENOMINATORS + 1):
        numerator = round(coefficient * denominator)
        value = numerator / denominator
        gap = abs(coefficient - value)
        if gap <= LAW_SNAP_TOLERANCE and gap < distance:
            best, distance = value, gap
    return best


def _combination(coefficients: list[float], raw: Float64Array) -> Float64Array:
    """sum_k c_k x_k per row of ``raw`` (tasks x terms), summed over k in order."""
    total = coefficients[0] * raw[:, 0]
    for k in range(1, len(coefficients)):
        total = total + coefficients[k] * raw[:, k]
    return np.asarray(total, dtype=np.float64)


def _absolute_combination(coefficients: list[float], raw: Float64Array) -> Float64Array:
    total = np.abs(coefficients[0] * raw[:, 0])
    for k in range(1, len(coefficients)):
        total = total + np.abs(coefficients[k] * raw[:, k])
    return np.asarray(total, dtype=np.float64)


def _law_coefficients(
    weights: Float64Array, stds: Float64Array, trimmed: Float64Array
) -> list[float]:
    """c = w / std scaled to max |c| = 1 with c_0 > 0, snapped to simple ratios unless
    snapping raises the residual std over the trimmed rows above 1.01x (+1e-12 scale)."""
    raw = weights / stds
    coefficients = raw / float(np.abs(raw).max())
    if coefficients[0] < 0.0:
        coefficients = -coefficients
    unsnapped = [float(c) for c in coefficients]
    snapped = [_snap(c) for c in unsnapped]
    if snapped == unsnapped:
        return unsnapped
    scale = float(median(_absolute_combination(unsnapped, trimmed)))
    std_unsnapped = _population_std(_combination(unsnapped, trimmed))
    std_snapped = _population_std(_combination(snapped, trimmed))
    if std_snapped > 1.01 * std_unsnapped + 1e-12 * scale:
        return unsnapped
    return snapped


def conservation_laws(
    columns: Float64Array,
    excluded: BoolArray,
    tolerance_eig: float,
    seed: int,
    max_terms: int,
    sample_size: int,
) -> list[dict[str, Any]]:
    """Linear laws sum_k c_k x_k = constant of 2..max_terms metrics (design/kernels5.md):
    dicts with "metrics", "coefficients", "constant", "residual_std", "satisfied" (over the
    complete tasks), "tasks" (the complete tasks) and "support"."""
    values = as_columns(columns)
    metrics, _ = values.shape
    excluded_array = np.asarray(excluded)
    if excluded_array.dtype != np.bool_ or excluded_array.shape != (metrics,):
        raise ValueError(
            f"excluded must be a bool array of shape ({metrics},), got "
            f"{excluded_array.dtype} {excluded_array.shape}"
        )
    tolerance_eig = _finite(tolerance_eig, "tolerance_eig", 0.0, inclusive=True)
    seed = _seed(seed)
    max_terms = _integer(max_terms, "max_terms", 2)
    if max_terms > 8:
        raise ValueError(f"max_terms must be <= 8, got {max_terms}")
    sample_size = _integer(sample_size, "sample_size", LAW_MIN_TASKS)
    present = ~np.isnan(values)
    candidates, complete = _law_candidates(values, present, excluded_array)
    tasks = np.flatnonzero(complete).astype(np.int64)
    if len(candidates) < 2 or tasks.size < LAW_MIN_TASKS:
        return []
    raw = np.ascontiguousarray(values[candidates][:, tasks].T)  # complete tasks x candidates
    means = np.empty(len(candidates))
    stds = np.empty(len(candidates))
    for k in range(len(candidates)):
        mean, sum_of_squares = mean_and_sum_of_squares(raw[:, k])
        means[k], stds[k] = mean, math.sqrt(sum_of_squares / tasks.size)
    standardized = (raw - means) / stds
    if tasks.size <= sample_size:
        sample_rows = np.arange(tasks.size)
    else:
        sample_rows = np.sort(permutation(seed, tasks.size)[:sample_size])
    sample = standardized[sample_rows]
    sampled = sample_rows.size
    keep = (9 * sampled + 9) // 10  # ceil(0.9 |S|), exactly
    centered_sample = sample - sample.mean(axis=0)
    full_covariance = centered_sample.T @ centered_sample / sampled

    found: list[tuple[int, float, int, tuple[int, ...], Float64Array, BoolArray]] = []
    rank = 0
    for size in range(2, min(max_terms, len(candidates)) + 1):
        subsets = np.array(list(combinations(range(len(candidates)), size)), dtype=np.int64)
        chunk = max(1, (1 << 21) // ((1 + LAW_ELEMENTAL_STARTS) * sampled * size))
        for start in range(0, len(subsets), chunk):
            block = subsets[start : start + chunk]
            block_ranks = np.arange(rank + start, rank + start + len(block), dtype=np.int64)
            eigenvalues, weights, masks = _fit_subsets(
                sample, block, block_ranks, seed, keep, full_covariance
            )
            accepted = (eigenvalues <= tolerance_eig) & (np.abs(weights) >= LAW_MIN_WEIGHT).all(
                axis=1
            )
            for index in np.flatnonzero(accepted).tolist():
                accepted[index] = _terms_vary(sample, block[index], masks[index])
            for index in np.flatnonzero(accepted).tolist():
                found.append(
                    (
                        size,
                        float(eigenvalues[index]),
                        int(block_ranks[index]),
                        tuple(block[index].tolist()),
                        weights[index],
                        masks[index],
                    )
                )
        rank += len(subsets)
    # size, then the eigenvalue (<= LAW_ZERO_EIGENVALUE counts as 0: exact laws differ only
    # by rounding there), then the subset rank
    found.sort(key=lambda law: (law[0], 0.0 if law[1] <= LAW_ZERO_EIGENVALUE else law[1], law[2]))

    laws: list[dict[str, Any]] = []
    basis: list[Float64Array] = []
    for _, eigenvalue, _, subset, weights, mask in found:
        columns_of_law = list(subset)
        trimmed_rows = sample_rows[mask]
        law_raw = raw[:, columns_of_law]
        coefficients = _law_coefficients(weights, stds[columns_of_law], law_raw[trimmed_rows])
        direction = np.zeros(metrics)
        direction[[candidates[k] for k in columns_of_law]] = (
            np.array(coefficients) * stds[columns_of_law]
        )
        remainder = direction.copy()
        for vector in basis:
            remainder -= float(vector @ remainder) * vector
        norm = float(np.linalg.norm(direction))
        remainder_norm = float(np.linalg.norm(remainder))
        # a noisy law's supersets sit within about sqrt(eigenvalue) of its span: implied too
        if remainder_norm < max(LAW_SPAN_TOLERANCE, math.sqrt(max(eigenvalue, 0.0))) * norm:
            continue
        residual = _combination(coefficients, law_raw)
        magnitude = _absolute_combination(coefficients, law_raw)
        constant = float(median(residual[trimmed_rows]))
        if abs(constant) <= 1e-9 * float(median(magnitude[trimmed_rows])):
            constant = 0.0
        spread = float(median(np.abs(residual - float(median(residual)))))
        allowed = np.maximum(1e-9 * magnitude, 3.5 * 1.4826 * spread)
        satisfied = np.abs(residual - constant) <= allowed
        support = float(np.count_nonzero(satisfied)) / tasks.size
        if support < LAW_MIN_SUPPORT:
            continue
        basis.append(remainder / remainder_norm)
        laws.append(
            {
                "metrics": [candidates[k] for k in columns_of_law],
                "coefficients": coefficients,
                "constant": constant,
                "residual_std": _population_std(residual[satisfied]),
                "satisfied": satisfied,
                "tasks": tasks.copy(),
                "support": support,
            }
        )
    return laws
