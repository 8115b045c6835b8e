//! Column roles (SPEC §12): which metrics are an index of the task order (ids, counters)
//! rather than a measurement. Computed once per cooling, before any detector.

use rayon::prelude::*;

use super::shared::columns::{column_length, present_values};
use super::Table;
use crate::args::Budget;
use crate::error::CoreResult;

/// Fewer values than this are never judged to be a counter.
pub const MIN_COUNTER_VALUES: usize = 8;
/// A counter takes at least this many distinct values.
pub const MIN_COUNTER_DISTINCT: usize = 3;

/// The fields of [`column_roles`].
pub const FIELDS: &[&str] = &["counter"];

const STAGE: &str = "column roles";

/// Per metric: `counter`, the counter rule of SPEC §6 ([`is_counter`]) over its present
/// values in recording order.
pub fn column_roles(columns: &[&[f64]], budget: &Budget) -> CoreResult<Table> {
    column_length(columns)?;
    let counter = columns
        .par_iter()
        .map(|column| {
            budget.check(STAGE)?;
            Ok(is_counter(&present_values(column)))
        })
        .collect::<CoreResult<Vec<bool>>>()?;
    Ok(Table::new().with("counter", counter))
}

/// An id or a counter: >= 8 values, monotonic (non-decreasing or non-increasing) and >= 3
/// distinct values (below 8 values, monotonic order is too likely by chance to judge).
pub fn is_counter(values: &[f64]) -> bool {
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

    #[test]
    fn counters_are_monotonic_with_three_distinct_values() {
        let ramp: Vec<f64> = (0..10).map(f64::from).collect();
        let step = [5.0, 5.0, 5.0, 5.0, 6.0, 6.0, 6.0, 6.0];
        let short = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0];
        let wiggle = [1.0, 2.0, 3.0, 2.0, 5.0, 6.0, 7.0, 8.0];
        let nan = f64::NAN;
        let gappy = [0.0, nan, 1.0, 2.0, nan, 3.0, 4.0, 5.0, 6.0, 7.0];
        let counter = |column: &[f64]| {
            let table = column_roles(&[column], &Budget::unlimited()).unwrap();
            assert_eq!(table.names(), FIELDS);
            table.bools("counter")[0]
        };
        assert!(counter(&ramp) && counter(&gappy));
        assert!(!counter(&step) && !counter(&short) && !counter(&wiggle));
    }
}
