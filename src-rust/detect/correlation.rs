//! Pairwise Pearson correlation between metrics (SPEC §6; its p-value as SPEC §12 amends
//! it: valid on autocorrelated, drifting and seasonal series).
//!
//! r and the threshold are §6's. The p-value ([`association_p_value`]) asks the pair to be
//! associated twice, after two different ways of removing what each series does on its
//! own, and is the larger of the two (an intersection–union test, Berger 1982: valid when
//! either is): Spearman's ρ of the first differences (shared trends, steps and random-walk
//! drift removed; a shared step is one tied extreme pair, not a correlation) and Pearson's
//! r of each series' AR(p) residuals (`shared::prewhiten`: autocorrelation removed), each
//! with an effective sample size for the autocorrelation left (Bartlett 1935; Bretherton
//! et al. 1999). A series that repeats a cycle is read without it first (its phase
//! medians removed, as the change-point search removes it): a cycle and noise is no finite
//! AR model, and a shared daily cycle left in the residuals is a correlation of thousands
//! of values.

use std::sync::OnceLock;

use rayon::prelude::*;

use super::shared::columns::{column_length, unordered_pairs};
use super::shared::prewhiten::ar_residuals;
use super::shared::ranks::{average_ranks, doubled_midranks};
use super::shared::seasonal::find_cycle;
use super::{Detector, Table};
use crate::args::{Budget, DefaultValue, ParamSpec, Params};
use crate::error::CoreResult;
use crate::info::simd::{self, Vectors};
use crate::stats::{correlation_from_sums, pearson, student_t_two_sided_p};

crate::record! {
    /// One metric pair's correlation (see [`correlation_stats`]).
    pub struct CorrelationRow {
        /// The pair's metrics, i < j.
        i: i64,
        j: i64,
        /// Tasks having both metrics.
        n: i64,
        /// Pearson's r over those tasks.
        r: f64,
        /// The test of no association of the differences and of the AR residuals
        /// ([`association_p_value`]).
        p_value: f64,
        detected: bool,
    }
}

/// The registry entry.
pub const DETECTOR: Detector = Detector {
    name: "correlation",
    kind: "correlation",
    fields: CorrelationRow::FIELDS,
    params: &[ParamSpec {
        name: "threshold",
        default: DefaultValue::Float(0.7),
    }],
    run,
};

fn run(columns: &[&[f64]], params: &Params, budget: &Budget) -> CoreResult<Table> {
    let threshold = params.unit_interval("threshold")?;
    let rows = correlation_stats(columns, threshold, budget)?;
    Ok(CorrelationRow::table(&rows))
}

/// From this many pairs on, a correlation must also be significant.
const MIN_TESTED_PAIRS: usize = 10;
/// Significance level of a tested correlation.
const SIGNIFICANCE: f64 = 0.01;
const STAGE: &str = "correlation";

/// Per-column summary reused by every pair of two complete columns.
struct ColumnSummary {
    /// No value is absent.
    complete: bool,
    /// Sequential mean (complete columns only).
    mean: f64,
    /// Centered sum of squares, sequential (complete columns only).
    sum_of_squares: f64,
    /// All values equal (complete columns only).
    constant: bool,
}

fn summarize(column: &[f64]) -> ColumnSummary {
    // One pass for presence, the sequential sum and constancy; a second for the centered
    // sum of squares (the same sums as `sequential_sum` and the two-pass formula).
    let first = column.first().copied().unwrap_or(f64::NAN);
    let (mut sum, mut any_nan, mut constant) = (0.0, false, true);
    for &value in column {
        sum += value;
        any_nan |= value.is_nan();
        constant &= value == first;
    }
    if any_nan || column.is_empty() {
        return ColumnSummary {
            complete: !any_nan,
            mean: f64::NAN,
            sum_of_squares: 0.0,
            constant: true,
        };
    }
    let mean = sum / column.len() as f64;
    let mut sum_of_squares = 0.0;
    for &value in column {
        let deviation = value - mean;
        sum_of_squares += deviation * deviation;
    }
    ColumnSummary {
        complete: true,
        mean,
        sum_of_squares,
        constant,
    }
}

