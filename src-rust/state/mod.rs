//! Mergeable cooling state (SPEC §14): a fixed-shape summary of a run of consecutive tasks
//! over m metrics that merges exactly with the summary of the run that follows.
//!
//! A [`RunState`] holds, for tasks `start..start + tasks`:
//! - per metric, a [`Series`] of its present values (count, mean, M2, lag-1 co-moment,
//!   first/last/min/max, the counter rule's monotonic flags and changes): conservation,
//!   phase transition, column roles' counter rule;
//! - per metric pair i < j (in the order (0,1), (0,2), ..., (1,2), ...), a [`PairSeries`]
//!   over the tasks having both (Pearson's r) and one of their first differences
//!   (correlation's p-value: the differenced r and lag-1 autocorrelations);
//! - over the complete tasks (every metric present), the count, the first complete task's
//!   values, the mean vector (minus those) and the co-moment matrix: the Gram matrix of
//!   `[x, 1]` that conservation laws' null space comes from;
//! - per metric and bucket of `bucket_size` consecutive task positions (bucket b = tasks
//!   `b·bucket_size ..`, counted from task 0 of the whole series), a [`Series`]: the halves
//!   and the best change point in task order, to the bucket, with a bound on where inside a
//!   bucket a better change point can lie (a second, filtering pass over the few buckets
//!   the bound leaves finds the exact position).
//!
//! Merging any split of the tasks into consecutive runs, in any tree order, gives the same
//! statistics up to rounding (the `range` bounds aside).
//!
//! [`RunState::to_flat`] / [`RunState::from_flat`] give the f64 body of the serialised
//! form; the header (magic, version) is written by the Python layer, which documents it.

pub mod series;
pub mod tables;

pub use series::{PairSeries, Series, PAIR_FIELDS, PAIR_WIDTH, SERIES_FIELDS, SERIES_WIDTH};

use rayon::prelude::*;

use crate::detect::shared::columns::unordered_pairs;
use crate::error::{CoreError, CoreResult};

/// Values at the start of the flat body before the summaries.
pub const HEADER_WIDTH: usize = 7;
/// The largest integer an f64 holds exactly; counts and positions stay below it.
const EXACT_INTEGER: f64 = 9_007_199_254_740_992.0;

#[derive(Clone, Debug, PartialEq)]
pub struct RunState {
    pub metrics: usize,
    /// Position of the first task in the whole series.
    pub start: u64,
    pub tasks: u64,
    pub bucket_size: u64,
    /// Index of the first bucket held (`start / bucket_size`).
    pub first_bucket: u64,
    pub series: Vec<Series>,
    pub pairs: Vec<PairSeries>,
    pub differences: Vec<PairSeries>,
    pub complete_count: u64,
    /// The first complete task's values (the origin of `complete_mean_offset`).
    pub complete_first: Vec<f64>,
    /// Mean - complete_first, per metric.
    pub complete_mean_offset: Vec<f64>,
    /// m×m row-major Σ (x_i - mean_i)(x_j - mean_j) over complete tasks.
    pub complete_comoment: Vec<f64>,
    /// Bucket-major: bucket `first_bucket + b`, metric k at `b * metrics + k`.
    pub buckets: Vec<Series>,
}

fn check_bucket_size(bucket_size: u64) -> CoreResult<()> {
    if bucket_size == 0 || bucket_size as f64 >= EXACT_INTEGER {
        return Err(CoreError::invalid(
            "bucket_size",
            format!("bucket_size must be >= 1 and < 2**53, got {bucket_size}"),
        ));
    }
    Ok(())
}

impl RunState {
    /// The state of the empty run at `start`.
    pub fn empty(metrics: usize, start: u64, bucket_size: u64) -> CoreResult<RunState> {
        check_bucket_size(bucket_size)?;
        let pairs = metrics * metrics.saturating_sub(1) / 2;
        Ok(RunState {
            metrics,
            start,
            tasks: 0,
            bucket_size,
            first_bucket: start / bucket_size,
            series: vec![Series::EMPTY; metrics],
            pairs: vec![PairSeries::EMPTY; pairs],
            differences: vec![PairSeries::EMPTY; pairs],
            complete_count: 0,
            complete_first: vec![0.0; metrics],
            complete_mean_offset: vec![0.0; metrics],
            complete_comoment: vec![0.0; metrics * metrics],
            buckets: Vec::new(),
        })
    }

