//! Autoregressive prewhitening (Box & Jenkins 1970; Haugh 1976): a series is replaced by
//! the innovations of its own AR(p) model, so that autocorrelation, drift, a trend, a step
//! or a regular cycle (an AR(2) with roots near the unit circle annihilates a sinusoid)
//! leave (nearly) white residuals, and tests that assume independent values hold on them.
//!
//! - The values are divided by s, the power of two at or below max |v| (exact: squares
//!   neither overflow nor vanish, and offset data keep every bit; s = 1 when max |v| is
//!   subnormal), and centered on their sequential mean: c.
//! - Autocovariances `g_k = Σ_{t < n-k} c_t c_{t+k} / n` (sequential sums), k = 0..=P,
//!   P = [`max_ar_order`]`(n)`.
//! - Yule–Walker by the Levinson–Durbin recursion: order k's reflection coefficient
//!   `a_k = (g_k - Σ_{j=1}^{k-1} φ_{k-1,j} g_{k-j}) / v_{k-1}` (sum in ascending j),
//!   `φ_{k,j} = φ_{k-1,j} - a_k φ_{k-1,k-j}`, `φ_{k,k} = a_k`, `v_k = v_{k-1} (1 - a_k²)`,
//!   `v_0 = g_0`; the recursion stops before an order with |a_k| >= 1 or v_k <= 0.
//! - The order p minimises Akaike's criterion `n ln v_k + 2k` over the orders reached
//!   (first on ties; Akaike 1974).
//! - Residuals `e_t = c_t - Σ_{j=1}^{q} φ_{q,j} c_{t-j}` with q = min(t, p) (the first
//!   values use the lower orders of the same recursion, so no value is lost), subtracted
//!   term by term in ascending j, times s.
//!
//! A constant series has residuals 0. The NumPy twin is
//! `crackle_runtime._numpy.detect.shared.prewhiten`.

use super::columns::has_nan;
use rayon::prelude::*;

/// The largest AR order fitted.
pub const MAX_AR_ORDER: usize = 12;
/// At most one AR coefficient per this many values.
pub const VALUES_PER_AR_ORDER: usize = 5;
/// A column with fewer present values than this is not prewhitened (all NaN).
pub const MIN_PREWHITEN_VALUES: usize = 3;

/// The largest AR order fitted to n values: min(12, n / 5).
pub fn max_ar_order(n: usize) -> usize {
    MAX_AR_ORDER.min(n / VALUES_PER_AR_ORDER)
}

/// The fitted model: `coefficients[q]` holds φ_{q,1..=q} for q = 0..=p (the recursion's
/// lower orders, used for the first values).
#[derive(Debug, Clone, PartialEq)]
pub struct ArModel {
    pub coefficients: Vec<Vec<f64>>,
}

impl ArModel {
    /// The chosen order p.
    pub fn order(&self) -> usize {
        self.coefficients.len() - 1
    }
}

/// The Yule–Walker AR model of the centered, scaled values `centered` chosen by AIC (see
/// the module documentation).
pub fn fit_ar(centered: &[f64]) -> ArModel {
    let n = centered.len();
    let limit = max_ar_order(n);
    let autocovariance = |lag: usize| {
        let mut sum = 0.0;
        for t in 0..n - lag {
            sum += centered[t] * centered[t + lag];
        }
        sum / n as f64
    };
    let g: Vec<f64> = (0..=limit.min(n.saturating_sub(1)))
        .map(autocovariance)
        .collect();
    let mut orders: Vec<Vec<f64>> = vec![Vec::new()];
    let Some(&g0) = g.first() else {
        return ArModel {
            coefficients: orders,
        };
    };
    if !(g0 > 0.0 && g0.is_finite()) {
        return ArModel {
            coefficients: orders,
        };
    }
    let mut variance = g0;
    let (mut best, mut best_aic) = (0usize, n as f64 * variance.ln());
    for k in 1..g.len() {
        let previous = &orders[k - 1];
        let mut numerator = g[k];
        for j in 1..k {
            numerator -= previous[j - 1] * g[k - j];
        }
        let reflection = numerator / variance;
        if reflection.is_nan() || reflection.abs() >= 1.0 {
            break;
        }
        let next_variance = variance * (1.0 - reflection * reflection);
        if next_variance.is_nan() || next_variance <= 0.0 {
            break;
        }
        let mut current: Vec<f64> = (1..k)
            .map(|j| previous[j - 1] - reflection * previous[k - j - 1])
            .collect();
        current.push(reflection);
        variance = next_variance;
        orders.push(current);
        let aic = n as f64 * variance.ln() + 2.0 * k as f64;
        if aic < best_aic {
            best = k;
            best_aic = aic;
        }
    }
    orders.truncate(best + 1);
    ArModel {
        coefficients: orders,
    }
}

