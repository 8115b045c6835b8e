//! Statistical helpers shared by the detectors: ln Γ, the regularized incomplete beta
//! function, Student t and Welch p-values, and Pearson's r (docs/kernels.md, "General numeric
//! rules"). The NumPy backend (`_numpy/_stats.py`) implements the same algorithms in the same
//! operation order so the two agree to ~1e-12.
//!
//! Conventions shared with the NumPy side:
//! - Means and centered sums are accumulated sequentially, left to right, in f64.
//! - A sample whose values are all equal has variance exactly 0 and mean exactly its value
//!   (so "zero variance" never depends on rounding in the mean).

use std::f64::consts::PI;

/// Lanczos coefficients for g = 7, n = 9 (the classic set, ~1e-15 relative accuracy).
const LANCZOS_G: f64 = 7.0;
const LANCZOS_COEFFICIENTS: [f64; 9] = [
    0.999_999_999_999_809_9,
    676.520_368_121_885_1,
    -1_259.139_216_722_402_8,
    771.323_428_777_653_1,
    -176.615_029_162_140_6,
    12.507_343_278_686_905,
    -0.138_571_095_265_720_12,
    9.984_369_578_019_572e-6,
    1.505_632_735_149_311_6e-7,
];

/// ln(2π) / 2.
const HALF_LN_TWO_PI: f64 = 0.918_938_533_204_672_8;

/// Relative precision at which the continued fraction stops.
const BETA_CF_EPSILON: f64 = 1e-15;
/// Iteration cap of the continued fraction.
const BETA_CF_MAX_ITERATIONS: usize = 300;
/// Smallest magnitude allowed for a Lentz denominator (avoids division by zero).
const LENTZ_TINY: f64 = 1e-300;

/// Arguments at or above this use the Stirling series in [`ln_beta`].
const STIRLING_MIN: f64 = 10.0;