    /// The state of the `tasks` tasks in `columns` (one slice per metric, each of `tasks`
    /// values, NaN where a task lacks the metric), the first of them at position `start`.
    /// Without metrics the state counts the tasks and holds no bucket.
    pub fn of_columns(
        columns: &[&[f64]],
        tasks: usize,
        start: u64,
        bucket_size: u64,
    ) -> CoreResult<RunState> {
        check_bucket_size(bucket_size)?;
        let metrics = columns.len();
        if columns.iter().any(|c| c.len() != tasks) {
            return Err(CoreError::invalid(
                "columns",
                "columns: every metric must have one value per task",
            ));
        }
        if columns.iter().any(|c| c.iter().any(|v| v.is_infinite())) {
            return Err(CoreError::invalid(
                "columns",
                "columns: values must be finite (NaN marks an absent value)",
            ));
        }
        if start as f64 + tasks as f64 >= EXACT_INTEGER {
            return Err(CoreError::invalid(
                "start",
                format!("start: tasks {start}.. go beyond 2**53 (positions are stored as f64)"),
            ));
        }
        let mut state = RunState::empty(metrics, start, bucket_size)?;
        state.tasks = tasks as u64;
        if tasks == 0 || metrics == 0 {
            return Ok(state);
        }
        state.series = columns
            .par_iter()
            .map(|column| Series::of(&present(column)))
            .collect();
        // Complete columns (the common case): a pair's summaries are its metrics' own plus
        // one co-moment pass each for the values and their differences, read in place.
        let complete: Vec<bool> = columns
            .iter()
            .map(|c| !c.iter().any(|v| v.is_nan()))
            .collect();
        let difference_series: Vec<Series> = columns
            .par_iter()
            .zip(&complete)
            .map(|(c, &whole)| {
                if whole {
                    Series::of(&differences(c))
                } else {
                    Series::EMPTY
                }
            })
            .collect();
        let pair_list = unordered_pairs(metrics);
        let series = &state.series;
        let both: Vec<(PairSeries, PairSeries)> = pair_list
            .par_iter()
            .map(|&(i, j)| {
                if complete[i] && complete[j] {
                    let (x, y) = (columns[i], columns[j]);
                    let values = series::comoment(
                        x.iter().copied(),
                        y.iter().copied(),
                        &series[i],
                        &series[j],
                    );
                    let (dx, dy) = (&difference_series[i], &difference_series[j]);
                    let steps = series::comoment(
                        x.windows(2).map(|w| w[1] - w[0]),
                        y.windows(2).map(|w| w[1] - w[0]),
                        dx,
                        dy,
                    );
                    return (
                        PairSeries::joint(&series[i], &series[j], values),
                        PairSeries::joint(dx, dy, steps),
                    );
                }
                let (xs, ys): (Vec<f64>, Vec<f64>) = columns[i]
                    .iter()
                    .zip(columns[j])
                    .filter(|(a, b)| !a.is_nan() && !b.is_nan())
                    .map(|(&a, &b)| (a, b))
                    .unzip();
                (
                    PairSeries::of(&xs, &ys),
                    PairSeries::of(&differences(&xs), &differences(&ys)),
                )
            })
            .collect();
        (state.pairs, state.differences) = both.into_iter().unzip();
        state.complete(columns, tasks);
        state.bucketize(columns, tasks);
        Ok(state)
    }