/// The power of two at or below `largest` (finite, > 0); 1 for a subnormal `largest`.
/// NumPy: `ldexp(1.0, frexp(largest)[1] - 1)`.
pub fn power_of_two_below(largest: f64) -> f64 {
    let biased = (largest.to_bits() >> 52) & 0x7ff;
    if biased == 0 {
        1.0
    } else {
        f64::from_bits(biased << 52)
    }
}

/// The AR(p) residuals of `values` (finite, in order; see the module documentation), in
/// the units of `values`; zeros for a constant series, empty for no values.
pub fn ar_residuals(values: &[f64]) -> Vec<f64> {
    ar_residuals_both_ways(values, false).0
}

/// The forward AR(p) residuals of `values` ([`ar_residuals`]) and, when `backward`, the
/// backward ones: the same model read backward in time, `b_t = c_t - Σ_{j=1}^{q} φ_{q,j}
/// c_{t+j}` with q = min(n - 1 - t, p), subtracted in ascending j, times s (a stationary AR
/// model has the same Yule–Walker coefficients in both directions of time: its
/// autocovariances are; Box & Jenkins 1970 §3.1). Empty when not `backward`.
pub fn ar_residuals_both_ways(values: &[f64], backward: bool) -> (Vec<f64>, Vec<f64>) {
    let n = values.len();
    let mut forward = vec![0.0; n];
    let mut backward_out = if backward { vec![0.0; n] } else { Vec::new() };
    ar_residuals_into(
        values,
        &mut forward,
        backward.then_some(&mut backward_out[..]),
    );
    (forward, backward_out)
}

/// [`ar_residuals_both_ways`] written into `forward` (and `backward` when given), each of
/// the length of `values`.
fn ar_residuals_into(values: &[f64], forward: &mut [f64], backward: Option<&mut [f64]>) {
    let n = values.len();
    let largest = values.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    if n == 0 || !(largest > 0.0 && largest.is_finite()) {
        forward.fill(0.0);
        if let Some(backward) = backward {
            backward.fill(0.0);
        }
        return;
    }
    let scale = power_of_two_below(largest);
    // the scaled values' sum, then each scaled value minus the mean (the same floats as
    // from a stored copy of the scaled values, without it)
    let mean = values.iter().map(|v| v / scale).sum::<f64>() / n as f64;
    let centered: Vec<f64> = values.iter().map(|v| v / scale - mean).collect();
    let model = fit_ar(&centered);
    let p = model.order();
    for (t, out) in forward.iter_mut().enumerate() {
        let coefficients = &model.coefficients[t.min(p)];
        let mut residual = centered[t];
        for (j, phi) in coefficients.iter().enumerate() {
            residual -= phi * centered[t - 1 - j];
        }
        *out = residual * scale;
    }
    if let Some(backward) = backward {
        for (t, out) in backward.iter_mut().enumerate() {
            let coefficients = &model.coefficients[(n - 1 - t).min(p)];
            let mut residual = centered[t];
            for (j, phi) in coefficients.iter().enumerate() {
                residual -= phi * centered[t + 1 + j];
            }
            *out = residual * scale;
        }
    }
}

/// Per column: the AR residuals of its present (non-NaN) values in order, at their tasks,
/// NaN at the absent tasks; all NaN with fewer than [`MIN_PREWHITEN_VALUES`] present
/// values. Columns run in parallel.
pub fn prewhiten_columns(columns: &[&[f64]]) -> Vec<Vec<f64>> {
    columns
        .par_iter()
        .map(|column| prewhiten_column(column, false).0)
        .collect()
}

/// [`prewhiten_columns`] written into `out`, one row of the columns' length per column in
/// order (row-major): the caller's buffer is the only copy of the result (a Vec per column
/// flattened afterwards peaked at twice the matrix and more, 1M × 16: 322 MB).
pub fn prewhiten_columns_into(columns: &[&[f64]], out: &mut [f64]) {
    let length = columns.first().map_or(0, |column| column.len());
    if length == 0 {
        return;
    }
    out.par_chunks_mut(length)
        .zip(columns.par_iter())
        .for_each(|(row, column)| {
            if complete(column) {
                ar_residuals_into(column, row, None); // straight into the row
            } else {
                row.copy_from_slice(&prewhiten_column(column, false).0);
            }
        });
}

