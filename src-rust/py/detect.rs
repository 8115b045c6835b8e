//! The detectors' one binding: `run_detector(name, columns, metrics, params)` runs any
//! registered detector over a (metrics, tasks) float64 matrix and returns its named fields
//! as a dict of NumPy arrays. Parameters are converted, not judged (the core's `args` does
//! that), and the GIL is released while the detector runs. Adding a detector changes
//! nothing here.

use numpy::ndarray::ArrayView2;
use numpy::{IntoPyArray, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyTuple};

use crate::args::{DefaultValue, Params, Value};
use crate::detect::{self, roles, Column, Table};

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

/// A Python parameter value as a core [`Value`] (no checks: the core's accessors judge it).
fn value_of(object: &Bound<'_, PyAny>) -> Value {
    if object.is_instance_of::<PyBool>() {
        return Value::Bool(object.is_truthy().unwrap_or(false));
    }
    if object.is_instance_of::<PyInt>() {
        return Value::Int(object.extract::<i128>().ok());
    }
    if object.is_instance_of::<PyFloat>() {
        return object
            .extract::<f64>()
            .map_or(Value::Float(f64::NAN), Value::Float);
    }
    // NumPy scalars and other numbers: through their index or float conversion.
    if let Ok(index) = object.call_method0("__index__") {
        return Value::Int(index.extract::<i128>().ok());
    }
    match object.extract::<f64>() {
        Ok(number) => Value::Float(number),
        Err(_) => Value::Other(
            object
                .get_type()
                .name()
                .map_or_else(|_| "object".to_owned(), |name| name.to_string()),
        ),
    }
}

pub(crate) fn params_of(params: Option<&Bound<'_, PyDict>>) -> PyResult<Params> {
    let mut converted = Params::new();
    if let Some(params) = params {
        for (name, value) in params.iter() {
            converted.insert(name.str()?.to_string(), value_of(&value));
        }
    }
    Ok(converted)
}

/// The table as a dict of NumPy arrays (moved, not copied).
pub(crate) fn table_to_dict<'py>(py: Python<'py>, table: Table) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    for (name, column) in table.into_columns() {
        match column {
            Column::Float(values) => dict.set_item(name, values.into_pyarray(py))?,
            Column::Int(values) => dict.set_item(name, values.into_pyarray(py))?,
            Column::Bool(values) => dict.set_item(name, values.into_pyarray(py))?,
        }
    }
    Ok(dict)
}

/// Run the registered detector `name` over the rows `metrics` (all when None) of
/// `columns` (metrics × tasks, NaN = absent) with `params` over its defaults; returns its
/// named fields. `complete` (one flag per selected row) marks the rows the caller knows to
/// hold every value, all finite: the detector does not read them to find gaps
/// (`detect::shared::columns::with_complete_columns`). The flags are the caller's word: a
/// wrong one has NaN read as a value or an infinity scored (the NumPy backend ignores them).
#[pyfunction]
#[pyo3(signature = (name, columns, metrics = None, params = None, complete = None))]
pub fn run_detector<'py>(
    py: Python<'py>,
    name: &str,
    columns: PyReadonlyArray2<'py, f64>,
    metrics: Option<PyReadonlyArray1<'py, i64>>,
    params: Option<&Bound<'py, PyDict>>,
    complete: Option<PyReadonlyArray1<'py, bool>>,
) -> PyResult<Bound<'py, PyDict>> {
    let params = params_of(params)?;
    let view = columns.as_array();
    let mut owned = Vec::new();
    let rows = rows_of(&view, &mut owned);
    let selection = metrics.map(|m| m.as_array().to_vec());
    let complete = complete.map(|flags| flags.as_array().to_vec());
    let table = py.detach(|| {
        let rows = match &selection {
            Some(selection) => detect::shared::columns::select_rows(&rows, selection)?,
            None => rows,
        };
        with_flags(&rows, complete.as_deref(), || {
            detect::run_detector(name, &rows, &params)
        })
    })?;
    table_to_dict(py, table)
}

/// `run` with the rows flagged in `complete` known to be complete (an error naming
/// `complete` when it does not hold one flag per row).
fn with_flags<R>(
    rows: &[&[f64]],
    complete: Option<&[bool]>,
    run: impl FnOnce() -> crate::error::CoreResult<R>,
) -> crate::error::CoreResult<R> {
    match complete {
        None => run(),
        Some(flags) if flags.len() == rows.len() => {
            detect::shared::columns::with_complete_columns(rows, flags, run)
        }
        Some(flags) => Err(crate::error::CoreError::invalid(
            "complete",
            format!(
                "complete must hold one flag per selected row ({} flags, {} rows)",
                flags.len(),
                rows.len()
            ),
        )),
    }
}

