//! Outlier tasks by the robust z-score (SPEC §6 `OUTLIER`).

use rayon::prelude::*;

use super::shared::columns::column_length;
use super::shared::ranks::median_and_mad;
use super::{Detector, Table};
use crate::args::{Budget, DefaultValue, ParamSpec, Params};
use crate::error::CoreResult;

/// The registry entry.
pub const DETECTOR: Detector = Detector {
    name: "outlier",
    kind: "outlier",
    fields: FIELDS,
    params: &[ParamSpec {
        name: "z_threshold",
        default: DefaultValue::Float(3.5),
    }],
    run,
};

/// The result fields: one entry per flagged (task, metric), see [`Outliers`].
pub const FIELDS: &[&str] = &["task", "metric", "z", "deviation"];

fn run(columns: &[&[f64]], params: &Params, budget: &Budget) -> CoreResult<Table> {
    let z_threshold = params.finite("z_threshold", 0.0, false)?;
    Ok(outlier_scores(columns, z_threshold, budget)?.table())
}

const STAGE: &str = "outlier";

/// The consistency constant of the robust z-score (Φ⁻¹(3/4)).
pub const ROBUST_Z_FACTOR: f64 = 0.6745;
/// A metric needs this many present values to be scored.
pub const MIN_OUTLIER_VALUES: usize = 3;

/// Every (task, metric) whose robust z-score exceeds the threshold, sorted by task then
/// metric; the four vectors are parallel.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outliers {
    /// Task index (position in recording order).
    pub task: Vec<i64>,
    /// Metric index (row of `columns`).
    pub metric: Vec<i64>,
    /// Robust z-score `0.6745 * |x - median| / MAD` (inf when MAD = 0 and x != median).
    pub z: Vec<f64>,
    /// `x - median`, in the metric's units.
    pub deviation: Vec<f64>,
}

impl Outliers {
    /// The outliers as a table of [`FIELDS`].
    pub fn table(self) -> Table {
        Table::new()
            .with("task", self.task)
            .with("metric", self.metric)
            .with("z", self.z)
            .with("deviation", self.deviation)
    }
}

/// Robust z-scores per metric:
/// - per metric with >= 3 present values: median (the mean `(a + b) / 2` of the two middle
///   values for even counts), MAD = median(|x - median|);
/// - `z = 0.6745 * |x - median| / MAD` (evaluated left to right); MAD == 0 → z = inf where
///   x != median, else 0; `deviation = x - median`;
/// - returns every (task, metric) with z > `z_threshold`, sorted by task then metric.
///
/// `z_threshold` finite and > 0 (checked by the caller). Metrics run in parallel.
pub fn outlier_scores(
    columns: &[&[f64]],
    z_threshold: f64,
    budget: &Budget,
) -> CoreResult<Outliers> {
    column_length(columns)?;
    let per_metric: Vec<Vec<(usize, usize, f64, f64)>> = columns
        .par_iter()
        .enumerate()
        .map(|(metric, column)| {
            budget.check(STAGE)?;
            Ok(metric_outliers(metric, column, z_threshold))
        })
        .collect::<CoreResult<_>>()?;
    let mut flagged: Vec<(usize, usize, f64, f64)> = per_metric.into_iter().flatten().collect();
    flagged.sort_unstable_by_key(|&(task, metric, _, _)| (task, metric));
    let mut outliers = Outliers {
        task: Vec::with_capacity(flagged.len()),
        metric: Vec::with_capacity(flagged.len()),
        z: Vec::with_capacity(flagged.len()),
        deviation: Vec::with_capacity(flagged.len()),
    };
    for (task, metric, z, deviation) in flagged {
        outliers.task.push(task as i64);
        outliers.metric.push(metric as i64);
        outliers.z.push(z);
        outliers.deviation.push(deviation);
    }
    Ok(outliers)
}

