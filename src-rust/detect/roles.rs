//! Column roles (SPEC §12): which metrics are an index of the task order (ids, counters, row
//! numbers, byte totals, timestamps) rather than a measurement. Computed once per cooling,
//! before any detector; index columns take part in no detector.
//!
//! A column is an index when it is a counter ([`is_counter`], SPEC §6) or when it moves with
//! the row order: |Spearman ρ with the row position| >= [`INDEX_RANK_CORRELATION`] with at
//! least [`INDEX_DISTINCT_SHARE`] distinct values (a start timestamp recorded in completion
//! order is not exactly monotone, but its rank correlation with the position is ~1).
//! Spearman's ρ (Spearman 1904) is Pearson's r of the average ranks (ties share the mean of
//! their positions) with the positions 0..m-1 of the present values.

use std::borrow::Cow;

use rayon::prelude::*;

use super::shared::columns::{column_length_and_gaps, present_values};
use super::Table;
use crate::args::Budget;
use crate::error::CoreResult;
use crate::stats::pearson;

/// Fewer values than this are never judged to be a counter (nor an index).
pub const MIN_COUNTER_VALUES: usize = 8;
/// A counter takes at least this many distinct values.
pub const MIN_COUNTER_DISTINCT: usize = 3;
/// |Spearman ρ with the row position| at or above this (with enough distinct values): an index.
pub const INDEX_RANK_CORRELATION: f64 = 0.99;
/// The share of distinct values an index column needs besides its rank correlation.
pub const INDEX_DISTINCT_SHARE: f64 = 0.9;
/// The precheck ranks at most this many evenly spaced values (positions `i * m / k`).
pub const PRECHECK_SAMPLE: usize = 4096;
/// The full check runs only when the precheck's |ρ| reaches this.
pub const PRECHECK_RANK_CORRELATION: f64 = 0.95;

/// The fields of [`column_roles`].
pub const FIELDS: &[&str] = &["counter", "spearman", "distinct_share", "index"];

const STAGE: &str = "column roles";

/// Per metric, over its present values in recording order:
/// - `counter`: the counter rule of SPEC §6 ([`is_counter`]);
/// - `spearman`: Spearman's ρ with the row position (NaN below [`MIN_COUNTER_VALUES`]
///   values); over the [`PRECHECK_SAMPLE`] evenly spaced values `i * m / k` (k = min(m,
///   4096)) when that sample's |ρ| < [`PRECHECK_RANK_CORRELATION`], else over all values;
/// - `distinct_share`: distinct values / present values when |ρ| >=
///   [`INDEX_RANK_CORRELATION`], else NaN (not computed);
/// - `index`: `counter`, or |ρ| >= 0.99 and `distinct_share` >= 0.9.
pub fn column_roles(columns: &[&[f64]], budget: &Budget) -> CoreResult<Table> {
    let (_, gaps) = column_length_and_gaps(columns)?;
    let roles = columns
        .par_iter()
        .zip(&gaps)
        .map(|(column, &gap)| {
            budget.check(STAGE)?;
            // A column without gaps is read in place.
            let present: Cow<'_, [f64]> = if gap {
                Cow::Owned(present_values(column))
            } else {
                Cow::Borrowed(column)
            };
            Ok(column_role(&present))
        })
        .collect::<CoreResult<Vec<Role>>>()?;
    Ok(Table::new()
        .with(
            "counter",
            roles.iter().map(|r| r.counter).collect::<Vec<_>>(),
        )
        .with(
            "spearman",
            roles.iter().map(|r| r.spearman).collect::<Vec<_>>(),
        )
        .with(
            "distinct_share",
            roles.iter().map(|r| r.distinct_share).collect::<Vec<_>>(),
        )
        .with("index", roles.iter().map(|r| r.index).collect::<Vec<_>>()))
}

struct Role {
    counter: bool,
    spearman: f64,
    distinct_share: f64,
    index: bool,
}

fn column_role(values: &[f64]) -> Role {
    let counter = is_counter(values);
    let m = values.len();
    if m < MIN_COUNTER_VALUES {
        return Role {
            counter,
            spearman: f64::NAN,
            distinct_share: f64::NAN,
            index: counter,
        };
    }
    let mut spearman = if m > PRECHECK_SAMPLE {
        let sample: Vec<f64> = (0..PRECHECK_SAMPLE)
            .map(|i| values[i * m / PRECHECK_SAMPLE])
            .collect();
        rank_correlation_with_position(&sample)
    } else {
        rank_correlation_with_position(values)
    };
    if m > PRECHECK_SAMPLE && spearman.abs() >= PRECHECK_RANK_CORRELATION {
        spearman = rank_correlation_with_position(values);
    }
    let distinct_share = if spearman.abs() >= INDEX_RANK_CORRELATION {
        distinct_count(values) as f64 / m as f64
    } else {
        f64::NAN
    };
    let moves_with_rows =
        spearman.abs() >= INDEX_RANK_CORRELATION && distinct_share >= INDEX_DISTINCT_SHARE;
    Role {
        counter,
        spearman,
        distinct_share,
        index: counter || moves_with_rows,
    }
}

/// Spearman's ρ of `values` with their positions 0..m-1: Pearson's r of the average ranks
/// (1-based; ties share the mean of their positions) and the positions.
pub fn rank_correlation_with_position(values: &[f64]) -> f64 {
    let ranks = average_ranks(values);
    let positions: Vec<f64> = (0..values.len()).map(|i| i as f64).collect();
    pearson(&ranks, &positions)
}

