//! The detector kernels (SPEC §6, kernels.md "Detector kernels", kernels5.md for the added
//! detectors: `outlier`, `shift`, `dependence`, `flow`, `laws`, with their building blocks
//! `permutation`, `ranks` and `eigen`).
//!
//! Every kernel takes `columns: &[&[f64]]`: one slice per metric, all of the same length n
//! (the tasks in recording order), NaN where a task lacks the metric. Pure Rust; the
//! bindings live in `py`.

#[cfg(test)]
mod added_edge_cases;
#[cfg(test)]
mod added_timing;
pub mod clustering;
pub mod conservation;
pub mod correlation;
pub mod dependence;
pub mod eigen;
pub mod flow;
pub mod kdtree;
pub mod laws;
pub mod outlier;
pub mod permutation;
pub mod phase;
pub mod ranks;
pub mod shift;
#[cfg(test)]
pub(crate) mod test_data;

pub use clustering::{cluster_components, Clusters};
pub use conservation::conservation_stats;
pub use correlation::correlation_stats;
pub use dependence::dependence_stats;
pub use flow::information_flow_stats;
pub use laws::{conservation_laws, Law};
pub use outlier::{outlier_scores, Outliers};
pub use phase::phase_transition_stats;
pub use shift::distribution_shift_stats;

use std::time::Instant;

use rayon::prelude::*;

use crate::error::{CoreError, CoreResult};
use crate::stats::all_equal;

/// The common length n of the columns (0 when there are none), or an error naming the first
/// column whose length differs from the first one's.
pub(crate) fn column_length(columns: &[&[f64]]) -> CoreResult<usize> {
    let Some(first) = columns.first() else {
        return Ok(0);
    };
    let n = first.len();
    for (index, column) in columns.iter().enumerate() {
        // NaN marks an absent value; an infinity is invalid input.
        if let Some(task) = column.iter().position(|value| value.is_infinite()) {
            return Err(CoreError::invalid(
                "columns",
                format!(
                    "columns contains an infinite value ({}) at metric {index}, task {task}",
                    column[task]
                ),
            ));
        }
        if column.len() != n {
            return Err(CoreError::invalid(
                "columns",
                format!(
                    "columns must all have the same length (column {index} has {} values, \
                     column 0 has {n})",
                    column.len()
                ),
            ));
        }
    }
    Ok(n)
}

/// Every unordered metric pair (i, j), i < j, in the order (0,1), (0,2), ..., (1,2), ...
pub(crate) fn unordered_pairs(m: usize) -> Vec<(usize, usize)> {
    (0..m)
        .flat_map(|i| (i + 1..m).map(move |j| (i, j)))
        .collect()
}

/// `prepare(column)` for every column that is complete (no NaN), has at least `min_len`
/// (and at least 2) values and is not constant; None for the others. In parallel.
pub(crate) fn prepare_testable<T: Send>(
    columns: &[&[f64]],
    min_len: usize,
    prepare: impl Fn(&[f64]) -> T + Sync,
) -> Vec<Option<T>> {
    columns
        .par_iter()
        .map(|column| {
            let complete = !column.iter().any(|v| v.is_nan());
            (complete && column.len() >= min_len.max(2) && !all_equal(column))
                .then(|| prepare(column))
        })
        .collect()
}

/// A metric's present (non-NaN) values in recording order.
pub(crate) fn present_values(column: &[f64]) -> Vec<f64> {
    column
        .iter()
        .copied()
        .filter(|value| !value.is_nan())
        .collect()
}

/// Err(Timeout) once `deadline` has passed.
#[inline]
pub(crate) fn check_deadline(deadline: Option<Instant>, stage: &'static str) -> CoreResult<()> {
    match deadline {
        Some(limit) if Instant::now() >= limit => Err(CoreError::Timeout { stage }),
        _ => Ok(()),
    }
}

/// Ok when `value` is finite and >= 0, else a ValueError naming `argument`.
pub(crate) fn require_finite_non_negative(value: f64, argument: &'static str) -> CoreResult<()> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(CoreError::invalid(
            argument,
            format!("{argument} must be finite and >= 0, got {value}"),
        ))
    }
}

/// max |x| over the values (0 for none).
#[inline]
pub(crate) fn max_abs(values: &[f64]) -> f64 {
    values
        .iter()
        .fold(0.0f64, |acc, value| acc.max(value.abs()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_length_checks_every_column() {
        assert_eq!(column_length(&[]), Ok(0));
        assert_eq!(column_length(&[&[1.0, 2.0], &[3.0, f64::NAN]]), Ok(2));
        let error = column_length(&[&[1.0, 2.0], &[3.0, 4.0], &[5.0]]).unwrap_err();
        match error {
            CoreError::InvalidArgument { argument, message } => {
                assert_eq!(argument, "columns");
                assert!(message.starts_with("columns must all have the same length"));
                assert!(message.contains("column 2 has 1 values"));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn argument_checks_name_the_argument() {
        assert!(require_finite_non_negative(0.0, "tolerance").is_ok());
        for bad in [-1.0, f64::NAN, f64::INFINITY] {
            let error = require_finite_non_negative(bad, "tolerance").unwrap_err();
            assert!(error.to_string().starts_with("tolerance must be"));
        }
    }
}