/// Per column: its forward residuals ([`prewhiten_columns`]) and its backward residuals
/// ([`ar_residuals_both_ways`]) at the same tasks. Columns run in parallel.
pub fn prewhiten_columns_both_ways(columns: &[&[f64]]) -> Vec<(Vec<f64>, Vec<f64>)> {
    columns
        .par_iter()
        .map(|column| prewhiten_column(column, true))
        .collect()
}

/// One column's forward and backward residuals ([`prewhiten_columns_both_ways`]).
pub fn prewhiten_column_both_ways(column: &[f64]) -> (Vec<f64>, Vec<f64>) {
    prewhiten_column(column, true)
}

/// Every task present and enough of them to fit: the residuals are at their tasks as
/// computed.
fn complete(column: &[f64]) -> bool {
    column.len() >= MIN_PREWHITEN_VALUES && !has_nan(column)
}

fn prewhiten_column(column: &[f64], backward: bool) -> (Vec<f64>, Vec<f64>) {
    if complete(column) {
        // every task present: the residuals are already at their tasks (no copies)
        return ar_residuals_both_ways(column, backward);
    }
    let tasks: Vec<usize> = (0..column.len()).filter(|&t| !column[t].is_nan()).collect();
    let mut forward_out = vec![f64::NAN; column.len()];
    let mut backward_out = if backward {
        vec![f64::NAN; column.len()]
    } else {
        Vec::new()
    };
    if tasks.len() < MIN_PREWHITEN_VALUES {
        return (forward_out, backward_out);
    }
    let present: Vec<f64> = tasks.iter().map(|&t| column[t]).collect();
    let (forward, backward_residuals) = ar_residuals_both_ways(&present, backward);
    for (&t, residual) in tasks.iter().zip(forward) {
        forward_out[t] = residual;
    }
    for (&t, residual) in tasks.iter().zip(backward_residuals) {
        backward_out[t] = residual;
    }
    (forward_out, backward_out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::shared::test_data::normals;

    #[test]
    fn backward_residuals_are_the_model_read_backward() {
        // An AR(2) series: the backward residuals equal the forward residuals of the
        // reversed series (the same Yule–Walker fit, to rounding) and reverse exactly by
        // definition on the model.
        let shocks = normals(61, 500);
        let mut x = vec![0.0; 500];
        for t in 2..500 {
            x[t] = 0.6 * x[t - 1] - 0.3 * x[t - 2] + shocks[t] + 10.0;
        }
        let (forward, backward) = ar_residuals_both_ways(&x, true);
        assert_eq!(forward, ar_residuals(&x));
        let reversed: Vec<f64> = x.iter().rev().copied().collect();
        let mut expected = ar_residuals(&reversed);
        expected.reverse();
        for (b, e) in backward.iter().zip(&expected) {
            assert!((b - e).abs() <= 1e-9 * (1.0 + e.abs()), "{b} vs {e}");
        }
        // Absent values and short columns: NaN at the same tasks both ways.
        let nan = f64::NAN;
        let column = [1.0, nan, 3.0, 2.0, nan, 5.0, 4.0];
        let both = prewhiten_columns_both_ways(&[&column, &[1.0, nan]]);
        assert_eq!(
            both[0].0.iter().map(|v| v.is_nan()).collect::<Vec<_>>(),
            column.iter().map(|v| v.is_nan()).collect::<Vec<_>>()
        );
        assert_eq!(
            both[0].1.iter().map(|v| v.is_nan()).collect::<Vec<_>>(),
            column.iter().map(|v| v.is_nan()).collect::<Vec<_>>()
        );
        assert!(both[1].0.iter().chain(&both[1].1).all(|v| v.is_nan()));
        // A constant series: zeros both ways.
        assert_eq!(
            ar_residuals_both_ways(&[2.0; 4], true),
            (vec![0.0; 4], vec![0.0; 4])
        );
    }

    #[test]
    fn powers_of_two() {
        assert_eq!(power_of_two_below(1.0), 1.0);
        assert_eq!(power_of_two_below(1.9), 1.0);
        assert_eq!(power_of_two_below(1e9), 536_870_912.0);
        assert_eq!(power_of_two_below(0.3), 0.25);
        assert_eq!(power_of_two_below(f64::MAX), 2f64.powi(1023));
        assert_eq!(power_of_two_below(1e-310), 1.0);
    }

    #[test]
    fn order_limit() {
        assert_eq!(max_ar_order(4), 0);
        assert_eq!(max_ar_order(10), 2);
        assert_eq!(max_ar_order(59), 11);
        assert_eq!(max_ar_order(1000), 12);
    }

    #[test]
    fn hand_worked_ar1() {
        // 1, 3, 2, 5 (max order 0: n < 5): the centered values -1.75, 0.25, -0.75, 2.25
        let residuals = ar_residuals(&[1.0, 3.0, 2.0, 5.0]);
        let expected = [-1.75, 0.25, -0.75, 2.25];
        for (r, e) in residuals.iter().zip(expected) {
            assert!((r - e).abs() < 1e-12, "{residuals:?}");
        }
        // Ten values: order 0, 1 or 2 by AIC; check the recursion by hand for order 1.
        let values = [0.0, 2.0, 1.0, 3.0, 2.0, 4.0, 3.0, 5.0, 4.0, 6.0];
        let scaled: Vec<f64> = values.iter().map(|v| v / 4.0).collect();
        let mean = scaled.iter().sum::<f64>() / 10.0;
        let c: Vec<f64> = scaled.iter().map(|v| v - mean).collect();
        let g = |k: usize| {
            let mut sum = 0.0;
            for t in 0..10 - k {
                sum += c[t] * c[t + k];
            }
            sum / 10.0
        };
        let a1 = g(1) / g(0);
        let v1 = g(0) * (1.0 - a1 * a1);
        let a2 = (g(2) - a1 * g(1)) / v1;
        let v2 = v1 * (1.0 - a2 * a2);
        let model = fit_ar(&c);
        let aics = [10.0 * g(0).ln(), 10.0 * v1.ln() + 2.0, 10.0 * v2.ln() + 4.0];
        let best = (0..3).min_by(|&x, &y| aics[x].total_cmp(&aics[y])).unwrap();
        assert_eq!(model.order(), best);
        if best >= 1 {
            assert!((model.coefficients[1][0] - a1).abs() < 1e-15);
        }
        if best == 2 {
            let phi = &model.coefficients[2];
            assert!((phi[1] - a2).abs() < 1e-15 && (phi[0] - (a1 - a2 * a1)).abs() < 1e-15);
        }
    }

    #[test]
    fn residuals_of_ar1_and_of_a_cycle_are_white() {
        let noise = normals(5, 2000);
        let mut x = vec![0.0; 2000];
        for t in 1..2000 {
            x[t] = 0.9 * x[t - 1] + noise[t];
        }
        let model = fit_ar(&x);
        assert!(model.order() >= 1);
        assert!((model.coefficients[model.order()][0] - 0.9).abs() < 0.05);
        let lag1 = |e: &[f64]| {
            let m = e.iter().sum::<f64>() / e.len() as f64;
            let s: f64 = e.iter().map(|v| (v - m) * (v - m)).sum();
            e.windows(2).map(|w| (w[0] - m) * (w[1] - m)).sum::<f64>() / s
        };
        assert!(lag1(&ar_residuals(&x)).abs() < 0.05);
        // a daily cycle (period 24) plus noise: the residuals keep almost none of the cycle
        let cycle: Vec<f64> = (0..2000)
            .map(|t| 3.0 * (2.0 * std::f64::consts::PI * t as f64 / 24.0).sin() + noise[t])
            .collect();
        let residuals = ar_residuals(&cycle);
        let power = |e: &[f64]| {
            let (mut s, mut c) = (0.0, 0.0);
            for (t, v) in e.iter().enumerate() {
                let angle = 2.0 * std::f64::consts::PI * t as f64 / 24.0;
                s += v * angle.sin();
                c += v * angle.cos();
            }
            (s * s + c * c).sqrt() / e.len() as f64
        };
        assert!(power(&cycle) > 1.4, "{}", power(&cycle));
        assert!(
            power(&residuals[100..]) < 0.1,
            "{}",
            power(&residuals[100..])
        );
    }

    #[test]
    fn columns_keep_absent_tasks_and_short_columns() {
        let nan = f64::NAN;
        let column = [1.0, nan, 3.0, 2.0, 5.0];
        let short = [1.0, 2.0, nan, nan, nan];
        let constant = [4.0; 5];
        let out = prewhiten_columns(&[&column, &short, &constant]);
        let dense = ar_residuals(&[1.0, 3.0, 2.0, 5.0]);
        assert!(out[0][1].is_nan());
        assert_eq!([out[0][0], out[0][2], out[0][3], out[0][4]], dense[..]);
        assert!(out[1].iter().all(|v| v.is_nan()));
        assert_eq!(out[2], vec![0.0; 5]);
        // scale-free: the residuals of scaled values are the scaled residuals
        let big: Vec<f64> = column.iter().map(|v| v * 1e300).collect();
        let out_big = prewhiten_columns(&[&big]);
        for (a, b) in out_big[0].iter().zip(&out[0]) {
            assert!(a.is_nan() && b.is_nan() || (a / 1e300 - b).abs() < 1e-12 * b.abs().max(1.0));
        }
    }
}
