//! Conservation laws across metrics (SPEC §6 "Conservation laws", kernels5.md
//! `conservation_laws`): linear combinations of 2..=max_terms metrics that stay constant
//! across the complete tasks, found robustly (trimmed C-steps from several starts) in the
//! near-null space of the standardized covariance.

use std::borrow::Cow;

use rayon::prelude::*;

use super::column_length;
use super::eigen::identifiable_smallest_eigenpair;
use super::permutation::permutation;
use super::ranks::median_in_place;
use crate::error::{CoreError, CoreResult};
use crate::rng::splitmix64_output;
use crate::stats::mean_and_sum_of_squares;

/// At most this many candidate metrics take part (the first ones).
pub const MAX_LAW_CANDIDATES: usize = 16;
/// Fewer complete tasks than this: no laws.
pub const MIN_LAW_TASKS: usize = 10;
/// Elemental starts per subset (besides the full-sample start).
pub const ELEMENTAL_STARTS: u64 = 6;
/// C-steps per start.
pub const C_STEPS: usize = 2;
/// Every term of a law has |w_k| at least this (unit vector in standardized units).
pub const MIN_TERM_WEIGHT: f64 = 1e-6;
/// Minimum variance (standardized units) of every term over a law's trimmed rows.
pub const MIN_TRIMMED_VARIANCE: f64 = 1e-3;
/// Subsets whose full-sample fit ends above this eigenvalue skip the elemental starts.
pub const SCREEN_EIGENVALUE: f64 = 0.05;
/// Largest denominator a coefficient snaps to.
pub const MAX_SNAP_DENOMINATOR: u32 = 12;
/// A coefficient snaps to p/q when within this distance.
pub const SNAP_DISTANCE: f64 = 1e-6;
/// Snapped coefficients are kept unless their trimmed residual std exceeds this factor of
/// the unsnapped one (plus 1e-12 × scale).
pub const SNAP_STD_FACTOR: f64 = 1.01;
/// A candidate in the span of accepted laws (relative residual below this) is implied.
pub const SPAN_RELATIVE: f64 = 1e-6;
/// Relative tolerance of the constant's snap to 0 and of a task's exact satisfaction.
pub const EXACT_RELATIVE: f64 = 1e-9;
/// Robust band of a law: this many normal-consistent MADs.
pub const BAND_MADS: f64 = 3.5;
/// The MAD's normal consistency factor.
pub const MAD_TO_SIGMA: f64 = 1.4826;
/// Share of complete tasks a reported law must satisfy.
pub const MIN_SUPPORT: f64 = 0.9;
/// Eigenvalues at or below this count as 0 when ordering candidates (exact laws, whose
/// eigenvalue is rounding noise, order lexicographically in both backends).
pub const ZERO_EIGENVALUE: f64 = 1e-12;

/// A conservation law `Σ_k coefficients[k] · metric[metrics[k]] = constant`.
#[derive(Debug, Clone, PartialEq)]
pub struct Law {
    /// Metric indices, ascending.
    pub metrics: Vec<usize>,
    /// Coefficients in the same order: the largest |c| is 1 and the first is positive.
    pub coefficients: Vec<f64>,
    /// The law's constant (metric units).
    pub constant: f64,
    /// Population std of the residual over the satisfying tasks.
    pub residual_std: f64,
    /// Per complete task: does it satisfy the law.
    pub satisfied: Vec<bool>,
    /// Task indices of the complete tasks (ascending), parallel to `satisfied`.
    pub tasks: Vec<i64>,
    /// Share of complete tasks satisfying the law.
    pub support: f64,
}