/// One row per metric pair (i, j), i < j, in the order (0,1), (0,2), ..., (1,2), ...:
/// - over the tasks having both metrics; `n` = their count;
/// - `r`: Pearson, two-pass centered (sequential sums), clipped to [-1, 1]; 0 when either
///   metric is constant over those tasks (zero variance; also n < 2);
/// - `p_value`: [`association_p_value`] of the pair over those tasks when |r| >= threshold
///   (NaN below it, where it would decide nothing, and when n < 4);
/// - `detected` when n >= 3, |r| >= threshold and (n < 10 or p_value < 0.01).
///
/// `threshold` in (0, 1] (checked by the caller). Pairs run in parallel; complete columns'
/// means and sums of squares, and their tested series ([`Tested`]), are computed once.
pub fn correlation_stats(
    columns: &[&[f64]],
    threshold: f64,
    budget: &Budget,
) -> CoreResult<Vec<CorrelationRow>> {
    let n = column_length(columns)?;
    let summaries: Vec<ColumnSummary> = columns.par_iter().map(|c| summarize(c)).collect();
    let m = columns.len();
    // Centered cross products of every pair of complete columns, in one blocked pass.
    let complete: Vec<usize> = (0..m).filter(|&k| summaries[k].complete).collect();
    let mut slot = vec![usize::MAX; m];
    for (position, &k) in complete.iter().enumerate() {
        slot[k] = position;
    }
    let products = cross_products(columns, &summaries, &complete, n, budget)?;
    // A complete metric's tested series, prepared by its first pair at the threshold.
    let tests: Vec<OnceLock<Tested>> = (0..m).map(|_| OnceLock::new()).collect();
    let pairs = unordered_pairs(m);
    pairs
        .par_iter()
        .map(|&(i, j)| {
            budget.check(STAGE)?;
            let (n, r) = if slot[i] != usize::MAX && slot[j] != usize::MAX {
                let (x, y) = (&summaries[i], &summaries[j]);
                let r = if x.constant || y.constant {
                    0.0
                } else {
                    let sxy = products[slot[i] * complete.len() + slot[j]];
                    correlation_from_sums(sxy, x.sum_of_squares, y.sum_of_squares)
                };
                (n, r)
            } else {
                pair_correlation(columns[i], columns[j], &summaries[i], &summaries[j])
            };
            // Only a pair at the threshold needs its p-value (it decides nothing below).
            let p_value = if r.abs() < threshold {
                f64::NAN
            } else if slot[i] != usize::MAX && slot[j] != usize::MAX {
                if n < MIN_DIFFERENCED_PAIRS {
                    f64::NAN
                } else {
                    let tested = |k: usize| {
                        tests[k].get_or_init(|| {
                            let from = n.saturating_sub(MAX_TESTED_PAIRS);
                            Tested::of(columns[k][from..].to_vec())
                        })
                    };
                    association(tested(i), tested(j))
                }
            } else {
                association_p_value(columns[i], columns[j])
            };
            Ok(correlation_row((i, j), n, r, p_value, threshold))
        })
        .collect()
}

/// The row of the pair (i, j) over n tasks: detected when n >= 3, |r| >= threshold and
/// (n < 10 or p_value < 0.01); the one decision of the kernel and of the mergeable state's
/// table (`crate::state::tables`).
pub(crate) fn correlation_row(
    (i, j): (usize, usize),
    n: usize,
    r: f64,
    p_value: f64,
    threshold: f64,
) -> CorrelationRow {
    CorrelationRow {
        i: i as i64,
        j: j as i64,
        n: n as i64,
        r,
        p_value,
        detected: n >= 3
            && r.abs() >= threshold
            && (n < MIN_TESTED_PAIRS || p_value < SIGNIFICANCE),
    }
}

/// Fewer tasks having both metrics than this: no p-value (NaN).
pub const MIN_DIFFERENCED_PAIRS: usize = 4;
/// The p-value reads at most this many of the latest tasks having both metrics.
pub const MAX_TESTED_PAIRS: usize = 10_000;

/// The p-value of no association between x and y over the (latest [`MAX_TESTED_PAIRS`])
/// tasks having both, in order, each series [`without_cycle`] (its phases those of the
/// tasks, gaps included): the larger of
/// - [`effective_p_value`] of the average ranks of the first differences
///   `d_t = v_{t+1} - v_t` (Spearman's ρ of the differences), and
/// - [`effective_p_value`] of the AR(p) residuals of x and of y ([`ar_residuals`], each
///   series its own order).
///
/// NaN below [`MIN_DIFFERENCED_PAIRS`] pairs.
pub fn association_p_value(x: &[f64], y: &[f64]) -> f64 {
    let mut tasks: Vec<usize> = (0..x.len().min(y.len()))
        .filter(|&t| !x[t].is_nan() && !y[t].is_nan())
        .collect();
    if tasks.len() < MIN_DIFFERENCED_PAIRS {
        return f64::NAN;
    }
    if tasks.len() > MAX_TESTED_PAIRS {
        tasks.drain(..tasks.len() - MAX_TESTED_PAIRS);
    }
    // the tasks counted from the first one tested
    let first = tasks[0];
    let length = tasks[tasks.len() - 1] - first + 1;
    let at: Vec<usize> = tasks.iter().map(|&t| t - first).collect();
    let xs: Vec<f64> = tasks.iter().map(|&t| x[t]).collect();
    let ys: Vec<f64> = tasks.iter().map(|&t| y[t]).collect();
    association(&Tested::at(xs, &at, length), &Tested::at(ys, &at, length))
}

