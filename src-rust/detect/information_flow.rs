//! Information flow between metric pairs (SPEC §6 `INFORMATION_FLOW`, §12): transfer entropy
//! of quantile-binned series that conditions on the target's immediate past and scans the
//! source delay u = 1..=max_lag (Schreiber 2000; Wibral et al. 2013), with a
//! test against circular time-shift surrogates of the source (`shared::surrogates`: the
//! source keeps its autocorrelation, only its alignment with the target is broken;
//! Quiroga et al. 2002, Lindner et al. 2011). With `prewhiten = 1` (the detector's setting)
//! each metric is read as its AR(p) innovations, so a shared trend, step or daily cycle
//! gives no flow.
//!
//! # Direction: the time-reversal test
//!
//! A significant transfer entropy says that the source's past tells something about the
//! target's next value; it does not say that the source leads. Two observations of one
//! process with different noise (a p50 and a p99 latency, CPU and latency both driven by
//! load) give the quieter one a transfer entropy to the noisier one, because its past
//! carries the shared process better than the target's own past does — in 80–100% of runs
//! in `benches/telemetry.py`'s "p50 / p99" case before this test. Such dependence is the
//! same read forward and backward in time, a genuine lead turns around: time-reversed
//! Granger causality (Haufe et al. 2013, NeuroImage 64; Winkler et al. 2016, IEEE Trans.
//! Signal Process. 64(11)) compares the net flow `TE(x→y) - TE(y→x)` with the net flow of
//! the time-reversed series (each metric's AR model read backward in time),
//! `D = net - net_reversed`. D is tested with a delete-a-group jackknife over up to
//! [`JACKKNIFE_BLOCKS`] contiguous blocks of time (Tukey 1958; Kott 2001: the per-block
//! count tables are subtracted from the whole tables, so each leave-one-out transfer
//! entropy costs b³), one-sided Student t with K - 1 degrees of freedom. A flow is claimed
//! only when both the surrogate test (there is dependence at a delay) and this test (it
//! points forward in time) reject: the larger p-value is the claim's (an
//! intersection–union test, Berger 1982).

use std::borrow::Cow;

use rayon::prelude::*;

use super::shared::columns::{column_length, has_nan, prepare_testable, testable, unordered_pairs};
use super::shared::permutation::{MAX_PERMUTATIONS, MAX_TEST_N, PERMUTATIONS, SEED};
use super::shared::prewhiten::{prewhiten_column_both_ways, prewhiten_columns_both_ways};
use super::shared::ranks::{min_ranks, quantile_codes, round_half_even};
use super::shared::release_in_background;
use super::shared::surrogates::{shared_shift_tests, shortest_shift};
use super::{Detector, Table};
use crate::args::{Budget, DefaultValue, ParamSpec, Params};
use crate::error::CoreResult;
use crate::info::histogram::{entropy_of_counts, surprise};
use crate::stats::{all_equal, student_t_two_sided_p};

crate::record! {
    /// One ordered metric pair's information flow (see [`information_flow_stats`]).
    pub struct FlowRow {
        /// Source metric.
        i: i64,
        /// Target metric.
        j: i64,
        /// Tasks having both metrics.
        n: i64,
        /// The source delay (1..=max_lag) of the largest transfer entropy i → j (0 when
        /// untested).
        best_lag: i64,
        /// Transfer entropy i → j at best_lag (bits).
        te: f64,
        /// Transfer entropy j → i at best_lag (bits).
        te_reverse: f64,
        p_value: f64,
        /// Transfer entropy i → j at best_lag of the tested pairs' time-reversed series.
        te_time_reversed: f64,
        /// Transfer entropy j → i at best_lag of the tested pairs' time-reversed series.
        te_reverse_time_reversed: f64,
        /// One-sided jackknife p-value of the time-reversal difference D > 0 on the tested
        /// pairs ([`time_reversal_test`]).
        direction_p: f64,
        /// Permutation rounds run (0 when untested).
        perms_run: i64,
        /// Quantile bins per series.
        bins: i64,
        tested: bool,
    }
}

/// The registry entry.
pub const DETECTOR: Detector = Detector {
    name: "information_flow",
    kind: "information flow",
    fields: FlowRow::FIELDS,
    params: &[
        ParamSpec {
            name: "min_values",
            default: DefaultValue::Int(50),
        },
        PERMUTATIONS,
        SEED,
        MAX_TEST_N,
        ParamSpec {
            name: "max_lag",
            default: DefaultValue::Int(3),
        },
        ParamSpec {
            name: "prewhiten",
            default: DefaultValue::Int(0),
        },
        ParamSpec {
            name: "direction_alpha",
            default: DefaultValue::Float(1.0),
        },
    ],
    run,
};

fn run(columns: &[&[f64]], params: &Params, budget: &Budget) -> CoreResult<Table> {
    let settings = FlowSettings::from_params(params)?;
    let rows = information_flow_stats(columns, &settings, budget)?;
    Ok(FlowRow::table(&rows))
}

/// The parameters of [`information_flow_stats`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FlowSettings {
    /// Pairs with fewer tasks having both metrics are not tested, >= 1.
    pub min_values: usize,
    /// Permutation rounds B, >= 1.
    pub permutations: usize,
    pub seed: u64,
    /// Longer pairs are tested on their latest max_test_n values, >= 1.
    pub max_test_n: usize,
    /// Lags 1..=max_lag are scanned, >= 1.
    pub max_lag: usize,
    /// Read each metric as its AR(p) innovations, its model read forward in time and, for
    /// the time-reversed transfer entropies, backward in time (the detector's setting; the
    /// direction test's calibration was measured on innovations: on two noisy views of one
    /// AR(1) 0.9 process at n = 300, `direction_p` <= 0.05 in 2.2% of runs with it and
    /// 7.5% on the raw series).
    pub prewhiten: bool,
    /// The direction of a forward net flow is tested only when its surrogate p-value is at
    /// most this (1: every one). The detector passes the report's false discovery rate: a
    /// larger p-value is never a discovery, and the jackknife of the direction test was
    /// most of the kernel's logarithms.
    pub direction_alpha: f64,
}

impl FlowSettings {
    pub fn from_params(params: &Params) -> CoreResult<Self> {
        Ok(FlowSettings {
            min_values: params.count("min_values", 1)?,
            permutations: params.integer("permutations", 1, MAX_PERMUTATIONS as i128)? as usize,
            seed: params.seed("seed")?,
            max_test_n: params.count("max_test_n", 1)?,
            max_lag: params.count("max_lag", 1)?,
            prewhiten: params.integer("prewhiten", 0, 1)? == 1,
            direction_alpha: params.unit_interval("direction_alpha")?,
        })
    }
}

/// Test family of the information-flow tests (the stream of their shared permutations).
pub const FLOW_TEST_FAMILY: u64 = 100_000;
/// Bounds of the number of quantile bins per series.
const MIN_FLOW_BINS: usize = 2;
const MAX_FLOW_BINS: usize = 8;
const STAGE: &str = "information_flow";

/// Quantile bins per series for n values: min(8, max(2, round(∛(n / 10)))) (half to even).
pub fn flow_bins(n: usize) -> usize {
    round_half_even((n as f64 / 10.0).cbrt()).clamp(MIN_FLOW_BINS, MAX_FLOW_BINS)
}

