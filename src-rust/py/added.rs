//! Bindings of the added detectors' kernels (outliers, shifts, dependence, flow, laws).

use numpy::{IntoPyArray, PyArray1, PyArray2, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::detect;
use crate::error::CoreError;
use crate::py::detect::{rows_of, table};

fn positive(value: i64, argument: &'static str) -> Result<usize, CoreError> {
    match usize::try_from(value) {
        Ok(count) if count >= 1 => Ok(count),
        _ => Err(CoreError::invalid(
            argument,
            format!("{argument} must be >= 1, got {value}"),
        )),
    }
}

fn count(value: i64, argument: &'static str) -> Result<usize, CoreError> {
    usize::try_from(value)
        .map_err(|_| CoreError::invalid(argument, format!("{argument} must be >= 0, got {value}")))
}

type OutlierResult<'py> = (
    Bound<'py, PyArray1<i64>>,
    Bound<'py, PyArray1<i64>>,
    Bound<'py, PyArray1<f64>>,
    Bound<'py, PyArray1<f64>>,
);

/// (task, metric, z, deviation) of every value whose robust z-score exceeds `z_threshold`.
#[pyfunction]
pub fn outlier_scores<'py>(
    py: Python<'py>,
    columns: PyReadonlyArray2<'py, f64>,
    z_threshold: f64,
) -> PyResult<OutlierResult<'py>> {
    let view = columns.as_array();
    let mut owned = Vec::new();
    let rows = rows_of(&view, &mut owned);
    let found = py.detach(|| detect::outlier_scores(&rows, z_threshold))?;
    Ok((
        found.task.into_pyarray(py),
        found.metric.into_pyarray(py),
        found.z.into_pyarray(py),
        found.deviation.into_pyarray(py),
    ))
}

/// Per-metric distribution-shift statistics with permutation p-values.
#[pyfunction]
pub fn distribution_shift_stats<'py>(
    py: Python<'py>,
    columns: PyReadonlyArray2<'py, f64>,
    min_segment: i64,
    permutations: i64,
    seed: u64,
    max_test_n: i64,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    let min_segment = count(min_segment, "min_segment")?;
    let permutations = count(permutations, "permutations")?;
    let max_test_n = count(max_test_n, "max_test_n")?;
    let view = columns.as_array();
    let mut owned = Vec::new();
    let rows = rows_of(&view, &mut owned);
    let stats = py.detach(|| {
        detect::distribution_shift_stats(&rows, min_segment, permutations, seed, max_test_n)
    })?;
    Ok(table(stats).into_pyarray(py))
}

/// Per-pair nonlinear dependence statistics with permutation p-values.
#[pyfunction]
pub fn dependence_stats<'py>(
    py: Python<'py>,
    columns: PyReadonlyArray2<'py, f64>,
    threshold_r: f64,
    min_pairs: i64,
    permutations: i64,
    seed: u64,
    max_test_n: i64,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    let min_pairs = positive(min_pairs, "min_pairs")?;
    let permutations = count(permutations, "permutations")?;
    let max_test_n = count(max_test_n, "max_test_n")?;
    let view = columns.as_array();
    let mut owned = Vec::new();
    let rows = rows_of(&view, &mut owned);
    let stats = py.detach(|| {
        detect::dependence_stats(
            &rows,
            threshold_r,
            min_pairs,
            permutations,
            seed,
            max_test_n,
        )
    })?;
    Ok(table(stats).into_pyarray(py))
}

/// Per ordered pair transfer-entropy statistics with source-surrogate p-values.
#[pyfunction]
pub fn information_flow_stats<'py>(
    py: Python<'py>,
    columns: PyReadonlyArray2<'py, f64>,
    min_values: i64,
    permutations: i64,
    seed: u64,
    max_test_n: i64,
    max_lag: i64,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    let min_values = positive(min_values, "min_values")?;
    let permutations = count(permutations, "permutations")?;
    let max_test_n = count(max_test_n, "max_test_n")?;
    let max_lag = count(max_lag, "max_lag")?;
    let view = columns.as_array();
    let mut owned = Vec::new();
    let rows = rows_of(&view, &mut owned);
    let stats = py.detach(|| {
        detect::information_flow_stats(&rows, min_values, permutations, seed, max_test_n, max_lag)
    })?;
    Ok(table(stats).into_pyarray(py))
}

/// Linear conservation laws among 2..=max_terms metrics, as a list of dicts.
#[pyfunction]
pub fn conservation_laws<'py>(
    py: Python<'py>,
    columns: PyReadonlyArray2<'py, f64>,
    excluded: PyReadonlyArray1<'py, bool>,
    tolerance_eig: f64,
    seed: u64,
    max_terms: i64,
    sample_size: i64,
) -> PyResult<Bound<'py, PyList>> {
    let max_terms = count(max_terms, "max_terms")?;
    let sample_size = count(sample_size, "sample_size")?;
    let excluded = excluded.as_array().to_vec();
    let view = columns.as_array();
    let mut owned = Vec::new();
    let rows = rows_of(&view, &mut owned);
    let laws = py.detach(|| {
        detect::conservation_laws(
            &rows,
            &excluded,
            tolerance_eig,
            seed,
            max_terms,
            sample_size,
        )
    })?;
    let list = PyList::empty(py);
    for law in laws {
        let entry = PyDict::new(py);
        entry.set_item("metrics", law.metrics)?;
        entry.set_item("coefficients", law.coefficients)?;
        entry.set_item("constant", law.constant)?;
        entry.set_item("residual_std", law.residual_std)?;
        entry.set_item("satisfied", law.satisfied.into_pyarray(py))?;
        entry.set_item("tasks", law.tasks.into_pyarray(py))?;
        entry.set_item("support", law.support)?;
        list.append(entry)?;
    }
    Ok(list)
}