/// One series as [`association_p_value`] reads it, which depends on the series alone:
/// the average ranks of its first differences and its AR(p) residuals, both
/// [`without_cycle`]. A metric every task has reads the same series in each of its pairs,
/// so the kernel prepares it once.
pub struct Tested {
    difference_ranks: Vec<f64>,
    residuals: Vec<f64>,
}

impl Tested {
    /// The series `values` (consecutive, at least [`MIN_DIFFERENCED_PAIRS`]) prepared.
    pub fn of(values: Vec<f64>) -> Self {
        let length = values.len();
        Tested::at(values, &[], length)
    }

    /// The series `values` recorded at the task positions `tasks` (ascending) of `length`
    /// tasks (consecutive when `tasks` is empty) prepared: its cycle removed by task phase.
    pub fn at(values: Vec<f64>, tasks: &[usize], length: usize) -> Self {
        let values = without_cycle(values, tasks, length);
        let differences: Vec<f64> = values.windows(2).map(|w| w[1] - w[0]).collect();
        Tested {
            difference_ranks: average_ranks(&differences),
            residuals: ar_residuals(&values),
        }
    }
}

/// The larger of [`effective_p_value`] of the two series' difference ranks and of their
/// AR residuals (the p-value of [`association_p_value`]).
pub fn association(x: &Tested, y: &Tested) -> f64 {
    let differences = effective_p_value(&x.difference_ranks, &y.difference_ranks);
    differences.max(effective_p_value(&x.residuals, &y.residuals))
}

/// `values`, recorded at the task positions `tasks` of `length` tasks (consecutive when
/// `tasks` is empty), minus the median at their task's phase when they repeat a cycle
/// ([`find_cycle`], which searches with at most a third of the tasks absent), else
/// `values`.
pub fn without_cycle(values: Vec<f64>, tasks: &[usize], length: usize) -> Vec<f64> {
    let length = if tasks.is_empty() {
        values.len()
    } else {
        length
    };
    match find_cycle(&values, &doubled_midranks(&values), tasks, length) {
        Some((_, removed)) => removed,
        None => values,
    }
}

/// Pearson's r of a and b with Student's t on `n_eff - 2` degrees of freedom, two-sided,
/// `n_eff = n (1 - ρ_a ρ_b) / (1 + ρ_a ρ_b)` clipped to [3, n], ρ the lag-1
/// autocorrelations ([`lag1_autocorrelation`]; Bartlett 1935, Bretherton et al. 1999).
/// 0 when |r| == 1; 1 when either series is constant (r = 0).
pub fn effective_p_value(a: &[f64], b: &[f64]) -> f64 {
    let r = pearson(a, b);
    let n = a.len() as f64;
    let product = lag1_autocorrelation(a) * lag1_autocorrelation(b);
    let n_eff = (n * (1.0 - product) / (1.0 + product)).clamp(3.0, n.max(3.0));
    if r.abs() >= 1.0 {
        return 0.0;
    }
    let df = n_eff - 2.0;
    student_t_two_sided_p(r * (df / (1.0 - r * r)).sqrt(), df)
}

/// `Σ (d_t - d̄)(d_{t+1} - d̄) / Σ (d_t - d̄)²` (the ACF estimator at lag 1); 0 when the
/// sum of squares is 0 or fewer than 2 values.
pub fn lag1_autocorrelation(values: &[f64]) -> f64 {
    if values.len() < 2 {
        return 0.0;
    }
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    let (mut lagged, mut squares) = (0.0, 0.0);
    for (t, &value) in values.iter().enumerate() {
        let centered = value - mean;
        squares += centered * centered;
        if t + 1 < values.len() {
            lagged += centered * (values[t + 1] - mean);
        }
    }
    if squares == 0.0 {
        0.0
    } else {
        lagged / squares
    }
}

/// Rows per block of [`cross_products`] (a block's centered values stay in cache).
const PRODUCT_BLOCK_ROWS: usize = 1024;
/// Columns of a register tile (and the padding of a centered block's rows).
const TILE_COLUMNS: usize = 16;