/// One row per ordered metric pair (i → j), i != j, in the order (0,1), (0,2), ..., (1,0),
/// (1,2), ...:
/// - over the tasks having both metrics, recording order; `bins` = [`flow_bins`]`(n)`;
///   tested when n >= `min_values` and neither series is constant; an untested row keeps
///   i, j, n, bins, has best_lag 0, perms_run 0, tested false and NaN elsewhere;
/// - quantile bins of the source x (metric i) and the target y (metric j);
///   TE(x→y, u) = [`delayed_transfer_entropy_codes`] in bits: I(Y_t; X_{t-u} | Y_{t-1}),
///   the target's immediate past conditioned on whatever the source delay;
/// - `best_lag` = the lag in 1..=max_lag with the largest TE(x→y) (first on ties; lags with
///   n <= lag + 1 have TE 0), `te` its TE, `te_reverse` = TE(y→x, best_lag);
/// - tested = the last min(n, max_test_n) pairs with bins recomputed on them (b from their
///   count, quantile codes of the subset); T = max over lags of TE(x→y); round r shifts the
///   subset's x codes circularly by the shared shift of test family [`FLOW_TEST_FAMILY`]
///   (`circular_shift(round_seed(seed, 100000, r), N, shortest_shift(x_codes, max_lag + 1))`,
///   see [`shared_shift_tests`]: the shift passes the scanned delays, so no surrogate
///   re-creates one) and recomputes the max over lags; sequential p with
///   B = `permutations`;
/// - `direction_p`, `te_time_reversed`, `te_reverse_time_reversed`: [`time_reversal_test`]
///   at best_lag of the tested pairs' codes and of the codes (same bins) of the same tasks'
///   backward series ([`innovations`]) read from the last task to the first, when
///   te > te_reverse + [`LAG_TIE`] and p_value <= `direction_alpha`; else 1, NaN and NaN
///   (no forward net flow, no lead to test; or no discovery to direct).
///
/// Unordered pairs run in parallel (both directions of a pair share their binning), and so
/// do the tests of a permutation round; a complete metric's source codes are shifted once
/// per round for every pair.
pub fn information_flow_stats(
    columns: &[&[f64]],
    settings: &FlowSettings,
    budget: &Budget,
) -> CoreResult<Vec<FlowRow>> {
    column_length(columns)?;
    let m = columns.len();
    // With every metric complete, each metric's innovations are binned as soon as they are
    // computed and dropped (1M x 16: both ways' innovations of every metric at once were
    // 256 MB); a pair then reads only its metrics' codes.
    let given = columns;
    let lean = settings.prewhiten && given.iter().all(|column| !has_nan(column));
    let (forward, backward) = if lean {
        (Vec::new(), Vec::new())
    } else {
        innovations(given, settings.prewhiten)
    };
    let (columns, backward): (Vec<&[f64]>, Vec<&[f64]>) = if lean {
        (vec![&[][..]; m], vec![&[][..]; m])
    } else {
        (
            forward.iter().map(AsRef::as_ref).collect(),
            backward.iter().map(AsRef::as_ref).collect(),
        )
    };
    // Per testable complete metric: its codes, and the tested codes of its backward series
    // read from the last task to the first.
    let (cached, cached_backward): (Vec<Option<CachedCodes>>, Vec<Option<Vec<u8>>>) = if lean {
        given
            .par_iter()
            .map(|column| {
                let (forward, backward) = prewhiten_column_both_ways(column);
                if !testable(&forward, settings.min_values) {
                    return (None, None);
                }
                (
                    Some(CachedCodes::new(&forward, settings.max_test_n)),
                    Some(tail_reversed_codes(&backward, settings.max_test_n)),
                )
            })
            .unzip()
    } else {
        let cached = prepare_testable(&columns, settings.min_values, |column| {
            CachedCodes::new(column, settings.max_test_n)
        });
        let cached_backward = cached
            .par_iter()
            .zip(&backward)
            .map(|(codes, column)| {
                codes
                    .as_ref()
                    .map(|_| tail_reversed_codes(column, settings.max_test_n))
            })
            .collect();
        (cached, cached_backward)
    };
    let length = given.first().map_or(0, |column| column.len());
    let pairs = unordered_pairs(m);
    // The pairs go in chunks with a deadline check between them; past the deadline the
    // state built so far is freed in the background, so the cut costs about one chunk.
    let mut results: Vec<PairRows> = Vec::new();
    for chunk in pairs.chunks(PAIR_CHUNK) {
        if let Err(timeout) = budget.check(STAGE) {
            release_in_background((results, cached, cached_backward));
            return Err(timeout);
        }
        results.par_extend(chunk.par_iter().map(|&(a, b)| {
            let both_cached = cached[a].as_ref().zip(cached[b].as_ref()).zip(
                cached_backward[a]
                    .as_deref()
                    .zip(cached_backward[b].as_deref()),
            );
            if lean && both_cached.is_none() {
                // a constant or too short metric: the pair is not tested
                return PairRows {
                    forward: blank_row(a, b, length, flow_bins(length)),
                    backward: blank_row(b, a, length, flow_bins(length)),
                    tests: [None, None],
                    shared: false,
                };
            }
            pair_rows(
                settings,
                (a, b),
                (columns[a], columns[b]),
                (backward[a], backward[b]),
                both_cached,
            )
        }));
    }
    drop(cached_backward);
    if let Err(timeout) = budget.check(STAGE) {
        release_in_background((results, cached));
        return Err(timeout);
    }
    let mut rows = vec![blank_row(0, 0, 0, 0); m * m.saturating_sub(1)];
    // The permuted sequences: each complete metric's test codes (empty when not cached),
    // then the source codes of each pair binned on its own.
    let mut sequences: Vec<&[u8]> = cached
        .iter()
        .map(|codes| codes.as_ref().map_or(&[][..], CachedCodes::tested))
        .collect();
    let mut pending: Vec<(usize, usize, &FlowTest)> = Vec::new();
    for (&(a, b), result) in pairs.iter().zip(&results) {
        rows[ordered_index(a, b, m)] = result.forward;
        rows[ordered_index(b, a, m)] = result.backward;
        for test in result.tests.iter().flatten() {
            let key = if result.shared {
                test.source_metric
            } else {
                sequences.push(&test.source);
                sequences.len() - 1
            };
            let index = ordered_index(test.source_metric, test.target_metric, m);
            pending.push((index, key, test));
        }
    }
    // Each source is shifted past the scanned delays plus its decorrelation length, so no
    // surrogate re-creates a scanned delay of the original alignment.
    let shortest: Vec<usize> = sequences
        .iter()
        .map(|codes| shortest_shift(codes, settings.max_lag.saturating_add(1)))
        .collect();
    let tested = shared_shift_tests(
        &pending,
        &sequences,
        &shortest,
        settings.permutations,
        (settings.seed, FLOW_TEST_FAMILY),
        (budget, STAGE),
        |&(_, key, test)| (key, test.observed),
        |&(_, _, test), permuted, scratch: &mut TransferScratch| {
            test.surrogate.max_transfer_entropy(permuted, scratch)
        },
    );
    let outcomes = match tested {
        Ok(outcomes) => outcomes,
        Err(error) => {
            drop((pending, sequences));
            release_in_background((results, cached, rows));
            return Err(error);
        }
    };
    for (&(index, _, _), outcome) in pending.iter().zip(&outcomes) {
        rows[index].p_value = outcome.p_value;
        rows[index].perms_run = outcome.perms_run as i64;
    }
    if let Err(timeout) = budget.check(STAGE) {
        drop((pending, sequences));
        release_in_background((results, cached, rows));
        return Err(timeout);
    }
    // The direction of each forward net flow whose p-value is at most direction_alpha.
    let directions: Vec<(usize, TimeReversal)> = pending
        .par_iter()
        .zip(&outcomes)
        .filter_map(|(&(index, _, test), outcome)| {
            let input = test.direction.as_ref()?;
            (outcome.p_value <= settings.direction_alpha).then(|| {
                let forward = (&test.source[..], &input.target[..]);
                let backward = (&input.reversed.0[..], &input.reversed.1[..]);
                (
                    index,
                    time_reversal_test(forward, backward, input.bins, input.delay),
                )
            })
        })
        .collect();
    for (index, direction) in directions {
        rows[index].te_time_reversed = direction.te_time_reversed;
        rows[index].te_reverse_time_reversed = direction.te_reverse_time_reversed;
        rows[index].direction_p = direction.p_value;
    }
    Ok(rows)
}

