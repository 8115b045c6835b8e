"""Distribution shifts (SPEC §6 ``DISTRIBUTION_SHIFT``), the twin of the Rust core's
``detect::distribution_shift``: the best single change point of a metric's binned values by
the likelihood-ratio split statistic G, its JSD, and a sequential permutation p-value."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from crackle_runtime._args import Budget, Params
from crackle_runtime._numpy._stats import all_equal, mean_and_sum_of_squares, population_std
from crackle_runtime._numpy.detect.shared.columns import as_columns, empty_result, store
from crackle_runtime._numpy.detect.shared.permutation import (
    PERMUTATION_SEED,
    SharedPermutations,
    batch_limit,
    sequential_p_value,
)
from crackle_runtime._numpy.detect.shared.ranks import equal_width_bins, median

__all__ = ["FIELDS", "KIND", "NAME", "PARAMS", "run"]

NAME = "distribution_shift"
KIND = "distribution shift"
FIELDS = (
    "count",
    "change_index",
    "statistic",
    "jsd",
    "p_value",
    "perms_run",
    "mean_before",
    "mean_after",
    "std_before",
    "std_after",
    "median_before",
    "median_after",
    "tested",
)
PARAMS: dict[str, Any] = {
    "min_segment": 20,
    "permutations": 199,
    "seed": PERMUTATION_SEED,
    "max_test_n": 10_000,
}

STAGE = "distribution_shift"
SHIFT_TEST_FAMILY = 0  # the stream of the shift tests' shared permutations

Float64Array = NDArray[np.float64]
Int64Array = NDArray[np.int64]
UInt64Array = NDArray[np.uint64]
_INT_FIELDS = ("count", "change_index", "perms_run")


def run(columns: Float64Array, params: Params, budget: Budget) -> dict[str, Any]:
    """Per metric: the best change point of its equal-width-binned present values (G of the
    split, JSD of the two sides), a sequential permutation p-value (shared permutations of
    test family 0; series longer than ``max_test_n`` tested on every s-th value) and the
    mean, population std and median of each side. Untested metrics (fewer than
    2 min_segment values, or constant) keep their count and NaN (change_index -1)."""
    min_segment = params.count("min_segment", 1)
    permutations = params.count("permutations", 1)
    seed = params.seed("seed")
    max_test_n = params.count("max_test_n", 1)
    if max_test_n < 4 * min_segment:
        raise ValueError(
            f"max_test_n must be >= 4 * min_segment ({4 * min_segment}), got {max_test_n}"
        )
    values_by_metric = as_columns(columns)
    metrics = values_by_metric.shape[0]
    result = empty_result(FIELDS, metrics, ints=_INT_FIELDS, bools=("tested",))
    result["change_index"][:] = -1
    shared = SharedPermutations(seed, SHIFT_TEST_FAMILY, permutations)
    for metric in range(metrics):
        budget.check(STAGE)
        row = values_by_metric[metric]
        values = row[~np.isnan(row)]
        count = values.size
        result["count"][metric] = count
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
            observed, shared.seeds, permuted, batch_limit(tested.size), (budget, STAGE)
        )
        store(
            result,
            metric,
            {
                "change_index": change,
                "statistic": statistic,
                "jsd": jsd,
                "p_value": p_value,
                "perms_run": perms_run,
                "mean_before": mean_and_sum_of_squares(before)[0],
                "mean_after": mean_and_sum_of_squares(after)[0],
                "std_before": population_std(before),
                "std_after": population_std(after),
                "median_before": float(median(before)),
                "median_after": float(median(after)),
                "tested": True,
            },
        )
    return result


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
