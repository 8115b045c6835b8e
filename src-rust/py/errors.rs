//! Core errors → Python exception classes (defined once, in `crackle_runtime.errors`).

use pyo3::exceptions::PyValueError;
use pyo3::PyErr;

use crate::error::CoreError;

pyo3::import_exception!(crackle_runtime.errors, CoolingTimeoutError);
pyo3::import_exception!(crackle_runtime.errors, DetectionFailedError);

impl From<CoreError> for PyErr {
    fn from(error: CoreError) -> PyErr {
        let message = error.to_string();
        match error {
            CoreError::InvalidArgument { .. } => PyValueError::new_err(message),
            CoreError::Timeout { .. } => CoolingTimeoutError::new_err(message),
            CoreError::DetectionFailed(_) => DetectionFailedError::new_err(message),
        }
    }
}
