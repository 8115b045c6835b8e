//! Seeded permutations and the sequential (Besag–Clifford) permutation p-value with an
//! exponential (peaks-over-threshold) tail.
//!
//! - `permutation(seed, n)`: keys kᵢ = (SplitMix64 output i of stream `seed`) >> 32 (u32),
//!   i = 0..n-1; the permutation is the STABLE argsort of the keys (ties by index). A
//!   permuted sequence is the gather `values[perm]` (`permuted[i] = values[perm[i]]`).
//! - The stream seed of test (family) `t`, round `r`: SplitMix64 output r of stream
//!   `seed ^ (t * 0x9E3779B9)` (wrapping u64).
//! - The sequential rule and its tail: see [`SequentialTest`].
//! - Tests of one detector that share their rounds: `shared::surrogates`.

use crate::args::{DefaultValue, ParamSpec};
use crate::detect::PERMUTATION_SEED;
use crate::rng::splitmix64_output;

/// Multiplier of the test (family) id in the round stream seed.
pub const TEST_ID_MULTIPLIER: u64 = 0x9E37_79B9;
/// Number of exceedances at which the sequential test stops early.
pub const SEQUENTIAL_HITS: usize = 5;
/// A permuted statistic counts as an exceedance when `T_r >= T * (1 - 1e-9)`.
pub const HIT_TOLERANCE: f64 = 1e-9;
/// Absolute slack of the exceedance test: statistics (bits or nats) within 1e-12 of the
/// observed one are ties, whatever the rounding of an observed value near zero.
pub const HIT_ABSOLUTE: f64 = 1e-12;
/// Smallest p-value the tail reports.
pub const MIN_P_VALUE: f64 = 1e-300;
/// The tail is fitted to the largest ⌊B / 4⌋ permuted statistics (the top quarter).
pub const TAIL_SHARE_DIVISOR: usize = 4;
/// Fewer exceedances than this (B < 40) fit no tail.
pub const MIN_TAIL_EXCEEDANCES: usize = 10;
/// A mean excess at or below this share of the largest magnitude among the observed and the
/// permuted statistics is rounding noise (statistics that are equal in exact arithmetic,
/// summed in another order): the tail is not fitted.
pub const TIE_RELATIVE: f64 = 1e-9;
/// A test whose tail p-value after [`decisive_round`] rounds is below this stops there: no
/// Benjamini–Hochberg threshold of a report (q / m, m tests) comes near it.
pub const DECISIVE_P_VALUE: f64 = 1e-12;
/// Below this length a comparison sort is used instead of the bucket sort (same result).
const BUCKET_MIN_LEN: usize = 256;
/// Up to this length one bucket pass by the top key bits plus an insertion pass sorts the
/// keys; longer inputs use the three-pass LSD radix sort (same result).
const BUCKET_MAX_LEN: usize = 1 << 20;

/// The most permutation rounds a test takes (a p-value resolution of 1e-6; the sequential
/// rule stops most tests long before): more is refused, not run for hours.
pub const MAX_PERMUTATIONS: usize = 1_000_000;
/// The permutation rounds B of a test (`permutations`, default 199, at most
/// [`MAX_PERMUTATIONS`]).
pub const PERMUTATIONS: ParamSpec = ParamSpec {
    name: "permutations",
    default: DefaultValue::Int(199),
};
/// The seed of a detector's permutations (`seed`, default [`PERMUTATION_SEED`]).
pub const SEED: ParamSpec = ParamSpec {
    name: "seed",
    default: DefaultValue::Seed(PERMUTATION_SEED),
};
/// Longer series are tested on a subset of this many values (`max_test_n`, default 10,000).
pub const MAX_TEST_N: ParamSpec = ParamSpec {
    name: "max_test_n",
    default: DefaultValue::Int(10_000),
};

/// The stream seed of round `round` of test `test_id`: SplitMix64 output `round` of stream
/// `seed ^ (test_id * 0x9E3779B9)` (wrapping).
#[inline]
pub fn round_seed(seed: u64, test_id: u64, round: u64) -> u64 {
    splitmix64_output(seed ^ test_id.wrapping_mul(TEST_ID_MULTIPLIER), round)
}

