//! Phase transitions (SPEC §6): did a metric's level change between the first and second
//! half of the tasks, and where is the best single change point?

use rayon::prelude::*;

use super::shared::columns::{column_length, max_abs, present_values};
use super::{Detector, Table};
use crate::args::{Budget, DefaultValue, ParamSpec, Params};
use crate::error::CoreResult;
use crate::stats::{sequential_sum, welch_t_test_inflated};

crate::record! {
    /// One metric's phase-transition statistics (see [`phase_transition_stats`]).
    pub struct PhaseRow {
        /// Present values of the metric.
        count: i64,
        first_avg: f64,
        second_avg: f64,
        mean_all: f64,
        /// |second_avg - first_avg| / |mean_all| (NaN when the mean is ~0).
        shift: f64,
        /// Welch's test of the halves with their AR(1) long-run variances
        /// ([`autocorrelation_inflation`]); Welch's own on uncorrelated halves.
        p_value: f64,
        /// Position, among the present values, of the first value after the best change
        /// point (-1 with fewer than 2 values).
        change_index: i64,
        /// second_avg - first_avg, in the metric's units.
        delta: f64,
        detected: bool,
    }
}

/// The registry entry.
pub const DETECTOR: Detector = Detector {
    name: "phase_transition",
    kind: "phase transition",
    fields: PhaseRow::FIELDS,
    params: &[ParamSpec {
        name: "sensitivity",
        default: DefaultValue::Float(0.5),
    }],
    run,
};

fn run(columns: &[&[f64]], params: &Params, budget: &Budget) -> CoreResult<Table> {
    let sensitivity = params.finite("sensitivity", 0.0, true)?;
    let rows = phase_transition_stats(columns, sensitivity, budget)?;
    Ok(PhaseRow::table(&rows))
}

/// Below this many values per half the shift is not tested for significance.
const MIN_TESTED_HALF: usize = 4;
/// Significance level a tested shift must reach.
const SIGNIFICANCE: f64 = 0.01;
/// |mean_all| at or below this times max|x| counts as zero (no relative shift).
const ZERO_MEAN_RELATIVE: f64 = 1e-12;
const STAGE: &str = "phase_transition";

/// One row per metric:
/// - over the metric's present values in recording order, split at h = count / 2;
/// - `shift = |second_avg - first_avg| / |mean_all|`, NaN when |mean_all| <= 1e-12·max|x|;
/// - `p_value`: Welch's test of the halves with both variances and the df scaled by
///   [`autocorrelation_inflation`] ([`welch_t_test_inflated`]; Welch's own when the halves'
///   residuals are not positively autocorrelated);
/// - `change_index`: the k in 1..count-1 maximising `S_k·S_k·count / (k·(count-k))` with
///   S_k the sequential prefix sum of `values - mean_all` (first k on ties);
/// - `detected` when shift > sensitivity and, if both halves have >= 4 values,
///   p_value < 0.01.
///
/// A metric with fewer than 2 values gives `count`, NaN statistics, change_index -1 and
/// detected false. `sensitivity` must be finite and >= 0 (checked by the caller).
pub fn phase_transition_stats(
    columns: &[&[f64]],
    sensitivity: f64,
    budget: &Budget,
) -> CoreResult<Vec<PhaseRow>> {
    column_length(columns)?;
    columns
        .par_iter()
        .map(|column| {
            budget.check(STAGE)?;
            Ok(metric_row(&present_values(column), sensitivity))
        })
        .collect()
}

