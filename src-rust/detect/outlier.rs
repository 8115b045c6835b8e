//! Outlier tasks (SPEC §6 `OUTLIER`, amended by §12): the scale is chosen per metric, every
//! outlier has a finite `severity` (an equivalent Gaussian z).
//!
//! Per metric with >= [`MIN_OUTLIER_VALUES`] present values, one of five scales:
//! - [`SCALE_COUNT`] — non-negative integers with at most [`COUNT_MAX_DISTINCT`] distinct
//!   values, or with MAD = 0 (retry counts, flags): the geometric tail probability
//!   `P(X >= x) = (μ / (1 + μ))^x` with μ the mean (a geometric law has a heavier tail than
//!   the Poisson of the same mean, so it errs on the quiet side), Bonferroni-corrected over
//!   the metric's m values: an outlier when `m · P(X >= x) < COUNT_FAMILY_ALPHA`, upper
//!   side only; `severity` = the Gaussian z of the same upper tail, `Φ⁻¹(1 − P)` by
//!   Acklam's (2003) rational approximation of the normal quantile.
//! - [`SCALE_LOG`] — every value > 0, >= [`MIN_MEDCOUPLE_VALUES`] values, and either
//!   clearly right-skewed (medcouple MC(x) > [`LOG_SCALE_MEDCOUPLE`]: upper side only, a
//!   latency cannot be "too fast" by a log-normal's spread) or mildly right-skewed (MC(x) >=
//!   [`LOG_SCALE_TIE_MEDCOUPLE`]: both sides): the skew-adjusted modified z below on `ln x`.
//!   (The mildly skewed metric once kept the raw scale when its log was not more symmetric,
//!   |MC(ln x)| >= |MC(x)|; the medcouple of 512 order statistics has a noise of ± 0.034 at
//!   1,000 values, so 5.5% of log-normal σ 0.3 metrics kept the raw scale and had 3.8 false
//!   outliers each, at true log z of 2.5–3.8: 0.33 false outliers per clean metric against
//!   the nominal 0.1; now 0.125.) Below that, the metric is
//!   symmetric within the medcouple's noise and keeps the raw scale (the log scale would
//!   stretch its lower tail: a Gaussian value 4.5 sd below the median is 4.9 log-sd below).
//!   The second case is the mildly skewed metric (a log-normal of σ 0.1–0.3 has MC 0.03–0.15,
//!   within the medcouple's sampling noise of a symmetric one): on the raw scale its upper
//!   tail is longer than the fence assumes (a raw z of 4.1 is a log z of 3.3 at σ 0.12), on
//!   the log scale it is symmetric; a symmetric metric of small spread reads the same on
//!   both scales, and keeps both sides. Its lower side is read on the raw scale (the raw
//!   modified z, no skew adjustment at |MC| < 0.1): the log stretches a lower tail, and a
//!   symmetric metric taken for a mildly skewed one (an AR(1) CPU series, whose medcouple
//!   is noisy: its values are few independent ones) had readings 3.5–4 sd below its median
//!   flagged at log-scale severities 4.5–5.4; a log-normal's lower tail is lighter than the
//!   raw fence assumes, so its lower side only gets quieter.
//! - [`SCALE_RAW`] — otherwise: the skew-adjusted modified z on x, both sides.
//! - [`SCALE_EXCESS`] — not counts, and the smallest value holds at least [`FLOOR_SHARE`]
//!   (1/20) of the values and [`FLOOR_MIN`] (3) of them, or it is 0 on at least
//!   [`ZERO_FLOOR_SHARE`] (1/100) of them under mildly right-skewed positive values, or
//!   on any number under clearly right-skewed ones (the positives' medcouple, from 20 of
//!   them, at least [`LOG_SCALE_TIE_MEDCOUPLE`], above [`LOG_SCALE_MEDCOUPLE`]: the log
//!   scale would read them, and a 0 has no logarithm; under symmetric ones a 0 is an
//!   outlier), or
//!   MAD = 0 with no value below the median: a metric at a floor
//!   (an error rate per window, zero in most windows with few requests; a retransmitted
//!   byte count; a queue wait, 0 on half the windows of a busy hour). Its excess over the
//!   floor `e = x - min x` is read as a hurdle model when at least
//!   [`HURDLE_MIN_POSITIVES`] values lie above the floor: `P(E >= e) = (c / m) · Q(k,
//!   (e - low) / θ)` for e > 0, with c of the m values above the floor, Q the regularized
//!   upper incomplete gamma function, low the smallest positive excess (their own lower
//!   bound: one error in a window's requests, one packet) and the gamma law whose mean and
//!   variance are those of the c distances from it (`k = mean² / var`, at most
//!   [`HURDLE_MAX_SHAPE`], `θ = mean / k`; the method of moments; a two-part model in the
//!   manner of Mullahy 1986). The law of the values above the floor is thus their own: an
//!   exponential excess (k ≈ 1) keeps an exponential tail, a log-normal or Weibull one a
//!   heavier tail (k < 1), and an error rate whose windows with errors mostly hold one has
//!   a spike at its lower bound and a tail of a few windows with two or three (k < 1 above
//!   it), so a burst of 11 errors in 220 requests is still an outlier and a window of three
//!   errors is not (a law fitted to the excesses themselves, k ≈ 20 at λ 0.1, flagged
//!   those). The log-normal law of the c values (mean and standard deviation of their
//!   logarithms) replaces the gamma law when its likelihood over them is the larger
//!   ([`log_normal_if_better`]): a GC pause or a latency over a floor is log-normal, and
//!   the gamma law of its mean and variance has too light a tail (σ 1: 0.4–0.8 false
//!   outliers per metric of 1,000 values, 0.0–0.2 with the choice). With fewer positives, the
//!   exponential law's prediction from their count n and mean x̄, `P(E >= e) = (1 + e /
//!   (n x̄))^(-n)` ([`ExcessLaw`]). The law is fitted without up to three of the largest
//!   excesses that stand out ([`hurdle_law`]). Either way Bonferroni over the metric's
//!   values as for counts (an outlier when `m · P < COUNT_FAMILY_ALPHA`), upper side only.
//!   The exponential tail with the mean excess over all values, zeros included, which this
//!   replaces, read a continuous excess against a mean that the floor's zeros shrink: 9–135
//!   false outliers per metric of 1,000–5,000 values with an exponential excess on 10–30%
//!   of them (0.0–0.9 now), and every one of a few rare positives stood out
//!   (`benches/RESULTS.md`).
//! - [`SCALE_MEAN_DEVIATION`] — MAD = 0 but not counts (raw or log scale as above): the
//!   modified z with `1.253314 · 0.6745 · MeanAD` in place of the MAD and no skew
//!   adjustment, i.e. `|y − median| / (1.253314 · MeanAD)` (the mean absolute deviation's
//!   fallback of the modified z; Iglewicz & Hoaglin 1993).
//!
//! The skew-adjusted modified z (Iglewicz & Hoaglin 1993; skew adjustment of Hubert &
//! Vandervieren 2008): `z = 0.6745 · |y − median| / (MAD · f)` with the side factor f from
//! the medcouple MC (Brys, Hubert & Struyf 2004) of y, clipped to ±0.6 (0 below
//! [`MIN_MEDCOUPLE_VALUES`] values, and when |MC| < [`MIN_SKEW_MEDCOUPLE`]): on the heavy side (above the median for MC > 0, below
//! it for MC < 0) `f = e^{3 |MC|}`, the widening of the adjusted boxplot's fences; on the
//! light side f = 1 (see [`side_factors`]). The medcouple is computed exactly on at most
//! [`MEDCOUPLE_SAMPLE`] evenly spaced order statistics of the present values (ranks
//! `i · m / k`: [`quantile_sample`], the same in any task order), over the pairs x_i <= median <= x_j with x_i < x_j (pairs of values
//! both equal to the median are left out; the sign kernel of Brys et al. is symmetric over
//! them). No full sort: the medians and order statistics are selections (O(m log k)).
//! When the order statistics have ties (a metric recorded in whole units), the medcouple is
//! the one farther from 0 of theirs and of the same ranks read off the mid-quantile
//! function (Parzen 2004; [`mid_quantile_sample`], which sorts the pool): ties at the median
//! pull the first to 0, ties at a floor pull the second toward it ([`skew`]). With such
//! ties the MAD (of the scale read, and of the raw lower side of a mildly skewed metric) is
//! at least the mid-quantile median of the distances ([`mid_median`]): in whole units it is
//! whole or half (3 for integers of normal spread 5, where the spread gives 3.37), and the
//! fence flagged 0.6 values per 3,000 against the nominal 0.1; now 0.05.
//!
//! The fence (scales raw, log, mean deviation) is [`fence`]`(z_threshold, s · m)` =
//! max(z_threshold, Φ⁻¹(1 − [`FENCE_FAMILY_ALPHA`] / (s · m))), s the number of sides read
//! (2, or 1 for the upper side alone: a two-sided read at Φ⁻¹(1 − α / m) expected 0.2 false
//! outliers of an iid Gaussian metric, not 0.1): the modified z is an equivalent
//! Gaussian z, so a fixed 3.5 flags m · 2.3e-4 clean values of a metric (1.2 of 5,000 runs of a
//! CI export), and the Bonferroni bound keeps the expected number of false outliers of a
//! metric (or of a segment) at or below 0.1 whatever its length — the multiplicity
//! correction of a tail test (Iglewicz & Hoaglin 1993 §5; the count scale does the same at
//! [`COUNT_FAMILY_ALPHA`]). Every (task, metric) with `severity > fence` or with the
//! Bonferroni count tail below [`COUNT_FAMILY_ALPHA`] (counts) is returned; `deviation` is
//! `x − median(x)` in the metric's units.
//!
//! **Modes** ([`read_mode`], the z scales): values past the fence on one side that are many
//! (at least [`MODE_SHARE`] of the metric's values and [`MODE_MIN_VALUES`]) and tight (their
//! z's MAD at most [`MODE_SPREAD`] robust standard deviations) are a second mode of the
//! metric — a runner pool twice as slow on 5% of a CI export's builds — not outliers. Each
//! is read against the mode instead, `0.6745 (z − median) / max(MAD, 0.6745)` above the
//! mode's median, and flagged past [`fence`]`(z_threshold, s · n)` (n the mode's values:
//! the tail of a mode of weight n / m, Bonferroni over the m values). Scattered values
//! past the fence (hiccups of 3–8×) have a wide z spread and stay outliers one by one.
//!
//! **Runs** ([`run_flags`], every scale, >= [`MIN_RUN_VALUES`] values; the count and
//! excess scales read their tail z, Φ⁻¹(1 − P) above the median, upper side only: a retry
//! storm over a few consecutive tasks): a burst of a few
//! consecutive tasks (a stalled dependency) stands out together where no value does alone.
//! A window of k = 2..=[`RUN_LONGEST`] consecutive tasks on one side whose smallest z has r
//! values of that side at or above it (itself and the window's others among them) holds
//! values of that set with the permutation probability `Π_{j<k} (r − j) / (m − j)` — exact
//! for exchangeable values whatever their distribution (an atom such as the zero-error
//! windows of an error rate counts every tie: a Gaussian tail took six such windows in a
//! row for a run of z 1.4). It is significant when `z_run = Φ⁻¹(1 − RUN_LONGEST · that)`
//! exceeds `max(z_threshold, Φ⁻¹(1 − RUN_FAMILY_ALPHA / (s · m)))`: Bonferroni over the
//! starts, sides and the 7 window lengths (counted as 8: at most 0.0175 expected false runs
//! per metric). The smallest share of a pair is 2 / (m (m − 1)), so a pair stands out only
//! from 802 values (one side read) or 1,602 (two); longer windows from fewer. Within each
//! run of linked values (consecutive tasks, each with few enough of its side above it to be
//! in some significant window: [`most_shared`]) the significant window with the largest
//! `Σz / √k` is flagged (a weak member inside a burst adds to it, a neighbour below about
//! half the burst's mean z does not), and the rest of the run on each side is searched
//! again ([`Ranked::chosen_windows`]). Members get `severity = max(z, z_run)` and their
//! `run_length` k (1 for a value flagged alone). Consecutive values of an autocorrelated
//! metric are not exchangeable: no run is read when the lag-1 autocorrelation of the signed
//! z clipped to ±[`RUN_CLIP`], or of its size (a spread that clusters: the phases pooled in
//! one group of a daily cycle), is at least [`RUN_RHO_SIGMAS`] / √m. A burst moves those
//! statistics too: 5 tasks of 100 values about 0.16 against the bound 0.3, but 8 tasks 0.28
//! and 12 tasks 0.40, so long bursts in short metrics are not read as runs (a second
//! reader's measure, +5 sd bursts: 8 tasks read in 24% of metrics of 100 values, 62% of 200,
//! 96% of 1,000; 12 tasks in 0.5%, 12%, 90%). The check misses weak dependence in short
//! metrics: AR(1) 0.2 gives runs on 4.3% of metrics of 100 values, 3.6% of 150, 1.7% of
//! 300 (4,000 series each).

