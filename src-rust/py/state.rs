//! The mergeable state's bindings: a state travels as its flat f64 body (see
//! `crate::state::RunState::to_flat`); the Python layer adds the byte header. Inputs are
//! NumPy buffers, the GIL is released around the work, core errors map to Python classes.

use numpy::{IntoPyArray, PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::prelude::*;

use crate::state::RunState;

/// The flat state of the tasks in `columns` (a (metrics, tasks) float64 matrix, NaN =
/// absent), the first at position `start`, with buckets of `bucket_size` tasks.
#[pyfunction]
pub fn state_of_columns<'py>(
    py: Python<'py>,
    columns: PyReadonlyArray2<'py, f64>,
    start: u64,
    bucket_size: u64,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let view = columns.as_array();
    let tasks = view.ncols();
    let mut owned = Vec::new();
    // The rows in place when the matrix is C-contiguous (no copy of the values).
    let slices = crate::py::detect::rows_of(&view, &mut owned);
    let flat = py.detach(|| {
        RunState::of_columns(&slices, tasks, start, bucket_size).map(|state| state.to_flat())
    })?;
    Ok(flat.into_pyarray(py))
}

/// The flat state of the run `first` followed by the run `second`.
#[pyfunction]
pub fn state_merge<'py>(
    py: Python<'py>,
    first: PyReadonlyArray1<'py, f64>,
    second: PyReadonlyArray1<'py, f64>,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let (a, b) = (first.as_slice()?, second.as_slice()?);
    let flat = py.detach(|| {
        let merged = RunState::from_flat(a)?.merge(&RunState::from_flat(b)?)?;
        Ok::<_, crate::error::CoreError>(merged.to_flat())
    })?;
    Ok(flat.into_pyarray(py))
}

/// The table of detector `name` (`crate::state::tables::FROM_STATE`) from the flat state
/// `flat` over its metrics `metrics`, with `columns` (the state's metrics × its tasks, or
/// × the tasks at `positions`; NaN = absent) read by the filtering pass and `params` over
/// the detector's defaults; `short_tail` as in `crate::state::tables::Rows`.
#[pyfunction]
#[pyo3(signature = (name, flat, columns, metrics, params = None, positions = None, short_tail = false))]
#[allow(clippy::too_many_arguments)] // the Python signature
pub fn table_from_state<'py>(
    py: Python<'py>,
    name: &str,
    flat: PyReadonlyArray1<'py, f64>,
    columns: PyReadonlyArray2<'py, f64>,
    metrics: PyReadonlyArray1<'py, i64>,
    params: Option<&Bound<'py, pyo3::types::PyDict>>,
    positions: Option<PyReadonlyArray1<'py, i64>>,
    short_tail: bool,
) -> PyResult<Bound<'py, pyo3::types::PyDict>> {
    let params = super::detect::params_of(params)?;
    let flat = flat.as_slice()?;
    let view = columns.as_array();
    let mut owned = Vec::new();
    let rows = super::detect::rows_of(&view, &mut owned);
    let selection = metrics.as_array().to_vec();
    let positions = positions_of(positions);
    let table = py.detach(|| {
        let selection = indices(&selection);
        let state = RunState::from_flat(flat)?;
        let rows = crate::state::tables::Rows {
            columns: &rows,
            positions: positions.as_deref(),
            short_tail,
        };
        crate::state::tables::table_from_state(name, &state, rows, &selection, &params)
    })?;
    super::detect::table_to_dict(py, table)
}

/// The tasks the phase-transition table of the flat state's metrics `metrics` reads next
/// and the gathered `columns` (the state's metrics × the tasks at `positions`; None:
/// nothing gathered yet) lack, as an (n, 2) array of `[low, high)` spans relative to the
/// state's first task, sorted and disjoint (`crate::state::tables::rows_needed`).
#[pyfunction]
#[pyo3(signature = (flat, metrics, columns = None, positions = None))]
pub fn state_rows_needed<'py>(
    py: Python<'py>,
    flat: PyReadonlyArray1<'py, f64>,
    metrics: PyReadonlyArray1<'py, i64>,
    columns: Option<PyReadonlyArray2<'py, f64>>,
    positions: Option<PyReadonlyArray1<'py, i64>>,
) -> PyResult<Bound<'py, PyArray2<i64>>> {
    let flat = flat.as_slice()?;
    let selection = metrics.as_array().to_vec();
    let view = columns.as_ref().map(|c| c.as_array());
    let mut owned = Vec::new();
    let rows = view
        .as_ref()
        .map(|v| super::detect::rows_of(v, &mut owned))
        .unwrap_or_default();
    let positions = positions_of(positions);
    let gathered = view.is_some();
    let spans = py.detach(|| {
        let state = RunState::from_flat(flat)?;
        let rows = gathered.then_some(crate::state::tables::Rows {
            columns: &rows,
            positions: Some(positions.as_deref().unwrap_or(&[])),
            short_tail: false,
        });
        crate::state::tables::rows_needed(&state, &indices(&selection), rows)
    })?;
    let flat_spans: Vec<i64> = spans
        .iter()
        .flat_map(|&(low, high)| [low as i64, high as i64])
        .collect();
    let count = spans.len();
    flat_spans.into_pyarray(py).reshape([count, 2])
}

/// Task positions from Python integers (a negative one becomes out of range).
fn positions_of(positions: Option<PyReadonlyArray1<'_, i64>>) -> Option<Vec<u64>> {
    positions.map(|p| {
        p.as_array()
            .iter()
            .map(|&t| u64::try_from(t).unwrap_or(u64::MAX))
            .collect()
    })
}

/// Metric indices from Python integers (a negative one becomes out of range).
fn indices(selection: &[i64]) -> Vec<usize> {
    selection
        .iter()
        .map(|&k| usize::try_from(k).unwrap_or(usize::MAX))
        .collect()
}
