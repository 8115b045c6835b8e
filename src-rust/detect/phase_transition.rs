//! Phase transitions (SPEC §6, §12): did a metric's level change between the first and
//! second half of the tasks, and where is the best single change point?
//!
//! # The significance gate on autocorrelated metrics
//!
//! The halves are compared by Welch's test with an AR(1) long-run variance (the parametric
//! HAC estimator, Andrews 1991 §5 and the prewhitening model of Andrews & Monahan 1992):
//! ρ is the lag-1 autocorrelation of the values demeaned within the pieces cut at the
//! halves' split (the two means the test compares) and at the best change point (so that a
//! step inside a half is not read as persistence), bias-corrected by `J (1 + 3ρ)/n` for J
//! pieces (Kendall 1954), f = (1 + ρ)/(1 - ρ) with ρ clipped to [0, 0.97]; each half of m
//! values counts as m/f effective values (Bretherton et al. 1999) with the unbiased
//! variance Σe²/(m - f) (Bayley & Hammersley 1946; [`welch_t_test_inflated`]). On
//! uncorrelated residuals (ρ <= 0) f = 1: Welch's test exactly. A metric whose residuals
//! stay persistent (bias-corrected ρ >= [`PERSISTENT_RHO`], a random walk or φ → 1) drifts:
//! the mean of a half is not a level, and it is not detected.
//!
//! Measured on AR(1) series (600–1,000 per cell, share detected at p < 0.01): φ = 0.5
//! 1.5% / 0.8% at n = 50 / 300; φ = 0.9 3.2% / 1.3% / 1.7% at n = 50 / 300 / 1000; random
//! walks and φ = 0.99 4% at n = 50, <= 0.7% from n = 300. The alternatives measured: the
//! same AR(1) factor with the raw variances and df / f (the previous gate) 3.5% at φ = 0.9,
//! n = 300; Newey–West (Bartlett) and quadratic-spectral kernels with Andrews' (1991)
//! automatic AR(1) bandwidth 8% / 6.5% there and 20% at n = 50 (kernel HAC estimators are
//! known to be oversized on short, persistent series).

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
        /// ([`residual_rho`], [`welch_t_test_inflated`]); Welch's own on uncorrelated residuals.
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
/// - `p_value`: Welch's test of the halves with their AR(1) long-run variances
///   ([`residual_rho`], [`welch_t_test_inflated`]; Welch's own when the residuals are
///   not positively autocorrelated);
/// - `change_index`: the k in 1..count-1 maximising `S_k·S_k·count / (k·(count-k))` with
///   S_k the sequential prefix sum of `values - mean_all` (first k on ties);
/// - `detected` when shift > sensitivity, the metric does not drift (bias-corrected ρ of
///   the residuals < [`PERSISTENT_RHO`]) and, if both halves have >= 4 values,
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
        return untested_row(count);
    }
    let half = count / 2;
    let (first, second) = values.split_at(half);
    let mean_all = sequential_sum(values) / count as f64;
    let change_index = best_change_index(values, mean_all);
    let rho = residual_rho(values, half, change_index);
    let p_value = welch_t_test_inflated(first, second, autocorrelation_inflation(rho));
    phase_row(
        Halves {
            count,
            first_avg: sequential_sum(first) / first.len() as f64,
            second_avg: sequential_sum(second) / second.len() as f64,
            mean_all,
            largest: max_abs(values),
        },
        change_index,
        rho,
        p_value,
        sensitivity,
    )
}

/// The row of a metric with fewer than 2 values: its count, NaN statistics, change_index
/// -1, not detected.
pub(crate) fn untested_row(count: usize) -> PhaseRow {
    PhaseRow {
        count: count as i64,
        first_avg: f64::NAN,
        second_avg: f64::NAN,
        mean_all: f64::NAN,
        shift: f64::NAN,
        p_value: f64::NAN,
        change_index: -1,
        delta: f64::NAN,
        detected: false,
    }
}

