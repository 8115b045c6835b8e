//! Column checks and views every detector uses: the common length of the columns, the
//! metric pairs, the testable (complete, varying) columns, a metric's present values.

use std::cell::RefCell;

use rayon::prelude::*;

use crate::error::{CoreError, CoreResult};
use crate::stats::all_equal;

/// The common length n of the columns (0 when there are none), or an error naming the first
/// column whose length differs from the first one's or that holds an infinity.
pub(crate) fn column_length(columns: &[&[f64]]) -> CoreResult<usize> {
    column_length_and_gaps(columns).map(|(n, _)| n)
}

/// [`column_length`] and, per column, whether it holds an absent value (NaN), in the same
/// read of the values.
pub(crate) fn column_length_and_gaps(columns: &[&[f64]]) -> CoreResult<(usize, Vec<bool>)> {
    let Some(first) = columns.first() else {
        return Ok((0, Vec::new()));
    };
    let n = first.len();
    let known: Vec<bool> = columns
        .iter()
        .map(|column| known_complete(column))
        .collect();
    // The columns are read in parallel; the first column in order that fails names the error.
    columns
        .par_iter()
        .zip(&known)
        .enumerate()
        .map(|(index, (column, &complete))| {
            if complete {
                same_length(index, column, n).map(|()| false)
            } else {
                column_gap(index, column, n)
            }
        })
        .collect::<Vec<CoreResult<bool>>>()
        .into_iter()
        .collect::<CoreResult<Vec<bool>>>()
        .map(|gaps| (n, gaps))
}

thread_local! {
    /// The columns (address, length) the running kernel's caller vouched for on this
    /// thread: every value present and finite ([`with_complete_columns`]).
    static COMPLETE: RefCell<Vec<(usize, usize)>> = const { RefCell::new(Vec::new()) };
}

fn known_complete(column: &[f64]) -> bool {
    let key = (column.as_ptr() as usize, column.len());
    !column.is_empty() && COMPLETE.with(|known| known.borrow().contains(&key))
}

/// Runs `run` with the columns whose `complete` flag is set known to hold every value, all
/// finite: while it runs, [`column_length_and_gaps`] (on this thread) checks their length
/// but does not read their values. A caller that knows this already (`Kiln.cool()` after
/// `extend()`, from the counts of its mergeable state) spares the kernels a read of every
/// value; a column flagged wrongly has its NaN read as values.
pub fn with_complete_columns<R>(
    columns: &[&[f64]],
    complete: &[bool],
    run: impl FnOnce() -> R,
) -> R {
    struct Restore(Vec<(usize, usize)>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let previous = std::mem::take(&mut self.0);
            COMPLETE.with(|known| *known.borrow_mut() = previous);
        }
    }
    let known: Vec<(usize, usize)> = columns
        .iter()
        .zip(complete)
        .filter(|(_, &flag)| flag)
        .map(|(column, _)| (column.as_ptr() as usize, column.len()))
        .collect();
    let _restore = Restore(COMPLETE.with(|cell| cell.replace(known)));
    run()
}

fn same_length(index: usize, column: &[f64], n: usize) -> CoreResult<()> {
    if column.len() == n {
        return Ok(());
    }
    Err(CoreError::invalid(
        "columns",
        format!(
            "columns must all have the same length (column {index} has {} values, \
             column 0 has {n})",
            column.len()
        ),
    ))
}

/// Whether column `index` (of length `n` like the first) holds an absent value, in one read
/// that also refuses an infinity.
fn column_gap(index: usize, column: &[f64], n: usize) -> CoreResult<bool> {
    // NaN marks an absent value; an infinity is invalid input. One read tests both.
    let (mut gap, mut infinite) = (false, false);
    for chunk in column.chunks(SCAN_CHUNK) {
        let (nan, inf) = chunk.iter().fold((false, false), |(nan, inf), value| {
            (nan | value.is_nan(), inf | value.is_infinite())
        });
        gap |= nan;
        infinite |= inf;
        if infinite {
            break;
        }
    }
    if let Some(task) = infinite
        .then(|| first_where(column, f64::is_infinite))
        .flatten()
    {
        return Err(CoreError::invalid(
            "columns",
            format!(
                "columns contains an infinite value ({}) at metric {index}, task {task}",
                column[task]
            ),
        ));
    }
    same_length(index, column, n).map(|()| gap)
}