/// The permutation of `0..n` for `seed`: the stable argsort of the u32 keys
/// `splitmix64_output(seed, i) >> 32` (ties by index). NumPy:
/// `np.argsort((splitmix64(seed, n) >> 32).astype(np.uint32), kind="stable")`.
pub fn permutation(seed: u64, n: usize) -> Vec<usize> {
    let mut buffer = PermutationBuffer::default();
    buffer.fill(seed, n);
    buffer.indices
}

/// Reusable storage for drawing many permutations of the same length without allocating.
#[derive(Debug, Default)]
pub struct PermutationBuffer {
    packed: Vec<u64>,
    scratch: Vec<u64>,
    counts: Vec<u32>,
    indices: Vec<usize>,
}

impl PermutationBuffer {
    /// Draws `permutation(seed, n)` into the buffer and returns it.
    pub fn fill(&mut self, seed: u64, n: usize) -> &[usize] {
        self.indices.clear();
        if n > u32::MAX as usize {
            // Index does not fit beside the key: sort (key, index) pairs directly.
            let mut pairs: Vec<(u32, usize)> = (0..n)
                .map(|i| ((splitmix64_output(seed, i as u64) >> 32) as u32, i))
                .collect();
            pairs.sort_unstable();
            self.indices
                .extend(pairs.into_iter().map(|(_, index)| index));
            return &self.indices;
        }
        self.sort_words(seed, n);
        self.indices.extend(
            self.packed
                .iter()
                .map(|&word| (word & 0xFFFF_FFFF) as usize),
        );
        &self.indices
    }

    /// Leaves in `packed` the words `(key_i << 32) | i` sorted ascending (n <= u32::MAX):
    /// sorting the distinct words is the stable argsort of the keys.
    fn sort_words(&mut self, seed: u64, n: usize) {
        let word = |i: usize| ((splitmix64_output(seed, i as u64) >> 32) << 32) | i as u64;
        self.packed.clear();
        if n < BUCKET_MIN_LEN {
            self.packed.extend((0..n).map(word));
            self.packed.sort_unstable();
        } else if n <= BUCKET_MAX_LEN {
            // One stable scatter into 2^⌈log2 n⌉ buckets by the top key bits (uniform keys:
            // ~1 word per bucket), counted while the words are drawn, then one insertion pass
            // fixes the order inside buckets.
            let bits = usize::BITS - (n - 1).leading_zeros();
            let shift = 64 - bits;
            let counts = &mut self.counts;
            counts.clear();
            counts.resize((1 << bits) + 1, 0);
            self.packed.extend((0..n).map(|i| {
                let w = word(i);
                counts[(w >> shift) as usize + 1] += 1;
                w
            }));
            bucket_scatter_sort(&mut self.packed, &mut self.scratch, counts, shift);
        } else {
            self.packed.extend((0..n).map(word));
            radix_sort_high_half(&mut self.packed, &mut self.scratch);
        }
    }
}

/// Sorts distinct words ascending given `counts[b + 1]` = number of words in bucket b
/// (bucket = word >> shift): exclusive prefix sums, a stable scatter, then one insertion
/// pass for the order inside buckets.
fn bucket_scatter_sort(
    words: &mut Vec<u64>,
    scratch: &mut Vec<u64>,
    counts: &mut [u32],
    shift: u32,
) {
    let n = words.len();
    for bucket in 1..counts.len() {
        counts[bucket] += counts[bucket - 1];
    }
    scratch.clear();
    scratch.resize(n, 0);
    for &word in words.iter() {
        let slot = &mut counts[(word >> shift) as usize];
        scratch[*slot as usize] = word;
        *slot += 1;
    }
    for i in 1..n {
        let word = scratch[i];
        let mut j = i;
        while j > 0 && scratch[j - 1] > word {
            scratch[j] = scratch[j - 1];
            j -= 1;
        }
        scratch[j] = word;
    }
    std::mem::swap(words, scratch);
}

/// [`bucket_scatter_sort`] with its own counts (2^⌈log2 n⌉ buckets).
#[cfg(test)]
fn bucket_sort_words(words: &mut Vec<u64>, scratch: &mut Vec<u64>, counts: &mut Vec<u32>) {
    let n = words.len();
    let bits = usize::BITS - (n - 1).leading_zeros();
    let shift = 64 - bits;
    counts.clear();
    counts.resize((1 << bits) + 1, 0);
    for &word in words.iter() {
        counts[(word >> shift) as usize + 1] += 1;
    }
    bucket_scatter_sort(words, scratch, counts, shift);
}

