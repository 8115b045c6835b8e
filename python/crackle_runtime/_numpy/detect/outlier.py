"""Outlier tasks (SPEC §6 ``OUTLIER``, amended by §12), the twin of the Rust core's
``detect::outlier``: the scale is chosen per metric and every outlier has a finite
``severity`` (an equivalent Gaussian z).

Per metric with >= 3 present values, one of five scales (the ``scale`` field):

- ``SCALE_COUNT`` (2): non-negative integers with <= 16 distinct values, or MAD = 0: the
  geometric tail ``P(X >= x) = (mu / (1 + mu))^x``, mu the mean, Bonferroni-corrected over
  the metric's m values (an outlier when ``m P < 0.01``), upper side only; ``severity`` =
  ``Phi^-1(1 - P)`` by Acklam's (2003) rational approximation in the tail region.
- ``SCALE_LOG`` (1): every value > 0, >= 20 values, and either medcouple MC(x) > 0.1
  (upper side only) or |MC(ln x)| < |MC(x)| (the log scale is the more symmetric one: both
  sides): the skew-adjusted modified z on ``ln x``.
- ``SCALE_RAW`` (0): the skew-adjusted modified z on x, both sides.
- ``SCALE_EXCESS`` (4): not counts, the smallest value on at least 1/20 of the values and
  3 (FLOOR_SHARE, FLOOR_MIN), or 0 under right-skewed positive values (on 1/100 and 3 of
  the values under mildly skewed ones, on any under clearly skewed ones), or MAD = 0 with
  no value below the median (a metric at its floor): the
  excess over the floor as a hurdle model,
  ``P(E >= e) = (c / m) P_law(E >= e)`` for the c of m values above the floor, the law a
  gamma law above their smallest from 20 of them on (or their log-normal law when it has
  the larger likelihood), else the exponential's prediction
  (:func:`hurdle_law`), Bonferroni as for counts, upper side.
- ``SCALE_MEAN_DEVIATION`` (3): MAD = 0 (not counts): ``1.253314 * 0.6745 * MeanAD`` in
  place of the MAD, no skew adjustment (Iglewicz & Hoaglin 1993).

The skew-adjusted modified z (Iglewicz & Hoaglin 1993; Hubert & Vandervieren 2008):
``0.6745 |y - median| / (MAD f)`` with ``f = e^{3 |MC|}`` on the heavy side (above the
median for MC > 0) and 1 on the light side, MC the medcouple (Brys,
Hubert & Struyf 2004) clipped to +-0.6 (0 below 20 values or when |MC| < 0.1), computed exactly on a
sample of <= 512 evenly spaced order statistics of the present values (ranks ``i * m // k``,
the same in any task order), pairs
x_i == x_j left out.

The fence of the z scales is ``max(z_threshold, Phi^-1(1 - 0.1 / m))`` (:func:`fence`,
Bonferroni over the metric's m values: at most 0.1 expected false outliers per metric or
segment, whatever its length).

Modes (:func:`_read_mode`, the z scales): values past the fence on one side that are >= 1%
of the values and >= 20, with a z MAD <= 2 x 0.6745, are a mode: each is read against it,
``0.6745 (z - median) / max(MAD, 0.6745)``, past ``fence(z_threshold, s n)`` (n of them).

Runs (:func:`run_flags`, >= 100 values; the count and excess scales read their tail z
``Phi^-1(1 - P)`` above the median, upper side): a window of k = 2..8 consecutive
tasks on one side whose smallest z has r values of its side at or above it holds them with
the permutation probability ``prod_{j<k} (r - j) / (m - j)``; flagged when
``z_run = Phi^-1(1 - 8 * that)`` exceeds ``max(z_threshold, Phi^-1(1 - 0.02 / (s m)))``; in
each run of linked values the significant window of the largest ``sum(z) / sqrt(k)``, then
the rest on each side again; ``severity = max(z, z_run)``, ``run_length`` = k; not read when
the lag-1 autocorrelation of the signed z clipped to +-2, or of its size, is >= 3 / sqrt(m).
See the Rust documentation.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from crackle_runtime._args import Budget, Params
from crackle_runtime._numpy._rng import splitmix64
from crackle_runtime._numpy._stats import (
    ln_gamma,
    ln_gamma_q,
    mean_and_sum_of_squares,
    normal_quantile,
    normal_quantile_tail,
    sequential_sum,
)
from crackle_runtime._numpy.detect.shared.columns import as_columns
from crackle_runtime._numpy.detect.shared.permutation import PERMUTATION_SEED
from crackle_runtime._numpy.detect.shared.ranks import median

__all__ = [
    "FIELDS",
    "KIND",
    "NAME",
    "PARAMS",
    "fence",
    "medcouple",
    "mid_median",
    "mid_quantile_sample",
    "outlier_scores",
    "quantile_sample",
    "run",
    "upper_tail_z",
]

NAME = "outlier"
KIND = "outlier"
FIELDS = ("task", "metric", "severity", "deviation", "run_length", "scale")
PARAMS: dict[str, Any] = {"z_threshold": 3.5, "family": 0}

STAGE = "outlier"
ROBUST_Z_FACTOR = 0.6745  # Phi^-1(3/4)
MEAN_DEVIATION_FACTOR = 1.253314  # sqrt(pi / 2)
MIN_OUTLIER_VALUES = 3
COUNT_MAX_DISTINCT = 16
COUNT_FAMILY_ALPHA = 0.01
LOG_SCALE_MEDCOUPLE = 0.1  # MC above this: log scale, upper side only
LOG_SCALE_TIE_MEDCOUPLE = 0.03  # positive values with a medcouple below this: raw scale
FENCE_FAMILY_ALPHA = 0.1  # Bonferroni level of the fence of the z scales, per metric
TAIL_REGION = 0.02425  # upper_tail_z takes tail probabilities below this
MEDCOUPLE_SAMPLE = 512
QUANTILE_POOL = 8192  # above this many values, the order statistics of a pool of this many
MAX_MEDCOUPLE = 0.6
MIN_SKEW_MEDCOUPLE = 0.1  # |MC| below this: no adjustment (a symmetric metric's MC noise)
MIN_MEDCOUPLE_VALUES = 20  # fewer: medcouple taken as 0 (no log scale, no skew adjustment)
SCALE_NONE, SCALE_RAW, SCALE_LOG, SCALE_COUNT, SCALE_MEAN_DEVIATION = -1, 0, 1, 2, 3
SCALE_EXCESS = 4
FLOOR_SHARE = (1, 20)  # the smallest value on at least 1/20 of the values: read at that floor
ZERO_FLOOR_SHARE = (1, 100)  # ... or 0 on 1/100 of them under mildly skewed positives
FLOOR_MIN = 3  # ... and on at least this many
HURDLE_MIN_POSITIVES = 20  # this many values above the floor: a gamma law; fewer: predictive
HURDLE_MAX_SHAPE = 1e4  # ... of at most this shape (a spread of at least 1% of the mean)
HURDLE_MAX_OUTLIERS = 3  # ... fitted without up to this many of the largest that stand out
RUN_LONGEST = 8  # runs of 2..8 consecutive tasks are tested
RUN_FAMILY_ALPHA = 0.02  # Bonferroni level of the run test, per metric
RUN_CLIP = 2.0  # the dependence check reads the signed z clipped to +-2
RUN_RHO_SIGMAS = 3.0  # ... and tests no run when its lag-1 autocorrelation is >= 3 / sqrt(m)
MIN_RUN_VALUES = 100  # fewer present values: no run test
MODE_SHARE = 0.01  # values past the fence on one side, at least this share of the values ...
MODE_MIN_VALUES = 20  # ... and this many,
MODE_SPREAD = 2.0  # ... whose z spread (MAD) is at most this many robust sd: a mode

# Acklam's coefficients of the normal quantile's tail region.
Float64Array = NDArray[np.float64]
Int64Array = NDArray[np.int64]
Flags = tuple[Int64Array, Float64Array, Int64Array]  # positions, severities, run lengths


def run(columns: Float64Array, params: Params, budget: Budget) -> dict[str, Any]:
    z_threshold = params.finite("z_threshold", 0.0, inclusive=False)
    family = params.count("family", 0)
    return outlier_scores(columns, z_threshold, budget, family)


def fence(z_threshold: float, m: int) -> float:
    """max(z_threshold, Phi^-1(1 - 0.1 / m)) (Bonferroni over the metric's m values);
    z_threshold alone while 0.1 / m is outside the tail region (m <= 4)."""
    tail = FENCE_FAMILY_ALPHA / m
    if tail < TAIL_REGION:
        return max(z_threshold, float(upper_tail_z(np.array(math.log(tail)))))
    return z_threshold


def upper_tail_z(log_tail: Float64Array) -> Float64Array:
    """``Phi^-1(1 - P)`` for upper tail probabilities P < 0.02425 given as ``ln P``."""
    q = np.sqrt(-2.0 * np.asarray(log_tail, dtype=np.float64))
    return np.asarray(-normal_quantile_tail(q), dtype=np.float64)


def medcouple(values: Float64Array) -> float:
    """The medcouple of ``values`` exactly (callers pass <= 512 values): the median of
    ``((x_j - Q2) - (Q2 - x_i)) / (x_j - x_i)`` over x_i <= Q2 <= x_j with x_i < x_j."""
    sample = np.sort(values)
    center = float(median(sample))
    low = sample[sample <= center][:, None]
    high = sample[sample >= center][None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        kernel = ((high - center) - (center - low)) / (high - low)
    kernel = kernel[np.broadcast_to(high > low, kernel.shape)]
    return 0.0 if kernel.size == 0 else float(median(kernel))


def quantile_sample(values: Float64Array) -> Float64Array:
    """At most 512 of the values: the order statistics of ranks ``i * s // k`` (0-based,
    ascending; all of them when s <= 512) of the values (s = m) or, above 8,192 values, of the
    pool of 8,192 values at the positions ``(u_j >> 32) * m >> 32``, u_j output j of the
    SplitMix64 stream PERMUTATION_SEED (the Rust core's ``quantile_sample``)."""
    pool = _quantile_pool(values)
    s = pool.size
    k = min(s, MEDCOUPLE_SAMPLE)
    if k == s:
        return np.sort(pool)
    ranks = np.arange(k, dtype=np.int64) * s // k
    return np.asarray(np.partition(pool, ranks)[ranks], dtype=np.float64)


def _quantile_pool(values: Float64Array) -> Float64Array:
    """The values :func:`quantile_sample` reads: all up to 8,192, else the SplitMix64 pool."""
    m = values.size
    if m <= QUANTILE_POOL:
        return values
    draws = splitmix64(PERMUTATION_SEED, QUANTILE_POOL) >> np.uint64(32)
    with np.errstate(over="ignore"):
        positions = (draws * np.uint64(m)) >> np.uint64(32)
    return values[positions.astype(np.int64)]


def mid_quantile_sample(values: Float64Array) -> Float64Array:
    """The sample of :func:`quantile_sample` read off the pool's mid-quantile function
    (Parzen 2004; the Rust ``mid_quantile_sample``): at probabilities (i + 0.5) / k, the
    linear interpolation between the distinct values at their mid-distribution points
    (C_{j-1} + c_j / 2) / s, the first and last value beyond them."""
    ordered = np.sort(_quantile_pool(values))
    s = ordered.size
    k = min(s, MEDCOUPLE_SAMPLE)
    starts = np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1])))
    counts = np.diff(np.append(starts, s))
    distinct = ordered[starts]
    mids = (starts + counts / 2.0) / s
    p = (np.arange(k) + 0.5) / k
    at = np.searchsorted(mids, p, side="right")
    sample = distinct[np.clip(at - 1, 0, distinct.size - 1)]
    inner = (at > 0) & (at < mids.size)
    j = at[inner]
    x0, x1 = distinct[j - 1], distinct[j]
    sample[inner] = x0 + (p[inner] - mids[j - 1]) * (x1 - x0) / (mids[j] - mids[j - 1])
    return np.asarray(sample, dtype=np.float64)