use rayon::prelude::*;

use super::shared::columns::column_length;
use std::borrow::Cow;

use super::shared::ranks::{median_and_mad, median_in_place};
use super::PERMUTATION_SEED;
use super::{Detector, Table};
use crate::args::{Budget, DefaultValue, ParamSpec, Params};
use crate::error::CoreResult;
use crate::rng::splitmix64_output;
use crate::stats::{
    ln_gamma, ln_gamma_q, mean_and_sum_of_squares, normal_quantile, normal_quantile_tail,
    sequential_sum,
};

/// The registry entry.
pub const DETECTOR: Detector = Detector {
    name: "outlier",
    kind: "outlier",
    fields: FIELDS,
    params: &[
        ParamSpec {
            name: "z_threshold",
            default: DefaultValue::Float(3.5),
        },
        ParamSpec {
            name: "family",
            default: DefaultValue::Int(0),
        },
    ],
    run,
};

/// The result fields: one entry per flagged (task, metric) (`task`, `metric`, `severity`,
/// `deviation`, `run_length`), and one per metric (`scale`), see [`Outliers`].
pub const FIELDS: &[&str] = &[
    "task",
    "metric",
    "severity",
    "deviation",
    "run_length",
    "scale",
];

fn run(columns: &[&[f64]], params: &Params, budget: &Budget) -> CoreResult<Table> {
    let z_threshold = params.finite("z_threshold", 0.0, false)?;
    let family = params.count("family", 0)?;
    Ok(outlier_scores(columns, z_threshold, family, budget)?.table())
}

const STAGE: &str = "outlier";

/// The consistency constant of the robust z-score (Φ⁻¹(3/4)).
pub const ROBUST_Z_FACTOR: f64 = 0.6745;
/// The consistency constant of the mean absolute deviation (√(π/2)).
pub const MEAN_DEVIATION_FACTOR: f64 = 1.253314;
/// A metric needs this many present values to be scored.
pub const MIN_OUTLIER_VALUES: usize = 3;
/// Non-negative integers with at most this many distinct values are counts.
pub const COUNT_MAX_DISTINCT: usize = 16;
/// The family-wise level of the count tail test (Bonferroni over the metric's values).
pub const COUNT_FAMILY_ALPHA: f64 = 0.01;
/// Positive values with a medcouple above this are scored on the log scale, upper side only.
pub const LOG_SCALE_MEDCOUPLE: f64 = 0.1;
/// Positive values with a medcouple below this keep the raw scale. On 512 order statistics
/// the medcouple of a Gaussian of 1,000–6,000 values is 0 ± 0.015–0.026 (2–4% of them at
/// or above 0.03), of a log-normal of σ 0.12 0.054 ± 0.018 (96%).
pub const LOG_SCALE_TIE_MEDCOUPLE: f64 = 0.03;
/// The family-wise level of the fence of the z scales (Bonferroni over a metric's values).
pub const FENCE_FAMILY_ALPHA: f64 = 0.1;
/// Acklam's tail region: [`upper_tail_z`] takes upper tail probabilities below this.
pub const TAIL_REGION: f64 = 0.02425;
/// The medcouple is computed on a systematic sample of at most this many values.
pub const MEDCOUPLE_SAMPLE: usize = 512;
/// Below this many values the medcouple is not computed (taken as 0: no log scale, no
/// skew adjustment): with a handful of values it is decided by the outlier itself.
pub const MIN_MEDCOUPLE_VALUES: usize = 20;
/// |MC| below this is taken as 0 (no skew adjustment): the sampling noise of the medcouple
/// of a symmetric metric on 512 values is about ±0.04.
pub const MIN_SKEW_MEDCOUPLE: f64 = 0.1;
/// |MC| is clipped to this (the range the adjusted boxplot was calibrated on).
pub const MAX_MEDCOUPLE: f64 = 0.6;

/// A metric at its floor with at least this many values above it reads their excess as a
/// gamma law of its own; with fewer, by the exponential law's prediction ([`ExcessLaw`]).
pub const HURDLE_MIN_POSITIVES: usize = 20;
/// A metric whose smallest value holds at least this share (numerator, denominator) of its
/// values (and at least [`FLOOR_MIN`] of them) is read at that floor ([`SCALE_EXCESS`]), not by a modified z: with a floor on
/// 40–50% of the values the median sits just above it and the MAD collapses onto the
/// floor's distance (zeros and an exponential excess, 1,000 values: 1.2 and 139 false
/// outliers per metric on the raw scale, 0.02 and 0.12 read at the floor), and with a floor
/// on 10% a log-normal excess cannot be read on the log scale (6.4 per metric, 0.75).
pub const FLOOR_SHARE: (usize, usize) = (1, 20);
/// A non-negative metric that is 0 on at least this share of its values (and on at least
/// [`FLOOR_MIN`] of them), under positive values the log scale would read (their
/// medcouple at least [`LOG_SCALE_TIE_MEDCOUPLE`]; any number of zeros when it is above
/// [`LOG_SCALE_MEDCOUPLE`]), is read at that floor too: the log scale cannot read a 0,
/// and on the raw scale a log-normal excess's upper tail stands out (3% zeros, 1,000
/// values: 6.5 false outliers per metric with σ 1, 2.5 with σ 0.3; 0.7 and 0.02 read at
/// the floor; a latency in whole milliseconds whose fastest requests round to 0 is such a
/// metric).
pub const ZERO_FLOOR_SHARE: (usize, usize) = (1, 100);
/// A floor ([`FLOOR_SHARE`], [`ZERO_FLOOR_SHARE`]) is a value that at least this many of
/// the metric's values take: one smallest value, or two, is no floor.
pub const FLOOR_MIN: usize = 3;
/// The gamma law of the excesses is fitted without up to this many of the largest, those
/// that stand out ([`hurdle_law`]).
pub const HURDLE_MAX_OUTLIERS: usize = 3;
/// The gamma law of the excesses has at most this shape (their spread is read as at least
/// 1% of their mean; the incomplete gamma function converges in O(√shape) steps).
pub const HURDLE_MAX_SHAPE: f64 = 1e4;

/// Scale codes of the `scale` field (-1: fewer than 3 values, not scored).
pub const SCALE_RAW: i64 = 0;
pub const SCALE_LOG: i64 = 1;
pub const SCALE_COUNT: i64 = 2;
pub const SCALE_MEAN_DEVIATION: i64 = 3;
pub const SCALE_EXCESS: i64 = 4;
pub const SCALE_NONE: i64 = -1;

/// Every flagged (task, metric), sorted by task then metric (the four vectors are
/// parallel), and each metric's scale.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outliers {
    /// Task index (position in recording order).
    pub task: Vec<i64>,
    /// Metric index (row of `columns`).
    pub metric: Vec<i64>,
    /// The equivalent Gaussian z (finite).
    pub severity: Vec<f64>,
    /// `x - median`, in the metric's units.
    pub deviation: Vec<f64>,
    /// The length of the run of consecutive tasks it was flagged in (1: on its own).
    pub run_length: Vec<i64>,
    /// Per metric: the scale code it was scored on.
    pub scale: Vec<i64>,
}

