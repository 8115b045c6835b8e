"""Information flow between metric pairs (SPEC §6 ``INFORMATION_FLOW``, §12), the twin of
the Rust core's ``detect::information_flow``: transfer entropy of quantile-binned series
that conditions on the target's immediate past and scans the source delay u = 1..max_lag,
I(Y_t; X_{t-u} | Y_{t-1}) (Schreiber 2000; Wibral et al. 2013), tested against circular
time-shift surrogates of the source (``shared.surrogates``; Quiroga et al. 2002), and the
time-reversal test of its direction (time-reversed Granger causality, Haufe et al. 2013,
Winkler et al. 2016, with a delete-a-group jackknife; see the Rust module's documentation)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from crackle_runtime._args import Budget, Params
from crackle_runtime._numpy._stats import all_equal, student_t_two_sided_p
from crackle_runtime._numpy.detect.shared.columns import as_columns, empty_result, store
from crackle_runtime._numpy.detect.shared.permutation import (
    MAX_PERMUTATIONS,
    PERMUTATION_SEED,
    batch_limit,
    round_seeds,
    sequential_p_value,
)
from crackle_runtime._numpy.detect.shared.prewhiten import prewhiten_columns_both_ways
from crackle_runtime._numpy.detect.shared.ranks import RankBinCache, entropy
from crackle_runtime._numpy.detect.shared.surrogates import shift_rows, shortest_shift
from crackle_runtime._numpy.info import entropy_of_counts

__all__ = ["FIELDS", "KIND", "NAME", "PARAMS", "run"]

NAME = "information_flow"
KIND = "information flow"
FIELDS = (
    "i",
    "j",
    "n",
    "best_lag",
    "te",
    "te_reverse",
    "p_value",
    "te_time_reversed",
    "te_reverse_time_reversed",
    "direction_p",
    "perms_run",
    "bins",
    "tested",
)
PARAMS: dict[str, Any] = {
    "min_values": 50,
    "permutations": 199,
    "seed": PERMUTATION_SEED,
    "max_test_n": 10_000,
    "max_lag": 3,
    "prewhiten": 0,
    "direction_alpha": 1.0,
}

STAGE = "information_flow"
FLOW_TEST_FAMILY = 100_000  # the stream of the flow tests' shared permutations
LAG_TIE = 1e-12  # transfer entropies (bits) this close tie when choosing the lag
JACKKNIFE_BLOCKS = 40  # the most contiguous blocks of time of the time-reversal test,
JACKKNIFE_BLOCK_SAMPLES = 5  # of at least this many samples on average,
MIN_JACKKNIFE_BLOCKS = 5  # and at least this many blocks (else p = 1)
_INT_FIELDS = ("i", "j", "n", "best_lag", "perms_run", "bins")

Float64Array = NDArray[np.float64]
Int64Array = NDArray[np.int64]
BoolArray = NDArray[np.bool_]
UInt64Array = NDArray[np.uint64]


def _flow_bins(n: int) -> int:
    """min(8, max(2, round(cbrt(n / 10)))), round half to even (no exact half occurs)."""
    return min(8, max(2, round(math.cbrt(n / 10.0))))


def _transfer_entropy_rows(
    scaled_source: Int64Array, target: Int64Array, lag: int, bins: int
) -> Float64Array:
    """TE source -> target (bits, clipped at 0) at source delay ``lag`` for every row of
    ``scaled_source`` (rounds x N, the source codes times ``bins``) against one ``target``
    series, conditioned on the target's immediate past: with Y+ = y[t + lag], X = x[t] and
    Y = y[t + lag - 1] over t = 0..N-1-lag, H(Y+, Y) - H(Y) - H(Y+, X, Y) + H(X, Y), cells
    numbered y+ b + y, (y+ b + x) b + y and x b + y; 0 when N <= lag + 1."""
    length = target.size
    rows = scaled_source.shape[0]
    if length <= lag + 1:
        return np.zeros(rows)
    steps = length - lag
    future, past = target[lag:], target[lag - 1 : lag - 1 + steps]
    square = bins * bins
    cube = square * bins
    future_and_past = entropy(future * bins + past, square)
    past_only = entropy(past, bins)
    # cell (y+ b + x) b + y = x b + (y+ b^2 + y), offset by the row so one bincount counts
    # every row; summing the (Y+, X, Y) counts over y+ gives the (X, Y) counts.
    codes = scaled_source[:, :steps] + (future * square + past)
    codes += (np.arange(rows, dtype=np.int64) * cube)[:, None]
    counts = np.bincount(codes.ravel(), minlength=rows * cube).reshape(rows, cube)
    with_source = entropy_of_counts(counts, steps)
    source_and_past = entropy_of_counts(counts.reshape(rows, bins, square).sum(axis=1), steps)
    transfer = ((future_and_past - past_only) - with_source) + source_and_past
    return np.maximum(transfer, 0.0)


def _transfer_entropy_of_tables(counts: Int64Array, bins: int, samples: Int64Array) -> Float64Array:
    """TE (bits, clipped at 0) of each row of ``counts`` (rows x b^3 cells numbered
    (y b + x) b + y+, the Rust table order) holding ``samples[row]`` samples: H(Y+, Y) -
    H(Y) - H(Y+, X, Y) + H(X, Y), each entropy over its cells in ascending order."""
    rows = counts.shape[0]
    cube = counts.reshape(rows, bins, bins, bins)  # (y, x, y+)
    future_and_past = entropy_of_counts(cube.sum(axis=2).reshape(rows, -1), samples)
    past_only = entropy_of_counts(cube.sum(axis=(2, 3)), samples)
    with_source = entropy_of_counts(counts, samples)
    source_and_past = entropy_of_counts(cube.sum(axis=3).reshape(rows, -1), samples)
    transfer = ((future_and_past - past_only) - with_source) + source_and_past
    return np.asarray(np.maximum(transfer, 0.0), dtype=np.float64)


def jackknife_blocks(samples: int) -> int:
    """The time-reversal jackknife's blocks for ``samples`` samples: min(40, samples // 5)."""
    return min(JACKKNIFE_BLOCKS, samples // JACKKNIFE_BLOCK_SAMPLES)


def _block_tables(
    source: Int64Array, target: Int64Array, bins: int, delay: int, reverse: bool, k: int
) -> tuple[Int64Array, Int64Array]:
    """(per-block counts (k x b^3), per-block sample counts) of the delayed TE source ->
    target: sample t = 0..n-1-delay in cell (y[t+delay-1] b + x[t]) b + y[t+delay], block
    floor(tau k / n) of its target's task tau (t + delay; n - 1 - t - delay when
    ``reverse``)."""
    n = source.size
    steps = n - delay
    t = np.arange(steps)
    cells = (target[delay - 1 : delay - 1 + steps] * bins + source[:steps]) * bins + target[delay:]
    task = n - 1 - t - delay if reverse else t + delay
    blocks = task * k // n
    cube = bins**3
    counts = np.bincount(blocks * cube + cells, minlength=k * cube)
    sizes = np.bincount(blocks, minlength=k)
    return counts.reshape(k, cube), sizes


def time_reversal_test(
    forward: tuple[Int64Array, Int64Array],
    reversed_codes: tuple[Int64Array, Int64Array],
    bins: int,
    delay: int,
) -> tuple[float, float, float]:
    """(TE_r(x->y), TE_r(y->x), p) of the time-reversal test of x -> y at ``delay``
    (``time_reversal_test`` in the Rust core): D = (TE(x->y) - TE(y->x)) - (TE_r(x->y) -
    TE_r(y->x)) at the delay, TE_r on ``reversed_codes`` (the backward series' codes read
    from the last task to the first); the delete-a-group jackknife over K =
    :func:`jackknife_blocks` blocks of time, pseudo-values K D - (K - 1) D_k, one-sided
    Student t with K - 1 degrees of freedom; p = 1 with fewer than 5 blocks."""
    x, y = forward
    rx, ry = reversed_codes
    n = x.size
    if delay == 0 or n <= delay + 1:
        return 0.0, 0.0, 1.0
    samples = n - delay
    k = max(jackknife_blocks(samples), 1)
    tables = [
        _block_tables(x, y, bins, delay, False, k),
        _block_tables(y, x, bins, delay, False, k),
        _block_tables(rx, ry, bins, delay, True, k),
        _block_tables(ry, rx, bins, delay, True, k),
    ]
    # row 0: every sample; rows 1..K: without block k-1; per table
    te = np.empty((4, k + 1))
    for index, (blocks, sizes) in enumerate(tables):
        total = blocks.sum(axis=0)
        counts = np.vstack([total[None, :], total[None, :] - blocks])
        sample_counts = np.concatenate([[samples], samples - sizes])
        te[index] = _transfer_entropy_of_tables(counts, bins, sample_counts)
    reversed_te, reverse_reversed_te = float(te[2, 0]), float(te[3, 0])
    if k < MIN_JACKKNIFE_BLOCKS:
        return reversed_te, reverse_reversed_te, 1.0
    difference = (te[0] - te[1]) - (te[2] - te[3])
    full = float(difference[0])
    pseudo = [k * full - (k - 1.0) * float(d) for d in difference[1:]]
    mean = sum(pseudo) / k  # in block order, as the Rust core sums
    variance = sum((v - mean) * (v - mean) for v in pseudo) / (k - 1.0)
    if variance > 0.0:
        t = mean / math.sqrt(variance / k)
        two_sided = student_t_two_sided_p(t, k - 1.0)
        p_value = two_sided / 2.0 if t > 0.0 else 1.0 - two_sided / 2.0
    else:
        p_value = 0.0 if mean > 0.0 else 1.0
    return reversed_te, reverse_reversed_te, p_value


def _lags(max_lag: int, n: int) -> int:
    """The delays a series of n values can have: at most n - 2 (the native
    ``effective_max_lag``)."""
    return min(max_lag, max(n - 2, 0))


def _max_transfer_entropy(
    scaled_source: Int64Array, target: Int64Array, max_lag: int, bins: int
) -> Float64Array:
    best = _transfer_entropy_rows(scaled_source, target, 1, bins)
    for lag in range(2, max_lag + 1):
        best = np.maximum(best, _transfer_entropy_rows(scaled_source, target, lag, bins))
    return best


def run(columns: Float64Array, params: Params, budget: Budget) -> dict[str, Any]:
    """Per ordered metric pair (i -> j, i != j, row-major order) over the tasks having both:
    n, quantile bins; when tested (n >= min_values, neither constant), the lag 1..max_lag of
    the largest transfer entropy i -> j, that TE, the reverse TE at that lag, and a
    sequential source-surrogate p-value of the maximum over lags (the source circularly
    shifted by the shared shifts of test family 100000, at least max_lag plus its
    decorrelation length; pairs longer than ``max_test_n`` tested on their latest values);
    the time-reversed TEs at that lag and the direction's p-value (:func:`time_reversal_test`
    on the tested pairs, when te > te_reverse + 1e-12 and the p-value is at most
    ``direction_alpha``; else NaN, NaN, 1). With ``prewhiten`` = 1
    each metric is read as its AR(p) innovations, its model read forward and (for the
    time-reversed TEs) backward in time."""
    min_values = params.count("min_values", 1)
    permutations = params.integer("permutations", 1, MAX_PERMUTATIONS)
    seed = params.seed("seed")
    max_test_n = params.count("max_test_n", 1)
    max_lag = params.count("max_lag", 1)
    prewhiten = params.integer("prewhiten", 0, 1) == 1
    direction_alpha = params.unit_interval("direction_alpha")
    values = as_columns(columns)
    if prewhiten:  # each metric's AR innovations, its model read forward and backward
        values, backward = prewhiten_columns_both_ways(values)
    else:
        backward = values
    metrics = values.shape[0]
    present = ~np.isnan(values)
    complete: BoolArray = np.asarray(present.all(axis=1), dtype=np.bool_)
    ranks = RankBinCache(values, complete)
    backward_ranks = RankBinCache(backward, complete)
    constant = [all_equal(values[k][present[k]]) for k in range(metrics)]
    seeds = round_seeds(seed, FLOW_TEST_FAMILY, permutations)
    pairs = metrics * (metrics - 1)
    result = empty_result(FIELDS, pairs, ints=_INT_FIELDS, bools=("tested",))
    pair = -1
    for i in range(metrics):
        for j in range(metrics):
            if i == j:
                continue
            budget.check(STAGE)
            pair += 1
            both = present[i] & present[j]
            n = int(np.count_nonzero(both))
            bins = _flow_bins(n)
            store(result, pair, {"i": i, "j": j, "n": n, "bins": bins})
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
                for lag in range(1, _lags(max_lag, n) + 1)
            ]
            best_lag = _first_best(transfer) + 1
            te = transfer[best_lag - 1]
            te_reverse = float(
                _transfer_entropy_rows(target[None, :] * bins, source, best_lag, bins)[0]
            )
            if n <= max_test_n:
                part, key = every, "all"
                tested_source, tested_target, tested_bins = source, target, bins
                observed = max(transfer)
            else:
                part, key = slice(n - max_test_n, None), "latest"
                tested_bins = _flow_bins(max_test_n)
                tested_source = ranks.get(i, j, both, part, key, tested_bins)
                tested_target = ranks.get(j, i, both, part, key, tested_bins)
                observed = float(
                    _max_transfer_entropy(
                        tested_source[None, :] * tested_bins,
                        tested_target,
                        _lags(max_lag, tested_source.size),
                        tested_bins,
                    )[0]
                )
            scaled_source = tested_source * tested_bins
            shortest = shortest_shift(tested_source, max_lag + 1)

            def permuted(
                seeds: UInt64Array,
                scaled_source: Int64Array = scaled_source,
                tested_target: Int64Array = tested_target,
                tested_bins: int = tested_bins,
                shortest: int = shortest,
            ) -> Float64Array:
                shuffled = scaled_source[shift_rows(seeds, scaled_source.size, shortest)]
                lags = _lags(max_lag, scaled_source.size)
                return _max_transfer_entropy(shuffled, tested_target, lags, tested_bins)

            p_value, perms_run = sequential_p_value(
                observed, seeds, permuted, batch_limit(tested_source.size), (budget, STAGE)
            )
            # the direction (with a forward net flow, when the p-value can be a discovery):
            # the tested pairs and their backward series, read backward
            te_time_reversed, te_reverse_time_reversed, direction_p = math.nan, math.nan, 1.0
            # ties up to rounding: no forward net flow
            if te > te_reverse + LAG_TIE and p_value <= direction_alpha:
                te_time_reversed, te_reverse_time_reversed, direction_p = time_reversal_test(
                    (tested_source, tested_target),
                    (
                        backward_ranks.get(i, j, both, part, key, tested_bins)[::-1],
                        backward_ranks.get(j, i, both, part, key, tested_bins)[::-1],
                    ),
                    tested_bins,
                    best_lag,
                )
            store(
                result,
                pair,
                {
                    "best_lag": best_lag,
                    "te": te,
                    "te_reverse": te_reverse,
                    "te_time_reversed": te_time_reversed,
                    "te_reverse_time_reversed": te_reverse_time_reversed,
                    "direction_p": direction_p,
                    "p_value": p_value,
                    "perms_run": perms_run,
                    "tested": True,
                },
            )
    return result


def _first_best(values: list[float]) -> int:
    """Index of the largest value, where values within LAG_TIE of the best so far tie
    and the first wins (rounding differs between implementations and must not decide)."""
    best = 0
    for index in range(1, len(values)):
        if values[index] > values[best] + LAG_TIE:
            best = index
    return best
