//! Summaries of a series of values in order that merge exactly with the summary of the
//! series that follows: [`Series`] for one metric, [`PairSeries`] for two metrics over the
//! tasks having both.
//!
//! Moments merge by the pairwise update of Chan, Golub & LeVeque (1979) as Pébay (2008)
//! writes it for co-moments: with `n = n_a + n_b` and `δ = mean_b - mean_a`,
//! `mean = mean_a + δ n_b / n` and `M2 = M2_a + M2_b + δ² n_a n_b / n` (and the same with
//! `δ_x δ_y` for the co-moment). The lag-1 co-moment `Σ (x_t - mean)(x_{t+1} - mean)` is
//! re-centred on the merged mean from each side's first and last value (every centred sum
//! of a run is 0) and gains the one product across the seam.
//!
//! A mean is held as `mean_offset = mean - first` (its run's first value): δ is then
//! `(first_b - first_a) + (offset_b - offset_a)`, exact to the spread of the data rather
//! than to the size of its values, so metrics offset by 1e9 merge to the same M2 as a
//! two-pass computation of the whole (a plain mean near 1e9 carries only ~1e-7 absolute).

/// Number of f64 a [`Series`] takes in the flat layout.
pub const SERIES_WIDTH: usize = 12;
/// The field names of a [`Series`] in the flat layout.
pub const SERIES_FIELDS: [&str; SERIES_WIDTH] = [
    "count",
    "mean_offset",
    "m2",
    "lag",
    "first",
    "last",
    "min",
    "max",
    "changes",
    "non_decreasing",
    "non_increasing",
    "range",
];

/// One metric's values in task order (absent values skipped).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Series {
    pub count: u64,
    /// mean - first.
    pub mean_offset: f64,
    /// Σ (x - mean)².
    pub m2: f64,
    /// Σ (x_t - mean)(x_{t+1} - mean) over adjacent values.
    pub lag: f64,
    pub first: f64,
    pub last: f64,
    pub min: f64,
    pub max: f64,
    /// Adjacent values that differ.
    pub changes: u64,
    pub non_decreasing: bool,
    pub non_increasing: bool,
    /// An upper bound on max_j |Σ_{t<j} (x_t - mean)| (exact for a run summarised at
    /// once; a valid bound after merges). It bounds where a change point can lie; it is
    /// not one of the statistics and may differ with the merge order.
    pub range: f64,
}

impl Series {
    pub const EMPTY: Series = Series {
        count: 0,
        mean_offset: 0.0,
        m2: 0.0,
        lag: 0.0,
        first: f64::NAN,
        last: f64::NAN,
        min: f64::INFINITY,
        max: f64::NEG_INFINITY,
        changes: 0,
        non_decreasing: true,
        non_increasing: true,
        range: 0.0,
    };

    /// The summary of `values` (in order, none NaN): the sequential mean of `x - first`,
    /// then two-pass centred sums.
    pub fn of(values: &[f64]) -> Series {
        let Some((&first, &last)) = values.first().zip(values.last()) else {
            return Series::EMPTY;
        };
        let count = values.len();
        let mut sum = 0.0;
        let (mut min, mut max) = (f64::INFINITY, f64::NEG_INFINITY);
        for &value in values {
            sum += value - first;
            min = min.min(value);
            max = max.max(value);
        }
        let mean_offset = sum / count as f64;
        let (mut m2, mut lag, mut partial, mut range) = (0.0, 0.0, 0.0, 0.0f64);
        let (mut changes, mut non_decreasing, mut non_increasing) = (0, true, true);
        let mut previous: Option<(f64, f64)> = None;
        for &value in values {
            let centred = (value - first) - mean_offset;
            m2 += centred * centred;
            if let Some((before, before_centred)) = previous {
                lag += before_centred * centred;
                changes += u64::from(value != before);
                non_decreasing &= value >= before;
                non_increasing &= value <= before;
            }
            partial += centred;
            range = range.max(partial.abs());
            previous = Some((value, centred));
        }
        Series {
            count: count as u64,
            mean_offset,
            m2,
            lag,
            first,
            last,
            min,
            max,
            changes,
            non_decreasing,
            non_increasing,
            range,
        }
    }

