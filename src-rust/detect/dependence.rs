//! Nonlinear dependence between metric pairs (SPEC §6 `DEPENDENCE`): bias-corrected mutual
//! information of quantile bins, tested against circular time-shift surrogates of y
//! (`shared::surrogates`: each series keeps its autocorrelation; Quiroga et al. 2002), for
//! pairs whose linear correlation stays below the correlation threshold. The detector reads
//! AR(p)-prewhitened series, so a shared trend, step or cycle is no dependence.

use std::f64::consts::LN_2;

use std::borrow::Cow;

use rayon::prelude::*;

use super::shared::columns::{column_length, prepare_testable, unordered_pairs};
use super::shared::permutation::{MAX_PERMUTATIONS, MAX_TEST_N, PERMUTATIONS, SEED};
use super::shared::ranks::{min_ranks, quantile_codes, round_half_even};
use super::shared::surrogates::{shared_shift_tests, shortest_shift};
use super::{Detector, Table};
use crate::args::{Budget, DefaultValue, ParamSpec, Params};
use crate::error::CoreResult;
use crate::info::histogram::entropy_of_counts;
use crate::stats::{all_equal, pearson};

crate::record! {
    /// One metric pair's dependence statistics (see [`dependence_stats`]).
    pub struct DependenceRow {
        /// The pair's metrics, i < j.
        i: i64,
        j: i64,
        /// Tasks having both metrics.
        n: i64,
        /// Pearson's r over those tasks.
        r: f64,
        /// Plug-in mutual information of the quantile bins (bits).
        mi: f64,
        /// Miller–Madow corrected mutual information (bits).
        mi_corrected: f64,
        p_value: f64,
        /// Permutation rounds run (0 when untested).
        perms_run: i64,
        /// Information coefficient √(1 - 2^(-2·mi_corrected)).
        info_coef: f64,
        /// Range of the mean of y over the x-bins, in y's units.
        effect: f64,
        /// Quantile bins per variable.
        bins: i64,
        tested: bool,
    }
}

/// The registry entry.
pub const DETECTOR: Detector = Detector {
    name: "dependence",
    kind: "dependence",
    fields: DependenceRow::FIELDS,
    params: &[
        ParamSpec {
            name: "threshold_r",
            default: DefaultValue::Float(0.7),
        },
        ParamSpec {
            name: "min_pairs",
            default: DefaultValue::Int(30),
        },
        PERMUTATIONS,
        SEED,
        MAX_TEST_N,
    ],
    run,
};

fn run(columns: &[&[f64]], params: &Params, budget: &Budget) -> CoreResult<Table> {
    let settings = DependenceSettings {
        threshold_r: params.unit_interval("threshold_r")?,
        min_pairs: params.count("min_pairs", 1)?,
        permutations: params.integer("permutations", 1, MAX_PERMUTATIONS as i128)? as usize,
        seed: params.seed("seed")?,
        max_test_n: params.count("max_test_n", 1)?,
    };
    let rows = dependence_stats(columns, &settings, budget)?;
    Ok(DependenceRow::table(&rows))
}

/// The parameters of [`dependence_stats`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DependenceSettings {
    /// Pairs with |r| at or above this are linear, not tested; in (0, 1].
    pub threshold_r: f64,
    /// Pairs with fewer tasks having both metrics are not tested.
    pub min_pairs: usize,
    /// Permutation rounds B, >= 1.
    pub permutations: usize,
    pub seed: u64,
    /// Longer pairs are tested on every s-th pair, >= 1.
    pub max_test_n: usize,
}

/// Test family of the dependence tests (the stream of their shared permutations).
pub const DEPENDENCE_TEST_FAMILY: u64 = 1000;
/// Bounds of the number of quantile bins per variable.
const MIN_DEPENDENCE_BINS: usize = 4;
const MAX_DEPENDENCE_BINS: usize = 16;
const STAGE: &str = "dependence";

/// Quantile bins per variable for n pairs: min(16, max(4, round(√(n / 5)))) (half to even).
pub fn dependence_bins(n: usize) -> usize {
    round_half_even((n as f64 / 5.0).sqrt()).clamp(MIN_DEPENDENCE_BINS, MAX_DEPENDENCE_BINS)
}

