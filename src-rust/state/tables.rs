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

use rayon::prelude::*;

use super::{RunState, Series};
use crate::args::Params;
use crate::detect::correlation::{
    association_p_value, correlation_row, CorrelationRow, MAX_TESTED_PAIRS,
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

/// The table of detector `name` (one of [`FROM_STATE`]) over the metrics `selection` of
/// `state`, with `columns` the values of every metric of the state over its tasks (NaN =
/// absent) for the filtering pass, and the detector's parameters (`sensitivity`,
/// `threshold`, as its kernel reads them).
pub fn table_from_state(
    name: &str,
    state: &RunState,
    columns: &[&[f64]],
    selection: &[usize],
    params: &Params,
) -> CoreResult<Table> {
    if columns.len() != state.metrics || columns.iter().any(|c| c.len() as u64 != state.tasks) {
        return Err(CoreError::invalid(
            "columns",
            format!(
                "columns: expected {} metrics of {} values (the state's), got {} of {}",
                state.metrics,
                state.tasks,
                columns.len(),
                columns.first().map_or(0, |c| c.len())
            ),
        ));
    }
    if let Some(&bad) = selection.iter().find(|&&k| k >= state.metrics) {
        return Err(CoreError::invalid(
            "metrics",
            format!(
                "metrics: index {bad} out of range for {} metrics",
                state.metrics
            ),
        ));
    }
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
                .map(|&k| phase_from_state(state, k, columns[k], sensitivity))
                .collect();
            Ok(PhaseRow::table(&rows))
        }
        "correlation" => {
            let threshold = params.unit_interval("threshold")?;
            let rows: Vec<CorrelationRow> = unordered_pairs(selection.len())
                .par_iter()
                .map(|&(i, j)| {
                    let (a, b) = (selection[i], selection[j]);
                    let mut row =
                        correlation_from_state(state, (a, b), (columns[a], columns[b]), threshold);
                    // numbered by the pair's positions in the selection, as the kernel's
                    (row.i, row.j) = (i as i64, j as i64);
                    row
                })
                .collect();
            Ok(CorrelationRow::table(&rows))
        }
        _ => unreachable!("checked against FROM_STATE above"),
    }
}

// --- phase transition ----------------------------------------------------------------------

/// One metric's non-empty buckets in task order, with the filtering pass over its column.
struct Buckets<'a> {
    column: &'a [f64],
    series: Vec<Series>,
    /// Column positions (relative to the state's first task) of each bucket.
    spans: Vec<(usize, usize)>,
    /// Present values before each bucket (and the total last).
    before: Vec<u64>,
}

impl<'a> Buckets<'a> {
    fn new(state: &RunState, metric: usize, column: &'a [f64]) -> Buckets<'a> {
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
            column,
            series,
            spans,
            before,
        }
    }

    /// The present values of the index-th bucket (the filtering pass).
    fn values(&self, index: usize) -> Vec<f64> {
        let (low, high) = self.spans[index];
        self.column[low..high]
            .iter()
            .copied()
            .filter(|v| !v.is_nan())
            .collect()
    }

    /// The bucket holding the value at position `k` (k < total).
    fn bucket_of(&self, k: u64) -> usize {
        self.before.partition_point(|&b| b <= k) - 1
    }

    /// The summary of the present values at positions `low..high`.
    fn range(&self, low: u64, high: u64) -> Series {
        if low >= high {
            return Series::EMPTY;
        }
        let (a, b) = (self.bucket_of(low), self.bucket_of(high - 1));
        let (start_a, start_b) = (self.before[a], self.before[b]);
        if a == b {
            let values = self.values(a);
            return Series::of(&values[(low - start_a) as usize..(high - start_a) as usize]);
        }
        let mut summary = if low == start_a {
            self.series[a]
        } else {
            Series::of(&self.values(a)[(low - start_a) as usize..])
        };
        for bucket in &self.series[a + 1..b] {
            summary = summary.merge(bucket);
        }
        let last = if high == self.before[b + 1] {
            self.series[b]
        } else {
            Series::of(&self.values(b)[..(high - start_b) as usize])
        };
        summary.merge(&last)
    }