/// ln |Γ(x)| by the Lanczos approximation (g = 7, n = 9), with the reflection formula for
/// x < 0.5. Returns +inf at the poles (0, -1, -2, ...) and NaN for NaN.
pub fn ln_gamma(x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    if x == f64::INFINITY {
        return f64::INFINITY;
    }
    if x < 0.5 {
        if x == x.floor() {
            return f64::INFINITY;
        }
        // Γ(x) Γ(1 - x) = π / sin(πx)
        return (PI / (PI * x).sin().abs()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut series = LANCZOS_COEFFICIENTS[0];
    for (i, coefficient) in LANCZOS_COEFFICIENTS.iter().enumerate().skip(1) {
        series += coefficient / (x + i as f64);
    }
    let t = x + LANCZOS_G + 0.5;
    HALF_LN_TWO_PI + (x + 0.5) * t.ln() - t + series.ln()
}

/// The remainder of Stirling's series, ln Γ(x) - ((x - 1/2) ln x - x + ln(2π)/2), for
/// x >= 10 (eight terms of Σ B₂ₖ / (2k (2k-1) x^(2k-1)); error below 1e-17 there).
fn stirling_remainder(x: f64) -> f64 {
    const TERMS: [f64; 8] = [
        1.0 / 12.0,
        -1.0 / 360.0,
        1.0 / 1260.0,
        -1.0 / 1680.0,
        1.0 / 1188.0,
        -691.0 / 360_360.0,
        1.0 / 156.0,
        -3617.0 / 122_400.0,
    ];
    let inverse_square = 1.0 / (x * x);
    let mut sum = 0.0;
    for term in TERMS.iter().rev() {
        sum = sum * inverse_square + term;
    }
    sum / x
}

/// ln B(a, b) = ln Γ(a) + ln Γ(b) - ln Γ(a + b) for a, b > 0.
///
/// With `small = min(a, b)`, `large = max(a, b)`:
/// - `large < 10`: the three Lanczos values;
/// - `small < 10 <= large`: `ln_gamma(small) - D` with
///   `D = ln Γ(large + small) - ln Γ(large)
///      = (large - 1/2) ln1p(small / large) + small ln(large + small) - small
///        + R(large + small) - R(large)` (R = the Stirling remainder, `stirling_remainder`);
/// - both >= 10: `ln(2π)/2 + (small - 1/2) ln(small / (small + large))
///      - (large - 1/2) ln1p(small / large) - ln(small + large) / 2
///      + R(small) + R(large) - R(small + large)`.
///
/// Subtracting Lanczos values of ~a ln a would lose ~log10(a) digits for large a (Student t
/// with a million degrees of freedom); these forms keep ~1e-15.
pub fn ln_beta(a: f64, b: f64) -> f64 {
    let (small, large) = if a <= b { (a, b) } else { (b, a) };
    if large < STIRLING_MIN {
        return ln_gamma(a) + ln_gamma(b) - ln_gamma(a + b);
    }
    let sum = small + large;
    if small < STIRLING_MIN {
        let ln_gamma_ratio = (large - 0.5) * (small / large).ln_1p() + small * sum.ln() - small
            + stirling_remainder(sum)
            - stirling_remainder(large);
        return ln_gamma(small) - ln_gamma_ratio;
    }
    HALF_LN_TWO_PI + (small - 0.5) * (small / sum).ln()
        - (large - 0.5) * (small / large).ln_1p()
        - 0.5 * sum.ln()
        + stirling_remainder(small)
        + stirling_remainder(large)
        - stirling_remainder(sum)
}

/// Continued fraction of I_x(a, b) (Numerical Recipes `betacf`, modified Lentz), stopping
/// when a step changes the value by less than 1e-15 relative or after 300 iterations.
fn beta_continued_fraction(x: f64, a: f64, b: f64) -> f64 {
    let guard = |value: f64| {
        if value.abs() < LENTZ_TINY {
            LENTZ_TINY
        } else {
            value
        }
    };
    let a_plus_b = a + b;
    let a_plus_one = a + 1.0;
    let a_minus_one = a - 1.0;
    let mut c = 1.0;
    let mut d = 1.0 / guard(1.0 - a_plus_b * x / a_plus_one);
    let mut h = d;
    for m in 1..=BETA_CF_MAX_ITERATIONS {
        let m = m as f64;
        let m2 = 2.0 * m;
        // Even step.
        let numerator = m * (b - m) * x / ((a_minus_one + m2) * (a + m2));
        d = 1.0 / guard(1.0 + numerator * d);
        c = guard(1.0 + numerator / c);
        h *= d * c;
        // Odd step.
        let numerator = -(a + m) * (a_plus_b + m) * x / ((a + m2) * (a_plus_one + m2));
        d = 1.0 / guard(1.0 + numerator * d);
        c = guard(1.0 + numerator / c);
        let step = d * c;
        h *= step;
        if (step - 1.0).abs() < BETA_CF_EPSILON {
            break;
        }
    }
    h
}

/// I_x(a, b) given both `x` and `y = 1 - x` and their logarithms (callers that know `1 - x`
/// more precisely than by subtraction pass it in).
fn incomplete_beta_parts(x: f64, y: f64, ln_x: f64, ln_y: f64, a: f64, b: f64) -> f64 {
    // x^a y^b / B(a, b)
    let front = (a * ln_x + b * ln_y - ln_beta(a, b)).exp();
    if x > (a + 1.0) / (a + b + 2.0) {
        1.0 - front * beta_continued_fraction(y, b, a) / b
    } else {
        front * beta_continued_fraction(x, a, b) / a
    }
}

/// Relative precision at which the incomplete gamma series or continued fraction stops.
const GAMMA_EPSILON: f64 = 1e-15;
/// Iteration cap of the incomplete gamma series and continued fraction (both converge in
/// O(sqrt(a)) steps near x = a; callers keep a <= 1e4).
pub const GAMMA_MAX_ITERATIONS: usize = 2_000;

/// ln Q(a, x), the log of the regularized upper incomplete gamma function Γ(a, x) / Γ(a),
/// for a > 0: 0 for x <= 0; below x < a + 1 from the series of P(a, x) = e^{-x} x^a
/// Σ x^n / (a (a + 1) ⋯ (a + n)) / Γ(a) (Abramowitz & Stegun 6.5.29) as ln(1 − P); above,
/// from the continued fraction of Q(a, x) (A&S 6.5.31) evaluated by Lentz's method, in logs
/// (`−x + a ln x − ln Γ(a) + ln CF`) so that the far tail does not underflow. NaN unless a
/// is finite and positive.
pub fn ln_gamma_q(a: f64, x: f64) -> f64 {
    if !(a.is_finite() && a > 0.0) || x.is_nan() {
        return f64::NAN;
    }
    if x <= 0.0 {
        return 0.0;
    }
    let ln_front = a * x.ln() - x - ln_gamma(a);
    if x < a + 1.0 {
        let mut denominator = a;
        let mut term = 1.0 / a;
        let mut sum = term;
        for _ in 0..GAMMA_MAX_ITERATIONS {
            denominator += 1.0;
            term *= x / denominator;
            sum += term;
            if term < sum * GAMMA_EPSILON {
                break;
            }
        }
        let lower = (ln_front + sum.ln()).exp().min(1.0);
        return (-lower).ln_1p();
    }
    let mut b = x + 1.0 - a;
    let mut c = 1.0 / LENTZ_TINY;
    let mut d = 1.0 / b;
    let mut fraction = d;
    for i in 1..=GAMMA_MAX_ITERATIONS {
        let an = -(i as f64) * (i as f64 - a);
        b += 2.0;
        d = an * d + b;
        if d.abs() < LENTZ_TINY {
            d = LENTZ_TINY;
        }
        c = b + an / c;
        if c.abs() < LENTZ_TINY {
            c = LENTZ_TINY;
        }
        d = 1.0 / d;
        let step = d * c;
        fraction *= step;
        if (step - 1.0).abs() < GAMMA_EPSILON {
            break;
        }
    }
    ln_front + fraction.ln()
}

/// The regularized incomplete beta function I_x(a, b) (continued fraction, Lentz, relative
/// precision 1e-15, at most 300 iterations; I_x(a,b) = 1 - I_{1-x}(b,a) when
/// x > (a+1)/(a+b+2)). 0 for x <= 0, 1 for x >= 1; NaN for NaN arguments or unless a, b are
/// finite and positive.
pub fn regularized_incomplete_beta(x: f64, a: f64, b: f64) -> f64 {
    if x.is_nan() || !(a > 0.0 && b > 0.0 && a.is_finite() && b.is_finite()) {
        return f64::NAN;
    }
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let result = incomplete_beta_parts(x, 1.0 - x, x.ln(), (-x).ln_1p(), a, b);
    result.clamp(0.0, 1.0)
}

/// Two-sided p-value of Student's t statistic `t` with `df` degrees of freedom (any real
/// df > 0): p = I_{df/(df+t²)}(df/2, 1/2).
///
/// Computed with u = t²/df as x = 1/(1+u), 1-x = u/(1+u), ln x = -ln1p(u),
/// ln(1-x) = ln u - ln1p(u). NaN for NaN t or unless df is finite and positive; 1 for t = 0;
/// 0 for infinite t (or t so large that t²/df overflows).
pub fn student_t_two_sided_p(t: f64, df: f64) -> f64 {
    if t.is_nan() || !(df > 0.0 && df.is_finite()) {
        return f64::NAN;
    }
    if t == 0.0 {
        return 1.0;
    }
    let u = t * t / df;
    if !u.is_finite() {
        return 0.0;
    }
    let log1p_u = u.ln_1p();
    let p = incomplete_beta_parts(
        1.0 / (1.0 + u),
        u / (1.0 + u),
        -log1p_u,
        u.ln() - log1p_u,
        0.5 * df,
        0.5,
    );
    p.clamp(0.0, 1.0)
}

/// The tail region of Acklam's (2003) normal quantile: `Φ⁻¹(P)` for a lower tail
/// probability P < 0.02425 given as `q = sqrt(-2 ln P)` (`-Φ⁻¹(P) = Φ⁻¹(1 - P)`).
pub fn normal_quantile_tail(q: f64) -> f64 {
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    let numerator = ((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5];
    numerator / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
}

/// Φ⁻¹(p) for 0 < p < 1 by Acklam's (2003) rational approximation (relative error below
/// 1.2e-9): the central region `|p - 0.5| <= 0.5 - 0.02425` in `q = p - 0.5`, the tails in
/// `q = sqrt(-2 ln p)` (of `1 - p` above).
pub fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const LOW: f64 = 0.02425;
    let tail = normal_quantile_tail;
    if p < LOW {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - LOW {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        let numerator = (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q;
        numerator / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

/// Sequential left-to-right sum.
#[inline]
pub(crate) fn sequential_sum(values: &[f64]) -> f64 {
    let mut sum = 0.0;
    for &value in values {
        sum += value;
    }
    sum
}

/// True when every value equals the first (an empty slice counts as constant).
#[inline]
pub(crate) fn all_equal(values: &[f64]) -> bool {
    match values.first() {
        Some(&first) => values.iter().all(|&value| value == first),
        None => true,
    }
}

/// Mean (sequential sum / n) and the centered sum of squares Σ(x - mean)² (sequential);
/// a constant sample gives exactly (value, 0). Empty input: (NaN, 0).
pub(crate) fn mean_and_sum_of_squares(values: &[f64]) -> (f64, f64) {
    if values.is_empty() {
        return (f64::NAN, 0.0);
    }
    if all_equal(values) {
        return (values[0], 0.0);
    }
    let mean = sequential_sum(values) / values.len() as f64;
    let mut sum_of_squares = 0.0;
    for &value in values {
        let deviation = value - mean;
        sum_of_squares += deviation * deviation;
    }
    (mean, sum_of_squares)
}

/// Two-sided p-value of Welch's t-test between samples `a` and `b`.
///
/// Sample variances (ddof 1), two-pass centered (a constant sample has exactly 0); with
/// wₐ = varₐ/nₐ, w_b = var_b/n_b, s = wₐ + w_b: t = (meanₐ - mean_b) / √s and the
/// Welch–Satterthwaite
/// df = 1 / ((wₐ/s)²/(nₐ-1) + (w_b/s)²/(n_b-1)) (scale-free, so tiny variances do not
/// underflow). Both samples of zero variance: 0.0 when the means differ, else 1.0. NaN when
/// either sample has fewer than 2 values.
pub fn welch_t_test(a: &[f64], b: &[f64]) -> f64 {
    welch_t_test_inflated(a, b, 1.0)
}

/// [`welch_t_test`] of autocorrelated samples whose long-run variance is `inflation` >= 1
/// times their variance (f = (1 + ρ)/(1 - ρ) for AR(1)): each sample of n values counts as
/// n/f effective values (Bretherton et al. 1999), its variance is the sum of squares over
/// n - f (unbiased for autocorrelated values: Bayley & Hammersley 1946; Zięba 2010), so
/// wₐ = ssₐ/(nₐ - f) · f/nₐ and the Welch–Satterthwaite df uses nₐ/f - 1. 1.0 (nothing
/// testable) when a sample has at most one effective value. `inflation` = 1 is Welch's test
/// exactly.
pub fn welch_t_test_inflated(a: &[f64], b: &[f64], inflation: f64) -> f64 {
    if a.len() < 2 || b.len() < 2 {
        return f64::NAN;
    }
    let (mean_a, ss_a) = mean_and_sum_of_squares(a);
    let (mean_b, ss_b) = mean_and_sum_of_squares(b);
    welch_inflated_from_moments(
        (a.len() as f64, ss_a),
        (b.len() as f64, ss_b),
        mean_a - mean_b,
        inflation,
    )
}

/// [`welch_t_test_inflated`] from each sample's count and centred sum of squares and the
/// difference of their means (`mean_a - mean_b`; 0 exactly for equal means), for samples
/// summarised elsewhere (the mergeable state, SPEC §14). NaN below 2 values a sample.
pub fn welch_inflated_from_moments(
    (na, ss_a): (f64, f64),
    (nb, ss_b): (f64, f64),
    difference: f64,
    inflation: f64,
) -> f64 {
    if na < 2.0 || nb < 2.0 {
        return f64::NAN;
    }
    let (effective_a, effective_b) = (na / inflation, nb / inflation);
    if effective_a <= 1.0 || effective_b <= 1.0 {
        return 1.0;
    }
    let weight_a = ss_a / (na - inflation) / effective_a;
    let weight_b = ss_b / (nb - inflation) / effective_b;
    let total = weight_a + weight_b;
    if total == 0.0 {
        return if difference == 0.0 { 1.0 } else { 0.0 };
    }
    let t = difference / total.sqrt();
    let share_a = weight_a / total;
    let share_b = weight_b / total;
    let df =
        1.0 / (share_a * share_a / (effective_a - 1.0) + share_b * share_b / (effective_b - 1.0));
    student_t_two_sided_p(t, df)
}

/// Pearson's r by the two-pass centered formula (exact for data offset by 1e9), clipped to
/// [-1, 1]. 0 when either sample has zero variance (all values equal, including n < 2);
/// NaN when the lengths differ.
pub fn pearson(x: &[f64], y: &[f64]) -> f64 {
    if x.len() != y.len() {
        return f64::NAN;
    }
    if all_equal(x) || all_equal(y) {
        return 0.0;
    }
    let n = x.len() as f64;
    let mean_x = sequential_sum(x) / n;
    let mean_y = sequential_sum(y) / n;
    centered_correlation(x, y, mean_x, mean_y)
}

/// r from known means: Σdxdy / √(Σdx² Σdy²), one sequential pass; clipped to [-1, 1];
/// 0 when a centered sum of squares is 0.
pub(crate) fn centered_correlation(x: &[f64], y: &[f64], mean_x: f64, mean_y: f64) -> f64 {
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (&xi, &yi) in x.iter().zip(y) {
        let dx = xi - mean_x;
        let dy = yi - mean_y;
        sxy += dx * dy;
        sxx += dx * dx;
        syy += dy * dy;
    }
    correlation_from_sums(sxy, sxx, syy)
}

/// r = sxy / √(sxx syy), clipped to [-1, 1]; 0 if either sum of squares is 0.
#[inline]
pub(crate) fn correlation_from_sums(sxy: f64, sxx: f64, syy: f64) -> f64 {
    if sxx == 0.0 || syy == 0.0 {
        return 0.0;
    }
    // The square root of the product (exact for perfectly linear pairs: r = ±1), unless the
    // product underflows (values near 1e-160) or overflows (1e160): then of each.
    let product = sxx * syy;
    let scale = if product.is_normal() {
        product.sqrt()
    } else {
        sxx.sqrt() * syy.sqrt()
    };
    (sxy / scale).clamp(-1.0, 1.0)
}

/// Two-sided p-value of Pearson's r over n pairs: t = r √((n-2)/(1-r²)), df = n - 2;
/// 0 when |r| == 1; NaN when n < 3 or r is NaN.
pub fn pearson_p_value(r: f64, n: usize) -> f64 {
    if n < 3 || r.is_nan() {
        return f64::NAN;
    }
    if r.abs() >= 1.0 {
        return 0.0;
    }
    let df = (n - 2) as f64;
    let t = r * (df / (1.0 - r * r)).sqrt();
    student_t_two_sided_p(t, df)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ln_gamma_q_matches_closed_forms() {
        // Q(1, x) = e^{-x}; Q(3, x) = e^{-x} (1 + x + x²/2); Q(1/2, x) = erfc(√x)
        for &x in &[1e-3, 0.3, 1.0, 2.5, 7.0, 40.0, 800.0] {
            let exponential = ln_gamma_q(1.0, x);
            assert!(
                (exponential + x).abs() <= 1e-13 * x.max(1.0),
                "{x}: {exponential}"
            );
            let three = ln_gamma_q(3.0, x);
            let expected = -x + (1.0 + x + x * x / 2.0).ln();
            assert!(
                (three - expected).abs() <= 1e-12 * x.max(1.0),
                "{x}: {three}"
            );
        }
        // erfc(√2) = 0.04550026389635839, erfc(√0.1) = 0.6547208460185769 (scipy)
        assert!((ln_gamma_q(0.5, 2.0) - 0.045_500_263_896_358_39f64.ln()).abs() < 1e-13);
        assert!((ln_gamma_q(0.5, 0.1) - 0.654_720_846_018_576_9f64.ln()).abs() < 1e-13);
        assert_eq!(ln_gamma_q(2.0, 0.0), 0.0);
        assert_eq!(ln_gamma_q(2.0, -1.0), 0.0);
        assert!(ln_gamma_q(0.0, 1.0).is_nan());
        assert!(ln_gamma_q(f64::INFINITY, 1.0).is_nan());
        // a large shape near its mean and in its tail (scipy.special.gammaincc)
        let middle = ln_gamma_q(1e4, 1e4).exp();
        assert!((middle - 0.498_670_191_660_044_8).abs() < 1e-9, "{middle}");
        let tail = ln_gamma_q(1e4, 1.05e4);
        assert!((tail + 14.665_107_486_336_82).abs() < 1e-8, "{tail}");
        // far beyond what an f64 Q holds: ln Q(2, 800) = -800 + ln 801
        assert!((ln_gamma_q(2.0, 800.0) - (-800.0 + 801f64.ln())).abs() < 1e-11);
    }

    #[test]
    fn normal_quantile_matches_known_values() {
        // scipy.stats.norm.ppf
        for (p, expected) in [
            (0.5, 0.0),
            (0.975, 1.959_963_984_540_054),
            (0.01, -2.326_347_874_040_841),
            (0.9, 1.281_551_565_544_600_5),
            (1e-10, -6.361_340_902_404_056),
            (1.0 - 1e-6, 4.753_424_308_817_087),
        ] {
            let found = normal_quantile(p);
            assert!(
                (found - expected).abs() <= 1.2e-9 * expected.abs().max(1e-3),
                "{p}: {found} vs {expected}"
            );
        }
    }

    fn assert_close(actual: f64, expected: f64, relative: f64) {
        let scale = expected.abs().max(f64::MIN_POSITIVE);
        assert!(
            (actual - expected).abs() <= relative * scale,
            "{actual} != {expected} (relative error {})",
            (actual - expected).abs() / scale
        );
    }

    #[test]
    fn ln_gamma_matches_scipy_gammaln() {
        // scipy.special.gammaln
        let cases = [
            (0.5, 0.5723649429247),
            (1.5, -0.12078223763524526),
            (3.7, 1.428072326665388),
            (10.0, 12.801827480081469),
            (100.5, 361.43554046777757),
            (1e5, 1051287.7089736569),
            (1e-3, 6.907178885383853),
        ];
        for (x, expected) in cases {
            assert_close(ln_gamma(x), expected, 1e-14);
        }
        assert!(ln_gamma(1.0).abs() < 1e-15);
        assert!(ln_gamma(2.0).abs() < 1e-15);
        // Γ(-0.5) = -2√π
        assert_close(ln_gamma(-0.5), (2.0 * PI.sqrt()).ln(), 1e-14);
        assert_eq!(ln_gamma(0.0), f64::INFINITY);
        assert_eq!(ln_gamma(-3.0), f64::INFINITY);
        assert!(ln_gamma(f64::NAN).is_nan());
    }

    #[test]
    fn ln_beta_is_accurate_in_every_branch() {
        // B(a, 1) = 1/a; B(1/2, 1/2) = π; B(a, b) = Γ(a)Γ(b)/Γ(a+b) for integers.
        assert_close(ln_beta(20.0, 1.0), -(20.0f64.ln()), 1e-15);
        assert_close(ln_beta(0.5, 0.5), PI.ln(), 1e-15);
        assert_close(ln_beta(1e6, 1.0), -(1e6f64.ln()), 1e-15);
        // B(12, 12) = 11!·11!/23!
        let exact = (39916800.0f64 * 39916800.0 / 25852016738884976640000.0).ln();
        assert_close(ln_beta(12.0, 12.0), exact, 1e-14);
        // scipy.special.betaln(1000, 2000), betaln(15, 0.5)
        assert_close(ln_beta(1000.0, 2000.0), -1911.8746142144482, 1e-14);
        assert_close(ln_beta(15.0, 0.5), -0.7733283654522322, 1e-14);
        assert_close(ln_beta(0.5, 15.0), -0.7733283654522322, 1e-14);
    }

    #[test]
    fn incomplete_beta_closed_forms() {
        for &x in &[1e-9, 0.01, 0.2, 0.5, 0.77, 0.99, 1.0 - 1e-9] {
            assert_close(regularized_incomplete_beta(x, 1.0, 1.0), x, 1e-14);
            for &a in &[0.5, 2.0, 3.7, 25.0] {
                assert_close(regularized_incomplete_beta(x, a, 1.0), x.powf(a), 1e-13);
                // 1 - (1 - x)^a, without cancellation
                let complement = -(a * (-x).ln_1p()).exp_m1();
                assert_close(regularized_incomplete_beta(x, 1.0, a), complement, 1e-13);
            }
        }
        // I_x(1/2, 1/2) = (2/π) asin(√x)
        for x in [0.1f64, 0.5, 0.9] {
            let expected = 2.0 / PI * x.sqrt().asin();
            assert_close(regularized_incomplete_beta(x, 0.5, 0.5), expected, 1e-14);
        }
    }

    #[test]
    fn incomplete_beta_matches_scipy_betainc() {
        let cases = [
            (0.3, 2.5, 3.5, 0.29675298929566646),
            (0.9, 0.5, 0.5, 0.7951672353008665),
            (0.1, 10.0, 20.0, 0.0003325960345446004),
            (0.7, 50.0, 0.5, 2.5571939944368708e-09),
            (0.999, 3.0, 4.0, 0.999999999985024),
            (0.5, 200.0, 300.0, 0.9999964565197356),
            (1e-5, 0.5, 5.0, 0.007782063918018752),
        ];
        for (x, a, b, expected) in cases {
            assert_close(regularized_incomplete_beta(x, a, b), expected, 1e-12);
        }
    }

    #[test]
    fn incomplete_beta_edges() {
        assert_eq!(regularized_incomplete_beta(0.0, 2.0, 3.0), 0.0);
        assert_eq!(regularized_incomplete_beta(-1.0, 2.0, 3.0), 0.0);
        assert_eq!(regularized_incomplete_beta(1.0, 2.0, 3.0), 1.0);
        assert_eq!(regularized_incomplete_beta(7.0, 2.0, 3.0), 1.0);
        assert!(regularized_incomplete_beta(f64::NAN, 2.0, 3.0).is_nan());
        assert!(regularized_incomplete_beta(0.5, 0.0, 3.0).is_nan());
        assert!(regularized_incomplete_beta(0.5, 2.0, -1.0).is_nan());
        assert!(regularized_incomplete_beta(0.5, f64::INFINITY, 1.0).is_nan());
    }

    #[test]
    fn student_t_matches_scipy() {
        // 2 * scipy.stats.t.sf(|t|, df)
        let cases = [
            (2.0, 10.0, 0.07338803477074037),
            (0.5, 3.0, 0.651447964848151),
            (3.5, 7.5, 0.008948871980079345),
            (-2.2, 25.3, 0.03715338777899461),
            (4.0, 200.0, 8.913095218593442e-05),
            (10.0, 1000.0, 1.6670702958600137e-22),
            (2.5, 1e5, 0.012420919192559051),
        ];
        for (t, df, expected) in cases {
            assert_close(student_t_two_sided_p(t, df), expected, 1e-12);
        }
    }

    #[test]
    fn student_t_with_one_degree_of_freedom_is_cauchy() {
        for &t in &[1e-8, 0.1, 1.0, 2.0, 7.5, 100.0, 1e6] {
            // 1 - (2/π) atan(t) = (2/π) atan(1/t), the latter without cancellation
            let expected = 2.0 / PI * f64::atan(1.0 / t);
            assert_close(student_t_two_sided_p(t, 1.0), expected, 1e-13);
            assert_close(student_t_two_sided_p(-t, 1.0), expected, 1e-13);
        }
    }

    #[test]
    fn student_t_with_two_degrees_of_freedom_closed_form() {
        // df = 2: p = 1 - |t| / √(2 + t²)
        for t in [0.3f64, 1.0, 4.0, 30.0] {
            let expected = 1.0 - t / (2.0 + t * t).sqrt();
            assert_close(student_t_two_sided_p(t, 2.0), expected, 1e-13);
        }
    }

    #[test]
    fn student_t_edges() {
        assert_eq!(student_t_two_sided_p(0.0, 5.0), 1.0);
        assert_eq!(student_t_two_sided_p(f64::INFINITY, 5.0), 0.0);
        assert_eq!(student_t_two_sided_p(-1e300, 5.0), 0.0);
        assert!(student_t_two_sided_p(f64::NAN, 5.0).is_nan());
        assert!(student_t_two_sided_p(1.0, 0.0).is_nan());
        assert!(student_t_two_sided_p(1.0, f64::NAN).is_nan());
        assert!(student_t_two_sided_p(1.0, f64::INFINITY).is_nan());
    }

    #[test]
    fn welch_matches_scipy_ttest_ind() {
        // scipy.stats.ttest_ind(a, b, equal_var=False).pvalue
        let a = [1.1, 2.3, 0.7, 4.2, 3.3, 2.9];
        let b = [5.1, 4.4, 6.0, 3.9, 5.5];
        assert_close(welch_t_test(&a, &b), 0.0042006724676762275, 1e-12);
        assert_close(welch_t_test(&b, &a), 0.0042006724676762275, 1e-12);
    }

    #[test]
    fn welch_zero_variance_rules() {
        assert_eq!(welch_t_test(&[0.1, 0.1, 0.1], &[0.1, 0.1]), 1.0);
        assert_eq!(welch_t_test(&[0.1, 0.1, 0.1], &[0.2, 0.2]), 0.0);
        assert!(welch_t_test(&[1.0], &[2.0, 3.0]).is_nan());
        assert!(welch_t_test(&[1.0, 2.0], &[]).is_nan());
        // One zero-variance sample is an ordinary Welch test: t = -3/√(1/3), df = 2.
        let p = welch_t_test(&[1.0, 2.0, 3.0], &[5.0, 5.0]);
        let t: f64 = 3.0 / (1.0f64 / 3.0).sqrt();
        assert_close(p, 1.0 - t / (2.0 + t * t).sqrt(), 1e-13);
    }

    #[test]
    fn pearson_values() {
        let x = [1.0, 2.0, 4.0, 7.0, 11.0];
        let y = [2.0, 1.0, 5.0, 8.0, 9.0];
        // scipy.stats.pearsonr
        assert_close(pearson(&x, &y), 0.9400193421607683, 1e-14);
        assert_close(
            pearson_p_value(pearson(&x, &y), 5),
            0.0174744797146396,
            1e-11,
        );
        let offset_x: Vec<f64> = x.iter().map(|v| v + 1e9).collect();
        let offset_y: Vec<f64> = y.iter().map(|v| v + 1e9).collect();
        assert_close(pearson(&offset_x, &offset_y), 0.9400193421607683, 1e-14);
        let negated: Vec<f64> = y.iter().map(|v| -3.0 * v + 1.0).collect();
        assert_close(pearson(&x, &negated), -0.9400193421607683, 1e-14);
        assert_eq!(pearson(&x, &x), 1.0);
        assert_eq!(pearson(&[0.1, 0.1, 0.1], &[1.0, 2.0, 3.0]), 0.0);
        assert_eq!(pearson(&[], &[]), 0.0);
        assert_eq!(pearson(&[1.0], &[2.0]), 0.0);
        assert!(pearson(&[1.0, 2.0], &[2.0]).is_nan());
        assert_eq!(pearson_p_value(1.0, 5), 0.0);
        assert_eq!(pearson_p_value(-1.0, 50), 0.0);
        assert_eq!(pearson_p_value(0.0, 50), 1.0);
        assert!(pearson_p_value(0.5, 2).is_nan());
    }
}
