//! Circular time-shift surrogates (Quiroga et al. 2002; Schreiber & Schmitz 2000) and the
//! shared sequential tests that run on them (DEPENDENCE, INFORMATION_FLOW).
//!
//! Why shifts, not permutations: a surrogate of a pair test must keep everything about each
//! series except its relation to the other. An iid permutation destroys the shifted
//! series' serial structure, so whatever autocorrelation is left in it (the AR
//! prewhitening the detectors read removes the linear part, not volatility clusters,
//! nonlinear or seasonal memory, nor the order of ties) makes the permutation null too
//! narrow and the test anti-conservative. A circular shift `s_t = v_{(t + k) mod N}` keeps
//! the whole serial structure of v (every autocorrelation, the marginal, the order of
//! ties), broken only at the single wrap-around point, and destroys only its alignment with
//! the other series — the time-shifted surrogates of Quiroga et al. (2002), the
//! "circular shift" source surrogates of transfer-entropy testing (Lindner et al. 2011;
//! Wibral et al. 2013). The shift is at least `shortest` (and at most N − shortest), the
//! decorrelation length of the shifted series plus the lags a test scans, so no surrogate is
//! a near copy of the original alignment (a shift shorter than the memory of the series
//! would keep part of a genuine relation and cost power; Kirch 2007 and Politis & Romano
//! 1994 take the block length from the estimated autocorrelation in the same way).
//!
//! - [`decorrelation_length`] of codes c (length N): with `d_t = N·c_t − Σc` and
//!   `A_k = Σ_{t<N−k} d_t d_{t+k}` (exact integers), the first lag k in 1..=⌊N/4⌋ with
//!   `A_k <= 0` or `(A_k / A_0)·√N < 2` (the sample autocorrelation inside Bartlett's
//!   white-noise band 2/√N); ⌊N/4⌋ when none (at least 1); 1 for a constant series.
//! - [`shortest_shift`]`(codes, floor)` = min(floor + L − 1, max(⌊N/4⌋, 1)), L the
//!   decorrelation length.
//! - [`circular_shift`]`(stream, N, shortest)`: with u = the top 32 bits of SplitMix64
//!   output 0 of `stream` and range = N − 2·shortest + 1 (at least 1), k = shortest + ⌊u · range / 2³²⌋
//!   (shortest limited to ⌊(N − 1) / 2⌋); the surrogate is `v[(t + k) mod N]`.
//!
//! The NumPy twin is `crackle_runtime._numpy.detect.shared.surrogates`.

use std::sync::atomic::{AtomicBool, Ordering};

use rayon::prelude::*;

use super::lagged_product_sum;
use super::permutation::{round_seed, PermutationTest, SequentialTest};
use crate::args::Budget;
use crate::error::{CoreError, CoreResult};
use crate::rng::splitmix64_output;

/// A round of shared surrogate tests runs in parallel from this many surrogate values
/// (summed over its tests) on; smaller rounds run on the calling thread.
const PARALLEL_ROUND_WORK: usize = 1 << 15;
/// Inside a round of shared surrogate tests the deadline is checked every this many tests.
const ROUND_CHECK_TESTS: usize = 64;

/// The lag at which the codes' sample autocorrelation first falls inside the white-noise
/// band 2/√N (see the module documentation).
pub fn decorrelation_length(codes: &[u8]) -> usize {
    let n = codes.len();
    let longest = (n / 4).max(1);
    let total: i128 = codes.iter().map(|&c| i128::from(c)).sum();
    let centered: Vec<i128> = codes
        .iter()
        .map(|&c| n as i128 * i128::from(c) - total)
        .collect();
    let lagged = |k: usize| lagged_product_sum(&centered, k);
    let variance = lagged(0);
    if variance == 0 {
        return 1;
    }
    let band = (n as f64).sqrt();
    for k in 1..=longest.min(n.saturating_sub(1)) {
        let covariance = lagged(k);
        if covariance <= 0 || (covariance as f64 / variance as f64) * band < 2.0 {
            return k;
        }
    }
    longest
}

