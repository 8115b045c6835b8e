//! Phase transitions (SPEC §6): did a metric's level change between the first and second
//! half of the tasks, and where is the best single change point?

use rayon::prelude::*;

use super::{column_length, max_abs, present_values, require_finite_non_negative};
use crate::error::CoreResult;
use crate::stats::{sequential_sum, welch_t_test};

/// Fields of a [`phase_transition_stats`] row, in order.
pub const PHASE_FIELDS: [&str; 9] = [
    "count",
    "first_avg",
    "second_avg",
    "mean_all",
    "shift",
    "p_value",
    "change_index",
    "delta",
    "detected",
];

/// Below this many values per half the shift is not tested for significance.
const MIN_TESTED_HALF: usize = 4;
/// Significance level a tested shift must reach.
const SIGNIFICANCE: f64 = 0.01;
/// |mean_all| at or below this times max|x| counts as zero (no relative shift).
const ZERO_MEAN_RELATIVE: f64 = 1e-12;

/// One row per metric: `[count, first_avg, second_avg, mean_all, shift, p_value,
/// change_index, delta, detected]` (kernels.md):
/// - over the metric's present values in recording order, split at h = count / 2;
/// - `shift = |second_avg - first_avg| / |mean_all|`, NaN when |mean_all| <= 1e-12·max|x|;
/// - `p_value`: Welch's test of the halves ([`welch_t_test`]);
/// - `change_index`: the k in 1..count-1 maximising `S_k·S_k·count / (k·(count-k))` with
///   S_k the sequential prefix sum of `values - mean_all` (first k on ties);
/// - `detected` = 1 when shift > sensitivity and, if both halves have >= 4 values,
///   p_value < 0.01.
///
/// A metric with fewer than 2 values gives `[count, NaN × 7, 0]`. `sensitivity` must be
/// finite and >= 0.
pub fn phase_transition_stats(columns: &[&[f64]], sensitivity: f64) -> CoreResult<Vec<[f64; 9]>> {
    require_finite_non_negative(sensitivity, "sensitivity")?;
    column_length(columns)?;
    Ok(columns
        .par_iter()
        .map(|column| metric_row(&present_values(column), sensitivity))
        .collect())
}

fn metric_row(values: &[f64], sensitivity: f64) -> [f64; 9] {
    let count = values.len();
    if count < 2 {
        let mut row = [f64::NAN; 9];
        row[0] = count as f64;
        row[8] = 0.0;
        return row;
    }
    let half = count / 2;
    let (first, second) = values.split_at(half);
    let first_avg = sequential_sum(first) / first.len() as f64;
    let second_avg = sequential_sum(second) / second.len() as f64;
    let mean_all = sequential_sum(values) / count as f64;
    let delta = second_avg - first_avg;
    let shift = if mean_all.abs() <= ZERO_MEAN_RELATIVE * max_abs(values) {
        f64::NAN
    } else {
        delta.abs() / mean_all.abs()
    };
    let p_value = welch_t_test(first, second);
    let change_index = best_change_index(values, mean_all);
    let tested = first.len() >= MIN_TESTED_HALF && second.len() >= MIN_TESTED_HALF;
    let detected = shift > sensitivity && (!tested || p_value < SIGNIFICANCE);
    [
        count as f64,
        first_avg,
        second_avg,
        mean_all,
        shift,
        p_value,
        change_index as f64,
        delta,
        if detected { 1.0 } else { 0.0 },
    ]
}