    /// The mean (first + mean_offset; NaN when empty).
    pub fn mean(&self) -> f64 {
        self.first + self.mean_offset
    }

    /// The summary of this series followed by `next`.
    pub fn merge(&self, next: &Series) -> Series {
        if next.count == 0 {
            return *self;
        }
        if self.count == 0 {
            return *next;
        }
        let m = Moments::merge(
            Side::of(
                self.count,
                self.mean_offset,
                self.lag,
                self.first,
                self.last,
            ),
            Side::of(
                next.count,
                next.mean_offset,
                next.lag,
                next.first,
                next.last,
            ),
            self.first,
        );
        let range = (self.range + m.shift_a).max(m.shift_a + next.range + m.shift_b);
        Series {
            count: self.count + next.count,
            mean_offset: m.mean_offset,
            m2: self.m2 + next.m2 + m.delta * m.delta * m.weight,
            lag: m.lag,
            first: self.first,
            last: next.last,
            min: self.min.min(next.min),
            max: self.max.max(next.max),
            changes: self.changes + next.changes + u64::from(next.first != self.last),
            non_decreasing: self.non_decreasing && next.non_decreasing && next.first >= self.last,
            non_increasing: self.non_increasing && next.non_increasing && next.first <= self.last,
            range,
        }
    }

    pub fn write(&self, out: &mut Vec<f64>) {
        out.extend_from_slice(&[
            self.count as f64,
            self.mean_offset,
            self.m2,
            self.lag,
            self.first,
            self.last,
            self.min,
            self.max,
            self.changes as f64,
            f64::from(u8::from(self.non_decreasing)),
            f64::from(u8::from(self.non_increasing)),
            self.range,
        ]);
    }

    /// The series written by [`Series::write`] at the start of `flat` (SERIES_WIDTH values).
    pub fn read(flat: &[f64]) -> Series {
        Series {
            count: flat[0] as u64,
            mean_offset: flat[1],
            m2: flat[2],
            lag: flat[3],
            first: flat[4],
            last: flat[5],
            min: flat[6],
            max: flat[7],
            changes: flat[8] as u64,
            non_decreasing: flat[9] != 0.0,
            non_increasing: flat[10] != 0.0,
            range: flat[11],
        }
    }
}

/// One run of a merge, in the frame of the merged run's first value `origin`.
struct Side {
    count: f64,
    /// The run's mean minus `origin`, once [`Side::of`] is placed by [`Moments::merge`].
    mean_offset: f64,
    lag: f64,
    /// first - mean and last - mean of the run.
    first_dev: f64,
    last_dev: f64,
    first: f64,
}

impl Side {
    fn of(count: u64, mean_offset: f64, lag: f64, first: f64, last: f64) -> Side {
        Side {
            count: count as f64,
            mean_offset,
            lag,
            first_dev: -mean_offset,
            last_dev: (last - first) - mean_offset,
            first,
        }
    }

    /// `Σ (x_t - centre)(x_{t+1} - centre)` with `d = mean - centre`:
    /// `lag - d ((last - mean) + (first - mean)) + (count - 1) d²` (the centred sums of a
    /// run being 0).
    fn lag_about(&self, d: f64) -> f64 {
        self.lag - d * (self.last_dev + self.first_dev) + (self.count - 1.0) * d * d
    }
}

/// What two runs' moments give when merged (means relative to the first run's first
/// value).
struct Moments {
    /// mean_b - mean_a.
    delta: f64,
    /// n_a n_b / n: M2 gains δ² times this.
    weight: f64,
    /// The merged mean - first_a.
    mean_offset: f64,
    lag: f64,
    /// n_a |mean_a - mean| and n_b |mean_b - mean| (for the partial-sum bound).
    shift_a: f64,
    shift_b: f64,
}