/// Conservation laws among the metrics (kernels5.md):
/// 1. Candidates: pool = metrics not `excluded`; complete₀ = tasks having every pool metric;
///    candidates = pool metrics with >= 2 distinct values over complete₀, the first 16;
///    complete tasks = tasks having every candidate (a superset of complete₀, so candidates
///    still vary there). Fewer than 2 candidates or 10 complete tasks → no laws.
/// 2. z = (x - mean) / std over the complete tasks (sequential mean, population two-pass
///    std); a candidate whose std is not finite and positive (underflow/overflow only) is
///    dropped.
/// 3. Sample S = all complete tasks if <= `sample_size`, else the first `sample_size`
///    positions of `permutation(seed, n_complete)`, ascending.
/// 4. Subsets of sizes 2..=max_terms (sizes ascending, lexicographic; `subset_rank` = 0-based
///    position in this enumeration over all sizes) are fitted by [`fit_subset`]; a subset is
///    a candidate law when λ <= `tolerance_eig` and every |w_k| >= 1e-6.
/// 5. Coefficients c_k = w_k / std_k, divided by max |c_k|, negated if the first is
///    negative, snapped ([`snap_coefficients`]).
/// 6. Candidates are taken by size, then λ (values <= 1e-12 count as 0), then subset rank; a
///    candidate whose standardized coefficient vector (c_k·std_k in the m-space) lies in the
///    span of the accepted laws (Gram–Schmidt residual < 1e-6 × its norm) is skipped; the
///    others are evaluated over all complete tasks ([`evaluate_law`]) and accepted (joining
///    the span) when support >= 0.9.
///
/// `excluded` has one flag per metric; `tolerance_eig` finite >= 0; `max_terms` >= 2;
/// `sample_size` >= 10. Subsets are fitted in parallel (each fit is seeded by its rank).
pub fn conservation_laws(
    columns: &[&[f64]],
    excluded: &[bool],
    tolerance_eig: f64,
    seed: u64,
    max_terms: usize,
    sample_size: usize,
) -> CoreResult<Vec<Law>> {
    let m = columns.len();
    if excluded.len() != m {
        return Err(CoreError::invalid(
            "excluded",
            format!(
                "excluded must have one flag per metric ({} != {m})",
                excluded.len()
            ),
        ));
    }
    if !(tolerance_eig.is_finite() && tolerance_eig >= 0.0) {
        return Err(CoreError::invalid(
            "tolerance_eig",
            format!("tolerance_eig must be finite and >= 0, got {tolerance_eig}"),
        ));
    }
    if max_terms < 2 {
        return Err(CoreError::invalid(
            "max_terms",
            format!("max_terms must be >= 2, got {max_terms}"),
        ));
    }
    if sample_size < MIN_LAW_TASKS {
        return Err(CoreError::invalid(
            "sample_size",
            format!("sample_size must be >= {MIN_LAW_TASKS}, got {sample_size}"),
        ));
    }
    let n = column_length(columns)?;

    // 1. Candidates and complete tasks.
    let pool: Vec<usize> = (0..m).filter(|&k| !excluded[k]).collect();
    let complete_pool: Vec<usize> = (0..n)
        .filter(|&task| pool.iter().all(|&k| !columns[k][task].is_nan()))
        .collect();
    let candidates: Vec<usize> = pool
        .iter()
        .copied()
        .filter(|&k| {
            let mut values = complete_pool.iter().map(|&task| columns[k][task]);
            match values.next() {
                Some(first) => values.any(|value| value != first),
                None => false,
            }
        })
        .take(MAX_LAW_CANDIDATES)
        .collect();
    if candidates.len() < 2 {
        return Ok(Vec::new());
    }
    let complete: Vec<usize> = (0..n)
        .filter(|&task| candidates.iter().all(|&k| !columns[k][task].is_nan()))
        .collect();
    let n_complete = complete.len();
    if n_complete < MIN_LAW_TASKS {
        return Ok(Vec::new());
    }

    // 2. Standardization.
    let mut metrics = Vec::with_capacity(candidates.len());
    for &k in &candidates {
        // Every task complete (the common case): read the column in place, no copy.
        let values: Cow<'_, [f64]> = if n_complete == n {
            Cow::Borrowed(columns[k])
        } else {
            Cow::Owned(complete.iter().map(|&task| columns[k][task]).collect())
        };
        let (mean, sum_of_squares) = mean_and_sum_of_squares(&values);
        let std = (sum_of_squares / n_complete as f64).sqrt();
        if std.is_finite() && std > 0.0 && mean.is_finite() {
            metrics.push(Standardized {
                metric: k,
                mean,
                std,
                values,
            });
        }
    }
    let count = metrics.len();
    if count < 2 {
        return Ok(Vec::new());
    }

    // 3. The sample, as a row-major |S| × count matrix of z-values.
    let sample: Vec<usize> = if n_complete <= sample_size {
        (0..n_complete).collect()
    } else {
        let mut chosen = permutation(seed, n_complete);
        chosen.truncate(sample_size);
        chosen.sort_unstable();
        chosen
    };
    let mut z_sample = Vec::with_capacity(sample.len() * count);
    for &position in &sample {
        for metric in &metrics {
            z_sample.push((metric.values[position] - metric.mean) / metric.std);
        }
    }
    let sample_z = SampleMatrix {
        rows: sample.len(),
        columns: count,
        covariance: covariance_all(&z_sample, sample.len(), count),
        values: z_sample,
    };

    // 4. Fit every subset.
    let mut subsets: Vec<Vec<usize>> = Vec::new();
    for size in 2..=max_terms.min(count) {
        push_combinations(count, size, &mut subsets);
    }
    let fitted: Vec<Option<CandidateLaw>> = subsets
        .par_iter()
        .enumerate()
        .map(|(rank, subset)| {
            let fit = fit_subset(&sample_z, subset, seed, rank as u64)?;
            // NaN eigenvalues or weights never make a law.
            let is_law = fit.lambda <= tolerance_eig
                && fit.weights.iter().all(|w| w.abs() >= MIN_TERM_WEIGHT)
                && terms_vary(&sample_z, subset, &fit.kept);
            if !is_law {
                return None;
            }
            let trimmed: Vec<usize> = fit.kept.iter().map(|&row| sample[row]).collect();
            let raw: Vec<f64> = subset
                .iter()
                .zip(&fit.weights)
                .map(|(&column, w)| w / metrics[column].std)
                .collect();
            let terms: Vec<&[f64]> = subset
                .iter()
                .map(|&column| &metrics[column].values[..])
                .collect();
            let coefficients = snap_coefficients(&normalize(&raw), &terms, &trimmed);
            Some(CandidateLaw {
                rank,
                size: subset.len(),
                lambda: fit.lambda,
                subset: subset.clone(),
                coefficients,
                trimmed,
            })
        })
        .collect();
    let mut candidates_found: Vec<CandidateLaw> = fitted.into_iter().flatten().collect();
    let order_key = |lambda: f64| {
        if lambda <= ZERO_EIGENVALUE {
            0.0
        } else {
            lambda
        }
    };
    candidates_found.sort_by(|a, b| {
        a.size
            .cmp(&b.size)
            .then(order_key(a.lambda).total_cmp(&order_key(b.lambda)))
            .then(a.rank.cmp(&b.rank))
    });

    // 6. Accept in order, skipping implied laws.
    let tasks: Vec<i64> = complete.iter().map(|&task| task as i64).collect();
    let mut basis: Vec<Vec<f64>> = Vec::new();
    let mut laws = Vec::new();
    for candidate in candidates_found {
        let mut vector = vec![0.0; m];
        for (&column, &c) in candidate.subset.iter().zip(&candidate.coefficients) {
            vector[metrics[column].metric] = c * metrics[column].std;
        }
        // A noisy law's supersets (the law plus a tiny multiple of an unrelated metric) sit
        // within about sqrt(λ) of its span: such candidates are implied too.
        let relative = SPAN_RELATIVE.max(candidate.lambda.max(0.0).sqrt());
        let Some(direction) = outside_span(&vector, &basis, relative) else {
            continue;
        };
        let terms: Vec<&[f64]> = candidate
            .subset
            .iter()
            .map(|&column| &metrics[column].values[..])
            .collect();
        let evaluation = evaluate_law(&terms, &candidate.coefficients, &candidate.trimmed);
        let supported = evaluation.support >= MIN_SUPPORT;
        if !supported {
            continue;
        }
        basis.push(direction);
        laws.push(Law {
            metrics: candidate
                .subset
                .iter()
                .map(|&column| metrics[column].metric)
                .collect(),
            coefficients: candidate.coefficients,
            constant: evaluation.constant,
            residual_std: evaluation.residual_std,
            satisfied: evaluation.satisfied,
            tasks: tasks.clone(),
            support: evaluation.support,
        });
    }
    Ok(laws)
}