    /// `argmax_k S_k² n / (k (n - k))` over k in 1..n-1, S_k the sum of the first k values
    /// minus the mean of all (the first k on ties; 1 when every value is equal).
    fn best_change(&self, whole: &Series) -> usize {
        let n = whole.count as f64;
        if whole.m2 == 0.0 {
            return 1;
        }
        let score = |partial: f64, k: f64| partial * partial * n / (k * (n - k));
        // S_k at each bucket's start, and the exact scores at the boundaries
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
        let mut best = candidates
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
        for (bound, index) in bounds {
            if bound < best * (1.0 - BOUND_MARGIN) {
                break;
            }
            let values = self.values(index);
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
        candidates
            .iter()
            .filter(|&&(s, _)| s == best)
            .map(|&(_, k)| k as usize)
            .min()
            .unwrap_or(1)
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
fn phase_from_state(state: &RunState, metric: usize, column: &[f64], sensitivity: f64) -> PhaseRow {
    let whole = state.series[metric];
    let count = whole.count;
    if count < 2 {
        return untested_row(count as usize);
    }
    let buckets = Buckets::new(state, metric, column);
    let half = count / 2;
    let (first, second) = (buckets.range(0, half), buckets.range(half, count));
    let change = buckets.best_change(&whole) as u64;
    let mut cuts = vec![0, half.min(change), half.max(change), count];
    cuts.dedup();
    let pieces: Vec<Series> = cuts.windows(2).map(|w| buckets.range(w[0], w[1])).collect();
    let rho = pieces_rho(&pieces, count);
    let difference = (first.first - second.first) + (first.mean_offset - second.mean_offset);
    let p_value = welch_inflated_from_moments(
        (first.count as f64, first.m2),
        (second.count as f64, second.m2),
        difference,
        autocorrelation_inflation(rho),
    );
    phase_row(
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
    )
}

// --- correlation ---------------------------------------------------------------------------

/// The index of the pair (a, b), a < b, among the state's pairs.
fn pair_index(metrics: usize, a: usize, b: usize) -> usize {
    a * metrics - a * (a + 1) / 2 + (b - a - 1)
}

/// The correlation row of state metrics a != b (`correlation_stats`), numbered (a, b).
fn correlation_from_state(
    state: &RunState,
    (a, b): (usize, usize),
    (x, y): (&[f64], &[f64]),
    threshold: f64,
) -> CorrelationRow {
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
        let mut found = 0;
        let mut from = x.len();
        while from > 0 && found < MAX_TESTED_PAIRS {
            from -= 1;
            found += usize::from(!x[from].is_nan() && !y[from].is_nan());
        }
        association_p_value(&x[from..], &y[from..])
    } else {
        f64::NAN
    };
    correlation_row((a, b), n, r, p_value, threshold)
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
            let next = RunState::of_columns(&run, start as u64, bucket_size).unwrap();
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
            let phase =
                table_from_state("phase_transition", &state, &slices, &all, &sensitivity).unwrap();
            let corr = table_from_state("correlation", &state, &slices, &all, &threshold).unwrap();
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

    #[test]
    fn a_selection_and_bad_arguments() {
        let data = columns(300);
        let slices: Vec<&[f64]> = data.iter().map(Vec::as_slice).collect();
        let state = merged_state(&data, 300, 32);
        let params = one("threshold", 0.7);
        let selected = table_from_state("correlation", &state, &slices, &[0, 3], &params).unwrap();
        assert_eq!(selected.ints("i"), &[0]);
        assert_eq!(selected.ints("j"), &[1]);
        assert!(selected.bools("detected")[0]);
        let error = table_from_state("clustering", &state, &slices, &[0], &params).unwrap_err();
        assert!(error.to_string().contains("name"));
        let error =
            table_from_state("correlation", &state, &slices[..2], &[0], &params).unwrap_err();
        assert!(error.to_string().contains("columns"));
        let error =
            table_from_state("phase_transition", &state, &slices, &[9], &params).unwrap_err();
        assert!(error.to_string().contains("metrics"));
        let error =
            table_from_state("phase_transition", &state, &slices, &[0], &params).unwrap_err();
        assert!(
            error.to_string().contains("threshold"),
            "an unknown parameter is named"
        );
        let negative = one("sensitivity", -1.0);
        let error =
            table_from_state("phase_transition", &state, &slices, &[0], &negative).unwrap_err();
        assert!(error.to_string().contains("sensitivity"));
    }
}