/// One row per metric pair (i, j), i < j, in the order (0,1), (0,2), ..., (1,2), ...:
/// - over the tasks having both metrics (recording order); `r` = Pearson (two-pass centered,
///   0 for zero variance); `bins` = [`dependence_bins`]`(n)`;
/// - tested when n >= `min_pairs`, |r| < `threshold_r` and neither series is constant; an
///   untested row keeps i, j, n, r, bins and has mi..effect NaN, perms_run 0, tested false;
/// - quantile bins of x and of y (b = bins each); `mi` = plug-in MI in bits,
///   max(0, (H(X) + H(Y)) - H(X,Y)) (entropies -Σ p log2 p, cells ascending, joint cell
///   = xbin·b + ybin);
/// - `mi_corrected` = max(0, mi - (Bxy - Bx - By + 1) / (2 n ln 2)) — Miller–Madow
///   (B* = non-empty cells; this is mi + (Bx + By - Bxy - 1) / (2 n ln 2), the textbook
///   correction that lowers the plug-in MI of independent data);
///   `info_coef` = √(1 - 2^(-2·mi_corrected));
/// - `effect` = max - min over non-empty x-bins of the mean of y in the bin (sequential sums);
/// - the tested subset is all pairs if n <= `max_test_n`, else every s-th pair (`[::s]`,
///   s = ⌈n / max_test_n⌉) with bins recomputed on it (b from its own length, quantile codes
///   of the subset); T = its plug-in MI; round r shifts the subset's y-codes circularly by
///   the shared shift of test family [`DEPENDENCE_TEST_FAMILY`]
///   (`circular_shift(round_seed(seed, 1000, r), N, shortest_shift(y_codes, 1))`, see
///   [`shared_shift_tests`]); sequential p with B = permutations.
///
/// Pairs, and the tests of a permutation round, run in parallel; a complete metric is binned
/// once and its codes are shifted once per round for every pair it is the y of.
pub fn dependence_stats(
    columns: &[&[f64]],
    settings: &DependenceSettings,
    budget: &Budget,
) -> CoreResult<Vec<DependenceRow>> {
    column_length(columns)?;
    let m = columns.len();
    // Complete columns share their codes across every pair of complete columns.
    let cached = prepare_testable(columns, settings.min_pairs, |column| {
        CachedCodes::new(column, settings.max_test_n)
    });
    let pairs = unordered_pairs(m);
    let (mut rows, tests): (Vec<DependenceRow>, Vec<Option<DependenceTest>>) = pairs
        .par_iter()
        .map(|&(i, j)| {
            budget.check(STAGE)?;
            let both_cached = cached[i].as_ref().zip(cached[j].as_ref());
            Ok(pair_row(
                settings,
                (i, j),
                columns[i],
                columns[j],
                both_cached,
            ))
        })
        .collect::<CoreResult<Vec<_>>>()?
        .into_iter()
        .unzip();
    // The permuted sequences: the test codes of every metric (empty when not cached), then
    // the y-codes of each pair binned on its own.
    let mut sequences: Vec<&[u8]> = cached
        .iter()
        .map(|codes| codes.as_ref().map_or(&[][..], |c| c.tested()))
        .collect();
    let mut pending: Vec<(usize, usize, &DependenceTest)> = Vec::new();
    for (pair, test) in tests.iter().enumerate() {
        if let Some(test) = test {
            let key = match &test.y {
                Cow::Borrowed(_) => pairs[pair].1,
                Cow::Owned(own) => {
                    sequences.push(own);
                    sequences.len() - 1
                }
            };
            pending.push((pair, key, test));
        }
    }
    // Each y is shifted by at least its decorrelation length (no lag is scanned: floor 1).
    let shortest: Vec<usize> = sequences
        .iter()
        .map(|codes| shortest_shift(codes, 1))
        .collect();
    let outcomes = shared_shift_tests(
        &pending,
        &sequences,
        &shortest,
        settings.permutations,
        (settings.seed, DEPENDENCE_TEST_FAMILY),
        (budget, STAGE),
        |&(_, key, test)| (key, test.observed),
        |&(_, _, test), permuted, table: &mut Vec<u64>| {
            let h_xy = joint_entropy(&test.x, permuted, test.bins, table);
            (test.marginals - h_xy).max(0.0)
        },
    )?;
    for (&(pair, _, _), outcome) in pending.iter().zip(outcomes) {
        rows[pair].p_value = outcome.p_value;
        rows[pair].perms_run = outcome.perms_run as i64;
    }
    Ok(rows)
}

/// Quantile codes of a complete, non-constant column: over all tasks (b from the column
/// length) and over the thinned subset (b from its length) when the column is longer than
/// max_test_n.
struct CachedCodes {
    full: Vec<u8>,
    thinned: Option<Vec<u8>>,
}