    fn complete(&mut self, columns: &[&[f64]], tasks: usize) {
        let m = self.metrics;
        let rows: Vec<usize> = (0..tasks)
            .filter(|&t| columns.iter().all(|c| !c[t].is_nan()))
            .collect();
        if rows.is_empty() || m == 0 {
            return;
        }
        let count = rows.len() as f64;
        let first: Vec<f64> = columns.iter().map(|c| c[rows[0]]).collect();
        let offsets: Vec<f64> = columns
            .iter()
            .zip(&first)
            .map(|(c, &origin)| rows.iter().map(|&t| c[t] - origin).sum::<f64>() / count)
            .collect();
        let mut comoment = vec![0.0; m * m];
        let mut centred = vec![0.0; m];
        for &t in &rows {
            for k in 0..m {
                centred[k] = (columns[k][t] - first[k]) - offsets[k];
            }
            for a in 0..m {
                for b in a..m {
                    comoment[a * m + b] += centred[a] * centred[b];
                }
            }
        }
        for a in 0..m {
            for b in 0..a {
                comoment[a * m + b] = comoment[b * m + a];
            }
        }
        self.complete_count = rows.len() as u64;
        self.complete_first = first;
        self.complete_mean_offset = offsets;
        self.complete_comoment = comoment;
    }

    fn bucketize(&mut self, columns: &[&[f64]], tasks: usize) {
        let size = self.bucket_size;
        let last_bucket = (self.start + tasks as u64 - 1) / size;
        let count = (last_bucket - self.first_bucket + 1) as usize;
        let m = self.metrics;
        let start = self.start;
        let first_bucket = self.first_bucket;
        self.buckets = (0..count)
            .into_par_iter()
            .flat_map_iter(|b| {
                let bucket = first_bucket + b as u64;
                let low = (bucket * size).max(start) - start;
                let high = ((bucket + 1) * size).min(start + tasks as u64) - start;
                let (low, high) = (low as usize, high as usize);
                (0..m).map(move |k| Series::of(&present(&columns[k][low..high])))
            })
            .collect();
    }

    /// Number of buckets held.
    pub fn bucket_count(&self) -> usize {
        self.buckets.len().checked_div(self.metrics).unwrap_or(0)
    }

    /// The state of this run followed by `next` (which must start where this one ends,
    /// over the same metrics and buckets).
    pub fn merge(&self, next: &RunState) -> CoreResult<RunState> {
        if self.metrics != next.metrics {
            return Err(CoreError::invalid(
                "other",
                format!(
                    "other: states over different numbers of metrics ({} and {})",
                    self.metrics, next.metrics
                ),
            ));
        }
        if self.bucket_size != next.bucket_size {
            return Err(CoreError::invalid(
                "other",
                format!(
                    "other: states with different bucket sizes ({} and {})",
                    self.bucket_size, next.bucket_size
                ),
            ));
        }
        if self.start + self.tasks != next.start {
            return Err(CoreError::invalid(
                "other",
                format!(
                    "other: runs are not consecutive (this one covers tasks {}..{}, the next \
                     starts at {})",
                    self.start,
                    self.start + self.tasks,
                    next.start
                ),
            ));
        }
        if self.tasks == 0 {
            return Ok(next.clone());
        }
        if next.tasks == 0 {
            return Ok(self.clone());
        }
        let m = self.metrics;
        let series = self
            .series
            .iter()
            .zip(&next.series)
            .map(|(a, b)| a.merge(b))
            .collect();
        let pairs: Vec<PairSeries> = self
            .pairs
            .iter()
            .zip(&next.pairs)
            .map(|(a, b)| a.merge(b))
            .collect();
        let differences = (0..self.pairs.len())
            .map(|p| {
                let (a, b) = (&self.pairs[p], &next.pairs[p]);
                if a.count == 0 || b.count == 0 {
                    return self.differences[p].merge(&next.differences[p]);
                }
                let seam = [b.first[0] - a.last[0]];
                let seam_y = [b.first[1] - a.last[1]];
                self.differences[p]
                    .merge(&PairSeries::of(&seam, &seam_y))
                    .merge(&next.differences[p])
            })
            .collect();
        let (complete_count, complete_first, complete_mean_offset, complete_comoment) =
            self.merge_complete(next);
        // Buckets: the last of this run and the first of the next are one bucket when the
        // seam falls inside it.
        let mut buckets = self.buckets.clone();
        let mut rest = &next.buckets[..];
        let last_bucket = (self.first_bucket + self.bucket_count() as u64).checked_sub(1);
        if m > 0 && Some(next.first_bucket) == last_bucket {
            let shared = buckets.len() - m;
            for k in 0..m {
                buckets[shared + k] = buckets[shared + k].merge(&rest[k]);
            }
            rest = &rest[m..];
        }
        buckets.extend_from_slice(rest);
        Ok(RunState {
            metrics: m,
            start: self.start,
            tasks: self.tasks + next.tasks,
            bucket_size: self.bucket_size,
            first_bucket: self.first_bucket,
            series,
            pairs,
            differences,
            complete_count,
            complete_first,
            complete_mean_offset,
            complete_comoment,
            buckets,
        })
    }