impl Outliers {
    /// The outliers as a table of [`FIELDS`].
    pub fn table(self) -> Table {
        Table::new()
            .with("task", self.task)
            .with("metric", self.metric)
            .with("severity", self.severity)
            .with("deviation", self.deviation)
            .with("run_length", self.run_length)
            .with("scale", self.scale)
    }
}

/// (task, metric, severity, deviation, run length).
type Flag = (usize, usize, f64, f64, usize);

/// The outliers of every metric (see the module documentation). `z_threshold` finite and
/// positive (checked by the caller). `family`: the number of values the Bonferroni
/// corrections count, at least each metric's own (0: its own; the whole metric's when
/// `columns` is one of its segments). Metrics run in parallel.
pub fn outlier_scores(
    columns: &[&[f64]],
    z_threshold: f64,
    family: usize,
    budget: &Budget,
) -> CoreResult<Outliers> {
    column_length(columns)?;
    let per_metric: Vec<(i64, Vec<Flag>)> = columns
        .par_iter()
        .enumerate()
        .map(|(metric, column)| {
            budget.check(STAGE)?;
            Ok(metric_outliers(metric, column, z_threshold, family))
        })
        .collect::<CoreResult<_>>()?;
    let scale = per_metric.iter().map(|(scale, _)| *scale).collect();
    let mut flagged: Vec<Flag> = per_metric.into_iter().flat_map(|(_, f)| f).collect();
    flagged.sort_unstable_by_key(|&(task, metric, ..)| (task, metric));
    let mut outliers = Outliers {
        scale,
        ..Outliers::default()
    };
    for (task, metric, severity, deviation, run_length) in flagged {
        outliers.task.push(task as i64);
        outliers.metric.push(metric as i64);
        outliers.severity.push(severity);
        outliers.deviation.push(deviation);
        outliers.run_length.push(run_length as i64);
    }
    Ok(outliers)
}

/// One metric's scale and its outliers in task order.
fn metric_outliers(
    metric: usize,
    column: &[f64],
    z_threshold: f64,
    family: usize,
) -> (i64, Vec<Flag>) {
    let present: Vec<f64> = column.iter().copied().filter(|v| !v.is_nan()).collect();
    let m = present.len();
    if m < MIN_OUTLIER_VALUES {
        return (SCALE_NONE, Vec::new());
    }
    let family = family.max(m);
    let (center, mad) = median_and_mad(&present);
    let tail = Tail {
        center,
        family,
        z_threshold,
    };
    if is_count(&present, mad) {
        let mean = sequential_sum(&present) / m as f64;
        if mean <= 0.0 {
            return (SCALE_COUNT, Vec::new());
        }
        let log_ratio = (mean / (1.0 + mean)).ln();
        // ln P(X >= value)
        return (
            SCALE_COUNT,
            tail.flags(metric, column, &|value| value * log_ratio),
        );
    }
    // At its floor on many tasks (its smallest value on at least FLOOR_SHARE of them; or
    // MAD 0 with nothing below the median): the excess over the floor as a hurdle model.
    let floor = present.iter().copied().fold(f64::INFINITY, f64::min);
    let at_floor = present.iter().filter(|&&v| v == floor).count();
    // an atom: at least FLOOR_MIN values, and its share
    let share = |(num, den): (usize, usize)| at_floor >= FLOOR_MIN && at_floor * den >= m * num;
    let excess = |floor: f64| {
        (
            SCALE_EXCESS,
            floor_flags(metric, column, &present, floor, &tail),
        )
    };
    if (mad == 0.0 && floor == center) || share(FLOOR_SHARE) {
        return excess(floor);
    }
    // Skewness needs enough values to be judged: fewer, the plain modified z on x.
    let skew_known = m >= MIN_MEDCOUPLE_VALUES;
    let (sample, mid) = skew_samples(&present, skew_known);
    let positive = present.iter().all(|&v| v > 0.0);
    if floor == 0.0 && skew_known {
        // Values at 0 under positive values the log scale would read (a latency's fastest
        // requests recorded as 0 ms): no logarithm of 0, and the raw scale reads the upper
        // tail as outliers. Read at the floor 0, whose excess takes its own law: any
        // number of zeros under clearly right-skewed positive values, 0 on ZERO_FLOOR_SHARE
        // of the values (and FLOOR_MIN) under mildly skewed ones. Under symmetric ones a
        // 0 is an outlier (a failed reading of a utilisation). The skew is the positive
        // values' (the zeros' ties pull the medcouple's mid-quantile reading up: 0.105 for
        // 400 Gaussian values with three at 0).
        let positives: Vec<f64> = present.iter().copied().filter(|&v| v > 0.0).collect();
        if positives.len() >= MIN_MEDCOUPLE_VALUES {
            let (sample, mid) = skew_samples(&positives, true);
            let mc = skew(&sample, mid.as_deref(), &|v| v);
            if mc > LOG_SCALE_MEDCOUPLE
                || (mc >= LOG_SCALE_TIE_MEDCOUPLE && share(ZERO_FLOOR_SHARE))
            {
                return excess(0.0);
            }
        }
    }
    // (log scale, upper side only) — see the module documentation.
    let (log_scale, upper_only) = if skew_known && positive {
        let raw_mc = skew(&sample, mid.as_deref(), &|v| v);
        if raw_mc > LOG_SCALE_MEDCOUPLE {
            (true, true)
        } else if raw_mc >= LOG_SCALE_TIE_MEDCOUPLE {
            (true, false) // mildly skewed: log scale above the median, raw below
        } else {
            (false, false)
        }
    } else {
        (false, false)
    };
    let transform = |value: f64| if log_scale { value.ln() } else { value };
    let (scale, transformed): (i64, Cow<[f64]>) = if log_scale {
        (
            SCALE_LOG,
            Cow::Owned(present.iter().map(|v| v.ln()).collect()),
        )
    } else {
        (SCALE_RAW, Cow::Borrowed(present.as_slice()))
    };
    let (y_center, y_mad) = median_and_mad(&transformed);
    // In whole units the MAD is whole or half too (3 where the spread gives 3.37): with
    // ties, at least the mid-quantile median of the distances.
    let widened = |values: &[f64], center: f64, mad: f64| -> f64 {
        if mid.is_none() || mad <= 0.0 {
            return mad;
        }
        let distance: Vec<f64> = values.iter().map(|&v| (v - center).abs()).collect();
        mad.max(mid_median(&distance))
    };
    let y_mad = widened(&transformed, y_center, y_mad);
    let (scale, y_mad, (upper, lower)) = if y_mad > 0.0 {
        let mc = if skew_known {
            skew(&sample, mid.as_deref(), &transform).clamp(-MAX_MEDCOUPLE, MAX_MEDCOUPLE)
        } else {
            0.0
        };
        // Within the medcouple's sampling noise of a symmetric metric: no adjustment.
        let mc = if mc.abs() < MIN_SKEW_MEDCOUPLE {
            0.0
        } else {
            mc
        };
        (scale, y_mad, side_factors(mc))
    } else {
        // MAD = 0: the mean absolute deviation in its place, no skew adjustment.
        let distance: Vec<f64> = transformed.iter().map(|&v| (v - y_center).abs()).collect();
        let mean_deviation = sequential_sum(&distance) / m as f64;
        let spread = MEAN_DEVIATION_FACTOR * ROBUST_Z_FACTOR * mean_deviation;
        (SCALE_MEAN_DEVIATION, spread, (1.0, 1.0))
    };
    if y_mad == 0.0 {
        return (scale, Vec::new());
    }
    // Each side read is a test of every value: both sides double the Bonferroni family.
    let threshold = fence(z_threshold, if upper_only { family } else { 2 * family });
    // A mildly skewed metric on the log scale reads its lower side on the raw scale.
    let raw_lower = scale == SCALE_LOG && !upper_only;
    let mad = if raw_lower {
        widened(&present, center, mad)
    } else {
        mad
    };
    // Every present value's z on its side (upward: above the scale's median; a side not
    // read still has its z, which the run test's dependence check reads).
    let mut read = Readings::with_capacity(m);
    for (task, &value) in column.iter().enumerate() {
        if value.is_nan() {
            continue;
        }
        let offset = transform(value) - y_center;
        let score = if offset > 0.0 {
            ROBUST_Z_FACTOR * offset / (y_mad * upper)
        } else if raw_lower && mad <= 0.0 {
            0.0
        } else if raw_lower {
            ROBUST_Z_FACTOR * (center - value) / mad
        } else {
            ROBUST_Z_FACTOR * -offset / (y_mad * lower)
        };
        // A subnormal MAD can overflow the ratio: the severity stays finite. An offset or
        // MAD beyond the largest float makes z no number: no outlier (as in the NumPy twin).
        let z = if score.is_nan() {
            score
        } else {
            score.min(f64::MAX)
        };
        let up = offset > 0.0;
        let alone = z > threshold && (up || !upper_only);
        read.push(task, z, up, if alone { z } else { 0.0 });
    }
    let sides = if upper_only { 1 } else { 2 };
    for up in [true, false].into_iter().take(sides) {
        let past: Vec<usize> = (0..m)
            .filter(|&i| read.severity[i] > 0.0 && read.upward[i] == up)
            .collect();
        read_mode(&read.z, &past, (z_threshold, sides), &mut read.severity);
    }
    let found = read.flags(metric, column, &tail, upper_only);
    (scale, found)
}

/// Values past the fence on one side, at least this share of a metric's values ...
pub const MODE_SHARE: f64 = 0.01;
/// ... and at least this many ...
pub const MODE_MIN_VALUES: usize = 20;
/// ... whose z have a MAD of at most this many robust standard deviations (0.6745 each)
/// are a mode of the metric, not outliers (see [`read_mode`]).
pub const MODE_SPREAD: f64 = 2.0;