impl CachedCodes {
    fn new(column: &[f64], max_test_n: usize) -> Self {
        let thinned = (column.len() > max_test_n).then(|| {
            let step = column.len().div_ceil(max_test_n);
            let subset: Vec<f64> = column.iter().copied().step_by(step).collect();
            quantile_codes(&min_ranks(&subset), dependence_bins(subset.len()))
        });
        CachedCodes {
            full: quantile_codes(&min_ranks(column), dependence_bins(column.len())),
            thinned,
        }
    }

    /// The codes the test permutes.
    fn tested(&self) -> &[u8] {
        self.thinned.as_deref().unwrap_or(&self.full)
    }
}

/// The permutation test of one pair: the tested x- and y-codes (borrowed from the cached
/// metrics or binned for the pair), their bins, H(X) + H(Y) and the observed MI.
struct DependenceTest<'a> {
    x: Cow<'a, [u8]>,
    y: Cow<'a, [u8]>,
    bins: usize,
    marginals: f64,
    observed: f64,
}

/// A pair's row without its p-value and perms_run (filled by the shared permutation tests),
/// and its test when the pair is tested.
fn pair_row<'a>(
    context: &DependenceSettings,
    (i, j): (usize, usize),
    column_x: &[f64],
    column_y: &[f64],
    cached: Option<(&'a CachedCodes, &'a CachedCodes)>,
) -> (DependenceRow, Option<DependenceTest<'a>>) {
    let gathered: (Vec<f64>, Vec<f64>);
    let (x, y): (&[f64], &[f64]) = if cached.is_some() {
        (column_x, column_y)
    } else {
        gathered = column_x
            .iter()
            .zip(column_y)
            .filter(|(a, b)| !a.is_nan() && !b.is_nan())
            .map(|(&a, &b)| (a, b))
            .unzip();
        (&gathered.0, &gathered.1)
    };
    let n = x.len();
    let r = pearson(x, y);
    let bins = dependence_bins(n);
    let mut row = DependenceRow {
        i: i as i64,
        j: j as i64,
        n: n as i64,
        r,
        mi: f64::NAN,
        mi_corrected: f64::NAN,
        p_value: f64::NAN,
        perms_run: 0,
        info_coef: f64::NAN,
        effect: f64::NAN,
        bins: bins as i64,
        tested: false,
    };
    let tested =
        n >= context.min_pairs && r.abs() < context.threshold_r && !all_equal(x) && !all_equal(y);
    if !tested {
        return (row, None);
    }
    let (x_codes, y_codes): (Cow<[u8]>, Cow<[u8]>) = match cached {
        Some((cx, cy)) => (Cow::Borrowed(&cx.full), Cow::Borrowed(&cy.full)),
        None => (
            Cow::Owned(quantile_codes(&min_ranks(x), bins)),
            Cow::Owned(quantile_codes(&min_ranks(y), bins)),
        ),
    };
    let full = MutualInformation::of(&x_codes, &y_codes, bins);
    let mi = full.plug_in();
    let correction = (full.occupied_joint as f64 - full.occupied_x as f64 - full.occupied_y as f64
        + 1.0)
        / (2.0 * n as f64 * LN_2);
    let mi_corrected = (mi - correction).max(0.0);
    let info_coef = (1.0 - (-2.0 * mi_corrected).exp2()).sqrt();
    let effect = conditional_mean_range(&x_codes, y, bins);

    // The test subset.
    let (test_x, test_y, test_bins, parts) = if n <= context.max_test_n {
        (x_codes, y_codes, bins, full)
    } else {
        let (sx, sy): (Cow<[u8]>, Cow<[u8]>) = match cached {
            Some((cx, cy)) => (Cow::Borrowed(cx.tested()), Cow::Borrowed(cy.tested())),
            None => {
                let step = n.div_ceil(context.max_test_n);
                let xs: Vec<f64> = x.iter().copied().step_by(step).collect();
                let ys: Vec<f64> = y.iter().copied().step_by(step).collect();
                let sub_bins = dependence_bins(xs.len());
                (
                    Cow::Owned(quantile_codes(&min_ranks(&xs), sub_bins)),
                    Cow::Owned(quantile_codes(&min_ranks(&ys), sub_bins)),
                )
            }
        };
        let sub_bins = dependence_bins(sx.len());
        let parts = MutualInformation::of(&sx, &sy, sub_bins);
        (sx, sy, sub_bins, parts)
    };
    row.mi = mi;
    row.mi_corrected = mi_corrected;
    row.info_coef = info_coef;
    row.effect = effect;
    row.tested = true;
    let test = DependenceTest {
        x: test_x,
        y: test_y,
        bins: test_bins,
        marginals: parts.h_x + parts.h_y,
        observed: parts.plug_in(),
    };
    (row, Some(test))
}

