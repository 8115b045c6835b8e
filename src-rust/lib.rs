//! crackle_runtime's native core.
//!
//! `info` (information-theory kernels), `detect` (the detectors), `stats` and `rng` are pure
//! Rust and never mention pyo3; `py` is the thin bindings layer.

pub mod detect;
pub mod error;
pub mod info;
pub mod py;
pub mod rng;
pub mod stats;

use pyo3::prelude::*;

#[pymodule]
mod _native {
    use pyo3::prelude::*;

    #[pymodule_export]
    use crate::py::info::{
        entropy, joint_entropy, jsd, kl_divergence, mutual_information, permutation_entropy,
        transfer_entropy,
    };

    #[pymodule_export]
    use crate::py::added::{
        conservation_laws, dependence_stats, distribution_shift_stats, information_flow_stats,
        outlier_scores,
    };

    #[pymodule_export]
    use crate::py::detect::{
        cluster_components, conservation_stats, correlation_stats, phase_transition_stats,
    };

    #[pymodule_export]
    use crate::py::record::fire_chunk;

    #[pymodule_init]
    fn init(m: &Bound<'_, PyModule>) -> PyResult<()> {
        m.add("__version__", env!("CARGO_PKG_VERSION"))?;
        let profile = if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        };
        m.add("build_profile", profile)?;
        Ok(())
    }
}