/// Stable LSD radix sort of the words by their high 32 bits (three passes of 11, 11 and 10
/// bits). Words equal in the high half keep their order.
fn radix_sort_high_half(words: &mut Vec<u64>, scratch: &mut Vec<u64>) {
    const PASSES: [(u32, usize); 3] = [(32, 11), (43, 11), (54, 10)];
    let mut histograms = [[0usize; 1 << 11]; 3];
    for &word in words.iter() {
        for (pass, &(shift, bits)) in PASSES.iter().enumerate() {
            histograms[pass][((word >> shift) as usize) & ((1 << bits) - 1)] += 1;
        }
    }
    scratch.clear();
    scratch.resize(words.len(), 0);
    for (pass, &(shift, bits)) in PASSES.iter().enumerate() {
        let histogram = &mut histograms[pass];
        // Exclusive prefix sums: the first output slot of each digit.
        let mut next = 0usize;
        for slot in histogram.iter_mut().take(1 << bits) {
            let count = *slot;
            *slot = next;
            next += count;
        }
        for &word in words.iter() {
            let digit = ((word >> shift) as usize) & ((1 << bits) - 1);
            scratch[histogram[digit]] = word;
            histogram[digit] += 1;
        }
        std::mem::swap(words, scratch);
    }
}

/// Outcome of a sequential permutation test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PermutationTest {
    /// The p-value (see [`sequential_rule`]).
    pub p_value: f64,
    /// How many permuted data sets were evaluated.
    pub perms_run: usize,
}

/// The sequential permutation test (Besag–Clifford) with an exponential tail, one round at a
/// time: [`SequentialTest::record`] takes the statistic T_r of the permuted data set of round
/// r = 0, 1, … and says when the test is decided.
///
/// h counts the rounds with `T_r >= T * (1 - 1e-9) - 1e-12`. As soon as h reaches 5:
/// p = h / (r + 1), perms_run = r + 1 (Besag & Clifford 1991: valid for any h; such a
/// p-value is >= 5 / B, 0.025 for B = 199, above any report's Benjamini–Hochberg thresholds
/// at the default fdr, so a null test needs no more rounds — about half of those 10 hits
/// took). When all `budget` rounds finish with h < 5, the
/// p-value comes from the tail of the permutation distribution (see [`exponential_tail`]);
/// perms_run = B. A `budget` of 0 is treated as 1.
///
/// Overwhelmingly significant tests stop early too: after R = [`decisive_round`]`(B)`
/// rounds (⌊B / 4⌋, for B >= 160) with h < 10, if the tail p-value of those R values is
/// below 1e-12, p is that value and perms_run = R. The decision of a report's
/// Benjamini–Hochberg correction (thresholds q·i/m >= 1e-12 for any q >= 0.01 and
/// m <= 10^10 tests) is the same as with the full budget; only the precision of p-values
/// below 1e-12 is lower.
#[derive(Debug, Clone)]
pub struct SequentialTest {
    observed: f64,
    threshold: f64,
    budget: usize,
    hits: usize,
    values: Vec<f64>,
}

impl SequentialTest {
    /// A test of the observed statistic `observed` with `budget` permutation rounds.
    pub fn new(observed: f64, budget: usize) -> Self {
        let budget = budget.max(1);
        SequentialTest {
            observed,
            threshold: observed * (1.0 - HIT_TOLERANCE) - HIT_ABSOLUTE,
            budget,
            hits: 0,
            // Grown as rounds come: most tests stop after a few rounds, and allocating
            // every test's full budget up front took ~0.4 s for 80k tests.
            values: Vec::new(),
        }
    }

    /// Rounds recorded so far.
    pub fn rounds(&self) -> usize {
        self.values.len()
    }