/// The entropies and occupied-cell counts of a pair of code sequences.
#[derive(Debug, Clone, Copy)]
struct MutualInformation {
    h_x: f64,
    h_y: f64,
    h_xy: f64,
    occupied_x: usize,
    occupied_y: usize,
    occupied_joint: usize,
}

impl MutualInformation {
    fn of(x_codes: &[u8], y_codes: &[u8], bins: usize) -> Self {
        let mut table = vec![0u64; bins * bins];
        for (&a, &b) in x_codes.iter().zip(y_codes) {
            table[a as usize * bins + b as usize] += 1;
        }
        let x_counts: Vec<u64> = table
            .chunks_exact(bins)
            .map(|row| row.iter().sum())
            .collect();
        let y_counts: Vec<u64> = (0..bins)
            .map(|b| (0..bins).map(|a| table[a * bins + b]).sum())
            .collect();
        let total = x_codes.len();
        let occupied = |counts: &[u64]| counts.iter().filter(|&&c| c > 0).count();
        MutualInformation {
            h_x: entropy_of_counts(x_counts.iter().copied(), total),
            h_y: entropy_of_counts(y_counts.iter().copied(), total),
            h_xy: entropy_of_counts(table.iter().copied(), total),
            occupied_x: occupied(&x_counts),
            occupied_y: occupied(&y_counts),
            occupied_joint: occupied(&table),
        }
    }

    /// max(0, (H(X) + H(Y)) - H(X,Y)).
    fn plug_in(&self) -> f64 {
        (self.h_x + self.h_y - self.h_xy).max(0.0)
    }
}

/// H(X, Y) in bits of two code sequences (cells xbin·b + ybin ascending); `table` is scratch.
fn joint_entropy(x_codes: &[u8], y_codes: &[u8], bins: usize, table: &mut Vec<u64>) -> f64 {
    table.clear();
    table.resize(bins * bins, 0);
    for (&a, &b) in x_codes.iter().zip(y_codes) {
        table[a as usize * bins + b as usize] += 1;
    }
    entropy_of_counts(table.iter().copied(), x_codes.len())
}