impl Moments {
    fn merge(a: Side, b: Side, origin: f64) -> Moments {
        let (na, nb) = (a.count, b.count);
        let n = na + nb;
        // b's mean in a's frame: exact to the spread, whatever the values' size
        let mean_b = (b.first - origin) + b.mean_offset;
        let delta = mean_b - a.mean_offset;
        let mean_offset = a.mean_offset + delta * nb / n;
        let (d_a, d_b) = (a.mean_offset - mean_offset, mean_b - mean_offset);
        // the seam: (last_a - mean)(first_b - mean)
        let seam = (a.last_dev + d_a) * (b.first_dev + d_b);
        Moments {
            delta,
            weight: na * nb / n,
            mean_offset,
            lag: a.lag_about(d_a) + b.lag_about(d_b) + seam,
            shift_a: na * d_a.abs(),
            shift_b: nb * d_b.abs(),
        }
    }
}

/// `Σ ((a - first_x) - offset_x)((b - first_y) - offset_y)` over the pairs, in order (the
/// co-moment of two series whose summaries are `x` and `y`).
pub fn comoment(
    xs: impl Iterator<Item = f64>,
    ys: impl Iterator<Item = f64>,
    x: &Series,
    y: &Series,
) -> f64 {
    let mut sum = 0.0;
    for (a, b) in xs.zip(ys) {
        sum += ((a - x.first) - x.mean_offset) * ((b - y.first) - y.mean_offset);
    }
    sum
}

/// Number of f64 a [`PairSeries`] takes in the flat layout.
pub const PAIR_WIDTH: usize = 16;
/// The field names of a [`PairSeries`] in the flat layout.
pub const PAIR_FIELDS: [&str; PAIR_WIDTH] = [
    "count",
    "mean_offset_x",
    "mean_offset_y",
    "m2_x",
    "m2_y",
    "comoment",
    "lag_x",
    "lag_y",
    "first_x",
    "first_y",
    "last_x",
    "last_y",
    "min_x",
    "min_y",
    "max_x",
    "max_y",
];

/// Two metrics over the tasks having both, in task order.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PairSeries {
    pub count: u64,
    /// mean - first, per metric.
    pub mean_offset: [f64; 2],
    pub m2: [f64; 2],
    /// Σ (x - mean_x)(y - mean_y).
    pub comoment: f64,
    pub lag: [f64; 2],
    pub first: [f64; 2],
    pub last: [f64; 2],
    pub min: [f64; 2],
    pub max: [f64; 2],
}

impl PairSeries {
    pub const EMPTY: PairSeries = PairSeries {
        count: 0,
        mean_offset: [0.0; 2],
        m2: [0.0; 2],
        comoment: 0.0,
        lag: [0.0; 2],
        first: [f64::NAN; 2],
        last: [f64::NAN; 2],
        min: [f64::INFINITY; 2],
        max: [f64::NEG_INFINITY; 2],
    };

    /// The summary of the pairs `(xs[t], ys[t])` in order (same lengths, none NaN).
    pub fn of(xs: &[f64], ys: &[f64]) -> PairSeries {
        let count = xs.len().min(ys.len());
        if count == 0 {
            return PairSeries::EMPTY;
        }
        let (xs, ys) = (&xs[..count], &ys[..count]);
        let (x, y) = (Series::of(xs), Series::of(ys));
        let comoment = comoment(xs.iter().copied(), ys.iter().copied(), &x, &y);
        PairSeries::joint(&x, &y, comoment)
    }

    /// The pairs of two complete series of one length, from their summaries and their
    /// co-moment `Σ (x - mean_x)(y - mean_y)` (what [`PairSeries::of`] computes).
    pub fn joint(x: &Series, y: &Series, comoment: f64) -> PairSeries {
        PairSeries {
            count: x.count,
            mean_offset: [x.mean_offset, y.mean_offset],
            m2: [x.m2, y.m2],
            comoment,
            lag: [x.lag, y.lag],
            first: [x.first, y.first],
            last: [x.last, y.last],
            min: [x.min, y.min],
            max: [x.max, y.max],
        }
    }