def mid_median(values: Float64Array) -> float:
    """The mid-quantile median of ``values`` (Parzen 2004; the Rust ``mid_median``): the
    middle order statistic and the distinct value next to it on the side of 1/2 at their
    mid-distribution points, interpolated linearly."""
    s = values.size
    middle = float(np.partition(values, s // 2)[s // 2])
    below = int(np.count_nonzero(values < middle))
    equal = int(np.count_nonzero(values == middle))
    at_middle = (below + equal / 2.0) / s
    if at_middle <= 0.5:
        above = values[values > middle]
        if not above.size:
            return middle
        following = float(above.min())
        at_next = ((below + equal) + int(np.count_nonzero(values == following)) / 2.0) / s
        return middle + (0.5 - at_middle) * (following - middle) / (at_next - at_middle)
    lower = values[values < middle]
    if not lower.size:
        return middle
    previous = float(lower.max())
    ties = int(np.count_nonzero(values == previous))
    at_previous = ((below - ties) + ties / 2.0) / s
    return previous + (0.5 - at_previous) * (middle - previous) / (at_middle - at_previous)


def _widened(values: Float64Array, center: float, mad: float, tied: bool) -> float:
    """``mad``, or with ties (whole units: a whole or half MAD) at least the mid-quantile
    median of the distances from ``center``."""
    if not tied or mad <= 0.0:
        return mad
    return max(mad, mid_median(np.abs(values - center)))


def clearly_right_skewed(present: Float64Array) -> bool:
    """Whether ``present`` is a clearly right-skewed positive metric, the one the outlier
    scale reads on the log scale with its upper side only (see the Rust
    ``clearly_right_skewed``)."""
    if present.size < MIN_MEDCOUPLE_VALUES or not bool(np.all(present > 0.0)):
        return False
    sample, mid = _skew_samples(present, True)
    return _skew(sample, mid, log=False) > LOG_SCALE_MEDCOUPLE


def _skew_samples(
    present: Float64Array, with_mid: bool
) -> tuple[Float64Array, Float64Array | None]:
    """The samples :func:`_skew` reads (the Rust ``skew_samples``): the quantile sample, and
    with ``with_mid`` the mid-quantile sample too when the quantile sample has ties."""
    sample = quantile_sample(present)
    tied = with_mid and bool(np.any(sample[1:] == sample[:-1]))
    return sample, mid_quantile_sample(present) if tied else None


def _skew(sample: Float64Array, mid: Float64Array | None, log: bool) -> float:
    """The medcouple of the (log) sample, or, with ``mid`` (the sample had ties), the one of
    it and of the mid-quantile sample farther from 0 (the Rust ``skew``)."""
    mc = medcouple(np.log(sample) if log else sample)
    if mid is None:
        return mc
    other = medcouple(np.log(mid) if log else mid)
    return other if abs(other) > abs(mc) else mc


def _side_factors(mc: float) -> tuple[float, float]:
    """(upper, lower): ``e^{3 |MC|}`` on the heavy side, 1 on the light side (narrowing it
    would let the medcouple's sampling noise flag ordinary values of symmetric data)."""
    if mc >= 0.0:
        return math.exp(3.0 * mc), 1.0
    return 1.0, math.exp(-3.0 * mc)


def _is_count(values: Float64Array, mad: float) -> bool:
    if bool(np.any(values < 0.0)) or bool(np.any(np.mod(values, 1.0) != 0.0)):
        return False
    return mad == 0.0 or np.unique(values).size <= COUNT_MAX_DISTINCT


def _tail_flags(
    present: Float64Array,
    center: float,
    family: int,
    log_tail: Float64Array,
    runs: tuple[Int64Array, float],
) -> Flags:
    """A metric read by an upper tail (``log_tail`` = ln P(X >= x) of each present value;
    the Rust ``Tail::flags``): a value above the median alone when family P < 0.01
    (severity Phi^-1(1 - P)), and the runs (upper side) of the tail z (Phi^-1(1 - P) above
    the median, 0 at or below it). ``runs``: the present values' tasks and z_threshold."""
    tasks, z_threshold = runs
    above = present > center
    z = np.zeros(present.size)
    small = above & (log_tail < math.log(TAIL_REGION))
    z[small] = upper_tail_z(log_tail[small])
    rest = above & ~small
    z[rest] = -normal_quantile(np.exp(log_tail[rest]))
    selected = above & (log_tail < math.log(COUNT_FAMILY_ALPHA / family))
    severity = np.where(selected, z, 0.0)
    return _with_runs((tasks, z, above), severity, True, family, z_threshold)


def _with_runs(
    read: tuple[Int64Array, Float64Array, NDArray[np.bool_]],
    severity: Float64Array,
    upper_only: bool,
    family: int,
    z_threshold: float,
) -> Flags:
    """The flagged values (the Rust ``Readings::flags``): ``read`` = the present values'
    tasks, z on their side and whether above the median; ``severity`` their severity alone
    (0: not flagged; run length 1); then the runs (:func:`run_flags`; a member's severity
    the larger of its z and the run's)."""
    tasks, z, upward = read
    length = (severity > 0.0).astype(np.int64)
    in_run, run_z, run_length = run_flags(tasks, z, upward, upper_only, family, z_threshold)
    severity[in_run] = np.maximum(z[in_run], run_z)
    length[in_run] = run_length
    flagged = np.flatnonzero(length)
    return flagged, severity[flagged], length[flagged]


def _count_flags(
    present: Float64Array, center: float, family: int, runs: tuple[Int64Array, float]
) -> Flags:
    mean = sequential_sum(present) / present.size
    if mean <= 0.0:
        return np.zeros(0, dtype=np.int64), np.zeros(0), np.zeros(0, dtype=np.int64)
    log_tail = present * math.log(mean / (1.0 + mean))
    return _tail_flags(present, center, family, log_tail, runs)


def gamma_moments(values: Float64Array) -> tuple[float, float]:
    """(shape, scale) of the gamma law with the mean and population variance of ``values``
    (see the Rust ``gamma_moments``): shape mean^2 / var, at most HURDLE_MAX_SHAPE (also
    when they are all equal), scale mean / shape."""
    largest = float(values.max())
    unit = 2.0 ** math.floor(math.log2(largest)) if 1.0 < largest < math.inf else 1.0
    scaled = values if unit == 1.0 else values / unit  # exact: no overflow
    mean, sum_of_squares = mean_and_sum_of_squares(scaled)
    variance = sum_of_squares / values.size
    if variance <= 0.0:
        return HURDLE_MAX_SHAPE, mean / HURDLE_MAX_SHAPE * unit
    ratio = mean * mean / variance
    shape = HURDLE_MAX_SHAPE if math.isnan(ratio) else min(ratio, HURDLE_MAX_SHAPE)
    return shape, mean / shape * unit


ExcessLaw = tuple[str, float, float, float]  # ("gamma", shape, scale, low),
# ("predictive", count, mean, 0) or ("lognormal", mu, sigma, 0)


def _excess_law(positives: Float64Array) -> ExcessLaw:
    """The law of a floor's positive excesses (see the Rust ``ExcessLaw::of``): from
    HURDLE_MIN_POSITIVES values on, a gamma law by moments of their distances from their
    smallest value (of the values themselves when they are all equal), or the log-normal
    law of the values when it fits them better (:func:`log_normal_if_better`); with fewer,
    the exponential's predictive law from their count n and mean."""
    if positives.size >= HURDLE_MIN_POSITIVES:
        low = float(positives.min())
        above = positives - low
        if bool(np.all(above == 0.0)):
            return ("gamma", *gamma_moments(positives), 0.0)
        shape, scale = gamma_moments(above)
        better = log_normal_if_better(positives, above, shape, scale)
        return better if better is not None else ("gamma", shape, scale, low)
    return "predictive", float(positives.size), sequential_sum(positives) / positives.size, 0.0


def log_normal_if_better(
    positives: Float64Array, above: Float64Array, shape: float, scale: float
) -> ExcessLaw | None:
    """The log-normal law (mean and population sd of the logarithms) of ``positives`` when
    its log-likelihood over the values above their smallest exceeds that of the gamma law
    ``shape``, ``scale`` of their distances ``above`` (the Rust ``log_normal_if_better``:
    the terms summed in order); None otherwise or when the logarithms do not vary."""
    if not (0.0 < scale < math.inf and math.isfinite(shape)):
        return None  # a scale that underflowed (subnormal excesses): the gamma law stays
    logs = np.log(positives)
    mu, sum_of_squares = mean_and_sum_of_squares(logs)
    sigma = math.sqrt(sum_of_squares / logs.size)
    if not sigma > 0.0:
        return None
    kept = above > 0.0
    d, z = above[kept], (logs[kept] - mu) / sigma
    count = float(np.count_nonzero(kept))
    gamma = sequential_sum((shape - 1.0) * np.log(d) - d / scale)
    gamma -= count * (shape * math.log(scale) + ln_gamma(shape))
    log_normal = sequential_sum(-logs[kept] - 0.5 * z * z)
    log_normal -= count * (math.log(sigma) + 0.5 * math.log(2.0 * math.pi))
    return ("lognormal", mu, sigma, 0.0) if log_normal > gamma else None


def ln_normal_survival(z: Float64Array) -> Float64Array:
    """ln P(Z >= z) of a standard normal (the Rust ``ln_normal_survival``): ln Q(1/2, z^2/2)
    - ln 2 for z >= 0, ln(1 - Q(1/2, z^2/2) / 2) below."""
    upper = ln_gamma_q(0.5, 0.5 * z * z)
    return np.where(z >= 0.0, upper - math.log(2.0), np.log1p(-0.5 * np.exp(upper)))


def _excess_ln_tail(law: ExcessLaw, excess: Float64Array) -> Float64Array:
    """ln P(E >= e) of positive excesses under ``law`` (the Rust ``ExcessLaw::ln_tail``):
    ln Q(k, max(e - low, 0) / theta) for the gamma law, -n ln(1 + e / (n mean)) for the
    predictive law, ln P(Z >= (ln e - mu) / sigma) for the log-normal law."""
    kind, first, second, low = law
    if kind == "gamma":
        return ln_gamma_q(first, np.maximum(excess - low, 0.0) / second)
    if kind == "lognormal":
        return ln_normal_survival((np.log(excess) - first) / second)
    return -first * np.log1p(excess / (first * second))


def hurdle_law(positives: Float64Array, m: int, family: int) -> ExcessLaw:
    """The law of a floor's c positive excesses, fitted without the largest ones that
    stand out (see the Rust ``hurdle_law``): for j = 1..min(HURDLE_MAX_OUTLIERS, c - 1), the
    j-th largest (ties in task order) is read against the law of the others,
    P_j = (c / m) P(E >= e_(j)); the law is fitted without the j* largest, j* the largest j
    with family P_j < COUNT_FAMILY_ALPHA (0: with all of them)."""
    count = positives.size
    ln_share = math.log(count / m)
    limit = math.log(COUNT_FAMILY_ALPHA / family)
    largest = np.argsort(-positives, kind="stable")[: min(HURDLE_MAX_OUTLIERS, count - 1)]
    keep = np.ones(count, dtype=bool)
    outliers = 0
    for j, index in enumerate(largest.tolist(), start=1):
        keep[index] = False
        law = _excess_law(positives[keep])
        if ln_share + float(_excess_ln_tail(law, positives[index : index + 1])[0]) < limit:
            outliers = j
    keep[:] = True
    keep[largest[:outliers]] = False
    return _excess_law(positives[keep])


def _excess_flags(
    present: Float64Array,
    floor: float,
    center: float,
    family: int,
    runs: tuple[Int64Array, float],
) -> Flags:
    """A metric at its ``floor`` on many tasks (``center`` its median): its excess e over
    the floor as a hurdle model, ln P = ln(share above the floor) + ln P(E >= e) under
    :func:`hurdle_law`, read above the median."""
    excess = present - floor
    above = excess > 0.0
    positives = excess[above]
    if positives.size == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0), np.zeros(0, dtype=np.int64)
    law = hurdle_law(positives, present.size, family)
    log_tail = np.zeros(present.size)
    log_tail[above] = math.log(positives.size / present.size) + _excess_ln_tail(law, positives)
    return _tail_flags(present, center, family, log_tail, runs)


def _ln_share(r: Int64Array | int, k: int, m: int) -> Float64Array:
    """ln of the permutation probability that k given tasks of m all hold values among a
    set of r: sum over j < k of ln((r - j) / (m - j)) (the Rust ``ln_share``), r >= k."""
    total = np.zeros(np.shape(r))
    for j in range(k):
        total = total + np.log((np.asarray(r, dtype=np.float64) - j) / float(m - j))
    return total


def _most_shared(m: int, limit: float) -> int:
    """The largest r (RUN_LONGEST <= r <= m) whose RUN_LONGEST-window probability
    ``RUN_LONGEST * share`` is below ``e^limit``, by bisection (RUN_LONGEST - 1 when none
    is): a value with more of its side's values at or above it is in no significant run."""
    bound = limit - math.log(RUN_LONGEST)
    low, high = RUN_LONGEST - 1, m  # the answer is in [low, high]
    if m < RUN_LONGEST or float(_ln_share(RUN_LONGEST, RUN_LONGEST, m)) >= bound:
        return RUN_LONGEST - 1
    while low < high:
        middle = (low + high + 1) // 2
        if float(_ln_share(middle, RUN_LONGEST, m)) < bound:
            low = middle
        else:
            high = middle - 1
    return low


def _window_z(r: Int64Array, k: int, m: int, threshold: float) -> Float64Array:
    """The z_run of windows of ``k`` tasks whose smallest z has ``r`` values of its side at
    or above it: Phi^-1(1 - RUN_LONGEST * share), 0 where not above ``threshold``."""
    log_tail = math.log(RUN_LONGEST) + _ln_share(r, k, m)
    usable = log_tail < math.log(TAIL_REGION)
    z_run = np.zeros(np.shape(r))
    z_run[usable] = upper_tail_z(log_tail[usable])
    return np.where(z_run > threshold, z_run, 0.0)


def _chosen_windows(
    level: Float64Array,
    linked: NDArray[np.bool_],
    ranked: Float64Array,
    threshold: float,
) -> list[tuple[int, int, float]]:
    """The windows flagged on one side (``level``: z on the side, 0 elsewhere; ``linked``:
    position i and i + 1 both eligible and adjacent tasks; ``ranked``: the side's eligible
    z ascending), as (start, length k, z_run): the significant windows of linked values by
    the largest sum(z) / sqrt(k) (on ties the shorter, then the earlier), each kept unless
    it overlaps one kept before (the Rust ``chosen_windows``, run by run: no window spans
    two runs, so one pass over all of them takes the same windows)."""
    m = level.size
    links = np.concatenate(([0], np.cumsum(linked)))
    scans, lengths, starts, z_runs = [], [], [], []
    lowest, sums = level.copy(), level.copy()
    for k in range(2, min(RUN_LONGEST, m) + 1):
        lowest = np.minimum(lowest[:-1], level[k - 1 :])
        sums = sums[:-1] + level[k - 1 :]
        inside = np.flatnonzero(links[k - 1 :] - links[: 1 - k] == k - 1)
        r = ranked.size - np.searchsorted(ranked, lowest[inside], side="left")
        z_run = _window_z(r, k, m, threshold)
        significant = z_run > 0.0
        scans.append(sums[inside[significant]] / math.sqrt(k))
        lengths.append(np.full(int(np.count_nonzero(significant)), k, dtype=np.int64))
        starts.append(inside[significant])
        z_runs.append(z_run[significant])
    if not scans:
        return []
    scan, length = np.concatenate(scans), np.concatenate(lengths)
    start, window_z = np.concatenate(starts), np.concatenate(z_runs)
    taken = np.zeros(m, dtype=bool)
    chosen = []
    for w in np.lexsort((start, length, -scan)).tolist():
        first, k = int(start[w]), int(length[w])
        if not taken[first : first + k].any():
            taken[first : first + k] = True
            chosen.append((first, k, float(window_z[w])))
    return chosen


def run_flags(
    tasks: Int64Array,
    z: Float64Array,
    upward: NDArray[np.bool_],
    upper_only: bool,
    family: int,
    z_threshold: float,
) -> tuple[Int64Array, Float64Array, Int64Array]:
    """Runs of consecutive tasks that stand out together (the Rust ``run_flags``): the
    positions, each one's run severity and its run's length. See the Rust documentation."""
    none = (np.zeros(0, dtype=np.int64), np.zeros(0), np.zeros(0, dtype=np.int64))
    m = z.size
    if m < MIN_RUN_VALUES:
        return none
    adjacent = tasks[1:] == tasks[:-1] + 1
    pairs = int(np.count_nonzero(adjacent))
    if pairs == 0:
        return none
    signed = np.clip(np.where(upward, z, -z), -RUN_CLIP, RUN_CLIP)
    dependence = RUN_RHO_SIGMAS / math.sqrt(m)
    for read in (signed, np.abs(signed)):  # the z, and their size (clusters of spread)
        centred = read - sequential_sum(read) / m
        variance = sequential_sum(centred * centred) / m
        lagged = sequential_sum((centred[:-1] * centred[1:])[adjacent]) / pairs
        if not variance > 0.0 or lagged / variance >= dependence:
            return none
    sides = 1 if upper_only else 2
    limit = math.log(RUN_FAMILY_ALPHA / (sides * family))
    threshold = max(z_threshold, float(upper_tail_z(np.array(limit))))
    most = _most_shared(m, limit)
    positions, severities, lengths = [], [], []
    for up in (True,) if upper_only else (True, False):
        side = upward == up
        values = z[side]
        # eligible: fewer than `most` + 1 values of the side at or above it
        floor = (
            float(np.partition(values, values.size - most - 1)[values.size - most - 1])
            if (values.size > most)
            else 0.0
        )
        level = np.where(side, z, 0.0)
        eligible = level > floor
        linked = eligible[:-1] & eligible[1:] & adjacent
        for start, k, z_run in _chosen_windows(level, linked, np.sort(level[eligible]), threshold):
            positions.append(np.arange(start, start + k))
            severities.append(np.full(k, z_run))
            lengths.append(np.full(k, k, dtype=np.int64))
    if not positions:
        return none
    return (
        np.concatenate(positions).astype(np.int64),
        np.concatenate(severities),
        np.concatenate(lengths),
    )


def _read_mode(
    z: Float64Array,
    past: NDArray[np.bool_],
    z_threshold: float,
    sides: int,
    severity: Float64Array,
) -> None:
    """When the values past the fence on one side (``past``) are a mode (the Rust
    ``read_mode``): at least MODE_SHARE of the m values and MODE_MIN_VALUES, their z's MAD
    at most MODE_SPREAD times a robust sd (0.6745). Each is read against the mode instead:
    ``0.6745 (z - median) / max(MAD, 0.6745)`` above the mode's median, 0 at or below it;
    ``severity`` (0 where not flagged) holds that reading where it passes
    ``fence(z_threshold, sides * n)`` (n the mode's values: a tail w (1 - Phi) of a mode
    of weight w = n / m, Bonferroni over the m values), else 0."""
    count = int(np.count_nonzero(past))
    if count < max(MODE_MIN_VALUES, math.ceil(MODE_SHARE * z.size)):
        return
    group = z[past]
    center = float(median(group))
    spread = float(median(np.abs(group - center)))
    if spread > MODE_SPREAD * ROBUST_Z_FACTOR:
        return
    reading = ROBUST_Z_FACTOR * (group - center) / max(spread, ROBUST_Z_FACTOR)
    threshold = fence(z_threshold, sides * count)
    severity[past] = np.where(reading > threshold, reading, 0.0)


def _floor(present: Float64Array, center: float, mad: float) -> float | None:
    """The floor a metric (not counts) is read at (the Rust ``metric_outliers``): its
    smallest value when that holds at least FLOOR_SHARE of the values and FLOOR_MIN of
    them, or MAD = 0 with nothing below the median; 0 when values are 0 under positive
    values whose own medcouple (from MIN_MEDCOUPLE_VALUES of them) is above
    LOG_SCALE_MEDCOUPLE, or at least LOG_SCALE_TIE_MEDCOUPLE with 0 on ZERO_FLOOR_SHARE of
    the values and FLOOR_MIN; else None."""
    m = present.size
    floor = float(present.min())
    at_floor = int(np.count_nonzero(present == floor))

    def share(fraction: tuple[int, int]) -> bool:  # an atom: FLOOR_MIN values and its share
        return at_floor >= FLOOR_MIN and at_floor * fraction[1] >= m * fraction[0]

    if (mad == 0.0 and floor == center) or share(FLOOR_SHARE):
        return floor
    if floor == 0.0 and m >= MIN_MEDCOUPLE_VALUES:
        positives = present[present > 0.0]
        if positives.size >= MIN_MEDCOUPLE_VALUES:
            mc = _skew(*_skew_samples(positives, True), log=False)
            if mc > LOG_SCALE_MEDCOUPLE or (
                mc >= LOG_SCALE_TIE_MEDCOUPLE and share(ZERO_FLOOR_SHARE)
            ):
                return 0.0
    return None


def _metric_outliers(
    present: Float64Array, z_threshold: float, family: int, tasks: Int64Array
) -> tuple[int, Flags, float]:
    """The scale, the (positions among the present values, severities) and the median;
    ``family`` the number of values the Bonferroni corrections count (at least m)."""
    none: Flags = (np.zeros(0, dtype=np.int64), np.zeros(0), np.zeros(0, dtype=np.int64))
    m = present.size
    if m < MIN_OUTLIER_VALUES:
        return SCALE_NONE, none, math.nan
    family = max(family, m)
    center = float(median(present))
    mad = float(median(np.abs(present - center)))
    if _is_count(present, mad):
        return SCALE_COUNT, _count_flags(present, center, family, (tasks, z_threshold)), center
    floor = _floor(present, center, mad)
    if floor is not None:
        excess = _excess_flags(present, floor, center, family, (tasks, z_threshold))
        return SCALE_EXCESS, excess, center
    skew_known = m >= MIN_MEDCOUPLE_VALUES  # with a handful of values the outlier decides MC
    sample, mid = _skew_samples(present, skew_known)
    positive = bool(np.all(present > 0.0))
    log_scale, upper_only = False, False
    if skew_known and positive:
        raw_mc = _skew(sample, mid, log=False)
        if raw_mc > LOG_SCALE_MEDCOUPLE:
            log_scale, upper_only = True, True
        elif raw_mc >= LOG_SCALE_TIE_MEDCOUPLE:  # mildly skewed: log above the median
            log_scale = True
    scale = SCALE_LOG if log_scale else SCALE_RAW
    transformed = np.log(present) if log_scale else present
    y_center = float(median(transformed))
    distance = np.abs(transformed - y_center)
    y_mad = _widened(transformed, y_center, float(median(distance)), mid is not None)
    if y_mad > 0.0:
        mc = 0.0
        if skew_known:
            mc = _skew(sample, mid, log=log_scale)
            mc = min(max(mc, -MAX_MEDCOUPLE), MAX_MEDCOUPLE)
            mc = 0.0 if abs(mc) < MIN_SKEW_MEDCOUPLE else mc  # within the sampling noise
        upper, lower = _side_factors(mc)
    else:
        scale = SCALE_MEAN_DEVIATION
        y_mad = MEAN_DEVIATION_FACTOR * ROBUST_Z_FACTOR * (sequential_sum(distance) / m)
        upper, lower = 1.0, 1.0
    if y_mad == 0.0:
        return scale, none, center
    offset = (np.log(present) if log_scale else present) - y_center
    lower_z = ROBUST_Z_FACTOR * -offset / (y_mad * lower)
    if scale == SCALE_LOG and not upper_only:
        # a mildly skewed metric on the log scale reads its lower side on the raw scale
        mad = _widened(present, center, mad, mid is not None)
        lower_z = ROBUST_Z_FACTOR * (center - present) / mad if mad > 0.0 else np.zeros(m)
    z = np.where(offset > 0.0, ROBUST_Z_FACTOR * offset / (y_mad * upper), lower_z)
    z = np.minimum(z, np.finfo(np.float64).max)  # a subnormal MAD can overflow the ratio
    # each side read is a test of every value: both sides double the Bonferroni family
    threshold = fence(z_threshold, family if upper_only else 2 * family)
    selected = z > threshold
    if upper_only:
        selected &= offset > 0.0
    severity = np.where(selected, z, 0.0)
    for up in (True,) if upper_only else (True, False):
        past = selected & ((offset > 0.0) == up)
        _read_mode(z, past, z_threshold, 1 if upper_only else 2, severity)
    read = (tasks, z, offset > 0.0)
    return scale, _with_runs(read, severity, upper_only, family, z_threshold), center


def outlier_scores(
    columns: Float64Array, z_threshold: float, budget: Budget, family: int = 0
) -> dict[str, Any]:
    """Every flagged (task, metric) sorted by task then metric (``task``, ``metric``,
    ``severity``, ``deviation`` = x - median) and each metric's ``scale``; ``family`` the
    number of values the Bonferroni corrections count (0: each metric's own)."""
    values = as_columns(columns)
    scales = np.full(values.shape[0], SCALE_NONE, dtype=np.int64)
    tasks: list[Int64Array] = [np.zeros(0, dtype=np.int64)]
    metrics: list[Int64Array] = [np.zeros(0, dtype=np.int64)]
    severities: list[Float64Array] = [np.zeros(0)]
    deviations: list[Float64Array] = [np.zeros(0)]
    lengths: list[Int64Array] = [np.zeros(0, dtype=np.int64)]
    for metric in range(values.shape[0]):
        budget.check(STAGE)
        row = values[metric]
        present_tasks = np.flatnonzero(~np.isnan(row))
        present = row[present_tasks]
        scale, (positions, severity, length), center = _metric_outliers(
            present, z_threshold, family, present_tasks
        )
        scales[metric] = scale
        tasks.append(present_tasks[positions].astype(np.int64))
        metrics.append(np.full(positions.size, metric, dtype=np.int64))
        severities.append(np.asarray(severity, dtype=np.float64))
        deviations.append(present[positions] - center)
        lengths.append(length)
    task = np.concatenate(tasks)
    metric_index = np.concatenate(metrics)
    order = np.lexsort((metric_index, task))
    return {
        "task": task[order],
        "metric": metric_index[order],
        "severity": np.concatenate(severities)[order],
        "deviation": np.concatenate(deviations)[order],
        "run_length": np.concatenate(lengths)[order],
        "scale": scales,
    }