/// Reads the values past the fence on one side (`past`: positions into `z`) as a mode when
/// they are one (at least [`MODE_SHARE`] of the values and [`MODE_MIN_VALUES`], their z's
/// MAD at most [`MODE_SPREAD`] · 0.6745): each is then scored against the mode,
/// `0.6745 (z − median) / max(MAD, 0.6745)` above its median (at or below it, none), and
/// `severity` keeps that reading where it passes [`fence`]`(z_threshold, s · n)`, else 0:
/// n the mode's values, s the `sides` read. (A value past a mode of weight w = n / m has
/// the tail probability w (1 − Φ(reading)); Bonferroni over the m values tests it at
/// α / (s m w) = α / (s n).)
fn read_mode(z: &[f64], past: &[usize], fenced: (f64, usize), severity: &mut [f64]) {
    let (z_threshold, sides) = fenced;
    let least = MODE_MIN_VALUES.max((MODE_SHARE * z.len() as f64).ceil() as usize);
    if past.len() < least {
        return;
    }
    let group: Vec<f64> = past.iter().map(|&i| z[i]).collect();
    let (center, spread) = median_and_mad(&group);
    if spread > MODE_SPREAD * ROBUST_Z_FACTOR {
        return;
    }
    let scale = spread.max(ROBUST_Z_FACTOR);
    let threshold = fence(z_threshold, sides * past.len());
    for &i in past {
        let reading = ROBUST_Z_FACTOR * (z[i] - center) / scale;
        severity[i] = if reading > threshold { reading } else { 0.0 };
    }
}

/// The longest run of consecutive tasks the run test reads (runs of 2 to this many).
pub const RUN_LONGEST: usize = 8;
/// The family-wise level of the run test (Bonferroni over a metric's values, its sides and
/// the window lengths, counted as [`RUN_LONGEST`]).
pub const RUN_FAMILY_ALPHA: f64 = 0.02;
/// The run test's dependence check reads each value's signed z clipped to ± this ...
pub const RUN_CLIP: f64 = 2.0;
/// ... and reads no run when their lag-1 autocorrelation is at least this many standard
/// errors (1 / √m) above 0.
pub const RUN_RHO_SIGMAS: f64 = 3.0;
/// A metric (or piece) with fewer present values has no run test (below it a burst moves the
/// dependence check as much as dependence does).
pub const MIN_RUN_VALUES: usize = 100;

/// The runs of consecutive tasks that stand out together (see the module documentation):
/// `(position, z_run, run length)` for every position (index into `tasks`, `z`, `upward`:
/// the present values' tasks in order, their z on their side, whether above the median)
/// in a flagged run. `family` >= the number of values.
pub fn run_flags(
    tasks: &[usize],
    z: &[f64],
    upward: &[bool],
    upper_only: bool,
    family: usize,
    z_threshold: f64,
) -> Vec<(usize, f64, usize)> {
    let m = z.len();
    if m < MIN_RUN_VALUES {
        return Vec::new();
    }
    let sides = if upper_only { 1 } else { 2 };
    let limit = (RUN_FAMILY_ALPHA / (sides * family) as f64).ln();
    let threshold = z_threshold.max(upper_tail_z(limit));
    let most = most_shared(m, limit);
    // Each side's values; after the selection, those above the floor (the eligible: at
    // most `most` values of the side at or above them) are ascending in `ranked`.
    let (mut above, mut below): (Vec<f64>, Vec<f64>) = (Vec::new(), Vec::new());
    for (&value, &up) in z.iter().zip(upward) {
        if up {
            above.push(value);
        } else if !upper_only {
            below.push(value);
        }
    }
    let mut floors = [0.0; 2];
    let mut rankings: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    for (side, values) in [above, below].iter_mut().enumerate().take(sides) {
        if values.len() > most {
            let at = values.len() - most - 1;
            values.select_nth_unstable_by(at, f64::total_cmp);
            floors[side] = values[at];
            rankings[side] = values[at + 1..]
                .iter()
                .copied()
                .filter(|&v| v > floors[side])
                .collect();
        } else {
            rankings[side] = values.iter().copied().filter(|&v| v > 0.0).collect();
        }
        rankings[side].sort_unstable_by(f64::total_cmp);
    }
    let side_of = |i: usize| usize::from(!upward[i]);
    let eligible: Vec<usize> = (0..m)
        .filter(|&i| side_of(i) < sides && z[i] > floors[side_of(i)])
        .collect();
    let mut found = Vec::new();
    let mut first = 0;
    while first < eligible.len() {
        let side = side_of(eligible[first]);
        let mut last = first;
        while last + 1 < eligible.len()
            && eligible[last + 1] == eligible[last] + 1
            && tasks[eligible[last + 1]] == tasks[eligible[last]] + 1
            && side_of(eligible[last + 1]) == side
        {
            last += 1;
        }
        if last > first {
            let run: Vec<f64> = eligible[first..=last].iter().map(|&i| z[i]).collect();
            let context = Ranked {
                ranked: &rankings[side],
                m,
                threshold,
            };
            let at = eligible[first];
            for (start, k, z_run) in context.chosen_windows(&run) {
                found.extend((start..start + k).map(|offset| (at + offset, z_run, k)));
            }
        }
        first = last + 1;
    }
    if found.is_empty() || dependent(tasks, z, upward) {
        return Vec::new();
    }
    found
}

/// Whether consecutive values are too dependent for a run to be read: the lag-1
/// autocorrelation of the signed z clipped to ±[`RUN_CLIP`], or of its size, at least
/// [`RUN_RHO_SIGMAS`] / √m (over the pairs of adjacent tasks; none: dependent). Sums in task
/// order, as the NumPy twin's.
fn dependent(tasks: &[usize], z: &[f64], upward: &[bool]) -> bool {
    let m = z.len();
    let adjacent = |i: usize| tasks[i + 1] == tasks[i] + 1;
    let pairs = (0..m - 1).filter(|&i| adjacent(i)).count();
    if pairs == 0 {
        return true;
    }
    let clipped = |i: usize| (if upward[i] { z[i] } else { -z[i] }).clamp(-RUN_CLIP, RUN_CLIP);
    let limit = RUN_RHO_SIGMAS / (m as f64).sqrt();
    [false, true].into_iter().any(|size| {
        let read = |i: usize| if size { clipped(i).abs() } else { clipped(i) };
        let mut total = 0.0;
        for i in 0..m {
            total += read(i);
        }
        let mean = total / m as f64;
        let mut squares = 0.0;
        for i in 0..m {
            let centred = read(i) - mean;
            squares += centred * centred;
        }
        let variance = squares / m as f64;
        let mut lagged = 0.0;
        for i in (0..m - 1).filter(|&i| adjacent(i)) {
            lagged += (read(i) - mean) * (read(i + 1) - mean);
        }
        let lagged = lagged / pairs as f64;
        variance.is_nan() || variance <= 0.0 || lagged / variance >= limit
    })
}

/// ln of the permutation probability that k given tasks of m all hold values among a set
/// of r (r >= k): Σ_{j<k} ln((r − j) / (m − j)).
fn ln_share(r: usize, k: usize, m: usize) -> f64 {
    let mut total = 0.0;
    for j in 0..k {
        total += ((r - j) as f64 / (m - j) as f64).ln();
    }
    total
}

/// The largest r ([`RUN_LONGEST`] ≤ r ≤ m) whose window of [`RUN_LONGEST`] tasks has
/// `RUN_LONGEST · share < e^limit`, by bisection ([`RUN_LONGEST`] − 1 when none has): a
/// value with more of its side's values at or above it is in no significant run.
fn most_shared(m: usize, limit: f64) -> usize {
    let bound = limit - (RUN_LONGEST as f64).ln();
    if m < RUN_LONGEST || ln_share(RUN_LONGEST, RUN_LONGEST, m) >= bound {
        return RUN_LONGEST - 1;
    }
    let (mut low, mut high) = (RUN_LONGEST - 1, m);
    while low < high {
        let middle = (low + high).div_ceil(2);
        if ln_share(middle, RUN_LONGEST, m) < bound {
            low = middle;
        } else {
            high = middle - 1;
        }
    }
    low
}

/// A side's eligible z ascending (`ranked`), the number of values and the run threshold.
struct Ranked<'a> {
    ranked: &'a [f64],
    m: usize,
    threshold: f64,
}

impl Ranked<'_> {
    /// The z_run of a window of `k` tasks whose smallest z is `lowest`:
    /// Φ⁻¹(1 − [`RUN_LONGEST`] · share), share the permutation probability that the k
    /// tasks all hold values among the r of the side at or above `lowest`; when above the
    /// threshold.
    fn window_z(&self, lowest: f64, k: usize) -> Option<f64> {
        let r = self.ranked.len() - self.ranked.partition_point(|&v| v < lowest);
        let log_tail = (RUN_LONGEST as f64).ln() + ln_share(r, k, self.m);
        if log_tail.is_nan() || log_tail >= TAIL_REGION.ln() {
            return None;
        }
        let z_run = upper_tail_z(log_tail);
        (z_run > self.threshold).then_some(z_run)
    }

    /// The windows flagged in `level` (one run's z): the significant window with the
    /// largest Σz / √k (on ties the shorter, then the earlier), then the same within the
    /// rest of the run on each side of it, and so on: (start, length k, z_run). Taken as
    /// the significant windows in that order, each kept unless it overlaps one kept
    /// before (the same windows; O(w log w) for w windows, where searching each rest again
    /// took time quadratic in a long run).
    fn chosen_windows(&self, level: &[f64]) -> Vec<(usize, usize, f64)> {
        let mut windows: Vec<(f64, usize, usize, f64)> = Vec::new();
        let mut lowest = level.to_vec();
        let mut sums = level.to_vec();
        for k in 2..=RUN_LONGEST.min(level.len()) {
            let count = level.len() + 1 - k;
            for i in 0..count {
                lowest[i] = lowest[i].min(level[i + k - 1]);
                sums[i] += level[i + k - 1];
            }
            for i in 0..count {
                if let Some(z_run) = self.window_z(lowest[i], k) {
                    windows.push((sums[i] / (k as f64).sqrt(), k, i, z_run));
                }
            }
        }
        windows
            .sort_unstable_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
        let mut taken = vec![false; level.len()];
        let mut chosen = Vec::new();
        for (_, k, start, z_run) in windows {
            if taken[start..start + k].iter().any(|&t| t) {
                continue;
            }
            taken[start..start + k].iter_mut().for_each(|t| *t = true);
            chosen.push((start, k, z_run));
        }
        chosen
    }
}

