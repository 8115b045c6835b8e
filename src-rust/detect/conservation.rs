//! Single-metric conservation (SPEC §6): a metric whose value hardly varies across tasks,
//! unless it is an id or a counter.

use rayon::prelude::*;

use super::roles::is_counter;
use super::shared::columns::{column_length, max_abs, present_values};
use super::{Detector, Table};
use crate::args::{Budget, DefaultValue, ParamSpec, Params};
use crate::error::CoreResult;
use crate::stats::{mean_and_sum_of_squares, sequential_sum};

crate::record! {
    /// One metric's conservation statistics (see [`conservation_stats`]).
    pub struct ConservationRow {
        /// Present values of the metric.
        count: i64,
        /// Their sequential sum.
        total: f64,
        mean: f64,
        /// Population standard deviation.
        std: f64,
        /// Coefficient of variation std / |mean|.
        cv: f64,
        /// An id or a counter (never conserved).
        is_counter: bool,
        detected: bool,
    }
}

/// The registry entry.
pub const DETECTOR: Detector = Detector {
    name: "conservation",
    kind: "conservation law",
    fields: ConservationRow::FIELDS,
    params: &[ParamSpec {
        name: "tolerance",
        default: DefaultValue::Float(0.3),
    }],
    run,
};

fn run(columns: &[&[f64]], params: &Params, budget: &Budget) -> CoreResult<Table> {
    let tolerance = params.finite("tolerance", 0.0, true)?;
    let rows = conservation_stats(columns, tolerance, budget)?;
    Ok(ConservationRow::table(&rows))
}

/// |mean| at or below this times max|x| counts as zero.
const ZERO_MEAN_RELATIVE: f64 = 1e-12;
const STAGE: &str = "conservation";

/// One row per metric:
/// - over the metric's present values; `total` = sequential sum, `mean` = total / count
///   (exactly the value when all values are equal), `std` = population std (two-pass,
///   centered; 0 when all values are equal), `cv = std / |mean|` (NaN when mean == 0);
/// - `is_counter`: the counter rule of [`is_counter`];
/// - `detected` when count >= 2, |mean| > 1e-12·max|x|, cv < tolerance, not a counter.
///
/// No values: count 0, total 0, NaN statistics, neither counter nor detected.
pub fn conservation_stats(
    columns: &[&[f64]],
    tolerance: f64,
    budget: &Budget,
) -> CoreResult<Vec<ConservationRow>> {
    column_length(columns)?;
    columns
        .par_iter()
        .map(|column| {
            budget.check(STAGE)?;
            Ok(metric_row(&present_values(column), tolerance))
        })
        .collect()
}

fn metric_row(values: &[f64], tolerance: f64) -> ConservationRow {
    let count = values.len();
    let total = sequential_sum(values);
    if count == 0 {
        return ConservationRow {
            count: 0,
            total,
            mean: f64::NAN,
            std: f64::NAN,
            cv: f64::NAN,
            is_counter: false,
            detected: false,
        };
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
    ConservationRow {
        count: count as i64,
        total,
        mean,
        std,
        cv,
        is_counter: counter,
        detected,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::CoreError;

    fn row(values: &[f64], tolerance: f64) -> ConservationRow {
        conservation_stats(&[values], tolerance, &Budget::unlimited()).unwrap()[0]
    }

    #[test]
    fn conserved_metric_is_found() {
        let values = [100.0, 101.0, 99.0, 100.0];
        let r = row(&values, 0.05);
        assert_eq!((r.count, r.total, r.mean), (4, 400.0, 100.0));
        assert!((r.std - 0.5f64.sqrt()).abs() < 1e-15);
        assert!((r.cv - 0.5f64.sqrt() / 100.0).abs() < 1e-15);
        assert!(!r.is_counter);
        assert!(r.detected);
    }

    #[test]
    fn varying_metric_is_not_conserved() {
        let r = row(&[1.0, 5.0, 2.0, 9.0, 3.0], 0.1);
        assert!(r.cv > 0.1);
        assert!(!r.detected);
    }

    #[test]
    fn counter_is_excluded() {
        let values: Vec<f64> = (0..100).map(f64::from).collect();
        // cv of 0..99 is ~0.58: with a loose tolerance it would pass, but it is a counter.
        let r = row(&values, 1.0);
        assert!(r.cv < 1.0);
        assert!(r.is_counter);
        assert!(!r.detected);
        // A decreasing counter with repeats is a counter too.
        let down = [9.0, 9.0, 8.0, 8.0, 7.0, 7.0, 6.0, 6.0];
        assert!(row(&down, 1.0).is_counter);
    }

    #[test]
    fn short_or_two_valued_monotonic_metrics_are_not_counters() {
        // 7 monotonic values: too few to judge.
        let values = [1000.0, 1001.0, 1002.0, 1003.0, 1004.0, 1005.0, 1006.0];
        let r = row(&values, 0.01);
        assert!(!r.is_counter);
        assert!(r.detected);
        // Monotonic but only two distinct values.
        let step = [5.0, 5.0, 5.0, 5.0, 6.0, 6.0, 6.0, 6.0];
        assert!(!row(&step, 1.0).is_counter);
        assert!(row(&step, 1.0).detected);
    }

    #[test]
    fn constant_metric_has_exactly_zero_std() {
        let r = row(&[0.1; 7], 0.01);
        assert_eq!((r.mean, r.std, r.cv), (0.1, 0.0, 0.0));
        assert!(r.detected);
    }

    #[test]
    fn zero_mean_and_degenerate_metrics() {
        let zeros = row(&[0.0; 5], 0.5);
        assert!(zeros.cv.is_nan());
        assert!(!zeros.detected);
        let single = row(&[3.0], 0.5);
        assert_eq!(
            (
                single.count,
                single.total,
                single.mean,
                single.std,
                single.cv
            ),
            (1, 3.0, 3.0, 0.0, 0.0)
        );
        assert!(!single.is_counter && !single.detected);
        let nan = f64::NAN;
        let empty = row(&[nan, nan], 0.5);
        assert_eq!((empty.count, empty.total), (0, 0.0));
        assert!(empty.mean.is_nan() && empty.std.is_nan() && empty.cv.is_nan());
        assert!(!empty.is_counter && !empty.detected);
        let sparse = row(&[nan, 100.0, nan, 100.0], 0.01);
        assert_eq!(
            (sparse.count, sparse.total, sparse.mean, sparse.std),
            (2, 200.0, 100.0, 0.0)
        );
        assert!(sparse.detected);
    }

    #[test]
    fn rejects_bad_tolerance() {
        for bad in [-1.0, f64::NAN, f64::NEG_INFINITY] {
            let params = Params::new().with("tolerance", bad);
            match run(&[&[1.0]], &params, &Budget::unlimited()) {
                Err(CoreError::InvalidArgument { argument, .. }) => {
                    assert_eq!(argument, "tolerance")
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }
}