/// A candidate metric over the complete tasks.
struct Standardized<'a> {
    metric: usize,
    mean: f64,
    std: f64,
    values: Cow<'a, [f64]>,
}

/// The sample's z-values, row-major, and their population covariance.
pub struct SampleMatrix {
    pub rows: usize,
    pub columns: usize,
    pub values: Vec<f64>,
    /// `columns` × `columns`, row-major, over all rows.
    pub covariance: Vec<f64>,
}

/// A fitted subset that passed the eigenvalue and term checks.
struct CandidateLaw {
    rank: usize,
    size: usize,
    lambda: f64,
    subset: Vec<usize>,
    coefficients: Vec<f64>,
    /// Final trimmed set: positions among the complete tasks, ascending.
    trimmed: Vec<usize>,
}

/// Appends the `size`-combinations of 0..count in lexicographic order.
fn push_combinations(count: usize, size: usize, out: &mut Vec<Vec<usize>>) {
    if size > count {
        return;
    }
    let mut current: Vec<usize> = (0..size).collect();
    loop {
        out.push(current.clone());
        // Advance the rightmost index that can still move.
        let Some(position) = (0..size).rev().find(|&p| current[p] < count - size + p) else {
            return;
        };
        current[position] += 1;
        for next in position + 1..size {
            current[next] = current[next - 1] + 1;
        }
    }
}

/// Every term of the subset varies over the trimmed rows: its population variance there (in
/// standardized units, two-pass, rows ascending) is at least [`MIN_TRIMMED_VARIANCE`]. A term
/// that is constant once a few extreme tasks are trimmed (a spike, a single gross outlier)
/// satisfies any "law" trivially, so such fits are not laws.
fn terms_vary(sample: &SampleMatrix, subset: &[usize], kept: &[usize]) -> bool {
    if kept.is_empty() {
        return false;
    }
    let count = kept.len() as f64;
    subset.iter().all(|&column| {
        let value = |row: usize| sample.values[row * sample.columns + column];
        let mean = kept.iter().map(|&row| value(row)).sum::<f64>() / count;
        let variance = kept
            .iter()
            .map(|&row| (value(row) - mean) * (value(row) - mean))
            .sum::<f64>()
            / count;
        variance >= MIN_TRIMMED_VARIANCE
    })
}

/// The robust fit of one subset.
#[derive(Debug, Clone, PartialEq)]
pub struct SubsetFit {
    /// Smallest eigenvalue of the covariance of the final trimmed rows.
    pub lambda: f64,
    /// Its unit eigenvector (standardized units, subset order).
    pub weights: Vec<f64>,
    /// The final trimmed rows (sample positions, ascending).
    pub kept: Vec<usize>,
}

/// Robust fit of the subset's columns of the sample (kernels5.md): starts = the full-sample
/// fit (smallest eigenvector of the covariance of all rows) and 6 elemental starts (start e:
/// the first `size` positions of `permutation(splitmix64_output(seed ^ subset_rank, e), |S|)`
/// → rows; w = smallest eigenvector of MᵀM, M = the (size-1) × size differences of their
/// z-rows to the last one, (MᵀM)_ab = Σ_k M_ka M_kb sequential over k); from each, 2
/// C-steps ([`c_step`]); the start with the smallest final eigenvalue wins (the first on
/// ties, full-sample start first). Covariances are population covariances (divided by the
/// row count) about the rows' means (sequential sums / count), entries Σ (z_a - m_a)(z_b - m_b)
/// accumulated over the rows in ascending order. None when the subset has fewer than 2 or
/// more than 16 columns, or the sample fewer rows than the subset has columns.
pub fn fit_subset(
    sample: &SampleMatrix,
    subset: &[usize],
    seed: u64,
    subset_rank: u64,
) -> Option<SubsetFit> {
    macro_rules! dispatch {
        ($($d:literal)*) => {
            match subset.len() {
                $($d => fit_fixed::<$d>(sample, subset, seed, subset_rank),)*
                _ => None,
            }
        };
    }
    dispatch!(2 3 4 5 6 7 8 9 10 11 12 13 14 15 16)
}