/// A metric's median, the Bonferroni family and the z threshold (of the run test; of the
/// count and excess scales' tail reading, [`Tail::flags`]).
struct Tail {
    center: f64,
    family: usize,
    z_threshold: f64,
}

impl Tail {
    /// The flags of a metric read by an upper tail (`log_tail(value)` = ln P(X >= value)):
    /// a value above the median alone when `family · P < COUNT_FAMILY_ALPHA` (severity
    /// Φ⁻¹(1 − P)), and the runs ([`run_flags`], upper side) of the values' tail z
    /// (Φ⁻¹(1 − P) above the median, 0 at or below it): a retry storm of a few tasks.
    fn flags(&self, metric: usize, column: &[f64], log_tail: &dyn Fn(f64) -> f64) -> Vec<Flag> {
        let log_limit = (COUNT_FAMILY_ALPHA / self.family as f64).ln();
        let mut read = Readings::with_capacity(column.len());
        for (task, &value) in column.iter().enumerate() {
            if value.is_nan() {
                continue;
            }
            let above = value > self.center;
            let log_p = log_tail(value);
            let reading = if !above {
                0.0
            } else if log_p < TAIL_REGION.ln() {
                upper_tail_z(log_p)
            } else {
                -normal_quantile(log_p.exp())
            };
            let alone = above && log_p < log_limit;
            read.push(task, reading, above, if alone { reading } else { 0.0 });
        }
        read.flags(metric, column, self, true)
    }
}

/// A metric's present values as read: their tasks (in order), z on their side, whether
/// above the median, and the severity each is flagged with on its own (0: not).
struct Readings {
    tasks: Vec<usize>,
    z: Vec<f64>,
    upward: Vec<bool>,
    severity: Vec<f64>,
}

impl Readings {
    fn with_capacity(m: usize) -> Self {
        Readings {
            tasks: Vec::with_capacity(m),
            z: Vec::with_capacity(m),
            upward: Vec::with_capacity(m),
            severity: Vec::with_capacity(m),
        }
    }

    fn push(&mut self, task: usize, z: f64, upward: bool, severity: f64) {
        self.tasks.push(task);
        self.z.push(z);
        self.upward.push(upward);
        self.severity.push(severity);
    }

    /// The flagged values: those flagged on their own (run length 1) and the runs
    /// ([`run_flags`]; a member's severity the larger of its z and the run's), in task
    /// order.
    fn flags(mut self, metric: usize, column: &[f64], tail: &Tail, upper_only: bool) -> Vec<Flag> {
        let mut length: Vec<usize> = self
            .severity
            .iter()
            .map(|&s| usize::from(s > 0.0))
            .collect();
        let runs = run_flags(
            &self.tasks,
            &self.z,
            &self.upward,
            upper_only,
            tail.family,
            tail.z_threshold,
        );
        for (position, z_run, run) in runs {
            self.severity[position] = self.z[position].max(z_run);
            length[position] = run;
        }
        (0..self.tasks.len())
            .filter(|&position| length[position] > 0)
            .map(|position| {
                let task = self.tasks[position];
                let deviation = column[task] - tail.center;
                (
                    task,
                    metric,
                    self.severity[position],
                    deviation,
                    length[position],
                )
            })
            .collect()
    }
}

/// The median of sorted values (the mean of the middle pair for even counts).
fn sorted_median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

/// Counts: non-negative integers with at most [`COUNT_MAX_DISTINCT`] distinct values, or
/// with MAD = 0.
fn is_count(values: &[f64], mad: f64) -> bool {
    if values.iter().any(|&v| v < 0.0 || v.fract() != 0.0) {
        return false;
    }
    if mad == 0.0 {
        return true;
    }
    let mut distinct: Vec<f64> = Vec::with_capacity(COUNT_MAX_DISTINCT + 1);
    for &value in values {
        if !distinct.contains(&value) {
            distinct.push(value);
            if distinct.len() > COUNT_MAX_DISTINCT {
                return false;
            }
        }
    }
    true
}

/// At most [`MEDCOUPLE_SAMPLE`] of the present values: the order statistics of ranks
/// `i * s / k` (0-based, i = 0..k; all of them when m <= 512), ascending, of the values
/// (s = m) or, above [`QUANTILE_POOL`] values, of the pool of s = 8,192 values at the
/// positions `(u_j >> 32) * m >> 32`, u_j output j of the SplitMix64 stream
/// [`PERMUTATION_SEED`]. Up to 8,192 values a function of the values alone, not of their
/// order; above, of a pseudo-random pool no regular pattern of the order aliases with. A
/// sample at evenly spaced task positions did alias (requests in completion order gave a
/// log-normal metric a medcouple of 0.09 where its values give 0.27, and the raw scale).
pub fn quantile_sample(values: &[f64]) -> Vec<f64> {
    let mut pool = quantile_pool(values);
    let s = pool.len();
    let k = s.min(MEDCOUPLE_SAMPLE);
    let ranks: Vec<usize> = (0..k).map(|i| i * s / k).collect();
    select_ranks(&mut pool, &ranks, 0);
    ranks.iter().map(|&rank| pool[rank]).collect()
}

/// Above this many values the medcouple's order statistics are those of a pool of this many.
pub const QUANTILE_POOL: usize = 8192;

/// The values [`quantile_sample`] reads: all of them up to [`QUANTILE_POOL`], else the
/// pool at SplitMix64 positions.
fn quantile_pool(values: &[f64]) -> Vec<f64> {
    let m = values.len();
    if m <= QUANTILE_POOL {
        return values.to_vec();
    }
    (0..QUANTILE_POOL as u64)
        .map(|j| {
            let u = splitmix64_output(PERMUTATION_SEED, j) >> 32;
            values[((u * m as u64) >> 32) as usize]
        })
        .collect()
}

/// The sample of [`quantile_sample`] read off the mid-quantile function of the same pool
/// (Parzen 2004; Ma, Genton & Parzen 2011): at probabilities `(i + 0.5) / k`, the linear
/// interpolation between the pool's distinct values x_j placed at their mid-distribution
/// points `(C_{j-1} + c_j / 2) / s` (c_j ties of x_j, C the counts below; the first and last
/// value beyond them). Ties become evenly spread values between their neighbours, as a
/// continuous metric recorded in whole units would have had.
pub fn mid_quantile_sample(values: &[f64]) -> Vec<f64> {
    let mut pool = quantile_pool(values);
    pool.sort_unstable_by(f64::total_cmp);
    let s = pool.len();
    let k = s.min(MEDCOUPLE_SAMPLE);
    let (mut distinct, mut mids) = (Vec::new(), Vec::new());
    let mut start = 0;
    while start < s {
        let end = start + pool[start..].partition_point(|&v| v == pool[start]);
        distinct.push(pool[start]);
        mids.push((start as f64 + (end - start) as f64 / 2.0) / s as f64);
        start = end;
    }
    (0..k)
        .map(|i| {
            let p = (i as f64 + 0.5) / k as f64;
            let at = mids.partition_point(|&q| q <= p);
            if at == 0 {
                distinct[0]
            } else if at == mids.len() {
                distinct[at - 1]
            } else {
                let (x0, x1) = (distinct[at - 1], distinct[at]);
                x0 + (p - mids[at - 1]) * (x1 - x0) / (mids[at] - mids[at - 1])
            }
        })
        .collect()
}

/// The mid-quantile median of `values` (Parzen 2004, as [`mid_quantile_sample`] reads it at
/// 1/2), in O(m): the middle order statistic v and the distinct value next to it on the
/// side of 1/2, at their mid-distribution points, interpolated linearly.
pub fn mid_median(values: &[f64]) -> f64 {
    let s = values.len();
    let mut scratch = values.to_vec();
    let (_, &mut middle, _) = scratch.select_nth_unstable_by(s / 2, f64::total_cmp);
    let below = values.iter().filter(|&&x| x < middle).count();
    let equal = values.iter().filter(|&&x| x == middle).count();
    let n = s as f64;
    let at_middle = (below as f64 + equal as f64 / 2.0) / n;
    let count = |target: f64| values.iter().filter(|&&x| x == target).count();
    if at_middle <= 0.5 {
        let next = values
            .iter()
            .copied()
            .filter(|&x| x > middle)
            .fold(f64::INFINITY, f64::min);
        if next == f64::INFINITY {
            return middle;
        }
        let at_next = ((below + equal) as f64 + count(next) as f64 / 2.0) / n;
        middle + (0.5 - at_middle) * (next - middle) / (at_next - at_middle)
    } else {
        let previous = values
            .iter()
            .copied()
            .filter(|&x| x < middle)
            .fold(f64::NEG_INFINITY, f64::max);
        if previous == f64::NEG_INFINITY {
            return middle;
        }
        let ties = count(previous);
        let at_previous = ((below - ties) as f64 + ties as f64 / 2.0) / n;
        previous + (0.5 - at_previous) * (middle - previous) / (at_middle - at_previous)
    }
}

/// (shape, scale) of the gamma law with the mean and (population) variance of `values`
/// (all >= 0, not all 0; the method of moments): shape `mean² / var` at most
/// [`HURDLE_MAX_SHAPE`] (also when they are all equal), scale `mean / shape`.
pub fn gamma_moments(values: &[f64]) -> (f64, f64) {
    // Above 1, on the values divided by a power of two near the largest (exact, and the
    // same moments whichever): the shape is scale-free, and the squares of values above
    // 1e154 would overflow.
    let largest = values.iter().copied().fold(0.0f64, f64::max);
    let unit = if largest > 1.0 && largest.is_finite() {
        2f64.powi(largest.log2().floor() as i32)
    } else {
        1.0
    };
    let scaled: Cow<[f64]> = if unit == 1.0 {
        Cow::Borrowed(values)
    } else {
        Cow::Owned(values.iter().map(|&v| v / unit).collect())
    };
    let (mean, sum_of_squares) = mean_and_sum_of_squares(&scaled);
    let variance = sum_of_squares / scaled.len() as f64;
    let shape = if variance <= 0.0 {
        HURDLE_MAX_SHAPE
    } else {
        (mean * mean / variance).min(HURDLE_MAX_SHAPE)
    };
    (shape, mean / shape * unit)
}

