//! Conservation laws across metrics (SPEC §6 "Conservation laws"): linear combinations of
//! 2..=max_terms metrics that stay constant across the complete tasks, found robustly
//! (trimmed C-steps from several starts, [`fit`]) in the near-null space of the
//! standardized covariance, then normalized, snapped and checked against every task
//! ([`evaluate`]).

mod evaluate;
mod fit;

use std::borrow::Cow;
use std::sync::{Mutex, PoisonError};

use rayon::prelude::*;

pub use evaluate::{evaluate_law, snap_coefficient, LawEvaluation};
pub use fit::{first_positions, fit_subset, SampleMatrix, SubsetFit, TRIM_QUANTUM};

use super::roles::is_counter_column;
use super::shared::columns::column_length_and_gaps;
use super::shared::permutation::SEED;
use super::{Detector, Table};
use crate::args::{Budget, DefaultValue, ParamSpec, Params};
use crate::error::CoreResult;
use crate::stats::mean_and_sum_of_squares;
use evaluate::{normalize, outside_span, snap_coefficients};
use fit::covariance_all;

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
    /// The distance from the constant the law allows a task (3.5 normal-consistent MADs of
    /// the sample's residuals; a task also holds within 1e-9 of its terms' magnitude).
    pub band: f64,
    /// Per complete task: does it satisfy the law.
    pub satisfied: Vec<bool>,
    /// Task indices of the complete tasks (ascending), parallel to `satisfied`.
    pub tasks: Vec<i64>,
    /// Share of complete tasks satisfying the law.
    pub support: f64,
}

/// The registry entry.
pub const DETECTOR: Detector = Detector {
    name: "conservation_laws",
    kind: "conservation law",
    fields: FIELDS,
    params: &[
        ParamSpec {
            name: "tolerance_eig",
            default: DefaultValue::Float(1e-4),
        },
        SEED,
        ParamSpec {
            name: "max_terms",
            default: DefaultValue::Int(4),
        },
        ParamSpec {
            name: "sample_size",
            default: DefaultValue::Int(2000),
        },
    ],
    run,
};

/// The result fields. Per law: `constant`, `residual_std`, `support`, `band`; per term of every law
/// (laws in order, terms in metric order): `term_law` (the law's index), `term_metric`,
/// `term_coefficient`; per complete task: `tasks` (task indices, ascending); per law and
/// complete task (law-major): `satisfied`.
pub const FIELDS: &[&str] = &[
    "constant",
    "residual_std",
    "support",
    "band",
    "term_law",
    "term_metric",
    "term_coefficient",
    "tasks",
    "satisfied",
];

fn run(columns: &[&[f64]], params: &Params, budget: &Budget) -> CoreResult<Table> {
    let settings = LawSettings {
        tolerance_eig: params.finite("tolerance_eig", 0.0, true)?,
        seed: params.seed("seed")?,
        max_terms: params.integer("max_terms", 2, MAX_TERMS as i128)? as usize,
        sample_size: params.count("sample_size", MIN_LAW_TASKS)?,
    };
    let laws = conservation_laws(columns, &settings, budget)?;
    Ok(laws_table(&laws))
}

/// The laws as a table of [`FIELDS`].
pub fn laws_table(laws: &[Law]) -> Table {
    let mut term_law = Vec::new();
    let mut term_metric = Vec::new();
    let mut term_coefficient = Vec::new();
    let mut satisfied = Vec::new();
    for (index, law) in laws.iter().enumerate() {
        for (&metric, &coefficient) in law.metrics.iter().zip(&law.coefficients) {
            term_law.push(index as i64);
            term_metric.push(metric as i64);
            term_coefficient.push(coefficient);
        }
        satisfied.extend_from_slice(&law.satisfied);
    }
    let tasks = laws.first().map_or_else(Vec::new, |law| law.tasks.clone());
    Table::new()
        .with(
            "constant",
            laws.iter().map(|law| law.constant).collect::<Vec<_>>(),
        )
        .with(
            "residual_std",
            laws.iter().map(|law| law.residual_std).collect::<Vec<_>>(),
        )
        .with(
            "support",
            laws.iter().map(|law| law.support).collect::<Vec<_>>(),
        )
        .with("band", laws.iter().map(|law| law.band).collect::<Vec<_>>())
        .with("term_law", term_law)
        .with("term_metric", term_metric)
        .with("term_coefficient", term_coefficient)
        .with("tasks", tasks)
        .with("satisfied", satisfied)
}