/// The series the transfer entropies read, per metric, in task order: (forward, backward).
/// With `prewhiten`, the AR(p) innovations of each metric's model read forward and read
/// backward in time ([`prewhiten_columns_both_ways`]); else both are the columns as given.
type Series<'a> = Vec<Cow<'a, [f64]>>;

fn innovations<'a>(columns: &[&'a [f64]], prewhiten: bool) -> (Series<'a>, Series<'a>) {
    if !prewhiten {
        let given: Vec<Cow<[f64]>> = columns.iter().map(|&c| Cow::Borrowed(c)).collect();
        return (given.clone(), given);
    }
    prewhiten_columns_both_ways(columns)
        .into_iter()
        .map(|(forward, backward)| (Cow::Owned(forward), Cow::Owned(backward)))
        .unzip()
}

/// [`reversed_codes`] of the latest min(n, `max_test_n`) values of `column` (b from their
/// count).
fn tail_reversed_codes(column: &[f64], max_test_n: usize) -> Vec<u8> {
    let size = column.len().min(max_test_n);
    reversed_codes(&column[column.len() - size..], flow_bins(size))
}

/// Quantile codes of `values` (b = `bins`) in reverse task order.
fn reversed_codes(values: &[f64], bins: usize) -> Vec<u8> {
    let mut codes = quantile_codes(&min_ranks(values), bins);
    codes.reverse();
    codes
}

/// Unordered pairs per parallel chunk (a deadline check between chunks).
const PAIR_CHUNK: usize = 1 << 12;

/// The row of an untested pair i → j.
fn blank_row(i: usize, j: usize, n: usize, bins: usize) -> FlowRow {
    FlowRow {
        i: i as i64,
        j: j as i64,
        n: n as i64,
        best_lag: 0,
        te: f64::NAN,
        te_reverse: f64::NAN,
        te_time_reversed: f64::NAN,
        te_reverse_time_reversed: f64::NAN,
        direction_p: f64::NAN,
        p_value: f64::NAN,
        perms_run: 0,
        bins: bins as i64,
        tested: false,
    }
}

/// Position of (i → j) in the order (0,1), (0,2), ..., (1,0), (1,2), ...
#[inline]
fn ordered_index(i: usize, j: usize, m: usize) -> usize {
    i * (m - 1) + if j < i { j } else { j - 1 }
}

/// Quantile codes of a complete, non-constant column over all tasks (b from the column
/// length), and the codes its tests permute: those of the last max_test_n values (b from
/// their count) when the column is longer, else the same codes.
struct CachedCodes {
    full: Vec<u8>,
    latest: Option<Vec<u8>>,
}

impl CachedCodes {
    fn new(column: &[f64], max_test_n: usize) -> Self {
        let latest = (column.len() > max_test_n).then(|| {
            quantile_codes(
                &min_ranks(&column[column.len() - max_test_n..]),
                flow_bins(max_test_n),
            )
        });
        CachedCodes {
            full: quantile_codes(&min_ranks(column), flow_bins(column.len())),
            latest,
        }
    }

    /// The codes the tests permute.
    fn tested(&self) -> &[u8] {
        self.latest.as_deref().unwrap_or(&self.full)
    }
}

/// The permutation test of one direction of a pair.
struct FlowTest {
    source_metric: usize,
    target_metric: usize,
    /// The tested source codes (equal to the cached test codes of a complete metric).
    source: Vec<u8>,
    surrogate: SurrogateTest,
    observed: f64,
    /// With a forward net flow, what its direction test reads once the p-value is known.
    direction: Option<DirectionInput>,
}

/// The time-reversal test's input beside the tested source codes: the tested target codes,
/// the backward series' codes of source and target read from the last task to the first,
/// the bins and the delay.
struct DirectionInput {
    target: Vec<u8>,
    reversed: (Vec<u8>, Vec<u8>),
    bins: usize,
    delay: usize,
}

/// The rows (a → b) and (b → a) of one unordered pair without their p-values and
/// perms_run, their tests, and whether the pair's codes are the cached ones.
struct PairRows {
    forward: FlowRow,
    backward: FlowRow,
    tests: [Option<FlowTest>; 2],
    shared: bool,
}

/// Two complete metrics' cached codes and the tested codes of their backward series, read
/// from the last task to the first.
type CachedPair<'a> = ((&'a CachedCodes, &'a CachedCodes), (&'a [u8], &'a [u8]));

/// The rows (a → b) and (b → a) of one unordered pair: `forward` and `backward` are the
/// two metrics' series (see [`innovations`]); `cached`, the codes of two complete metrics.
fn pair_rows(
    context: &FlowSettings,
    (a, b): (usize, usize),
    (column_a, column_b): (&[f64], &[f64]),
    (backward_a, backward_b): (&[f64], &[f64]),
    cached: Option<CachedPair>,
) -> PairRows {
    let gathered: (Vec<f64>, Vec<f64>);
    let (xa, xb): (&[f64], &[f64]) = if cached.is_some() {
        (column_a, column_b)
    } else {
        gathered = column_a
            .iter()
            .zip(column_b)
            .filter(|(u, v)| !u.is_nan() && !v.is_nan())
            .map(|(&u, &v)| (u, v))
            .unzip();
        (&gathered.0, &gathered.1)
    };
    // cached codes are of complete, non-constant series (prepare_testable)
    let n = cached.map_or(xa.len(), |((codes, _), _)| codes.full.len());
    let bins = flow_bins(n);
    let mut result = PairRows {
        forward: blank_row(a, b, n, bins),
        backward: blank_row(b, a, n, bins),
        tests: [None, None],
        shared: cached.is_some(),
    };
    if n < context.min_values || (cached.is_none() && (all_equal(xa) || all_equal(xb))) {
        return result;
    }
    let (codes_a, codes_b): (Cow<[u8]>, Cow<[u8]>) = match cached {
        Some(((ca, cb), _)) => (Cow::Borrowed(&ca.full), Cow::Borrowed(&cb.full)),
        None => (
            Cow::Owned(quantile_codes(&min_ranks(xa), bins)),
            Cow::Owned(quantile_codes(&min_ranks(xb), bins)),
        ),
    };
    let lags = effective_max_lag(context.max_lag, n);
    let mut scratch = TransferScratch::default();
    let te_ab: Vec<f64> = (1..=lags)
        .map(|delay| delayed_transfer_entropy_codes(&codes_a, &codes_b, bins, delay, &mut scratch))
        .collect();
    let te_ba: Vec<f64> = (1..=lags)
        .map(|delay| delayed_transfer_entropy_codes(&codes_b, &codes_a, bins, delay, &mut scratch))
        .collect();

    // The test data: the last N pairs, binned on their own.
    let size = n.min(context.max_test_n);
    let (test_a, test_b, test_bins): (Cow<[u8]>, Cow<[u8]>, usize) = if size == n {
        (
            Cow::Borrowed(&codes_a[..]),
            Cow::Borrowed(&codes_b[..]),
            bins,
        )
    } else {
        let latest_bins = flow_bins(size);
        match cached {
            Some(((ca, cb), _)) => (
                Cow::Borrowed(ca.tested()),
                Cow::Borrowed(cb.tested()),
                latest_bins,
            ),
            None => (
                Cow::Owned(quantile_codes(&min_ranks(&xa[n - size..]), latest_bins)),
                Cow::Owned(quantile_codes(&min_ranks(&xb[n - size..]), latest_bins)),
                latest_bins,
            ),
        }
    };
    // The tested pairs' backward series, binned like the tested codes, read from the last
    // task to the first.
    let (reversed_a, reversed_b): (Cow<[u8]>, Cow<[u8]>) = match cached {
        Some((_, (ra, rb))) => (Cow::Borrowed(ra), Cow::Borrowed(rb)),
        None => {
            let (ra, rb): (Vec<f64>, Vec<f64>) = column_a
                .iter()
                .zip(column_b)
                .zip(backward_a.iter().zip(backward_b))
                .filter(|((u, v), _)| !u.is_nan() && !v.is_nan())
                .map(|(_, (&u, &v))| (u, v))
                .unzip();
            (
                Cow::Owned(reversed_codes(&ra[n - size..], test_bins)),
                Cow::Owned(reversed_codes(&rb[n - size..], test_bins)),
            )
        }
    };
    let test_lags = effective_max_lag(context.max_lag, size);
    let directions = [
        (a, b, &te_ab, &te_ba, &test_a, &test_b, &mut result.forward),
        (b, a, &te_ba, &te_ab, &test_b, &test_a, &mut result.backward),
    ];
    let sources = [(&reversed_a, &reversed_b), (&reversed_b, &reversed_a)];
    for (slot, (source, target, te_forward, te_reverse, test_source, test_target, row)) in
        directions.into_iter().enumerate()
    {
        let (best_lag, te) = best_lag(te_forward);
        let (reversed_x, reversed_y) = sources[slot];
        let reverse_te = te_reverse.get(best_lag - 1).copied().unwrap_or(0.0);
        // Without a forward net flow there is no lead to test (ties up to rounding: none);
        // with one, it is tested once the p-value is known.
        row.te_time_reversed = f64::NAN;
        row.te_reverse_time_reversed = f64::NAN;
        row.direction_p = 1.0;
        let direction = (te > reverse_te + LAG_TIE).then(|| DirectionInput {
            target: test_target.to_vec(),
            reversed: (reversed_x.to_vec(), reversed_y.to_vec()),
            bins: test_bins,
            delay: best_lag,
        });
        let observed = if size == n {
            te
        } else {
            let mut observed = f64::NEG_INFINITY;
            for delay in 1..=test_lags {
                let value = delayed_transfer_entropy_codes(
                    test_source,
                    test_target,
                    test_bins,
                    delay,
                    &mut scratch,
                );
                observed = observed.max(value);
            }
            observed.max(0.0)
        };
        row.best_lag = best_lag as i64;
        row.te = te;
        row.te_reverse = reverse_te;
        row.tested = true;
        result.tests[slot] = Some(FlowTest {
            source_metric: source,
            target_metric: target,
            source: test_source.to_vec(),
            surrogate: SurrogateTest::new(test_target, test_bins, test_lags),
            observed,
            direction,
        });
    }
    result
}