/// The flags of a metric read at its `floor` ([`SCALE_EXCESS`]): its excess over the
/// floor as a hurdle model, `ln P(X - floor >= e) = ln(c / m) + ln P(E >= e)` for e > 0
/// under [`hurdle_law`] of the c positive excesses (none above the floor: no flags).
fn floor_flags(
    metric: usize,
    column: &[f64],
    present: &[f64],
    floor: f64,
    tail: &Tail,
) -> Vec<Flag> {
    let m = present.len();
    let positives: Vec<f64> = present
        .iter()
        .map(|&v| v - floor)
        .filter(|&e| e > 0.0)
        .collect();
    if positives.is_empty() {
        return Vec::new();
    }
    let law = hurdle_law(&positives, m, tail.family);
    let ln_share = (positives.len() as f64 / m as f64).ln();
    tail.flags(metric, column, &|value| {
        let e = value - floor;
        if e <= 0.0 {
            0.0
        } else {
            ln_share + law.ln_tail(e)
        }
    })
}

/// The law of a floor's positive excesses ([`hurdle_law`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ExcessLaw {
    /// From [`HURDLE_MIN_POSITIVES`] values on, a gamma law above their smallest value
    /// `low` (the values' own lower bound: one error in a window's requests, one packet),
    /// with the mean and variance of their distances from it ([`gamma_moments`]; the
    /// sample minimum as the threshold of a three-parameter gamma law). All equal: the
    /// gamma law of the values themselves (`low` 0).
    Gamma { shape: f64, scale: f64, low: f64 },
    /// From [`HURDLE_MIN_POSITIVES`] values on, when it fits them better than that gamma
    /// law (the larger likelihood over the values above their smallest,
    /// [`log_normal_if_better`]): the log-normal law with the mean `mu` and population
    /// standard deviation `sigma` of the values' logarithms (maximum likelihood). A GC
    /// pause or a latency over a floor has a log-normal excess whose tail the gamma law
    /// of the same mean and variance makes too light.
    LogNormal { mu: f64, sigma: f64 },
    /// With fewer, the exponential law's prediction of a new value from `count` values of
    /// mean `mean`: `P(E >= e) = (1 + e / (count · mean))^(-count)`, exact for exponential
    /// values (E / mean is then distributed as F(2, 2 count)), the plug-in `e^{-e/mean}` as
    /// count grows; one value of 0.5 does not make 40 impossible.
    Predictive { count: f64, mean: f64 },
}

impl ExcessLaw {
    /// The law of `positives` (at least one, all > 0).
    pub fn of(positives: &[f64]) -> Self {
        if positives.len() >= HURDLE_MIN_POSITIVES {
            let low = positives.iter().copied().fold(f64::INFINITY, f64::min);
            let above: Vec<f64> = positives.iter().map(|&e| e - low).collect();
            if above.iter().all(|&d| d == 0.0) {
                let (shape, scale) = gamma_moments(positives);
                return ExcessLaw::Gamma {
                    shape,
                    scale,
                    low: 0.0,
                };
            }
            let (shape, scale) = gamma_moments(&above);
            log_normal_if_better(positives, &above, shape, scale).unwrap_or(ExcessLaw::Gamma {
                shape,
                scale,
                low,
            })
        } else {
            let count = positives.len() as f64;
            ExcessLaw::Predictive {
                count,
                mean: sequential_sum(positives) / count,
            }
        }
    }

    /// ln P(E >= e) of a positive excess e.
    pub fn ln_tail(&self, e: f64) -> f64 {
        match *self {
            ExcessLaw::Gamma { shape, scale, low } => ln_gamma_q(shape, (e - low).max(0.0) / scale),
            ExcessLaw::Predictive { count, mean } => -count * (e / (count * mean)).ln_1p(),
            ExcessLaw::LogNormal { mu, sigma } => ln_normal_survival((e.ln() - mu) / sigma),
        }
    }
}

/// ln P(Z >= z) for a standard normal Z, from the regularized upper incomplete gamma
/// function: `P(Z >= z) = Q(1/2, z² / 2) / 2` for z >= 0 (Abramowitz & Stegun 26.2.30), one
/// minus that below 0; in logs, finite far into the tail.
pub fn ln_normal_survival(z: f64) -> f64 {
    let upper = ln_gamma_q(0.5, 0.5 * z * z);
    if z >= 0.0 {
        upper - std::f64::consts::LN_2
    } else {
        (-0.5 * upper.exp()).ln_1p()
    }
}

/// The log-normal law of `positives` (all > 0) when it fits them better than the gamma law
/// `shape`, `scale` of their distances `above` from their smallest value: log-likelihoods
/// over the values above the smallest (where the gamma density is finite), the gamma's of
/// the distances, the log-normal's of the values (a shift has Jacobian 1: both are laws of
/// the same values), each summed in order; None when the logarithms do not vary or the
/// gamma law fits at least as well.
pub fn log_normal_if_better(
    positives: &[f64],
    above: &[f64],
    shape: f64,
    scale: f64,
) -> Option<ExcessLaw> {
    if !(scale > 0.0 && scale.is_finite() && shape.is_finite()) {
        return None; // a scale that underflowed (subnormal excesses): the gamma law stays
    }
    let logs: Vec<f64> = positives.iter().map(|e| e.ln()).collect();
    let (mu, sum_of_squares) = mean_and_sum_of_squares(&logs);
    let sigma = (sum_of_squares / logs.len() as f64).sqrt();
    if sigma.is_nan() || sigma <= 0.0 {
        return None;
    }
    let (mut gamma, mut log_normal, mut count) = (0.0, 0.0, 0usize);
    for (&d, &l) in above.iter().zip(&logs) {
        if d > 0.0 {
            let z = (l - mu) / sigma;
            gamma += (shape - 1.0) * d.ln() - d / scale;
            log_normal += -l - 0.5 * z * z;
            count += 1;
        }
    }
    let count = count as f64;
    gamma -= count * (shape * scale.ln() + ln_gamma(shape));
    log_normal -= count * (sigma.ln() + 0.5 * std::f64::consts::TAU.ln());
    (log_normal > gamma).then_some(ExcessLaw::LogNormal { mu, sigma })
}

/// The law of a floor's c positive excesses, fitted without the largest ones that stand
/// out, so that a burst does not widen the law it is read against (the step-down of
/// Rosner's (1983) generalized extreme Studentized deviate procedure, with the hurdle tail
/// as its statistic): for j = 1..min([`HURDLE_MAX_OUTLIERS`], c - 1), the j-th largest
/// excess (ties in task order) is read against the law of the others ([`ExcessLaw::of`]
/// without the j largest), `P_j = (c / m) · P(E >= e_(j))`; the law is fitted without the
/// j* largest, j* the largest j with `family · P_j < COUNT_FAMILY_ALPHA` (0: with all of
/// them). Fitted with all of them, a single excess of 200 among 30 of 0.5–29.5 widened the
/// law enough to hide itself, and three bursts of 20 among 300 exponential excesses of
/// mean 1 hid each other in every series.
pub fn hurdle_law(positives: &[f64], m: usize, family: usize) -> ExcessLaw {
    let count = positives.len();
    let ln_share = (count as f64 / m as f64).ln();
    let limit = (COUNT_FAMILY_ALPHA / family as f64).ln();
    let most = HURDLE_MAX_OUTLIERS.min(count - 1);
    // the largest, ties in task order (a stable descending sort's first ones)
    let mut largest: Vec<usize> = Vec::with_capacity(most + 1);
    for (index, &e) in positives.iter().enumerate() {
        let at = largest.partition_point(|&other| positives[other] >= e);
        if at < most {
            largest.insert(at, index);
            largest.truncate(most);
        }
    }
    let without = |excluded: &[usize]| -> ExcessLaw {
        let kept: Vec<f64> = positives
            .iter()
            .enumerate()
            .filter(|(index, _)| !excluded.contains(index))
            .map(|(_, &e)| e)
            .collect();
        ExcessLaw::of(&kept)
    };
    let mut outliers = 0;
    for j in 1..=largest.len() {
        let law = without(&largest[..j]);
        if ln_share + law.ln_tail(positives[largest[j - 1]]) < limit {
            outliers = j;
        }
    }
    without(&largest[..outliers])
}

/// Whether `present` is a clearly right-skewed positive metric, the one the outlier scale
/// reads on the log scale with its upper side only ([`SCALE_LOG`]): at least
/// [`MIN_MEDCOUPLE_VALUES`] values, every one > 0, and the medcouple of their quantile sample
/// (of the mid-quantile sample too when it has ties, the one farther from 0) above
/// [`LOG_SCALE_MEDCOUPLE`]. The change points' jump test reads such a metric on `ln x`.
pub fn clearly_right_skewed(present: &[f64]) -> bool {
    if present.len() < MIN_MEDCOUPLE_VALUES || !present.iter().all(|&v| v > 0.0) {
        return false;
    }
    let (sample, mid) = skew_samples(present, true);
    skew(&sample, mid.as_deref(), &|v| v) > LOG_SCALE_MEDCOUPLE
}

/// The samples [`skew`] reads: the quantile sample of `present`, and with `with_mid` the
/// mid-quantile sample too when the quantile sample has ties.
fn skew_samples(present: &[f64], with_mid: bool) -> (Vec<f64>, Option<Vec<f64>>) {
    let sample = quantile_sample(present);
    let tied = sample.windows(2).any(|pair| pair[0] == pair[1]);
    let mid = (with_mid && tied).then(|| mid_quantile_sample(present));
    (sample, mid)
}