    fn merge_complete(&self, next: &RunState) -> (u64, Vec<f64>, Vec<f64>, Vec<f64>) {
        if next.complete_count == 0 {
            return (
                self.complete_count,
                self.complete_first.clone(),
                self.complete_mean_offset.clone(),
                self.complete_comoment.clone(),
            );
        }
        if self.complete_count == 0 {
            return (
                next.complete_count,
                next.complete_first.clone(),
                next.complete_mean_offset.clone(),
                next.complete_comoment.clone(),
            );
        }
        let m = self.metrics;
        let (na, nb) = (self.complete_count as f64, next.complete_count as f64);
        let n = na + nb;
        let deltas: Vec<f64> = (0..m)
            .map(|k| {
                let mean_b = (next.complete_first[k] - self.complete_first[k])
                    + next.complete_mean_offset[k];
                mean_b - self.complete_mean_offset[k]
            })
            .collect();
        let offsets = (0..m)
            .map(|k| self.complete_mean_offset[k] + deltas[k] * nb / n)
            .collect();
        let weight = na * nb / n;
        let comoment = (0..m * m)
            .map(|index| {
                let (a, b) = (index / m, index % m);
                self.complete_comoment[index]
                    + next.complete_comoment[index]
                    + deltas[a] * deltas[b] * weight
            })
            .collect();
        (
            self.complete_count + next.complete_count,
            self.complete_first.clone(),
            offsets,
            comoment,
        )
    }

    /// The flat f64 body: the header `[metrics, start, tasks, bucket_size, first_bucket,
    /// bucket_count, complete_count]`, then the m series, the pairs, the differences (each
    /// PAIR_WIDTH wide), the complete tasks' first values (m), mean offsets (m) and
    /// co-moments (m×m), then the buckets
    /// (bucket-major, SERIES_WIDTH each).
    pub fn to_flat(&self) -> Vec<f64> {
        let mut out = Vec::with_capacity(flat_length(self.metrics, self.bucket_count()));
        out.extend_from_slice(&[
            self.metrics as f64,
            self.start as f64,
            self.tasks as f64,
            self.bucket_size as f64,
            self.first_bucket as f64,
            self.bucket_count() as f64,
            self.complete_count as f64,
        ]);
        for series in &self.series {
            series.write(&mut out);
        }
        for pair in self.pairs.iter().chain(&self.differences) {
            pair.write(&mut out);
        }
        out.extend_from_slice(&self.complete_first);
        out.extend_from_slice(&self.complete_mean_offset);
        out.extend_from_slice(&self.complete_comoment);
        for bucket in &self.buckets {
            bucket.write(&mut out);
        }
        out
    }