    /// Records the statistic of the next round; `Some` once the test is decided (its 5th
    /// hit, or the last round of the budget). Must not be called after that.
    pub fn record(&mut self, statistic: f64) -> Option<PermutationTest> {
        self.values.push(statistic);
        let round = self.values.len();
        if statistic >= self.threshold {
            self.hits += 1;
            if self.hits >= SEQUENTIAL_HITS {
                return Some(PermutationTest {
                    p_value: self.hits as f64 / round as f64,
                    perms_run: round,
                });
            }
        }
        if round >= self.budget {
            return Some(PermutationTest {
                p_value: exponential_tail(self.observed, self.hits, &mut self.values),
                perms_run: self.budget,
            });
        }
        if round == decisive_round(self.budget) {
            // The tail fit only needs the values, not their order.
            let p_value = exponential_tail(self.observed, self.hits, &mut self.values);
            if p_value < DECISIVE_P_VALUE {
                return Some(PermutationTest {
                    p_value,
                    perms_run: round,
                });
            }
        }
        None
    }
}

/// The round after which an overwhelmingly significant test stops: ⌊B / 4⌋ when that many
/// rounds fit a tail of at least 10 exceedances (B >= 160), else never (0).
pub fn decisive_round(budget: usize) -> usize {
    let round = budget / TAIL_SHARE_DIVISOR;
    if round / TAIL_SHARE_DIVISOR >= MIN_TAIL_EXCEEDANCES {
        round
    } else {
        0
    }
}

/// The tail p-value of `observed` after B = `values.len()` rounds with `hits` < 5 hits:
/// an exponential tail (a generalized Pareto tail of shape 0) fitted to the exceedances of
/// the permuted statistics over a threshold at their upper quarter.
///
/// With k = ⌊B / 4⌋ and the values sorted descending s₀ >= s₁ >= …: threshold u = s_k,
/// mean excess σ = (Σ_{i<k} (s_i - u)) / k (summed in that order); if k >= 10 and σ is
/// more than [`TIE_RELATIVE`] × the largest of |T|, |s₀| and |s_{B-1}| (a smaller spread is
/// rounding among tied statistics),
/// p = (k + 1) / (B + 1) · exp(-max(T - u, 0) / σ), at least 1e-300; else
/// p = (h + 1) / (B + 1). Sorts `values`.
///
/// Why this tail: the statistics tested here (likelihood-ratio G of a split, plug-in mutual
/// information, transfer entropy, and maxima of them over split points or lags) have
/// gamma-like permutation distributions, whose exceedances over a high threshold tend to an
/// exponential (the Gumbel domain of attraction, generalized Pareto shape 0). Their mean
/// excess decreases with the threshold (log-concave tails), so the exponential fitted at the
/// upper quarter over-states the far tail: the p-value errs on the conservative side. A
/// moment-fitted gamma does not: it is too light for maxima and its fitted shape is noisy
/// (measured P(p <= 2.9e-4) up to 3.5× nominal on null data; the exponential tail stays
/// below nominal — benches/RESULTS.md).
pub fn exponential_tail(observed: f64, hits: usize, values: &mut [f64]) -> f64 {
    let budget = values.len();
    let fallback = (hits + 1) as f64 / (budget + 1) as f64;
    let exceedances = budget / TAIL_SHARE_DIVISOR;
    if exceedances < MIN_TAIL_EXCEEDANCES {
        return fallback;
    }
    values.sort_unstable_by(|a, b| b.total_cmp(a));
    let threshold = values[exceedances];
    let mut excess = 0.0;
    for &value in &values[..exceedances] {
        excess += value - threshold;
    }
    let scale = excess / exceedances as f64;
    let magnitude = observed
        .abs()
        .max(values[0].abs())
        .max(values[budget - 1].abs());
    if scale.is_nan() || scale <= TIE_RELATIVE * magnitude {
        return fallback;
    }
    let above = (observed - threshold).max(0.0);
    let share = (exceedances + 1) as f64 / (budget + 1) as f64;
    (share * (-above / scale).exp()).max(MIN_P_VALUE)
}

