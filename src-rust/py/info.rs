//! Bindings of the information-theory kernels: NumPy buffers in, the GIL released around
//! the core kernel, `CoreError` mapped by `py::errors`. No validation happens here.

use std::borrow::Cow;

use numpy::PyReadonlyArray1;
use pyo3::prelude::*;

use crate::info;

/// The array's data as one slice: borrowed when contiguous, else copied.
fn contiguous<'a>(array: &'a PyReadonlyArray1<'_, f64>) -> Cow<'a, [f64]> {
    match array.as_slice() {
        Ok(slice) => Cow::Borrowed(slice),
        Err(_) => Cow::Owned(array.as_array().to_vec()),
    }
}

/// Shannon entropy (bits) of the equal-width histogram of `values`.
#[pyfunction]
#[pyo3(signature = (values, bins = 10))]
pub fn entropy(py: Python<'_>, values: PyReadonlyArray1<'_, f64>, bins: i64) -> PyResult<f64> {
    let values = contiguous(&values);
    Ok(py.detach(|| info::entropy(&values, bins))?)
}

/// Entropy (bits) of the 2-D histogram of `(x, y)`, each binned over its own range.
#[pyfunction]
#[pyo3(signature = (x, y, bins = 10))]
pub fn joint_entropy(
    py: Python<'_>,
    x: PyReadonlyArray1<'_, f64>,
    y: PyReadonlyArray1<'_, f64>,
    bins: i64,
) -> PyResult<f64> {
    let (x, y) = (contiguous(&x), contiguous(&y));
    Ok(py.detach(|| info::joint_entropy(&x, &y, bins))?)
}

/// `H(X) + H(Y) - H(X, Y)` in bits, clipped at 0.
#[pyfunction]
#[pyo3(signature = (x, y, bins = 10))]
pub fn mutual_information(
    py: Python<'_>,
    x: PyReadonlyArray1<'_, f64>,
    y: PyReadonlyArray1<'_, f64>,
    bins: i64,
) -> PyResult<f64> {
    let (x, y) = (contiguous(&x), contiguous(&y));
    Ok(py.detach(|| info::mutual_information(&x, &y, bins))?)
}

/// KL(current ‖ baseline) in bits over bins shared by both samples.
#[pyfunction]
#[pyo3(signature = (current, baseline, bins = 10))]
pub fn kl_divergence(
    py: Python<'_>,
    current: PyReadonlyArray1<'_, f64>,
    baseline: PyReadonlyArray1<'_, f64>,
    bins: i64,
) -> PyResult<f64> {
    let (current, baseline) = (contiguous(&current), contiguous(&baseline));
    Ok(py.detach(|| info::kl_divergence(&current, &baseline, bins))?)
}

/// Jensen–Shannon divergence in bits (in [0, 1]) over bins shared by both samples.
#[pyfunction]
#[pyo3(signature = (p, q, bins = 10))]
pub fn jsd(
    py: Python<'_>,
    p: PyReadonlyArray1<'_, f64>,
    q: PyReadonlyArray1<'_, f64>,
    bins: i64,
) -> PyResult<f64> {
    let (p, q) = (contiguous(&p), contiguous(&q));
    Ok(py.detach(|| info::jsd(&p, &q, bins))?)
}

/// Transfer entropy X → Y in bits: `I(Y[t+lag]; X[t] | Y[t])`, clipped at 0.
#[pyfunction]
#[pyo3(signature = (x, y, lag = 1, bins = 10))]
pub fn transfer_entropy(
    py: Python<'_>,
    x: PyReadonlyArray1<'_, f64>,
    y: PyReadonlyArray1<'_, f64>,
    lag: i64,
    bins: i64,
) -> PyResult<f64> {
    let (x, y) = (contiguous(&x), contiguous(&y));
    Ok(py.detach(|| info::transfer_entropy(&x, &y, lag, bins))?)
}

/// Normalized Bandt–Pompe permutation entropy (delay 1, ties broken by position).
#[pyfunction]
#[pyo3(signature = (values, order = 3))]
pub fn permutation_entropy(
    py: Python<'_>,
    values: PyReadonlyArray1<'_, f64>,
    order: i64,
) -> PyResult<f64> {
    let values = contiguous(&values);
    Ok(py.detach(|| info::permutation_entropy(&values, order))?)
}
