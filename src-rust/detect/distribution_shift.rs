//! Distribution shifts (SPEC §6 `DISTRIBUTION_SHIFT`): the best single change point of a
//! metric's binned values by the likelihood-ratio split statistic G, its JSD, and a
//! sequential permutation p-value.

use rayon::prelude::*;

use super::shared::columns::{column_length, present_values};
use super::shared::permutation::{shared_permutation_tests, MAX_TEST_N, PERMUTATIONS, SEED};
use super::shared::ranks::{equal_width_bins, floor_twice_cbrt, median, range};
use super::{Detector, Table};
use crate::args::{Budget, DefaultValue, ParamSpec, Params};
use crate::error::{CoreError, CoreResult};
use crate::stats::mean_and_sum_of_squares;

crate::record! {
    /// One metric's distribution-shift statistics (see [`distribution_shift_stats`]).
    pub struct ShiftRow {
        /// Present values of the metric.
        count: i64,
        /// Position, among the present values, of the first value after the change (-1
        /// when untested).
        change_index: i64,
        /// G of the best split (nats).
        statistic: f64,
        /// Jensen–Shannon divergence (bits) of the two segments' histograms.
        jsd: f64,
        p_value: f64,
        /// Permutation rounds run (0 when untested).
        perms_run: i64,
        mean_before: f64,
        mean_after: f64,
        std_before: f64,
        std_after: f64,
        median_before: f64,
        median_after: f64,
        tested: bool,
    }
}

/// The registry entry.
pub const DETECTOR: Detector = Detector {
    name: "distribution_shift",
    kind: "distribution shift",
    fields: ShiftRow::FIELDS,
    params: &[
        ParamSpec {
            name: "min_segment",
            default: DefaultValue::Int(20),
        },
        PERMUTATIONS,
        SEED,
        MAX_TEST_N,
    ],
    run,
};

fn run(columns: &[&[f64]], params: &Params, budget: &Budget) -> CoreResult<Table> {
    let settings = ShiftSettings::from_params(params)?;
    let rows = distribution_shift_stats(columns, &settings, budget)?;
    Ok(ShiftRow::table(&rows))
}

/// The parameters of [`distribution_shift_stats`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ShiftSettings {
    /// Values per segment, >= 1.
    pub min_segment: usize,
    /// Permutation rounds B, >= 1.
    pub permutations: usize,
    pub seed: u64,
    /// Longer series are tested on every s-th value; >= 4·min_segment (a thinned sequence
    /// keeps more than max_test_n / 2 values, so it still has a valid split).
    pub max_test_n: usize,
}

impl ShiftSettings {
    pub fn from_params(params: &Params) -> CoreResult<Self> {
        let min_segment = params.count("min_segment", 1)?;
        let permutations = params.count("permutations", 1)?;
        let seed = params.seed("seed")?;
        let max_test_n = params.count("max_test_n", 1)?;
        if max_test_n < min_segment.saturating_mul(4) {
            return Err(CoreError::invalid(
                "max_test_n",
                format!(
                    "max_test_n must be >= 4 * min_segment ({}), got {max_test_n}",
                    min_segment.saturating_mul(4)
                ),
            ));
        }
        Ok(ShiftSettings {
            min_segment,
            permutations,
            seed,
            max_test_n,
        })
    }
}

/// Test family of the distribution-shift tests (the stream of their shared permutations).
pub const SHIFT_TEST_FAMILY: u64 = 0;
/// Bounds of the number of equal-width bins.
const MIN_SHIFT_BINS: usize = 8;
const MAX_SHIFT_BINS: usize = 64;
const STAGE: &str = "distribution_shift";

