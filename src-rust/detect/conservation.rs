//! Single-metric conservation (SPEC §6): a metric whose value hardly varies across tasks,
//! unless it is an id or a counter.

use rayon::prelude::*;

use super::{column_length, max_abs, present_values, require_finite_non_negative};
use crate::error::CoreResult;
use crate::stats::{mean_and_sum_of_squares, sequential_sum};

/// Fields of a [`conservation_stats`] row, in order.
pub const CONSERVATION_FIELDS: [&str; 7] = [
    "count",
    "total",
    "mean",
    "std",
    "cv",
    "is_counter",
    "detected",
];

/// Fewer values than this are never judged to be a counter.
const MIN_COUNTER_VALUES: usize = 8;
/// A counter takes at least this many distinct values.
const MIN_COUNTER_DISTINCT: usize = 3;
/// |mean| at or below this times max|x| counts as zero.
const ZERO_MEAN_RELATIVE: f64 = 1e-12;

/// One row per metric: `[count, total, mean, std, cv, is_counter, detected]` (kernels.md):
/// - over the metric's present values; `total` = sequential sum, `mean` = total / count
///   (exactly the value when all values are equal), `std` = population std (two-pass,
///   centered; 0 when all values are equal), `cv = std / |mean|` (NaN when mean == 0);
/// - `is_counter` = 1 when count >= 8 and the values never decrease (or never increase) in
///   recording order and take >= 3 distinct values;
/// - `detected` = 1 when count >= 2, |mean| > 1e-12·max|x|, cv < tolerance, not a counter.
///
/// No values: `[0, 0, NaN, NaN, NaN, 0, 0]`. `tolerance` must be finite and >= 0.
pub fn conservation_stats(columns: &[&[f64]], tolerance: f64) -> CoreResult<Vec<[f64; 7]>> {
    require_finite_non_negative(tolerance, "tolerance")?;
    column_length(columns)?;
    Ok(columns
        .par_iter()
        .map(|column| metric_row(&present_values(column), tolerance))
        .collect())
}

fn metric_row(values: &[f64], tolerance: f64) -> [f64; 7] {
    let count = values.len();
    let total = sequential_sum(values);
    if count == 0 {
        return [0.0, total, f64::NAN, f64::NAN, f64::NAN, 0.0, 0.0];
    }
    let (mean, sum_of_squares) = mean_and_sum_of_squares(values);
    let std = (sum_of_squares / count as f64).sqrt();
    let cv = if mean == 0.0 {
        f64::NAN
    } else {
        std / mean.abs()
    };
    let counter = is_counter(values);
    let detected = count >= 2
        && mean.abs() > ZERO_MEAN_RELATIVE * max_abs(values)
        && cv < tolerance
        && !counter;
    [
        count as f64,
        total,
        mean,
        std,
        cv,
        if counter { 1.0 } else { 0.0 },
        if detected { 1.0 } else { 0.0 },
    ]
}

/// >= 8 values, monotonic (non-decreasing or non-increasing) and >= 3 distinct values.
fn is_counter(values: &[f64]) -> bool {
    if values.len() < MIN_COUNTER_VALUES {
        return false;
    }
    let non_decreasing = values.windows(2).all(|pair| pair[1] >= pair[0]);
    let non_increasing = values.windows(2).all(|pair| pair[1] <= pair[0]);
    if !(non_decreasing || non_increasing) {
        return false;
    }
    // In a monotonic sequence every new distinct value is a change from its predecessor.
    let distinct = 1 + values.windows(2).filter(|pair| pair[1] != pair[0]).count();
    distinct >= MIN_COUNTER_DISTINCT
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::CoreError;

    fn row(values: &[f64], tolerance: f64) -> [f64; 7] {
        conservation_stats(&[values], tolerance).unwrap()[0]
    }

    #[test]
    fn conserved_metric_is_found() {
        let values = [100.0, 101.0, 99.0, 100.0];
        let r = row(&values, 0.05);
        assert_eq!(r[0], 4.0);
        assert_eq!(r[1], 400.0);
        assert_eq!(r[2], 100.0);
        assert!((r[3] - 0.5f64.sqrt()).abs() < 1e-15);
        assert!((r[4] - 0.5f64.sqrt() / 100.0).abs() < 1e-15);
        assert_eq!(r[5], 0.0);
        assert_eq!(r[6], 1.0);
    }

    #[test]
    fn varying_metric_is_not_conserved() {
        let r = row(&[1.0, 5.0, 2.0, 9.0, 3.0], 0.1);
        assert!(r[4] > 0.1);
        assert_eq!(r[6], 0.0);
    }

    #[test]
    fn counter_is_excluded() {
        let values: Vec<f64> = (0..100).map(f64::from).collect();
        // cv of 0..99 is ~0.58: with a loose tolerance it would pass, but it is a counter.
        let r = row(&values, 1.0);
        assert!(r[4] < 1.0);
        assert_eq!(r[5], 1.0);
        assert_eq!(r[6], 0.0);
        // A decreasing counter with repeats is a counter too.
        let down = [9.0, 9.0, 8.0, 8.0, 7.0, 7.0, 6.0, 6.0];
        assert_eq!(row(&down, 1.0)[5], 1.0);
    }

    #[test]
    fn short_or_two_valued_monotonic_metrics_are_not_counters() {
        // 7 monotonic values: too few to judge.
        let values = [1000.0, 1001.0, 1002.0, 1003.0, 1004.0, 1005.0, 1006.0];
        let r = row(&values, 0.01);
        assert_eq!(r[5], 0.0);
        assert_eq!(r[6], 1.0);
        // Monotonic but only two distinct values.
        let step = [5.0, 5.0, 5.0, 5.0, 6.0, 6.0, 6.0, 6.0];
        assert_eq!(row(&step, 1.0)[5], 0.0);
        assert_eq!(row(&step, 1.0)[6], 1.0);
    }

    #[test]
    fn constant_metric_has_exactly_zero_std() {
        let r = row(&[0.1; 7], 0.01);
        assert_eq!(r[2], 0.1);
        assert_eq!(r[3], 0.0);
        assert_eq!(r[4], 0.0);
        assert_eq!(r[6], 1.0);
    }

    #[test]
    fn zero_mean_and_degenerate_metrics() {
        let zeros = row(&[0.0; 5], 0.5);
        assert!(zeros[4].is_nan());
        assert_eq!(zeros[6], 0.0);
        let single = row(&[3.0], 0.5);
        assert_eq!(single[..6], [1.0, 3.0, 3.0, 0.0, 0.0, 0.0]);
        assert_eq!(single[6], 0.0);
        let nan = f64::NAN;
        let empty = row(&[nan, nan], 0.5);
        assert_eq!(empty[..2], [0.0, 0.0]);
        assert!(empty[2..5].iter().all(|v| v.is_nan()));
        assert_eq!(empty[5..], [0.0, 0.0]);
        let sparse = row(&[nan, 100.0, nan, 100.0], 0.01);
        assert_eq!(sparse[..4], [2.0, 200.0, 100.0, 0.0]);
        assert_eq!(sparse[6], 1.0);
    }

    #[test]
    fn rejects_bad_tolerance() {
        for bad in [-1.0, f64::NAN, f64::NEG_INFINITY] {
            match conservation_stats(&[&[1.0]], bad) {
                Err(CoreError::InvalidArgument { argument, .. }) => {
                    assert_eq!(argument, "tolerance")
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }
}