/// The parameters of [`conservation_laws`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LawSettings {
    /// A subset is a law when its fit's smallest eigenvalue is at most this (finite, >= 0).
    pub tolerance_eig: f64,
    pub seed: u64,
    /// Laws have 2..=max_terms terms (max_terms in 2..=8).
    pub max_terms: usize,
    /// Subsets are fitted on a sample of at most this many complete tasks (>= 10).
    pub sample_size: usize,
}

/// The largest law the detector looks for.
pub const MAX_TERMS: usize = 8;
const STAGE: &str = "conservation_laws";

/// Conservation laws among the metrics:
/// 1. Candidates ([`candidates`]): pool = metrics that are not counters
///    ([`is_counter`]); complete₀ = tasks having every pool metric; candidates = pool
///    metrics with >= 2 distinct values over complete₀, the first 16; complete tasks =
///    tasks having every candidate (a superset of complete₀, so candidates still vary
///    there). Fewer than 2 candidates or 10 complete tasks → no laws.
/// 2. Sample S = all complete tasks if <= `sample_size`, else the first `sample_size`
///    positions of `permutation(seed, p)`, ascending ([`sample_positions`]), over the first
///    p = [`law_sample_prefix`] complete tasks (more than 7/8 of them). The key of position
///    i depends on (seed, i) only, so S is a bottom-k sample of that prefix: appending tasks
///    changes it only when p moves, once per 2^(⌊log₂ n⌋ − 3) tasks. A law needs 90% support
///    over every complete task, so one absent from the prefix is never one.
/// 3. z = (x - mean) / std with the sample's mean and std (sequential mean, population
///    two-pass std over S in ascending order); a candidate whose std is not finite and
///    positive (constant over S) is dropped ([`standardize`]). Steps 2–5 read S only, so
///    their result is a function of S's values ([`fitted`] reuses it when S recurs).
/// 4. Subsets of sizes 2..=max_terms (sizes ascending, lexicographic; `subset_rank` = 0-based
///    position in this enumeration over all sizes) are fitted by [`fit_subset`]; a subset is
///    a candidate law when λ <= `tolerance_eig`, every |w_k| >= 1e-6 and every term varies
///    over the trimmed rows ([`fit_candidates`]).
/// 5. Coefficients c_k = w_k / std_k, divided by max |c_k|, negated if the first is
///    negative, snapped ([`snap_coefficients`]).
/// 6. Candidates are taken by size, then λ (values <= 1e-12 count as 0), then subset rank; a
///    candidate whose standardized coefficient vector (c_k·std_k in the m-space) lies in the
///    span of the accepted laws (Gram–Schmidt residual < max(1e-6, √λ) × its norm) is
///    skipped; the others are evaluated over all complete tasks with the band S's residuals
///    allow ([`evaluate_law`]) and accepted (joining the span) when support >= 0.9
///    ([`accept`]).
///
/// Subsets are fitted in parallel (each fit is seeded by its rank).
pub fn conservation_laws(
    columns: &[&[f64]],
    settings: &LawSettings,
    budget: &Budget,
) -> CoreResult<Vec<Law>> {
    let (n, gaps) = column_length_and_gaps(columns)?;
    let Some((candidates, complete)) = candidates(columns, &gaps, n) else {
        return Ok(Vec::new());
    };
    let sample = sample_positions(complete.len(), settings);
    let metrics = standardize(columns, &candidates, &complete, &sample);
    if metrics.len() < 2 {
        return Ok(Vec::new());
    }
    budget.check(STAGE)?;
    let found = fitted(&metrics, &sample, settings, budget)?;
    Ok(accept(columns.len(), &metrics, &complete, &sample, found))
}