/// The largest lag whose TE can be non-zero: min(max_lag, n - 2) (TE is 0 when
/// n <= lag + 1, and a later lag with TE 0 never beats an earlier one).
fn effective_max_lag(max_lag: usize, n: usize) -> usize {
    max_lag.min(n.saturating_sub(2))
}

/// (lag, TE) of the first maximum over lags 1, 2, ...; (1, 0) when there is no lag.
/// Transfer entropies (bits) closer than this are equal for choosing the lag: rounding
/// differs between implementations and must not decide it.
pub const LAG_TIE: f64 = 1e-12;

fn best_lag(values: &[f64]) -> (usize, f64) {
    let mut best = (1usize, 0.0f64);
    for (index, &value) in values.iter().enumerate() {
        // Values within LAG_TIE of the best so far tie; the first lag wins a tie.
        if index == 0 || value > best.1 + LAG_TIE {
            best = (index + 1, value);
        }
    }
    best
}

/// Reusable count tables for [`transfer_entropy_codes`].
#[derive(Debug, Default)]
pub struct TransferScratch {
    table: Vec<u64>,
    /// Per sample count (one per delay), `-p log2 p` of a cell of each count (NaN: not yet
    /// computed): the surrogate rounds of one pair fill tables of the same sizes over and
    /// over, and the logarithms were about 7% of a cooling of 100,000 x 16.
    surprise: Vec<(usize, Vec<f64>)>,
}

/// Cells of at least this count are not remembered (bounds the memory of the scratch).
const SURPRISE_CACHE: usize = 1 << 16;

impl TransferScratch {
    /// [`entropy_of_counts`] of `counts` out of `total`, the same terms in the same order,
    /// each term remembered by its count (so the same bits).
    fn entropy(&mut self, counts: impl IntoIterator<Item = u64>, total: usize) -> f64 {
        let slot = match self.surprise.iter().position(|(size, _)| *size == total) {
            Some(slot) => slot,
            None => {
                if self.surprise.len() >= 8 {
                    self.surprise.remove(0);
                }
                self.surprise.push((total, Vec::new()));
                self.surprise.len() - 1
            }
        };
        let terms = &mut self.surprise[slot].1;
        let size = total as f64;
        let mut entropy = 0.0;
        for count in counts {
            if count == 0 {
                continue;
            }
            let index = count as usize;
            if index >= SURPRISE_CACHE {
                entropy += surprise(count, size); // a rare large cell: not remembered
                continue;
            }
            if index >= terms.len() {
                terms.resize(index + 1, f64::NAN);
            }
            if terms[index].is_nan() {
                terms[index] = surprise(count, size);
            }
            entropy += terms[index];
        }
        entropy
    }
}

/// Transfer entropy X → Y in bits of two code sequences of equal length N with codes in
/// 0..bins (SPEC §7): over t = 0..N-1-lag,
/// `((H(Y[t+lag], Y[t]) - H(Y[t])) - H(Y[t+lag], X[t], Y[t])) + H(X[t], Y[t])`, clipped at
/// 0; 0 when N <= lag + 1. Entropies -Σ p log2 p with cells in ascending order of
/// `y_past·b + y_future`, `y_past`, `(y_past·b + x)·b + y_future` and `y_past·b + x`.
pub fn transfer_entropy_codes(
    x: &[u8],
    y: &[u8],
    bins: usize,
    lag: usize,
    scratch: &mut TransferScratch,
) -> f64 {
    let n = x.len().min(y.len());
    if lag == 0 || n <= lag + 1 {
        return 0.0;
    }
    let samples = n - lag;
    count_lanes(&mut scratch.table, bins * bins * bins, samples, |t| {
        (y[t] as usize * bins + x[t] as usize) * bins + y[t + lag] as usize
    });
    transfer_entropy_of_table(&scratch.table, bins, samples)
}

/// The transfer entropy (bits, clipped at 0) of a count table over
/// `(y_past·b + x)·b + y_future` holding `samples` samples (see [`transfer_entropy_codes`]).
fn transfer_entropy_of_table(table: &[u64], bins: usize, samples: usize) -> f64 {
    let (base, driver_past) = entropies_from_table(table, bins, samples);
    let all = entropy_of_counts(table.iter().copied(), samples);
    ((base - all) + driver_past).max(0.0)
}

/// Transfer entropy X → Y in bits at source delay `delay` >= 1, conditioned on the target's
/// immediate past (Wibral et al. 2013): I(Y_t; X_{t-delay} | Y_{t-1}) over t = delay..N-1,
/// i.e. [`transfer_entropy_codes`] at lag 1 of `x[..N - delay + 1]` and `y[delay - 1..]`;
/// 0 when N <= delay + 1. Delay 1 is the lag-1 transfer entropy.
pub fn delayed_transfer_entropy_codes(
    x: &[u8],
    y: &[u8],
    bins: usize,
    delay: usize,
    scratch: &mut TransferScratch,
) -> f64 {
    let n = x.len().min(y.len());
    if delay == 0 || n <= delay + 1 {
        return 0.0;
    }
    transfer_entropy_codes(&x[..n - delay + 1], &y[delay - 1..n], bins, 1, scratch)
}

/// The most contiguous blocks of time of the time-reversal test's jackknife...
pub const JACKKNIFE_BLOCKS: usize = 40;
/// ...each of at least this many samples on average...
pub const JACKKNIFE_BLOCK_SAMPLES: usize = 5;
/// ...and at least this many blocks, else the direction is not tested (p = 1).
pub const MIN_JACKKNIFE_BLOCKS: usize = 5;

