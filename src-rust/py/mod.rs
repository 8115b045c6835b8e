//! The bindings: NumPy buffers in, the GIL released around core work, errors mapped.
//! Nothing outside this module mentions pyo3.

pub mod detect;
pub mod errors;
pub mod info;
pub mod record;
pub mod state;