/// The candidate metrics and the complete tasks (step 1), or None when there are fewer
/// than 2 candidates or 10 complete tasks.
fn candidates(columns: &[&[f64]], gaps: &[bool], n: usize) -> Option<(Vec<usize>, Vec<usize>)> {
    let pool: Vec<usize> = (0..columns.len())
        .filter(|&k| !is_counter_column(columns[k]))
        .collect();
    let complete_pool = complete_tasks(columns, gaps, &pool, n);
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
        return None;
    }
    // The candidates' complete tasks are the pool's when they keep every column with gaps.
    let gappy = |metrics: &[usize]| metrics.iter().filter(|&&k| gaps[k]).count();
    let complete = if gappy(&candidates) == gappy(&pool) {
        complete_pool
    } else {
        complete_tasks(columns, gaps, &candidates, n)
    };
    (complete.len() >= MIN_LAW_TASKS).then_some((candidates, complete))
}

/// The tasks (ascending) that have every metric of `metrics`, column by column; `gaps[k]`:
/// does column k hold an absent value.
fn complete_tasks(columns: &[&[f64]], gaps: &[bool], metrics: &[usize], n: usize) -> Vec<usize> {
    let gappy: Vec<&[f64]> = metrics
        .iter()
        .filter(|&&k| gaps[k])
        .map(|&k| columns[k])
        .collect();
    match gappy[..] {
        [] => (0..n).collect(),
        [column] => (0..n).filter(|&task| !column[task].is_nan()).collect(),
        _ => {
            let mut present = vec![true; n];
            for column in &gappy {
                for (slot, value) in present.iter_mut().zip(column.iter()) {
                    *slot &= !value.is_nan();
                }
            }
            (0..n).filter(|&task| present[task]).collect()
        }
    }
}

/// The complete tasks the sample is drawn from when there are more than `sample_size`: the
/// first `max(sample_size, ⌊n/q⌋·q)` of the `n`, with the quantum q = 2^(⌊log₂ n⌋ − 3).
/// They hold more than 7/8 of the complete tasks, and the count moves once per q new tasks
/// (once per 65,536 at a million), so a kiln cooled again after `Kiln.extend` keeps its
/// sample, and its fits, between those steps.
fn law_sample_prefix(n_complete: usize, sample_size: usize) -> usize {
    if n_complete <= sample_size {
        return n_complete;
    }
    let quantum = 1usize << (n_complete.ilog2().saturating_sub(3));
    (n_complete / quantum * quantum).max(sample_size)
}

/// The sampled positions among the complete tasks, ascending (step 2).
fn sample_positions(n_complete: usize, settings: &LawSettings) -> Vec<usize> {
    if n_complete <= settings.sample_size {
        return (0..n_complete).collect();
    }
    let eligible = law_sample_prefix(n_complete, settings.sample_size);
    let mut chosen = first_positions(settings.seed, eligible, settings.sample_size);
    chosen.sort_unstable();
    chosen
}

/// The candidates over the complete tasks with the sample's means and stds (step 3).
fn standardize<'a>(
    columns: &[&'a [f64]],
    candidates: &[usize],
    complete: &'a [usize],
    sample: &[usize],
) -> Vec<Standardized<'a>> {
    let every_task = columns.first().is_some_and(|c| c.len() == complete.len());
    let mut metrics = Vec::with_capacity(candidates.len());
    for &k in candidates {
        let mut metric = Standardized {
            metric: k,
            mean: f64::NAN,
            std: f64::NAN,
            column: columns[k],
            complete: (!every_task).then_some(complete),
        };
        let sampled: Vec<f64> = sample.iter().map(|&position| metric.at(position)).collect();
        let (mean, sum_of_squares) = mean_and_sum_of_squares(&sampled);
        let std = (sum_of_squares / sampled.len() as f64).sqrt();
        if std.is_finite() && std > 0.0 && mean.is_finite() {
            (metric.mean, metric.std) = (mean, std);
            metrics.push(metric);
        }
    }
    metrics
}

