"""Change points (SPEC §12 ``DISTRIBUTION_SHIFT``), the twin of the Rust core's
``detect::distribution_shift``: every change of a metric's level or spread, found by binary
segmentation of rank CUSUM statistics standardised by a long-run variance that holds on
autocorrelated data, each change with its own p-value; drifting metrics are told apart.

The method and its constants are documented once, in the Rust module; every step here is
the same arithmetic in the same order (integer sums where the Rust core sums integers), so
the two backends return the same changes and statistics to rounding.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from crackle_runtime._args import Budget, Params
from crackle_runtime._numpy._stats import (
    all_equal,
    mean_and_sum_of_squares,
    normal_quantile,
    population_std,
    student_t_two_sided_p,
)
from crackle_runtime._numpy.detect.outlier import clearly_right_skewed
from crackle_runtime._numpy.detect.shared.columns import as_columns
from crackle_runtime._numpy.detect.shared.ranks import doubled_midranks, median
from crackle_runtime._numpy.detect.shared.seasonal import (
    atom_cycle,
    deviations_repeat,
    find_cycle,
    phase_group_count,
    shared_cycle,
)

__all__ = ["FIELDS", "KIND", "NAME", "PARAMS", "run", "segment"]

NAME = "distribution_shift"
KIND = "distribution shift"
METRIC_FIELDS = ("count", "tested", "phi", "drifting", "drift_start", "drift_end", "period")
CHANGE_FIELDS = (
    "metric",
    "change_index",
    "segment_start",
    "segment_end",
    "statistic",
    "p_value",
    "spread",
    "differenced",
    "mean_before",
    "mean_after",
    "median_before",
    "median_after",
    "std_before",
    "std_after",
)
FIELDS = METRIC_FIELDS + CHANGE_FIELDS
PARAMS: dict[str, Any] = {"min_segment": 4, "alpha": 0.01}

STAGE = "distribution_shift"
PHI_MAX = 0.97  # the AR(1) coefficient's cap (Andrews & Monahan 1992)
BLOCK_EXPONENT = 0.6  # block_inflation's blocks are round(L^0.6) scores long
MIN_BLOCKS = 12  # ... and it needs this many of them (L >= 504)
CHI2_MEDIAN = 0.4549364231195728  # the median of chi-squared with one degree of freedom
DRIFT_RHO = 0.93  # ranks this autocorrelated within their segments: a drifting metric ...
UNIT_ROOT_T = -3.96  # ... that keeps a unit root (Dickey-Fuller t above this; the Rust docs)
KOLMOGOROV_TERMS = 100
KERNEL_C = 2.0  # the flat-top kernel's bandwidth rule (Politis 2003): |rho_j| < c sqrt(log10 L / L)
KERNEL_LAGS = 5  # ... for this many lags in a row, searched up to lag
KERNEL_REACH = 8  # ... min(L / 4, 8 ceil(L^(1/3)))
LEVEL_FIRST = 0.01  # the level test places the change when 2 p_level <= this
SPREAD_SCORE_MAX = 1 << 24  # Mood's scores are divided by 2^k to stay at or below this
SMALL_SAMPLE = 9.0  # T is shrunk by L' / (L' + 9), L' = L / f: the finite-sample correction
JUMP_NEIGHBOURS = 40  # a jump's increment is scaled by the MAD of the 40 increments nearest it
JUMP_DF = 12.0  # ... and its z read against Student's t with 12 degrees of freedom
JUMP_SCREEN = 2.5  # increments below 2.5 times their neighbours' mean deviation: not tested
JUMP_LEVEL = 10  # the 10 values after a jump lie beyond the 10 before, median by half of it
MAD_NORMAL = 1.482602218505602  # 1 / Phi^-1(3/4)
INV_SQRT_2PI = 0.3989422804014327  # 1 / sqrt(2 pi)
JUMP_RESOLUTION = 1e-9  # a scale at most this times max |x| is rounding: no jump test
SCAN_NARROWEST = 8  # the incident scan's windows: 8, 16, ..., 256 values on each side
SCAN_WIDTHS = 6
SCAN_SPAN = 16  # a window of w values is scanned over at least 16 w values
SCAN_VARIED = 5  # ... of which w (1 - the commonest value's share) >= 5 differ from it
SCAN_SAMPLE = 4096  # the window differences' median and MAD read at most this many of them
SCAN_CROSSINGS = 1.5  # rho(h) = 1 - 1.5 |h| / w near h = 0: the standardised scan's slope
TRANSITION_SHARE = 10  # changes spanning under a tenth of each outer segment: a transition

Float64Array = NDArray[np.float64]
Int64Array = NDArray[np.int64]


def run(columns: Float64Array, params: Params, budget: Budget) -> dict[str, Any]:
    """Per metric: its changes (binary segmentation of the rank and spread CUSUMs, each
    tested against the Kolmogorov distribution with the long-run variance of its segment)
    and whether it drifts; per change: its metric, position, segments, p-value and the
    summaries of the values on each side."""
    min_segment = params.count("min_segment", 2)
    alpha = params.unit_interval("alpha")
    values_by_metric = as_columns(columns)
    metrics = values_by_metric.shape[0]
    per_metric: dict[str, list[Any]] = {name: [] for name in METRIC_FIELDS}
    per_change: dict[str, list[Any]] = {name: [] for name in CHANGE_FIELDS}

    def search(metric: int, periods: list[int] | None, atom: bool = False) -> dict[str, Any]:
        budget.check(STAGE)
        row = values_by_metric[metric]
        present = ~np.isnan(row)
        # a cycle's phase counts tasks: the search reads the values' task positions
        return segment(
            row[present],
            min_segment,
            alpha,
            budget,
            tasks=np.flatnonzero(present),
            length=row.size,
            periods=periods,
            atom=atom,
        )

    every = [search(metric, None) for metric in range(metrics)]
    # a metric without a cycle of its own, tested at the periods the others repeat, then
    # for a cycle of its commonest value's share
    periods = sorted({found["period"] for found in every if found["period"]})
    passes = ([(periods, False)] if periods else []) + [(None, True)]
    for shared_periods, atom in passes:
        for metric, found in enumerate(every):
            if found["tested"] and not found["period"]:
                cycled = search(metric, shared_periods, atom)
                if cycled["period"]:
                    every[metric] = cycled
    for metric, found in enumerate(every):
        per_metric["count"].append(int(np.count_nonzero(~np.isnan(values_by_metric[metric]))))
        per_metric["tested"].append(found["tested"])
        per_metric["phi"].append(found["phi"])
        per_metric["drifting"].append(found["drifting"])
        per_metric["drift_start"].append(found["drift_start"])
        per_metric["drift_end"].append(found["drift_end"])
        per_metric["period"].append(found["period"])
        for change in found["changes"]:
            per_change["metric"].append(metric)
            for name in CHANGE_FIELDS[1:]:
                per_change[name].append(change[name])
    result: dict[str, Any] = {}
    ints = {"count", "drift_start", "drift_end", "period", "metric", "change_index"}
    ints |= {"segment_start", "segment_end"}
    bools = {"tested", "drifting", "spread", "differenced"}
    for name in FIELDS:
        column = per_metric[name] if name in per_metric else per_change[name]
        dtype = np.int64 if name in ints else np.bool_ if name in bools else np.float64
        result[name] = np.array(column, dtype=dtype)
    return result


def kolmogorov_survival(x: float) -> float:
    """P(sup |B(t)| > x) for a Brownian bridge B (Kolmogorov 1933):
    2 sum_{k>=1} (-1)^(k-1) exp(-2 k^2 x^2) for x >= 1, else 1 - sqrt(2 pi) / x
    sum_{k>=1} exp(-(2k-1)^2 pi^2 / (8 x^2)); terms until they vanish (<= 100)."""
    if not x > 0.0:
        return 1.0
    total = 0.0
    if x >= 1.0:
        for k in range(1, KOLMOGOROV_TERMS + 1):
            term = math.exp(-2.0 * k * k * x * x)
            total += term if k % 2 == 1 else -term
            if term < 1e-300:
                break
        return min(max(2.0 * total, 0.0), 1.0)
    for k in range(1, KOLMOGOROV_TERMS + 1):
        odd = 2 * k - 1
        term = math.exp(-(odd * odd) * math.pi * math.pi / (8.0 * x * x))
        total += term
        if term < 1e-300:
            break
    return min(max(1.0 - math.sqrt(2.0 * math.pi) / x * total, 0.0), 1.0)


def cusum_test(
    scores: Int64Array, min_segment: int, weighted: bool, kernel: bool = False
) -> tuple[int, float, float]:
    """(k, T, p) of the CUSUM of integer scores s of length L: S_k = sum(s[:k]) - k sum(s) / L
    for k in [min_segment, L - min_segment], m the first maximiser of |S_k|, k the first
    maximiser of S_k^2 / (k (L - k)) when ``weighted`` (the least-squares location), else
    k = m; j the first maximiser of -S_j when S_m > 0 (else of S_j),
    T = |S_m| / sqrt(L lrv) L' / (L' + 9), L' = L / f, with lrv and f from
    :func:`split_long_run` cut at k and j
    with the floor :func:`difference_rho` of the pairs not straddling k (and with ``kernel``
    f at least :func:`kernel_inflation`), p the Kolmogorov survival of T (p = 1, T = 0 when
    lrv = 0)."""
    k, statistic, p_value, _ = _cusum(scores, min_segment, weighted, kernel)
    return k, statistic, p_value


def _cusum(
    scores: Int64Array, min_segment: int, weighted: bool, kernel: bool
) -> tuple[int, float, float, float]:
    """:func:`cusum_test` and the ratio f it used."""
    length = scores.size
    prefix = np.cumsum(scores)
    total = float(prefix[-1])
    splits = np.arange(min_segment, length - min_segment + 1)
    signed = prefix[splits - 1].astype(np.float64) - splits * total / length
    deviation = np.abs(signed)
    best = int(np.argmax(deviation))
    if weighted:
        located = signed * signed / (splits * (length - splits)).astype(np.float64)
        k = int(splits[int(np.argmax(located))])
    else:
        k = int(splits[best])
    # The other extreme of the CUSUM: a change back (a regression, then its fix) is cut
    # out of the residuals too, so it cannot pass for autocorrelation.
    other = int(splits[int(np.argmin(signed)) if signed[best] > 0 else int(np.argmax(signed))])
    lrv, inflation = split_long_run(scores, sorted({k, other}), difference_rho(scores, k), kernel)
    if lrv == 0.0:
        return k, 0.0, 1.0, inflation
    effective = length / inflation
    statistic = (
        float(deviation[best]) / math.sqrt(length * lrv) * effective / (effective + SMALL_SAMPLE)
    )
    return k, statistic, kolmogorov_survival(statistic), inflation


def _side_moments(side: Int64Array) -> tuple[float, float, float]:
    """(sum e^2, sum e_t e_(t+1), mean) of one side's residuals e = s - mean(s), from exact
    integer sums: q sum e^2 = q sum s^2 - S^2 and q^2 sum e_t e_(t+1) = q^2 P - q S (2 S -
    first - last) + (q - 1) S^2, P = sum s_t s_(t+1)."""
    q = side.size
    total = int(side.sum())
    squares = exact_dot(side, side)
    lagged = exact_dot(side[:-1], side[1:]) if q > 1 else 0
    ends = int(side[0]) + int(side[-1])
    energy = float(q * squares - total * total) / q
    products = float(q * q * lagged - q * total * (2 * total - ends) + (q - 1) * total * total)
    return energy, products / (q * q), total / q


def residual_rho(scores: Int64Array, bounds: list[int]) -> tuple[float, float] | None:
    """(sum e^2, rho) of the scores demeaned within the pieces cut at ``bounds`` (0 = b_0 <
    ... < b_J = L): rho = sum e_t e_(t+1) / sum e^2 over every adjacent pair (the pieces'
    sums in order, then the pairs across cuts in order), bias-corrected to
    rho + J (1 + 3 rho) / L (Kendall 1954, once per fitted mean), not clipped. None when
    every piece is constant."""
    pieces = len(bounds) - 1
    energy = 0.0
    products = 0.0
    means = []
    for lo, hi in itertools.pairwise(bounds):
        piece_energy, piece_products, mean = _side_moments(scores[lo:hi])
        energy += piece_energy
        products += piece_products
        means.append(mean)
    for index, cut in enumerate(bounds[1:pieces]):
        products += (float(scores[cut - 1]) - means[index]) * (
            float(scores[cut]) - means[index + 1]
        )
    if energy <= 0.0:
        return None
    rho = products / energy
    return energy, rho + pieces * (1.0 + 3.0 * rho) / scores.size


def keeps_unit_root(scores: Int64Array, cuts: list[int] | None = None) -> bool:
    """Whether the scores keep a unit root: the Dickey-Fuller t of their bias-corrected
    lag-1 autocorrelation rho about their means between ``cuts`` (the jumps;
    :func:`residual_rho`), (rho - 1) / sqrt((1 - rho^2) / (n - 1)), is above -3.96 (rho >=
    1: it is)."""
    fitted = residual_rho(scores, [0, *(cuts or []), scores.size])
    if fitted is None or fitted[1] >= 1.0:
        return True
    rho = fitted[1]
    if rho <= -1.0:  # no variance left to divide by: no unit root (as natively: NaN)
        return False
    return (rho - 1.0) / math.sqrt((1.0 - rho * rho) / (scores.size - 1.0)) > UNIT_ROOT_T


def difference_rho(scores: Int64Array, cut: int) -> float:
    """The lag-1 autocorrelation of integer scores from their variogram at lags 1 and 2:
    D_j = sum (s_t - s_(t-j))^2 / count over the pairs (t - j, t) that do not straddle
    ``cut`` (t - j < cut <= t), rho = D_2 / D_1 - 1 (exact integer sums), not clipped; 0
    with fewer than 4 scores or when D_1 = 0."""
    length = scores.size
    if length < 4:
        return 0.0
    lag1 = np.diff(scores) ** 2  # pair (t - 1, t) at t - 1
    lag2 = (scores[2:] - scores[:-2]) ** 2  # pair (t - 2, t) at t - 2
    keep1 = np.arange(1, length) != cut
    later = np.arange(2, length)
    keep2 = (later != cut) & (later != cut + 1)
    count1, count2 = int(keep1.sum()), int(keep2.sum())
    sum1, sum2 = int(lag1[keep1].sum()), int(lag2[keep2].sum())
    if count1 == 0 or count2 == 0 or sum1 == 0:
        return 0.0
    return (float(sum2) / count2) / (float(sum1) / count1) - 1.0


def _block_ratio(scores: Int64Array, cuts: list[int], energy: float, width: int) -> float:
    """The block ratio at one width (1 with fewer than MIN_BLOCKS / 4 differences)."""
    length = scores.size
    count = length // width
    sums = scores[: count * width].reshape(count, width).sum(axis=1)
    starts = np.arange(count - 1) * width
    keep = np.ones(count - 1, dtype=bool)
    for cut in cuts:
        keep &= ~((starts < cut) & (cut < starts + 2 * width))
    spreads = np.sort(np.abs(np.diff(sums))[keep])
    kept = spreads.size
    if kept < MIN_BLOCKS // 4:
        return 1.0
    if kept % 2:
        middle = float(spreads[kept // 2]) * float(spreads[kept // 2])
    else:
        low, high = float(spreads[kept // 2 - 1]), float(spreads[kept // 2])
        middle = (low * low + high * high) / 2.0
    long_run = middle / CHI2_MEDIAN / (2.0 * width)
    return float(long_run / (energy / length))


def block_inflation(scores: Int64Array, cuts: list[int], energy: float) -> float:
    """The smaller of the block ratios at widths j and 2 j (see the Rust ``block_inflation``)."""
    length = scores.size
    width = max(math.floor(float(length) ** BLOCK_EXPONENT + 0.5), 2)
    if length // width < MIN_BLOCKS or energy <= 0.0:
        return 1.0
    return min(
        _block_ratio(scores, cuts, energy, width), _block_ratio(scores, cuts, energy, 2 * width)
    )


def ceil_cbrt(n: int) -> int:
    """The smallest c with c^3 >= n."""
    c = 0
    while c * c * c < n:
        c += 1
    return c


def kernel_inflation(scores: Int64Array, bounds: list[int], energy: float) -> float:
    """The ratio of the flat-top (trapezoid) kernel long-run variance to the variance of the
    scores demeaned within the pieces cut at ``bounds`` (``energy`` = sum e^2; Politis 2003
    adaptive bandwidth; see the Rust ``kernel_inflation``): lag-j products over pairs within
    a piece from exact integer sums, q^2 sum e_t e_(t+j) = q^2 sum s_t s_(t+j) - q S (A + B)
    + (q - j) S^2, each piece's turned to a float over q^2 and added in order."""
    length = scores.size
    most = min(length // 4, KERNEL_REACH * ceil_cbrt(length))
    if energy <= 0.0 or most <= KERNEL_LAGS:
        return 1.0
    threshold = KERNEL_C * math.sqrt(math.log10(length) / length)
    pieces = []
    for lo, hi in itertools.pairwise(bounds):
        side = scores[lo:hi]
        prefix = np.concatenate([np.zeros(1, dtype=np.int64), np.cumsum(side)])
        pieces.append((side, int(prefix[-1]), prefix))
    covariances = [0.0]  # covariances[j]: the lag-j sum of products (lag 0 unused)
    quiet, bandwidth, lag = 0, -1, 0
    while bandwidth < 0 or lag < 2 * bandwidth:
        lag += 1
        total = 0.0
        for side, whole, prefix in pieces:
            q = side.size
            if lag >= q:
                continue
            products = exact_dot(side[: q - lag], side[lag:])
            head, tail = int(prefix[q - lag]), whole - int(prefix[lag])
            centred = q * q * products - q * whole * (head + tail) + (q - lag) * whole * whole
            total += float(centred) / (q * q)
        covariances.append(total)
        if bandwidth < 0:
            quiet = quiet + 1 if abs(total / energy) < threshold else 0
            if quiet == KERNEL_LAGS:
                bandwidth = lag - KERNEL_LAGS
            elif lag == most:
                bandwidth = most - KERNEL_LAGS
    long_run = energy
    for lag in range(1, 2 * bandwidth + 1):
        weight = 1.0 if lag <= bandwidth else (2 * bandwidth - lag) / bandwidth
        long_run += 2.0 * weight * covariances[lag]
    return long_run / energy


def split_long_run(
    scores: Int64Array, cuts: list[int], floor: float, kernel: bool = False
) -> tuple[float, float]:
    """(lrv, f): the long-run variance of the scores demeaned within the pieces cut at
    ``cuts`` (ascending, inside) and its ratio to the variance: rho =
    max(:func:`residual_rho`, floor) clipped to [0, 0.97], f the larger of
    (1 + rho) / (1 - rho) and :func:`block_inflation` (at most the ratio at 0.97), and with
    ``kernel`` of :func:`kernel_inflation` (with the same cap),
    sum e^2 / (L - J f) f for J pieces; infinite (nothing testable) when L - J f <= 0; every
    piece constant: the variance of the whole segment, (L sum s^2 - S^2) / (L (L - 1)),
    and f = 1."""
    length = scores.size
    bounds = [0, *cuts, length]
    fitted = residual_rho(scores, bounds)
    if fitted is None:
        size, _, centred = _centred_energy(scores)
        return float(centred) / size / (size - 1), 1.0
    energy, rho = fitted
    rho = min(max(rho, floor, 0.0), PHI_MAX)
    most = (1.0 + PHI_MAX) / (1.0 - PHI_MAX)
    inflation = max((1.0 + rho) / (1.0 - rho), min(block_inflation(scores, cuts, energy), most))
    if kernel and inflation < most:  # at the cap already, the kernel cannot raise f
        inflation = max(inflation, min(kernel_inflation(scores, bounds, energy), most))
    denominator = length - (len(bounds) - 1) * inflation
    if denominator <= 0.0:
        return math.inf, inflation
    return energy / denominator * inflation, inflation


def spread_scores(ranks: Int64Array) -> Int64Array:
    """Mood's (1954) scale scores: floor(d^2 / 2^k), d = 2 r - (r_(lo) + r_(hi)) (lo, hi
    the middle order statistics of the segment's doubled ranks), k the smallest with
    max d^2 / 2^k <= SPREAD_SCORE_MAX (see the Rust ``spread_scores``)."""
    length = ranks.size
    ordered = np.partition(ranks, [(length - 1) // 2, length // 2])
    middle = int(ordered[(length - 1) // 2]) + int(ordered[length // 2])
    distance = 2 * ranks - middle
    largest = int(np.abs(distance).max()) ** 2
    shift = 0
    while largest >> shift > SPREAD_SCORE_MAX:
        shift += 1
    return (distance * distance) >> shift


def split_segment(
    ranks: Int64Array, min_segment: int, kernel: bool = False, spread_test: bool = True
) -> tuple[int, float, float, bool]:
    """(k, T, p, spread) of the better of the level and spread tests of one segment: the
    spread test when its p is the smaller and 2 p_level > LEVEL_FIRST, else the level test
    (always when the level test's ratio f is at least that of AR(1) at DRIFT_RHO: no spread
    test); k and T of the chosen test, p = min(1, 2 p) of it (Bonferroni); p = 1 when
    fewer than ``min_segment``
    values differ from the segment's commonest value. With ``kernel`` (the refinement's
    re-test) the test and k are chosen as without it, and T and p are the chosen test's
    with ``kernel`` (see the Rust ``split_segment``). Without ``spread_test`` (stratified
    ranks, :func:`stratified_ranks`) the level test alone, its p not doubled."""
    middle = ranks[np.argpartition(ranks, ranks.size // 2)[ranks.size // 2]]
    if ranks.size - int(np.count_nonzero(ranks == middle)) < min_segment:
        # fewer than min_segment values differ from the commonest one (it is the middle
        # one when they are that few): a stray value is no change
        return min_segment, 0.0, 1.0, False
    k, statistic, p_value, inflation = _cusum(ranks, min_segment, True, False)
    if not spread_test:  # the level test alone: no Bonferroni
        if kernel:
            _, statistic, p_value = cusum_test(ranks, min_segment, True, kernel=True)
        return k, statistic, p_value, False
    level = (k, statistic, p_value)
    # Ranks as persistent as a drifting metric's (a ramp): their distances from the median
    # swing with the level, so the spread is not tested.
    persistent = inflation >= (1.0 + DRIFT_RHO) / (1.0 - DRIFT_RHO)
    spreads = ranks if persistent else spread_scores(ranks)
    spread = level if persistent else cusum_test(spreads, min_segment, weighted=False)
    use_spread = spread[2] < level[2] and 2.0 * level[2] > LEVEL_FIRST
    k, statistic, p_value = spread if use_spread else level
    if kernel:
        scores = spreads if use_spread else ranks
        _, statistic, p_value = cusum_test(scores, min_segment, not use_spread, kernel=True)
    return k, statistic, min(1.0, 2.0 * p_value), use_spread


def _jump_z_floor(count: int, alpha: float) -> float:
    """A z below which min(1, count P(|t_12| >= z)) > alpha for certain: the bisected
    alpha point less 1e-6 of it (the p-value is decreasing in z), so that the exact p-value
    is computed only where it can pass (the Rust loop computes it for every screened
    increment; the jumps are the same)."""
    low, high = 0.0, 1e3
    for _ in range(100):
        middle = (low + high) / 2.0
        if count * student_t_two_sided_p(middle, JUMP_DF) > alpha:
            low = middle
        else:
            high = middle
    return low * (1.0 - 1e-6)


def jump_scale(values: Float64Array, ranks: Int64Array) -> Float64Array:
    """The values the jump test reads: ln x for a clearly right-skewed positive metric
    (:func:`clearly_right_skewed`) whose ranks reject a unit root over all its values
    (:func:`keeps_unit_root` without cuts), else the values (see the Rust ``jump_scale``)."""
    if not keeps_unit_root(ranks) and clearly_right_skewed(values):
        return np.log(values)
    return values


def level_jumps(values: Float64Array, alpha: float) -> list[tuple[int, float, float]]:
    """(position, z, p) of each jump of the values, by position (see the Rust ``jumps``):
    increment d_t = x_(t+1) - x_t screened where |d_t - med d| exceeds JUMP_SCREEN times
    the mean of |d_j - med d| over its window of JUMP_NEIGHBOURS + 1 increments (t's
    nearest, the first or last ones at the ends); z = |d_t - c| / (MAD_NORMAL MAD) with c
    and MAD the median and MAD of the window without t; p = min(1, m P(|t_12| >= z)) over
    the m increments; a jump when p <= alpha and the JUMP_LEVEL values from t + 1 lie all
    beyond the JUMP_LEVEL before, their median by half of d_t - c or more, its way; of
    jumps within JUMP_LEVEL of each other the largest z (the first of equal ones) is
    kept. The position is t + 1, the first value of the new level."""
    differences = np.diff(values)
    count = differences.size
    if count <= JUMP_NEIGHBOURS or not np.all(np.isfinite(differences)):
        return []
    deviations = np.abs(differences - float(median(differences)))
    prefix = np.concatenate([np.zeros(1), np.cumsum(deviations)])
    starts = np.clip(np.arange(count) - JUMP_NEIGHBOURS // 2, 0, count - JUMP_NEIGHBOURS - 1)
    window = prefix[starts + JUMP_NEIGHBOURS + 1] - prefix[starts] - deviations
    screened = np.flatnonzero(deviations > JUMP_SCREEN * (window / JUMP_NEIGHBOURS))
    if screened.size == 0:
        return []
    at = starts[screened][:, None] + np.arange(JUMP_NEIGHBOURS + 1)[None, :]
    # the window without t itself: t's column moved to the end and cut off
    keep = at != screened[:, None]
    neighbours = differences[at[keep].reshape(screened.size, JUMP_NEIGHBOURS)]
    centre = median(neighbours)
    scale = MAD_NORMAL * median(np.abs(neighbours - centre[:, None]))
    # increments equal but for rounding (values on a grid, a steady ramp) have no scale
    resolution = JUMP_RESOLUTION * float(np.max(np.abs(values)))
    moves = differences[screened] - centre
    with np.errstate(divide="ignore", invalid="ignore"):
        z_values = np.abs(moves) / scale
    # p falls with z: only z near or above the alpha point is worth the exact p-value
    candidates = np.flatnonzero((scale > resolution) & (z_values >= _jump_z_floor(count, alpha)))
    found: list[tuple[int, float, float]] = []
    for index in candidates.tolist():
        t = int(screened[index])
        offset, z = float(moves[index]), float(z_values[index])
        p_value = min(1.0, count * student_t_two_sided_p(z, JUMP_DF))
        if p_value > alpha:
            continue
        position = t + 1
        if position < JUMP_LEVEL or values.size - position < JUMP_LEVEL:
            continue
        before = values[position - JUMP_LEVEL : position]
        after = values[position : position + JUMP_LEVEL]
        if offset > 0.0:
            separate = after.min() > before.max()
            moved = float(median(after)) - float(median(before))
        else:
            separate = after.max() < before.min()
            moved = float(median(before)) - float(median(after))
        if separate and moved >= abs(offset) / 2.0:
            found.append((position, z, p_value))
    kept: list[tuple[int, float, float]] = []
    for jump in sorted(found, key=lambda j: (-j[1], j[0])):
        if all(abs(jump[0] - other[0]) > JUMP_LEVEL for other in kept):
            kept.append(jump)
    return sorted(kept)


def window_difference_variance(width: int, rho: float) -> float:
    """Var(D) / Var(x) for the difference D of the sums of two adjacent windows of ``width``
    values of an AR(1) series with lag-1 autocorrelation rho: 2 Var(S_w) - 2 Cov(S_after,
    S_before) = 2 w (1 + rho) / (1 - rho) - 4 rho (1 - rho^w) / (1 - rho)^2 - 2 rho (1 -
    rho^w)^2 / (1 - rho)^2 (2 w at rho = 0)."""
    gone = 1.0 - rho**width
    rest = (1.0 - rho) * (1.0 - rho)
    return (
        2.0 * width * (1.0 + rho) / (1.0 - rho)
        - 4.0 * rho * gone / rest
        - 2.0 * rho * gone * gone / rest
    )


def _nearest(positions: list[int | None], at: int, reach: int) -> int | None:
    """The index of the position nearest ``at`` within ``reach`` (None: not a candidate; the
    earliest of equally near ones), if any (the Rust ``nearest``)."""
    near = [
        (abs(position - at), index)
        for index, position in enumerate(positions)
        if position is not None and abs(position - at) <= reach
    ]
    return min(near)[1] if near else None


def window_direction(ranks: Int64Array, position: int, width: int) -> int:
    """1, -1 or 0: whether the mean rank of the ``width`` values from ``position`` is above,
    below or equal to that of the ``width`` before (fewer at the ends; exact integers)."""
    before = ranks[max(0, position - width) : position]
    after = ranks[position : position + width]
    rising = int(after.sum()) * before.size
    falling = int(before.sum()) * after.size
    return (rising > falling) - (rising < falling)


def _spread_follows_cycle(
    removed: Float64Array, period: int, tasks: NDArray[np.int64], length: int
) -> bool:
    """Whether the spread of the values with the cycle removed repeats the cycle: the
    Rust ``spread_follows_cycle`` (:func:`deviations_repeat` of them placed at their
    tasks)."""
    column = np.full(length, np.nan)
    column[tasks] = removed
    return deviations_repeat(column, tasks, period)


def stratified_ranks(values: Float64Array, phases: Int64Array) -> Int64Array:
    """The doubled mid-ranks of the values within each phase group, on the scale of the
    whole series: round(r (L + 1) / (n_g + 1)) in integers, halves up (the Rust
    ``stratified_ranks``; van Elteren 1960)."""
    count = values.size
    ranks = np.empty(count, dtype=np.int64)
    order = np.argsort(phases, kind="stable")
    sizes = np.bincount(phases)
    for members in np.split(order, np.cumsum(sizes)[:-1]):
        size = members.size
        within = doubled_midranks(values[members])
        ranks[members] = (2 * within * (count + 1) + size + 1) // (2 * (size + 1))
    return ranks


def _phase_standard(
    scores: Float64Array, ranks: Int64Array, phases: Int64Array
) -> tuple[Float64Array, NDArray[np.bool_]] | None:
    """The scores centred and scaled within their phase groups (``phases``: the group of
    each position; means and population sds summed in position order), 0 in a group whose
    ranks are all equal, and whether each position's group varies; None when a group has
    no value (the Rust ``phase_moments``)."""
    counts = np.bincount(phases)
    if np.any(counts == 0):
        return None
    centred = scores - (np.bincount(phases, scores) / counts)[phases]
    sds = np.sqrt(np.bincount(phases, centred * centred) / counts)
    lowest = np.full(counts.size, np.iinfo(np.int64).max)
    highest = np.full(counts.size, np.iinfo(np.int64).min)
    np.minimum.at(lowest, phases, ranks)
    np.maximum.at(highest, phases, ranks)
    varies = highest > lowest
    standard = np.where(varies[phases], centred / np.where(varies, sds, 1.0)[phases], 0.0)
    return np.asarray(standard, dtype=np.float64), varies[phases]


def incidents(
    ranks: Int64Array, alpha: float, rho: float, phases: Int64Array | None = None
) -> list[tuple[int, float, float, int]]:
    """(position, z, p, w) of each level change the multiscale moving-sum scan finds (see
    the Rust ``incidents``), by position: over the van der Waerden scores
    s = Phi^-1(r / (2 (L + 1))) of the doubled mid-ranks r, at each window width w, the
    difference D_t of the sums of the w scores from t and the w before; z = |D_t - c| /
    max(MAD_NORMAL MAD, sd(s) sqrt(V_w(rho))), V_w the AR(1) variance of a window
    difference (:func:`window_difference_variance`, rho clipped to [0, 0.97]), c and MAD
    the median and MAD of every
    ceil(len / 4096)-th D; p = min(1, W 2 (L - 2 w + 1) (1.5 / w) z phi(z)) for z >= 2
    (else 1), W the widths scanned; the first largest z of each run of positions with
    p <= alpha; narrowest widths first, a wider one's change kept unless within w of a kept
    change going its way (:func:`window_direction` at w), to which it then lends its z and
    p when its p is smaller. With ``phases`` (the phase group of each position of a metric
    whose cycle was removed) the scores are centred and scaled within their groups first (0
    in a group without spread; each window then scaled by its share of varying values)."""
    count = ranks.size
    commonest = int(np.bincount(ranks).max())
    widths = [
        width
        for width in (SCAN_NARROWEST << k for k in range(SCAN_WIDTHS))
        if width * SCAN_SPAN <= count and width * (count - commonest) >= SCAN_VARIED * count
    ]
    if not widths:
        return []
    scores = normal_quantile(ranks / (2.0 * (count + 1)))
    varying = None  # positions in varying phase groups, counted, when some groups do not
    if phases is not None:
        standard = _phase_standard(scores, ranks, phases)
        if standard is not None:
            scores, varies = standard
            if not varies.all():
                varying = np.concatenate([np.zeros(1, dtype=np.int64), np.cumsum(varies)])
    prefix = np.concatenate([np.zeros(1), np.cumsum(scores)])
    spread = population_std(scores)
    found: list[tuple[int, float, float, int]] = []
    for width in widths:
        starts = np.arange(width, count - width + 1)
        moved = (prefix[starts + width] - prefix[starts]) - (
            prefix[starts] - prefix[starts - width]
        )
        sample = moved[:: -(-moved.size // SCAN_SAMPLE)]
        centre = float(median(sample))
        mad = float(median(np.abs(sample - centre)))
        if mad <= 0.0:
            continue
        scale = max(MAD_NORMAL * mad, spread * math.sqrt(window_difference_variance(width, rho)))
        if varying is None:
            z = np.abs(moved - centre) / scale
        else:  # scaled by the window's share of varying values against the series'
            share = (varying[starts + width] - varying[starts - width]) / (2 * width)
            local = scale * np.sqrt(share / (spread * spread))
            z = np.divide(np.abs(moved - centre), local, out=np.zeros(starts.size), where=share > 0)
        factor = len(widths) * 2.0 * (count - 2 * width + 1) * SCAN_CROSSINGS / width
        with np.errstate(over="ignore"):
            p_values = np.minimum(1.0, factor * z * np.exp(-0.5 * z * z) * INV_SQRT_2PI)
        p_values[z < 2.0] = 1.0  # 1 anyway: the factor is >= 42, z phi(z) >= 0.108 on [1, 2]
        significant = np.flatnonzero(p_values <= alpha)
        if significant.size == 0:
            continue
        runs = np.split(significant, np.flatnonzero(np.diff(significant) > 1) + 1)
        for run in runs:
            best = int(run[int(np.argmax(z[run]))])
            found.append((int(starts[best]), float(z[best]), float(p_values[best]), width))
    kept: list[tuple[int, float, float, int]] = []
    for change in sorted(found, key=lambda c: (c[3], c[2], c[0])):
        way = window_direction(ranks, change[0], change[3])
        index = _nearest(
            [o[0] if window_direction(ranks, o[0], change[3]) == way else None for o in kept],
            change[0],
            change[3],
        )
        if index is None:
            kept.append(change)
            continue
        if change[2] < kept[index][2]:  # seen better by the wider window: its z and p
            kept[index] = (kept[index][0], change[1], change[2], kept[index][3])
    return sorted(kept)


def segment(
    values: Float64Array,
    min_segment: int,
    alpha: float,
    budget: Budget | None = None,
    tasks: NDArray[np.int64] | None = None,
    length: int | None = None,
    periods: list[int] | None = None,
    differences: bool = True,
    cycles: bool = True,
    atom: bool = False,
) -> dict[str, Any]:
    """The changes of one metric's present values (see the Rust module), after removing its
    cycle (:func:`find_cycle`): the values are consecutive tasks when ``tasks`` is None,
    else recorded at ``tasks`` of ``length`` tasks. With ``periods``, the cycle is tested at
    those (:func:`shared_cycle`) instead of searched, and without one the metric is not
    searched (it comes back untested); with ``atom``, the cycle of its commonest value's
    share (:func:`atom_cycle`; without one, untested too); without ``cycles`` no cycle is
    looked for. With
    ``differences``, a metric drifting over all its values gets the changes of its
    task-to-task differences (:func:`_difference_changes`)."""
    count = values.size
    found: dict[str, Any] = {
        "tested": False,
        "phi": math.nan,
        "drifting": False,
        "drift_start": -1,
        "drift_end": -1,
        "period": 0,
        "changes": [],
    }
    if count < 2 * min_segment or all_equal(values):
        return found
    raw = values
    # A cycle is removed first: the search then sees its steps and drifts, not its swings
    # (not when removing it overflows: values near the largest float).
    if tasks is None:
        tasks, length = np.arange(count), count
    ranks = doubled_midranks(raw)
    length = count if length is None else length
    cycle = _cycle(raw, ranks, tasks, length, periods, atom) if cycles else None
    if cycles and cycle is None and (atom or periods is not None):
        return found  # searched already, without a cycle
    spread_test = True
    phases = None
    if cycle is not None:
        found["period"], values = cycle
        # a cycle's phase groups (see incidents and stratified_ranks)
        groups = phase_group_count(found["period"], count)
        phases = tasks % found["period"] * groups // found["period"] if groups else None
        if phases is not None and _spread_follows_cycle(values, found["period"], tasks, length):
            ranks, spread_test = stratified_ranks(values, phases), False
        else:
            ranks = doubled_midranks(values)  # else the same ranks
    found["tested"] = True
    splits = _binary_segmentation(ranks, min_segment, alpha, budget, spread_test)
    splits = _merge_transitions(
        _refine(splits, ranks, count, min_segment, spread_test), ranks, min_segment, spread_test
    )
    fitted = residual_rho(ranks, [0, *(split[0] for split in splits), count])
    found["phi"] = math.nan if fitted is None else fitted[1]
    # Abrupt moves of the level: a step is no unit root (Perron 1989), and a drifting
    # metric's jumps are its changes.
    persistent = found["phi"] >= DRIFT_RHO
    jumped = level_jumps(jump_scale(values, ranks), alpha) if differences and persistent else []
    if persistent and keeps_unit_root(ranks, [jump[0] for jump in jumped]):
        # Persistent within the segments too: a random walk or a trend, not steps; what
        # changes is read in its jumps and its task-to-task differences.
        found.update(drifting=True, drift_start=0, drift_end=count)
        if differences:
            found["changes"] = _kept_changes(
                raw, ranks, _with_jumps([], jumped), min_segment, spread_test
            )
            found["changes"] += _difference_changes(values, min_segment, alpha, budget)
            found["changes"].sort(key=lambda change: change["change_index"])
        return found
    kept, spans = _drifts([split[0] for split in splits], ranks, values)
    spread_at = {split[0]: split[5] for split in splits}
    kept, smooth = _smooth_steps(kept, [spread_at[change] for change in kept], ranks)
    drift = widest_drift(spans + smooth)
    if drift is not None:
        start, end = trim_drift(values, drift, kept)
        found.update(drifting=True, drift_start=start, drift_end=end)
    by_position = {split[0]: split for split in splits}
    rho = 0.0 if math.isnan(found["phi"]) else min(max(found["phi"], 0.0), PHI_MAX)
    # a cycle's phases keep their own score means and spreads (see incidents)
    scanned = [
        change
        for change in incidents(ranks, alpha, rho, phases)
        if not found["drift_start"] < change[0] < found["drift_end"]
    ]
    merged = _with_scanned(_with_jumps([by_position[c] for c in kept], jumped), scanned, ranks)
    found["changes"] = _kept_changes(raw, ranks, merged, min_segment, spread_test)
    if found["period"]:
        phase_of = tasks % found["period"]
        found["changes"] = _fewest_under_cycle(
            raw, phase_of, found["period"], found["changes"], alpha, rho
        )
    drifts_over_all = (found["drift_start"], found["drift_end"]) == (0, count)
    if differences and not found["changes"] and drifts_over_all:
        # drifting over all its values by its changes' runs and bends: the same reading
        found["changes"] = _difference_changes(values, min_segment, alpha, budget)
    return found


def _cycle(
    raw: Float64Array,
    ranks: Int64Array,
    tasks: NDArray[np.int64],
    length: int,
    periods: list[int] | None,
    atom: bool,
) -> tuple[int, Float64Array] | None:
    """The metric's cycle as :func:`segment` looks for it: the cycle of its commonest
    value's share with ``atom``, its own without ``periods``, else one of ``periods``."""
    if atom:
        return atom_cycle(raw, ranks, length)
    if periods is None:
        return find_cycle(raw, ranks, tasks, length)
    return shared_cycle(raw, ranks, tasks, length, periods)


def _binary_segmentation(
    ranks: Int64Array, min_segment: int, alpha: float, budget: Budget | None, spread_test: bool
) -> list[tuple[int, int, int, float, float, bool]]:
    """The changes binary segmentation finds (position, segment start and end, T, p,
    spread), by position: a segment of at least 2 min_segment values whose
    :func:`split_segment` gives p <= alpha is split and both sides searched again."""
    splits: list[tuple[int, int, int, float, float, bool]] = []
    pending = [(0, ranks.size)]
    while pending:
        start, end = pending.pop()
        if end - start < 2 * min_segment:
            continue
        if budget is not None:
            budget.check(STAGE)
        k, statistic, p_value, spread = split_segment(
            ranks[start:end], min_segment, spread_test=spread_test
        )
        if p_value <= alpha:
            splits.append((start + k, start, end, statistic, p_value, spread))
            pending.append((start + k, end))
            pending.append((start, start + k))
    return sorted(splits)


def _difference_changes(
    values: Float64Array, min_segment: int, alpha: float, budget: Budget | None
) -> list[dict[str, Any]]:
    """The changes of the task-to-task differences of a metric drifting over all its values
    (see the Rust ``difference_changes``): marked ``differenced``, placed at the first value
    after the first difference of the new regime; none when a difference is not finite."""
    differences = np.diff(values)
    if not np.all(np.isfinite(differences)):
        return []
    steps = np.arange(differences.size)
    found = segment(
        differences,
        min_segment,
        alpha,
        budget,
        steps,
        differences.size,
        differences=False,
        cycles=False,
    )
    # level changes only: noise proportional to a rising level widens the differences
    changes: list[dict[str, Any]] = [c for c in found["changes"] if not c["spread"]]
    for change in changes:
        change.update(
            change_index=change["change_index"] + 1,
            segment_end=change["segment_end"] + 1,
            differenced=True,
        )
    return changes


def _with_jumps(
    kept: list[tuple[int, int, int, float, float, bool]],
    jumped: list[tuple[int, float, float]],
) -> list[tuple[int, int, int, float, float, bool, float]]:
    """The kept changes and the jumps by position, each with the p-value of the other test
    that saw it (NaN when none): a kept change within JUMP_LEVEL of a jump (the nearest,
    the earlier of two as near) moves to the jump and keeps its segment, T and p, spread
    cleared; a jump with no such change comes in with its own segment (-1, -1), z and p."""
    merged = [(*split, math.nan) for split in kept]
    for position, z, p_value in jumped:
        index = _nearest(
            [entry[0] if math.isnan(entry[6]) else None for entry in merged], position, JUMP_LEVEL
        )
        if index is not None:
            _, start, end, statistic, p_change, _, _ = merged[index]
            merged[index] = (position, start, end, statistic, p_change, False, p_value)
        else:
            merged.append((position, -1, -1, z, p_value, False, p_value))
    return sorted(merged)


def _with_scanned(
    merged: list[tuple[int, int, int, float, float, bool, float]],
    scanned: list[tuple[int, float, float, int]],
    ranks: Int64Array,
) -> list[tuple[int, int, int, float, float, bool, float]]:
    """The entries (:func:`_with_jumps`) and the incident scan's changes (see the Rust
    ``with_scanned``): a change of the scan with no entry going its way within its window
    comes in with its z and p; else the nearest such entry, when the search found it and
    no other test saw it yet, takes the scan's p as its second test's."""
    for position, z, p_value, width in scanned:
        way = window_direction(ranks, position, width)
        index = _nearest(
            [e[0] if window_direction(ranks, e[0], width) == way else None for e in merged],
            position,
            width,
        )
        if index is None:
            merged.append((position, -1, -1, z, p_value, False, math.nan))
            continue
        change, start, end, statistic, p_change, spread, p_other = merged[index]
        if start >= 0 and math.isnan(p_other):
            merged[index] = (change, start, end, statistic, p_change, spread, p_value)
    return sorted(merged)


def _kept_changes(
    raw: Float64Array,
    ranks: Int64Array,
    merged: list[tuple[int, int, int, float, float, bool, float]],
    min_segment: int,
    spread_test: bool,
) -> list[dict[str, Any]]:
    """Each entry (:func:`_with_jumps`, :func:`_with_scanned`: position, re-test segment or
    (-1, -1), T, p, spread, the other test's p) with its segment between the changes on
    either side; a change's p-value the larger of its re-test's and that segment's when
    they differ (a neighbour moved or went: a drift, a bend), then for a change another test
    also saw (a jump, or the scan within its window going its way) min(1, 2 min(p,
    p_other)) (either test could have found it); a jump or a change of the scan alone keeps
    its own; and the summaries of the values recorded (cycle included) on each side."""
    bounds = [0, *(entry[0] for entry in merged), raw.size]
    changes = []
    for index, (change, start, end, statistic, p_value, spread, p_other) in enumerate(merged):
        lo, hi = bounds[index], bounds[index + 2]
        if start >= 0 and (lo, hi) != (start, end):
            _, wider, p_wider, _ = split_segment(ranks[lo:hi], min_segment, True, spread_test)
            if p_wider > p_value:
                statistic, p_value = wider, p_wider
        if start >= 0 and not math.isnan(p_other):
            p_value = min(1.0, 2.0 * min(p_value, p_other))
        changes.append(_summarised(raw, (lo, change, hi), statistic, p_value, spread))
    return changes


def _summarised(
    raw: Float64Array,
    bounds: tuple[int, int, int],
    statistic: float,
    p_value: float,
    spread: bool,
) -> dict[str, Any]:
    """A change at ``bounds[1]`` between ``bounds[0]`` and ``bounds[2]`` with its test, and
    the summaries of the values recorded (cycle included) on each side."""
    lo, change, hi = bounds
    before, after = raw[lo:change], raw[change:hi]
    return {
        "change_index": change,
        "segment_start": lo,
        "segment_end": hi,
        "statistic": statistic,
        "p_value": p_value,
        "spread": spread,
        "differenced": False,
        "mean_before": mean_and_sum_of_squares(before)[0],
        "mean_after": mean_and_sum_of_squares(after)[0],
        "median_before": float(median(before)),
        "median_after": float(median(after)),
        "std_before": population_std(before),
        "std_after": population_std(after),
    }


SPAN_FLOOR = 1e-9  # a step with at most this share of its energy outside the others' span
FEW_CYCLES = 8  # the selection reads metrics with fewer values than this many periods
MOST_SELECTED = 32  # ... and at most this many changes with p <= alpha


def _sequential_dot(a: Float64Array, b: Float64Array) -> float:
    """sum(a * b) added in position order (the Rust fold)."""
    return float(np.cumsum(a * b)[-1]) if a.size else 0.0


def _fewest_under_cycle(
    raw: Float64Array,
    phase_of: NDArray[np.int64],
    period: int,
    changes: list[dict[str, Any]],
    alpha: float,
    rho: float,
) -> list[dict[str, Any]]:
    """The changes without those that only stand for an error of the cycle's profile: forward
    selection of step regressors for the doubled mid-ranks with a mean per phase, by BIC on
    the effective number of values (the Rust ``fewest_under_cycle``)."""
    candidates = [  # changes of spread are no steps of the level: they stay
        k
        for k, change in enumerate(changes)
        if change["p_value"] <= alpha and not change["differenced"] and not change["spread"]
    ]
    count = raw.size
    if len(candidates) < 2 or len(candidates) > MOST_SELECTED or count >= FEW_CYCLES * period:
        return changes
    counts = np.bincount(phase_of, minlength=period)
    safe = np.maximum(counts, 1)
    ranks = doubled_midranks(raw).astype(np.float64)
    levels = ranks - (np.bincount(phase_of, ranks, minlength=period) / safe)[phase_of]
    steps = []
    for k in candidates:
        at = int(changes[k]["change_index"])
        after = np.bincount(phase_of[at:], minlength=period)
        steps.append((np.arange(count) >= at).astype(np.float64) - (after / safe)[phase_of])
    size = len(steps)
    gram = np.zeros((size, size))
    for a in range(size):
        for b in range(a, size):
            gram[a, b] = gram[b, a] = _sequential_dot(steps[a], steps[b])
    cross = [_sequential_dot(step, levels) for step in steps]
    total = _sequential_dot(levels, levels)
    effective = count * (1.0 - rho) / (1.0 + rho)
    picked = _forward_selection(gram, cross, total, effective)
    if not picked:
        return changes  # not even the best step lowers the BIC: no reading to prefer
    dropped = {candidates[c] for c in range(size) if c not in picked}
    if not dropped:
        return changes
    kept = [change for k, change in enumerate(changes) if k not in dropped]
    bounds = [0, *(int(change["change_index"]) for change in kept), count]
    return [
        _summarised(
            raw,
            (bounds[slot], int(change["change_index"]), bounds[slot + 2]),
            change["statistic"],
            change["p_value"],
            change["spread"],
        )
        for slot, change in enumerate(kept)
    ]


def _forward_selection(
    gram: Float64Array, cross: list[float], total: float, effective: float
) -> list[int]:
    """The steps forward selection keeps: at each round the one leaving the smallest
    residual sum of squares joins while effective ln(RSS / RSS') > ln(effective) (the
    Rust ``forward_selection``)."""
    size = len(cross)
    penalty = math.log(max(effective, 2.0))
    chosen = _Chosen()
    rss = total
    while len(chosen.members) < size:
        best: tuple[int, tuple[list[float], float, float]] | None = None
        for candidate in range(size):
            if candidate in chosen.members:
                continue
            extension = chosen.extended(gram, cross, total, candidate)
            if extension is not None and (best is None or extension[2] < best[1][2]):
                best = (candidate, extension)
        if best is None:
            break
        candidate, extension = best
        value = extension[2]
        if value > 0.0 and effective * math.log(rss / value) <= penalty:
            break
        chosen.push(candidate, extension)
        rss = value
        if value <= 0.0:
            break
    return chosen.members


class _Chosen:
    """The steps chosen so far: the rows of the Cholesky factor of their Gram matrix (in
    the order chosen), L^-1 b and its sum of squares (the Rust ``Chosen``)."""

    def __init__(self) -> None:
        self.members: list[int] = []
        self.rows: list[list[float]] = []
        self.solved: list[float] = []
        self.explained = 0.0

    def extended(
        self, gram: Float64Array, cross: list[float], total: float, candidate: int
    ) -> tuple[list[float], float, float] | None:
        """(the factor's new row, its entry of L^-1 b, total - b' G^-1 b) with the column
        ``candidate`` added; None when its pivot is at most SPAN_FLOOR of its energy."""
        row: list[float] = []
        for column, member in enumerate(self.members):
            value = float(gram[candidate, member])
            for m in range(column):
                value -= row[m] * self.rows[column][m]
            row.append(value / self.rows[column][column])
        energy = float(gram[candidate, candidate])
        pivot = energy
        for entry in row:
            pivot -= entry * entry
        if pivot <= SPAN_FLOOR * energy:
            return None
        pivot = math.sqrt(pivot)
        row.append(pivot)
        value = cross[candidate]
        for m in range(len(self.members)):
            value -= row[m] * self.solved[m]
        solved = value / pivot
        return row, solved, total - (self.explained + solved * solved)

    def push(self, candidate: int, extension: tuple[list[float], float, float]) -> None:
        row, solved, _ = extension
        self.members.append(candidate)
        self.explained += solved * solved
        self.solved.append(solved)
        self.rows.append(row)


def _refine(
    splits: list[tuple[int, int, int, float, float, bool]],
    ranks: Int64Array,
    count: int,
    min_segment: int,
    spread_test: bool,
) -> list[tuple[int, int, int, float, float, bool]]:
    """Each change, left to right, re-placed and re-tested between its neighbours (the
    refined one on its left, the found one on its right): the split of ranks[lo:hi] by
    :func:`split_segment` (a change found inside a wider segment is placed where its own
    segment puts it, and its p-value is that of its own segment)."""
    positions = [split[0] for split in splits]
    refined: list[tuple[int, int, int, float, float, bool]] = []
    for index in range(len(positions)):
        lo = positions[index - 1] if index > 0 else 0
        hi = positions[index + 1] if index + 1 < len(positions) else count
        k, statistic, p_value, spread = split_segment(ranks[lo:hi], min_segment, True, spread_test)
        positions[index] = lo + k
        refined.append((lo + k, lo, hi, statistic, p_value, spread))
    return refined


def _merge_transitions(
    splits: list[tuple[int, int, int, float, float, bool]],
    ranks: Int64Array,
    min_segment: int,
    spread_test: bool,
) -> list[tuple[int, int, int, float, float, bool]]:
    """Runs of refined changes that are one move seen through a transition (see the Rust
    ``merge_transitions``): from each change, left to right, the longest run whose span
    times TRANSITION_SHARE is below the segments before and after it, when the mean ranks
    of the pieces from the segment before to the segment after move one way, becomes the
    one change :func:`split_segment` (with ``kernel``) places between its outer
    neighbours."""
    out = list(splits)
    count = ranks.size
    index = 0
    while index + 1 < len(out):
        lo = out[index - 1][0] if index > 0 else 0
        run: tuple[int, int] | None = None
        for last in range(index + 1, len(out)):
            hi = out[last + 1][0] if last + 1 < len(out) else count
            span = out[last][0] - out[index][0]
            if span * TRANSITION_SHARE < min(out[index][0] - lo, hi - out[last][0]):
                run = (last, hi)
        if run is not None:
            last, hi = run
            bounds = [lo, *(split[0] for split in out[index : last + 1]), hi]
            # mean ranks compared exactly: S_a / L_a < S_b / L_b as S_a L_b < S_b L_a
            sums = [(int(ranks[a:b].sum()), b - a) for a, b in itertools.pairwise(bounds)]
            order = [
                (s_a * l_b > s_b * l_a) - (s_a * l_b < s_b * l_a)
                for (s_a, l_a), (s_b, l_b) in itertools.pairwise(sums)
            ]
            if all(way == order[0] != 0 for way in order):
                k, statistic, p_value, spread = split_segment(
                    ranks[lo:hi], min_segment, True, spread_test
                )
                out[index : last + 1] = [(lo + k, lo, hi, statistic, p_value, spread)]
                continue
        index += 1
    return out


def _centred_energy(part: Int64Array) -> tuple[int, int, int]:
    """(q, S, q sum y^2 - S^2) of integer values y (exact)."""
    total = int(part.sum())
    return part.size, total, part.size * exact_dot(part, part) - total * total


def _fit_costs(ranks: Int64Array, start: int, end: int, inner: list[int]) -> tuple[float, float]:
    """(RSS of a least-squares line, RSS of a constant per piece) of ranks[start:end] cut at
    ``inner``, from exact integer sums: with t = 0..L-1, A = L sum y^2 - S^2,
    B = L sum t y - (sum t) S and C = L sum t^2 - (sum t)^2, RSS_line = (A - B^2 / C) / L
    (floats of the exact integers); a piece's RSS is A_i / L_i, summed in order."""
    part = ranks[start:end]
    length, total, centred = _centred_energy(part)
    t_sum = length * (length - 1) // 2
    t_squares = (length - 1) * length * (2 * length - 1) // 6
    cross = length * exact_dot(np.arange(length, dtype=np.int64), part) - t_sum * total
    spread = length * t_squares - t_sum * t_sum
    b = float(cross)
    line = (float(centred) - b * b / float(spread)) / length
    pieces = 0.0
    for lo, hi in zip([start, *inner], [*inner, end], strict=True):
        size, _, piece = _centred_energy(ranks[lo:hi])
        pieces += float(piece) / size
    return line, pieces


def _line_wins(values: Float64Array, start: int, end: int, inner: list[int]) -> bool:
    """Whether a straight line describes the doubled mid-ranks of values[start:end] (ranked
    within the span) at least as well (BIC) as the constant pieces cut at ``inner``:
    L ln RSS_line + 2 ln L <= L ln RSS_pieces + (2 r + 1) ln L, r = len(inner)."""
    length = end - start
    # Ranks within the span: the whole series' ranks bend a ramp that rises past the values
    # before it into a curve.
    ranks = doubled_midranks(values[start:end])
    line, pieces = _fit_costs(ranks, 0, length, [cut - start for cut in inner])
    if pieces <= 0.0:
        return line <= 0.0
    if line <= 0.0:
        return True
    penalty = math.log(length)
    return (
        length * math.log(line) + 2.0 * penalty
        <= length * math.log(pieces) + (2 * len(inner) + 1) * penalty
    )


def widest_drift(spans: list[tuple[int, int]]) -> tuple[int, int] | None:
    """The widest of the drifting spans once spans that overlap or touch are joined (the
    first of equally wide ones; see the Rust module)."""
    joined: list[list[int]] = []
    for start, end in sorted(spans):
        if joined and start <= joined[-1][1]:
            joined[-1][1] = max(joined[-1][1], end)
        else:
            joined.append([start, end])
    widest: tuple[int, int] | None = None
    for start, end in joined:
        if widest is None or end - start > widest[1] - widest[0]:
            widest = (start, end)
    return widest


def _drifts(
    changes: list[int], ranks: Int64Array, values: Float64Array
) -> tuple[list[int], list[tuple[int, int]]]:
    """Changes that are steps of a drift merged away: in each maximal run of >= 2
    consecutive changes in the same direction, when a line describes the span from the
    segment before the run to the end of the run's last segment, every change of the run
    goes; else when it describes the span from the run's first change, the others go; else
    from its second, and so on. Returns the kept changes and the (start, end) spans found
    drifting."""
    bounds = [0, *changes, ranks.size]
    directions = _directions(changes, ranks)
    dropped: set[int] = set()
    spans: list[tuple[int, int]] = []
    i = 0
    while i < len(changes):
        j = i
        while j + 1 < len(changes) and directions[j + 1] == directions[i]:
            j += 1
        if j > i:
            # Spans from the segment before the run (first = i: every change goes), then
            # from each change of the run (first = s + 1: the changes after s go).
            end = bounds[j + 2]
            for first in range(i, j + 1):
                if _line_wins(values, bounds[first], end, changes[first : j + 1]):
                    dropped.update(range(first, j + 1))
                    spans.append((bounds[first], end))
                    break
        i = j + 1
    return [change for index, change in enumerate(changes) if index not in dropped], spans


def _partial_sums(terms: Int64Array, ends: Int64Array, exact: bool) -> Int64Array:
    """sum(terms[:end]) for each end, as int64, or as Python ints when ``exact`` (sums past
    int64's range)."""
    running = np.cumsum(terms.astype(object) if exact else terms)
    return np.concatenate([np.zeros(1, dtype=running.dtype), running])[ends]


def exact_dot(a: Int64Array, b: Int64Array) -> int:
    """sum(a * b) of two int64 arrays exactly, as a Python int (the Rust sums in i128): int64
    dot products over chunks short enough not to overflow, added as Python ints (one
    np.dot of the doubled ranks of 2M values wraps around)."""
    if a.size == 0:
        return 0
    largest = max(int(np.abs(a).max()) * int(np.abs(b).max()), 1)
    chunk = max(1, (1 << 62) // largest)
    return sum(int(np.dot(a[i : i + chunk], b[i : i + chunk])) for i in range(0, a.size, chunk))


EXACT_SPAN = 1 << 20  # from this length the hinge sums (about L^3) leave int64


def _hinge_explained(
    sums: tuple[Float64Array, Float64Array, Float64Array],
    stt: float,
    sty: float,
) -> Float64Array:
    """Syy minus the broken line's RSS from the hinge's centred sums (Shh, Sth, Shy)."""
    shh, sth, shy = sums
    return (shh * sty * sty - 2.0 * sth * sty * shy + stt * shy * shy) / (stt * shh - sth * sth)


def hinge_fit(scores: Int64Array, cut: int) -> tuple[float, float, float]:
    """(RSS of the level step at ``cut``, least RSS of a continuous broken line, least RSS
    of a flat start then a line) of integer scores y of one span (the metric's doubled
    mid-ranks: no ranking again), over the knots kappa = 1..L-3 of y = a + b t +
    c (t - kappa)_+ and of y = a + c (t - kappa)_+ (see the Rust ``hinge_fit``). With
    S = sum(y), t' = 2t - (L - 1) and a hinge h, the centred sums are Syy = sum(y^2) -
    S^2 / L, Sty = sum(t' y), Sth = sum(t' h), Shy = sum(h y) - sum(h) S / L and Shh =
    sum(h^2) - sum(h)^2 / L: the step's RSS is Syy - (L S1 - k S)^2 / (L k (L - k)),
    S1 = sum(y[:k]); the broken line's Syy - (Shh Sty^2 - 2 Sth Sty Shy + Stt Shy^2) /
    (Stt Shh - Sth^2) (Frisch-Waugh) with the hinge of shorter support, h = (t - kappa)_+
    for 2 kappa >= L and g = (kappa - t)_+ below (both span the same lines with 1 and t;
    the longer one is nearly a multiple of t' and its sums cancel); the flat start's
    Syy - Shy^2 / Shh with h = (t - kappa)_+; every sum an exact integer turned to a float,
    then these floats in this order."""
    length = scores.size
    exact = length >= EXACT_SPAN
    total = int(scores.sum())
    syy = float(exact_dot(scores, scores)) - float(total) * float(total) / length
    left = float(length * int(scores[:cut].sum()) - cut * total)
    step = syy - left * left / float(length * cut * (length - cut))
    time = 2 * np.arange(length, dtype=np.int64) - (length - 1)
    stt = float(exact_dot(time, time))
    sty = float(exact_dot(time, scores))
    index = np.arange(length, dtype=np.int64)
    knots = np.arange(1, length - 2, dtype=np.int64)
    weighted, timed = index * scores, time * index
    if exact:
        weighted = scores.astype(object) * index.astype(object)
        timed = time.astype(object) * index.astype(object)
    # After the knot: h = 1..m, m = L - 1 - kappa; sums over t >= kappa.
    ends = np.full(knots.size, length, dtype=np.int64)
    y_tail = _partial_sums(scores, ends, exact) - _partial_sums(scores, knots, exact)
    ty_tail = _partial_sums(weighted, ends, exact) - _partial_sums(weighted, knots, exact)
    c_tail = _partial_sums(time, ends, exact) - _partial_sums(time, knots, exact)
    ct_tail = _partial_sums(timed, ends, exact) - _partial_sums(timed, knots, exact)
    tail = (length - 1 - knots).astype(object) if exact else length - 1 - knots
    sum_h = (tail * (tail + 1) // 2).astype(np.float64)
    sum_hh = (tail * (tail + 1) * (2 * tail + 1) // 6).astype(np.float64)
    after = (
        sum_hh - sum_h * sum_h / length,
        (ct_tail - knots * c_tail).astype(np.float64),
        (ty_tail - knots * y_tail).astype(np.float64) - sum_h * float(total) / length,
    )
    onset = syy - after[2] * after[2] / after[0]
    # Before the knot: g = kappa..1 at t = 0..kappa-1; sums over t < kappa.
    lower = knots[2 * knots < length]
    head = lower.astype(object) if exact else lower
    sum_g = (head * (head + 1) // 2).astype(np.float64)
    sum_gg = (head * (head + 1) * (2 * head + 1) // 6).astype(np.float64)
    y_head = _partial_sums(scores, lower, exact)
    before = (
        sum_gg - sum_g * sum_g / length,
        (lower * _partial_sums(time, lower, exact) - _partial_sums(timed, lower, exact)).astype(
            np.float64
        ),
        (lower * y_head - _partial_sums(weighted, lower, exact)).astype(np.float64)
        - sum_g * float(total) / length,
    )
    upper = slice(lower.size, None)
    explained = np.concatenate(
        [
            _hinge_explained(before, stt, sty),
            _hinge_explained((after[0][upper], after[1][upper], after[2][upper]), stt, sty),
        ]
    )
    return step, float(np.min(syy - explained)), float(np.min(onset))


def line_rss(scores: Int64Array) -> float:
    """The least RSS of a straight line y = a + b t through integer scores y of one span,
    Syy - Sty^2 / Stt with the exact sums of :func:`hinge_fit` turned to floats in its
    order."""
    length = scores.size
    total = int(scores.sum())
    syy = float(exact_dot(scores, scores)) - float(total) * float(total) / length
    time = 2 * np.arange(length, dtype=np.int64) - (length - 1)
    stt = float(exact_dot(time, time))
    sty = float(exact_dot(time, scores))
    return syy - sty * sty / stt


def ramp_end(scores: Int64Array) -> int | None:
    """Where a drift that starts at the first of the scores stops: the knot kappa (2 <=
    kappa <= L - 2, the first of equal ones) of the least-RSS line then flat y = a +
    c (kappa - t)_+ when L' ln(RSS_line / RSS_end) > ln L' (L' = L / f, rho =
    :func:`difference_rho` at kappa clipped to [0, 0.97]); None when the line fits as well
    or L < 8 (see the Rust ``ramp_end``; exact integer sums turned to floats in its order)."""
    length = scores.size
    if length < 8:
        return None
    exact = length >= EXACT_SPAN
    total = int(scores.sum())
    syy = float(exact_dot(scores, scores)) - float(total) * float(total) / length
    index = np.arange(length, dtype=np.int64)
    weighted = scores.astype(object) * index.astype(object) if exact else index * scores
    knots = np.arange(2, length - 1, dtype=np.int64)
    head = knots.astype(object) if exact else knots
    sum_g = (head * (head + 1) // 2).astype(np.float64)
    sum_gg = (head * (head + 1) * (2 * head + 1) // 6).astype(np.float64)
    y_head = _partial_sums(scores, knots, exact)
    gy = (head * y_head - _partial_sums(weighted, knots, exact)).astype(np.float64)
    sgg = sum_gg - sum_g * sum_g / length
    sgy = gy - sum_g * float(total) / length
    rss = syy - sgy * sgy / sgg
    best = int(np.argmin(rss))
    end, knot = float(rss[best]), int(knots[best])
    line = line_rss(scores)
    if line <= 0.0:
        return None
    if end <= 0.0:
        return knot
    rho = min(max(difference_rho(scores, knot), 0.0), PHI_MAX)
    effective = length / ((1.0 + rho) / (1.0 - rho))
    return knot if effective * math.log(line / end) > math.log(max(effective, 2.0)) else None


def trim_drift(values: Float64Array, span: tuple[int, int], changes: list[int]) -> tuple[int, int]:
    """A drift span cut to where it moves around the changes kept (see the Rust
    ``trim_drift``): it ends at :func:`ramp_end` of the part after the last change inside
    the span, then starts at the knot of a flat then line over the part before the first
    change inside when that fits better than a line (:func:`ramp_end` of the reversed
    ranks); each part ranked within itself."""
    start, end = span
    inside = [change for change in changes if start < change < end]
    tail = inside[-1] if inside else start
    knot = ramp_end(doubled_midranks(values[tail:end]))
    end = end if knot is None else tail + knot
    head = inside[0] if inside else end
    knot = ramp_end(doubled_midranks(values[start:head])[::-1].copy())
    return (start if knot is None else head - 1 - knot), end


def _directions(changes: list[int], ranks: Int64Array) -> list[int]:
    """The way each change goes (1 up, -1 down, 0 level): the mean rank of the segment
    after it against the one before (compared exactly, as integers)."""
    bounds = [0, *changes, ranks.size]
    sums = [int(ranks[lo:hi].sum()) for lo, hi in itertools.pairwise(bounds)]
    lengths = [hi - lo for lo, hi in itertools.pairwise(bounds)]
    return [
        (sums[i + 1] * lengths[i] > sums[i] * lengths[i + 1])
        - (sums[i + 1] * lengths[i] < sums[i] * lengths[i + 1])
        for i in range(len(changes))
    ]


def _smooth_steps(
    kept: list[int], spread: list[bool], ranks: Int64Array
) -> tuple[list[int], list[tuple[int, int]]]:
    """Level changes that a smooth curve explains at least as well as a step: in the span
    between a change's neighbours, or in the window of twice its shorter side on each side
    of it (within the span), the continuous broken line (3
    coefficients and a knot) against the step (2 levels and a position) by BIC on the
    part's effective number of values (:func:`_smooth_verdict`). A change whose span is as
    well described by a flat start and then a line is the onset of a drift when it is the
    first change or goes the way of the change before it (else it is the top of a hump):
    it stays, and the drift runs from it to the span's end (the window only drops
    changes). Returns the changes kept and the spans found drifting."""
    bounds = [0, *kept, ranks.size]
    directions = _directions(kept, ranks)
    dropped: set[int] = set()
    spans: list[tuple[int, int]] = []
    for index, change in enumerate(kept):
        lo, hi = bounds[index], bounds[index + 2]
        if spread[index]:
            continue
        verdict = _smooth_verdict(ranks, lo, change, hi)
        reach = 2 * min(change - lo, hi - change)
        window = (max(lo, change - reach), min(hi, change + reach))
        if verdict == "step" and window != (lo, hi):
            # The window can only drop a change: a flat start seen through it is no onset.
            verdict = _smooth_verdict(ranks, window[0], change, window[1])
            verdict = "step" if verdict == "onset" else verdict
        if verdict == "onset" and index > 0 and directions[index - 1] != directions[index]:
            verdict = "smooth"  # the top of a hump, not a flat start
        if verdict == "onset":
            spans.append((change, hi))
        if verdict == "smooth":
            dropped.add(index)
            spans.append((lo, hi))
    return [change for index, change in enumerate(kept) if index not in dropped], spans


JUMP_SIDE = 3  # the fewest values on each side of a jump tested by _jumps
JUMP_EVIDENCE = 2.0  # ... which needs this many times the BIC penalty


def _jumps(scores: Int64Array, cut: int, line: float, effective: float, penalty: float) -> bool:
    """Whether the span jumps at ``cut``: a line on each side fits better than the
    continuous broken line (RSS ``line``) by BIC on L', L' ln(RSS_line / RSS_apart) > ln L'
    (see the Rust ``jumps``)."""
    if cut < JUMP_SIDE or scores.size - cut < JUMP_SIDE or line <= 0.0:
        return False
    apart = line_rss(scores[:cut]) + line_rss(scores[cut:])
    return apart <= 0.0 or effective * math.log(line / apart) > JUMP_EVIDENCE * penalty


def _smooth_verdict(ranks: Int64Array, start: int, change: int, end: int) -> str:
    """How a smooth curve explains the step at ``change`` of ranks[start:end] (the metric's
    doubled mid-ranks), by BIC on the part's effective number of values L' = L / f
    (f = (1 + rho) / (1 - rho) from :func:`residual_rho` of the step's residuals, clipped
    to [0, 0.97]): "smooth" when a straight line fits as well as the step,
    L' ln(RSS_straight / RSS_step) <= ln L' (2 parameters against 3: a slow drift) unless
    the flat start fits as well as the broken line and L' ln(RSS_straight / RSS_flat) >
    ln L' ("onset": a ramp after a flat stretch), or when
    the broken line fits as well as the step, L' ln(RSS_step / RSS_line) >= ln L', and a
    flat start does not fit as well as the line;
    "onset" when both fit as well (L' ln(RSS_flat / RSS_line) <= ln L'); "step" otherwise
    (also when RSS_step <= 0 or L < 5, and first of all when the span jumps at the change,
    :func:`_jumps`). ln L' is taken at L' >= 2."""
    length = end - start
    if length < 5:
        return "step"
    part = ranks[start:end]
    step, line, flat = hinge_fit(part, change - start)
    if step <= 0.0:
        return "step"
    fitted = residual_rho(part, [0, change - start, length])
    rho = 0.0 if fitted is None else min(max(fitted[1], 0.0), PHI_MAX)
    effective = length / ((1.0 + rho) / (1.0 - rho))
    penalty = math.log(max(effective, 2.0))
    if _jumps(part, change - start, line, effective, penalty):
        return "step"
    straight = line_rss(part)
    flat_start = flat <= 0.0 or (line > 0.0 and effective * math.log(flat / line) <= penalty)
    if straight <= 0.0 or effective * math.log(straight / step) <= penalty:
        # A straight line (2 coefficients against the step's 3) fits as well: a trend,
        # unless a flat start then a line fits as well as the broken line and better than
        # the straight line (3 against 2): a ramp after a flat stretch.
        ramp = straight > 0.0 and flat_start and effective * math.log(straight / flat) > penalty
        return "onset" if ramp else "smooth"
    if line >= step or not (line <= 0.0 or effective * math.log(step / line) >= penalty):
        return "step"
    return "onset" if flat_start else "smooth"