/// (task, metric, z, deviation) of one metric's outliers, in task order.
fn metric_outliers(
    metric: usize,
    column: &[f64],
    z_threshold: f64,
) -> Vec<(usize, usize, f64, f64)> {
    let present: Vec<f64> = column.iter().copied().filter(|v| !v.is_nan()).collect();
    if present.len() < MIN_OUTLIER_VALUES {
        return Vec::new();
    }
    let (center, mad) = median_and_mad(&present);
    column
        .iter()
        .enumerate()
        .filter(|(_, value)| !value.is_nan())
        .filter_map(|(task, &value)| {
            let deviation = value - center;
            let z = if mad == 0.0 {
                if value != center {
                    f64::INFINITY
                } else {
                    0.0
                }
            } else {
                ROBUST_Z_FACTOR * deviation.abs() / mad
            };
            (z > z_threshold).then_some((task, metric, z, deviation))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outlier_scores(columns: &[&[f64]], z_threshold: f64) -> CoreResult<Outliers> {
        super::outlier_scores(columns, z_threshold, &Budget::unlimited())
    }

    #[test]
    fn hand_worked_three_values() {
        // median 23.1, |x - median| = 0.6, 0, 22.1 → MAD 0.6.
        let column = [22.5, 23.1, 45.2];
        let result = outlier_scores(&[&column], 3.5).unwrap();
        assert_eq!(result.task, vec![2]);
        assert_eq!(result.metric, vec![0]);
        let expected = 0.6745 * 22.1 / 0.6;
        assert!(
            (result.z[0] - expected).abs() <= 1e-12 * expected,
            "{result:?}"
        );
        assert!((result.deviation[0] - 22.1).abs() < 1e-12);
        // 22.5 has z = 0.6745 exactly as computed: below any threshold above it.
        let low = outlier_scores(&[&column], 0.6).unwrap();
        assert_eq!(low.task, vec![0, 2]);
        assert_eq!(
            low.z[0],
            0.6745 * (22.5f64 - 23.1).abs() / (22.5f64 - 23.1).abs()
        );
    }

    #[test]
    fn mad_zero_flags_only_differing_values() {
        let column = [5.0, 5.0, 5.0, 5.0, 6.0, 5.0];
        let result = outlier_scores(&[&column], 3.5).unwrap();
        assert_eq!(result.task, vec![4]);
        assert_eq!(result.z, vec![f64::INFINITY]);
        assert_eq!(result.deviation, vec![1.0]);
        // All equal: nothing.
        let result = outlier_scores(&[&[2.0; 10]], 3.5).unwrap();
        assert!(result.task.is_empty());
    }

    #[test]
    fn sorted_by_task_then_metric_with_absent_values() {
        let nan = f64::NAN;
        let a = [1.0, 1.1, 0.9, 1.0, 50.0, nan, 1.05];
        let b = [nan, 10.0, 10.5, 9.5, -40.0, 10.0, 10.2];
        let c = [nan, nan, 1.0, 2.0, nan, nan, nan]; // 2 values: not scored
        let result = outlier_scores(&[&a, &b, &c], 3.5).unwrap();
        assert_eq!(result.task, vec![4, 4]);
        assert_eq!(result.metric, vec![0, 1]);
        // b: present 10, 10.5, 9.5, -40, 10, 10.2 → median 10, MAD median(0,.5,.5,50,0,.2)=0.35
        assert!((result.deviation[1] + 50.0).abs() < 1e-12);
        assert!((result.z[1] - 0.6745 * 50.0 / 0.35).abs() < 1e-9);
    }

    #[test]
    fn even_count_median_is_the_mean_of_the_middle_pair() {
        // median (2 + 4) / 2 = 3; |x - 3| = 2, 1, 1, 97 → MAD (1 + 2) / 2 = 1.5
        let column = [1.0, 2.0, 4.0, 100.0];
        let result = outlier_scores(&[&column], 3.5).unwrap();
        assert_eq!(result.task, vec![3]);
        assert_eq!(result.deviation, vec![97.0]);
        assert_eq!(result.z, vec![0.6745 * 97.0 / 1.5]);
    }

    #[test]
    fn degenerate_inputs_and_arguments() {
        assert_eq!(outlier_scores(&[], 3.5).unwrap(), Outliers::default());
        assert_eq!(outlier_scores(&[&[]], 3.5).unwrap(), Outliers::default());
        let nan = f64::NAN;
        assert_eq!(
            outlier_scores(&[&[nan, nan, nan, nan]], 3.5).unwrap(),
            Outliers::default()
        );
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let params = Params::new().with("z_threshold", bad);
            let error = run(&[&[1.0]], &params, &Budget::unlimited()).unwrap_err();
            assert!(
                error.to_string().starts_with("z_threshold must be"),
                "{error}"
            );
        }
        assert!(outlier_scores(&[&[1.0, 2.0], &[1.0]], 3.5).is_err());
    }
}
