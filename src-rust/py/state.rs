//! The mergeable state's bindings: a state travels as its flat f64 body (see
//! `crate::state::RunState::to_flat`); the Python layer adds the byte header. Inputs are
//! NumPy buffers, the GIL is released around the work, core errors map to Python classes.

use numpy::{IntoPyArray, PyArray1, PyReadonlyArray1, PyReadonlyArray2};
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
    let owned: Vec<Vec<f64>> = view.rows().into_iter().map(|row| row.to_vec()).collect();
    let flat = py.detach(|| {
        let slices: Vec<&[f64]> = owned.iter().map(Vec::as_slice).collect();
        RunState::of_columns(&slices, start, bucket_size).map(|state| state.to_flat())
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
/// `flat` over its metrics `metrics`, with `columns` (the state's metrics × its tasks, NaN
/// = absent) read by the filtering pass and `params` over the detector's defaults.
#[pyfunction]
#[pyo3(signature = (name, flat, columns, metrics, params = None))]
pub fn table_from_state<'py>(
    py: Python<'py>,
    name: &str,
    flat: PyReadonlyArray1<'py, f64>,
    columns: PyReadonlyArray2<'py, f64>,
    metrics: PyReadonlyArray1<'py, i64>,
    params: Option<&Bound<'py, pyo3::types::PyDict>>,
) -> PyResult<Bound<'py, pyo3::types::PyDict>> {
    let params = super::detect::params_of(params)?;
    let flat = flat.as_slice()?;
    let view = columns.as_array();
    let mut owned = Vec::new();
    let rows = super::detect::rows_of(&view, &mut owned);
    let selection = metrics.as_array().to_vec();
    let table = py.detach(|| {
        let selection: Vec<usize> = selection
            .iter()
            .map(|&k| usize::try_from(k).unwrap_or(usize::MAX))
            .collect();
        let state = RunState::from_flat(flat)?;
        crate::state::tables::table_from_state(name, &state, &rows, &selection, &params)
    })?;
    super::detect::table_to_dict(py, table)
}