/// One row per metric:
/// - `values` = the metric's present values in recording order, `count` = their number;
///   tested when count >= 2·min_segment and max > min, else only `count` is set (NaN
///   statistics, change_index -1, perms_run 0, tested false);
/// - bins b = min(64, max(8, ⌊2·∛count⌋)) (computed exactly in integers); codes = the
///   equal-width bins of the values;
/// - G_k (nats) of split k of a code sequence of length N, see [`split_statistic`]; the best
///   split is the first k in [min_segment, N - min_segment] maximising G_k; `statistic` and
///   `change_index` are G and k of the full sequence;
/// - `jsd`: Jensen–Shannon divergence (bits) of the histograms of `values[:k]` and
///   `values[k:]` on the b shared bins;
/// - tested sequence = the codes, or `codes[::s]` with s = ⌈count / max_test_n⌉ when
///   count > max_test_n; T = its max G_k; round r gathers `tested[perm]` with the shared
///   permutation of test family [`SHIFT_TEST_FAMILY`] (every metric's round r uses
///   `permutation(round_seed(seed, 0, r), N)`, see [`shared_permutation_tests`]); p by the
///   sequential rule with B = `permutations`;
/// - mean, population std and median of `values[:k]` and `values[k:]`.
///
/// Metrics, and the tests of a permutation round, run in parallel.
pub fn distribution_shift_stats(
    columns: &[&[f64]],
    settings: &ShiftSettings,
    budget: &Budget,
) -> CoreResult<Vec<ShiftRow>> {
    column_length(columns)?;
    let (mut rows, tests): (Vec<ShiftRow>, Vec<Option<ShiftTest>>) = columns
        .par_iter()
        .map(|column| {
            budget.check(STAGE)?;
            Ok(metric_row(
                &present_values(column),
                settings.min_segment,
                settings.max_test_n,
            ))
        })
        .collect::<CoreResult<Vec<_>>>()?
        .into_iter()
        .unzip();
    let tests: Vec<(usize, ShiftTest)> = tests
        .into_iter()
        .enumerate()
        .filter_map(|(metric, test)| test.map(|test| (metric, test)))
        .collect();
    let sequences: Vec<&[u8]> = tests.iter().map(|(_, test)| &test.tested[..]).collect();
    let indexed: Vec<(usize, &ShiftTest)> = tests
        .iter()
        .enumerate()
        .map(|(index, (_, test))| (index, test))
        .collect();
    let min_segment = settings.min_segment;
    let outcomes = shared_permutation_tests(
        &indexed,
        &sequences,
        settings.permutations,
        settings.seed,
        SHIFT_TEST_FAMILY,
        (budget, STAGE),
        |&(index, test)| (index, test.observed),
        |&(_, test), permuted, _: &mut ()| {
            best_split(permuted, test.bins, min_segment, &test.flog).1
        },
    )?;
    for ((metric, _), outcome) in tests.iter().zip(outcomes) {
        rows[*metric].p_value = outcome.p_value;
        rows[*metric].perms_run = outcome.perms_run as i64;
    }
    Ok(rows)
}

/// The permutation test of one metric: its tested codes, observed statistic and tables.
struct ShiftTest {
    tested: Vec<u8>,
    observed: f64,
    bins: usize,
    flog: Vec<f64>,
}