/// The roles of the rows `metrics` (all when None) of `columns`: `counter`, `spearman`,
/// `distinct_share` and `index` per metric (`detect::roles`); `complete` as for
/// [`run_detector`].
#[pyfunction]
#[pyo3(signature = (columns, metrics = None, complete = None))]
pub fn column_roles<'py>(
    py: Python<'py>,
    columns: PyReadonlyArray2<'py, f64>,
    metrics: Option<PyReadonlyArray1<'py, i64>>,
    complete: Option<PyReadonlyArray1<'py, bool>>,
) -> PyResult<Bound<'py, PyDict>> {
    let view = columns.as_array();
    let mut owned = Vec::new();
    let rows = rows_of(&view, &mut owned);
    let selection = metrics.map(|m| m.as_array().to_vec());
    let complete = complete.map(|flags| flags.as_array().to_vec());
    let table = py.detach(|| {
        let rows = match &selection {
            Some(selection) => detect::shared::columns::select_rows(&rows, selection)?,
            None => rows,
        };
        with_flags(&rows, complete.as_deref(), || {
            roles::column_roles(&rows, &crate::args::Budget::unlimited())
        })
    })?;
    table_to_dict(py, table)
}

/// Per row of `columns` (metrics x tasks, NaN when absent): the number of phase groups its
/// spread repeats the cycle of `periods[row]` tasks in (0: none, or a period of 0), the
/// first task at phase `start` (`detect::shared::seasonal::phase_groups`).
#[pyfunction]
#[pyo3(signature = (columns, periods, start = 0))]
pub fn phase_groups<'py>(
    py: Python<'py>,
    columns: PyReadonlyArray2<'py, f64>,
    periods: PyReadonlyArray1<'py, i64>,
    start: i64,
) -> PyResult<Bound<'py, numpy::PyArray1<i64>>> {
    let view = columns.as_array();
    let mut owned = Vec::new();
    let rows = rows_of(&view, &mut owned);
    let periods = periods.as_array().to_vec();
    if periods.len() != rows.len() {
        return Err(pyo3::exceptions::PyValueError::new_err(format!(
            "periods: {} periods for {} rows of columns",
            periods.len(),
            rows.len()
        )));
    }
    if periods.iter().any(|&p| p < 0) {
        return Err(pyo3::exceptions::PyValueError::new_err(
            "periods: a period is at least 0",
        ));
    }
    let start = usize::try_from(start)
        .map_err(|_| pyo3::exceptions::PyValueError::new_err("start: at least 0"))?;
    let groups: Vec<i64> = py.detach(|| {
        use rayon::prelude::*;
        rows.par_iter()
            .zip(&periods)
            .map(|(row, &period)| {
                detect::shared::seasonal::phase_groups(row, period as usize, start) as i64
            })
            .collect()
    });
    Ok(groups.into_pyarray(py))
}

/// Forgets the conservation-law fits kept for the latest samples
/// (`detect::conservation_laws::forget_fits`): the next run fits every subset again.
#[pyfunction]
pub fn forget_law_fits() {
    detect::conservation_laws::forget_fits();
}

/// The AR residuals of the rows `metrics` (all when None) of `columns`, one row each over
/// the same tasks (`detect::shared::prewhiten::prewhiten_columns`).
#[pyfunction]
#[pyo3(signature = (columns, metrics = None))]
pub fn prewhiten<'py>(
    py: Python<'py>,
    columns: PyReadonlyArray2<'py, f64>,
    metrics: Option<PyReadonlyArray1<'py, i64>>,
) -> PyResult<Bound<'py, numpy::PyArray2<f64>>> {
    let view = columns.as_array();
    let tasks = view.ncols();
    let mut owned = Vec::new();
    let rows = rows_of(&view, &mut owned);
    let selection = metrics.map(|m| m.as_array().to_vec());
    let (count, flat) = py.detach(|| {
        let rows = match &selection {
            Some(selection) => detect::shared::columns::select_rows(&rows, selection)?,
            None => rows,
        };
        let mut flat = vec![0.0; rows.len() * tasks];
        detect::shared::prewhiten::prewhiten_columns_into(&rows, &mut flat);
        Ok::<_, crate::error::CoreError>((rows.len(), flat))
    })?;
    let array = numpy::ndarray::Array2::from_shape_vec((count, tasks), flat)
        .map_err(|error| pyo3::exceptions::PyValueError::new_err(error.to_string()))?;
    Ok(array.into_pyarray(py))
}

fn default_value<'py>(py: Python<'py>, default: DefaultValue) -> PyResult<Bound<'py, PyAny>> {
    Ok(match default {
        DefaultValue::Float(value) => PyFloat::new(py, value).into_any(),
        DefaultValue::Int(value) => value.into_pyobject(py)?.into_any(),
        DefaultValue::Seed(value) => value.into_pyobject(py)?.into_any(),
        DefaultValue::Bool(value) => PyBool::new(py, value).to_owned().into_any(),
    })
}

/// `{name: {"kind": str, "fields": tuple[str, ...], "params": {name: default}}}` for every
/// registered detector, in registry order (the module's `DETECTORS`).
pub fn registry_description(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let described = PyDict::new(py);
    for detector in detect::REGISTRY {
        let entry = PyDict::new(py);
        entry.set_item("kind", detector.kind)?;
        entry.set_item("fields", PyTuple::new(py, detector.fields)?)?;
        let params = PyDict::new(py);
        for spec in detector.params.iter().chain([&detect::DEADLINE]) {
            params.set_item(spec.name, default_value(py, spec.default)?)?;
        }
        entry.set_item("params", params)?;
        described.set_item(detector.name, entry)?;
    }
    Ok(described)
}