/// The jackknife's blocks for `samples` samples: min(40, ⌊samples / 5⌋). On the
/// `benches/telemetry.py` lead-lag pair (n = 300) 40 blocks gave p <= 0.005 in 99% of
/// runs where 20 gave 96%; on two views of one process (no lead) both kept the share of
/// p <= 0.05 at 1–2% (the delete-a-group jackknife variance errs large: Efron & Stein
/// 1981).
pub fn jackknife_blocks(samples: usize) -> usize {
    JACKKNIFE_BLOCKS.min(samples / JACKKNIFE_BLOCK_SAMPLES)
}

/// The time-reversal test of one direction x → y at one source delay (see the module
/// documentation).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TimeReversal {
    /// TE(x→y) at the delay of the series read backward in time.
    pub te_time_reversed: f64,
    /// TE(y→x) at the delay of the series read backward in time.
    pub te_reverse_time_reversed: f64,
    /// One-sided jackknife p-value of D > 0.
    pub p_value: f64,
}

/// The time-reversal test of x → y at source delay `delay` >= 1: `forward` = (x, y) codes
/// in task order, `reversed` = the codes of their backward series read from the last task
/// to the first, all of length n with codes in 0..bins.
///
/// `D = (TE(x→y) - TE(y→x)) - (TE_r(x→y) - TE_r(y→x))`, every term a
/// [`delayed_transfer_entropy_codes`] at `delay` (TE_r on `reversed`). Each sample belongs to
/// the block `⌊τ K / n⌋` of its target's task τ (forward sample t: τ = t + delay; reversed
/// sample s: τ = n - 1 - s - delay), K = [`jackknife_blocks`]`(n - delay)`; `D_k` is D of
/// the tables without block k, the pseudo-values `θ_k = K D - (K - 1) D_k`,
/// `t = θ̄ / sqrt(s²_θ / K)` (sums in block order), p the upper tail of Student t with
/// K - 1 degrees of freedom; when s²_θ = 0, p = 0 if θ̄ > 0, else 1. p = 1 with fewer than
/// [`MIN_JACKKNIFE_BLOCKS`] blocks.
pub fn time_reversal_test(
    forward: (&[u8], &[u8]),
    reversed: (&[u8], &[u8]),
    bins: usize,
    delay: usize,
) -> TimeReversal {
    let (x, y) = forward;
    let (rx, ry) = reversed;
    let n = x.len();
    let mut result = TimeReversal {
        te_time_reversed: 0.0,
        te_reverse_time_reversed: 0.0,
        p_value: 1.0,
    };
    if delay == 0 || n <= delay + 1 {
        return result;
    }
    let samples = n - delay;
    let cube = bins * bins * bins;
    let blocks_of_time = jackknife_blocks(samples).max(1);
    // Per table: the counts of each block (block-major) and of every sample.
    let block_tables = |source: &[u8], target: &[u8], reverse: bool| {
        let mut blocks = vec![0u64; blocks_of_time * cube];
        let mut sizes = vec![0usize; blocks_of_time];
        let mut total = vec![0u64; cube];
        for t in 0..samples {
            let cell = (target[t + delay - 1] as usize * bins + source[t] as usize) * bins
                + target[t + delay] as usize;
            let task = if reverse {
                n - 1 - t - delay
            } else {
                t + delay
            };
            let block = task * blocks_of_time / n;
            blocks[block * cube + cell] += 1;
            sizes[block] += 1;
            total[cell] += 1;
        }
        (blocks, sizes, total)
    };
    let tables = [
        block_tables(x, y, false),
        block_tables(y, x, false),
        block_tables(rx, ry, true),
        block_tables(ry, rx, true),
    ];
    let whole: Vec<f64> = tables
        .iter()
        .map(|(_, _, total)| transfer_entropy_of_table(total, bins, samples))
        .collect();
    result.te_time_reversed = whole[2];
    result.te_reverse_time_reversed = whole[3];
    if blocks_of_time < MIN_JACKKNIFE_BLOCKS {
        return result;
    }
    let difference = |te: &[f64]| (te[0] - te[1]) - (te[2] - te[3]);
    let full = difference(&whole);
    let k = blocks_of_time as f64;
    let mut scratch = vec![0u64; cube];
    let pseudo: Vec<f64> = (0..blocks_of_time)
        .map(|block| {
            let left_out: Vec<f64> = tables
                .iter()
                .map(|(blocks, sizes, total)| {
                    let counts = &blocks[block * cube..(block + 1) * cube];
                    for ((cell, &sum), &count) in scratch.iter_mut().zip(total).zip(counts) {
                        *cell = sum - count;
                    }
                    transfer_entropy_of_table(&scratch, bins, samples - sizes[block])
                })
                .collect();
            k * full - (k - 1.0) * difference(&left_out)
        })
        .collect();
    let mean = pseudo.iter().sum::<f64>() / k;
    let variance = pseudo.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / (k - 1.0);
    result.p_value = if variance > 0.0 {
        let t = mean / (variance / k).sqrt();
        let two_sided = student_t_two_sided_p(t, k - 1.0);
        if t > 0.0 {
            two_sided / 2.0
        } else {
            1.0 - two_sided / 2.0
        }
    } else if mean > 0.0 {
        0.0
    } else {
        1.0
    };
    result
}

/// (H(Y+, Y) - H(Y), H(X, Y)) from the table over (y_past, x, y_future).
fn entropies_from_table(table: &[u64], bins: usize, samples: usize) -> (f64, f64) {
    let (future_past, past) = target_entropies(table, bins, samples);
    let driver_past = entropy_of_counts(
        table
            .chunks_exact(bins)
            .map(|cell| cell.iter().sum::<u64>()),
        samples,
    );
    (future_past - past, driver_past)
}

/// (H(Y+, Y), H(Y)) from the table over (y_past, x, y_future).
fn target_entropies(table: &[u64], bins: usize, samples: usize) -> (f64, f64) {
    let blocks = table.chunks_exact(bins * bins);
    let past = entropy_of_counts(
        blocks.clone().map(|block| block.iter().sum::<u64>()),
        samples,
    );
    let future_past = entropy_of_counts(
        blocks.flat_map(|block| {
            (0..bins).map(move |future| (0..bins).map(|x| block[x * bins + future]).sum::<u64>())
        }),
        samples,
    );
    (future_past, past)
}

/// The permutation rounds of one direction: the target's per-delay cell offsets and
/// H(Y+, Y) - H(Y) are computed once.
struct SurrogateTest {
    bins: usize,
    /// Per delay u: `y[t+u-1]·b² + y[t+u]` for t = 0..N-1-u (paired with the source's x[t]).
    offsets: Vec<Vec<u16>>,
    /// Per delay: H(Y+, Y) - H(Y).
    base: Vec<f64>,
}

/// Counts of the cells `offsets[t] + source[t] · bins` (t < offsets.len() = source.len())
/// into `table` (left holding `cells` counts). [`LANES`] tables side by side take
/// consecutive samples in turn and are added up after: an increment no longer waits for
/// the one before it when both hit the same cell (information flow over
/// `benches/detector_cost.py`'s data: 0.39 → 0.34 s). Integer counts: the same table as
/// one pass.
fn count_cells(table: &mut Vec<u64>, cells: usize, offsets: &[u16], source: &[u8], bins: usize) {
    count_lanes(table, cells, offsets.len(), |t| {
        offsets[t] as usize + source[t] as usize * bins
    });
}

/// Counts of `cell(t)` for t < `samples` into `table` (left holding `cells` counts), in
/// [`LANES`] side-by-side tables added up after (see [`count_cells`]; the same counts as one
/// pass).
fn count_lanes(table: &mut Vec<u64>, cells: usize, samples: usize, cell: impl Fn(usize) -> usize) {
    table.clear();
    table.resize(LANES * cells, 0);
    let whole = samples - samples % LANES;
    for t in (0..whole).step_by(LANES) {
        for lane in 0..LANES {
            table[lane * cells + cell(t + lane)] += 1;
        }
    }
    for t in whole..samples {
        table[cell(t)] += 1;
    }
    add_lanes(table, cells);
}