fn fit_fixed<const D: usize>(
    sample: &SampleMatrix,
    subset: &[usize],
    seed: u64,
    subset_rank: u64,
) -> Option<SubsetFit> {
    let rows = sample.rows;
    if rows < D {
        return None;
    }
    let z: Vec<[f64; D]> = (0..rows)
        .map(|row| {
            let base = row * sample.columns;
            std::array::from_fn(|a| sample.values[base + subset[a]])
        })
        .collect();
    let keep = (9 * rows).div_ceil(10);
    let mut scratch = CStepScratch::default();
    let run = |start: Vec<f64>, scratch: &mut CStepScratch| {
        let mut weights: [f64; D] = std::array::from_fn(|a| start[a]);
        let mut lambda = f64::NAN;
        for _ in 0..C_STEPS {
            (lambda, weights) = c_step(&z, &weights, keep, scratch);
            if lambda.is_infinite() {
                break; // an undetermined fit: this start is abandoned
            }
        }
        SubsetFit {
            lambda,
            weights: weights.to_vec(),
            kept: scratch.kept.clone(),
        }
    };
    // The full-sample start: the covariance of all rows is a submatrix of the sample's
    // covariance (same sums). An undetermined smallest eigenvector there means no law.
    let full: Vec<f64> = (0..D * D)
        .map(|cell| sample.covariance[subset[cell / D] * sample.columns + subset[cell % D]])
        .collect();
    let (_, full_start) = identifiable_smallest_eigenpair(&full, D)?;
    let mut best = run(full_start, &mut scratch);
    // Screen: a subset whose full-sample fit stays far from a law (λ > SCREEN_EIGENVALUE after
    // its C-steps) is not one; the elemental starts only rescue laws hidden by a few gross
    // violators, whose trimmed full-sample fit is already close.
    // (NaN and +inf fail the screen too.)
    if best.lambda.is_nan() || best.lambda > SCREEN_EIGENVALUE {
        return Some(best);
    }
    let stream = seed ^ subset_rank;
    for e in 0..ELEMENTAL_STARTS {
        let chosen = first_positions(splitmix64_output(stream, e), rows, D);
        let last = &z[chosen[D - 1]];
        let differences: Vec<[f64; D]> = chosen[..D - 1]
            .iter()
            .map(|&row| std::array::from_fn(|a| z[row][a] - last[a]))
            .collect();
        let mut gram = vec![0.0; D * D];
        for a in 0..D {
            for b in 0..D {
                let mut sum = 0.0;
                for difference in &differences {
                    sum += difference[a] * difference[b];
                }
                gram[a * D + b] = sum;
            }
        }
        // Starts whose smallest eigenvector is undetermined (identical elemental rows) are
        // skipped: any vector there would be arbitrary.
        let Some((_, start)) = identifiable_smallest_eigenpair(&gram, D) else {
            continue;
        };
        let fit = run(start, &mut scratch);
        if fit.lambda < best.lambda {
            best = fit;
        }
    }
    Some(best)
}

/// The first `count` positions of `permutation(seed, n)` (the `count` smallest (key, index)
/// pairs in order), without sorting all n keys.
pub fn first_positions(seed: u64, n: usize, count: usize) -> Vec<usize> {
    let mut smallest: Vec<(u64, usize)> = Vec::with_capacity(count + 1);
    if count == 0 {
        return Vec::new();
    }
    for index in 0..n {
        let key = splitmix64_output(seed, index as u64) >> 32;
        // Indices grow, so an equal key never displaces an earlier index (stable).
        if smallest.len() == count && key >= smallest[count - 1].0 {
            continue;
        }
        let at = smallest.partition_point(|&(k, _)| k <= key);
        smallest.insert(at, (key, index));
        smallest.truncate(count);
    }
    smallest.into_iter().map(|(_, index)| index).collect()
}

#[derive(Default)]
struct CStepScratch {
    residuals: Vec<f64>,
    /// Order keys (median selection), then distance bits.
    keys: Vec<u64>,
    distances: Vec<u64>,
    /// The kept rows, ascending.
    kept: Vec<usize>,
}

/// A u64 whose unsigned order is the total order of the floats (`f64::total_cmp`).
#[inline]
fn total_order_key(value: f64) -> u64 {
    let bits = value.to_bits();
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | (1 << 63)
    }
}

#[inline]
fn from_total_order_key(key: u64) -> f64 {
    f64::from_bits(if key >> 63 == 1 {
        key & !(1 << 63)
    } else {
        !key
    })
}

/// Residual distances within 1e-12 (standardized units) of each other tie when trimming (then
/// the earlier row wins): which of two rows with residuals 0 and 3e-16 is trimmed must not
/// depend on how an eigen solver rounds.
pub const TRIM_QUANTUM: f64 = 1e-12;

#[inline]
fn trim_key(distance: f64) -> f64 {
    (distance / TRIM_QUANTUM).floor()
}