/// What a phase-transition row reads of a metric's present values, split at h = count / 2
/// (count >= 2): the means of the halves and of all values, and max|x|.
pub(crate) struct Halves {
    pub count: usize,
    pub first_avg: f64,
    pub second_avg: f64,
    pub mean_all: f64,
    pub largest: f64,
}

/// The row of a metric (count >= 2) from its halves, best change point, bias-corrected
/// residual autocorrelation `rho` ([`residual_rho`]) and the gate's `p_value`; the one
/// decision of the kernel and of the mergeable state's table (`crate::state::tables`).
pub(crate) fn phase_row(
    halves: Halves,
    change_index: usize,
    rho: f64,
    p_value: f64,
    sensitivity: f64,
) -> PhaseRow {
    let Halves {
        count,
        first_avg,
        second_avg,
        mean_all,
        largest,
    } = halves;
    let delta = second_avg - first_avg;
    let shift = if mean_all.abs() <= ZERO_MEAN_RELATIVE * largest {
        f64::NAN
    } else {
        delta.abs() / mean_all.abs()
    };
    let half = count / 2;
    let tested = half >= MIN_TESTED_HALF && count - half >= MIN_TESTED_HALF;
    // A ρ that is not a number (squared residuals beyond the largest float) says nothing
    // either way: as the NumPy twin reads `rho < PERSISTENT_RHO`, it is not detected.
    let drifting = rho.is_nan() || rho >= PERSISTENT_RHO;
    PhaseRow {
        count: count as i64,
        first_avg,
        second_avg,
        mean_all,
        shift,
        p_value,
        change_index: change_index as i64,
        delta,
        detected: shift > sensitivity && !drifting && (!tested || p_value < SIGNIFICANCE),
    }
}

/// Residuals at least this autocorrelated: a drifting metric (random walk, φ → 1), whose
/// halves' means are not levels. SPEC §12 asks for validity on AR(1) up to φ = 0.9; beyond,
/// the AR(1) long-run variance of a few hundred values is too uncertain to gate on.
pub const PERSISTENT_RHO: f64 = 0.9;
/// Largest lag-1 autocorrelation used (Andrews & Monahan 1992 cap the AR(1) coefficient of
/// their prewhitening there).
pub(crate) const MAX_RHO: f64 = 0.97;

/// The lag-1 autocorrelation of the values demeaned within the pieces cut at the halves'
/// split `half` and at the best change point `change` (one cut when they coincide; both in
/// 1..n): `ρ = Σ e_t e_{t+1} / Σ e_t²` over every adjacent pair of the residuals in order
/// (sequential sums; piece means = sequential sum / length), bias-corrected to
/// `ρ + J(1 + 3ρ)/n` for J pieces (Kendall 1954, once per fitted mean), not clipped. 0 when
/// the residuals are all 0.
pub fn residual_rho(values: &[f64], half: usize, change: usize) -> f64 {
    let mut bounds = vec![0, half.min(change), half.max(change), values.len()];
    bounds.dedup();
    let mut residuals = Vec::with_capacity(values.len());
    for piece in bounds.windows(2) {
        let part = &values[piece[0]..piece[1]];
        let mean = sequential_sum(part) / part.len() as f64;
        residuals.extend(part.iter().map(|v| v - mean));
    }
    let mut energy = 0.0;
    for e in &residuals {
        energy += e * e;
    }
    if energy <= 0.0 {
        return 0.0;
    }
    let mut products = 0.0;
    for pair in residuals.windows(2) {
        products += pair[0] * pair[1];
    }
    let rho = products / energy;
    let pieces = (bounds.len() - 1) as f64;
    rho + pieces * (1.0 + 3.0 * rho) / residuals.len() as f64
}

