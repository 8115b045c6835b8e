"""Nonlinear dependence between metric pairs (SPEC §6 ``DEPENDENCE``), the twin of the
Rust core's ``detect::dependence``: bias-corrected mutual information of quantile bins,
tested against circular time-shift surrogates of y (``shared.surrogates``; Quiroga et al.
2002), for pairs whose linear correlation stays below the correlation threshold."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from crackle_runtime._args import Budget, Params
from crackle_runtime._numpy._stats import all_equal, pearson
from crackle_runtime._numpy.detect.shared.columns import as_columns, empty_result, store
from crackle_runtime._numpy.detect.shared.permutation import (
    MAX_PERMUTATIONS,
    PERMUTATION_SEED,
    batch_limit,
    round_seeds,
    sequential_p_value,
)
from crackle_runtime._numpy.detect.shared.ranks import RankBinCache, entropy, entropy_rows
from crackle_runtime._numpy.detect.shared.surrogates import shift_rows, shortest_shift

__all__ = ["FIELDS", "KIND", "NAME", "PARAMS", "run"]

NAME = "dependence"
KIND = "dependence"
FIELDS = (
    "i",
    "j",
    "n",
    "r",
    "mi",
    "mi_corrected",
    "p_value",
    "perms_run",
    "info_coef",
    "effect",
    "bins",
    "tested",
)
PARAMS: dict[str, Any] = {
    "threshold_r": 0.7,
    "min_pairs": 30,
    "permutations": 199,
    "seed": PERMUTATION_SEED,
    "max_test_n": 10_000,
}

STAGE = "dependence"
DEPENDENCE_TEST_FAMILY = 1000  # the stream of the dependence tests' shared permutations
_LN2 = math.log(2.0)
_INT_FIELDS = ("i", "j", "n", "perms_run", "bins")

Float64Array = NDArray[np.float64]
Int64Array = NDArray[np.int64]
BoolArray = NDArray[np.bool_]
UInt64Array = NDArray[np.uint64]


def _dependence_bins(n: int) -> int:
    """min(16, max(4, round(sqrt(n / 5)))), round half to even (no exact half occurs)."""
    return min(16, max(4, round(math.sqrt(n / 5.0))))


def _mutual_information(
    x_codes: Int64Array, y_codes: Int64Array, bins: int
) -> tuple[float, int, int, int]:
    """Plug-in MI (bits) = max(0, H(X) + H(Y) - H(X, Y)) and the numbers of non-empty x, y
    and (x, y) cells."""
    joint = x_codes * bins + y_codes
    information = max(
        0.0,
        (entropy(x_codes, bins) + entropy(y_codes, bins)) - entropy(joint, bins * bins),
    )
    occupied_x = int(np.count_nonzero(np.bincount(x_codes, minlength=bins)))
    occupied_y = int(np.count_nonzero(np.bincount(y_codes, minlength=bins)))
    occupied_xy = int(np.count_nonzero(np.bincount(joint, minlength=bins * bins)))
    return information, occupied_x, occupied_y, occupied_xy


def run(columns: Float64Array, params: Params, budget: Budget) -> dict[str, Any]:
    """Per metric pair (i < j, row-major order) over the tasks having both: n, Pearson r,
    quantile bins; when tested (n >= min_pairs, |r| < threshold_r, neither constant), the
    plug-in and Miller–Madow mutual information of the quantile bins, the information
    coefficient, the range of y's mean over the x-bins and a sequential surrogate
    p-value (y circularly shifted by the shared shifts of test family 1000, at least its
    decorrelation length; pairs longer than ``max_test_n``
    tested on every s-th pair)."""
    threshold_r = params.unit_interval("threshold_r")
    min_pairs = params.count("min_pairs", 1)
    permutations = params.integer("permutations", 1, MAX_PERMUTATIONS)
    seed = params.seed("seed")
    max_test_n = params.count("max_test_n", 1)
    values = as_columns(columns)
    metrics = values.shape[0]
    present = ~np.isnan(values)
    complete: BoolArray = np.asarray(present.all(axis=1), dtype=np.bool_)
    ranks = RankBinCache(values, complete)
    seeds = round_seeds(seed, DEPENDENCE_TEST_FAMILY, permutations)
    pairs = metrics * (metrics - 1) // 2
    result = empty_result(FIELDS, pairs, ints=_INT_FIELDS, bools=("tested",))
    pair = -1
    for i in range(metrics):
        for j in range(i + 1, metrics):
            budget.check(STAGE)
            pair += 1
            both = present[i] & present[j]
            x, y = values[i][both], values[j][both]
            n = x.size
            r = pearson(x, y)
            bins = _dependence_bins(n)
            store(result, pair, {"i": i, "j": j, "n": n, "r": r, "bins": bins})
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
            marginals = entropy(tested_x, tested_bins) + entropy(tested_y, tested_bins)
            shortest = shortest_shift(tested_y, 1)

            def permuted(
                seeds: UInt64Array,
                tested_x: Int64Array = tested_x,
                tested_y: Int64Array = tested_y,
                tested_bins: int = tested_bins,
                marginals: float = marginals,
                shortest: int = shortest,
            ) -> Float64Array:
                shuffled = tested_y[shift_rows(seeds, tested_y.size, shortest)]
                joint = tested_x[None, :] * tested_bins + shuffled
                joint_entropy = entropy_rows(joint, tested_bins * tested_bins)
                return np.maximum(marginals - joint_entropy, 0.0)

            p_value, perms_run = sequential_p_value(
                observed, seeds, permuted, batch_limit(tested_x.size), (budget, STAGE)
            )
            store(
                result,
                pair,
                {
                    "mi": mi,
                    "mi_corrected": mi_corrected,
                    "p_value": p_value,
                    "perms_run": perms_run,
                    "info_coef": info_coef,
                    "effect": effect,
                    "tested": True,
                },
            )
    return result
