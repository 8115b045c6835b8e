//! The detectors: one module per detector, one registry line each.
//!
//! Every detector reads `columns: &[&[f64]]` — one slice per metric, all of the same length
//! n (the tasks in recording order), NaN where a task lacks the metric — and its
//! [`Params`], and returns a [`Table`] of named fields (its `FIELDS`). [`REGISTRY`] lists
//! the detectors in the order of the pattern kinds; [`run_detector`] runs one by name, which
//! is all the bindings call. Every detector honours the `deadline` parameter (seconds of
//! budget left): past it, it stops with [`CoreError::Timeout`].
//!
//! The kernel contract (what each field means, every constant) is each module's
//! documentation; `docs/kernels.md` gives the overview. Pure Rust; the bindings live in `py`.

pub mod clustering;
pub mod conservation;
pub mod conservation_laws;
#[cfg(test)]
mod contract_tests;
pub mod correlation;
pub mod dependence;
pub mod distribution_shift;
pub mod information_flow;
pub mod outlier;
pub mod phase_transition;
pub mod roles;
pub mod shared;
pub mod table;
#[cfg(test)]
mod timing;

pub use table::{Column, Table};

use crate::args::{Budget, DefaultValue, ParamSpec, Params};
use crate::error::{CoreError, CoreResult};

/// A detector: its name (the registry key), the pattern kind it reports, its result fields,
/// its parameters with their defaults, and the kernel.
#[derive(Clone, Copy)]
pub struct Detector {
    pub name: &'static str,
    /// The `PatternKind` value of its patterns ("phase transition").
    pub kind: &'static str,
    pub fields: &'static [&'static str],
    pub params: &'static [ParamSpec],
    pub run: fn(&[&[f64]], &Params, &Budget) -> CoreResult<Table>,
}

/// Every detector, in the order of the pattern kinds (SPEC §6).
pub const REGISTRY: &[Detector] = &[
    clustering::DETECTOR,
    phase_transition::DETECTOR,
    conservation::DETECTOR,
    conservation_laws::DETECTOR,
    correlation::DETECTOR,
    outlier::DETECTOR,
    distribution_shift::DETECTOR,
    dependence::DETECTOR,
    information_flow::DETECTOR,
];

/// The parameter every detector takes: seconds of budget left (inf: none).
pub const DEADLINE: ParamSpec = ParamSpec {
    name: "deadline",
    default: DefaultValue::Float(f64::INFINITY),
};

/// The seed of every randomized detector: the same data always gives the same report.
pub const PERMUTATION_SEED: u64 = 0x5EED_CAFE;

/// The detector registered as `name`.
pub fn detector(name: &str) -> CoreResult<&'static Detector> {
    REGISTRY
        .iter()
        .find(|detector| detector.name == name)
        .ok_or_else(|| {
            let known: Vec<&str> = REGISTRY.iter().map(|detector| detector.name).collect();
            CoreError::invalid(
                "name",
                format!("name: no detector {name:?} (known: {})", known.join(", ")),
            )
        })
}

/// Run the detector `name` over `columns` with `params` (defaults for the others).
pub fn run_detector(name: &str, columns: &[&[f64]], params: &Params) -> CoreResult<Table> {
    let detector = detector(name)?;
    let specs: Vec<ParamSpec> = detector.params.iter().copied().chain([DEADLINE]).collect();
    let params = params.resolve(name, &specs)?;
    let budget = params.deadline("deadline")?;
    budget.check(detector.name)?;
    (detector.run)(columns, &params, &budget)
}
