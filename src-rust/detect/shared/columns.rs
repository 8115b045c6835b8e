//! Column checks and views every detector uses: the common length of the columns, the
//! metric pairs, the testable (complete, varying) columns, a metric's present values.

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

/// The rows `selection` (indices into `rows`, any order, repeats allowed) of `rows`, or an
/// error naming `metrics` for an index out of range.
pub fn select_rows<'a>(rows: &[&'a [f64]], selection: &[i64]) -> CoreResult<Vec<&'a [f64]>> {
    selection
        .iter()
        .map(|&index| {
            usize::try_from(index)
                .ok()
                .and_then(|index| rows.get(index).copied())
                .ok_or_else(|| {
                    CoreError::invalid(
                        "metrics",
                        format!(
                            "metrics: row {index} is out of range (columns has {} rows)",
                            rows.len()
                        ),
                    )
                })
        })
        .collect()
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
    fn rows_are_selected_by_index() {
        let (a, b) = ([1.0], [2.0]);
        let rows: [&[f64]; 2] = [&a, &b];
        assert_eq!(
            select_rows(&rows, &[1, 0, 1]).unwrap(),
            vec![&b[..], &a[..], &b[..]]
        );
        for bad in [-1, 2] {
            let error = select_rows(&rows, &[bad]).unwrap_err();
            assert!(error.to_string().starts_with("metrics: row"), "{error}");
        }
    }

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
}
