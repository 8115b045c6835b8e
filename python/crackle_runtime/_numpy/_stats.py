"""Scalar statistics shared by the NumPy detector kernels, mirroring ``src-rust/stats.rs``
operation for operation, so both backends agree to rounding, without scipy.

Student t and Welch p-values go through the regularized incomplete beta function (Lentz's
continued fraction); ln Gamma is Lanczos' approximation (g = 7, 9 coefficients) and ln B(a, b)
switches to Stirling's series for arguments >= 10, where a difference of Lanczos values would
lose ~log10(a) digits (Student t with 1e5 degrees of freedom).

Conventions shared with the Rust core:
- means and centered sums are accumulated sequentially, left to right, in float64;
- a sample whose values are all equal has variance exactly 0 and mean exactly its value, so
  "zero variance" never depends on rounding (the mean of [0.1] * 3 is 0.10000000000000002).

These functions are called once per metric or metric pair: plain Python on floats, with the
per-value work (sums, centering) done by NumPy.
"""

from __future__ import annotations

import math
import sys

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "all_equal",
    "ln_beta",
    "ln_gamma",
    "ln_gamma_q",
    "mean_and_sum_of_squares",
    "pearson",
    "pearson_from_sums",
    "pearson_p_value",
    "population_std",
    "regularized_incomplete_beta",
    "sequential_sum",
    "student_t_two_sided_p",
    "welch_t_test",
]

Float64Array = NDArray[np.float64]

_LANCZOS_G = 7.0
_LANCZOS_COEFFICIENTS = (
    0.99999999999980993,
    676.5203681218851,
    -1259.1392167224028,
    771.32342877765313,
    -176.61502916214059,
    12.507343278686905,
    -0.13857109526572012,
    9.9843695780195716e-6,
    1.5056327351493116e-7,
)
_HALF_LN_2PI = 0.9189385332046728  # ln(2 pi) / 2
_STIRLING_MIN = 10.0  # ln_beta uses Stirling's series for arguments at or above this
# Bernoulli terms B_2k / (2k (2k - 1)), k = 1..8, of Stirling's series.
_STIRLING_TERMS = (
    1.0 / 12.0,
    -1.0 / 360.0,
    1.0 / 1260.0,
    -1.0 / 1680.0,
    1.0 / 1188.0,
    -691.0 / 360360.0,
    1.0 / 156.0,
    -3617.0 / 122400.0,
)

_BETA_EPSILON = 1e-15  # relative precision of the continued fraction
_BETA_MAX_ITERATIONS = 300
_LENTZ_TINY = 1e-300  # Lentz's guard against a zero denominator


def _clamp(value: float, low: float, high: float) -> float:
    """``value`` limited to [low, high]; NaN stays NaN (as Rust's f64::clamp)."""
    if math.isnan(value):
        return value
    return min(high, max(low, value))


def sequential_sum(values: Float64Array) -> float:
    """Sum left to right in float64, as the Rust core does (np.sum's pairwise order differs
    in the last bits, which could flip a threshold decision between the backends)."""
    if values.size == 0:
        return 0.0
    return float(np.cumsum(values)[-1])


def all_equal(values: Float64Array) -> bool:
    """Whether every value equals the first (true for an empty sample)."""
    return bool(values.size == 0 or values.min() == values.max())


def mean_and_sum_of_squares(values: Float64Array) -> tuple[float, float]:
    """Sequential mean and centered sum of squares sum((x - mean)**2) (two-pass, sequential);
    exactly (value, 0.0) for a constant sample, (nan, 0.0) for an empty one."""
    if values.size == 0:
        return math.nan, 0.0
    if all_equal(values):
        return float(values[0]), 0.0
    mean = sequential_sum(values) / values.size
    deviations = values - mean
    return mean, sequential_sum(deviations * deviations)