/// The k in 1..n-1 maximising the between-segment sum-of-squares reduction
/// `S_k * S_k * n / (k * (n - k))` (first k on ties; 1 when no score is comparable).
fn best_change_index(values: &[f64], mean_all: f64) -> usize {
    let n = values.len();
    let n_f = n as f64;
    let mut prefix = 0.0;
    let mut best_k = 1;
    let mut best_score = f64::NEG_INFINITY;
    for (index, &value) in values[..n - 1].iter().enumerate() {
        prefix += value - mean_all;
        let k = (index + 1) as f64;
        let score = prefix * prefix * n_f / (k * (n_f - k));
        if score > best_score {
            best_score = score;
            best_k = index + 1;
        }
    }
    best_k
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::CoreError;
    use crate::rng::SplitMix64;

    fn row(values: &[f64], sensitivity: f64) -> [f64; 9] {
        phase_transition_stats(&[values], sensitivity).unwrap()[0]
    }

    /// Approximately standard normal noise (sum of 12 uniforms - 6), deterministic.
    fn noise(seed: u64, n: usize) -> Vec<f64> {
        let mut rng = SplitMix64::new(seed);
        (0..n)
            .map(|_| (0..12).map(|_| rng.next_f64()).sum::<f64>() - 6.0)
            .collect()
    }

    #[test]
    fn planted_step_is_found_with_its_change_index() {
        let mut values = vec![10.0; 30];
        values.extend(vec![20.0; 50]);
        // small wiggle so the halves have variance
        for (i, value) in values.iter_mut().enumerate() {
            *value += if i % 2 == 0 { 0.1 } else { -0.1 };
        }
        let r = row(&values, 0.1);
        assert_eq!(r[0], 80.0);
        assert!((r[1] - (30.0 * 10.0 + 10.0 * 20.0) / 40.0).abs() < 1e-12);
        assert!((r[2] - 20.0).abs() < 1e-12);
        assert!((r[3] - (30.0 * 10.0 + 50.0 * 20.0) / 80.0).abs() < 1e-12);
        assert!((r[4] - 7.5 / 16.25).abs() < 1e-12);
        assert!(r[5] < 1e-6);
        assert_eq!(r[6], 30.0);
        assert!((r[7] - 7.5).abs() < 1e-12);
        assert_eq!(r[8], 1.0);
    }

    #[test]
    fn hand_worked_small_case() {
        // values 1, 1, 3, 3: halves [1,1] and [3,3], both constant with different means.
        let r = row(&[1.0, 1.0, 3.0, 3.0], 0.5);
        assert_eq!(r[..4], [4.0, 1.0, 3.0, 2.0]);
        assert_eq!(r[4], 1.0); // |3 - 1| / 2
        assert_eq!(r[5], 0.0); // zero variance, means differ
        assert_eq!(r[6], 2.0);
        assert_eq!(r[7], 2.0);
        assert_eq!(r[8], 1.0); // halves have < 4 values: no significance gate
        assert_eq!(row(&[1.0, 1.0, 3.0, 3.0], 1.0)[8], 0.0); // shift must exceed sensitivity
    }

    #[test]
    fn no_shift_not_detected() {
        let values: Vec<f64> = noise(7, 200).iter().map(|v| 100.0 + v).collect();
        let r = row(&values, 0.1);
        assert!(r[4] < 0.1);
        assert_eq!(r[8], 0.0);
    }

    #[test]
    fn zero_mean_noise_is_not_reported_unless_significant() {
        // Around zero the relative shift is huge, but the halves do not differ.
        let mut checked = 0;
        for seed in 0..20 {
            let values = noise(seed, 100);
            let r = row(&values, 0.1);
            if r[4] > 0.1 && r[5] >= 0.01 {
                assert_eq!(r[8], 0.0, "seed {seed}: {r:?}");
                checked += 1;
            }
            if r[5] >= 0.01 {
                assert_eq!(r[8], 0.0);
            }
        }
        assert!(
            checked >= 10,
            "only {checked} noisy cases exercised the gate"
        );
    }

    #[test]
    fn zero_mean_gives_nan_shift() {
        let r = row(&[-1.0, 1.0, -1.0, 1.0], 0.1);
        assert!(r[4].is_nan());
        assert_eq!(r[8], 0.0);
        let zeros = row(&[0.0; 10], 0.1);
        assert!(zeros[4].is_nan());
        assert_eq!(zeros[5], 1.0);
        assert_eq!(zeros[6], 1.0);
        assert_eq!(zeros[8], 0.0);
    }

    #[test]
    fn change_index_ties_take_the_first_k() {
        // S_k = -0.5, 0, 0.5: k = 1 and k = 3 both score 1/3; the first wins.
        let r = row(&[0.0, 1.0, 1.0, 0.0], 0.1);
        assert_eq!(r[6], 1.0);
    }

    #[test]
    fn absent_values_are_skipped_and_short_metrics_are_nan() {
        let nan = f64::NAN;
        let column = [nan, 1.0, nan, 1.0, 3.0, nan, 3.0];
        let r = row(&column, 0.5);
        assert_eq!(r[..4], [4.0, 1.0, 3.0, 2.0]);
        assert_eq!(r[6], 2.0);
        for values in [&[][..], &[5.0][..], &[nan, nan][..]] {
            let r = row(values, 0.1);
            assert_eq!(r[0], values.iter().filter(|v| !v.is_nan()).count() as f64);
            assert!(r[1..8].iter().all(|v| v.is_nan()));
            assert_eq!(r[8], 0.0);
        }
        // Two values: halves of one value each → p NaN, shift tested without the gate.
        let r = row(&[1.0, 2.0], 0.1);
        assert!(r[5].is_nan());
        assert_eq!(r[6], 1.0);
        assert_eq!(r[8], 1.0);
    }

    #[test]
    fn rejects_bad_sensitivity_and_ragged_columns() {
        for bad in [-0.1, f64::NAN, f64::INFINITY] {
            match phase_transition_stats(&[&[1.0]], bad) {
                Err(CoreError::InvalidArgument { argument, .. }) => {
                    assert_eq!(argument, "sensitivity")
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        assert!(phase_transition_stats(&[&[1.0], &[]], 0.1).is_err());
        assert!(phase_transition_stats(&[], 0.1).unwrap().is_empty());
    }
}