    /// The state whose [`RunState::to_flat`] is `flat`; an error naming `state` when the
    /// body is not one.
    pub fn from_flat(flat: &[f64]) -> CoreResult<RunState> {
        let bad = |why: String| CoreError::invalid("state", format!("state: {why}"));
        if flat.len() < HEADER_WIDTH {
            return Err(bad(format!(
                "{} values, fewer than the {HEADER_WIDTH} of the header",
                flat.len()
            )));
        }
        let mut header = [0u64; HEADER_WIDTH];
        for (slot, &value) in header.iter_mut().zip(flat) {
            if !((0.0..EXACT_INTEGER).contains(&value) && value.fract() == 0.0) {
                return Err(bad(format!("header value {value} is not a count")));
            }
            *slot = value as u64;
        }
        let [metrics, start, tasks, bucket_size, first_bucket, bucket_count, complete_count] =
            header;
        let metrics = metrics as usize;
        if metrics > 1 << 16 {
            return Err(bad(format!("{metrics} metrics is more than a state holds")));
        }
        check_bucket_size(bucket_size).map_err(|_| bad("bucket_size is 0".into()))?;
        let expected_buckets = if tasks == 0 || metrics == 0 {
            0
        } else {
            (start + tasks - 1) / bucket_size - start / bucket_size + 1
        };
        if first_bucket != start / bucket_size || bucket_count != expected_buckets {
            return Err(bad(format!(
                "buckets {first_bucket} + {bucket_count} do not cover tasks {start}..{}",
                start + tasks
            )));
        }
        let bucket_count = bucket_count as usize;
        let expected = flat_length(metrics, bucket_count);
        if flat.len() != expected {
            return Err(bad(format!(
                "{} values where {metrics} metrics and {bucket_count} buckets take {expected}",
                flat.len()
            )));
        }
        let pair_count = metrics * metrics.saturating_sub(1) / 2;
        let mut at = HEADER_WIDTH;
        let mut take = |width: usize| {
            let slice = &flat[at..at + width];
            at += width;
            slice
        };
        let series: Vec<Series> = (0..metrics)
            .map(|_| Series::read(take(SERIES_WIDTH)))
            .collect();
        let pairs = (0..pair_count)
            .map(|_| PairSeries::read(take(PAIR_WIDTH)))
            .collect();
        let differences = (0..pair_count)
            .map(|_| PairSeries::read(take(PAIR_WIDTH)))
            .collect();
        let complete_first = take(metrics).to_vec();
        let complete_mean_offset = take(metrics).to_vec();
        let complete_comoment = take(metrics * metrics).to_vec();
        let buckets: Vec<Series> = (0..bucket_count * metrics)
            .map(|_| Series::read(take(SERIES_WIDTH)))
            .collect();
        check_counts(&series, &buckets, start, tasks, bucket_size, first_bucket).map_err(bad)?;
        Ok(RunState {
            metrics,
            start,
            tasks,
            bucket_size,
            first_bucket,
            series,
            pairs,
            differences,
            complete_count,
            complete_first,
            complete_mean_offset,
            complete_comoment,
            buckets,
        })
    }
}

/// Each bucket counts at most its tasks and each metric's count is the sum of its
/// buckets' (a state read from elsewhere: the filtering pass indexes by these counts).
fn check_counts(
    series: &[Series],
    buckets: &[Series],
    start: u64,
    tasks: u64,
    bucket_size: u64,
    first_bucket: u64,
) -> Result<(), String> {
    let metrics = series.len();
    let mut summed = vec![0u64; metrics];
    for (index, bucket) in buckets.iter().enumerate() {
        let (b, k) = (index / metrics.max(1), index % metrics.max(1));
        let global = first_bucket + b as u64;
        let span =
            ((global + 1) * bucket_size).min(start + tasks) - (global * bucket_size).max(start);
        if bucket.count > span {
            return Err(format!(
                "bucket {b} of metric {k} counts {} values in {span} tasks",
                bucket.count
            ));
        }
        summed[k] += bucket.count;
    }
    match (0..metrics).find(|&k| summed[k] != series[k].count) {
        Some(k) => Err(format!(
            "metric {k} counts {} values, its buckets {}",
            series[k].count, summed[k]
        )),
        None => Ok(()),
    }
}

/// Length of the flat body of a state over `metrics` metrics and `buckets` buckets.
pub fn flat_length(metrics: usize, buckets: usize) -> usize {
    let pairs = metrics * metrics.saturating_sub(1) / 2;
    HEADER_WIDTH
        + metrics * SERIES_WIDTH
        + 2 * pairs * PAIR_WIDTH
        + 2 * metrics
        + metrics * metrics
        + buckets * metrics * SERIES_WIDTH
}

fn differences(values: &[f64]) -> Vec<f64> {
    values.windows(2).map(|w| w[1] - w[0]).collect()
}