/// The medcouple of `transform` of the sample, or, when the sample has ties, the one of it
/// and of the mid-quantile sample farther from 0: ties at the median pull the order
/// statistics' medcouple to 0 (mirrored whole values give kernels of 0: durations in whole
/// seconds around 12 s had MC 0 where the values' skew is 0.11, and the raw scale flagged
/// 5 of 3,000), ties at a floor pull the mid-quantiles' toward it (whole seconds of an
/// exponential queue wait: 0.24 against 0.6).
fn skew(sample: &[f64], mid: Option<&[f64]>, transform: &dyn Fn(f64) -> f64) -> f64 {
    let of = |values: &[f64]| medcouple(&values.iter().map(|&v| transform(v)).collect::<Vec<_>>());
    let mc = of(sample);
    match mid {
        Some(mid) => {
            let other = of(mid);
            if other.abs() > mc.abs() {
                other
            } else {
                mc
            }
        }
        None => mc,
    }
}

/// Places the order statistic of each rank (ascending, >= `offset`) of the slice that
/// starts at rank `offset` at its position: select the middle rank, then each side's
/// (O(m log k) for k ranks).
fn select_ranks(values: &mut [f64], ranks: &[usize], offset: usize) {
    if ranks.is_empty() || values.is_empty() {
        return;
    }
    let middle = ranks.len() / 2;
    let at = ranks[middle] - offset;
    values.select_nth_unstable_by(at, f64::total_cmp);
    let (left, right) = values.split_at_mut(at);
    select_ranks(left, &ranks[..middle], offset);
    select_ranks(&mut right[1..], &ranks[middle + 1..], offset + at + 1);
}

/// The (upper, lower) factors for the medcouple `mc`: the adjusted boxplot's widening of
/// the heavy side, `e^{3 |MC|}` (Hubert & Vandervieren 2008); the light side keeps 1 (its
/// narrowing, `e^{-4 |MC|}`, would let the medcouple's sampling noise — about ±0.06 at
/// n = 400 — flag ordinary values of a symmetric metric at 3.5 robust z).
pub fn side_factors(mc: f64) -> (f64, f64) {
    if mc >= 0.0 {
        ((3.0 * mc).exp(), 1.0)
    } else {
        (1.0, (-3.0 * mc).exp())
    }
}

/// The medcouple (Brys, Hubert & Struyf 2004) of `values`, exactly (quadratic: callers pass
/// at most [`MEDCOUPLE_SAMPLE`] values): the median of `((x_j - Q2) - (Q2 - x_i)) / (x_j -
/// x_i)` over x_i <= Q2 <= x_j with x_i < x_j (pairs of values both equal to the median are
/// left out); 0 when no pair remains.
pub fn medcouple(values: &[f64]) -> f64 {
    let mut sample = values.to_vec();
    sample.sort_unstable_by(f64::total_cmp);
    let center = sorted_median(&sample);
    let below = sample.iter().copied().filter(|&v| v <= center);
    let mut kernel = Vec::new();
    for low in below {
        for &high in sample.iter().filter(|&&v| v >= center) {
            if high > low {
                kernel.push(((high - center) - (center - low)) / (high - low));
            }
        }
    }
    if kernel.is_empty() {
        return 0.0;
    }
    median_in_place(&mut kernel)
}

/// The fence of the z scales for m values: max(z_threshold, Φ⁻¹(1 − α / m)) with
/// α = [`FENCE_FAMILY_ALPHA`] ([`upper_tail_z`]; z_threshold alone while α / m is outside
/// its tail region, m <= 4).
pub fn fence(z_threshold: f64, m: usize) -> f64 {
    let tail = FENCE_FAMILY_ALPHA / m as f64;
    if tail < TAIL_REGION {
        z_threshold.max(upper_tail_z(tail.ln()))
    } else {
        z_threshold
    }
}

