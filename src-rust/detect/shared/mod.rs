//! Building blocks shared by the detectors: column checks and views, seeded permutations
//! and the sequential permutation test, AR prewhitening, order statistics and binning,
//! symmetric eigen decomposition. The NumPy backend has a module of the same name for each
//! (`crackle_runtime._numpy.detect.shared`).

pub mod columns;
pub mod eigen;
pub mod permutation;
pub mod prewhiten;
pub mod ranks;
#[cfg(test)]
pub(crate) mod test_data;
