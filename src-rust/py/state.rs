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