fn present(column: &[f64]) -> Vec<f64> {
    column.iter().copied().filter(|v| !v.is_nan()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SplitMix64;

    fn columns(n: usize, seed: u64) -> Vec<Vec<f64>> {
        let mut rng = SplitMix64::new(seed);
        (0..3)
            .map(|k| {
                (0..n)
                    .map(|t| {
                        let value = [0.0, 1e6, 1e9][k] + t as f64 * 0.01 + rng.next_f64();
                        if rng.next_f64() < 0.1 {
                            f64::NAN
                        } else {
                            value
                        }
                    })
                    .collect()
            })
            .collect()
    }

    fn state(columns: &[Vec<f64>], range: std::ops::Range<usize>, size: u64) -> RunState {
        let slices: Vec<&[f64]> = columns.iter().map(|c| &c[range.clone()]).collect();
        RunState::of_columns(&slices, range.len(), range.start as u64, size).unwrap()
    }

    fn assert_close(a: &[f64], b: &[f64]) {
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(b) {
            let same = (x.is_nan() && y.is_nan())
                || x == y
                || (x - y).abs() <= 1e-12 * x.abs().max(y.abs()).max(1.0);
            assert!(same, "{x} != {y}");
        }
    }

    /// The flat bodies without the `range` bounds (which depend on the merge order).
    fn statistics(state: &RunState) -> Vec<f64> {
        let mut copy = state.clone();
        for series in copy.series.iter_mut().chain(copy.buckets.iter_mut()) {
            series.range = 0.0;
        }
        copy.to_flat()
    }

    #[test]
    fn any_split_merged_in_any_order_gives_the_whole() {
        let data = columns(200, 7);
        let whole = state(&data, 0..200, 16);
        let cuts = [0, 13, 16, 17, 90, 199, 200];
        let parts: Vec<RunState> = cuts
            .windows(2)
            .map(|w| state(&data, w[0]..w[1], 16))
            .collect();
        let left = parts
            .iter()
            .skip(1)
            .fold(parts[0].clone(), |acc, p| acc.merge(p).unwrap());
        let right = parts[..parts.len() - 1]
            .iter()
            .rev()
            .fold(parts[parts.len() - 1].clone(), |acc, p| {
                p.merge(&acc).unwrap()
            });
        assert_close(&statistics(&left), &statistics(&whole));
        assert_close(&statistics(&right), &statistics(&whole));
        for (merged, exact) in left.buckets.iter().zip(&whole.buckets) {
            assert!(merged.range >= exact.range * (1.0 - 1e-12));
        }
    }

    #[test]
    fn the_flat_body_round_trips_and_bad_bodies_are_refused() {
        let data = columns(50, 3);
        let s = state(&data, 5..50, 8);
        let flat = s.to_flat();
        assert_eq!(flat.len(), flat_length(3, s.bucket_count()));
        assert_eq!(RunState::from_flat(&flat).unwrap(), s);
        assert!(RunState::from_flat(&flat[..flat.len() - 1]).is_err());
        let mut bad = flat.clone();
        bad[0] = -1.0;
        assert!(RunState::from_flat(&bad).is_err());
        let error = s.merge(&state(&data, 0..5, 8)).unwrap_err();
        assert!(error.to_string().contains("not consecutive"));
    }

    #[test]
    fn hand_worked_pair_and_complete_statistics() {
        let x = [1.0, 2.0, f64::NAN, 4.0];
        let y = [2.0, 4.0, 5.0, 8.0];
        let s = RunState::of_columns(&[&x, &y], x.len(), 0, 2).unwrap();
        let pair = s.pairs[0];
        assert_eq!(pair.count, 3);
        // x = 1, 2, 4 (mean 7/3, M2 14/3); y = 2x, so the co-moment is 2·M2 = 28/3
        assert!((pair.m2[0] - 14.0 / 3.0).abs() < 1e-14);
        assert!((pair.comoment - 28.0 / 3.0).abs() < 1e-14);
        // r = 1: y = 2x over the tasks having both
        let r = pair.comoment / (pair.m2[0] * pair.m2[1]).sqrt();
        assert!((r - 1.0).abs() < 1e-15);
        // differences (1, 2) and (2, 4)
        assert_eq!(s.differences[0].count, 2);
        assert_eq!(s.differences[0].mean_offset, [0.5, 1.0]);
        assert_eq!(s.complete_count, 3);
        assert_eq!(s.bucket_count(), 2);
        assert_eq!(s.buckets[2].count, 1); // bucket 1, metric x: only 4.0
        assert_eq!(s.buckets[3].count, 2);
    }
}
