//! SplitMix64, the only random number generator of the core (docs/kernels.md, "Random numbers").
//!
//! Output `i` (0-based) of stream `seed` is `mix(seed + (i + 1) * GOLDEN_GAMMA)` in wrapping
//! `u64` arithmetic, so any output can be computed directly and the NumPy backend can draw a
//! whole block at once with `np.uint64` arrays.

/// The SplitMix64 increment (2^64 / golden ratio, odd).
pub const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// The SplitMix64 output function.
#[inline]
pub fn mix(z: u64) -> u64 {
    let z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    let z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Output `index` (0-based) of the stream `seed`, without generating the ones before it.
#[inline]
pub fn splitmix64_output(seed: u64, index: u64) -> u64 {
    mix(seed.wrapping_add(index.wrapping_add(1).wrapping_mul(GOLDEN_GAMMA)))
}

/// Maps a raw output to a float uniform in [0, 1): the top 53 bits times 2^-53.
#[inline]
pub fn unit_f64(u: u64) -> f64 {
    (u >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// `u % bound` for a fixed bound without a hardware division per draw (bit-identical to
/// `%`): with `m = floor((2^64 - 1) / bound)`, `q = floor(u·m / 2^64)` is `u / bound` or one
/// less, so `u - q·bound` needs at most one correction.
#[derive(Debug, Clone, Copy)]
pub struct Modulo {
    bound: u64,
    multiplier: u64,
}

impl Modulo {
    /// Reduction modulo `bound`; a bound of 0 reduces everything to 0.
    pub fn new(bound: u64) -> Self {
        let multiplier = if bound > 1 { u64::MAX / bound } else { 0 };
        Modulo { bound, multiplier }
    }

    /// `u % bound` (0 when the bound is 0 or 1).
    #[inline]
    pub fn reduce(&self, u: u64) -> u64 {
        if self.bound <= 1 {
            return 0;
        }
        let quotient = ((u as u128 * self.multiplier as u128) >> 64) as u64;
        let remainder = u - quotient * self.bound;
        if remainder >= self.bound {
            remainder - self.bound
        } else {
            remainder
        }
    }
}

/// A SplitMix64 stream: yields outputs 0, 1, 2, ... of `seed` (endless iterator).
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// The stream of `seed`, positioned before output 0.
    pub fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    /// The next raw 64-bit output.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN_GAMMA);
        mix(self.state)
    }

    /// The next output reduced to `[0, bound)` as `u % bound` (the contract's rule, modulo
    /// bias included). `bound` must be positive; 0 yields 0 rather than panicking.
    #[inline]
    pub fn next_below(&mut self, bound: u64) -> u64 {
        let u = self.next_u64();
        if bound == 0 {
            0
        } else {
            u % bound
        }
    }

    /// The next output as a float uniform in [0, 1).
    #[inline]
    pub fn next_f64(&mut self) -> f64 {
        unit_f64(self.next_u64())
    }
}

impl Iterator for SplitMix64 {
    type Item = u64;

    #[inline]
    fn next(&mut self) -> Option<u64> {
        Some(self.next_u64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_reference_splitmix64_sequence() {
        // Reference outputs of Vigna's splitmix64.c with x = 1234567.
        let mut rng = SplitMix64::new(1234567);
        let expected = [
            6457827717110365317u64,
            3203168211198807973,
            9817491932198370423,
            4593380528125082431,
            16408922859458223821,
        ];
        for value in expected {
            assert_eq!(rng.next_u64(), value);
        }
    }

    #[test]
    fn direct_output_equals_streamed_output() {
        for seed in [0u64, 1, 0x5EED_C1A5_7E00_0000, u64::MAX] {
            let streamed: Vec<u64> = SplitMix64::new(seed).take(100).collect();
            for (i, value) in streamed.iter().enumerate() {
                assert_eq!(splitmix64_output(seed, i as u64), *value);
            }
        }
    }

    #[test]
    fn seed_zero_first_output() {
        // mix(0x9E3779B97F4A7C15), the well-known first output of SplitMix64 seeded with 0.
        assert_eq!(splitmix64_output(0, 0), 0xE220_A839_7B1D_CDAF);
    }

    #[test]
    fn modulo_equals_the_remainder_operator() {
        let mut rng = SplitMix64::new(99);
        let bounds = [
            1u64,
            2,
            3,
            7,
            10,
            4096,
            4097,
            1 << 32,
            (1 << 32) + 15,
            u64::MAX - 1,
            u64::MAX,
        ];
        for bound in bounds {
            let modulo = Modulo::new(bound);
            for u in [
                0,
                1,
                bound - 1,
                bound,
                bound.wrapping_add(1),
                u64::MAX,
                u64::MAX - 1,
            ] {
                assert_eq!(modulo.reduce(u), u % bound, "{u} % {bound}");
            }
            for _ in 0..20_000 {
                let u = rng.next_u64();
                assert_eq!(modulo.reduce(u), u % bound, "{u} % {bound}");
            }
        }
        for _ in 0..20_000 {
            let bound = rng.next_u64() >> (rng.next_u64() % 64);
            let u = rng.next_u64();
            assert_eq!(
                Modulo::new(bound).reduce(u),
                if bound == 0 { 0 } else { u % bound }
            );
        }
    }

    #[test]
    fn floats_are_in_unit_interval_and_bounded_draws_in_range() {
        let mut rng = SplitMix64::new(42);
        for _ in 0..10_000 {
            let f = rng.next_f64();
            assert!((0.0..1.0).contains(&f));
            assert!(rng.next_below(7) < 7);
        }
        assert_eq!(unit_f64(u64::MAX), 1.0 - f64::EPSILON / 2.0);
        assert_eq!(unit_f64(0), 0.0);
        assert_eq!(SplitMix64::new(3).next_below(0), 0);
    }
}