/// One C-step: r = Z·w (sums over columns in order), keep the `keep` rows with the smallest
/// |r - median(r)| (ties by row position: the order of (distance, row)), then
/// (λ, w) = the smallest eigenpair of the covariance of the kept rows (ascending). The kept
/// rows (ascending) are left in `scratch.kept`. The median is the [`median_in_place`] value (selections
/// run on integer keys of the same total order).
fn c_step<const D: usize>(
    z: &[[f64; D]],
    weights: &[f64; D],
    keep: usize,
    scratch: &mut CStepScratch,
) -> (f64, [f64; D]) {
    let rows = z.len();
    scratch.residuals.clear();
    scratch.residuals.extend(z.iter().map(|row| {
        let mut sum = 0.0;
        for a in 0..D {
            sum += row[a] * weights[a];
        }
        sum
    }));
    // Median: the middle key, and for even counts the mean with the largest key below it.
    scratch.keys.clear();
    scratch
        .keys
        .extend(scratch.residuals.iter().map(|&r| total_order_key(r)));
    let middle = rows / 2;
    let (lower, &mut upper, _) = scratch.keys.select_nth_unstable(middle);
    let upper = from_total_order_key(upper);
    let center = if rows % 2 == 1 {
        upper
    } else {
        let below = lower
            .iter()
            .copied()
            .max()
            .map_or(f64::NAN, from_total_order_key);
        (below + upper) / 2.0
    };
    // Distances are >= +0 (or NaN), so their bit patterns order like the floats.
    scratch.distances.clear();
    scratch.distances.extend(
        scratch
            .residuals
            .iter()
            .map(|r| trim_key((r - center).abs()).to_bits()),
    );
    let keep = keep.clamp(1, rows);
    scratch.keys.clone_from(&scratch.distances);
    let (_, &mut threshold, _) = scratch.keys.select_nth_unstable(keep - 1);
    // Rows with distance < threshold, plus the first (keep - below) rows at the threshold.
    let (mut below, mut at) = (0usize, 0usize);
    for &d in &scratch.distances {
        below += usize::from(d < threshold);
        at += usize::from(d == threshold);
    }
    let ties_to_keep = keep - below;
    scratch.kept.clear();
    scratch.kept.resize(rows + 1, 0);
    let mut count = 0usize;
    if ties_to_keep == at {
        // Every tied row is kept (the usual case): branch-free.
        for (row, &d) in scratch.distances.iter().enumerate() {
            scratch.kept[count] = row;
            count += usize::from(d <= threshold);
        }
    } else {
        let mut ties_left = ties_to_keep;
        for (row, &d) in scratch.distances.iter().enumerate() {
            let take = d < threshold || (d == threshold && ties_left > 0);
            if d == threshold && take {
                ties_left -= 1;
            }
            scratch.kept[count] = row;
            count += usize::from(take);
        }
    }
    scratch.kept.truncate(count);
    let cov = covariance_kept(z, &scratch.kept);
    match identifiable_smallest_eigenpair(&cov, D) {
        Some((lambda, vector)) => (lambda, std::array::from_fn(|a| vector[a])),
        None => (f64::INFINITY, *weights),
    }
}

/// Population covariance (D × D, row-major) of the kept rows (ascending): column means =
/// sequential sums / count, entries Σ (z_a - m_a)(z_b - m_b) / count (a <= b computed,
/// mirrored), accumulated over the rows in order.
fn covariance_kept<const D: usize>(z: &[[f64; D]], kept: &[usize]) -> Vec<f64> {
    let count = kept.len();
    let mut means = [0.0; D];
    for &row in kept {
        for a in 0..D {
            means[a] += z[row][a];
        }
    }
    let count = count as f64;
    for mean in &mut means {
        *mean /= count;
    }
    let mut sums = [[0.0; D]; D];
    for &row in kept {
        let centered: [f64; D] = std::array::from_fn(|a| z[row][a] - means[a]);
        for a in 0..D {
            for b in a..D {
                sums[a][b] += centered[a] * centered[b];
            }
        }
    }
    let mut cov = vec![0.0; D * D];
    for a in 0..D {
        for b in a..D {
            let value = sums[a][b] / count;
            cov[a * D + b] = value;
            cov[b * D + a] = value;
        }
    }
    cov
}

/// Population covariance (row-major, `columns` × `columns`) of a row-major matrix, with the
/// same operation order as [`covariance_kept`] over all rows.
fn covariance_all(values: &[f64], rows: usize, columns: usize) -> Vec<f64> {
    let count = rows as f64;
    let mut means = vec![0.0; columns];
    for row in values.chunks_exact(columns) {
        for (mean, value) in means.iter_mut().zip(row) {
            *mean += value;
        }
    }
    for mean in &mut means {
        *mean /= count;
    }
    let mut sums = vec![0.0; columns * columns];
    let mut centered = vec![0.0; columns];
    for row in values.chunks_exact(columns) {
        for ((slot, value), mean) in centered.iter_mut().zip(row).zip(&means) {
            *slot = value - mean;
        }
        for a in 0..columns {
            for b in a..columns {
                sums[a * columns + b] += centered[a] * centered[b];
            }
        }
    }
    for a in 0..columns {
        for b in a..columns {
            let value = sums[a * columns + b] / count;
            sums[a * columns + b] = value;
            sums[b * columns + a] = value;
        }
    }
    sums
}

/// Divides by max |c| and negates when the first coefficient is negative.
fn normalize(raw: &[f64]) -> Vec<f64> {
    let largest = raw.iter().fold(0.0f64, |acc, c| acc.max(c.abs()));
    let sign = if raw.first().is_some_and(|&c| c < 0.0) {
        -1.0
    } else {
        1.0
    };
    raw.iter().map(|c| sign * (c / largest)).collect()
}

/// The nearest p/q (q = 1..=12, first q that fits) within 1e-6 of c, else c.
pub fn snap_coefficient(c: f64) -> f64 {
    for q in 1..=MAX_SNAP_DENOMINATOR {
        let q = f64::from(q);
        let p = (c * q).round();
        let fraction = p / q;
        if (c - fraction).abs() <= SNAP_DISTANCE {
            return fraction + 0.0; // no negative zero
        }
    }
    c
}