/// The sample's z-values and their covariance.
fn sample_matrix(metrics: &[Standardized<'_>], sample: &[usize]) -> SampleMatrix {
    let count = metrics.len();
    let mut z_sample = Vec::with_capacity(sample.len() * count);
    for &position in sample {
        for metric in metrics {
            z_sample.push((metric.at(position) - metric.mean) / metric.std);
        }
    }
    SampleMatrix {
        rows: sample.len(),
        columns: count,
        covariance: covariance_all(&z_sample, sample.len(), count),
        values: z_sample,
    }
}

/// Samples of at most this many values (rows × candidates) have their fits kept.
const MEMO_VALUES: usize = 1 << 20;
/// The fits of this many samples are kept (the most recent).
const MEMO_ENTRIES: usize = 4;

/// What steps 3–5 read: the settings, the candidates, the sampled positions and their
/// values (bits, row-major).
#[derive(PartialEq)]
struct FitKey {
    settings: [u64; 4],
    metrics: Vec<usize>,
    sample: Vec<usize>,
    values: Vec<u64>,
}

type FitMemo = Vec<(FitKey, Vec<CandidateLaw>)>;

/// The latest fits: a cooled kiln that records more tasks (`Kiln.extend`) is cooled again
/// with the same sample until the sample's prefix ([`law_sample_prefix`]) moves.
static FITS: Mutex<FitMemo> = Mutex::new(Vec::new());

/// Forgets the kept fits (benchmarks that time a fit, tests that compare with a new one).
pub fn forget_fits() {
    FITS.lock().unwrap_or_else(PoisonError::into_inner).clear();
}

/// Steps 3–5 ([`sample_matrix`], [`fit_candidates`]); the result for a sample seen among
/// the latest ones is taken from there (it is a function of the key alone).
fn fitted(
    metrics: &[Standardized<'_>],
    sample: &[usize],
    settings: &LawSettings,
    budget: &Budget,
) -> CoreResult<Vec<CandidateLaw>> {
    let key = (sample.len() * metrics.len() <= MEMO_VALUES).then(|| FitKey {
        settings: [
            settings.tolerance_eig.to_bits(),
            settings.seed,
            settings.max_terms as u64,
            settings.sample_size as u64,
        ],
        metrics: metrics.iter().map(|metric| metric.metric).collect(),
        sample: sample.to_vec(),
        values: sample
            .iter()
            .flat_map(|&position| metrics.iter().map(move |m| m.at(position).to_bits()))
            .collect(),
    });
    let memo = || FITS.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(key) = &key {
        if let Some((_, found)) = memo().iter().find(|(seen, _)| seen == key) {
            return Ok(found.clone());
        }
    }
    let sample_z = sample_matrix(metrics, sample);
    let found = fit_candidates(metrics, sample, &sample_z, settings, budget)?;
    if let Some(key) = key {
        let mut fits = memo();
        if fits.len() >= MEMO_ENTRIES {
            fits.remove(0);
        }
        fits.push((key, found.clone()));
    }
    Ok(found)
}

/// Fit every subset (step 4) and turn the fits that are laws into candidate laws with
/// their coefficients (step 5), ordered as step 6 takes them.
fn fit_candidates(
    metrics: &[Standardized<'_>],
    sample: &[usize],
    sample_z: &SampleMatrix,
    settings: &LawSettings,
    budget: &Budget,
) -> CoreResult<Vec<CandidateLaw>> {
    let mut subsets: Vec<Vec<usize>> = Vec::new();
    for size in 2..=settings.max_terms.min(metrics.len()) {
        push_combinations(metrics.len(), size, &mut subsets);
    }
    let fitted: Vec<Option<CandidateLaw>> = subsets
        .par_iter()
        .enumerate()
        .map(|(rank, subset)| {
            budget.check(STAGE)?;
            Ok(candidate_law(
                metrics, sample, sample_z, settings, rank, subset,
            ))
        })
        .collect::<CoreResult<_>>()?;
    let mut found: Vec<CandidateLaw> = fitted.into_iter().flatten().collect();
    let order_key = |lambda: f64| {
        if lambda <= ZERO_EIGENVALUE {
            0.0
        } else {
            lambda
        }
    };
    found.sort_by(|a, b| {
        a.size
            .cmp(&b.size)
            .then(order_key(a.lambda).total_cmp(&order_key(b.lambda)))
            .then(a.rank.cmp(&b.rank))
    });
    Ok(found)
}

/// The candidate law of one subset, when its fit is a law.
fn candidate_law(
    metrics: &[Standardized<'_>],
    sample: &[usize],
    sample_z: &SampleMatrix,
    settings: &LawSettings,
    rank: usize,
    subset: &[usize],
) -> Option<CandidateLaw> {
    let fit = fit_subset(sample_z, subset, settings.seed, rank as u64)?;
    // NaN eigenvalues or weights never make a law.
    let is_law = fit.lambda <= settings.tolerance_eig
        && fit.weights.iter().all(|w| w.abs() >= MIN_TERM_WEIGHT)
        && terms_vary(sample_z, subset, &fit.kept);
    if !is_law {
        return None;
    }
    let trimmed: Vec<usize> = fit.kept.iter().map(|&row| sample[row]).collect();
    let raw: Vec<f64> = subset
        .iter()
        .zip(&fit.weights)
        .map(|(&column, w)| w / metrics[column].std)
        .collect();
    // The terms' whole columns, read at the trimmed tasks.
    let terms: Vec<&[f64]> = subset
        .iter()
        .map(|&column| metrics[column].column)
        .collect();
    let trimmed_tasks: Vec<usize> = trimmed
        .iter()
        .map(|&position| metrics[subset[0]].task(position))
        .collect();
    let coefficients = snap_coefficients(&normalize(&raw), &terms, &trimmed_tasks);
    Some(CandidateLaw {
        rank,
        size: subset.len(),
        lambda: fit.lambda,
        subset: subset.to_vec(),
        coefficients,
        trimmed,
    })
}

/// Accept the candidates in order, skipping implied laws (step 6).
fn accept(
    m: usize,
    metrics: &[Standardized<'_>],
    complete: &[usize],
    sample: &[usize],
    found: Vec<CandidateLaw>,
) -> Vec<Law> {
    let tasks: Vec<i64> = complete.iter().map(|&task| task as i64).collect();
    let mut basis: Vec<Vec<f64>> = Vec::new();
    let mut laws = Vec::new();
    // The metrics of each exact law accepted so far. Exact fits (eigenvalue at most
    // ZERO_EIGENVALUE) are taken first, each group in its order, so that an exact law is
    // known before the approximate laws among fewer of its metrics.
    let mut exact_sets: Vec<Vec<usize>> = Vec::new();
    let mut found = found;
    found.sort_by_key(|candidate| candidate.lambda > ZERO_EIGENVALUE);
    for candidate in found {
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
        let over_complete: Vec<Cow<'_, [f64]>> = candidate
            .subset
            .iter()
            .map(|&column| metrics[column].over_complete())
            .collect();
        let terms: Vec<&[f64]> = over_complete.iter().map(|values| &values[..]).collect();
        let evaluation = evaluate_law(&terms, &candidate.coefficients, &candidate.trimmed, sample);
        if evaluation.support < MIN_SUPPORT {
            continue;
        }
        let law_metrics: Vec<usize> = candidate
            .subset
            .iter()
            .map(|&column| metrics[column].metric)
            .collect();
        // A law left out is still known: its noisy supersets are implied by it.
        basis.push(direction);
        if !evaluation.exact && within_exact_law(&law_metrics, &exact_sets) {
            continue;
        }
        if evaluation.exact {
            exact_sets.push(law_metrics.clone());
        }
        laws.push(Law {
            metrics: law_metrics,
            coefficients: candidate.coefficients,
            constant: evaluation.constant,
            residual_std: evaluation.residual_std,
            band: evaluation.band,
            satisfied: evaluation.satisfied,
            tasks: tasks.clone(),
            support: evaluation.support,
        });
    }
    laws
}

/// Whether `law` (metric indices) is a strict subset of the metrics of an exact law in
/// `exact_sets`. With the exact law, an approximate law among fewer of its metrics is an
/// approximate relation between its other terms and these, not a second conservation law
/// (a pipeline's `0.997·records_in - records_out = 1.1` beside the exact
/// `records_in - records_out - dropped = 0` says drops are about 0.3% of the input, and the
/// largest batches were its "violators": the drop count's spread grows with the batch).
/// Such a law is left out, and its noisy supersets with it (it joins the span).
fn within_exact_law(law: &[usize], exact_sets: &[Vec<usize>]) -> bool {
    exact_sets
        .iter()
        .any(|set| law.len() < set.len() && law.iter().all(|metric| set.contains(metric)))
}

/// A candidate metric over the complete tasks.
struct Standardized<'a> {
    metric: usize,
    mean: f64,
    std: f64,
    /// The metric's column (every task).
    column: &'a [f64],
    /// The complete tasks (None: every task is complete).
    complete: Option<&'a [usize]>,
}

impl Standardized<'_> {
    /// The task at a position among the complete tasks.
    #[inline]
    fn task(&self, position: usize) -> usize {
        self.complete
            .map_or(position, |complete| complete[position])
    }

    /// The value at a position among the complete tasks.
    #[inline]
    fn at(&self, position: usize) -> f64 {
        self.column[self.task(position)]
    }

    /// The values over the complete tasks (the column itself when every task is complete).
    fn over_complete(&self) -> Cow<'_, [f64]> {
        match self.complete {
            None => Cow::Borrowed(self.column),
            Some(complete) => Cow::Owned(complete.iter().map(|&task| self.column[task]).collect()),
        }
    }
}

/// A fitted subset that passed the eigenvalue and term checks.
#[derive(Clone)]
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::shared::test_data::{normals, uniforms};
    use crate::rng::SplitMix64;

    const SEED: u64 = 0x5EED_CAFE;

    fn settings(max_terms: usize, sample_size: usize) -> LawSettings {
        LawSettings {
            tolerance_eig: 1e-4,
            seed: SEED,
            max_terms,
            sample_size,
        }
    }

    fn conservation_laws(columns: &[&[f64]], settings: &LawSettings) -> CoreResult<Vec<Law>> {
        super::conservation_laws(columns, settings, &Budget::unlimited())
    }

    fn laws(columns: &[&[f64]]) -> Vec<Law> {
        conservation_laws(columns, &settings(4, 2000)).unwrap()
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
        let found = laws(&[&records_in, &noise, &records_out, &dropped]);
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
        let found = laws(&[&a, &b, &c]);
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
        let found = laws(&[&a, &b, &c, &d]);
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
        let found = laws(&[&x, &y, &z]);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].metrics, vec![0, 1]);
        assert_eq!(found[0].coefficients, vec![1.0, -0.5]);
        assert!((found[0].constant + 0.5).abs() < 1e-12, "{found:?}");
        // A second copy: x-y and x-w are laws, y-w (implied) is not reported.
        let found = laws(&[&x, &y, &z, &w]);
        let subsets: Vec<Vec<usize>> = found.iter().map(|l| l.metrics.clone()).collect();
        assert_eq!(subsets, vec![vec![0, 1], vec![0, 3]], "{found:?}");
        assert_eq!(found[1].coefficients, vec![1.0, 1.0 / 3.0]);
    }

    #[test]
    fn counters_take_no_part() {
        let counter: Vec<f64> = (0..100).map(f64::from).collect();
        let doubled: Vec<f64> = counter.iter().map(|v| 2.0 * v).collect();
        let noise = normals(10, 100);
        assert!(laws(&[&counter, &doubled, &noise]).is_empty());
        // The same relation between measurements (not in task order) is a law.
        let shuffled: Vec<f64> = (0..100).map(|i| f64::from((i * 37) % 100)).collect();
        let twice: Vec<f64> = shuffled.iter().map(|v| 2.0 * v).collect();
        assert_eq!(laws(&[&shuffled, &twice, &noise]).len(), 1);
    }

    #[test]
    fn iid_noise_has_no_laws() {
        let columns: Vec<Vec<f64>> = (0..6).map(|k| normals(100 + k, 500)).collect();
        let views: Vec<&[f64]> = columns.iter().map(|c| &c[..]).collect();
        assert!(laws(&views).is_empty());
    }

    #[test]
    fn sparse_and_degenerate_inputs() {
        let nan = f64::NAN;
        assert!(laws(&[]).is_empty());
        assert!(laws(&[&[]]).is_empty());
        let a: Vec<f64> = (0..30).map(|i| f64::from((i * 7) % 30)).collect();
        let b: Vec<f64> = a.iter().map(|v| v + 1.0).collect();
        let constant = [5.0; 30];
        let absent = [nan; 30];
        // A constant metric is no candidate; the law a - b = -1 is found.
        let found = laws(&[&a, &constant, &b]);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].constant, -1.0);
        // An absent metric leaves no complete task.
        assert!(laws(&[&a, &absent, &b]).is_empty());
        // Fewer than 10 complete tasks.
        assert!(laws(&[&a[..9], &b[..9]]).is_empty());
        // Missing values: the complete tasks are the ones having both.
        let mut b_sparse = b.clone();
        b_sparse[3] = nan;
        let found = laws(&[&a, &b_sparse]);
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
        let found = conservation_laws(&[&a, &b, &c], &settings(3, 500)).unwrap();
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].coefficients, vec![1.0, -1.0 / 6.0, -0.5]);
        assert!((found[0].constant + 3.5).abs() < 1e-9, "{found:?}");
    }

    #[test]
    fn the_sample_prefix_moves_in_steps() {
        // At most sample_size: every task.
        assert_eq!(law_sample_prefix(2000, 2000), 2000);
        // 2,500: quantum 2^(11-3) = 256, 9 · 256 = 2,304.
        assert_eq!(law_sample_prefix(2500, 2000), 2304);
        // 2,047: quantum 128, 15 · 128 = 1,920, raised to the sample size.
        assert_eq!(law_sample_prefix(2047, 2000), 2000);
        // A million: quantum 2^16; the prefix stays at 983,040 until 1,048,576.
        assert_eq!(law_sample_prefix(1_000_000, 2000), 983_040);
        assert_eq!(law_sample_prefix(1_048_575, 2000), 983_040);
        assert_eq!(law_sample_prefix(1_048_576, 2000), 1_048_576);
        for n in [2001, 3000, 65_537, 999_999, 12_345_678] {
            let prefix = law_sample_prefix(n, 2000);
            assert!(prefix <= n && 8 * prefix > 7 * n, "{n}: {prefix}");
        }
    }

    #[test]
    fn argument_errors_name_the_argument() {
        let a = [1.0, 2.0];
        let cases: [(f64, i64, i64, &str); 5] = [
            (-1.0, 4, 2000, "tolerance_eig"),
            (f64::NAN, 4, 2000, "tolerance_eig"),
            (1e-4, 1, 2000, "max_terms"),
            (1e-4, 9, 2000, "max_terms"),
            (1e-4, 4, 9, "sample_size"),
        ];
        for (tolerance, terms, sample, name) in cases {
            let params = Params::new()
                .with("tolerance_eig", tolerance)
                .with("seed", 0u64)
                .with("max_terms", terms)
                .with("sample_size", sample);
            let error = run(&[&a], &params, &Budget::unlimited()).unwrap_err();
            assert!(error.to_string().starts_with(name), "{error}");
        }
    }
}