fn metric_row(values: &[f64], sensitivity: f64) -> PhaseRow {
    let count = values.len();
    if count < 2 {
        return PhaseRow {
            count: count as i64,
            first_avg: f64::NAN,
            second_avg: f64::NAN,
            mean_all: f64::NAN,
            shift: f64::NAN,
            p_value: f64::NAN,
            change_index: -1,
            delta: f64::NAN,
            detected: false,
        };
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
    let change_index = best_change_index(values, mean_all);
    let inflation = autocorrelation_inflation(values, change_index);
    let p_value = welch_t_test_inflated(first, second, inflation);
    let tested = first.len() >= MIN_TESTED_HALF && second.len() >= MIN_TESTED_HALF;
    PhaseRow {
        count: count as i64,
        first_avg,
        second_avg,
        mean_all,
        shift,
        p_value,
        change_index: change_index as i64,
        delta,
        detected: shift > sensitivity && (!tested || p_value < SIGNIFICANCE),
    }
}

/// Largest lag-1 autocorrelation used (Andrews & Monahan 1992 cap the AR(1) coefficient of
/// their prewhitening there).
const MAX_RHO: f64 = 0.97;

/// The AR(1) long-run variance over the variance, `(1 + ρ)/(1 - ρ)` (the long-run variance
/// of an AR(1) series over its variance; Newey & West 1987, Andrews 1991), of the values
/// demeaned on each side of the best change point k (so that a step is not read as
/// persistence): `ρ = Σ e_t e_{t+1} / Σ e_t²` over every adjacent pair of the residuals in
/// order (sequential sums; side means = sequential sum / length), bias-corrected to
/// `ρ + 2(1 + 3ρ)/n` (Kendall 1954, once per fitted mean) and clipped to [0, 0.97]. 1 when
/// the residuals are all 0, so halves without positive autocorrelation keep Welch's test
/// exactly.
pub fn autocorrelation_inflation(values: &[f64], k: usize) -> f64 {
    let (before, after) = values.split_at(k);
    let before_avg = sequential_sum(before) / before.len() as f64;
    let after_avg = sequential_sum(after) / after.len() as f64;
    let residuals: Vec<f64> = before
        .iter()
        .map(|v| v - before_avg)
        .chain(after.iter().map(|v| v - after_avg))
        .collect();
    let mut energy = 0.0;
    for e in &residuals {
        energy += e * e;
    }
    if energy <= 0.0 {
        return 1.0;
    }
    let mut products = 0.0;
    for pair in residuals.windows(2) {
        products += pair[0] * pair[1];
    }
    let rho = products / energy;
    let rho = (rho + 2.0 * (1.0 + 3.0 * rho) / residuals.len() as f64).clamp(0.0, MAX_RHO);
    (1.0 + rho) / (1.0 - rho)
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

    fn row(values: &[f64], sensitivity: f64) -> PhaseRow {
        phase_transition_stats(&[values], sensitivity, &Budget::unlimited()).unwrap()[0]
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
        assert_eq!(r.count, 80);
        assert!((r.first_avg - (30.0 * 10.0 + 10.0 * 20.0) / 40.0).abs() < 1e-12);
        assert!((r.second_avg - 20.0).abs() < 1e-12);
        assert!((r.mean_all - (30.0 * 10.0 + 50.0 * 20.0) / 80.0).abs() < 1e-12);
        assert!((r.shift - 7.5 / 16.25).abs() < 1e-12);
        // Residuals around the step at 30 alternate: Welch's test itself.
        assert_eq!(
            r.p_value,
            crate::stats::welch_t_test(&values[..40], &values[40..])
        );
        assert!(r.p_value < 1e-6);
        assert_eq!(r.change_index, 30);
        assert!((r.delta - 7.5).abs() < 1e-12);
        assert!(r.detected);
    }

    #[test]
    fn the_gate_is_welch_on_uncorrelated_halves_and_wider_on_ar1() {
        // Alternating residuals: ρ < 0 → inflation 1 → Welch's test itself.
        let values: Vec<f64> = (0..40)
            .map(|i| if i % 2 == 0 { 1.0 } else { -1.0 } + if i < 20 { 0.0 } else { 0.5 })
            .collect();
        let (first, second) = values.split_at(20);
        assert_eq!(autocorrelation_inflation(&values, 20), 1.0);
        assert_eq!(
            row(&values, 0.0).p_value,
            crate::stats::welch_t_test(first, second)
        );
        // AR(1) φ = 0.9 around 100: Welch's p is tiny in most series, the gate's is not.
        let mut welch_rejections = 0;
        let mut gate_rejections = 0;
        for seed in 0..100 {
            let e = noise(seed, 500);
            let mut x = 0.0;
            let values: Vec<f64> = e
                .iter()
                .map(|e| {
                    x = 0.9 * x + e;
                    100.0 + x
                })
                .skip(300)
                .collect();
            let (first, second) = values.split_at(100);
            welch_rejections += usize::from(crate::stats::welch_t_test(first, second) < 0.01);
            gate_rejections += usize::from(row(&values, 0.0).p_value < 0.01);
        }
        assert!(welch_rejections > 30, "{welch_rejections}");
        assert!(gate_rejections <= 5, "{gate_rejections}");
        // ρ = 0.97 at most: the inflation is capped at 1.97 / 0.03.
        let ramp: Vec<f64> = (0..100).map(f64::from).collect();
        let inflation = autocorrelation_inflation(&ramp, 50);
        assert!((inflation - 1.97 / 0.03).abs() < 1e-9);
    }

    #[test]
    fn hand_worked_small_case() {
        // values 1, 1, 3, 3: halves [1,1] and [3,3], both constant with different means.
        let r = row(&[1.0, 1.0, 3.0, 3.0], 0.5);
        assert_eq!(
            (r.count, r.first_avg, r.second_avg, r.mean_all),
            (4, 1.0, 3.0, 2.0)
        );
        assert_eq!(r.shift, 1.0); // |3 - 1| / 2
        assert_eq!(r.p_value, 0.0); // zero variance, means differ
        assert_eq!(r.change_index, 2);
        assert_eq!(r.delta, 2.0);
        assert!(r.detected); // halves have < 4 values: no significance gate
        assert!(!row(&[1.0, 1.0, 3.0, 3.0], 1.0).detected); // shift must exceed sensitivity
    }

    #[test]
    fn no_shift_not_detected() {
        let values: Vec<f64> = noise(7, 200).iter().map(|v| 100.0 + v).collect();
        let r = row(&values, 0.1);
        assert!(r.shift < 0.1);
        assert!(!r.detected);
    }

    #[test]
    fn zero_mean_noise_is_not_reported_unless_significant() {
        // Around zero the relative shift is huge, but the halves do not differ.
        let mut checked = 0;
        for seed in 0..20 {
            let values = noise(seed, 100);
            let r = row(&values, 0.1);
            if r.shift > 0.1 && r.p_value >= 0.01 {
                assert!(!r.detected, "seed {seed}: {r:?}");
                checked += 1;
            }
            if r.p_value >= 0.01 {
                assert!(!r.detected);
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
        assert!(r.shift.is_nan());
        assert!(!r.detected);
        let zeros = row(&[0.0; 10], 0.1);
        assert!(zeros.shift.is_nan());
        assert_eq!(zeros.p_value, 1.0);
        assert_eq!(zeros.change_index, 1);
        assert!(!zeros.detected);
    }

    #[test]
    fn change_index_ties_take_the_first_k() {
        // S_k = -0.5, 0, 0.5: k = 1 and k = 3 both score 1/3; the first wins.
        let r = row(&[0.0, 1.0, 1.0, 0.0], 0.1);
        assert_eq!(r.change_index, 1);
    }

    #[test]
    fn absent_values_are_skipped_and_short_metrics_are_nan() {
        let nan = f64::NAN;
        let column = [nan, 1.0, nan, 1.0, 3.0, nan, 3.0];
        let r = row(&column, 0.5);
        assert_eq!(
            (r.count, r.first_avg, r.second_avg, r.mean_all),
            (4, 1.0, 3.0, 2.0)
        );
        assert_eq!(r.change_index, 2);
        for values in [&[][..], &[5.0][..], &[nan, nan][..]] {
            let r = row(values, 0.1);
            assert_eq!(
                r.count,
                values.iter().filter(|v| !v.is_nan()).count() as i64
            );
            assert!([
                r.first_avg,
                r.second_avg,
                r.mean_all,
                r.shift,
                r.p_value,
                r.delta
            ]
            .iter()
            .all(|v| v.is_nan()));
            assert_eq!(r.change_index, -1);
            assert!(!r.detected);
        }
        // Two values: halves of one value each → p NaN, shift tested without the gate.
        let r = row(&[1.0, 2.0], 0.1);
        assert!(r.p_value.is_nan());
        assert_eq!(r.change_index, 1);
        assert!(r.detected);
    }

    #[test]
    fn rejects_bad_sensitivity_and_ragged_columns() {
        for bad in [-0.1, f64::NAN, f64::INFINITY] {
            let params = Params::new().with("sensitivity", bad);
            match run(&[&[1.0]], &params, &Budget::unlimited()) {
                Err(CoreError::InvalidArgument { argument, .. }) => {
                    assert_eq!(argument, "sensitivity")
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        let budget = Budget::unlimited();
        assert!(phase_transition_stats(&[&[1.0], &[]], 0.1, &budget).is_err());
        assert!(phase_transition_stats(&[], 0.1, &budget)
            .unwrap()
            .is_empty());
    }
}
