//! Bindings of the detector kernels: one (metrics, tasks) float64 matrix in, statistics out.

use std::time::{Duration, Instant};

use numpy::ndarray::{Array2, ArrayView2};
use numpy::{IntoPyArray, PyArray1, PyArray2, PyReadonlyArray2};
use pyo3::prelude::*;

use crate::detect;
use crate::error::CoreError;

/// The rows of `view` as slices: borrowed when each row is contiguous (also for a view into
/// a wider buffer), else copied once.
pub(crate) fn rows_of<'a>(
    view: &'a ArrayView2<'a, f64>,
    owned: &'a mut Vec<Vec<f64>>,
) -> Vec<&'a [f64]> {
    if view.rows().into_iter().all(|row| row.as_slice().is_some()) {
        return view
            .rows()
            .into_iter()
            .map(|row| row.to_slice().unwrap_or(&[]))
            .collect();
    }
    *owned = view.rows().into_iter().map(|row| row.to_vec()).collect();
    owned.iter().map(Vec::as_slice).collect()
}

pub(crate) fn table<const W: usize>(rows: Vec<[f64; W]>) -> Array2<f64> {
    let count = rows.len();
    let flat: Vec<f64> = rows.into_iter().flatten().collect();
    Array2::from_shape_vec((count, W), flat).unwrap_or_else(|_| Array2::zeros((0, W)))
}

fn deadline_from(seconds: f64) -> Result<Option<Instant>, CoreError> {
    if seconds.is_nan() {
        return Err(CoreError::invalid("deadline", "deadline must not be NaN"));
    }
    if !seconds.is_finite() || seconds > 1e9 {
        return Ok(None);
    }
    Ok(Some(
        Instant::now() + Duration::from_secs_f64(seconds.max(0.0)),
    ))
}

type ClusterResult<'py> = (
    Bound<'py, PyArray1<i64>>,
    Bound<'py, PyArray1<f64>>,
    Bound<'py, PyArray1<bool>>,
);

/// Connected components of tasks closer than `threshold`: (labels, avg_distance, sampled).
#[pyfunction]
#[pyo3(signature = (columns, threshold, deadline=f64::INFINITY))]
pub fn cluster_components<'py>(
    py: Python<'py>,
    columns: PyReadonlyArray2<'py, f64>,
    threshold: f64,
    deadline: f64,
) -> PyResult<ClusterResult<'py>> {
    let view = columns.as_array();
    let mut owned = Vec::new();
    let rows = rows_of(&view, &mut owned);
    let deadline = deadline_from(deadline)?;
    let mut clusters = py.detach(|| detect::cluster_components(&rows, threshold, deadline))?;
    if rows.is_empty() {
        // No metric at all: every task is a singleton (the core cannot see n without rows).
        clusters.labels = vec![-1; view.ncols()];
    }
    Ok((
        clusters.labels.into_pyarray(py),
        clusters.avg_distance.into_pyarray(py),
        clusters.sampled.into_pyarray(py),
    ))
}

/// Per-metric phase-transition statistics (see the kernel contract for the columns).
#[pyfunction]
pub fn phase_transition_stats<'py>(
    py: Python<'py>,
    columns: PyReadonlyArray2<'py, f64>,
    sensitivity: f64,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    let view = columns.as_array();
    let mut owned = Vec::new();
    let rows = rows_of(&view, &mut owned);
    let stats = py.detach(|| detect::phase_transition_stats(&rows, sensitivity))?;
    Ok(table(stats).into_pyarray(py))
}

/// Per-metric conservation statistics.
#[pyfunction]
pub fn conservation_stats<'py>(
    py: Python<'py>,
    columns: PyReadonlyArray2<'py, f64>,
    tolerance: f64,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    let view = columns.as_array();
    let mut owned = Vec::new();
    let rows = rows_of(&view, &mut owned);
    let stats = py.detach(|| detect::conservation_stats(&rows, tolerance))?;
    Ok(table(stats).into_pyarray(py))
}

/// Per-pair correlation statistics.
#[pyfunction]
pub fn correlation_stats<'py>(
    py: Python<'py>,
    columns: PyReadonlyArray2<'py, f64>,
    threshold: f64,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    let view = columns.as_array();
    let mut owned = Vec::new();
    let rows = rows_of(&view, &mut owned);
    let stats = py.detach(|| detect::correlation_stats(&rows, threshold))?;
    Ok(table(stats).into_pyarray(py))
}