/// A metric's row without its p-value and perms_run (filled by the shared permutation
/// tests), and its test when the metric is tested.
fn metric_row(
    values: &[f64],
    min_segment: usize,
    max_test_n: usize,
) -> (ShiftRow, Option<ShiftTest>) {
    let count = values.len();
    let mut row = ShiftRow {
        count: count as i64,
        change_index: -1,
        statistic: f64::NAN,
        jsd: f64::NAN,
        p_value: f64::NAN,
        perms_run: 0,
        mean_before: f64::NAN,
        mean_after: f64::NAN,
        std_before: f64::NAN,
        std_after: f64::NAN,
        median_before: f64::NAN,
        median_after: f64::NAN,
        tested: false,
    };
    let varies = matches!(range(values), Some((min, max)) if max > min);
    if count < min_segment.saturating_mul(2) || !varies {
        return (row, None);
    }
    let bins = floor_twice_cbrt(count).clamp(MIN_SHIFT_BINS, MAX_SHIFT_BINS);
    let codes = equal_width_bins(values, bins);
    let flog = n_ln_n_table(count);
    let (change, statistic) = best_split(&codes, bins, min_segment, &flog);
    let (tested, observed) = if count <= max_test_n {
        (codes.clone(), statistic)
    } else {
        let step = count.div_ceil(max_test_n);
        let thinned: Vec<u8> = codes.iter().copied().step_by(step).collect();
        let (_, observed) = best_split(&thinned, bins, min_segment, &flog);
        (thinned, observed)
    };

    let (before, after) = values.split_at(change);
    let (mean_before, ss_before) = mean_and_sum_of_squares(before);
    let (mean_after, ss_after) = mean_and_sum_of_squares(after);
    row.change_index = change as i64;
    row.statistic = statistic;
    row.jsd = split_jsd(&codes, bins, change);
    row.mean_before = mean_before;
    row.mean_after = mean_after;
    row.std_before = (ss_before / before.len() as f64).sqrt();
    row.std_after = (ss_after / after.len() as f64).sqrt();
    row.median_before = median(before);
    row.median_after = median(after);
    row.tested = true;
    let test = ShiftTest {
        tested,
        observed,
        bins,
        flog,
    };
    (row, Some(test))
}

/// `flog[n] = n · ln n` for n in 0..=max (flog[0] = 0).
pub fn n_ln_n_table(max: usize) -> Vec<f64> {
    let mut table = Vec::with_capacity(max + 1);
    table.push(0.0);
    table.extend((1..=max).map(|n| {
        let n = n as f64;
        n * n.ln()
    }));
    table
}

/// The split statistic of a code sequence c of length N:
/// `G_k = L(all) - L(c[:k]) - L(c[k:])`, L(counts) = S ln S - Σⱼ nⱼ ln nⱼ, in nats, clipped
/// at 0, evaluated in O(N) for every k by updating the Σ n ln n of the two sides:
/// - with flog = [`n_ln_n_table`] and totalⱼ the counts of the whole sequence:
///   `SR₀ = Σⱼ flog[totalⱼ]` (j ascending, sequential), `L_all = flog[N] - SR₀`, `SL₀ = 0`;
/// - moving element k (code c, with a = #c in c[:k] and b = #c in c[k:]) from the right side
///   to the left: `SL_{k+1} = SL_k + (flog[a+1] - flog[a])`,
///   `SR_{k+1} = SR_k + (flog[b-1] - flog[b])` (NumPy: the same increments accumulated by
///   `np.cumsum`, SR's starting from SR₀);
/// - `G_k = max(0, (L_all - (flog[k] - SL_k)) - (flog[N-k] - SR_k))`.
///
/// Returns `G_k` for k in 0..=N.
pub fn split_statistic(codes: &[u8], bins: usize, flog: &[f64]) -> Vec<f64> {
    let mut statistics = Vec::with_capacity(codes.len() + 1);
    for_each_split(codes, bins, flog, |_, g| statistics.push(g));
    statistics
}

/// Calls `visit(k, G_k)` for k = 0..=N (see [`split_statistic`]).
#[inline]
fn for_each_split(codes: &[u8], bins: usize, flog: &[f64], mut visit: impl FnMut(usize, f64)) {
    let n = codes.len();
    let mut right = [0usize; 256];
    for &code in codes {
        right[code as usize] += 1;
    }
    let mut sum_right = 0.0;
    for &total in &right[..bins] {
        sum_right += flog[total];
    }
    let all = flog[n] - sum_right;
    let mut sum_left = 0.0;
    let mut left = [0usize; 256];
    for k in 0..=n {
        let g = (all - (flog[k] - sum_left)) - (flog[n - k] - sum_right);
        visit(k, g.max(0.0));
        if k == n {
            break;
        }
        let code = codes[k] as usize;
        let (a, b) = (left[code], right[code]);
        sum_left += flog[a + 1] - flog[a];
        sum_right += flog[b - 1] - flog[b];
        left[code] = a + 1;
        right[code] = b - 1;
    }
}

