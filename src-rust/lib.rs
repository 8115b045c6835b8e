//! crackle_runtime's native core.
//!
//! `info` (information-theory kernels), `detect` (the detectors and their registry), `state`
//! (the mergeable cooling state), `args`
//! (every argument check), `stats` and `rng` are pure Rust and never mention pyo3; `py` is
//! the thin bindings layer, built with the `python` feature (the default).

pub mod args;
pub mod detect;
pub mod error;
pub mod info;
#[cfg(feature = "python")]
pub mod py;
pub mod rng;
pub mod state;
pub mod stats;

#[cfg(feature = "python")]
use pyo3::prelude::*;

#[cfg(feature = "python")]
#[pymodule]
mod _native {
    use pyo3::prelude::*;

    #[pymodule_export]
    use crate::py::info::{
        entropy, joint_entropy, jsd, kl_divergence, mutual_information, permutation_entropy,
        transfer_entropy,
    };

    #[pymodule_export]
    use crate::py::detect::{column_roles, forget_law_fits, phase_groups, prewhiten, run_detector};

    #[pymodule_export]
    use crate::py::record::fire_chunk;

    #[pymodule_export]
    use crate::py::state::{state_merge, state_of_columns, state_rows_needed, table_from_state};

    #[pymodule_init]
    fn init(m: &Bound<'_, PyModule>) -> PyResult<()> {
        m.add("__version__", env!("CARGO_PKG_VERSION"))?;
        let profile = if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        };
        m.add("build_profile", profile)?;
        m.add(
            "DETECTORS",
            crate::py::detect::registry_description(m.py())?,
        )?;
        m.add("ROLE_FIELDS", crate::detect::roles::FIELDS.to_vec())?;
        m.add("PERMUTATION_SEED", crate::detect::PERMUTATION_SEED)?;
        m.add("CHUNK_FIELDS", crate::py::record::CHUNK_FIELDS.to_vec())?;
        m.add("STATE_SERIES_FIELDS", crate::state::SERIES_FIELDS.to_vec())?;
        m.add("STATE_PAIR_FIELDS", crate::state::PAIR_FIELDS.to_vec())?;
        Ok(())
    }
}