/// Σ (x - mean_x)(y - mean_y) for every pair a < b of the complete columns `complete`
/// (q×q row-major, upper triangle), each sum accumulated sequentially in row order exactly
/// like a pair-by-pair loop, but all pairs advance together block by block: each block is
/// centered once into task-major order (rows padded with zeros to a whole tile; the threads
/// center disjoint task ranges), then tiles of pair sums held in registers take one update
/// per task ([`add_block_products`]). The pair rows are dealt round-robin to one job per
/// thread, each with its own sums, so every sum sees its products in task order.
fn cross_products(
    columns: &[&[f64]],
    summaries: &[ColumnSummary],
    complete: &[usize],
    n: usize,
    budget: &Budget,
) -> CoreResult<Vec<f64>> {
    let q = complete.len();
    let mut products = vec![0.0; q * q];
    if q < 2 {
        return Ok(products);
    }
    // room for a whole tile starting at any column
    let stride = q + TILE_COLUMNS;
    let threads = rayon::current_num_threads().max(1);
    let jobs = threads.clamp(1, q - 1);
    let mut parts: Vec<(Vec<usize>, Vec<f64>)> = (0..jobs)
        .map(|job| {
            let rows: Vec<usize> = (job..q - 1).step_by(jobs).collect();
            let sums = vec![0.0; rows.len() * stride];
            (rows, sums)
        })
        .collect();
    let means: Vec<f64> = complete.iter().map(|&k| summaries[k].mean).collect();
    let mut centered = vec![0.0; PRODUCT_BLOCK_ROWS * stride];
    let tasks_per_thread = PRODUCT_BLOCK_ROWS.div_ceil(threads);
    for block_start in (0..n).step_by(PRODUCT_BLOCK_ROWS) {
        budget.check(STAGE)?;
        let block = PRODUCT_BLOCK_ROWS.min(n - block_start);
        centered[..block * stride]
            .par_chunks_mut(tasks_per_thread * stride)
            .enumerate()
            .for_each(|(part, rows)| {
                let start = block_start + part * tasks_per_thread;
                center_tasks(columns, complete, &means, start, stride, rows);
            });
        let block_values = &centered[..block * stride];
        parts.par_iter_mut().for_each(|(rows, sums)| {
            add_block_products(block_values, stride, q, rows, sums);
        });
    }
    for (rows, sums) in parts {
        for (&a, row_sums) in rows.iter().zip(sums.chunks_exact(stride)) {
            products[a * q + a + 1..(a + 1) * q].copy_from_slice(&row_sums[a + 1..q]);
        }
    }
    Ok(products)
}

/// Centers tasks `start..` (as many as `out` has rows of `stride`) of the complete columns
/// into task-major rows, eight columns at a time so each task's row is written in whole
/// cache lines.
fn center_tasks(
    columns: &[&[f64]],
    complete: &[usize],
    means: &[f64],
    start: usize,
    stride: usize,
    out: &mut [f64],
) {
    const GROUP: usize = 8;
    let tasks = out.len() / stride;
    for first in (0..complete.len()).step_by(GROUP) {
        let group = GROUP.min(complete.len() - first);
        let sources: Vec<&[f64]> = complete[first..first + group]
            .iter()
            .map(|&k| &columns[k][start..start + tasks])
            .collect();
        for (task, row) in out.chunks_exact_mut(stride).enumerate() {
            for (slot, (source, &mean)) in row[first..first + group]
                .iter_mut()
                .zip(sources.iter().zip(&means[first..first + group]))
            {
                *slot = source[task] - mean;
            }
        }
    }
}

/// For each pair row (a column offset in `offsets`, ascending) and each task of the
/// task-major block `centered` (rows of `stride` values, `width` of them real, the rest
/// zero), in task order: `sums[row][b] += x_row * x_b` for every later column b (and
/// harmless updates of earlier or padding columns). Rows are taken 4 (AVX-512: 8) at a time
/// and columns 16 at a time, the sums of a tile staying in registers across the block.
///
/// Compiled for AVX-512 and AVX2 as well and picked at run time; every variant does the
/// same separate multiply and add (never fused) in the same order, so all give the same
/// bits as a plain pair-by-pair loop.
fn add_block_products(
    centered: &[f64],
    stride: usize,
    width: usize,
    offsets: &[usize],
    sums: &mut [f64],
) {
    #[cfg(target_arch = "x86_64")]
    match simd::widest() {
        // SAFETY: the CPU supports the instructions each variant is compiled for.
        Vectors::Avx512 => {
            return unsafe { add_block_products_avx512(centered, stride, width, offsets, sums) };
        }
        Vectors::Avx2 => {
            return unsafe { add_block_products_avx2(centered, stride, width, offsets, sums) };
        }
        Vectors::Portable => {}
    }
    add_block_products_portable(centered, stride, width, offsets, sums);
}