/// The [`LANES`] tables of `table` added into the first (left holding `cells` counts).
fn add_lanes(table: &mut Vec<u64>, cells: usize) {
    let (first, rest) = table.split_at_mut(cells);
    for lane in rest.chunks_exact(cells) {
        for (total, &count) in first.iter_mut().zip(lane) {
            *total += count;
        }
    }
    table.truncate(cells);
}

/// The side-by-side count tables of [`count_lanes`].
const LANES: usize = 4;

impl SurrogateTest {
    fn new(target: &[u8], bins: usize, lags: usize) -> Self {
        let n = target.len();
        let mut offsets = Vec::with_capacity(lags);
        let mut base = Vec::with_capacity(lags);
        for delay in 1..=lags {
            let samples = n - delay;
            let cell = |t: usize| {
                target[t + delay - 1] as usize * bins * bins + target[t + delay] as usize
            };
            offsets.push((0..samples).map(|t| cell(t) as u16).collect());
            let mut table = vec![0u64; bins * bins * bins];
            for t in 0..samples {
                table[cell(t)] += 1;
            }
            let (future_past, past) = target_entropies(&table, bins, samples);
            base.push(future_past - past);
        }
        SurrogateTest {
            bins,
            offsets,
            base,
        }
    }

    /// max over delays of the delayed TE(source → target), clipped at 0 (0 when no delay
    /// fits).
    fn max_transfer_entropy(&self, source: &[u8], scratch: &mut TransferScratch) -> f64 {
        let bins = self.bins;
        let mut best = 0.0f64;
        for (offsets, &base) in self.offsets.iter().zip(&self.base) {
            let samples = offsets.len();
            count_cells(
                &mut scratch.table,
                bins * bins * bins,
                offsets,
                &source[..samples],
                bins,
            );
            let table = std::mem::take(&mut scratch.table);
            let driver_past = scratch.entropy(
                table
                    .chunks_exact(bins)
                    .map(|cell| cell.iter().sum::<u64>()),
                samples,
            );
            let all = scratch.entropy(table.iter().copied(), samples);
            scratch.table = table;
            best = best.max(((base - all) + driver_past).max(0.0));
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::detect::shared::permutation::{round_seed, sequential_rule};
    use crate::detect::shared::ranks::quantile_bins;
    use crate::detect::shared::surrogates::shift_surrogate;
    use crate::detect::shared::test_data::normals;
    use crate::rng::SplitMix64;

    /// The kernel with these parameters.
    fn information_flow_stats(
        columns: &[&[f64]],
        min_values: usize,
        permutations: usize,
        seed: u64,
        max_test_n: usize,
        max_lag: usize,
    ) -> CoreResult<Vec<FlowRow>> {
        let settings = FlowSettings {
            min_values,
            permutations,
            seed,
            max_test_n,
            max_lag,
            prewhiten: false,
            direction_alpha: 1.0,
        };
        super::information_flow_stats(columns, &settings, &Budget::unlimited())
    }

    const SEED: u64 = 0x5EED_CAFE;

    fn entropy_of<K: std::hash::Hash + Eq>(keys: impl Iterator<Item = K>) -> f64 {
        let mut counts: HashMap<K, usize> = HashMap::new();
        let mut total = 0usize;
        for key in keys {
            *counts.entry(key).or_default() += 1;
            total += 1;
        }
        counts
            .values()
            .map(|&c| {
                let p = c as f64 / total as f64;
                -p * p.log2()
            })
            .sum()
    }

    /// Codes x uniform in 0..bins and y = x `lag` steps back with probability `share`, else
    /// uniform.
    fn noisy_copy(seed: u64, n: usize, bins: u64, lag: usize, share: f64) -> (Vec<u8>, Vec<u8>) {
        let mut rng = SplitMix64::new(seed);
        let x: Vec<u8> = (0..n).map(|_| rng.next_below(bins) as u8).collect();
        let y: Vec<u8> = (0..n)
            .map(|t| {
                if t >= lag && rng.next_f64() < share {
                    x[t - lag]
                } else {
                    rng.next_below(bins) as u8
                }
            })
            .collect();
        (x, y)
    }

    /// TE straight from the formula with hash-map histograms.
    fn reference_te(x: &[u8], y: &[u8], lag: usize) -> f64 {
        let n = x.len();
        if n <= lag + 1 {
            return 0.0;
        }
        let t = 0..n - lag;
        let te = entropy_of(t.clone().map(|t| (y[t + lag], y[t])))
            - entropy_of(t.clone().map(|t| y[t]))
            - entropy_of(t.clone().map(|t| (y[t + lag], x[t], y[t])))
            + entropy_of(t.map(|t| (x[t], y[t])));
        te.max(0.0)
    }

    /// Delayed TE from the formula: I(Y_t; X_{t-u} | Y_{t-1}) over t = u..n-1.
    fn reference_delayed_te(x: &[u8], y: &[u8], delay: usize) -> f64 {
        let n = x.len();
        if n <= delay + 1 {
            return 0.0;
        }
        let t = delay..n;
        let te = entropy_of(t.clone().map(|t| (y[t], y[t - 1])))
            - entropy_of(t.clone().map(|t| y[t - 1]))
            - entropy_of(t.clone().map(|t| (y[t], x[t - delay], y[t - 1])))
            + entropy_of(t.map(|t| (x[t - delay], y[t - 1])));
        te.max(0.0)
    }

    #[test]
    fn delay_conditions_on_the_immediate_past() {
        // y copies x two steps later and is itself persistent: y[t] = x[t-2] mostly.
        let mut rng = SplitMix64::new(8);
        let x: Vec<u8> = (0..2000).map(|_| rng.next_below(3) as u8).collect();
        let y: Vec<u8> = (0..2000)
            .map(|t| if t >= 2 { x[t - 2] } else { 0 })
            .collect();
        let mut scratch = TransferScratch::default();
        let at = |u: usize, scratch: &mut TransferScratch| {
            delayed_transfer_entropy_codes(&x, &y, 3, u, scratch)
        };
        // Delay 2 carries all of y's next value (log2 3 bits); delays 1 and 3 none.
        assert!((at(2, &mut scratch) - 3f64.log2()).abs() < 0.01);
        assert!(at(1, &mut scratch) < 0.01 && at(3, &mut scratch) < 0.01);
        // Delay 1 is the lag-1 transfer entropy.
        assert_eq!(
            at(1, &mut scratch),
            transfer_entropy_codes(&x, &y, 3, 1, &mut scratch)
        );
        assert_eq!(
            delayed_transfer_entropy_codes(&x[..3], &y[..3], 3, 2, &mut scratch),
            0.0
        );
    }

    #[test]
    fn bins_formula_and_pair_order() {
        assert_eq!(flow_bins(0), 2);
        assert_eq!(flow_bins(50), 2);
        assert_eq!(flow_bins(270), 3);
        assert_eq!(flow_bins(1000), 5);
        assert_eq!(flow_bins(100_000), 8);
        let m = 4;
        let mut expected = 0;
        for i in 0..m {
            for j in 0..m {
                if i != j {
                    assert_eq!(ordered_index(i, j, m), expected);
                    expected += 1;
                }
            }
        }
    }

    #[test]
    fn transfer_entropy_matches_the_formula() {
        let (x, y) = noisy_copy(3, 400, 4, 2, 0.7);
        let mut scratch = TransferScratch::default();
        for lag in 1..=4 {
            let te = transfer_entropy_codes(&x, &y, 4, lag, &mut scratch);
            assert!((te - reference_te(&x, &y, lag)).abs() < 1e-12, "lag {lag}");
            let surrogate = SurrogateTest::new(&y, 4, lag);
            let reverse = transfer_entropy_codes(&y, &x, 4, lag, &mut scratch);
            assert!((reverse - reference_te(&y, &x, lag)).abs() < 1e-12);
            let delayed = delayed_transfer_entropy_codes(&x, &y, 4, lag, &mut scratch);
            assert!((delayed - reference_delayed_te(&x, &y, lag)).abs() < 1e-12);
            let max = (1..=lag)
                .map(|u| delayed_transfer_entropy_codes(&x, &y, 4, u, &mut scratch))
                .fold(0.0, f64::max);
            assert_eq!(surrogate.max_transfer_entropy(&x, &mut scratch), max);
        }
        // Hand-worked: y[t] = x[t-1]. Samples (y+, x, y): (0,0,0) (1,1,0) (0,0,1) (1,1,0)
        // (1,1,1); Y+ = X, so H(Y+,X,Y) = H(X,Y) and TE = H(Y+,Y) - H(Y) with (y+, y)
        // counts 1,2,1,1 and y counts 3,2.
        let x = [0u8, 1, 0, 1, 1, 0];
        let y = [0u8, 0, 1, 0, 1, 1];
        let expected = entropy_of_counts([1, 2, 1, 1], 5) - entropy_of_counts([3, 2], 5);
        let te = transfer_entropy_codes(&x, &y, 2, 1, &mut scratch);
        assert!((te - expected).abs() < 1e-15, "{te} vs {expected}");
        // n <= lag + 1 → 0
        assert_eq!(
            transfer_entropy_codes(&[0, 1], &[1, 0], 2, 1, &mut scratch),
            0.0
        );
    }

    #[test]
    fn lagged_copy_is_found_in_the_right_direction() {
        let n = 1000;
        let x = normals(21, n);
        let noise = normals(22, n);
        let mut y = vec![0.0; n];
        for t in 0..n {
            let driver = if t >= 2 { x[t - 2] } else { 0.0 };
            y[t] = driver + 0.5 * noise[t];
        }
        let rows = information_flow_stats(&[&x, &y], 50, 199, SEED, 10_000, 3).unwrap();
        let forward = rows[0];
        let backward = rows[1];
        assert_eq!((forward.i, forward.j, forward.n), (0, 1, n as i64));
        assert_eq!(forward.best_lag, 2, "{forward:?}");
        assert!(forward.te > forward.te_reverse, "{forward:?}");
        assert!(forward.p_value < 1e-6, "{forward:?}");
        assert_eq!(forward.bins, flow_bins(n) as i64);
        assert!(forward.tested);
        assert_eq!((backward.i, backward.j), (1, 0));
        assert!(backward.te < forward.te, "{backward:?}");
        // te_reverse of one direction at a lag is the te of the other at that lag
        let mut scratch = TransferScratch::default();
        let b = flow_bins(n);
        let (cx, cy) = (quantile_bins(&x, b), quantile_bins(&y, b));
        let lag = backward.best_lag as usize;
        assert_eq!(
            backward.te,
            delayed_transfer_entropy_codes(&cy, &cx, b, lag, &mut scratch)
        );
        assert_eq!(
            backward.te_reverse,
            delayed_transfer_entropy_codes(&cx, &cy, b, lag, &mut scratch)
        );
        assert!(backward.p_value > 0.01, "{backward:?}");
    }

    #[test]
    fn p_value_follows_the_contract_on_the_latest_values() {
        let n = 600;
        let x = normals(31, n);
        let noise = normals(32, n);
        let y: Vec<f64> = (0..n)
            .map(|t| if t >= 1 { 0.3 * x[t - 1] } else { 0.0 } + noise[t])
            .collect();
        let z = normals(33, n);
        // max_test_n = 400: the test uses the last 400 pairs with b(400) = 3.
        let rows = information_flow_stats(&[&z, &x, &y], 50, 99, SEED, 400, 3).unwrap();
        // (1 → 2) is ordered pair index 3
        let row = rows[3];
        assert_eq!((row.i, row.j), (1, 2));
        let b = flow_bins(400);
        assert_eq!(b, 3);
        let cx = quantile_bins(&x[200..], b);
        let cy = quantile_bins(&y[200..], b);
        let mut scratch = TransferScratch::default();
        let max_te = |source: &[u8], scratch: &mut TransferScratch| {
            (1..=3)
                .map(|u| delayed_transfer_entropy_codes(source, &cy, b, u, scratch))
                .fold(0.0, f64::max)
        };
        let observed = max_te(&cx, &mut scratch);
        let expected = sequential_rule(observed, 99, |r| {
            let stream = round_seed(SEED, FLOW_TEST_FAMILY, r as u64);
            let xp = shift_surrogate(&cx, stream, shortest_shift(&cx, 4));
            max_te(&xp, &mut scratch)
        });
        assert_eq!(row.p_value, expected.p_value);
        assert_eq!(row.perms_run, expected.perms_run as i64);
        // te over all 600 pairs with b(600) = 4
        assert_eq!(row.bins, 4);
        let (fx, fy) = (quantile_bins(&x, 4), quantile_bins(&y, 4));
        let lag = row.best_lag as usize;
        assert_eq!(
            row.te,
            delayed_transfer_entropy_codes(&fx, &fy, 4, lag, &mut scratch)
        );
        // The sparse path (gathering) gives the same rows.
        let nan = f64::NAN;
        let extend = |v: &[f64], extra: f64| {
            let mut out = vec![extra];
            out.extend_from_slice(v);
            out
        };
        let (z2, x2, y2) = (extend(&z, 1.0), extend(&x, nan), extend(&y, 2.0));
        let sparse = information_flow_stats(&[&z2, &x2, &y2], 50, 99, SEED, 400, 3).unwrap();
        assert_eq!(sparse[3], row);
    }

    /// The time-reversal test from its definition: every TE from the hash-map formula over
    /// the samples outside one block, the jackknife written out.
    fn reference_reversal(x: &[u8], y: &[u8], rx: &[u8], ry: &[u8], delay: usize) -> f64 {
        let n = x.len();
        let samples = n - delay;
        let k = jackknife_blocks(samples);
        // TE over the samples t (targets t + delay) kept by `keep(task of the target)`.
        let te = |source: &[u8], target: &[u8], reverse: bool, skip: Option<usize>| {
            let kept: Vec<usize> = (0..samples)
                .filter(|&t| {
                    let task = if reverse {
                        n - 1 - t - delay
                    } else {
                        t + delay
                    };
                    Some(task * k / n) != skip
                })
                .collect();
            let te = entropy_of(
                kept.iter()
                    .map(|&t| (target[t + delay], target[t + delay - 1])),
            ) - entropy_of(kept.iter().map(|&t| target[t + delay - 1]))
                - entropy_of(
                    kept.iter()
                        .map(|&t| (target[t + delay], source[t], target[t + delay - 1])),
                )
                + entropy_of(kept.iter().map(|&t| (source[t], target[t + delay - 1])));
            te.max(0.0)
        };
        let d = |skip: Option<usize>| {
            (te(x, y, false, skip) - te(y, x, false, skip))
                - (te(rx, ry, true, skip) - te(ry, rx, true, skip))
        };
        let full = d(None);
        let kf = k as f64;
        let pseudo: Vec<f64> = (0..k)
            .map(|b| kf * full - (kf - 1.0) * d(Some(b)))
            .collect();
        let mean = pseudo.iter().sum::<f64>() / kf;
        let variance = pseudo.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (kf - 1.0);
        let t = mean / (variance / kf).sqrt();
        let two = student_t_two_sided_p(t, kf - 1.0);
        if t > 0.0 {
            two / 2.0
        } else {
            1.0 - two / 2.0
        }
    }

    #[test]
    fn time_reversal_test_matches_its_definition() {
        let (x, y) = noisy_copy(41, 237, 3, 1, 0.6);
        let (rx, ry): (Vec<u8>, Vec<u8>) = (
            x.iter().rev().copied().collect(),
            y.iter().rev().copied().collect(),
        );
        let mut scratch = TransferScratch::default();
        for delay in 1..=3 {
            let found = time_reversal_test((&x, &y), (&rx, &ry), 3, delay);
            assert!(
                (found.te_time_reversed
                    - delayed_transfer_entropy_codes(&rx, &ry, 3, delay, &mut scratch))
                .abs()
                    < 1e-12
            );
            assert!(
                (found.te_reverse_time_reversed
                    - delayed_transfer_entropy_codes(&ry, &rx, 3, delay, &mut scratch))
                .abs()
                    < 1e-12
            );
            let expected = reference_reversal(&x, &y, &rx, &ry, delay);
            assert!(
                (found.p_value - expected).abs() <= 1e-9 * expected.max(1e-300),
                "delay {delay}: {found:?} vs {expected}"
            );
        }
        // y copies x one step later: read backward, x copies y, so the lead turns around.
        let lead = time_reversal_test((&x, &y), (&rx, &ry), 3, 1);
        assert!(lead.p_value < 1e-4, "{lead:?}");
        assert!(lead.te_reverse_time_reversed > lead.te_time_reversed);
        // The other way round there is no lead to find.
        assert!(time_reversal_test((&y, &x), (&ry, &rx), 3, 1).p_value > 0.5);
    }

    #[test]
    fn time_reversal_test_on_short_and_degenerate_series() {
        assert_eq!(jackknife_blocks(24), 4);
        assert_eq!(jackknife_blocks(25), 5);
        assert_eq!(jackknife_blocks(10_000), JACKKNIFE_BLOCKS);
        let x = [0u8, 1, 0, 1, 1, 0, 1, 0];
        let rx: Vec<u8> = x.iter().rev().copied().collect();
        // Fewer than five blocks: the direction is not tested.
        let short = time_reversal_test((&x, &x), (&rx, &rx), 2, 1);
        assert_eq!(short.p_value, 1.0);
        assert_eq!(time_reversal_test((&x, &x), (&rx, &rx), 2, 7).p_value, 1.0);
        assert_eq!(time_reversal_test((&x, &x), (&rx, &rx), 2, 0).p_value, 1.0);
        // Constant codes: every difference is 0, so no direction.
        let flat = [0u8; 100];
        let result = time_reversal_test((&flat, &flat), (&flat, &flat), 2, 1);
        assert_eq!(
            (
                result.te_time_reversed,
                result.te_reverse_time_reversed,
                result.p_value
            ),
            (0.0, 0.0, 1.0)
        );
    }

    #[test]
    fn two_views_of_one_process_lead_only_forward_in_time() {
        // z is AR(1) 0.9; a is z with little noise, b with much: a's past tells b's next
        // value beyond b's own past (a significant transfer entropy), but the same holds
        // backward in time, so the direction test does not reject. A lag-1 copy does.
        let n = 3000;
        let shocks = normals(51, n);
        let quiet = normals(52, n);
        let loud = normals(53, n);
        let mut z = vec![0.0; n];
        for t in 1..n {
            z[t] = 0.9 * z[t - 1] + shocks[t];
        }
        let a: Vec<f64> = (0..n).map(|t| z[t] + 0.2 * quiet[t]).collect();
        let b: Vec<f64> = (0..n).map(|t| z[t] + 1.0 * loud[t]).collect();
        let settings = FlowSettings {
            min_values: 50,
            permutations: 99,
            seed: SEED,
            max_test_n: 10_000,
            max_lag: 3,
            prewhiten: true,
            direction_alpha: 1.0,
        };
        let rows =
            super::information_flow_stats(&[&a, &b], &settings, &Budget::unlimited()).unwrap();
        let forward = rows[0];
        assert!(
            forward.te > forward.te_reverse && forward.p_value < 0.01,
            "{forward:?}"
        );
        assert!(forward.direction_p > 0.05, "{forward:?}");
        let copy: Vec<f64> = (0..n)
            .map(|t| if t > 0 { a[t - 1] } else { 0.0 } + loud[t])
            .collect();
        let rows =
            super::information_flow_stats(&[&a, &copy], &settings, &Budget::unlimited()).unwrap();
        assert!(
            rows[0].p_value < 0.01 && rows[0].direction_p < 1e-4,
            "{:?}",
            rows[0]
        );
        assert_eq!(rows[0].best_lag, 1);
        // prewhiten = 1 is the kernel on the innovations for the forward statistics.
        let innovations = super::super::shared::prewhiten::prewhiten_columns(&[&a, &copy]);
        let plain = FlowSettings {
            prewhiten: false,
            ..settings
        };
        let on_innovations = super::information_flow_stats(
            &[&innovations[0], &innovations[1]],
            &plain,
            &Budget::unlimited(),
        )
        .unwrap();
        for (with, without) in rows.iter().zip(&on_innovations) {
            assert_eq!(
                (with.best_lag, with.te, with.te_reverse, with.p_value),
                (
                    without.best_lag,
                    without.te,
                    without.te_reverse,
                    without.p_value
                )
            );
        }
    }

    #[test]
    fn degenerate_inputs_and_arguments() {
        assert!(information_flow_stats(&[], 50, 10, 0, 100, 3)
            .unwrap()
            .is_empty());
        assert!(information_flow_stats(&[&[1.0, 2.0]], 50, 10, 0, 100, 3)
            .unwrap()
            .is_empty());
        let nan = f64::NAN;
        let constant = [1.0; 60];
        let varying: Vec<f64> = (0..60).map(|v| f64::from(v % 7)).collect();
        let absent = [nan; 60];
        let rows =
            information_flow_stats(&[&constant, &varying, &absent], 50, 10, 0, 100, 3).unwrap();
        assert_eq!(rows.len(), 6);
        for row in &rows {
            assert!(!row.tested);
            assert_eq!((row.best_lag, row.perms_run), (0, 0));
            assert!(row.te.is_nan() && row.te_reverse.is_nan() && row.p_value.is_nan());
            assert!(row.te_time_reversed.is_nan() && row.direction_p.is_nan());
        }
        assert_eq!((rows[0].i, rows[0].j, rows[0].n), (0, 1, 60));
        assert_eq!((rows[2].i, rows[2].j, rows[2].n), (1, 0, 60));
        assert_eq!((rows[3].i, rows[3].j, rows[3].n), (1, 2, 0));
        // Tiny tested series: lags beyond n - 2 have TE 0, best lag 1.
        let a = [1.0, 2.0, 3.0];
        let b = [3.0, 1.0, 2.0];
        let rows = information_flow_stats(&[&a, &b], 2, 10, 0, 100, 5).unwrap();
        assert!(rows[0].tested);
        assert_eq!(rows[0].best_lag, 1);
        let rows = information_flow_stats(&[&a[..2], &b[..2]], 2, 10, 0, 1, 5).unwrap();
        assert_eq!(
            (rows[0].best_lag, rows[0].te, rows[0].te_reverse),
            (1, 0.0, 0.0)
        );
        assert_eq!(rows[0].p_value, 1.0);
        for (permutations, max_test_n, max_lag, prewhiten, name) in [
            (0i64, 100i64, 3i64, 0i64, "permutations"),
            (10, 0, 3, 0, "max_test_n"),
            (10, 100, 0, 0, "max_lag"),
            (10, 100, 3, 2, "prewhiten"),
            (10, 100, 3, -1, "prewhiten"),
        ] {
            let params = Params::new()
                .with("min_values", 50i64)
                .with("permutations", permutations)
                .with("seed", 0u64)
                .with("max_test_n", max_test_n)
                .with("max_lag", max_lag)
                .with("prewhiten", prewhiten);
            let error = run(&[&a], &params, &Budget::unlimited()).unwrap_err();
            assert!(error.to_string().starts_with(name), "{error}");
        }
        // A huge max_lag costs nothing.
        assert!(information_flow_stats(&[&a, &b], 2, 10, 0, 100, usize::MAX).is_ok());
    }
}