/// The AR(1) long-run variance over the variance (Andrews 1991 §5), `(1 + ρ)/(1 - ρ)` with
/// ρ clipped to [0, 0.97]: 1 for residuals that are not positively autocorrelated.
pub fn autocorrelation_inflation(rho: f64) -> f64 {
    let rho = rho.clamp(0.0, MAX_RHO);
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
        let mut values = vec![10.0; 40];
        values.extend(vec![20.0; 40]);
        // small wiggle so the halves have variance
        for (i, value) in values.iter_mut().enumerate() {
            *value += if i % 2 == 0 { 0.1 } else { -0.1 };
        }
        let r = row(&values, 0.1);
        assert_eq!(r.count, 80);
        assert!((r.first_avg - 10.0).abs() < 1e-12);
        assert!((r.second_avg - 20.0).abs() < 1e-12);
        assert!((r.mean_all - 15.0).abs() < 1e-12);
        assert!((r.shift - 10.0 / 15.0).abs() < 1e-12);
        // The halves' residuals alternate (ρ < 0): Welch's test itself.
        assert!(residual_rho(&values, 40, 40) < 0.0);
        assert_eq!(
            r.p_value,
            crate::stats::welch_t_test(&values[..40], &values[40..])
        );
        assert!(r.p_value < 1e-6);
        assert_eq!(r.change_index, 40);
        assert!((r.delta - 10.0).abs() < 1e-12);
        assert!(r.detected);
    }

    #[test]
    fn the_inflated_test_by_hand() {
        // a = 1, 2, 3, 4, 5, 6 (mean 3.5, ss 17.5), b = 4, 6, 8, 10, 12, 14 (mean 9, ss 70),
        // f = 2: 3 effective values each, w_a = 17.5 / 4 / 3, w_b = 70 / 4 / 3.
        let a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let b = [4.0, 6.0, 8.0, 10.0, 12.0, 14.0];
        let (weight_a, weight_b) = (17.5 / 4.0 / 3.0, 70.0 / 4.0 / 3.0);
        let total: f64 = weight_a + weight_b;
        let t = -5.5 / total.sqrt();
        let df = 1.0 / ((weight_a / total).powi(2) / 2.0 + (weight_b / total).powi(2) / 2.0);
        let expected = crate::stats::student_t_two_sided_p(t, df);
        assert!((welch_t_test_inflated(&a, &b, 2.0) - expected).abs() < 1e-15);
        // f = 1 is Welch's test; at most one effective value: nothing testable.
        assert_eq!(
            welch_t_test_inflated(&a, &b, 1.0),
            crate::stats::welch_t_test(&a, &b)
        );
        assert_eq!(welch_t_test_inflated(&a, &b, 6.0), 1.0);
    }

    #[test]
    fn the_gate_is_welch_on_uncorrelated_halves_and_wider_on_ar1() {
        // Alternating residuals: ρ < 0 → inflation 1 → Welch's test itself.
        let values: Vec<f64> = (0..40)
            .map(|i| if i % 2 == 0 { 1.0 } else { -1.0 } + if i < 20 { 0.0 } else { 0.5 })
            .collect();
        let (first, second) = values.split_at(20);
        assert_eq!(
            autocorrelation_inflation(residual_rho(&values, 20, 20)),
            1.0
        );
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
        assert!(
            (autocorrelation_inflation(residual_rho(&ramp, 50, 50)) - 1.97 / 0.03).abs() < 1e-9
        );
    }

    #[test]
    fn a_drifting_metric_is_not_detected() {
        // A random walk around 100: its halves' means differ and Welch's p is tiny, but the
        // residuals stay persistent (ρ >= PERSISTENT_RHO): a drift, not a phase transition.
        let steps = noise(3, 400);
        let mut level = 100.0;
        let walk: Vec<f64> = steps
            .iter()
            .map(|step| {
                level += step;
                level
            })
            .collect();
        let r = row(&walk, 0.0);
        assert!(residual_rho(&walk, 200, r.change_index as usize) >= PERSISTENT_RHO);
        assert!(crate::stats::welch_t_test(&walk[..200], &walk[200..]) < 1e-6);
        assert!(!r.detected, "{r:?}");
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