/// The p-value of [`SequentialTest`] where round r's statistic is `permuted(r)`.
pub fn sequential_rule(
    observed: f64,
    budget: usize,
    mut permuted: impl FnMut(usize) -> f64,
) -> PermutationTest {
    let mut test = SequentialTest::new(observed, budget);
    loop {
        let round = test.rounds();
        if let Some(outcome) = test.record(permuted(round)) {
            return outcome;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference_permutation(seed: u64, n: usize) -> Vec<usize> {
        let keys: Vec<u32> = (0..n)
            .map(|i| (splitmix64_output(seed, i as u64) >> 32) as u32)
            .collect();
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by_key(|&i| keys[i]); // stable
        order
    }

    #[test]
    fn permutation_is_the_stable_argsort_of_the_keys() {
        for n in [0usize, 1, 2, 7, 255, 256, 257, 1000, 5000] {
            for seed in [0u64, 1, 0x5EED_CAFE, u64::MAX] {
                let perm = permutation(seed, n);
                assert_eq!(perm, reference_permutation(seed, n), "n={n} seed={seed}");
                let mut sorted = perm.clone();
                sorted.sort_unstable();
                assert!(sorted.iter().copied().eq(0..n));
            }
        }
    }

    #[test]
    fn small_permutations_by_hand() {
        // Keys of stream 0: outputs >> 32.
        let keys: Vec<u64> = (0..4).map(|i| splitmix64_output(0, i) >> 32).collect();
        let mut expected: Vec<usize> = (0..4).collect();
        expected.sort_by_key(|&i| keys[i]);
        assert_eq!(permutation(0, 4), expected);
        // 0xE220A839_7B1DCDAF is output 0 of stream 0: key 0xE220A839.
        assert_eq!(keys[0], 0xE220_A839);
    }

    #[test]
    fn bucket_radix_and_comparison_sorts_agree() {
        for n in [256usize, 257, 1000, 4096, 10_000] {
            let words: Vec<u64> = (0..n)
                .map(|i| ((splitmix64_output(5, i as u64) >> 32) << 32) | i as u64)
                .collect();
            let mut expected = words.clone();
            expected.sort_unstable();
            let (mut bucket, mut radix) = (words.clone(), words.clone());
            let (mut scratch, mut counts) = (Vec::new(), Vec::new());
            bucket_sort_words(&mut bucket, &mut scratch, &mut counts);
            radix_sort_high_half(&mut radix, &mut scratch);
            assert_eq!(bucket, expected);
            assert_eq!(radix, expected);
        }
        // Clustered keys (many equal high bits) still sort correctly.
        let mut words: Vec<u64> = (0..600u64).map(|i| ((i % 7) << 32) | i).collect();
        let mut expected = words.clone();
        expected.sort_unstable();
        bucket_sort_words(&mut words, &mut Vec::new(), &mut Vec::new());
        assert_eq!(words, expected);
    }

    #[test]
    fn equal_keys_keep_index_order_in_the_radix_sort() {
        let mut words: Vec<u64> = (0..1000u64).map(|i| ((i % 3) << 32) | i).collect();
        let mut scratch = Vec::new();
        radix_sort_high_half(&mut words, &mut scratch);
        let indices: Vec<u64> = words.iter().map(|w| w & 0xFFFF_FFFF).collect();
        let mut expected: Vec<u64> = (0..1000).collect();
        expected.sort_by_key(|i| i % 3);
        assert_eq!(indices, expected);
    }

    #[test]
    fn round_seeds_follow_the_contract() {
        let seed = 0x5EED_CAFEu64;
        assert_eq!(
            round_seed(seed, 1003, 7),
            splitmix64_output(seed ^ (1003u64 * 0x9E37_79B9), 7)
        );
        // Wrapping multiplication for huge ids.
        assert_eq!(
            round_seed(1, u64::MAX, 0),
            splitmix64_output(1 ^ u64::MAX.wrapping_mul(0x9E37_79B9), 0)
        );
    }

    #[test]
    fn early_stop_after_five_hits() {
        // Every round is a hit: stop after 5 rounds with p = 1.
        let outcome = sequential_rule(1.0, 199, |_| 2.0);
        assert_eq!(
            outcome,
            PermutationTest {
                p_value: 1.0,
                perms_run: 5
            }
        );
        // Hits at every other round (1, 3, 5, ...): the 5th hit is round 9 → p = 5/10.
        let outcome = sequential_rule(1.0, 199, |r| if r % 2 == 1 { 1.0 } else { 0.5 });
        assert_eq!(outcome.perms_run, 10);
        assert_eq!(outcome.p_value, 0.5);
        // The 1e-9 tolerance: T_r slightly below T is still a hit.
        let outcome = sequential_rule(1.0, 50, |_| 1.0 - 1e-12);
        assert_eq!(outcome.perms_run, 5);
    }

    #[test]
    fn exponential_tail_when_budget_runs_out() {
        // T_r = r for r = 0..99: k = 25, sorted descending the threshold is s_25 = 74, the
        // excesses of 99..75 over it are 25..1, σ = 325 / 25 = 13.
        let share = 26.0 / 101.0;
        let outcome = sequential_rule(200.0, 100, |r| r as f64);
        assert_eq!(outcome.perms_run, 100);
        assert_eq!(outcome.p_value, share * (-126.0f64 / 13.0).exp());
        // 4 hits (96..99) do not stop the test; the tail still decides.
        let outcome = sequential_rule(96.0, 100, |r| r as f64);
        assert_eq!(outcome.perms_run, 100);
        assert_eq!(outcome.p_value, share * (-22.0f64 / 13.0).exp());
        assert!((outcome.p_value - 0.047_390_59).abs() < 1e-8);
        // The 5th hit (round 99) stops it first.
        let outcome = sequential_rule(95.0, 100, |r| r as f64);
        assert_eq!((outcome.p_value, outcome.perms_run), (0.05, 100));
        // Constant permuted statistics: σ = 0 → (h + 1) / (B + 1).
        let outcome = sequential_rule(10.0, 99, |_| 4.0);
        assert_eq!(outcome.p_value, 1.0 / 100.0);
        // Statistics tied up to rounding (0.1 + 0.2 vs 0.3, σ ≈ 1.4e-17): no tail either.
        let outcome = sequential_rule(0.5, 40, |r| if r % 3 == 0 { 0.1 + 0.2 } else { 0.3 });
        assert_eq!(outcome.p_value, 1.0 / 41.0);
        // Fewer than 10 exceedances (B < 40): (h + 1) / (B + 1).
        let outcome = sequential_rule(0.0, 9, |_| 0.0);
        assert_eq!(outcome.p_value, 10.0 / 10.0);
        assert_eq!(sequential_rule(1e6, 39, |r| r as f64).p_value, 1.0 / 40.0);
        // B = 40: k = 10, u = 29, σ = 5.5; a far tail is floored at 1e-300.
        let outcome = sequential_rule(1e6, 40, |r| r as f64);
        assert_eq!(outcome.p_value, MIN_P_VALUE);
        let outcome = sequential_rule(40.0, 40, |r| r as f64);
        assert_eq!(outcome.p_value, 11.0 / 41.0 * (-11.0f64 / 5.5).exp());
        // Budget 0 counts as 1.
        assert_eq!(sequential_rule(5.0, 0, |_| 1.0).perms_run, 1);
    }

    #[test]
    fn overwhelming_tests_stop_after_a_quarter_of_the_budget() {
        assert_eq!(decisive_round(199), 49);
        assert_eq!(decisive_round(160), 40);
        assert_eq!(decisive_round(159), 0);
        // T_r = r: after 49 rounds k = 12, u = 36, σ = 78 / 12 = 6.5.
        let outcome = sequential_rule(1e6, 199, |r| r as f64);
        assert_eq!((outcome.p_value, outcome.perms_run), (MIN_P_VALUE, 49));
        let share = 13.0 / 50.0;
        let outcome = sequential_rule(300.0, 199, |r| r as f64);
        assert_eq!(outcome.perms_run, 49);
        assert_eq!(outcome.p_value, share * (-264.0f64 / 6.5).exp());
        assert!(outcome.p_value < DECISIVE_P_VALUE);
        // p = 13/50 · e^(-64/6.5) = 1.4e-5 at round 49 is not decisive: the test goes on
        // and stops at its 5th hit (T_r = 100..104).
        let outcome = sequential_rule(100.0, 199, |r| r as f64);
        assert_eq!((outcome.p_value, outcome.perms_run), (5.0 / 105.0, 105));
        // B = 159 has no decisive round.
        assert_eq!(sequential_rule(1e6, 159, |r| r as f64).perms_run, 159);
    }

    #[test]
    fn sequential_test_records_round_by_round() {
        let mut test = SequentialTest::new(96.0, 100);
        for r in 0..99 {
            assert_eq!(test.record(r as f64), None);
            assert_eq!(test.rounds(), r + 1);
        }
        assert_eq!(
            test.record(99.0),
            Some(sequential_rule(96.0, 100, |r| r as f64))
        );
    }
}
