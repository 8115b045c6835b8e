//! The tables of the detectors a [`RunState`] gives exactly (SPEC §14), with a filtering
//! pass that reads only a few buckets of the values: phase transition and correlation.
//! (Conservation reads nothing but the per-metric series; its table is built in Python.)
//!
//! Each function returns the kernel's rows (`detect::phase_transition`,
//! `detect::correlation`) with the same values up to rounding (~1e-12 relative): the
//! state's sums are merged in another order than the kernel's sequential ones. Means of
//! metrics offset far from zero agree to the precision the means carry, and a position
//! chosen among exactly tied scores may differ (a constant metric's change index, which no
//! pattern reads).
//!
//! - **Phase transition.** The halves, the pieces of the residual autocorrelation and the
//!   whole are merges of the metric's bucket series, with the one or two buckets a cut
//!   falls in summarised from their values. The best change point
//!   `argmax S_k² n / (k (n - k))` is exact at every bucket boundary from the prefix
//!   merges; inside a bucket, `|S_k| <= |S_k0| + range + j |mean_b - mean|` bounds the
//!   score, and only the buckets whose bound reaches the best score found are read.
//! - **Correlation.** r from the pair's co-moment over every task having both metrics; the
//!   p-value ([`association_p_value`]) reads only the latest `MAX_TESTED_PAIRS` such tasks,
//!   found by scanning the columns from their end.

use std::sync::OnceLock;

use rayon::prelude::*;

use super::{RunState, Series};
use crate::args::Params;
use crate::detect::correlation::{
    association, association_p_value, correlation_row, CorrelationRow, Tested, MAX_TESTED_PAIRS,
    MIN_DIFFERENCED_PAIRS,
};
use crate::detect::phase_transition::{
    autocorrelation_inflation, phase_row, untested_row, Halves, PhaseRow,
};
use crate::detect::shared::columns::unordered_pairs;
use crate::detect::Table;
use crate::error::{CoreError, CoreResult};
use crate::stats::{correlation_from_sums, welch_inflated_from_moments};

/// The detectors [`table_from_state`] computes.
pub const FROM_STATE: [&str; 2] = ["phase_transition", "correlation"];

/// A bucket is read when its bound reaches the best score found within this relative
/// margin (bound and scores are computed in floating point).
const BOUND_MARGIN: f64 = 1e-9;

/// [`rows_needed`] asks for at most this many buckets of a metric's best-change search at
/// a time: the search reads few buckets (the bound falls below the best score found after
/// the first handful), but which ones depends on the values read before.
pub const NEEDED_BATCH: usize = 4;

/// The values the filtering pass reads: every task of the state (`positions` None), or
/// only the tasks at `positions` (relative to the state's first task, strictly
/// increasing), gathered from wherever the tasks live (a Dask cluster's partitions:
/// [`rows_needed`] says which).
#[derive(Clone, Copy)]
pub struct Rows<'a> {
    /// One column per metric of the state, over every task or over `positions`.
    pub columns: &'a [&'a [f64]],
    /// The tasks the columns hold; None: every task of the state.
    pub positions: Option<&'a [u64]>,
    /// A correlation's p-value reads the latest gathered run even when it holds fewer
    /// than `MAX_TESTED_PAIRS` tasks having both metrics (a cluster that bounds the
    /// latest tasks it gathers); false: that is an error naming the shortfall.
    pub short_tail: bool,
}