/// max - min over the non-empty x-bins of the mean of y in the bin.
fn conditional_mean_range(x_codes: &[u8], y: &[f64], bins: usize) -> f64 {
    let mut sums = vec![0.0; bins];
    let mut counts = vec![0usize; bins];
    for (&code, &value) in x_codes.iter().zip(y) {
        sums[code as usize] += value;
        counts[code as usize] += 1;
    }
    let (mut low, mut high) = (f64::INFINITY, f64::NEG_INFINITY);
    for (sum, &count) in sums.iter().zip(&counts) {
        if count > 0 {
            let mean = sum / count as f64;
            low = low.min(mean);
            high = high.max(mean);
        }
    }
    high - low
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::shared::permutation::{round_seed, sequential_rule, DECISIVE_P_VALUE};
    use crate::detect::shared::ranks::quantile_bins;
    use crate::detect::shared::surrogates::shift_surrogate;
    use crate::detect::shared::test_data::{normals, uniforms};

    /// The kernel through its parameters (checked as the registry checks them).
    fn dependence_stats(
        columns: &[&[f64]],
        threshold_r: f64,
        min_pairs: usize,
        permutations: usize,
        seed: u64,
        max_test_n: usize,
    ) -> CoreResult<Vec<DependenceRow>> {
        let params = Params::new()
            .with("threshold_r", threshold_r)
            .with("min_pairs", min_pairs)
            .with("permutations", permutations)
            .with("seed", seed)
            .with("max_test_n", max_test_n);
        let table = run(columns, &params, &Budget::unlimited())?;
        let settings = DependenceSettings {
            threshold_r,
            min_pairs,
            permutations,
            seed,
            max_test_n,
        };
        let rows = super::dependence_stats(columns, &settings, &Budget::unlimited())?;
        // (compared as text: NaN fields are not equal to themselves)
        assert_eq!(
            format!("{table:?}"),
            format!("{:?}", DependenceRow::table(&rows))
        );
        Ok(rows)
    }

    const SEED: u64 = 0x5EED_CAFE;

    #[test]
    fn bins_formula() {
        assert_eq!(dependence_bins(0), 4);
        assert_eq!(dependence_bins(30), 4);
        assert_eq!(dependence_bins(500), 10);
        // √(5·12.25)… n = 61 → √12.2 = 3.49 → 4 (clamped); n = 151 → √30.2 = 5.50 → 5
        assert_eq!(dependence_bins(151), 5);
        assert_eq!(dependence_bins(1280), 16);
        assert_eq!(dependence_bins(1_000_000), 16);
    }

    #[test]
    fn hand_worked_identity_pair() {
        // x = y over 4 distinct values, b = 4: MI = 2 bits, Bx = By = Bxy = 4 →
        // Miller–Madow MI = 2 + (4 + 4 - 4 - 1) / (2·4·ln 2).
        let x = [3.0, 1.0, 4.0, 2.0];
        let y = [30.0, 10.0, 40.0, 20.0];
        let z = [1.0, 2.0, 2.0, 1.0]; // r(x, z) = 0 → tested (threshold 0.5, min_pairs 4)
        let rows = dependence_stats(&[&x, &y, &z], 0.5, 4, 9, SEED, 100).unwrap();
        assert_eq!(rows.len(), 3);
        // (x, y): r = 1 → not tested
        let untested = rows[0];
        assert_eq!(
            (untested.i, untested.j, untested.n, untested.r),
            (0, 1, 4, 1.0)
        );
        assert!(untested.mi.is_nan() && untested.mi_corrected.is_nan());
        assert!(untested.p_value.is_nan() && untested.info_coef.is_nan());
        assert!(untested.effect.is_nan());
        assert_eq!(
            (untested.perms_run, untested.bins, untested.tested),
            (0, 4, false)
        );
        // (x, z): codes x = 2,0,3,1; z: ranks 0,2,2,0 → bins 0,2,2,0
        let row = rows[1];
        assert_eq!(row.r, 0.0);
        assert!(row.tested);
        // joint cells (2,0), (0,2), (3,2), (1,0): H(X,Y) = 2, H(X) = 2, H(Y) = 1 → MI = 1
        assert_eq!(row.mi, 1.0);
        let expected = 1.0 + (4.0 + 2.0 - 4.0 - 1.0) / (2.0 * 4.0 * LN_2);
        assert!((row.mi_corrected - expected).abs() < 1e-15);
        assert!((row.info_coef - (1.0 - (-2.0 * expected).exp2()).sqrt()).abs() < 1e-15);
        // mean of z per x-bin: bin0 (x=1) → 2, bin1 (x=2) → 1, bin2 (x=3) → 1, bin3 → 2
        assert_eq!(row.effect, 1.0);
    }

    #[test]
    fn squared_relation_is_found() {
        let x = uniforms(3, 500, -1.0, 1.0);
        let noise = normals(4, 500);
        let y: Vec<f64> = x
            .iter()
            .zip(&noise)
            .map(|(a, e)| a * a + 0.02 * e)
            .collect();
        let row = dependence_stats(&[&x, &y], 0.7, 30, 199, SEED, 10_000).unwrap()[0];
        assert!(row.r.abs() < 0.2, "{row:?}");
        assert!(row.tested);
        // Overwhelmingly significant: decided after a quarter of the budget (49 rounds).
        assert!(row.p_value < DECISIVE_P_VALUE, "{row:?}");
        assert_eq!(row.perms_run, 49);
        assert!(row.mi_corrected > 1.0 && row.info_coef > 0.8, "{row:?}");
        // mean of y runs from ~0 (central x-bins) to ~0.8 (outer x-bins)
        assert!(row.effect > 0.6 && row.effect < 1.0, "{row:?}");
    }

    #[test]
    fn independent_pair_is_not_significant() {
        for seed in [100u64, 200, 300] {
            let x = normals(seed, 500);
            let y = normals(seed + 1, 500);
            let row = dependence_stats(&[&x, &y], 0.7, 30, 199, SEED, 10_000).unwrap()[0];
            assert!(row.tested);
            assert!(row.p_value > 0.01, "seed {seed}: {row:?}");
            assert!(row.mi_corrected < 0.05, "seed {seed}: {row:?}");
        }
    }

    #[test]
    fn p_value_follows_the_contract() {
        let x = uniforms(5, 120, 0.0, 1.0);
        let noise = normals(6, 120);
        let y: Vec<f64> = x
            .iter()
            .zip(&noise)
            .map(|(a, e)| (6.0 * a).sin() + e)
            .collect();
        let z = normals(7, 120);
        let rows = dependence_stats(&[&x, &z, &y], 0.9, 30, 99, SEED, 10_000).unwrap();
        // pair (0, 2) has index 1
        let row = rows[1];
        assert!(row.tested);
        let b = dependence_bins(120);
        assert_eq!(b, 5);
        let xc = quantile_bins(&x, b);
        let yc = quantile_bins(&y, b);
        let parts = MutualInformation::of(&xc, &yc, b);
        assert_eq!(row.mi, parts.plug_in());
        let expected = sequential_rule(parts.plug_in(), 99, |r| {
            let stream = round_seed(SEED, DEPENDENCE_TEST_FAMILY, r as u64);
            let yp = shift_surrogate(&yc, stream, shortest_shift(&yc, 1));
            MutualInformation::of(&xc, &yp, b).plug_in()
        });
        assert_eq!(row.p_value, expected.p_value);
        assert_eq!(row.perms_run, expected.perms_run as i64);
    }

    #[test]
    fn thinned_subset_and_sparse_columns_agree_with_the_cache() {
        let nan = f64::NAN;
        let x = uniforms(8, 900, -1.0, 1.0);
        let y: Vec<f64> = x.iter().map(|a| a.abs()).collect();
        // Complete columns (cached ranks), max_test_n = 200 → s = 5, N = 180.
        let complete = dependence_stats(&[&x, &y], 0.9, 30, 49, SEED, 200).unwrap()[0];
        // Same pairs through the gathering path: an extra task with one metric absent.
        let mut x2 = x.clone();
        x2.push(0.5);
        let mut y2 = y.clone();
        y2.push(nan);
        let sparse = dependence_stats(&[&x2, &y2], 0.9, 30, 49, SEED, 200).unwrap()[0];
        assert_eq!(complete, sparse);
        // The test runs on every 5th pair with its own bins: b(180) = 6.
        let xs: Vec<f64> = x.iter().copied().step_by(5).collect();
        let ys: Vec<f64> = y.iter().copied().step_by(5).collect();
        assert_eq!(xs.len(), 180);
        let b = dependence_bins(180);
        assert_eq!(b, 6);
        let (xc, yc) = (quantile_bins(&xs, b), quantile_bins(&ys, b));
        let observed = MutualInformation::of(&xc, &yc, b).plug_in();
        let expected = sequential_rule(observed, 49, |r| {
            let stream = round_seed(SEED, DEPENDENCE_TEST_FAMILY, r as u64);
            let yp = shift_surrogate(&yc, stream, shortest_shift(&yc, 1));
            MutualInformation::of(&xc, &yp, b).plug_in()
        });
        assert_eq!(complete.p_value, expected.p_value);
        assert_eq!(complete.bins, dependence_bins(900) as i64);
    }

    #[test]
    fn degenerate_inputs_and_arguments() {
        assert!(dependence_stats(&[], 0.5, 30, 10, 0, 100)
            .unwrap()
            .is_empty());
        assert!(dependence_stats(&[&[1.0]], 0.5, 30, 10, 0, 100)
            .unwrap()
            .is_empty());
        let empty: [f64; 0] = [];
        let row = dependence_stats(&[&empty, &empty], 0.5, 1, 10, 0, 100).unwrap()[0];
        assert_eq!(
            (row.i, row.j, row.n, row.r, row.tested),
            (0, 1, 0, 0.0, false)
        );
        let nan = f64::NAN;
        let constant = [1.0; 40];
        let varying: Vec<f64> = (0..40).map(f64::from).collect();
        let absent = [nan; 40];
        let rows = dependence_stats(&[&constant, &varying, &absent], 0.5, 1, 10, 0, 100).unwrap();
        assert!(rows.iter().all(|row| !row.tested));
        assert_eq!(rows[0].n, 40);
        assert_eq!(rows[1].n, 0);
        for (threshold, permutations, max_test_n, name) in [
            (0.0, 10, 100, "threshold_r"),
            (1.5, 10, 100, "threshold_r"),
            (f64::NAN, 10, 100, "threshold_r"),
            (0.5, 0, 100, "permutations"),
            (0.5, 10, 0, "max_test_n"),
        ] {
            let error = dependence_stats(&[&varying], threshold, 30, permutations, 0, max_test_n)
                .unwrap_err();
            assert!(error.to_string().starts_with(name), "{error}");
        }
    }
}