# Acklam's (2003) rational approximation of the normal quantile (relative error < 1.2e-9)
_ACKLAM_A = (
    -3.969683028665376e1,
    2.209460984245205e2,
    -2.759285104469687e2,
    1.383577518672690e2,
    -3.066479806614716e1,
    2.506628277459239,
)
_ACKLAM_B = (
    -5.447609879822406e1,
    1.615858368580409e2,
    -1.556989798598866e2,
    6.680131188771972e1,
    -1.328068155288572e1,
)
_ACKLAM_C = (
    -7.784894002430293e-3,
    -3.223964580411365e-1,
    -2.400758277161838,
    -2.549732539343734,
    4.374664141464968,
    2.938163982698783,
)
_ACKLAM_D = (7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416)
_ACKLAM_LOW = 0.02425


def normal_quantile_tail(q: Float64Array) -> Float64Array:
    """Phi^-1(P) for lower tail probabilities P < 0.02425 given as q = sqrt(-2 ln P): the
    tail region of Acklam's (2003) approximation (the Rust core's ``normal_quantile_tail``)."""
    c, d = _ACKLAM_C, _ACKLAM_D
    numerator = ((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]
    return np.asarray(numerator / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1.0))


def normal_quantile(p: Float64Array) -> Float64Array:
    """Phi^-1(p) for 0 < p < 1 by Acklam's (2003) rational approximation (the Rust core's
    ``normal_quantile``): the central region |p - 0.5| <= 0.5 - 0.02425, the tails through
    q = sqrt(-2 ln p) (of 1 - p above)."""
    p = np.asarray(p, dtype=np.float64)
    out = np.empty_like(p)
    low, high = p < _ACKLAM_LOW, p > 1.0 - _ACKLAM_LOW
    middle = ~(low | high)
    q = p[middle] - 0.5
    r = q * q
    a, b = _ACKLAM_A, _ACKLAM_B
    numerator = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q
    denominator = ((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1.0
    out[middle] = numerator / denominator
    out[low] = normal_quantile_tail(np.sqrt(-2.0 * np.log(p[low])))
    out[high] = -normal_quantile_tail(np.sqrt(-2.0 * np.log(1.0 - p[high])))
    return out


# --- ln Gamma, ln Beta ----------------------------------------------------------------------


def population_std(values: Float64Array) -> float:
    """Population standard deviation (two-pass, centered, sequential sums)."""
    _, sum_of_squares = mean_and_sum_of_squares(values)
    return math.sqrt(sum_of_squares / values.size)


def ln_gamma(x: float) -> float:
    """ln |Gamma(x)| (Lanczos, g = 7, n = 9; reflection below 0.5); inf at the poles."""
    if math.isnan(x):
        return math.nan
    if x == math.inf:
        return math.inf
    if x < 0.5:
        if x == math.floor(x):
            return math.inf
        # Gamma(x) Gamma(1 - x) = pi / sin(pi x)
        return math.log(math.pi / abs(math.sin(math.pi * x))) - ln_gamma(1.0 - x)
    x -= 1.0
    series = _LANCZOS_COEFFICIENTS[0]
    for i in range(1, len(_LANCZOS_COEFFICIENTS)):
        series += _LANCZOS_COEFFICIENTS[i] / (x + i)
    t = x + _LANCZOS_G + 0.5
    return _HALF_LN_2PI + (x + 0.5) * math.log(t) - t + math.log(series)


def _stirling_remainder(x: float) -> float:
    """ln Gamma(x) - ((x - 1/2) ln x - x + ln(2 pi)/2) for x >= 10 (error below 1e-17)."""
    inverse_square = 1.0 / (x * x)
    total = 0.0
    for term in reversed(_STIRLING_TERMS):
        total = total * inverse_square + term
    return total / x


_GAMMA_EPSILON = 1e-15  # relative precision of the incomplete gamma series and fraction
GAMMA_MAX_ITERATIONS = 2_000


def ln_gamma_q(a: float, x: Float64Array) -> Float64Array:
    """ln Q(a, x), the log of the regularized upper incomplete gamma function, for each x
    (see ``stats.rs::ln_gamma_q``): the series of P(a, x) below x < a + 1 as ln(1 - P), the
    continued fraction of Q (Lentz) in logs above; each value's iteration stops where the
    Rust loop stops, so the sums are the same. NaN unless a is finite and positive."""
    x = np.asarray(x, dtype=np.float64)
    out = np.zeros(x.shape)
    if not (math.isfinite(a) and a > 0.0):
        return np.full(x.shape, math.nan)
    out[np.isnan(x)] = math.nan
    positive = x > 0.0
    with np.errstate(divide="ignore"):
        ln_front = a * np.log(np.where(positive, x, 1.0)) - x - ln_gamma(a)
    low = positive & (x < a + 1.0)
    if np.any(low):
        xs = x[low]
        denominator = a
        term = np.full(xs.shape, 1.0 / a)
        total = term.copy()
        active = np.ones(xs.shape, dtype=bool)
        for _ in range(GAMMA_MAX_ITERATIONS):
            denominator += 1.0
            term[active] *= xs[active] / denominator
            total[active] += term[active]
            active &= ~(term < total * _GAMMA_EPSILON)
            if not active.any():
                break
        lower = np.minimum(np.exp(ln_front[low] + np.log(total)), 1.0)
        out[low] = np.log1p(-lower)
    high = positive & ~(x < a + 1.0)
    if np.any(high):
        xs = x[high]
        b = xs + 1.0 - a
        c = np.full(xs.shape, 1.0 / _LENTZ_TINY)
        d = 1.0 / b
        fraction = d.copy()
        active = np.ones(xs.shape, dtype=bool)
        for i in range(1, GAMMA_MAX_ITERATIONS + 1):
            an = -float(i) * (float(i) - a)
            b[active] += 2.0
            d[active] = an * d[active] + b[active]
            d[active & (np.abs(d) < _LENTZ_TINY)] = _LENTZ_TINY
            c[active] = b[active] + an / c[active]
            c[active & (np.abs(c) < _LENTZ_TINY)] = _LENTZ_TINY
            d[active] = 1.0 / d[active]
            step = d * c
            fraction[active] *= step[active]
            active &= ~(np.abs(step - 1.0) < _GAMMA_EPSILON)
            if not active.any():
                break
        out[high] = ln_front[high] + np.log(fraction)
    return out


def ln_beta(a: float, b: float) -> float:
    """ln B(a, b) for a, b > 0: three Lanczos values when both are below 10, else Stirling's
    series for the ratios that would cancel (the forms of ``stats.rs::ln_beta``)."""
    small, large = (a, b) if a <= b else (b, a)
    if large < _STIRLING_MIN:
        return ln_gamma(a) + ln_gamma(b) - ln_gamma(a + b)
    total = small + large
    if small < _STIRLING_MIN:
        ln_gamma_ratio = (
            (large - 0.5) * math.log1p(small / large)
            + small * math.log(total)
            - small
            + _stirling_remainder(total)
            - _stirling_remainder(large)
        )
        return ln_gamma(small) - ln_gamma_ratio
    return (
        _HALF_LN_2PI
        + (small - 0.5) * math.log(small / total)
        - (large - 0.5) * math.log1p(small / large)
        - 0.5 * math.log(total)
        + _stirling_remainder(small)
        + _stirling_remainder(large)
        - _stirling_remainder(total)
    )


# --- incomplete beta, Student t -------------------------------------------------------------


def _lentz_guard(value: float) -> float:
    return _LENTZ_TINY if abs(value) < _LENTZ_TINY else value


def _beta_continued_fraction(x: float, a: float, b: float) -> float:
    """Continued fraction of I_x(a, b) (Numerical Recipes ``betacf``, modified Lentz),
    stopping at a step below 1e-15 relative or after 300 iterations."""
    a_plus_b = a + b
    a_plus_one = a + 1.0
    a_minus_one = a - 1.0
    c = 1.0
    d = 1.0 / _lentz_guard(1.0 - a_plus_b * x / a_plus_one)
    h = d
    for iteration in range(1, _BETA_MAX_ITERATIONS + 1):
        m = float(iteration)
        m2 = 2.0 * m
        # even step
        numerator = m * (b - m) * x / ((a_minus_one + m2) * (a + m2))
        d = 1.0 / _lentz_guard(1.0 + numerator * d)
        c = _lentz_guard(1.0 + numerator / c)
        h *= d * c
        # odd step
        numerator = -(a + m) * (a_plus_b + m) * x / ((a + m2) * (a_plus_one + m2))
        d = 1.0 / _lentz_guard(1.0 + numerator * d)
        c = _lentz_guard(1.0 + numerator / c)
        step = d * c
        h *= step
        if abs(step - 1.0) < _BETA_EPSILON:
            break
    return h


def _incomplete_beta_parts(
    x: float, y: float, ln_x: float, ln_y: float, a: float, b: float
) -> float:
    """I_x(a, b) given x, y = 1 - x and their logarithms (callers that know 1 - x more
    precisely than by subtraction pass it in)."""
    front = math.exp(a * ln_x + b * ln_y - ln_beta(a, b))  # x^a y^b / B(a, b)
    if x > (a + 1.0) / (a + b + 2.0):
        # I_x(a, b) = 1 - I_{1-x}(b, a): the continued fraction converges there.
        return 1.0 - front * _beta_continued_fraction(y, b, a) / b
    return front * _beta_continued_fraction(x, a, b) / a


def regularized_incomplete_beta(x: float, a: float, b: float) -> float:
    """I_x(a, b): 0 for x <= 0, 1 for x >= 1; NaN for NaN x or unless a, b are finite and
    positive."""
    if math.isnan(x) or not (0.0 < a < math.inf and 0.0 < b < math.inf):
        return math.nan
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    result = _incomplete_beta_parts(x, 1.0 - x, math.log(x), math.log1p(-x), a, b)
    return _clamp(result, 0.0, 1.0)


def student_t_two_sided_p(t: float, df: float) -> float:
    """Two-sided p-value of Student's t with ``df`` > 0 degrees of freedom:
    I_{df/(df+t^2)}(df/2, 1/2).

    With u = t^2/df: x = 1/(1+u), 1-x = u/(1+u), ln x = -ln1p(u), ln(1-x) = ln u - ln1p(u),
    so a p-value near 1 keeps its digits. NaN for NaN t or unless df is finite and positive;
    1 for t = 0; 0 for infinite t (or t^2/df overflowing).
    """
    if math.isnan(t) or not (0.0 < df < math.inf):
        return math.nan
    if t == 0.0:
        return 1.0
    u = t * t / df
    if math.isinf(u):
        return 0.0
    log1p_u = math.log1p(u)
    p = _incomplete_beta_parts(
        1.0 / (1.0 + u), u / (1.0 + u), -log1p_u, math.log(u) - log1p_u, 0.5 * df, 0.5
    )
    return _clamp(p, 0.0, 1.0)


# --- Welch, Pearson ---------------------------------------------------------------------------


def welch_t_test(a: Float64Array, b: Float64Array, inflation: float = 1.0) -> tuple[float, float]:
    """Welch's two-sided t-test of two samples: ``(t, p_value)``.

    Sample variances (ddof 1) from :func:`mean_and_sum_of_squares`; with w_a = var_a/n_a,
    w_b = var_b/n_b, s = w_a + w_b: t = (mean_a - mean_b)/sqrt(s) and the Welch–Satterthwaite
    df = 1/((w_a/s)^2/(n_a-1) + (w_b/s)^2/(n_b-1)). Both samples of zero variance: p = 0 when
    the means differ (t = ±inf), 1 when equal (t = nan). Fewer than 2 values in either
    sample: ``(nan, nan)``. ``inflation`` = f >= 1 is the samples' long-run variance over
    their variance: each counts as n/f effective values (Bretherton et al. 1999) with the
    variance ss/(n - f) (Bayley & Hammersley 1946; Zięba 2010), so w_a = ss_a/(n_a - f)/(n_a/f)
    and the df uses n_a/f - 1; ``(nan, 1.0)`` when a sample has at most one effective value;
    f = 1 is Welch's test exactly.
    """
    if a.size < 2 or b.size < 2:
        return math.nan, math.nan
    mean_a, sum_of_squares_a = mean_and_sum_of_squares(a)
    mean_b, sum_of_squares_b = mean_and_sum_of_squares(b)
    return welch_from_moments(
        (a.size, sum_of_squares_a), (b.size, sum_of_squares_b), mean_a - mean_b, inflation
    )


def welch_from_moments(
    a: tuple[float, float], b: tuple[float, float], difference: float, inflation: float = 1.0
) -> tuple[float, float]:
    """:func:`welch_t_test` from each sample's (count, centred sum of squares) and the
    difference of their means (mean_a - mean_b), for samples summarised elsewhere (the
    mergeable state); the same special cases."""
    (n_a, sum_of_squares_a), (n_b, sum_of_squares_b) = a, b
    if n_a < 2 or n_b < 2:
        return math.nan, math.nan
    effective_a, effective_b = n_a / inflation, n_b / inflation
    if effective_a <= 1.0 or effective_b <= 1.0:
        return math.nan, 1.0
    weight_a = sum_of_squares_a / (n_a - inflation) / effective_a
    weight_b = sum_of_squares_b / (n_b - inflation) / effective_b
    total = weight_a + weight_b
    if total == 0.0:
        if difference == 0.0:
            return math.nan, 1.0
        return math.copysign(math.inf, difference), 0.0
    t = difference / math.sqrt(total)
    share_a = weight_a / total
    share_b = weight_b / total
    df = 1.0 / (share_a * share_a / (effective_a - 1.0) + share_b * share_b / (effective_b - 1.0))
    return t, student_t_two_sided_p(t, df)


def pearson_from_sums(sxy: float, sxx: float, syy: float) -> float:
    """r = sxy / sqrt(sxx syy) (sqrt(sxx) sqrt(syy) when the product underflows, near
    1e-160, or overflows), clipped to [-1, 1]; 0 when either sum of squares is 0."""
    if sxx == 0.0 or syy == 0.0:
        return 0.0
    product = sxx * syy
    normal = math.isfinite(product) and product >= sys.float_info.min
    scale = math.sqrt(product) if normal else math.sqrt(sxx) * math.sqrt(syy)
    return _clamp(sxy / scale, -1.0, 1.0)


def pearson(x: Float64Array, y: Float64Array) -> float:
    """Pearson r of two equally long samples, two-pass centered (exact for data offset by
    1e9), clipped to [-1, 1]; 0.0 when either sample has zero variance (all values equal,
    including fewer than 2 values)."""
    if x.size != y.size:
        raise ValueError(f"x and y must have the same length ({x.size} != {y.size})")
    if all_equal(x) or all_equal(y):
        return 0.0
    dx = x - sequential_sum(x) / x.size
    dy = y - sequential_sum(y) / y.size
    return pearson_from_sums(
        sequential_sum(dx * dy), sequential_sum(dx * dx), sequential_sum(dy * dy)
    )


def pearson_p_value(r: float, n: int) -> float:
    """Two-sided p-value of Pearson r over n pairs: t = r sqrt((n-2)/(1-r^2)) with n - 2
    degrees of freedom; 0 when |r| == 1; NaN when n < 3 or r is NaN."""
    if n < 3 or math.isnan(r):
        return math.nan
    if abs(r) >= 1.0:
        return 0.0
    df = float(n - 2)
    t = r * math.sqrt(df / (1.0 - r * r))
    return student_t_two_sided_p(t, df)