/// Snapped coefficients ([`snap_coefficient`]) unless snapping makes the population std of
/// the residual Σ_k c_k x_k over the trimmed tasks larger than 1.01 × the unsnapped one
/// + 1e-12 × scale, scale = median over the trimmed tasks of Σ_k |c_k x_k| (unsnapped c).
fn snap_coefficients(coefficients: &[f64], terms: &[&[f64]], trimmed: &[usize]) -> Vec<f64> {
    let snapped: Vec<f64> = coefficients.iter().map(|&c| snap_coefficient(c)).collect();
    if snapped == coefficients {
        return snapped;
    }
    let residual_std = |c: &[f64]| {
        let residuals: Vec<f64> = trimmed
            .iter()
            .map(|&task| residual_at(terms, c, task).0)
            .collect();
        let (_, sum_of_squares) = mean_and_sum_of_squares(&residuals);
        (sum_of_squares / residuals.len() as f64).sqrt()
    };
    let mut scales: Vec<f64> = trimmed
        .iter()
        .map(|&task| residual_at(terms, coefficients, task).1)
        .collect();
    let scale = median_in_place(&mut scales);
    let unsnapped_std = residual_std(coefficients);
    if residual_std(&snapped) > SNAP_STD_FACTOR * unsnapped_std + 1e-12 * scale {
        coefficients.to_vec()
    } else {
        snapped
    }
}

/// (Σ_k c_k x_k, Σ_k |c_k x_k|) at a task (position among the complete tasks), sums in
/// term order.
#[inline]
fn residual_at(terms: &[&[f64]], coefficients: &[f64], task: usize) -> (f64, f64) {
    let (mut sum, mut magnitude) = (0.0, 0.0);
    for (values, &c) in terms.iter().zip(coefficients) {
        let term = c * values[task];
        sum += term;
        magnitude += term.abs();
    }
    (sum, magnitude)
}

/// The part of `vector` orthogonal to the orthonormal `basis` (modified Gram–Schmidt, one
/// pass), normalized; None when its norm is below `relative` (1e-6) × the vector's norm (in
/// the span).
fn outside_span(vector: &[f64], basis: &[Vec<f64>], relative: f64) -> Option<Vec<f64>> {
    let norm = vector.iter().map(|v| v * v).sum::<f64>().sqrt();
    let mut residual = vector.to_vec();
    for direction in basis {
        let dot: f64 = residual.iter().zip(direction).map(|(a, b)| a * b).sum();
        for (slot, b) in residual.iter_mut().zip(direction) {
            *slot -= dot * b;
        }
    }
    let remaining = residual.iter().map(|v| v * v).sum::<f64>().sqrt();
    let independent = remaining >= relative * norm && remaining > 0.0;
    if !independent {
        return None;
    }
    Some(residual.iter().map(|v| v / remaining).collect())
}

/// A law checked against every complete task.
#[derive(Debug, Clone, PartialEq)]
pub struct LawEvaluation {
    pub constant: f64,
    pub satisfied: Vec<bool>,
    pub support: f64,
    pub residual_std: f64,
}