/// Φ⁻¹(1 − P) for an upper tail probability P < 0.02425 given as `ln P`: Acklam's (2003)
/// rational approximation of the normal quantile in its tail region (relative error below
/// 1.2e-9), finite for every finite `ln P`.
pub fn upper_tail_z(log_tail: f64) -> f64 {
    -normal_quantile_tail((-2.0 * log_tail).sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outlier_scores(columns: &[&[f64]], z_threshold: f64) -> CoreResult<Outliers> {
        super::outlier_scores(columns, z_threshold, 0, &Budget::unlimited())
    }

    /// 200 distinct values ±0.005 … ±0.995 in the order of 73 i mod 200.
    fn shuffled() -> Vec<f64> {
        (0..200)
            .map(|i| ((73 * i) % 200) as f64 / 100.0 - 0.995)
            .collect()
    }

    #[test]
    fn the_log_normal_law_of_an_excess_when_it_fits_better() {
        // ln P(Z >= z) (scipy.stats.norm.logsf)
        for (z, expected) in [
            (0.0, -std::f64::consts::LN_2),
            (1.96, -3.688_963_651_729_638_5),
            (-1.0, -0.172_753_779_023_449_9),
            (40.0, -804.608_442_013_754),
        ] {
            assert!((ln_normal_survival(z) - expected).abs() < 1e-9 * expected.abs().max(1.0));
        }
        // exp(3 + z_i) over 400 evenly spread normal scores: log-normal; their logs'
        // distances, a light-tailed law: the gamma law
        let scores: Vec<f64> = (0..400)
            .map(|i| normal_quantile((i as f64 + 0.5) / 400.0))
            .collect();
        let log_normal: Vec<f64> = scores.iter().map(|z| (3.0 + z).exp()).collect();
        assert!(matches!(
            ExcessLaw::of(&log_normal),
            ExcessLaw::LogNormal { mu, sigma } if (mu - 3.0).abs() < 1e-9 && (sigma - 1.0).abs() < 0.01
        ));
        let exponential: Vec<f64> = (0..400)
            .map(|i| -(1.0 - (i as f64 + 0.5) / 400.0).ln())
            .collect();
        assert!(matches!(
            ExcessLaw::of(&exponential),
            ExcessLaw::Gamma { .. }
        ));
    }

    #[test]
    fn a_floor_under_half_the_values_is_read_at_the_floor() {
        // 400 values: 0 on every third (133, a third), else 10 + 40 u (u uniform): the
        // median sits above the floor, and the raw modified z's MAD is the floor's distance;
        // read at the floor, a wait of 500 stands out and the rest do not
        let mut rng = crate::rng::SplitMix64::new(3);
        let mut values: Vec<f64> = (0..400)
            .map(|t| {
                if t % 3 == 0 {
                    0.0
                } else {
                    10.0 + 40.0 * rng.next_f64()
                }
            })
            .collect();
        values[200] = 500.0;
        let found = outlier_scores(&[&values], 3.5).unwrap();
        assert_eq!(found.scale, vec![SCALE_EXCESS]);
        assert_eq!(found.task, vec![200]);
        // a smallest value on fewer than 1/20 of the values (19 of 400): no floor, also at
        // 0 under these symmetric positive values (a 0 is then an outlier) ...
        for t in (0..400).filter(|t| t % 3 == 0).skip(19) {
            values[t] = 10.0 + 40.0 * (t as f64 / 400.0);
        }
        assert_eq!(values.iter().filter(|&&v| v == 0.0).count(), 19);
        let symmetric = outlier_scores(&[&values], 3.5).unwrap();
        assert_ne!(symmetric.scale, vec![SCALE_EXCESS]);
        // ... but a floor under clearly right-skewed ones (a 0 has no logarithm)
        let skewed: Vec<f64> = values
            .iter()
            .map(|&v| if v == 0.0 { 0.0 } else { (v / 10.0).powi(4) })
            .collect();
        assert_eq!(
            outlier_scores(&[&skewed], 3.5).unwrap().scale,
            vec![SCALE_EXCESS]
        );
    }

    #[test]
    fn a_run_keeps_a_weak_member_and_leaves_a_weak_neighbour() {
        // z at tasks 98..104 (median 0.03, MAD 0.51): 1.15, 3.00, 3.27, 1.55, 3.13, 3.40,
        // 1.18; none passes the fence 3.5 alone. The chosen window, of the largest Σz / √k
        // among the significant ones, is 99..103; its smallest value is the 5th largest of
        // 200, z_run = Φ⁻¹(1 − 8 / C(200, 5)) = 5.808327 (scipy).
        let mut values = shuffled();
        values[98..104].copy_from_slice(&[0.9, 2.3, 2.5, 1.2, 2.4, 2.6]);
        let found = outlier_scores(&[&values], 3.5).unwrap();
        assert_eq!(found.task, vec![99, 100, 101, 102, 103]);
        assert_eq!(found.run_length, vec![5; 5]);
        for severity in found.severity {
            assert!((severity - 5.808_326_984_090_29).abs() < 1e-7, "{severity}");
        }
        // the same z read by run_flags, and with a gap in the tasks after position 101:
        // neither piece stands out (99, 100 are the 3rd and 4th largest: z_run
        // Φ⁻¹(1 − 8 · 4 · 3 / (200 · 199)) = 2.82; 102, 103 of 3: 3.03)
        let z: Vec<f64> = values
            .iter()
            .map(|&v| 0.6745 * (v - 0.03).abs() / 0.51)
            .collect();
        let upward: Vec<bool> = values.iter().map(|&v| v > 0.03).collect();
        let together: Vec<usize> = (0..200).collect();
        let whole = run_flags(&together, &z, &upward, false, 200, 3.5);
        let whole: Vec<(usize, usize)> = whole.iter().map(|f| (f.0, f.2)).collect();
        assert_eq!(whole, [99, 100, 101, 102, 103].map(|p| (p, 5)));
        let tasks: Vec<usize> = (0..200).map(|t| if t >= 102 { t + 1 } else { t }).collect();
        assert!(run_flags(&tasks, &z, &upward, false, 200, 3.5).is_empty());
    }

    #[test]
    fn no_run_is_read_on_a_dependent_or_short_metric() {
        // the same values in a persistent order (sorted: lag-1 autocorrelation near 1)
        let mut values = shuffled();
        values.sort_by(f64::total_cmp);
        values[98..104].copy_from_slice(&[0.9, 2.3, 2.5, 1.2, 2.4, 2.6]);
        let tasks: Vec<usize> = (0..200).collect();
        let z: Vec<f64> = values
            .iter()
            .map(|&v| 0.6745 * (v - 0.03).abs() / 0.51)
            .collect();
        let upward: Vec<bool> = values.iter().map(|&v| v > 0.03).collect();
        assert!(run_flags(&tasks, &z, &upward, false, 200, 3.5).is_empty());
        // fewer than MIN_RUN_VALUES values
        let values = {
            let mut v = shuffled();
            v[98..104].copy_from_slice(&[0.9, 2.3, 2.5, 1.2, 2.4, 2.6]);
            v
        };
        let z: Vec<f64> = values
            .iter()
            .map(|&v| 0.6745 * (v - 0.03).abs() / 0.51)
            .collect();
        let upward: Vec<bool> = values.iter().map(|&v| v > 0.03).collect();
        let short = 60..(60 + MIN_RUN_VALUES - 1);
        let found = run_flags(
            &tasks[..short.len()],
            &z[short.clone()],
            &upward[short],
            false,
            200,
            3.5,
        );
        assert!(found.is_empty());
    }

    #[test]
    fn a_tight_group_past_the_fence_is_read_as_a_mode() {
        // 80 values of z 0..0.79, 20 of 10.00..10.19 and one of 20: the 21 past the fence
        // (>= 20 and >= 1% of 101) have a z median of 10.1 and a MAD of 0.06 (floored at
        // 0.6745): the group reads 0.6745 (z − 10.1) / 0.6745 = z − 10.1, and only the 20
        // (9.9) passes fence(3.5, 2 · 21) = 3.5
        let mut z: Vec<f64> = (0..80).map(|i| i as f64 / 100.0).collect();
        z.extend((0..20).map(|i| 10.0 + i as f64 / 100.0));
        z.push(20.0);
        let past: Vec<usize> = (80..101).collect();
        let mut severity: Vec<f64> = z.iter().map(|&z| if z > 3.5 { z } else { 0.0 }).collect();
        read_mode(&z, &past, (3.5, 2), &mut severity);
        let flagged: Vec<usize> = (0..101).filter(|&i| severity[i] > 0.0).collect();
        assert_eq!(flagged, [100]);
        assert!((severity[100] - 9.9).abs() < 1e-12, "{}", severity[100]);
        // spread out past the fence (MAD far above 2 · 0.6745), or too few: no mode
        let spread: Vec<f64> = (0..101)
            .map(|i| if i >= 80 { 4.0 + (i - 80) as f64 } else { 0.0 })
            .collect();
        let mut kept = spread.clone();
        read_mode(&spread, &past, (3.5, 2), &mut kept);
        assert_eq!(kept, spread);
        let mut few = severity.clone();
        few[100] = 0.0;
        let before = few.clone();
        read_mode(&z, &past[..19], (3.5, 2), &mut few);
        assert_eq!(few, before);
    }

    #[test]
    fn hand_worked_symmetric_metric() {
        // median 0.5, MAD = median(|x - 0.5|) = (1.5 + 2.5) / 2 = 2; the 16 medcouple
        // kernels (x_j + x_i - 1) / (x_j - x_i) have the middle pair 0, 0: MC = 0.
        let column = [-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0, 30.0];
        let mut sorted = column.to_vec();
        sorted.sort_unstable_by(f64::total_cmp);
        assert_eq!(medcouple(&sorted), 0.0);
        let result = outlier_scores(&[&column], 3.5).unwrap();
        assert_eq!(result.task, vec![7]);
        assert_eq!(result.scale, vec![SCALE_RAW]);
        assert_eq!(result.severity, vec![ROBUST_Z_FACTOR * 29.5 / 2.0]);
        assert_eq!(result.deviation, vec![29.5]);
        // z_threshold 1.0: the fence is Φ⁻¹(1 − 0.1 / 8) = 2.2414 (Bonferroni over the 8
        // values), above -3's z = 0.6745 * 3.5 / 2 = 1.18
        let low = outlier_scores(&[&column], 1.0).unwrap();
        assert_eq!(low.task, vec![7]);
        // scipy.stats.norm.isf(0.1 / m)
        assert!((fence(1.0, 8) - 2.241_402_727_604_945).abs() < 5e-9);
        assert!((fence(3.5, 1000) - 3.719_016_485_455_680_4).abs() < 8e-9);
        assert_eq!(fence(3.5, 100), 3.5);
        assert_eq!(fence(1.0, 4), 1.0);
        // 12 in place of 30: z = 0.6745 * 11.5 / 2 = 3.88 is past 3.5, but not past the fence
        // of a segment of a metric of 10⁶ values (Φ⁻¹(1 − 10⁻⁷) = 5.2)
        let segment = [-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0, 12.0];
        let alone = super::outlier_scores(&[&segment], 3.5, 0, &Budget::unlimited()).unwrap();
        assert_eq!(alone.task, vec![7]);
        let within = super::outlier_scores(&[&segment], 3.5, 1_000_000, &Budget::unlimited());
        assert!(within.unwrap().task.is_empty());
        // a family smaller than the metric counts the metric's own values
        let small = super::outlier_scores(&[&segment], 3.5, 2, &Budget::unlimited()).unwrap();
        assert_eq!(small, alone);
    }

    #[test]
    fn counts_are_tested_by_their_geometric_tail() {
        let mut column = vec![0.0; 100];
        column[10..19].fill(1.0);
        column[50] = 12.0;
        let result = outlier_scores(&[&column], 3.5).unwrap();
        assert_eq!(result.scale, vec![SCALE_COUNT]);
        assert_eq!(result.task, vec![50]);
        let mean: f64 = 21.0 / 100.0;
        let log_tail = 12.0 * (mean / (1.0 + mean)).ln();
        assert_eq!(result.severity, vec![upper_tail_z(log_tail)]);
        assert!(result.severity[0].is_finite() && result.severity[0] > 6.0);
        // flags: nothing (P(X >= 1) is far from rare)
        let flags: Vec<f64> = (0..100).map(|i| f64::from(i % 7 == 0)).collect();
        assert!(outlier_scores(&[&flags], 3.5).unwrap().task.is_empty());
    }

    #[test]
    fn normal_quantile_in_the_tail() {
        // scipy.stats.norm.isf(1e-10), norm.isf(1e-3), norm.isf(1e-300)
        let cases = [
            (1e-10f64, 6.361_340_902_404_056),
            (1e-3, 3.090_232_306_167_813_5),
            (1e-300, 37.047_096_299_361_2),
        ];
        for (p, z) in cases {
            let got = upper_tail_z(p.ln());
            assert!((got - z).abs() <= 2e-9 * z, "{p}: {got} vs {z}");
        }
        assert!(upper_tail_z(-1e6).is_finite());
    }

    #[test]
    fn zero_mad_uses_the_mean_absolute_deviation() {
        // 7 values (too few to judge skew): raw scale; MAD 0 -> MeanAD = (0.5 + 4.5) / 7
        let column = [5.0, 5.0, 5.0, 5.0, 9.5, 5.0, 4.5];
        let result = outlier_scores(&[&column], 3.5).unwrap();
        assert_eq!(result.scale, vec![SCALE_MEAN_DEVIATION]);
        assert_eq!(result.task, vec![4]);
        let spread = MEAN_DEVIATION_FACTOR * ROBUST_Z_FACTOR * (5.0 / 7.0);
        let expected = ROBUST_Z_FACTOR * 4.5 / spread;
        assert!((result.severity[0] - expected).abs() < 1e-12 * expected);
        assert!((expected - 4.5 / (1.253_314 * 5.0 / 7.0)).abs() < 1e-12);
        assert_eq!(result.deviation, vec![4.5]);
        // all equal: nothing
        let result = outlier_scores(&[&[2.5; 10]], 3.5).unwrap();
        assert!(result.task.is_empty());
    }

    #[test]
    fn log_scale_flags_only_the_upper_side() {
        // log-normal-like: 1, 2, 4, ... the logs are symmetric; 1/1000 is far below
        let mut column: Vec<f64> = (0..40).map(|i| (f64::from(i % 10) * 0.3).exp()).collect();
        column[3] = 1e-3;
        column[7] = 1e4;
        let result = outlier_scores(&[&column], 3.5).unwrap();
        assert_eq!(result.scale, vec![SCALE_LOG]);
        assert_eq!(result.task, vec![7]);
    }

    #[test]
    fn sorted_by_task_then_metric_with_absent_values() {
        let nan = f64::NAN;
        let a = [1.0, 1.1, 0.9, 1.0, 50.0, nan, 1.05, -1.0, 1.02];
        let b = [nan, 10.0, 10.5, 9.5, -40.0, 10.0, 10.2, 10.1, -9.9];
        let c = [nan, nan, 1.0, 2.0, nan, nan, nan, nan, nan]; // 2 values: not scored
        let result = outlier_scores(&[&a, &b, &c], 3.5).unwrap();
        assert_eq!(result.scale, vec![SCALE_RAW, SCALE_RAW, SCALE_NONE]);
        let pairs: Vec<(i64, i64)> = result
            .task
            .iter()
            .copied()
            .zip(result.metric.clone())
            .collect();
        let mut sorted_pairs = pairs.clone();
        sorted_pairs.sort_unstable();
        assert_eq!(pairs, sorted_pairs);
        assert!(
            pairs.contains(&(4, 0)) && pairs.contains(&(4, 1)),
            "{pairs:?}"
        );
        assert!(result.severity.iter().all(|z| z.is_finite() && *z > 3.5));
    }

    #[test]
    fn degenerate_inputs_and_arguments() {
        assert_eq!(outlier_scores(&[], 3.5).unwrap(), Outliers::default());
        let nan = f64::NAN;
        let empty = outlier_scores(&[&[nan, nan, nan, nan]], 3.5).unwrap();
        assert!(empty.task.is_empty() && empty.scale == vec![SCALE_NONE]);
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let params = Params::new().with("z_threshold", bad);
            let error = run(&[&[1.0]], &params, &Budget::unlimited()).unwrap_err();
            assert!(
                error.to_string().starts_with("z_threshold must be"),
                "{error}"
            );
        }
        assert!(outlier_scores(&[&[1.0, 2.0], &[1.0]], 3.5).is_err());
    }
}