    /// The summary of these pairs followed by `next`.
    pub fn merge(&self, next: &PairSeries) -> PairSeries {
        if next.count == 0 {
            return *self;
        }
        if self.count == 0 {
            return *next;
        }
        let mut merged = PairSeries::EMPTY;
        merged.count = self.count + next.count;
        let mut deltas = [0.0; 2];
        let mut weight = 0.0;
        for (k, delta) in deltas.iter_mut().enumerate() {
            let m = Moments::merge(
                Side::of(
                    self.count,
                    self.mean_offset[k],
                    self.lag[k],
                    self.first[k],
                    self.last[k],
                ),
                Side::of(
                    next.count,
                    next.mean_offset[k],
                    next.lag[k],
                    next.first[k],
                    next.last[k],
                ),
                self.first[k],
            );
            *delta = m.delta;
            weight = m.weight;
            merged.mean_offset[k] = m.mean_offset;
            merged.m2[k] = self.m2[k] + next.m2[k] + m.delta * m.delta * m.weight;
            merged.lag[k] = m.lag;
            merged.first[k] = self.first[k];
            merged.last[k] = next.last[k];
            merged.min[k] = self.min[k].min(next.min[k]);
            merged.max[k] = self.max[k].max(next.max[k]);
        }
        merged.comoment = self.comoment + next.comoment + deltas[0] * deltas[1] * weight;
        merged
    }

    pub fn write(&self, out: &mut Vec<f64>) {
        out.extend_from_slice(&[
            self.count as f64,
            self.mean_offset[0],
            self.mean_offset[1],
            self.m2[0],
            self.m2[1],
            self.comoment,
            self.lag[0],
            self.lag[1],
            self.first[0],
            self.first[1],
            self.last[0],
            self.last[1],
            self.min[0],
            self.min[1],
            self.max[0],
            self.max[1],
        ]);
    }

    /// The pairs written by [`PairSeries::write`] at the start of `flat`.
    pub fn read(flat: &[f64]) -> PairSeries {
        PairSeries {
            count: flat[0] as u64,
            mean_offset: [flat[1], flat[2]],
            m2: [flat[3], flat[4]],
            comoment: flat[5],
            lag: [flat[6], flat[7]],
            first: [flat[8], flat[9]],
            last: [flat[10], flat[11]],
            min: [flat[12], flat[13]],
            max: [flat[14], flat[15]],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12 * a.abs().max(b.abs()).max(1.0)
    }

    #[test]
    fn a_hand_worked_series() {
        // 1, 2, 4, 4: mean 2.75; deviations -1.75, -0.75, 1.25, 1.25
        let s = Series::of(&[1.0, 2.0, 4.0, 4.0]);
        assert_eq!(s.count, 4);
        assert_eq!(s.mean(), 2.75);
        assert!(close(s.m2, 3.0625 + 0.5625 + 1.5625 + 1.5625));
        assert!(close(s.lag, 1.3125 - 0.9375 + 1.5625));
        assert_eq!((s.first, s.last, s.min, s.max), (1.0, 4.0, 1.0, 4.0));
        assert_eq!(s.changes, 2);
        assert!(s.non_decreasing && !s.non_increasing);
        assert!(close(s.range, 2.5));
    }

    #[test]
    fn merging_two_halves_equals_the_whole() {
        let values = [3.0, -1.0, 4.0, 1.0, -5.0, 9.0, 2.0, 6.0, 5.0];
        let whole = Series::of(&values);
        for cut in 0..=values.len() {
            let merged = Series::of(&values[..cut]).merge(&Series::of(&values[cut..]));
            assert_eq!(merged.count, whole.count);
            for (a, b) in [
                (merged.mean(), whole.mean()),
                (merged.m2, whole.m2),
                (merged.lag, whole.lag),
            ] {
                assert!(close(a, b), "cut {cut}: {a} != {b}");
            }
            assert_eq!(merged.changes, whole.changes);
            assert!(merged.range >= whole.range - 1e-12);
        }
        let ys: Vec<f64> = values.iter().map(|v| v * v - 2.0 * v).collect();
        let whole = PairSeries::of(&values, &ys);
        let merged =
            PairSeries::of(&values[..4], &ys[..4]).merge(&PairSeries::of(&values[4..], &ys[4..]));
        assert!(close(merged.comoment, whole.comoment));
        assert!(close(merged.lag[1], whole.lag[1]));
    }
}