impl<'a> Rows<'a> {
    /// Every task of the state.
    pub fn all(columns: &'a [&'a [f64]]) -> Rows<'a> {
        Rows {
            columns,
            positions: None,
            short_tail: false,
        }
    }

    fn check(&self, state: &RunState) -> CoreResult<()> {
        let expected = self.positions.map_or(state.tasks, |p| p.len() as u64);
        if self.columns.len() != state.metrics
            || self.columns.iter().any(|c| c.len() as u64 != expected)
        {
            return Err(CoreError::invalid(
                "columns",
                format!(
                    "columns: expected {} metrics of {} values (the state's{}), got {} of {}",
                    state.metrics,
                    expected,
                    if self.positions.is_some() {
                        " gathered tasks"
                    } else {
                        ""
                    },
                    self.columns.len(),
                    self.columns.first().map_or(0, |c| c.len())
                ),
            ));
        }
        if let Some(positions) = self.positions {
            let increasing = positions.windows(2).all(|w| w[0] < w[1]);
            if !increasing || positions.last().is_some_and(|&p| p >= state.tasks) {
                return Err(CoreError::invalid(
                    "positions",
                    format!(
                        "positions: must be strictly increasing task positions below {}",
                        state.tasks
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The values of `metric` at the tasks `low..high` (every one of them gathered).
    fn span(&self, metric: usize, low: usize, high: usize) -> CoreResult<&'a [f64]> {
        let Some(positions) = self.positions else {
            return Ok(&self.columns[metric][low..high]);
        };
        let i = positions.partition_point(|&p| p < low as u64);
        let j = positions.partition_point(|&p| p < high as u64);
        if j - i != high - low || metric >= self.columns.len() {
            return Err(CoreError::invalid(
                "positions",
                format!("positions: the tasks {low}..{high} the filtering pass reads were not gathered (see rows_needed)"),
            ));
        }
        Ok(&self.columns[metric][i..j])
    }

    /// Where, in the columns, the run of gathered tasks that ends at the state's last task
    /// starts, and whether that run starts at the state's first task.
    fn tail(&self, tasks: u64) -> (usize, bool) {
        let Some(positions) = self.positions else {
            return (0, true);
        };
        let mut from = positions.len();
        while from > 0 && positions[from - 1] + (positions.len() - from) as u64 + 1 == tasks {
            from -= 1;
        }
        let whole = from < positions.len() && positions[from] == 0;
        (from, whole || tasks == 0)
    }
}

/// The table of detector `name` (one of [`FROM_STATE`]) over the metrics `selection` of
/// `state`, with `rows` the values the filtering pass reads (every task, or the tasks
/// [`rows_needed`] names plus the latest `MAX_TESTED_PAIRS` having each pair), and the
/// detector's parameters (`sensitivity`, `threshold`, as its kernel reads them).
pub fn table_from_state(
    name: &str,
    state: &RunState,
    rows: Rows<'_>,
    selection: &[usize],
    params: &Params,
) -> CoreResult<Table> {
    rows.check(state)?;
    check_selection(state, selection)?;
    if !FROM_STATE.contains(&name) {
        return Err(CoreError::invalid(
            "name",
            format!("name: no table from the state for {name:?} (one of {FROM_STATE:?})"),
        ));
    }
    let params = params.resolve(name, crate::detect::detector(name)?.params)?;
    match name {
        "phase_transition" => {
            let sensitivity = params.finite("sensitivity", 0.0, true)?;
            let rows: Vec<PhaseRow> = selection
                .par_iter()
                .map(|&k| phase_from_state(state, k, rows, sensitivity))
                .collect::<CoreResult<_>>()?;
            Ok(PhaseRow::table(&rows))
        }
        "correlation" => {
            let threshold = params.unit_interval("threshold")?;
            let tests = TailTests::new(state, rows);
            let rows: Vec<CorrelationRow> = unordered_pairs(selection.len())
                .par_iter()
                .map(|&(i, j)| {
                    let (a, b) = (selection[i], selection[j]);
                    let mut row = correlation_from_state(state, (a, b), &tests, threshold)?;
                    // numbered by the pair's positions in the selection, as the kernel's
                    (row.i, row.j) = (i as i64, j as i64);
                    Ok(row)
                })
                .collect::<CoreResult<_>>()?;
            Ok(CorrelationRow::table(&rows))
        }
        _ => unreachable!("checked against FROM_STATE above"),
    }
}

/// The tasks (as `(low, high)` spans relative to the state's first task, sorted and
/// disjoint) that the phase-transition table of the metrics `selection` reads next and
/// `rows` (the tasks gathered so far; None: none) lacks: the buckets the halves' split
/// falls in, then, in bound order, the buckets the best-change search reads given the
/// values gathered ([`NEEDED_BATCH`] per metric at a time). Gather them and ask again
/// until nothing is needed. The correlation table reads the latest tasks instead (see
/// [`table_from_state`]).
pub fn rows_needed(
    state: &RunState,
    selection: &[usize],
    rows: Option<Rows<'_>>,
) -> CoreResult<Vec<(u64, u64)>> {
    check_selection(state, selection)?;
    let empty: [&[f64]; 0] = [];
    let nothing: [u64; 0] = [];
    let rows = match rows {
        Some(rows) => {
            rows.check(state)?;
            rows
        }
        None => Rows {
            columns: &empty,
            positions: Some(&nothing),
            short_tail: false,
        },
    };
    let mut spans: Vec<(u64, u64)> = selection
        .par_iter()
        .flat_map_iter(|&metric| {
            let buckets = Buckets::new(state, metric);
            buckets
                .needed(rows, &state.series[metric])
                .into_iter()
                .map(move |index| {
                    let (low, high) = buckets.spans[index];
                    (low as u64, high as u64)
                })
                .collect::<Vec<_>>()
        })
        .collect();
    spans.sort_unstable();
    let mut merged: Vec<(u64, u64)> = Vec::with_capacity(spans.len());
    for (low, high) in spans {
        match merged.last_mut() {
            Some(last) if low <= last.1 => last.1 = last.1.max(high),
            _ => merged.push((low, high)),
        }
    }
    Ok(merged)
}

/// Every index of `selection` names a metric of `state`, once.
fn check_selection(state: &RunState, selection: &[usize]) -> CoreResult<()> {
    if let Some(&bad) = selection.iter().find(|&&k| k >= state.metrics) {
        return Err(CoreError::invalid(
            "metrics",
            format!(
                "metrics: index {bad} out of range for {} metrics",
                state.metrics
            ),
        ));
    }
    let mut seen = vec![false; state.metrics];
    for &k in selection {
        if std::mem::replace(&mut seen[k], true) {
            return Err(CoreError::invalid(
                "metrics",
                format!("metrics: an index is named twice in {selection:?}"),
            ));
        }
    }
    Ok(())
}

// --- phase transition ----------------------------------------------------------------------

/// One metric's non-empty buckets in task order; the filtering pass reads their values
/// from [`Rows`].
struct Buckets {
    metric: usize,
    series: Vec<Series>,
    /// Column positions (relative to the state's first task) of each bucket.
    spans: Vec<(usize, usize)>,
    /// Present values before each bucket (and the total last).
    before: Vec<u64>,
}

/// What the boundaries of the buckets say about the best change point before any value is
/// read.
struct Scan {
    /// `S_k` at each bucket's start.
    partial_before: Vec<f64>,
    /// The exact scores at the bucket boundaries, with their k.
    candidates: Vec<(f64, u64)>,
    /// The best of them.
    best: f64,
    /// Each bucket's bound on the scores inside it, highest first.
    bounds: Vec<(f64, usize)>,
}

impl Buckets {
    fn new(state: &RunState, metric: usize) -> Buckets {
        let (mut series, mut spans, mut before) = (Vec::new(), Vec::new(), vec![0]);
        let size = state.bucket_size;
        for b in 0..state.bucket_count() {
            let bucket = state.buckets[b * state.metrics + metric];
            if bucket.count == 0 {
                continue;
            }
            let global = state.first_bucket + b as u64;
            let low = (global * size).max(state.start) - state.start;
            let high = ((global + 1) * size).min(state.start + state.tasks) - state.start;
            before.push(before[before.len() - 1] + bucket.count);
            series.push(bucket);
            spans.push((low as usize, high as usize));
        }
        Buckets {
            metric,
            series,
            spans,
            before,
        }
    }

    /// The present values of the index-th bucket (the filtering pass).
    /// As many as the state counts there, or the rows are not those it summarises.
    fn values(&self, rows: Rows<'_>, index: usize) -> CoreResult<Vec<f64>> {
        let (low, high) = self.spans[index];
        let present: Vec<f64> = rows
            .span(self.metric, low, high)?
            .iter()
            .copied()
            .filter(|v| !v.is_nan())
            .collect();
        let counted = self.series[index].count;
        if present.len() as u64 != counted {
            return Err(CoreError::invalid(
                "columns",
                format!(
                    "columns: tasks {low}..{high} hold {} values of metric {}, where the state \
                     counts {counted} (not the rows it summarises)",
                    present.len(),
                    self.metric
                ),
            ));
        }
        Ok(present)
    }

    /// Whether `rows` holds every task of the index-th bucket (nothing is copied).
    fn gathered(&self, rows: Rows<'_>, index: usize) -> bool {
        let (low, high) = self.spans[index];
        rows.span(self.metric, low, high).is_ok()
    }

    /// The bucket holding the value at position `k` (k < total).
    fn bucket_of(&self, k: u64) -> usize {
        self.before.partition_point(|&b| b <= k) - 1
    }

    /// The summary of the present values at positions `low..high`.
    fn range(&self, rows: Rows<'_>, low: u64, high: u64) -> CoreResult<Series> {
        if low >= high {
            return Ok(Series::EMPTY);
        }
        let (a, b) = (self.bucket_of(low), self.bucket_of(high - 1));
        let (start_a, start_b) = (self.before[a], self.before[b]);
        if a == b {
            let values = self.values(rows, a)?;
            return Ok(Series::of(
                &values[(low - start_a) as usize..(high - start_a) as usize],
            ));
        }
        let mut summary = if low == start_a {
            self.series[a]
        } else {
            Series::of(&self.values(rows, a)?[(low - start_a) as usize..])
        };
        for bucket in &self.series[a + 1..b] {
            summary = summary.merge(bucket);
        }
        let last = if high == self.before[b + 1] {
            self.series[b]
        } else {
            Series::of(&self.values(rows, b)?[..(high - start_b) as usize])
        };
        Ok(summary.merge(&last))
    }

    /// The exact scores `S_k² n / (k (n - k))` at the bucket boundaries and each bucket's
    /// bound `|S_k| <= |S_k0| + range + j |mean_b - mean|` on the scores inside it.
    fn scan(&self, whole: &Series) -> Scan {
        let n = whole.count as f64;
        let score = |partial: f64, k: f64| partial * partial * n / (k * (n - k));
        let mut partial_before = Vec::with_capacity(self.series.len());
        let mut candidates: Vec<(f64, u64)> = Vec::new();
        let mut prefix = Series::EMPTY;
        for bucket in &self.series {
            partial_before.push(if prefix.count == 0 {
                0.0
            } else {
                prefix.count as f64
                    * ((prefix.first - whole.first) + (prefix.mean_offset - whole.mean_offset))
            });
            prefix = prefix.merge(bucket);
            let k = prefix.count;
            if k >= 1 && k < whole.count {
                let partial = k as f64
                    * ((prefix.first - whole.first) + (prefix.mean_offset - whole.mean_offset));
                candidates.push((score(partial, k as f64), k));
            }
        }
        let best = candidates
            .iter()
            .map(|&(s, _)| s)
            .fold(f64::NEG_INFINITY, f64::max);
        let mut bounds: Vec<(f64, usize)> = Vec::new();
        for (index, bucket) in self.series.iter().enumerate() {
            let c = bucket.count as f64;
            if bucket.count < 2 {
                continue;
            }
            let k0 = self.before[index] as f64;
            let shift =
                ((bucket.first - whole.first) + (bucket.mean_offset - whole.mean_offset)).abs();
            let reach = partial_before[index].abs() + bucket.range + c * shift;
            let denominator =
                ((k0 + 1.0) * (n - k0 - 1.0)).min((k0 + c - 1.0) * (n - k0 - c + 1.0));
            if denominator > 0.0 {
                bounds.push((reach * reach * n / denominator, index));
            }
        }
        bounds.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        Scan {
            partial_before,
            candidates,
            best,
            bounds,
        }
    }

    /// `argmax_k S_k² n / (k (n - k))` over k in 1..n-1, S_k the sum of the first k values
    /// minus the mean of all (the first k on ties; 1 when every value is equal), reading
    /// the buckets whose bound reaches the best score found, highest bound first. A bucket
    /// `rows` lacks is an error when `missing` is None; otherwise it is recorded there and
    /// skipped, and the search stops after [`NEEDED_BATCH`] of them (its result is then
    /// meaningless: [`rows_needed`] reads only `missing`).
    fn best_change(
        &self,
        rows: Rows<'_>,
        whole: &Series,
        mut missing: Option<&mut Vec<usize>>,
    ) -> CoreResult<usize> {
        let n = whole.count as f64;
        if whole.m2 == 0.0 {
            return Ok(1);
        }
        let score = |partial: f64, k: f64| partial * partial * n / (k * (n - k));
        let Scan {
            partial_before,
            mut candidates,
            mut best,
            bounds,
        } = self.scan(whole);
        for (bound, index) in bounds {
            if bound < best * (1.0 - BOUND_MARGIN) {
                break;
            }
            let values = match (self.values(rows, index), missing.as_deref_mut()) {
                (Ok(values), _) => values,
                (Err(error), None) => return Err(error),
                (Err(_), Some(list)) => {
                    list.push(index);
                    if list.len() >= NEEDED_BATCH {
                        break;
                    }
                    continue;
                }
            };
            let k0 = self.before[index];
            let mut partial = partial_before[index];
            for (t, &value) in values[..values.len() - 1].iter().enumerate() {
                partial += (value - whole.first) - whole.mean_offset;
                let k = k0 + t as u64 + 1;
                if k < whole.count {
                    let s = score(partial, k as f64);
                    candidates.push((s, k));
                    best = best.max(s);
                }
            }
        }
        Ok(candidates
            .iter()
            .filter(|&&(s, _)| s == best)
            .map(|&(_, k)| k as usize)
            .min()
            .unwrap_or(1))
    }

    /// The buckets [`phase_from_state`] reads that `rows` lacks, by index: those of the
    /// best-change search (at most [`NEEDED_BATCH`] at a time), then, once the search has
    /// what it reads, those the summaries cut at the halves' split and the change fall in.
    fn needed(&self, rows: Rows<'_>, whole: &Series) -> Vec<usize> {
        let count = whole.count;
        if count < 2 {
            return Vec::new();
        }
        let mut missing = Vec::new();
        let change = match self.best_change(rows, whole, Some(&mut missing)) {
            Ok(change) if missing.is_empty() => change as u64,
            _ => return missing,
        };
        let half = count / 2;
        let mut needed: Vec<usize> = [0, half - 1, half, change - 1, change, count - 1]
            .into_iter()
            .map(|k| self.bucket_of(k))
            .filter(|&index| !self.gathered(rows, index))
            .collect();
        needed.sort_unstable();
        needed.dedup();
        needed
    }
}

/// `residual_rho` (detect::phase_transition) from the summaries of the pieces in order:
/// Σ lag + the products across the seams over Σ M2, bias-corrected for the J pieces.
fn pieces_rho(pieces: &[Series], count: u64) -> f64 {
    let energy: f64 = pieces.iter().map(|p| p.m2).sum();
    if energy <= 0.0 {
        return 0.0;
    }
    let mut products: f64 = pieces.iter().map(|p| p.lag).sum();
    for pair in pieces.windows(2) {
        let last = (pair[0].last - pair[0].first) - pair[0].mean_offset;
        products += last * -pair[1].mean_offset;
    }
    let rho = products / energy;
    rho + pieces.len() as f64 * (1.0 + 3.0 * rho) / count as f64
}

/// The phase-transition row of state metric `metric` (`phase_transition_stats`).
fn phase_from_state(
    state: &RunState,
    metric: usize,
    rows: Rows<'_>,
    sensitivity: f64,
) -> CoreResult<PhaseRow> {
    let whole = state.series[metric];
    let count = whole.count;
    if count < 2 {
        return Ok(untested_row(count as usize));
    }
    let buckets = Buckets::new(state, metric);
    let half = count / 2;
    let (first, second) = (
        buckets.range(rows, 0, half)?,
        buckets.range(rows, half, count)?,
    );
    let change = buckets.best_change(rows, &whole, None)? as u64;
    let mut cuts = vec![0, half.min(change), half.max(change), count];
    cuts.dedup();
    let pieces: Vec<Series> = cuts
        .windows(2)
        .map(|w| buckets.range(rows, w[0], w[1]))
        .collect::<CoreResult<_>>()?;
    let rho = pieces_rho(&pieces, count);
    let difference = (first.first - second.first) + (first.mean_offset - second.mean_offset);
    let p_value = welch_inflated_from_moments(
        (first.count as f64, first.m2),
        (second.count as f64, second.m2),
        difference,
        autocorrelation_inflation(rho),
    );
    Ok(phase_row(
        Halves {
            count: count as usize,
            first_avg: first.mean(),
            second_avg: second.mean(),
            mean_all: whole.mean(),
            largest: whole.min.abs().max(whole.max.abs()),
        },
        change as usize,
        rho,
        p_value,
        sensitivity,
    ))
}

// --- correlation ---------------------------------------------------------------------------

/// The index of the pair (a, b), a < b, among the state's pairs.
fn pair_index(metrics: usize, a: usize, b: usize) -> usize {
    a * metrics - a * (a + 1) / 2 + (b - a - 1)
}

/// The gathered latest tasks of a correlation table, with each metric's tested series
/// ([`Tested`]) when it has every one of them: prepared by its first pair at the threshold
/// and read by all its pairs with such metrics (the same series `association_p_value`
/// would prepare for each).
struct TailTests<'a> {
    rows: Rows<'a>,
    tail: usize,
    whole: bool,
    complete: Vec<OnceLock<Option<Tested>>>,
}

impl<'a> TailTests<'a> {
    fn new(state: &RunState, rows: Rows<'a>) -> Self {
        let (tail, whole) = rows.tail(state.tasks);
        let complete = (0..rows.columns.len()).map(|_| OnceLock::new()).collect();
        TailTests {
            rows,
            tail,
            whole,
            complete,
        }
    }

    /// The latest gathered tasks of metric k.
    fn column(&self, k: usize) -> &'a [f64] {
        &self.rows.columns[k][self.tail..]
    }

    /// Metric k's tested latest MAX_TESTED_PAIRS values when it has all of them.
    fn complete(&self, k: usize) -> Option<&Tested> {
        self.complete[k]
            .get_or_init(|| {
                let column = self.column(k);
                let from = column.len().saturating_sub(MAX_TESTED_PAIRS);
                let usable = column.len() - from >= MIN_DIFFERENCED_PAIRS;
                (usable && !column.iter().any(|v| v.is_nan()))
                    .then(|| Tested::of(column[from..].to_vec()))
            })
            .as_ref()
    }
}

/// The correlation row of state metrics a != b (`correlation_stats`), numbered (a, b).
fn correlation_from_state(
    state: &RunState,
    (a, b): (usize, usize),
    tests: &TailTests<'_>,
    threshold: f64,
) -> CoreResult<CorrelationRow> {
    // the pair's statistics are symmetric: either order reads the same summary
    let pair = &state.pairs[pair_index(state.metrics, a.min(b), a.max(b))];
    let n = pair.count as usize;
    let constant = pair.min[0] == pair.max[0] || pair.min[1] == pair.max[1];
    let r = if n < 2 || constant {
        0.0
    } else {
        correlation_from_sums(pair.comoment, pair.m2[0], pair.m2[1])
    };
    let p_value = if r.abs() >= threshold {
        // the latest MAX_TESTED_PAIRS tasks having both are all association_p_value reads
        let (whole, rows) = (tests.whole, tests.rows);
        let (x, y) = (tests.column(a), tests.column(b));
        let mut found = 0;
        let mut from = x.len();
        while from > 0 && found < MAX_TESTED_PAIRS {
            from -= 1;
            found += usize::from(!x[from].is_nan() && !y[from].is_nan());
        }
        if found < MAX_TESTED_PAIRS && !whole && !rows.short_tail {
            return Err(CoreError::invalid(
                "positions",
                format!(
                    "positions: the latest gathered tasks hold {found} tasks having both metrics {a} and {b}, fewer than the {MAX_TESTED_PAIRS} the p-value reads; gather more of the latest tasks"
                ),
            ));
        }
        match (tests.complete(a), tests.complete(b)) {
            (Some(tested_x), Some(tested_y)) => association(tested_x, tested_y),
            _ => association_p_value(&x[from..], &y[from..]),
        }
    } else {
        f64::NAN
    };
    Ok(correlation_row((a, b), n, r, p_value, threshold))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::{Budget, Value};
    use crate::detect::correlation::correlation_stats;
    use crate::detect::phase_transition::phase_transition_stats;
    use crate::rng::SplitMix64;

    /// AR(1) noise with a level step, a gap pattern and an offset: metric k.
    fn columns(n: usize) -> Vec<Vec<f64>> {
        let mut rng = SplitMix64::new(7);
        let mut normal = move || (0..12).map(|_| rng.next_f64()).sum::<f64>() - 6.0;
        let mut out = Vec::new();
        for k in 0..4 {
            let mut level = 0.0;
            let column: Vec<f64> = (0..n)
                .map(|t| {
                    level = 0.6 * level + normal();
                    let step = if k == 1 && t > n * 3 / 5 { 2.0 } else { 0.0 };
                    if k == 2 && t % 7 == 3 {
                        f64::NAN
                    } else {
                        1e3 * k as f64 + level + step
                    }
                })
                .collect();
            out.push(column);
        }
        // metric 3 follows metric 0 closely
        let follow: Vec<f64> = out[0].iter().map(|v| 2.0 * v + 0.01 * normal()).collect();
        out[3] = follow;
        out
    }

    fn one(name: &str, value: f64) -> Params {
        let mut params = Params::new();
        params.insert(name.into(), Value::Float(value));
        params
    }

    fn close(a: f64, b: f64) -> bool {
        (a.is_nan() && b.is_nan()) || (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1e-300)
    }

    /// The state of `columns` built in runs of `split` tasks merged left to right.
    fn merged_state(columns: &[Vec<f64>], split: usize, bucket_size: u64) -> RunState {
        let n = columns[0].len();
        let mut state = RunState::empty(columns.len(), 0, bucket_size).unwrap();
        let mut start = 0;
        while start < n {
            let end = (start + split).min(n);
            let run: Vec<&[f64]> = columns.iter().map(|c| &c[start..end]).collect();
            let next = RunState::of_columns(&run, end - start, start as u64, bucket_size).unwrap();
            state = state.merge(&next).unwrap();
            start = end;
        }
        state
    }

    #[test]
    fn phase_transition_and_correlation_tables_equal_the_kernels() {
        let data = columns(5_000);
        let slices: Vec<&[f64]> = data.iter().map(Vec::as_slice).collect();
        let (sensitivity, threshold) = (one("sensitivity", 0.0), one("threshold", 0.5));
        let expected_phase = phase_transition_stats(&slices, 0.0, &Budget::unlimited()).unwrap();
        let expected_corr = correlation_stats(&slices, 0.5, &Budget::unlimited()).unwrap();
        for (split, bucket_size) in [(5_000, 64), (1_234, 100), (777, 512), (5_000, 10_000)] {
            let state = merged_state(&data, split, bucket_size);
            let all = [0, 1, 2, 3];
            let phase = table_from_state(
                "phase_transition",
                &state,
                Rows::all(&slices),
                &all,
                &sensitivity,
            )
            .unwrap();
            let corr =
                table_from_state("correlation", &state, Rows::all(&slices), &all, &threshold)
                    .unwrap();
            for (k, row) in expected_phase.iter().enumerate() {
                assert_eq!(phase.ints("count")[k], row.count);
                assert_eq!(
                    phase.ints("change_index")[k],
                    row.change_index,
                    "split {split}"
                );
                assert_eq!(phase.bools("detected")[k], row.detected);
                for field in [
                    "first_avg",
                    "second_avg",
                    "mean_all",
                    "shift",
                    "p_value",
                    "delta",
                ] {
                    let expected = match field {
                        "first_avg" => row.first_avg,
                        "second_avg" => row.second_avg,
                        "mean_all" => row.mean_all,
                        "shift" => row.shift,
                        "p_value" => row.p_value,
                        _ => row.delta,
                    };
                    let got = phase.floats(field)[k];
                    assert!(
                        close(got, expected),
                        "{field} metric {k}: {got} vs {expected}"
                    );
                }
            }
            for (p, row) in expected_corr.iter().enumerate() {
                assert_eq!(corr.ints("n")[p], row.n);
                assert!(close(corr.floats("r")[p], row.r), "r of pair {p}");
                assert!(
                    close(corr.floats("p_value")[p], row.p_value),
                    "p of pair {p}"
                );
                assert_eq!(corr.bools("detected")[p], row.detected);
            }
        }
    }

    /// The positions of the spans plus the latest `tail` tasks, and the columns over them.
    fn gather(data: &[Vec<f64>], spans: &[(u64, u64)], tail: usize) -> (Vec<u64>, Vec<Vec<f64>>) {
        let n = data[0].len();
        let mut keep = vec![false; n];
        for &(low, high) in spans {
            keep[low as usize..high as usize].fill(true);
        }
        keep[n - tail..].fill(true);
        let positions: Vec<u64> = (0..n as u64).filter(|&t| keep[t as usize]).collect();
        let columns = data
            .iter()
            .map(|c| positions.iter().map(|&t| c[t as usize]).collect())
            .collect();
        (positions, columns)
    }

    #[test]
    fn gathered_rows_give_the_tables_of_every_row() {
        let data = columns(40_000);
        let slices: Vec<&[f64]> = data.iter().map(Vec::as_slice).collect();
        let all = [0, 1, 2, 3];
        let (sensitivity, threshold) = (one("sensitivity", 0.0), one("threshold", 0.5));
        for (split, bucket_size) in [(40_000, 256), (9_999, 1_000)] {
            let state = merged_state(&data, split, bucket_size);
            // gathered in rounds, as a cluster's client does
            let (mut spans, mut rounds) = (Vec::new(), 0);
            loop {
                let (positions, gathered) = gather(&data, &spans, 0);
                let views: Vec<&[f64]> = gathered.iter().map(Vec::as_slice).collect();
                let rows = Rows {
                    columns: &views,
                    positions: Some(&positions),
                    short_tail: false,
                };
                let more = rows_needed(&state, &all, Some(rows)).unwrap();
                if more.is_empty() {
                    break;
                }
                spans.extend(more);
                rounds += 1;
            }
            assert_eq!(
                rows_needed(&state, &all, None).unwrap().is_empty(),
                rounds == 0
            );
            let read: u64 = spans.iter().map(|&(low, high)| high - low).sum();
            // 3,648 (buckets of 256) and 11,000 (of 1,000) tasks, in 2 rounds
            assert!(
                read > 0 && read < 40_000 * 3 / 10,
                "{read} of 40,000 tasks read"
            );
            assert!((1..=8).contains(&rounds), "{rounds} rounds");
            // metric 2 misses every 7th task: 12,000 latest tasks hold 10,000 of each pair
            let (positions, gathered) = gather(&data, &spans, 12_000);
            let views: Vec<&[f64]> = gathered.iter().map(Vec::as_slice).collect();
            let rows = Rows {
                columns: &views,
                positions: Some(&positions),
                short_tail: false,
            };
            for (name, params) in [
                ("phase_transition", &sensitivity),
                ("correlation", &threshold),
            ] {
                let expected =
                    table_from_state(name, &state, Rows::all(&slices), &all, params).unwrap();
                let got = table_from_state(name, &state, rows, &all, params).unwrap();
                assert_eq!(format!("{got:?}"), format!("{expected:?}"), "{name}");
            }
            // a needed bucket left out, or too few of the latest tasks: a named error
            for (name, kept, tail, says) in [
                ("phase_transition", &spans[1..], 12_000, "positions"),
                ("correlation", &spans[..], 5_000, "latest"),
            ] {
                let (positions, gathered) = gather(&data, kept, tail);
                let views: Vec<&[f64]> = gathered.iter().map(Vec::as_slice).collect();
                let rows = Rows {
                    columns: &views,
                    positions: Some(&positions),
                    short_tail: false,
                };
                let params = if name == "correlation" {
                    &threshold
                } else {
                    &sensitivity
                };
                let error = table_from_state(name, &state, rows, &all, params).unwrap_err();
                assert!(error.to_string().contains(says), "{error}");
            }
            // a short tail allowed: each p-value reads the latest 5,000 tasks alone
            let (positions, gathered) = gather(&data, &spans, 5_000);
            let views: Vec<&[f64]> = gathered.iter().map(Vec::as_slice).collect();
            let short = Rows {
                columns: &views,
                positions: Some(&positions),
                short_tail: true,
            };
            let got = table_from_state("correlation", &state, short, &all, &threshold).unwrap();
            let (i, j, p) = (got.ints("i"), got.ints("j"), got.floats("p_value"));
            let tested = (0..p.len()).filter(|&row| !p[row].is_nan()).count();
            assert!(tested > 0, "no pair reaches the threshold");
            for row in (0..p.len()).filter(|&row| !p[row].is_nan()) {
                let (a, b) = (i[row] as usize, j[row] as usize);
                let alone = association_p_value(&data[a][35_000..], &data[b][35_000..]);
                assert_eq!(p[row].to_bits(), alone.to_bits(), "pair {a}, {b}");
            }
        }
    }

    #[test]
    fn gathered_positions_are_checked() {
        let data = columns(300);
        let state = merged_state(&data, 300, 32);
        let slices: Vec<&[f64]> = data.iter().map(|c| &c[..3]).collect();
        let params = one("threshold", 0.7);
        for positions in [&[0u64, 2, 1][..], &[0, 1, 300]] {
            let rows = Rows {
                columns: &slices,
                positions: Some(positions),
                short_tail: false,
            };
            let error = table_from_state("correlation", &state, rows, &[0], &params).unwrap_err();
            assert!(error.to_string().contains("positions"), "{error}");
        }
        let rows = Rows {
            columns: &slices,
            positions: Some(&[0, 1]),
            short_tail: false,
        };
        let error = table_from_state("correlation", &state, rows, &[0], &params).unwrap_err();
        assert!(error.to_string().contains("columns"), "{error}");
        assert!(rows_needed(&state, &[4], None)
            .unwrap_err()
            .to_string()
            .contains("metrics"));
    }

    #[test]
    fn a_selection_and_bad_arguments() {
        let data = columns(300);
        let slices: Vec<&[f64]> = data.iter().map(Vec::as_slice).collect();
        let state = merged_state(&data, 300, 32);
        let params = one("threshold", 0.7);
        let selected =
            table_from_state("correlation", &state, Rows::all(&slices), &[0, 3], &params).unwrap();
        assert_eq!(selected.ints("i"), &[0]);
        assert_eq!(selected.ints("j"), &[1]);
        assert!(selected.bools("detected")[0]);
        let error =
            table_from_state("clustering", &state, Rows::all(&slices), &[0], &params).unwrap_err();
        assert!(error.to_string().contains("name"));
        let error = table_from_state(
            "correlation",
            &state,
            Rows::all(&slices[..2]),
            &[0],
            &params,
        )
        .unwrap_err();
        assert!(error.to_string().contains("columns"));
        let error = table_from_state(
            "phase_transition",
            &state,
            Rows::all(&slices),
            &[9],
            &params,
        )
        .unwrap_err();
        assert!(error.to_string().contains("metrics"));
        let error = table_from_state(
            "phase_transition",
            &state,
            Rows::all(&slices),
            &[0],
            &params,
        )
        .unwrap_err();
        assert!(
            error.to_string().contains("threshold"),
            "an unknown parameter is named"
        );
        let negative = one("sensitivity", -1.0);
        let error = table_from_state(
            "phase_transition",
            &state,
            Rows::all(&slices),
            &[0],
            &negative,
        )
        .unwrap_err();
        assert!(error.to_string().contains("sensitivity"));
    }
}
