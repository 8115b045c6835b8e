//! A fitted law's coefficients (normalized, snapped to simple ratios) and its check
//! against every complete task.

use super::{
    BAND_MADS, EXACT_RELATIVE, MAD_TO_SIGMA, MAX_SNAP_DENOMINATOR, SNAP_DISTANCE, SNAP_STD_FACTOR,
};
use crate::detect::shared::ranks::median_in_place;
use crate::stats::mean_and_sum_of_squares;

/// Divides by max |c| and negates when the first coefficient is negative.
pub(super) fn normalize(raw: &[f64]) -> Vec<f64> {
    let largest = raw.iter().fold(0.0f64, |acc, c| acc.max(c.abs()));
    let sign = if raw.first().is_some_and(|&c| c < 0.0) {
        -1.0
    } else {
        1.0
    };
    raw.iter().map(|c| sign * (c / largest)).collect()
}

/// The nearest p/q (q = 1..=12, first q that fits) within 1e-6 of c, else c.
pub fn snap_coefficient(c: f64) -> f64 {
    for q in 1..=MAX_SNAP_DENOMINATOR {
        let q = f64::from(q);
        let p = (c * q).round();
        let fraction = p / q;
        if (c - fraction).abs() <= SNAP_DISTANCE {
            return fraction + 0.0; // no negative zero
        }
    }
    c
}

/// Snapped coefficients ([`snap_coefficient`]) unless snapping makes the population std of
/// the residual Σ_k c_k x_k over the trimmed tasks larger than 1.01 × the unsnapped one
/// + 1e-12 × scale, scale = median over the trimmed tasks of Σ_k |c_k x_k| (unsnapped c).
pub(super) fn snap_coefficients(
    coefficients: &[f64],
    terms: &[&[f64]],
    trimmed: &[usize],
) -> Vec<f64> {
    let snapped: Vec<f64> = coefficients.iter().map(|&c| snap_coefficient(c)).collect();
    if snapped == coefficients {
        return snapped;
    }
    let residual_std = |c: &[f64]| {
        let residuals: Vec<f64> = trimmed
            .iter()
            .map(|&task| residual_at(terms, c, task).0)
            .collect();
        let (_, sum_of_squares) = mean_and_sum_of_squares(&residuals);
        (sum_of_squares / residuals.len() as f64).sqrt()
    };
    let mut scales: Vec<f64> = trimmed
        .iter()
        .map(|&task| residual_at(terms, coefficients, task).1)
        .collect();
    let scale = median_in_place(&mut scales);
    let unsnapped_std = residual_std(coefficients);
    if residual_std(&snapped) > SNAP_STD_FACTOR * unsnapped_std + 1e-12 * scale {
        coefficients.to_vec()
    } else {
        snapped
    }
}

/// (Σ_k c_k x_k, Σ_k |c_k x_k|) at a task (position among the complete tasks), sums in
/// term order.
#[inline]
fn residual_at(terms: &[&[f64]], coefficients: &[f64], task: usize) -> (f64, f64) {
    let (mut sum, mut magnitude) = (0.0, 0.0);
    for (values, &c) in terms.iter().zip(coefficients) {
        let term = c * values[task];
        sum += term;
        magnitude += term.abs();
    }
    (sum, magnitude)
}

/// The part of `vector` orthogonal to the orthonormal `basis` (modified Gram–Schmidt, one
/// pass), normalized; None when its norm is below `relative` (1e-6) × the vector's norm (in
/// the span).
pub(super) fn outside_span(vector: &[f64], basis: &[Vec<f64>], relative: f64) -> Option<Vec<f64>> {
    let norm = vector.iter().map(|v| v * v).sum::<f64>().sqrt();
    let mut residual = vector.to_vec();
    for direction in basis {
        let dot: f64 = residual.iter().zip(direction).map(|(a, b)| a * b).sum();
        for (slot, b) in residual.iter_mut().zip(direction) {
            *slot -= dot * b;
        }
    }
    let remaining = residual.iter().map(|v| v * v).sum::<f64>().sqrt();
    let independent = remaining >= relative * norm && remaining > 0.0;
    if !independent {
        return None;
    }
    Some(residual.iter().map(|v| v / remaining).collect())
}