/// The shortest circular shift of `codes` in a test that scans `floor` − 1 lags:
/// min(floor + L − 1, max(⌊N/4⌋, 1)), L = [`decorrelation_length`].
pub fn shortest_shift(codes: &[u8], floor: usize) -> usize {
    let length = decorrelation_length(codes);
    floor
        .max(1)
        .saturating_add(length - 1)
        .min((codes.len() / 4).max(1))
}

/// The shift k of a round (stream seed `stream`) for N values: shortest + ⌊u·range / 2³²⌋
/// with u the top 32 bits of SplitMix64 output 0 of `stream` and range = N − 2·shortest + 1
/// (shortest limited to ⌊(N − 1) / 2⌋); 0 for N <= 1.
pub fn circular_shift(stream: u64, n: usize, shortest: usize) -> usize {
    if n <= 1 {
        return 0;
    }
    let shortest = shortest.min((n - 1) / 2);
    let range = (n - 2 * shortest + 1) as u64;
    let draw = splitmix64_output(stream, 0) >> 32;
    shortest + ((draw * range) >> 32) as usize
}

/// Runs sequential surrogate tests round by round with shared circular shifts: round r of a
/// test evaluates its statistic on its sequence shifted by
/// [`circular_shift`]`(round_seed(seed, family, r), N, shortest)` (`shifted[t] =
/// sequence[(t + k) mod N]`), then records it in its [`SequentialTest`] (budget B =
/// `budget`). `describe(test)` gives the index of the test's sequence in `sequences` and its
/// observed statistic; tests may share a sequence; `shortest[s]` is sequence s's shortest
/// shift ([`shortest_shift`]).
///
/// Every round draws one uniform shared by all sequences, and each sequence still needed is
/// shifted once per round, so the tests of a detector cost one counting pass per round each.
/// Sharing the draws keeps every test's p-value valid (each test still sees uniformly random
/// shifts) and keeps the dependence between tests that the data have. Tests run in parallel
/// within a round; `S` is per-thread scratch for `statistic`. The deadline of `deadline` is
/// checked before every round and every 64 tests inside one (a Timeout error names `stage`).
#[allow(clippy::too_many_arguments)]
pub fn shared_shift_tests<T, S>(
    tests: &[T],
    sequences: &[&[u8]],
    shortest: &[usize],
    budget: usize,
    (seed, family): (u64, u64),
    (deadline, stage): (&Budget, &'static str),
    describe: impl Fn(&T) -> (usize, f64),
    statistic: impl Fn(&T, &[u8], &mut S) -> f64 + Sync,
) -> CoreResult<Vec<PermutationTest>>
where
    T: Sync,
    S: Default + Send,
{
    let keys: Vec<usize> = tests.iter().map(|test| describe(test).0).collect();
    let mut states: Vec<SequentialTest> = tests
        .iter()
        .map(|test| SequentialTest::new(describe(test).1, budget))
        .collect();
    let mut outcomes: Vec<PermutationTest> = vec![
        PermutationTest {
            p_value: f64::NAN,
            perms_run: 0
        };
        tests.len()
    ];
    let mut active: Vec<usize> = (0..tests.len()).collect();
    let mut gathered: Vec<Vec<u8>> = vec![Vec::new(); sequences.len()];
    let mut needed = vec![false; sequences.len()];
    let mut round = 0u64;
    while !active.is_empty() {
        deadline.check(stage)?;
        let round_stream = round_seed(seed, family, round);
        needed.fill(false);
        for &test in &active {
            needed[keys[test]] = true;
        }
        // Small rounds run on this thread: a parallel round costs more than it saves.
        let work: usize = active.iter().map(|&test| sequences[keys[test]].len()).sum();
        let parallel = work >= PARALLEL_ROUND_WORK;
        let shift = |(index, out): (usize, &mut Vec<u8>)| {
            if needed[index] {
                let sequence = sequences[index];
                out.clear();
                let k = circular_shift(round_stream, sequence.len(), shortest[index]);
                out.extend_from_slice(&sequence[k..]);
                out.extend_from_slice(&sequence[..k]);
            }
        };
        if parallel {
            gathered.par_iter_mut().enumerate().for_each(shift);
        } else {
            gathered.iter_mut().enumerate().for_each(shift);
        }
        // A round of many tests can take long: the deadline is also checked every
        // ROUND_CHECK_TESTS tests inside it (an expired one skips the rest of the round).
        let expired = AtomicBool::new(false);
        let evaluate = |scratch: &mut S, (position, &test): (usize, &usize)| {
            if position % ROUND_CHECK_TESTS == ROUND_CHECK_TESTS - 1 && deadline.expired() {
                expired.store(true, Ordering::Relaxed);
            }
            if expired.load(Ordering::Relaxed) {
                return f64::NAN;
            }
            statistic(&tests[test], &gathered[keys[test]], scratch)
        };
        let values: Vec<f64> = if parallel {
            active
                .par_iter()
                .enumerate()
                .map_init(S::default, evaluate)
                .collect()
        } else {
            let mut scratch = S::default();
            active
                .iter()
                .enumerate()
                .map(|entry| evaluate(&mut scratch, entry))
                .collect()
        };
        if expired.into_inner() {
            return Err(CoreError::Timeout { stage });
        }
        let mut still = Vec::with_capacity(active.len());
        for (&test, value) in active.iter().zip(values) {
            match states[test].record(value) {
                Some(outcome) => outcomes[test] = outcome,
                None => still.push(test),
            }
        }
        active = still;
        round += 1;
    }
    Ok(outcomes)
}

/// The surrogate of `sequence` for round stream `stream`: shifted by
/// [`circular_shift`]`(stream, N, shortest)` (the reference the kernels' tests compare with).
#[cfg(test)]
pub(crate) fn shift_surrogate(sequence: &[u8], stream: u64, shortest: usize) -> Vec<u8> {
    let n = sequence.len();
    let k = circular_shift(stream, n, shortest);
    (0..n).map(|t| sequence[(t + k) % n]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::shared::permutation::sequential_rule;

    #[test]
    fn decorrelation_length_by_hand() {
        // White-ish codes: lag-1 autocorrelation of 0,1,0,1,... is negative → 1.
        let alternating: Vec<u8> = (0..40).map(|i| (i % 2) as u8).collect();
        assert_eq!(decorrelation_length(&alternating), 1);
        // Blocks of 10 equal codes: ρ_k = 1 - k/10 roughly; band 2/√80 = 0.2236, so the
        // first k with ρ_k below it. Exact: computed from the definition below.
        let blocks: Vec<u8> = (0..80).map(|i| ((i / 10) % 2) as u8).collect();
        let n = blocks.len() as f64;
        let mean = blocks.iter().map(|&c| f64::from(c)).sum::<f64>() / n;
        let acf = |k: usize| {
            let c: Vec<f64> = blocks.iter().map(|&v| f64::from(v) - mean).collect();
            let num: f64 = (0..blocks.len() - k).map(|t| c[t] * c[t + k]).sum();
            num / c.iter().map(|v| v * v).sum::<f64>()
        };
        let expected = (1..=20).find(|&k| acf(k) * n.sqrt() < 2.0).unwrap();
        assert!(expected > 1);
        assert_eq!(decorrelation_length(&blocks), expected);
        // Constant, empty, tiny.
        assert_eq!(decorrelation_length(&[3; 12]), 1);
        assert_eq!(decorrelation_length(&[]), 1);
        assert_eq!(decorrelation_length(&[1, 0]), 1);
        // Slowly increasing codes never enter the band: ⌊N/4⌋.
        let ramp: Vec<u8> = (0..64).map(|i| (i / 8) as u8).collect();
        assert_eq!(decorrelation_length(&ramp), 16);
    }

    #[test]
    fn shortest_shift_adds_the_floor_and_stays_below_a_quarter() {
        let alternating: Vec<u8> = (0..40).map(|i| (i % 2) as u8).collect();
        assert_eq!(shortest_shift(&alternating, 1), 1);
        assert_eq!(shortest_shift(&alternating, 4), 4);
        let ramp: Vec<u8> = (0..64).map(|i| (i / 8) as u8).collect();
        assert_eq!(shortest_shift(&ramp, 4), 16);
    }

    #[test]
    fn shifts_cover_the_allowed_range() {
        // u = output >> 32; k = shortest + ⌊u · range / 2^32⌋.
        let stream = 0u64;
        let u = 0xE220_A839u64; // output 0 of stream 0
        assert_eq!(
            circular_shift(stream, 100, 10),
            10 + ((u * 81) >> 32) as usize
        );
        let mut seen = [false; 100];
        for round in 0..5000 {
            let k = circular_shift(round_seed(1, 2, round), 100, 10);
            assert!((10..=90).contains(&k), "{k}");
            seen[k] = true;
        }
        assert!(seen[10..=90].iter().all(|&s| s));
        assert_eq!(circular_shift(5, 1, 3), 0);
        assert_eq!(circular_shift(5, 0, 0), 0);
        // shortest limited to ⌊(N-1)/2⌋: N = 5 → k = 2.
        assert_eq!(circular_shift(5, 5, 9), 2);
    }

    #[test]
    fn a_deadline_passing_inside_a_round_stops_it() {
        // 2,000 tests of ~1 ms each: one round takes ~1 s on two threads, far past the
        // 30 ms deadline. The check every 64 tests stops it within a few ms of it.
        let sequence: Vec<u8> = (0..64).map(|i| (i % 7) as u8).collect();
        let sequences: Vec<&[u8]> = vec![&sequence];
        let tests: Vec<usize> = (0..2000).collect();
        let start = std::time::Instant::now();
        let deadline = Budget::until(start + std::time::Duration::from_millis(30));
        let outcome = shared_shift_tests(
            &tests,
            &sequences,
            &[1],
            199,
            (1, 1),
            (&deadline, "round"),
            |_| (0, f64::INFINITY),
            |_, _, _: &mut ()| {
                std::thread::sleep(std::time::Duration::from_millis(1));
                0.0
            },
        );
        let elapsed = start.elapsed();
        assert_eq!(outcome, Err(CoreError::Timeout { stage: "round" }));
        assert!(elapsed.as_millis() < 250, "stopped after {elapsed:?}");
    }

    #[test]
    fn shared_tests_use_the_family_shift_of_their_sequence() {
        let a: Vec<u8> = (0..300).map(|i| (i * 7 % 11) as u8).collect();
        let b: Vec<u8> = (0..120).map(|i| (i % 5) as u8).collect();
        let sequences: Vec<&[u8]> = vec![&a, &b];
        let statistic = |permuted: &[u8]| -> f64 {
            permuted
                .iter()
                .take(50)
                .enumerate()
                .map(|(i, &c)| i as f64 * f64::from(c))
                .sum()
        };
        // Two tests share sequence 0 (one far in the tail, one stopping early), one permutes
        // the shorter sequence 1.
        let tests = [(0usize, 9000.0), (1, 4000.0), (0, 0.0)];
        let shortest = [7usize, 3];
        let outcomes = shared_shift_tests(
            &tests,
            &sequences,
            &shortest,
            60,
            (9, 1000),
            (&Budget::unlimited(), "test"),
            |&(key, observed)| (key, observed),
            |_, permuted, _: &mut ()| statistic(permuted),
        )
        .unwrap();
        for (&(key, observed), outcome) in tests.iter().zip(&outcomes) {
            let sequence = sequences[key];
            let expected = sequential_rule(observed, 60, |r| {
                statistic(&shift_surrogate(
                    sequence,
                    round_seed(9, 1000, r as u64),
                    shortest[key],
                ))
            });
            assert_eq!(*outcome, expected);
        }
        assert_eq!(outcomes[2].perms_run, 5);
        assert_eq!(outcomes[0].perms_run, 60);
    }
}
