//! Deterministic random data for the detector tests (SplitMix64 only).

use crate::rng::SplitMix64;

/// Standard normal draws (Box–Muller, one draw per pair of uniforms).
pub(crate) fn normals(seed: u64, n: usize) -> Vec<f64> {
    let mut rng = SplitMix64::new(seed);
    (0..n)
        .map(|_| {
            let u = 1.0 - rng.next_f64();
            let v = rng.next_f64();
            (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
        })
        .collect()
}

/// Uniform draws in [low, high).
pub(crate) fn uniforms(seed: u64, n: usize, low: f64, high: f64) -> Vec<f64> {
    let mut rng = SplitMix64::new(seed);
    (0..n)
        .map(|_| low + (high - low) * rng.next_f64())
        .collect()
}
