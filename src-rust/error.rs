//! The core's error type. The core never mentions pyo3; `py::errors` maps each variant to
//! its Python class in one place.

use std::fmt;

/// Every way a kernel or detector can refuse its input or stop early.
#[derive(Debug, Clone, PartialEq)]
pub enum CoreError {
    /// A parameter or input array is invalid (raised as `ValueError`).
    InvalidArgument {
        argument: &'static str,
        message: String,
    },
    /// The time budget ran out before the stage finished (raised as `CoolingTimeoutError`).
    Timeout { stage: &'static str },
    /// A detector could not run on the data (raised as `DetectionFailedError`).
    DetectionFailed(String),
}

impl CoreError {
    pub fn invalid(argument: &'static str, message: impl Into<String>) -> Self {
        CoreError::InvalidArgument {
            argument,
            message: message.into(),
        }
    }
}

impl fmt::Display for CoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CoreError::InvalidArgument { message, .. } => f.write_str(message),
            CoreError::Timeout { stage } => write!(f, "time budget exhausted during {stage}"),
            CoreError::DetectionFailed(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for CoreError {}

pub type CoreResult<T> = Result<T, CoreError>;