/// A law checked against every complete task.
#[derive(Debug, Clone, PartialEq)]
pub struct LawEvaluation {
    pub constant: f64,
    pub satisfied: Vec<bool>,
    pub support: f64,
    pub residual_std: f64,
    /// 3.5 × 1.4826 × MAD of the sample's residuals.
    pub band: f64,
    /// The band is at most 1e-9 × the typical magnitude of the terms (the median over the
    /// trimmed tasks of Σ_k |c_k x_ik|): the law holds exactly, up to rounding.
    pub exact: bool,
}

/// Over all complete tasks: residual_i = Σ_k c_k x_ik; constant = median of
/// the residual over the trimmed tasks, snapped to 0 when |constant| <= 1e-9 × the median
/// over the trimmed tasks of Σ_k |c_k x_ik|; task i satisfies when |residual_i - constant|
/// <= max(1e-9 × Σ_k |c_k x_ik|, 3.5 × 1.4826 × MAD), MAD = median |r - median(r)| over the
/// `sample` (positions among the complete tasks; the band is then a function of the sample
/// alone, like the coefficients and the constant); support = satisfying share over all
/// complete tasks; residual_std = population std of the residual over the satisfying tasks
/// (NaN when none).
pub fn evaluate_law(
    terms: &[&[f64]],
    coefficients: &[f64],
    trimmed: &[usize],
    sample: &[usize],
) -> LawEvaluation {
    let n = terms.first().map_or(0, |values| values.len());
    let (residuals, magnitudes): (Vec<f64>, Vec<f64>) = (0..n)
        .map(|task| residual_at(terms, coefficients, task))
        .unzip();
    let mut trimmed_residuals: Vec<f64> = trimmed.iter().map(|&task| residuals[task]).collect();
    let mut trimmed_magnitudes: Vec<f64> = trimmed.iter().map(|&task| magnitudes[task]).collect();
    let mut constant = median_in_place(&mut trimmed_residuals);
    let typical = median_in_place(&mut trimmed_magnitudes);
    if constant.abs() <= EXACT_RELATIVE * typical {
        constant = 0.0;
    }
    let mut scratch: Vec<f64> = sample.iter().map(|&task| residuals[task]).collect();
    let sampled = scratch.clone();
    let center = median_in_place(&mut scratch);
    for (slot, r) in scratch.iter_mut().zip(&sampled) {
        *slot = (r - center).abs();
    }
    let mad = median_in_place(&mut scratch);
    let band = BAND_MADS * MAD_TO_SIGMA * mad;
    let satisfied: Vec<bool> = residuals
        .iter()
        .zip(&magnitudes)
        .map(|(r, magnitude)| (r - constant).abs() <= (EXACT_RELATIVE * magnitude).max(band))
        .collect();
    let holding: Vec<f64> = residuals
        .iter()
        .zip(&satisfied)
        .filter(|(_, &ok)| ok)
        .map(|(&r, _)| r)
        .collect();
    let residual_std = if holding.is_empty() {
        f64::NAN
    } else {
        let (_, sum_of_squares) = mean_and_sum_of_squares(&holding);
        (sum_of_squares / holding.len() as f64).sqrt()
    };
    LawEvaluation {
        constant,
        support: if n == 0 {
            0.0
        } else {
            holding.len() as f64 / n as f64
        },
        satisfied,
        residual_std,
        band,
        exact: band <= EXACT_RELATIVE * typical,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapping() {
        assert_eq!(snap_coefficient(-0.9999999999), -1.0);
        assert_eq!(snap_coefficient(0.3333334), 1.0 / 3.0);
        assert_eq!(snap_coefficient(-0.4166666), -5.0 / 12.0);
        assert_eq!(snap_coefficient(0.5000002), 0.5);
        assert_eq!(snap_coefficient(0.123456), 0.123456);
        assert_eq!(snap_coefficient(-1e-7).to_bits(), 0.0f64.to_bits());
        assert_eq!(normalize(&[-2.0, 4.0, 1.0]), vec![0.5, -1.0, -0.25]);
    }
}