/// (k, G_k) of the first k in [min_segment, N - min_segment] maximising G_k. The caller
/// guarantees N >= 2·min_segment; otherwise (0, 0).
pub fn best_split(codes: &[u8], bins: usize, min_segment: usize, flog: &[f64]) -> (usize, f64) {
    let n = codes.len();
    if n < min_segment.saturating_mul(2) {
        return (0, 0.0);
    }
    let last = n - min_segment;
    let mut best = (min_segment, f64::NEG_INFINITY);
    for_each_split(codes, bins, flog, |k, g| {
        if k >= min_segment && k <= last && g > best.1 {
            best = (k, g);
        }
    });
    best
}

/// Jensen–Shannon divergence in bits between the histograms of `codes[..k]` and
/// `codes[k..]` (shares = count / side length; bins ascending; `½ Σ P log2(P/M) +
/// ½ Σ Q log2(Q/M)`, M = (P + Q) / 2, terms with a zero share skipped), clipped to [0, 1].
pub fn split_jsd(codes: &[u8], bins: usize, k: usize) -> f64 {
    let n = codes.len();
    if k == 0 || k >= n {
        return 0.0;
    }
    let mut left = [0usize; 256];
    let mut right = [0usize; 256];
    for &code in &codes[..k] {
        left[code as usize] += 1;
    }
    for &code in &codes[k..] {
        right[code as usize] += 1;
    }
    let (left_len, right_len) = (k as f64, (n - k) as f64);
    let (mut p_to_mixture, mut q_to_mixture) = (0.0, 0.0);
    for bin in 0..bins {
        let p = left[bin] as f64 / left_len;
        let q = right[bin] as f64 / right_len;
        if p == 0.0 && q == 0.0 {
            continue;
        }
        let mixture = (p + q) / 2.0;
        if p > 0.0 {
            p_to_mixture += p * (p / mixture).log2();
        }
        if q > 0.0 {
            q_to_mixture += q * (q / mixture).log2();
        }
    }
    (0.5 * p_to_mixture + 0.5 * q_to_mixture).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::shared::permutation::{permutation, round_seed, sequential_rule};
    use crate::detect::shared::test_data::normals;
    use crate::rng::SplitMix64;

    /// The kernel through its parameters (checked as the registry checks them).
    fn distribution_shift_stats(
        columns: &[&[f64]],
        min_segment: usize,
        permutations: usize,
        seed: u64,
        max_test_n: usize,
    ) -> CoreResult<Vec<ShiftRow>> {
        let params = Params::new()
            .with("min_segment", min_segment)
            .with("permutations", permutations)
            .with("seed", seed)
            .with("max_test_n", max_test_n);
        let settings = ShiftSettings::from_params(&params)?;
        super::distribution_shift_stats(columns, &settings, &Budget::unlimited())
    }

    /// G_k straight from the definition, O(N·b) per k.
    fn direct_g(codes: &[u8], k: usize) -> f64 {
        fn l(counts: &[usize]) -> f64 {
            let s: usize = counts.iter().sum();
            let f = |n: usize| {
                if n == 0 {
                    0.0
                } else {
                    n as f64 * (n as f64).ln()
                }
            };
            f(s) - counts.iter().map(|&n| f(n)).sum::<f64>()
        }
        let hist = |part: &[u8]| {
            let mut counts = vec![0usize; 256];
            for &c in part {
                counts[c as usize] += 1;
            }
            counts
        };
        l(&hist(codes)) - l(&hist(&codes[..k])) - l(&hist(&codes[k..]))
    }

    #[test]
    fn incremental_g_matches_the_definition() {
        let mut rng = SplitMix64::new(7);
        let codes: Vec<u8> = (0..500).map(|_| (rng.next_below(9)) as u8).collect();
        let flog = n_ln_n_table(codes.len());
        let g = split_statistic(&codes, 9, &flog);
        assert_eq!(g.len(), 501);
        for (k, &value) in g.iter().enumerate() {
            let expected = direct_g(&codes, k).max(0.0);
            assert!(
                (value - expected).abs() < 1e-9,
                "k={k}: {value} vs {expected}"
            );
        }
        assert_eq!(g[0], 0.0);
        assert_eq!(g[500], 0.0);
    }

    #[test]
    fn hand_worked_step() {
        // [0,0,0,1,1,1] → codes 0,0,0,7,7,7 (b = 8); best split k = 3:
        // G = 6 ln 6 - (3 ln 3 - 3 ln 3) - (3 ln 3 - 3 ln 3) - ... = 6 ln 6 - 6 ln 3 = 6 ln 2.
        let values = [0.0, 0.0, 0.0, 1.0, 1.0, 1.0];
        let rows = distribution_shift_stats(&[&values], 1, 19, 3, 100).unwrap();
        let row = rows[0];
        assert_eq!((row.count, row.change_index), (6, 3));
        assert!((row.statistic - 6.0 * 2f64.ln()).abs() < 1e-12, "{row:?}");
        assert_eq!(row.jsd, 1.0);
        assert_eq!(
            [
                row.mean_before,
                row.mean_after,
                row.std_before,
                row.std_after
            ],
            [0.0, 1.0, 0.0, 0.0]
        );
        assert_eq!([row.median_before, row.median_after], [0.0, 1.0]);
        assert!(row.tested);
        // 20 distinct arrangements of three 0s and three 1s; the split at 3 is extreme
        // only for the sorted one, so p is moderate.
        assert!(row.p_value > 0.01 && row.p_value <= 1.0, "{row:?}");
    }

    #[test]
    fn p_value_follows_the_contract_permutations() {
        let mut values = normals(11, 150);
        for v in values.iter_mut().skip(80) {
            *v *= 2.0;
        }
        let row = distribution_shift_stats(&[&values], 20, 199, 99, 10_000).unwrap()[0];
        // Recompute the test by hand with the building blocks.
        let bins = floor_twice_cbrt(150).clamp(8, 64);
        assert_eq!(bins, 10);
        let codes = equal_width_bins(&values, bins);
        let g = split_statistic(&codes, bins, &n_ln_n_table(150));
        let observed = g[20..=130]
            .iter()
            .copied()
            .fold(f64::NEG_INFINITY, f64::max);
        assert_eq!(row.statistic, observed);
        let expected = sequential_rule(observed, 199, |r| {
            let perm = permutation(round_seed(99, 0, r as u64), 150);
            let permuted: Vec<u8> = perm.iter().map(|&i| codes[i]).collect();
            let g = split_statistic(&permuted, bins, &n_ln_n_table(150));
            g[20..=130]
                .iter()
                .copied()
                .fold(f64::NEG_INFINITY, f64::max)
        });
        assert_eq!(row.p_value, expected.p_value);
        assert_eq!(row.perms_run, expected.perms_run as i64);
        // Before/after summaries at the change index.
        let k = row.change_index as usize;
        let (before, after) = values.split_at(k);
        assert_eq!(row.mean_before, before.iter().sum::<f64>() / k as f64);
        assert_eq!(row.median_before, median(before));
        assert_eq!(row.median_after, median(after));
    }

    #[test]
    fn planted_spread_change_is_found() {
        let mut values = normals(2024, 600);
        for v in values.iter_mut().skip(300) {
            *v *= 3.0;
        }
        let row = distribution_shift_stats(&[&values], 20, 199, 0x5EED_CAFE, 10_000).unwrap()[0];
        assert!((row.change_index - 300).abs() <= 30, "{row:?}");
        // Overwhelmingly significant: decided after a quarter of the budget (49 rounds).
        assert!(row.p_value < 1e-12, "{row:?}");
        assert_eq!(row.perms_run, 49);
        assert!(row.std_after > 2.0 * row.std_before, "{row:?}");
        assert!(row.jsd > 0.05, "{row:?}");
    }

    #[test]
    fn iid_data_is_not_significant() {
        for seed in [1u64, 2, 3, 4, 5] {
            let values = normals(seed, 600);
            let row =
                distribution_shift_stats(&[&values], 20, 199, 0x5EED_CAFE, 10_000).unwrap()[0];
            assert!(row.p_value > 0.01, "seed {seed}: {row:?}");
        }
    }

    #[test]
    fn thinned_test_uses_every_s_th_code() {
        let mut values = normals(5, 1000);
        for v in values.iter_mut().skip(600) {
            *v += 1.0;
        }
        // max_test_n = 300 → s = 4, N = 250.
        let row = distribution_shift_stats(&[&values], 20, 50, 8, 300).unwrap()[0];
        let bins = floor_twice_cbrt(1000).clamp(8, 64);
        assert_eq!(bins, 20);
        let codes = equal_width_bins(&values, bins);
        let flog = n_ln_n_table(1000);
        let thinned: Vec<u8> = codes.iter().copied().step_by(4).collect();
        assert_eq!(thinned.len(), 250);
        let (_, observed) = best_split(&thinned, bins, 20, &flog);
        let expected = sequential_rule(observed, 50, |r| {
            let perm = permutation(round_seed(8, 0, r as u64), 250);
            let permuted: Vec<u8> = perm.iter().map(|&i| thinned[i]).collect();
            best_split(&permuted, bins, 20, &flog).1
        });
        assert_eq!(row.p_value, expected.p_value);
        // statistic and change index still come from the full sequence.
        assert_eq!((row.change_index, row.statistic), {
            let (k, g) = best_split(&codes, bins, 20, &flog);
            (k as i64, g)
        });
        assert!((row.change_index - 600).abs() < 60, "{row:?}");
    }

    #[test]
    fn untested_rows_and_edge_cases() {
        let nan = f64::NAN;
        let short = [1.0, 2.0, 3.0];
        let constant = [4.0; 50];
        let absent = [nan; 50];
        let empty: [f64; 0] = [];
        let rows = distribution_shift_stats(&[&short[..]], 2, 10, 0, 100).unwrap();
        assert_eq!(
            (rows[0].count, rows[0].change_index, rows[0].perms_run),
            (3, -1, 0)
        );
        assert!(rows[0].statistic.is_nan() && rows[0].p_value.is_nan());
        assert!(!rows[0].tested);
        let rows = distribution_shift_stats(&[&constant[..], &absent[..]], 5, 10, 0, 100).unwrap();
        assert_eq!((rows[0].count, rows[0].tested), (50, false));
        assert_eq!((rows[1].count, rows[1].tested), (0, false));
        let rows = distribution_shift_stats(&[&empty[..]], 5, 10, 0, 100).unwrap();
        assert_eq!(rows[0].count, 0);
        assert!(distribution_shift_stats(&[], 5, 10, 0, 100)
            .unwrap()
            .is_empty());
        // Exactly 2·min_segment values that vary: tested, change index = min_segment.
        let values = [1.0, 2.0, 3.0, 4.0];
        let row = distribution_shift_stats(&[&values[..]], 2, 10, 0, 100).unwrap()[0];
        assert_eq!(row.change_index, 2);
        assert!(row.tested);
    }

    #[test]
    fn argument_errors_name_the_argument() {
        let values = [1.0, 2.0];
        let cases = [
            (0usize, 10usize, 100usize, "min_segment"),
            (5, 0, 100, "permutations"),
            (5, 10, 19, "max_test_n"),
        ];
        for (min_segment, permutations, max_test_n, name) in cases {
            let error =
                distribution_shift_stats(&[&values], min_segment, permutations, 0, max_test_n)
                    .unwrap_err();
            assert!(error.to_string().starts_with(name), "{error}");
        }
        assert!(distribution_shift_stats(&[&values, &[1.0]], 1, 1, 0, 100).is_err());
        assert!(distribution_shift_stats(&[&values], 1 << 60, 1, 0, i64::MAX as usize).is_ok());
    }
}