/// Over all complete tasks (kernels5.md): residual_i = Σ_k c_k x_ik; constant = median of
/// the residual over the trimmed tasks, snapped to 0 when |constant| <= 1e-9 × the median
/// over the trimmed tasks of Σ_k |c_k x_ik|; task i satisfies when |residual_i - constant|
/// <= max(1e-9 × Σ_k |c_k x_ik|, 3.5 × 1.4826 × MAD), MAD = median |r - median(r)| over all
/// complete tasks; support = satisfying share; residual_std = population std of the
/// residual over the satisfying tasks (NaN when none).
pub fn evaluate_law(terms: &[&[f64]], coefficients: &[f64], trimmed: &[usize]) -> LawEvaluation {
    let n = terms.first().map_or(0, |values| values.len());
    let (residuals, magnitudes): (Vec<f64>, Vec<f64>) = (0..n)
        .map(|task| residual_at(terms, coefficients, task))
        .unzip();
    let mut trimmed_residuals: Vec<f64> = trimmed.iter().map(|&task| residuals[task]).collect();
    let mut trimmed_magnitudes: Vec<f64> = trimmed.iter().map(|&task| magnitudes[task]).collect();
    let mut constant = median_in_place(&mut trimmed_residuals);
    if constant.abs() <= EXACT_RELATIVE * median_in_place(&mut trimmed_magnitudes) {
        constant = 0.0;
    }
    let mut scratch = residuals.clone();
    let center = median_in_place(&mut scratch);
    for (slot, r) in scratch.iter_mut().zip(&residuals) {
        *slot = (r - center).abs();
    }
    let mad = median_in_place(&mut scratch);
    let band = BAND_MADS * MAD_TO_SIGMA * mad;
    let satisfied: Vec<bool> = residuals
        .iter()
        .zip(&magnitudes)
        .map(|(r, magnitude)| (r - constant).abs() <= (EXACT_RELATIVE * magnitude).max(band))
        .collect();
    let holding: Vec<f64> = residuals
        .iter()
        .zip(&satisfied)
        .filter(|(_, &ok)| ok)
        .map(|(&r, _)| r)
        .collect();
    let residual_std = if holding.is_empty() {
        f64::NAN
    } else {
        let (_, sum_of_squares) = mean_and_sum_of_squares(&holding);
        (sum_of_squares / holding.len() as f64).sqrt()
    };
    LawEvaluation {
        constant,
        support: if n == 0 {
            0.0
        } else {
            holding.len() as f64 / n as f64
        },
        satisfied,
        residual_std,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::test_data::{normals, uniforms};
    use crate::rng::SplitMix64;

    #[test]
    fn first_positions_are_the_permutation_prefix() {
        for (seed, n, count) in [
            (1u64, 2000usize, 4usize),
            (9, 10, 10),
            (3, 300, 16),
            (4, 5, 2),
        ] {
            assert_eq!(
                first_positions(seed, n, count),
                permutation(seed, n)[..count]
            );
        }
        assert!(first_positions(1, 10, 0).is_empty());
    }

    #[test]
    fn order_keys_round_trip() {
        for value in [-1e300, -2.5, -0.0, 0.0, 5e-324, 1.0, f64::INFINITY] {
            assert_eq!(
                from_total_order_key(total_order_key(value)).to_bits(),
                value.to_bits()
            );
        }
        assert!(total_order_key(-0.0) < total_order_key(0.0));
        assert!(total_order_key(-3.0) < total_order_key(-2.0));
        // The C-step median equals median_in_place.
        let z: Vec<[f64; 1]> = normals(3, 101).into_iter().map(|v| [v]).collect();
        for rows in [100usize, 101] {
            let mut scratch = CStepScratch::default();
            let _ = c_step(&z[..rows], &[1.0], rows - 10, &mut scratch);
            let mut values: Vec<f64> = z[..rows].iter().map(|r| r[0]).collect();
            let center = median_in_place(&mut values);
            // The kept rows are the rows - 10 nearest to the median.
            let mut distances: Vec<(f64, usize)> = z[..rows]
                .iter()
                .enumerate()
                .map(|(i, r)| ((r[0] - center).abs(), i))
                .collect();
            distances.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            let mut expected: Vec<usize> = distances[..rows - 10].iter().map(|&(_, i)| i).collect();
            expected.sort_unstable();
            assert_eq!(scratch.kept, expected);
        }
    }

    #[test]
    fn covariances_agree_bitwise() {
        let values = normals(5, 3 * 50);
        let full = covariance_all(&values, 50, 3);
        let rows: Vec<[f64; 3]> = values.chunks_exact(3).map(|r| [r[0], r[1], r[2]]).collect();
        let all: Vec<usize> = (0..50).collect();
        assert_eq!(covariance_kept(&rows, &all), full);
        // Kept rows only.
        let kept: Vec<usize> = (0..50).filter(|i| i % 3 != 0).collect();
        let subset: Vec<f64> = kept.iter().flat_map(|&i| rows[i].to_vec()).collect();
        assert_eq!(
            covariance_kept(&rows, &kept),
            covariance_all(&subset, 33, 3)
        );
    }

    const SEED: u64 = 0x5EED_CAFE;

    fn laws(columns: &[&[f64]], excluded: &[bool]) -> Vec<Law> {
        conservation_laws(columns, excluded, 1e-4, SEED, 4, 2000).unwrap()
    }

    #[test]
    fn combinations_in_lexicographic_order() {
        let mut out = Vec::new();
        push_combinations(4, 2, &mut out);
        assert_eq!(
            out,
            vec![
                vec![0, 1],
                vec![0, 2],
                vec![0, 3],
                vec![1, 2],
                vec![1, 3],
                vec![2, 3]
            ]
        );
        out.clear();
        push_combinations(5, 3, &mut out);
        assert_eq!(out.len(), 10);
        assert_eq!(out[9], vec![2, 3, 4]);
        out.clear();
        push_combinations(2, 3, &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn snapping() {
        assert_eq!(snap_coefficient(-0.9999999999), -1.0);
        assert_eq!(snap_coefficient(0.3333334), 1.0 / 3.0);
        assert_eq!(snap_coefficient(-0.4166666), -5.0 / 12.0);
        assert_eq!(snap_coefficient(0.5000002), 0.5);
        assert_eq!(snap_coefficient(0.123456), 0.123456);
        assert_eq!(snap_coefficient(-1e-7).to_bits(), 0.0f64.to_bits());
        assert_eq!(normalize(&[-2.0, 4.0, 1.0]), vec![0.5, -1.0, -0.25]);
    }

    #[test]
    fn records_balance_survives_gross_violators() {
        let n = 1000;
        let mut rng = SplitMix64::new(9);
        let records_in: Vec<f64> = (0..n).map(|_| (100 + rng.next_below(900)) as f64).collect();
        let dropped: Vec<f64> = (0..n).map(|_| rng.next_below(20) as f64).collect();
        let mut records_out: Vec<f64> = records_in
            .iter()
            .zip(&dropped)
            .map(|(i, d)| i - d)
            .collect();
        let mut violators = Vec::new();
        for (task, value) in records_out.iter_mut().enumerate() {
            if rng.next_below(20) == 0 {
                *value += (50 + rng.next_below(400)) as f64;
                violators.push(task);
            }
        }
        assert!(violators.len() > 30 && violators.len() < 70);
        let noise = normals(3, n);
        let found = laws(&[&records_in, &noise, &records_out, &dropped], &[false; 4]);
        assert_eq!(found.len(), 1, "{found:?}");
        let law = &found[0];
        assert_eq!(law.metrics, vec![0, 2, 3]);
        assert_eq!(law.coefficients, vec![1.0, -1.0, -1.0]);
        assert_eq!(law.constant, 0.0);
        assert_eq!(law.tasks, (0..n as i64).collect::<Vec<_>>());
        for task in 0..n {
            assert_eq!(
                law.satisfied[task],
                !violators.contains(&task),
                "task {task}"
            );
        }
        assert_eq!(law.support, (n - violators.len()) as f64 / n as f64);
        assert_eq!(law.residual_std, 0.0);
    }

    #[test]
    fn non_zero_constant() {
        let a = uniforms(4, 300, 0.0, 100.0);
        let b: Vec<f64> = a.iter().map(|v| 100.0 - v).collect();
        let c = normals(5, 300);
        let found = laws(&[&a, &b, &c], &[false; 3]);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].metrics, vec![0, 1]);
        assert_eq!(found[0].coefficients, vec![1.0, 1.0]);
        assert!((found[0].constant - 100.0).abs() < 1e-9, "{found:?}");
        assert_eq!(found[0].support, 1.0);
        assert!(found[0].residual_std < 1e-12);
    }

    #[test]
    fn implied_laws_are_reported_once() {
        // a - b = 0 and b - c = 0 imply a - c = 0.
        let a = uniforms(6, 200, 0.0, 10.0);
        let b = a.clone();
        let c = a.clone();
        let d = normals(7, 200);
        let found = laws(&[&a, &b, &c, &d], &[false; 4]);
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!(found[0].metrics, vec![0, 1]);
        assert_eq!(found[1].metrics, vec![0, 2]);
        for law in &found {
            assert_eq!(law.coefficients, vec![1.0, -1.0]);
            assert_eq!(law.constant, 0.0);
        }
    }

    #[test]
    fn scaled_copies_are_reported_once() {
        let x = normals(8, 300);
        let y: Vec<f64> = x.iter().map(|v| 2.0 * v + 1.0).collect();
        let z = normals(9, 300);
        let w: Vec<f64> = x.iter().map(|v| -3.0 * v).collect();
        let found = laws(&[&x, &y, &z], &[false; 3]);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].metrics, vec![0, 1]);
        assert_eq!(found[0].coefficients, vec![1.0, -0.5]);
        assert!((found[0].constant + 0.5).abs() < 1e-12, "{found:?}");
        // A second copy: x-y and x-w are laws, y-w (implied) is not reported.
        let found = laws(&[&x, &y, &z, &w], &[false; 4]);
        let subsets: Vec<Vec<usize>> = found.iter().map(|l| l.metrics.clone()).collect();
        assert_eq!(subsets, vec![vec![0, 1], vec![0, 3]], "{found:?}");
        assert_eq!(found[1].coefficients, vec![1.0, 1.0 / 3.0]);
    }

    #[test]
    fn excluded_counters_take_no_part() {
        let counter: Vec<f64> = (0..100).map(f64::from).collect();
        let doubled: Vec<f64> = counter.iter().map(|v| 2.0 * v).collect();
        let noise = normals(10, 100);
        assert_eq!(laws(&[&counter, &doubled, &noise], &[false; 3]).len(), 1);
        assert!(laws(&[&counter, &doubled, &noise], &[true, false, false]).is_empty());
    }

    #[test]
    fn iid_noise_has_no_laws() {
        let columns: Vec<Vec<f64>> = (0..6).map(|k| normals(100 + k, 500)).collect();
        let views: Vec<&[f64]> = columns.iter().map(|c| &c[..]).collect();
        assert!(laws(&views, &[false; 6]).is_empty());
    }

    #[test]
    fn sparse_and_degenerate_inputs() {
        let nan = f64::NAN;
        assert!(laws(&[], &[]).is_empty());
        assert!(laws(&[&[]], &[false]).is_empty());
        let a: Vec<f64> = (0..30).map(f64::from).collect();
        let b: Vec<f64> = a.iter().map(|v| v + 1.0).collect();
        let constant = [5.0; 30];
        let absent = [nan; 30];
        // A constant metric is no candidate; the law a - b = -1 is found.
        let found = laws(&[&a, &constant, &b], &[false; 3]);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].constant, -1.0);
        // An absent metric leaves no complete task.
        assert!(laws(&[&a, &absent, &b], &[false; 3]).is_empty());
        // Fewer than 10 complete tasks.
        assert!(laws(&[&a[..9], &b[..9]], &[false; 2]).is_empty());
        // Missing values: the complete tasks are the ones having both.
        let mut b_sparse = b.clone();
        b_sparse[3] = nan;
        let found = laws(&[&a, &b_sparse], &[false; 2]);
        assert_eq!(found[0].tasks.len(), 29);
        assert!(!found[0].tasks.contains(&3));
    }

    #[test]
    fn sampling_larger_data() {
        // 5000 complete tasks, sample of 500: the law is still exact.
        let a = uniforms(11, 5000, 0.0, 1.0);
        let b = uniforms(12, 5000, 0.0, 1.0);
        let c: Vec<f64> = a
            .iter()
            .zip(&b)
            .map(|(x, y)| 2.0 * x - y / 3.0 + 7.0)
            .collect();
        let found = conservation_laws(&[&a, &b, &c], &[false; 3], 1e-4, SEED, 3, 500).unwrap();
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].coefficients, vec![1.0, -1.0 / 6.0, -0.5]);
        assert!((found[0].constant + 3.5).abs() < 1e-9, "{found:?}");
    }

    #[test]
    fn argument_errors_name_the_argument() {
        let a = [1.0, 2.0];
        let cases: [(&[bool], f64, usize, usize, &str); 5] = [
            (&[false, false], 1e-4, 4, 2000, "excluded"),
            (&[false], -1.0, 4, 2000, "tolerance_eig"),
            (&[false], f64::NAN, 4, 2000, "tolerance_eig"),
            (&[false], 1e-4, 1, 2000, "max_terms"),
            (&[false], 1e-4, 4, 9, "sample_size"),
        ];
        for (excluded, tolerance, terms, sample, name) in cases {
            let error =
                conservation_laws(&[&a], excluded, tolerance, 0, terms, sample).unwrap_err();
            assert!(error.to_string().starts_with(name), "{error}");
        }
    }
}