/// Values scanned at once by [`first_where`] before it looks for the position.
const SCAN_CHUNK: usize = 256;

/// The position of the first value for which `test` holds: chunks of values are tested
/// without branching (vectorized), and only a chunk that holds one is searched.
#[inline]
pub(crate) fn first_where(column: &[f64], test: impl Fn(f64) -> bool) -> Option<usize> {
    let mut start = 0;
    for chunk in column.chunks(SCAN_CHUNK) {
        if chunk
            .iter()
            .fold(false, |found, &value| found | test(value))
        {
            return chunk
                .iter()
                .position(|&value| test(value))
                .map(|at| start + at);
        }
        start += chunk.len();
    }
    None
}

/// Does the column hold an absent value (NaN)?
#[inline]
pub(crate) fn has_nan(column: &[f64]) -> bool {
    first_where(column, f64::is_nan).is_some()
}

/// Every unordered metric pair (i, j), i < j, in the order (0,1), (0,2), ..., (1,2), ...
pub(crate) fn unordered_pairs(m: usize) -> Vec<(usize, usize)> {
    (0..m)
        .flat_map(|i| (i + 1..m).map(move |j| (i, j)))
        .collect()
}

/// Whether a column is complete (no NaN), has at least `min_len` (and at least 2) values
/// and is not constant: the columns [`prepare_testable`] prepares.
pub(crate) fn testable(column: &[f64], min_len: usize) -> bool {
    !has_nan(column) && column.len() >= min_len.max(2) && !all_equal(column)
}

/// `prepare(column)` for every [`testable`] column; None for the others. In parallel.
pub(crate) fn prepare_testable<T: Send>(
    columns: &[&[f64]],
    min_len: usize,
    prepare: impl Fn(&[f64]) -> T + Sync,
) -> Vec<Option<T>> {
    columns
        .par_iter()
        .map(|column| testable(column, min_len).then(|| prepare(column)))
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
    fn columns_vouched_complete_are_not_read_for_gaps() {
        let (a, b, c) = ([1.0, f64::NAN, 3.0], [1.0, 2.0, f64::NAN], [1.0, 2.0]);
        let rows: [&[f64]; 2] = [&a, &b];
        let gaps = |rows: &[&[f64]]| column_length_and_gaps(rows).map(|(_, gaps)| gaps);
        assert_eq!(gaps(&rows).ok(), Some(vec![true, true]));
        // the flag is the caller's word: a NaN in a flagged column is not looked for
        let vouched = with_complete_columns(&rows, &[true, false], || gaps(&rows));
        assert_eq!(vouched.ok(), Some(vec![false, true]));
        // a flagged column's length is still checked, and the flags end with the call
        let short: [&[f64]; 2] = [&a, &c];
        let error = with_complete_columns(&short, &[true, true], || gaps(&short)).unwrap_err();
        assert!(error.to_string().contains("same length"), "{error}");
        assert_eq!(gaps(&rows).ok(), Some(vec![true, true]));
    }

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
    fn first_where_finds_the_first_position() {
        let nan = f64::NAN;
        for n in [0, 1, 255, 256, 257, 1000] {
            for at in [0, 1, 254, 255, 256, 600, 999] {
                let mut column = vec![1.0; n];
                let expected = (at < n).then(|| {
                    column[at] = nan;
                    if at + 3 < n {
                        column[at + 3] = nan;
                    }
                    at
                });
                assert_eq!(
                    first_where(&column, f64::is_nan),
                    expected,
                    "n {n}, at {at}"
                );
                assert_eq!(has_nan(&column), expected.is_some());
            }
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