#[inline(always)]
fn add_block_products_portable(
    centered: &[f64],
    stride: usize,
    width: usize,
    offsets: &[usize],
    sums: &mut [f64],
) {
    add_block_products_tiled::<4>(centered, stride, width, offsets, sums);
}

/// The tiled loop with `ROWS` rows per tile (8 fit the 32 registers of AVX-512, 4 the 16
/// of AVX2).
#[inline(always)]
fn add_block_products_tiled<const ROWS: usize>(
    centered: &[f64],
    stride: usize,
    width: usize,
    offsets: &[usize],
    sums: &mut [f64],
) {
    for (group, tile_offsets) in offsets.chunks(ROWS).enumerate() {
        // a short last group repeats its last row: the copies compute the same bits
        let mut at = [0usize; ROWS];
        let mut row = [0usize; ROWS];
        for i in 0..ROWS {
            let index = i.min(tile_offsets.len() - 1);
            at[i] = tile_offsets[index];
            row[i] = (group * ROWS + index) * stride;
        }
        let mut column = at[0] + 1;
        while column < width {
            let mut acc = [[0.0f64; TILE_COLUMNS]; ROWS];
            for i in 0..ROWS {
                acc[i].copy_from_slice(&sums[row[i] + column..row[i] + column + TILE_COLUMNS]);
            }
            for task in centered.chunks_exact(stride) {
                let y: &[f64; TILE_COLUMNS] = task[column..column + TILE_COLUMNS]
                    .try_into()
                    .expect("a tile fits in the padded row");
                for i in 0..ROWS {
                    let x = task[at[i]];
                    for j in 0..TILE_COLUMNS {
                        acc[i][j] += x * y[j];
                    }
                }
            }
            for i in 0..ROWS {
                sums[row[i] + column..row[i] + column + TILE_COLUMNS].copy_from_slice(&acc[i]);
            }
            column += TILE_COLUMNS;
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq,avx512vl,avx512bw")]
fn add_block_products_avx512(
    centered: &[f64],
    stride: usize,
    width: usize,
    offsets: &[usize],
    sums: &mut [f64],
) {
    add_block_products_tiled::<8>(centered, stride, width, offsets, sums);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn add_block_products_avx2(
    centered: &[f64],
    stride: usize,
    width: usize,
    offsets: &[usize],
    sums: &mut [f64],
) {
    add_block_products_portable(centered, stride, width, offsets, sums);
}

/// (n, r) over the tasks having both metrics.
fn pair_correlation(
    x: &[f64],
    y: &[f64],
    summary_x: &ColumnSummary,
    summary_y: &ColumnSummary,
) -> (usize, f64) {
    if summary_x.complete && summary_y.complete {
        let n = x.len();
        if summary_x.constant || summary_y.constant {
            return (n, 0.0);
        }
        let (mean_x, mean_y) = (summary_x.mean, summary_y.mean);
        let mut sxy = 0.0;
        for (&xi, &yi) in x.iter().zip(y) {
            sxy += (xi - mean_x) * (yi - mean_y);
        }
        return (
            n,
            correlation_from_sums(sxy, summary_x.sum_of_squares, summary_y.sum_of_squares),
        );
    }
    // First pass over the shared tasks: count, sums, constancy.
    let mut n = 0usize;
    let (mut sum_x, mut sum_y) = (0.0, 0.0);
    let (mut first_x, mut first_y) = (f64::NAN, f64::NAN);
    let (mut constant_x, mut constant_y) = (true, true);
    for (&xi, &yi) in x.iter().zip(y) {
        if xi.is_nan() || yi.is_nan() {
            continue;
        }
        if n == 0 {
            first_x = xi;
            first_y = yi;
        } else {
            constant_x &= xi == first_x;
            constant_y &= yi == first_y;
        }
        n += 1;
        sum_x += xi;
        sum_y += yi;
    }
    if constant_x || constant_y {
        return (n, 0.0);
    }
    let mean_x = sum_x / n as f64;
    let mean_y = sum_y / n as f64;
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (&xi, &yi) in x.iter().zip(y) {
        if xi.is_nan() || yi.is_nan() {
            continue;
        }
        let dx = xi - mean_x;
        let dy = yi - mean_y;
        sxy += dx * dy;
        sxx += dx * dx;
        syy += dy * dy;
    }
    (n, correlation_from_sums(sxy, sxx, syy))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::CoreError;
    use crate::rng::SplitMix64;
    use crate::stats::pearson;

    fn correlation_stats(columns: &[&[f64]], threshold: f64) -> CoreResult<Vec<CorrelationRow>> {
        super::correlation_stats(columns, threshold, &Budget::unlimited())
    }

    fn row(i: i64, j: i64, n: i64, r: f64, p_value: f64, detected: bool) -> CorrelationRow {
        CorrelationRow {
            i,
            j,
            n,
            r,
            p_value,
            detected,
        }
    }

    #[test]
    fn perfect_correlations_and_pair_order() {
        let a = [1.0, 2.0, 3.0, 4.0, 5.0];
        let b = [2.0, 4.0, 6.0, 8.0, 10.0];
        let c = [5.0, 4.0, 3.0, 2.0, 1.0];
        let rows = correlation_stats(&[&a, &b, &c], 0.9).unwrap();
        assert_eq!(rows.len(), 3);
        // ramps: their differences are constant, so the differenced test finds nothing
        // (a shared trend); n < 10: detected by r alone
        assert_eq!(rows[0], row(0, 1, 5, 1.0, 1.0, true));
        assert_eq!(rows[1], row(0, 2, 5, -1.0, 1.0, true));
        assert_eq!(rows[2], row(1, 2, 5, -1.0, 1.0, true));
        // exactly proportional noise: differences perfectly correlated too, p = 0
        let noise = [3.0, -1.0, 4.0, 1.0, -5.0];
        let double = noise.map(|v| 2.0 * v);
        let rows = correlation_stats(&[&noise, &double], 0.9).unwrap();
        assert_eq!(rows[0], row(0, 1, 5, 1.0, 0.0, true));
    }

    #[test]
    fn zero_variance_gives_zero_r() {
        let a = [1.0, 2.0, 3.0, 4.0];
        let constant = [0.1; 4];
        let rows = correlation_stats(&[&a, &constant], 0.5).unwrap();
        // below the threshold the p-value decides nothing: NaN
        assert_eq!((rows[0].r, rows[0].detected), (0.0, false));
        assert!(rows[0].p_value.is_nan());
        // Constant over the shared tasks only (absent values elsewhere).
        let nan = f64::NAN;
        let partial = [7.0, nan, 7.0, 7.0];
        let rows = correlation_stats(&[&a, &partial], 0.5).unwrap();
        assert_eq!((rows[0].n, rows[0].r), (3, 0.0));
    }

    #[test]
    fn offset_data_is_exact() {
        let x = [1.0, 2.0, 4.0, 7.0, 11.0];
        let y = [2.0, 1.0, 5.0, 8.0, 9.0];
        let ox: Vec<f64> = x.iter().map(|v| v + 1e9).collect();
        let oy: Vec<f64> = y.iter().map(|v| v + 1e9).collect();
        let rows = correlation_stats(&[&ox, &oy], 0.9).unwrap();
        // scipy.stats.pearsonr(x, y)
        assert!((rows[0].r - 0.9400193421607683).abs() < 1e-14);
        // differences (1, 2, 3, 4), (-1, 4, 3, 1): ranks (0, 1, 2, 3), (0, 3, 2, 1),
        // Spearman's ρ = 0.2 (scipy.stats.spearmanr), lag-1 ACF 0.25 and -0.35 → n_eff
        // clipped to 4: 2 * scipy.stats.t.sf(t, 2) = 0.8; the AR residuals (order 0 by AIC
        // for both: the centered values) give 0.1196, the larger p-value is reported
        assert!((rows[0].p_value - 0.8).abs() < 1e-12, "{:?}", rows[0]);
        assert!(rows[0].detected); // n < 10: no significance gate
    }

    #[test]
    fn shared_tasks_only_and_significance_gate() {
        let nan = f64::NAN;
        let x = [1.0, nan, 2.0, 3.0, 4.0, nan];
        let y = [1.5, 9.0, nan, 3.0, 4.5, 2.0];
        let rows = correlation_stats(&[&x, &y], 0.5).unwrap();
        assert_eq!(rows[0].n, 3);
        assert_eq!(rows[0].r, pearson(&[1.0, 3.0, 4.0], &[1.5, 3.0, 4.5]));
        // 12 pairs, r ≈ 0.652 (above the threshold), but a ramp plus noise: the
        // differences carry no association (p > 0.01) → not detected.
        let a: Vec<f64> = (0..12).map(f64::from).collect();
        let noise = [
            3.0, -4.0, 2.0, 5.0, -3.0, 1.0, -5.0, 4.0, 0.0, -2.0, 3.0, -4.0,
        ];
        let b: Vec<f64> = a.iter().zip(noise).map(|(v, e)| v + e).collect();
        let found = correlation_stats(&[&a, &b], 0.5).unwrap()[0];
        assert!(found.r > 0.5, "{found:?}");
        assert!(found.p_value > 0.01, "{found:?}");
        assert!(!found.detected);
    }

    #[test]
    fn complete_and_sparse_paths_agree() {
        let mut rng = SplitMix64::new(11);
        let x: Vec<f64> = (0..1000).map(|_| rng.next_f64()).collect();
        let y: Vec<f64> = x.iter().map(|v| v * 0.3 + rng.next_f64()).collect();
        let complete = correlation_stats(&[&x, &y], 0.2).unwrap()[0];
        assert_eq!(complete.r, pearson(&x, &y));
        let mut y_sparse = y.clone();
        y_sparse.push(f64::NAN);
        let mut x_long = x.clone();
        x_long.push(0.5);
        let sparse = correlation_stats(&[&x_long, &y_sparse], 0.2).unwrap()[0];
        assert_eq!(sparse, complete);
        assert!(complete.p_value < 1e-6 && complete.detected);
    }

    #[test]
    fn a_shared_cycle_is_read_without_it() {
        // Two series sharing only a strong cycle of 48 under noise of their own, 12,000
        // values (the p-value reads the latest 10,000): r near 1, and each series read
        // without its phase medians is its noise, so no association; the complete and the
        // sparse path (a NaN appended) agree.
        let mut rng = SplitMix64::new(3);
        let n = 12_000;
        let cycle: Vec<f64> = (0..n)
            .map(|t| (2.0 * std::f64::consts::PI * t as f64 / 48.0).sin())
            .collect();
        let x: Vec<f64> = cycle.iter().map(|c| 40.0 * c + rng.next_f64()).collect();
        let y: Vec<f64> = cycle.iter().map(|c| 20.0 * c + rng.next_f64()).collect();
        let tested = without_cycle(x[n - MAX_TESTED_PAIRS..].to_vec(), &[], 0);
        assert!(tested.iter().all(|v| v.abs() < 1.0), "the cycle is removed");
        let complete = correlation_stats(&[&x, &y], 0.7).unwrap()[0];
        assert!(complete.r > 0.99 && complete.p_value > 0.01 && !complete.detected);
        let (mut x_long, mut y_sparse) = (x.clone(), y.clone());
        x_long.push(0.5);
        y_sparse.push(f64::NAN);
        let sparse = correlation_stats(&[&x_long, &y_sparse], 0.7).unwrap()[0];
        assert_eq!(sparse, complete);
        // a few absent values: the phases are the tasks', so the cycle is still removed
        // (read as consecutive, each gap shifted them and p fell to 1e-55 with 5 absent)
        let mut gappy = y.clone();
        for t in [2_500, 4_000, 7_777, 9_001, 11_111] {
            gappy[t] = f64::NAN;
        }
        let with_gaps = correlation_stats(&[&x, &gappy], 0.7).unwrap()[0];
        assert!(
            with_gaps.p_value > 0.01 && !with_gaps.detected,
            "{with_gaps:?}"
        );
        // the same noise riding on the cycle of both: associated
        let z: Vec<f64> = x.iter().zip(&cycle).map(|(v, c)| v - 20.0 * c).collect();
        let shared = correlation_stats(&[&x, &z], 0.7).unwrap()[0];
        assert!(shared.p_value < 1e-12 && shared.detected, "{shared:?}");
    }

    #[test]
    fn blocked_products_equal_pairwise_sums_bit_for_bit() {
        for complete in [2, 7, 23, 37] {
            products_equal_pairwise_sums(complete);
        }
    }

    /// `complete` complete columns over several blocks (one constant), plus one with gaps:
    /// every r equals the pair-by-pair `pearson` to the bit (tiles of 4 or 8 rows and 16
    /// columns, with short last tiles).
    fn products_equal_pairwise_sums(complete: usize) {
        let n = 2 * PRODUCT_BLOCK_ROWS + 77;
        let mut rng = SplitMix64::new(4 + complete as u64);
        let mut columns: Vec<Vec<f64>> = (0..complete)
            .map(|k| (0..n).map(|_| 1e6 * k as f64 + rng.next_f64()).collect())
            .collect();
        columns[complete / 2] = vec![2.5; n];
        let mut gappy: Vec<f64> = (0..n).map(|_| rng.next_f64()).collect();
        gappy[5] = f64::NAN;
        columns.push(gappy);
        let views: Vec<&[f64]> = columns.iter().map(|c| c.as_slice()).collect();
        let rows = correlation_stats(&views, 0.5).unwrap();
        assert_eq!(rows.len(), (complete + 1) * complete / 2);
        for row in rows {
            let (i, j) = (row.i as usize, row.j as usize);
            let (x, y): (Vec<f64>, Vec<f64>) = columns[i]
                .iter()
                .zip(&columns[j])
                .filter(|(a, b)| !a.is_nan() && !b.is_nan())
                .map(|(a, b)| (*a, *b))
                .unzip();
            assert_eq!(row.n, x.len() as i64);
            assert_eq!(
                row.r.to_bits(),
                pearson(&x, &y).to_bits(),
                "pair ({i}, {j})"
            );
        }
    }

    #[test]
    fn degenerate_inputs() {
        assert!(correlation_stats(&[], 0.5).unwrap().is_empty());
        assert!(correlation_stats(&[&[1.0]], 0.5).unwrap().is_empty());
        let rows = correlation_stats(&[&[], &[]], 0.5).unwrap();
        assert_eq!((rows[0].i, rows[0].j, rows[0].n, rows[0].r), (0, 1, 0, 0.0));
        assert!(rows[0].p_value.is_nan());
        let nan = f64::NAN;
        let rows = correlation_stats(&[&[nan, 1.0], &[2.0, nan]], 0.5).unwrap();
        assert_eq!((rows[0].n, rows[0].r, rows[0].detected), (0, 0.0, false));
        let rows = correlation_stats(&[&[1.0, 2.0], &[2.0, 1.0]], 0.5).unwrap();
        assert_eq!((rows[0].n, rows[0].r, rows[0].detected), (2, -1.0, false));
        assert!(rows[0].p_value.is_nan());
    }

    #[test]
    fn rejects_bad_threshold_and_ragged_columns() {
        for bad in [0.0, -0.5, 1.5, f64::NAN, f64::INFINITY] {
            let params = Params::new().with("threshold", bad);
            match run(&[&[1.0]], &params, &Budget::unlimited()) {
                Err(CoreError::InvalidArgument { argument, message }) => {
                    assert_eq!(argument, "threshold");
                    assert!(message.starts_with("threshold must be in (0, 1]"));
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        assert!(correlation_stats(&[&[1.0, 2.0], &[1.0]], 0.5).is_err());
        assert!(correlation_stats(&[&[1.0], &[2.0]], 1.0).is_ok());
    }

    /// Timing (run with `cargo test --release -- --ignored correlation_timing --nocapture`):
    /// the three per-metric and per-pair detectors on 1M tasks × 16 metrics (and
    /// correlation on 1M × 64).
    #[test]
    #[ignore]
    fn correlation_timing() {
        use crate::detect::conservation::conservation_stats;
        use crate::detect::phase_transition::phase_transition_stats;
        use std::time::Instant;
        let n = 1_000_000;
        for m in [16, 64] {
            let mut rng = SplitMix64::new(5);
            let columns: Vec<Vec<f64>> = (0..m)
                .map(|_| (0..n).map(|_| rng.next_f64() * 100.0).collect())
                .collect();
            let views: Vec<&[f64]> = columns.iter().map(|c| c.as_slice()).collect();
            let time = |f: &dyn Fn()| {
                let mut best = f64::INFINITY;
                for _ in 0..3 {
                    let start = Instant::now();
                    f();
                    best = best.min(start.elapsed().as_secs_f64());
                }
                best * 1e3
            };
            let correlation = time(&|| {
                correlation_stats(&views, 0.7).unwrap();
            });
            let summaries = time(&|| {
                let _: Vec<ColumnSummary> = views.par_iter().map(|c| summarize(c)).collect();
            });
            println!("summaries {summaries:.1} ms");
            let phase = time(&|| {
                phase_transition_stats(&views, 0.5, &Budget::unlimited()).unwrap();
            });
            let conservation = time(&|| {
                conservation_stats(&views, 0.3, &Budget::unlimited()).unwrap();
            });
            let mut sparse = columns.clone();
            for column in sparse.iter_mut().step_by(3) {
                for value in column.iter_mut().step_by(7) {
                    *value = f64::NAN;
                }
            }
            let sparse_views: Vec<&[f64]> = sparse.iter().map(|c| c.as_slice()).collect();
            let correlation_sparse = time(&|| {
                correlation_stats(&sparse_views, 0.7).unwrap();
            });
            println!(
                "n={n} m={m}: correlation {correlation:.1} ms (with absent values \
                 {correlation_sparse:.1} ms), phase {phase:.1} ms, conservation \
                 {conservation:.1} ms, threads {}",
                rayon::current_num_threads()
            );
        }
    }
}
