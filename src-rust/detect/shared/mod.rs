//! Building blocks shared by the detectors: column checks and views, seeded permutations
//! and the sequential permutation test, AR prewhitening, order statistics and binning,
//! symmetric eigen decomposition, cycles (seasonality). The NumPy backend has a module of the same name for each
//! (`crackle_runtime._numpy.detect.shared`).

pub mod columns;
pub mod eigen;
pub mod permutation;
pub mod prewhiten;
pub mod ranks;
pub mod seasonal;
pub mod surrogates;
#[cfg(test)]
pub(crate) mod test_data;

/// Frees `value` on a thread of its own. A detector cut by its deadline can hold millions
/// of small per-pair allocations whose freeing takes a tenth of a second: time the caller
/// no longer has. If no thread can be started, `value` is freed here.
pub fn release_in_background<T: Send + 'static>(value: T) {
    // On a spawn error the closure, and `value` with it, is dropped by the call.
    let _ = std::thread::Builder::new()
        .name("crackle-release".into())
        .spawn(move || drop(value));
}

/// `Σ_t series[t] · series[t + lag]` over t < n - lag, exact in i128 (the caller keeps the
/// products in range).
pub(crate) fn lagged_product_sum(series: &[i128], lag: usize) -> i128 {
    series[..series.len() - lag]
        .iter()
        .zip(&series[lag..])
        .map(|(a, b)| a * b)
        .sum()
}