/// 1-based average ranks (scipy's `rankdata(method="average")`). NaN must not occur.
pub fn average_ranks(values: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut ranks = vec![0.0; values.len()];
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && values[order[end]] == values[order[start]] {
            end += 1;
        }
        // positions start..end (0-based) share the rank (start + 1 + end) / 2
        let shared = (start + 1 + end) as f64 / 2.0;
        for &index in &order[start..end] {
            ranks[index] = shared;
        }
        start = end;
    }
    ranks
}

fn distinct_count(values: &[f64]) -> usize {
    let mut sorted = values.to_vec();
    sorted.sort_unstable_by(f64::total_cmp);
    1 + sorted.windows(2).filter(|pair| pair[1] != pair[0]).count()
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

/// [`is_counter`] of a column's present values (NaN skipped), in one pass without a copy;
/// it stops at the first value that leaves both orders.
pub fn is_counter_column(column: &[f64]) -> bool {
    let (mut count, mut distinct) = (0usize, 0usize);
    let (mut up, mut down) = (true, true);
    let mut previous = f64::NAN;
    for &value in column.iter().filter(|value| !value.is_nan()) {
        if count == 0 {
            distinct = 1;
        } else {
            up &= value >= previous;
            down &= value <= previous;
            if !(up || down) {
                return false;
            }
            distinct += usize::from(value != previous);
        }
        previous = value;
        count += 1;
    }
    count >= MIN_COUNTER_VALUES && distinct >= MIN_COUNTER_DISTINCT
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_column_reads_the_present_values() {
        let nan = f64::NAN;
        let columns: [&[f64]; 7] = [
            &[0.0, nan, 1.0, 2.0, nan, 3.0, 4.0, 5.0, 6.0, 7.0],
            &[9.0, 8.0, 8.0, 7.0, nan, 6.0, 5.0, 5.0, 4.0],
            &[5.0, 5.0, 5.0, 5.0, 6.0, 6.0, 6.0, 6.0],
            &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0],
            &[1.0, 2.0, 3.0, 2.0, 5.0, 6.0, 7.0, 8.0],
            &[
                nan,
                nan,
                f64::NEG_INFINITY,
                1.0,
                2.0,
                3.0,
                4.0,
                5.0,
                6.0,
                f64::INFINITY,
            ],
            &[],
        ];
        let expected = [true, true, false, false, false, true, false];
        for (column, want) in columns.iter().zip(expected) {
            let present: Vec<f64> = column.iter().copied().filter(|v| !v.is_nan()).collect();
            assert_eq!(is_counter_column(column), want, "{column:?}");
            assert_eq!(is_counter(&present), want, "{column:?}");
        }
    }

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

    #[test]
    fn average_ranks_share_ties() {
        assert_eq!(
            average_ranks(&[3.0, 1.0, 3.0, 2.0, 3.0]),
            vec![4.0, 1.0, 4.0, 2.0, 4.0]
        );
    }

    #[test]
    fn columns_that_move_with_the_rows_are_an_index() {
        // a timestamp recorded in completion order: not monotone, rho ~ 1, all distinct
        let stamps: Vec<f64> = (0..200)
            .map(|i| 1000.0 + 10.0 * f64::from(i) + if i % 2 == 0 { 15.0 } else { 0.0 })
            .collect();
        let noise: Vec<f64> = (0..200).map(|i| f64::from((i * 37) % 101)).collect();
        // few distinct values: rho with the row high, but a level, not an index
        let levels: Vec<f64> = (0..200).map(|i| f64::from(i / 50)).collect();
        let columns: [&[f64]; 3] = [&stamps, &noise, &levels];
        let table = column_roles(&columns, &Budget::unlimited()).unwrap();
        assert_eq!(table.bools("counter"), &[false, false, true]);
        assert_eq!(table.bools("index"), &[true, false, true]);
        let rho = table.floats("spearman");
        // stamps: ranks swap in adjacent pairs (i even ranks i+2 ...): rho just below 1
        assert!(rho[0] > 0.999 && rho[0] < 1.0, "{rho:?}");
        assert!(rho[1].abs() < 0.2, "{rho:?}");
        assert_eq!(table.floats("distinct_share")[0], 1.0);
        assert!(table.floats("distinct_share")[1].is_nan());
        assert!(table.floats("distinct_share")[2].is_nan()); // rho ~ 0.968: not computed
    }

    #[test]
    fn long_columns_are_prechecked_on_a_sample() {
        let n = 10_000;
        let stamps: Vec<f64> = (0..n).map(|i| (i ^ 1) as f64).collect(); // swapped pairs
        let noise: Vec<f64> = (0..n).map(|i| ((i * 7919) % 1009) as f64).collect();
        let columns: [&[f64]; 2] = [&stamps, &noise];
        let table = column_roles(&columns, &Budget::unlimited()).unwrap();
        assert_eq!(table.bools("index"), &[true, false]);
        // full rho of the swapped pairs: 1 - 6 * n / (n (n^2 - 1)) * ... exactly 1 - 6/(n^2-1)
        let expected = 1.0 - 6.0 / ((n * n - 1) as f64);
        assert!((table.floats("spearman")[0] - expected).abs() < 1e-12);
    }
}
