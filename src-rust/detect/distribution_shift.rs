//! Change points (SPEC §12 `DISTRIBUTION_SHIFT`): every change of a metric's level or
//! spread, each with a p-value that holds on autocorrelated, skewed and discrete data, and
//! the metrics that drift told apart from metrics that step.
//!
//! # Method
//!
//! - **Scores.** The metric's present values become doubled mid-ranks `r` (integers; ties
//!   share their mean rank), so heavy tails weigh nothing and ties are exact. A segment's
//!   *level* scores are its `r`; its *spread* scores are Mood's (1954) squared distances
//!   from the segment's median rank, `d² = (2r - (r_(lo) + r_(hi)))²` ([`spread_scores`]):
//!   a change of variance moves their level. Mood's scores have an asymptotic relative
//!   efficiency of 0.76 against the F test on Gaussian data, the absolute distances
//!   (Ansari–Bradley) 0.61 (Ansari & Bradley 1960): a variance ×3 in 200 values was found
//!   in 84% of series against 76% (`benches/changepoints.py`).
//! - **Test of one segment.** The CUSUM `S_k = Σ s[..k] - k Σ s / L` of each score
//!   (Pettitt 1979 for ranks; Csörgő & Horváth 1997) over `[min_segment, L - min_segment]`.
//!   The level change is placed at the first maximiser of `S_k² / (k (L - k))`, the
//!   least-squares location of one change in mean (Hinkley 1970; the maximiser of `|S_k|`
//!   is pulled toward the middle of the segment: on 3–10 Gaussian steps F1 0.83 → 0.92 in
//!   `benches/changepoints.py`), the spread change at the first maximiser of `|S_k|` (which
//!   located variance changes better there); the test statistic is `max |S_k|` for both,
//!   standardised by the AR(1) long-run variance of the
//!   scores demeaned within the pieces cut at k and at the CUSUM's opposite extreme (an
//!   epidemic change, a regression and its fix, is then not read as autocorrelation), `T = |S_k| / sqrt(L · lrv)` shrunk by the
//!   finite-sample factor `L' / (L' + 9)` with `L' = L / f` the segment's effective number of
//!   values (f the long-run variance over the variance below; Bretherton et al. 1999;
//!   [`SMALL_SAMPLE`]), compared to the
//!   Kolmogorov distribution of `sup |B|` for a Brownian bridge B (the limit of the
//!   standardised CUSUM under any short-memory stationary null). The two tests are joined by
//!   Bonferroni: `p = min(1, 2 p)` of the chosen test; the spread test is chosen (and places
//!   the change) only when its p is the smaller and the level test does not reject on its own
//!   (`2 p_level > `[`LEVEL_FIRST`]): a segment holding several level steps has a large
//!   spread too, and the spread test's location is not the least-squares one. A segment
//!   whose ranks are as persistent as a drifting metric's (the level test's f at least the
//!   AR(1) ratio at [`DRIFT_RHO`]: a ramp) gets no spread test: its distances from the
//!   median swing with the level. A segment in which fewer than `min_segment` values differ from its
//!   commonest value is not tested (p = 1): a stray value among constants is no change.
//! - **Long-run variance.** Parametric AR(1) (the prewhitening model of Andrews & Monahan
//!   1992): `γ₀ = Σe²/(L - J f)` for J pieces, `lrv = γ₀ f`, `f = (1 + ρ)/(1 - ρ)`. ρ is the
//!   larger of two estimates, clipped to [0, 0.97]: the residuals' `Σ e_t e_{t+1} / Σ e²`
//!   plus the bias correction `J(1 + 3ρ)/L` (Kendall 1954, once per fitted mean), and the
//!   variogram ratio `D₂/D₁ - 1` with `D_j` the mean of `(s_t - s_{t-j})²` over the pairs
//!   that do not straddle k ([`difference_rho`]; for AR(1) `E(s_t - s_{t-j})² = 2γ₀(1 - ρʲ)`,
//!   Cressie 1993 §2.3; the robust variogram of Genton 1998). The residual estimate is
//!   biased low on short persistent series because the cuts are chosen where the series
//!   wanders furthest; the difference estimate needs no cuts and a step moves one or two
//!   differences, but it is noisier: their maximum keeps the size on AR(1) and costs little
//!   power on iid steps (measured in `benches/changepoints.py`). The denominator `L - J f`
//!   is the unbiased variance of autocorrelated values around J fitted means (Bayley &
//!   Hammersley 1946; Zięba 2010): with `J f >= L` there is not one effective value per
//!   mean, and the segment is not tested (p = 1). Why this and not a permutation:
//!   exchangeability fails on autocorrelated data, and a block permutation needs the same ρ
//!   to choose its block; the parametric form is exact for AR(1), the usual model of CPU,
//!   memory and queue depth, deterministic (both backends give the same p-values without
//!   random streams) and O(L). A deterministic daily cycle has no long-run variance of its
//!   own: its CUSUM stays bounded.
//!   For series of at least 504 values the ratio f is the larger of this and a
//!   step-robust batch-means ratio ([`block_inflation`]): a slow component under per-task
//!   noise (ARMA(1, 1), a latency driven by load) has a small lag-1 autocorrelation but a
//!   large long-run variance, which the AR(1) form misses.
//! - **Search.** Binary segmentation (Vostrikova 1981; Scott & Knott 1974): a segment of at
//!   least `2 · min_segment` values whose test gives `p <= alpha` is split at its k and both
//!   sides are searched again. Each change found is then re-placed and re-tested, left to
//!   right, between its neighbours (the refinement of Fryzlewicz 2014 §3); its p-value is
//!   that of its own segment (the larger of it and that of the segment between the changes
//!   kept on either side, when a neighbour moved or went as part of a drift or a bend: a
//!   change re-tested between two neighbours inside a slow excursion had p = 5e-31 there and
//!   p = 1e-3 between the changes kept), and the report's Benjamini–Hochberg pass decides it. The
//!   re-test's f is also at least the flat-top kernel ratio ([`kernel_inflation`], the
//!   adaptive bandwidth of Politis 2003): between its neighbours a change's segment holds
//!   no other step, and a slow component's autocorrelations are read where they are (the
//!   p50 and p99 of one latency under slowly varying load, 2,000 windows: a false change
//!   in 10 of 60 exports without it, 1 of 60 with it).
//! - **Drift.** A metric whose ranks stay persistent within the segments found (their
//!   bias-corrected lag-1 autocorrelation `phi` >= 0.93) and whose ranks as a whole keep a
//!   unit root (the Dickey–Fuller t of their lag-1 autocorrelation ρ,
//!   `(ρ - 1) / sqrt((1 - ρ²) / (n - 1))`, above [`UNIT_ROOT_T`] = -3.96, beyond the
//!   test's 1% point; Dickey & Fuller 1979, Fuller 1976 — [`keeps_unit_root`]) is a
//!   random walk or a trend: it is `drifting` over all its values and its changes are
//!   dropped (they are the walk's excursions); its task-to-task differences are searched
//!   instead, and their level changes (of the trend's slope) are reported, marked
//!   `differenced` ([`difference_changes`]; also for a metric found drifting over
//!   all its values by its runs and bends). A persistent but stationary metric (AR(1)
//!   φ = 0.95, a queue depth, over thousands of tasks) rejects the unit root: its changes
//!   stay, and a step in it is found.
//! - **Jumps.** On a persistent metric (`phi` >= 0.93) the rank CUSUM's long-run variance is
//!   inflated by the persistence, and a step passes for a unit root when the test ignores
//!   it (Perron 1989): a memory gauge (AR(1) 0.99) stepping by 20 of its increments' SDs
//!   was found in 0 of 40 series and reported as a random walk. Its abrupt moves are
//!   tested on their own ([`level_jumps`], after Lee & Mykland 2008; on `ln x` for a clearly
//!   right-skewed positive metric that rejects a unit root, [`jump_scale`]); the unit-root test
//!   reads the ranks demeaned between the jumps; a drifting metric's jumps are its level
//!   changes (p the jump's); a change of the search within [`JUMP_LEVEL`] of a jump moves
//!   to it with `p = min(1, 2 min(p, p_jump))` (either test could have found it), and a
//!   jump the search missed is added.
//! - **Incidents.** A short excursion (a regression of 30 tasks and its fix in 2,000) has
//!   a whole-segment CUSUM of about its noise, and binary segmentation never cuts there.
//!   Every metric not drifting over all its values is also scanned by a multiscale moving
//!   sum ([`incidents`]); a change it finds outside the metric's drifting span and away
//!   from the changes going its way is added with its own p-value, and one it finds near a
//!   change of the search joins that change's p-value as a second test. Among the changes of the others, a run of two or more
//!   consecutive changes in the same direction is a drift when a least-squares line fits the
//!   ranks of the run's span (ranked within the span) at least as well by BIC (`L ln RSS + p ln L`, p = 2 for the
//!   line, 2r + 1 for r changes) as constant pieces: first over the span from the segment
//!   before the run (every change of the run goes), else from the run's first change (the
//!   change where the drift starts stays, the rest go), else from its second, and so on.
//! - **Bends and cycles.** A level change that a continuous broken line (one knot: the
//!   model of Fearnhead, Maidstone & Letchford 2019) fits as well as the step, by BIC on the
//!   effective number of values `L / f`, over the span between its neighbours or a window of
//!   twice its shorter side around it, is a smooth move (a daily cycle seen through part of
//!   its period, a hump), not a change: it goes, and the metric drifts ([`smooth_steps`]).
//!   A change whose span is a flat start then a line is the onset of a drift and stays. A
//!   change that a straight line over the same span fits as well, by the same BIC (2
//!   coefficients against the step's 3), is a slow trend cut where its CUSUM peaks: it goes,
//!   and the metric drifts over the span. Neither goes when a line on each side fits better
//!   than the continuous broken line by twice the BIC penalty ([`jumps`]: a jump on a trend
//!   is a change, not a bend). The drift reported is the widest of the spans
//!   found once those that overlap or touch are joined ([`widest_drift`]), cut to where a
//!   line then flat, and a flat then line, fit it better than a line ([`trim_drift`]).
//!
//! - **Cycles.** A metric's cycle is removed before the search (`shared::seasonal`); a
//!   metric without one of its own is tested at the periods the other metrics repeat
//!   ([`shared_cycle`]) and searched again when one fits ([`change_points`]). When the
//!   spread of the values with the cycle removed still repeats it
//!   ([`spread_follows_cycle`]: a utilisation clipped at the daily peak, a queue empty
//!   outside it), the scores are ranks within the cycle's phase groups
//!   ([`stratified_ranks`], van Elteren 1960) and only the level is tested. A cycle's
//!   profile (its phases' medians) takes part of a step seen in some of its repetitions;
//!   the changes that only stand for that are dropped ([`fewest_under_cycle`]).
//!
//! Every sum of scores is exact in integers; the floats are formed from them in one fixed
//! order, which the NumPy twin repeats.

use std::borrow::Cow;

use rayon::prelude::*;

pub use super::shared::ranks::doubled_midranks;

use super::outlier::clearly_right_skewed;
use super::shared::columns::{column_length, present_values};
use super::shared::ranks::{commonest_count, median, median_and_mad};
use super::shared::seasonal::{
    atom_cycle, deviations_repeat, find_cycle, phase_group, phase_group_count, shared_cycle,
};
use super::{Detector, Table};
use crate::args::{Budget, DefaultValue, ParamSpec, Params};
use crate::error::CoreResult;
use crate::stats::{mean_and_sum_of_squares, normal_quantile, student_t_two_sided_p};

/// The per-metric fields (one row per metric), then the per-change fields (one row per
/// change, metrics in order, changes by position).
pub const FIELDS: &[&str] = &[
    // per metric
    "count",
    "tested",
    "phi",
    "drifting",
    "drift_start",
    "drift_end",
    "period",
    // per change
    "metric",
    "change_index",
    "segment_start",
    "segment_end",
    "statistic",
    "p_value",
    "spread",
    "differenced",
    "mean_before",
    "mean_after",
    "median_before",
    "median_after",
    "std_before",
    "std_after",
];

/// The registry entry.
pub const DETECTOR: Detector = Detector {
    name: "distribution_shift",
    kind: "distribution shift",
    fields: FIELDS,
    params: &[
        ParamSpec {
            name: "min_segment",
            default: DefaultValue::Int(4),
        },
        ParamSpec {
            name: "alpha",
            default: DefaultValue::Float(0.01),
        },
    ],
    run,
};

/// The AR(1) coefficient's cap (Andrews & Monahan 1992).
pub const PHI_MAX: f64 = 0.97;
/// [`block_inflation`]'s blocks are `round(L^BLOCK_EXPONENT)` scores long...
pub const BLOCK_EXPONENT: f64 = 0.6;
/// ...and it needs at least this many of them (L >= 504). 12 rather than 16 (L >= 1,024):
/// a latency with a slow AR(1) 0.95 component under per-task noise at n = 1,000 got a false
/// change in 55% of series with 16 and 27% with 12, at an F1 of 0.908 against 0.900 on 3–10
/// Gaussian steps in 1,000 values (NumPy twin, 60 and 40 series; `benches/RESULTS.md`).
pub const MIN_BLOCKS: usize = 12;
/// The median of χ² with one degree of freedom.
const CHI2_MEDIAN: f64 = 0.454_936_423_119_572_8;
/// The finite-sample correction: T is shrunk by L' / (L' + 9), L' = L / f the effective
/// number of values, fitted by simulation (as Stephens 1970 fitted his for
/// Kolmogorov–Smirnov; the Kolmogorov limit is liberal on short series because the
/// variance is estimated around the best split, and ρ is biased low on short persistent
/// ones): an autocorrelated segment is as short as its effective number of values (on AR(1)
/// φ = 0.9 at n = 200, 8% of series got a change with L in place of L'). The constant is
/// the smallest of 5, 7, 9 that keeps AR(1) φ = 0.9 at n = 30…2000 within 3% (600 series
/// each: 5.2/4.3/4.7/3.5/2.5% at n = 30/50/100/200/2000 with 5, 2.8/2.3/2.5/2.2/2.3% with
/// 9), at a cost of 82% → 78% for a 2-SD step at n = 50 located within ±2
/// (`benches/changepoints.py`); iid series of 8 to 200 values stay under the nominal rate.
pub const SMALL_SAMPLE: f64 = 9.0;
/// The flat-top kernel's bandwidth rule (Politis 2003): the bandwidth is twice the first
/// lag m after which `|ρ_j| < KERNEL_C · sqrt(log10 L / L)` for [`KERNEL_LAGS`] lags in a
/// row (Politis' c = 2 and K = 5)...
pub const KERNEL_C: f64 = 2.0;
/// ...for this many lags in a row...
pub const KERNEL_LAGS: usize = 5;
/// ...searched up to lag `min(L / 4, KERNEL_REACH · ⌈L^(1/3)⌉)`: 104 at L = 2,000 (an AR(1)
/// 0.98 component with a quarter of the variance needs about 90), 800 at 10⁶; unbounded,
/// a persistent segment (ρ_j never small) would cost O(L²).
pub const KERNEL_REACH: usize = 8;
/// Ranks this autocorrelated within the segments found: a drifting metric (when they keep a
/// unit root, [`keeps_unit_root`]).
pub const DRIFT_RHO: f64 = 0.93;
/// A Dickey–Fuller t below this rejects the unit root. Further out than the test's 1% point
/// with a constant (-3.43; Fuller 1976, MacKinnon 2010): on the ranks of 400 random walks
/// of 500 to 10,000 values, 0.25% fell below -3.96 and 0.5–1.25% below -3.43, and a walk
/// taken for stationary reports its excursions as changes. AR(1) φ = 0.95 from 1,000
/// values falls below it in 100% of series (φ = 0.99: 5% at 1,000 values, 57% at 3,000,
/// 100% at 5,000).
pub const UNIT_ROOT_T: f64 = -3.96;
/// A jump's increment is scaled by the MAD of the this many increments nearest it
/// ([`level_jumps`])...
pub const JUMP_NEIGHBOURS: usize = 40;
/// ...and its z read against Student's t with this many degrees of freedom: the z of a
/// Gaussian increment over the MAD of 40 others exceeds 4.16, 5.19 and 6.76 with
/// probabilities 1e-3, 1e-4 and 1e-5 (400,000 draws), where t(12) gives 1.3e-3, 2.3e-4 and
/// 2.0e-5 (t(15) 6.4e-6 at the last: too light).
pub const JUMP_DF: f64 = 12.0;
/// Increments whose deviation from the median increment is at most this times the mean
/// deviation of their window are not tested (they cannot reach a z that passes).
pub const JUMP_SCREEN: f64 = 2.5;
/// The values after a jump lie all above (below) the values before it, this many on each
/// side, their median by half the jump or more; jumps this close keep the largest z.
pub const JUMP_LEVEL: usize = 10;
/// A scale at most this times max |x| is rounding (values on a grid, a steady ramp): no
/// jump is tested there.
pub const JUMP_RESOLUTION: f64 = 1e-9;
/// 1 / Φ⁻¹(3/4): the MAD of Gaussian values times this is their standard deviation.
const MAD_NORMAL: f64 = 1.482_602_218_505_602;
/// The incident scan's narrowest window ([`incidents`]): 8 values on each side...
pub const SCAN_NARROWEST: usize = 8;
/// ...doubled this many times at most (8, 16, …, 256)...
pub const SCAN_WIDTHS: usize = 6;
/// ...a window of w values scanned over at least this many times w values (with fewer the
/// MAD of the window differences, from fewer than 8 windows apart, is too noisy: on AR(1)
/// 0.9 metrics of 100 values a span of 8 gave 3% false changes at p <= 0.01, of 16 none)...
pub const SCAN_SPAN: usize = 16;
/// ...of which `w (1 - share of the commonest value) >= SCAN_VARIED` differ from the
/// commonest value (sparse flags: a window of a few events is far from Gaussian).
pub const SCAN_VARIED: usize = 5;
/// The window differences' median and MAD read every ⌈m / SCAN_SAMPLE⌉-th of the m.
pub const SCAN_SAMPLE: usize = 4_096;
/// The standardised window difference's autocorrelation falls as `1 - 1.5 |h| / w` near
/// h = 0: the slope in the scan's tail probability (Pickands 1969).
pub const SCAN_CROSSINGS: f64 = 1.5;
/// A run of changes spanning less than a tenth of the segments before and after it, whose
/// pieces' mean ranks move one way, is one move seen through a transition
/// ([`merge_transitions`]).
pub const TRANSITION_SHARE: usize = 10;
const INV_SQRT_2PI: f64 = 0.398_942_280_401_432_7;
/// Terms of the Kolmogorov series at most.
const KOLMOGOROV_TERMS: i64 = 100;
const STAGE: &str = "distribution_shift";

fn run(columns: &[&[f64]], params: &Params, budget: &Budget) -> CoreResult<Table> {
    let min_segment = params.count("min_segment", 2)?;
    let alpha = params.unit_interval("alpha")?;
    let metrics = change_points(columns, min_segment, alpha, budget)?;
    Ok(table(&metrics))
}

/// One change of a metric (positions among its present values).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Change {
    /// First value after the change.
    pub change_index: usize,
    /// Start of the segment before the change, end of the segment after it.
    pub segment_start: usize,
    pub segment_end: usize,
    /// T of the change's own test and its p-value.
    pub statistic: f64,
    pub p_value: f64,
    /// Found by the spread scores (else the level scores).
    pub spread: bool,
    /// Found in the task-to-task differences of a metric drifting over all its values (a
    /// change of its trend's slope; never with `spread`): the summaries are
    /// of the differences, and `change_index` is the first value after the first
    /// difference of the new regime.
    pub differenced: bool,
    pub mean_before: f64,
    pub mean_after: f64,
    pub median_before: f64,
    pub median_after: f64,
    pub std_before: f64,
    pub std_after: f64,
}

/// One metric's changes and drift.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricChanges {
    pub count: usize,
    /// At least 2·min_segment values, not all equal.
    pub tested: bool,
    /// The lag-1 autocorrelation of the ranks within the segments the search found,
    /// bias-corrected ([`residual_rho`]; NaN untested or every segment constant).
    pub phi: f64,
    pub drifting: bool,
    /// The widest span found drifting ([`widest_drift`]), [start, end) (-1, -1 when none).
    pub drift: Option<(usize, usize)>,
    /// The period of the cycle removed before the search ([`seasonal_period`]), if any.
    pub period: Option<usize>,
    pub changes: Vec<Change>,
}

/// Every metric's changes (metrics in parallel; the budget is checked per metric and per
/// segment searched). A metric without a cycle of its own is tested at the periods the
/// others repeat ([`shared_cycle`]), and searched again when it has one of them; one still
/// without is scanned for a cycle of its commonest value's share ([`atom_cycle`]).
pub fn change_points(
    columns: &[&[f64]],
    min_segment: usize,
    alpha: f64,
    budget: &Budget,
) -> CoreResult<Vec<MetricChanges>> {
    /// Where a search looks for a metric's cycle.
    enum Pass<'p> {
        Own,
        Shared(&'p [usize]),
        Atom,
    }
    column_length(columns)?;
    let search = |column: &[f64], pass: &Pass<'_>| {
        budget.check(STAGE)?;
        let present = present_values(column);
        // A cycle's phase counts tasks, so the cycle search reads the present values'
        // task positions.
        let tasks: Vec<usize> = (0..column.len()).filter(|&t| !column[t].is_nan()).collect();
        let (tasks, length) = (&tasks[..], column.len());
        let cycles = match *pass {
            Pass::Own => Cycles::At { tasks, length },
            Pass::Shared(periods) => Cycles::Shared {
                tasks,
                length,
                periods,
            },
            Pass::Atom => Cycles::Atom { tasks, length },
        };
        metric_changes(&present, cycles, min_segment, alpha, budget)
    };
    let mut metrics = columns
        .par_iter()
        .map(|column| search(column, &Pass::Own))
        .collect::<CoreResult<Vec<_>>>()?;
    let mut periods: Vec<usize> = metrics.iter().filter_map(|m| m.period).collect();
    periods.sort_unstable();
    periods.dedup();
    let passes = if periods.is_empty() {
        vec![Pass::Atom]
    } else {
        vec![Pass::Shared(&periods), Pass::Atom]
    };
    for pass in &passes {
        let again = columns
            .par_iter()
            .zip(&metrics)
            .map(|(column, found)| {
                if found.period.is_some() || !found.tested {
                    return Ok(None);
                }
                let cycled = search(column, pass)?;
                Ok(cycled.period.is_some().then_some(cycled))
            })
            .collect::<CoreResult<Vec<_>>>()?;
        for (found, cycled) in metrics.iter_mut().zip(again) {
            if let Some(cycled) = cycled {
                *found = cycled;
            }
        }
    }
    Ok(metrics)
}

fn table(metrics: &[MetricChanges]) -> Table {
    let index = |position: Option<usize>| position.map_or(-1, |p| p as i64);
    let mut table = Table::new()
        .with(
            "count",
            metrics.iter().map(|m| m.count as i64).collect::<Vec<_>>(),
        )
        .with(
            "tested",
            metrics.iter().map(|m| m.tested).collect::<Vec<_>>(),
        )
        .with("phi", metrics.iter().map(|m| m.phi).collect::<Vec<_>>())
        .with(
            "drifting",
            metrics.iter().map(|m| m.drifting).collect::<Vec<_>>(),
        )
        .with(
            "drift_start",
            metrics
                .iter()
                .map(|m| index(m.drift.map(|d| d.0)))
                .collect::<Vec<_>>(),
        )
        .with(
            "drift_end",
            metrics
                .iter()
                .map(|m| index(m.drift.map(|d| d.1)))
                .collect::<Vec<_>>(),
        )
        .with(
            "period",
            metrics
                .iter()
                .map(|m| m.period.map_or(0, |p| p as i64))
                .collect::<Vec<_>>(),
        );
    let changes: Vec<(usize, &Change)> = metrics
        .iter()
        .enumerate()
        .flat_map(|(metric, m)| m.changes.iter().map(move |change| (metric, change)))
        .collect();
    let ints = |get: fn(&Change) -> usize| -> Vec<i64> {
        changes.iter().map(|(_, c)| get(c) as i64).collect()
    };
    let floats =
        |get: fn(&Change) -> f64| -> Vec<f64> { changes.iter().map(|(_, c)| get(c)).collect() };
    table.push(
        "metric",
        changes.iter().map(|(m, _)| *m as i64).collect::<Vec<_>>(),
    );
    table.push("change_index", ints(|c| c.change_index));
    table.push("segment_start", ints(|c| c.segment_start));
    table.push("segment_end", ints(|c| c.segment_end));
    table.push("statistic", floats(|c| c.statistic));
    table.push("p_value", floats(|c| c.p_value));
    table.push(
        "spread",
        changes.iter().map(|(_, c)| c.spread).collect::<Vec<_>>(),
    );
    table.push(
        "differenced",
        changes
            .iter()
            .map(|(_, c)| c.differenced)
            .collect::<Vec<_>>(),
    );
    table.push("mean_before", floats(|c| c.mean_before));
    table.push("mean_after", floats(|c| c.mean_after));
    table.push("median_before", floats(|c| c.median_before));
    table.push("median_after", floats(|c| c.median_after));
    table.push("std_before", floats(|c| c.std_before));
    table.push("std_after", floats(|c| c.std_after));
    table
}

/// P(sup |B(t)| > x) for a Brownian bridge B (Kolmogorov 1933):
/// `2 Σ_{k≥1} (-1)^(k-1) exp(-2k²x²)` for x >= 1, else
/// `1 - sqrt(2π)/x Σ_{k≥1} exp(-(2k-1)²π²/(8x²))`; terms until one is below 1e-300 (at most
/// 100); clipped to [0, 1]; 1 for x <= 0 or NaN.
pub fn kolmogorov_survival(x: f64) -> f64 {
    if x.is_nan() || x <= 0.0 {
        return 1.0;
    }
    let mut total = 0.0;
    if x >= 1.0 {
        for k in 1..=KOLMOGOROV_TERMS {
            let kf = k as f64;
            let term = (-2.0 * kf * kf * x * x).exp();
            if k % 2 == 1 {
                total += term;
            } else {
                total -= term;
            }
            if term < 1e-300 {
                break;
            }
        }
        return (2.0 * total).clamp(0.0, 1.0);
    }
    let pi = std::f64::consts::PI;
    for k in 1..=KOLMOGOROV_TERMS {
        let odd = (2 * k - 1) as f64;
        let term = (-(odd * odd) * pi * pi / (8.0 * x * x)).exp();
        total += term;
        if term < 1e-300 {
            break;
        }
    }
    (1.0 - (2.0 * pi).sqrt() / x * total).clamp(0.0, 1.0)
}

/// (Σe², Σ e_t e_{t+1}, mean) of one side's residuals e = s - mean(s), from exact integer
/// sums: `q Σe² = q Σs² - S²`, `q² Σ e_t e_{t+1} = q² P - q S (2S - first - last) + (q-1) S²`
/// with P = Σ s_t s_{t+1}.
fn side_moments(side: &[i64]) -> (f64, f64, f64) {
    let q = side.len() as i128;
    let total: i128 = side.iter().map(|&s| s as i128).sum();
    let squares: i128 = side.iter().map(|&s| (s as i128) * (s as i128)).sum();
    let lagged: i128 = side
        .windows(2)
        .map(|w| (w[0] as i128) * (w[1] as i128))
        .sum();
    let ends = side[0] as i128 + side[side.len() - 1] as i128;
    let energy = q
        .checked_mul(squares)
        .and_then(|a| a.checked_sub(total.checked_mul(total)?));
    let products = (|| {
        let a = q.checked_mul(q)?.checked_mul(lagged)?;
        let b = q.checked_mul(total)?.checked_mul(2 * total - ends)?;
        let c = (q - 1).checked_mul(total)?.checked_mul(total)?;
        a.checked_sub(b)?.checked_add(c)
    })();
    let mean = total as f64 / q as f64;
    match (energy, products) {
        (Some(energy), Some(products)) => (
            energy as f64 / q as f64,
            products as f64 / (q * q) as f64,
            mean,
        ),
        // beyond i128 (a piece of about 38M doubled ranks): the same sums in floats
        _ => {
            let residual = |s: i64| s as f64 - mean;
            let energy = side.iter().map(|&s| residual(s) * residual(s)).sum();
            let products = side
                .windows(2)
                .map(|w| residual(w[0]) * residual(w[1]))
                .sum();
            (energy, products, mean)
        }
    }
}

/// Whether the scores keep a unit root: the Dickey–Fuller t of their bias-corrected lag-1
/// autocorrelation ρ about their means between `cuts` (the jumps, [`level_jumps`]: a step
/// passes for a unit root when the test ignores it, Perron 1989; [`residual_rho`]),
/// `(ρ - 1) / sqrt((1 - ρ²) / (n - 1))`, is above [`UNIT_ROOT_T`] (ρ >= 1: it is).
pub fn keeps_unit_root(scores: &[i64], cuts: &[usize]) -> bool {
    let mut bounds = Vec::with_capacity(cuts.len() + 2);
    bounds.push(0);
    bounds.extend_from_slice(cuts);
    bounds.push(scores.len());
    let Some((_, rho)) = residual_rho(scores, &bounds) else {
        return true;
    };
    if rho >= 1.0 {
        return true;
    }
    if rho <= -1.0 {
        return false;
    }
    let error = ((1.0 - rho * rho) / (scores.len() as f64 - 1.0)).sqrt();
    (rho - 1.0) / error > UNIT_ROOT_T
}

/// `Var(D) / Var(x)` for the difference D of the sums of two adjacent windows of `width`
/// values of an AR(1) series with lag-1 autocorrelation ρ: `2 Var(S_w) - 2 Cov(S_after,
/// S_before) = 2w (1 + ρ)/(1 - ρ) - 4ρ (1 - ρ^w)/(1 - ρ)² - 2ρ (1 - ρ^w)²/(1 - ρ)²`
/// (2w at ρ = 0).
pub fn window_difference_variance(width: usize, rho: f64) -> f64 {
    let gone = 1.0 - rho.powf(width as f64);
    let rest = (1.0 - rho) * (1.0 - rho);
    2.0 * width as f64 * (1.0 + rho) / (1.0 - rho)
        - 4.0 * rho * gone / rest
        - 2.0 * rho * gone * gone / rest
}

/// Whether the mean rank of the `width` values from `position` is above, below or equal to
/// that of the `width` before it (fewer at the ends; exact integers).
pub fn window_direction(ranks: &[i64], position: usize, width: usize) -> std::cmp::Ordering {
    let before = &ranks[position.saturating_sub(width)..position];
    let after = &ranks[position..(position + width).min(ranks.len())];
    let sum = |side: &[i64]| side.iter().map(|&rank| rank as i128).sum::<i128>();
    (sum(after) * before.len() as i128).cmp(&(sum(before) * after.len() as i128))
}

/// The index of the item nearest `at` within `reach` among those `place` gives a position
/// (the earliest of equally near ones), if any.
fn nearest<T>(
    items: &[T],
    at: usize,
    reach: usize,
    place: impl Fn(&T) -> Option<usize>,
) -> Option<usize> {
    items
        .iter()
        .enumerate()
        .filter_map(|(index, item)| place(item).map(|position| (position.abs_diff(at), index)))
        .filter(|&(distance, _)| distance <= reach)
        .min()
        .map(|(_, index)| index)
}

/// One change the incident scan finds ([`incidents`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scanned {
    /// The first value after the change.
    pub position: usize,
    pub z: f64,
    pub p_value: f64,
    /// The window width that found it.
    pub width: usize,
}

/// Whether the spread of a metric's values with its cycle removed (`removed`, one per
/// present value) repeats the cycle of `period` tasks: [`deviations_repeat`] of them placed
/// at their tasks (a utilisation clipped at 100% at the daily peak, a queue wait that is 0
/// outside it: no spread at some phases, a wide one at others).
fn spread_follows_cycle(removed: &[f64], period: usize, cycles: Cycles<'_>) -> bool {
    match cycles {
        Cycles::At { tasks, length }
        | Cycles::Shared { tasks, length, .. }
        | Cycles::Atom { tasks, length } => {
            let mut column = vec![f64::NAN; length];
            for (&task, &value) in tasks.iter().zip(removed) {
                column[task] = value;
            }
            deviations_repeat(&column, tasks, period)
        }
        Cycles::None | Cycles::Consecutive => {
            let tasks: Vec<usize> = (0..removed.len()).collect();
            deviations_repeat(removed, &tasks, period)
        }
    }
}

/// The doubled mid-ranks of the values within each phase group (`phases`: the group of
/// each position), put on the scale of the whole series: `round(r (L + 1) / (n_g + 1))`
/// for the rank r among the n_g values of its group, in integers (halves up), so every
/// group's scores have about the mean L + 1 of the series' doubled mid-ranks. These are
/// the ranks of a stratified rank test (van Elteren 1960): a value is compared with the
/// values at the same phases only. Where the spread follows the cycle
/// (none at the phases where a utilisation is clipped or a queue is empty, a wide one at
/// the others), ranks over the whole series carry the cycle into their level (a phase's
/// zeros rank below its waits, and its waits above every zero of the quiet phases) and
/// into Mood's spread scores; the stratified ranks keep the level test's null, and the
/// spread is not tested (a phase without spread has no spread to change).
fn stratified_ranks(values: &[f64], phases: &[usize]) -> Vec<i64> {
    let count = values.len() as i64;
    let groups = phases.iter().max().map_or(0, |&group| group + 1);
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); groups];
    for (position, &group) in phases.iter().enumerate() {
        members[group].push(position);
    }
    let mut ranks = vec![0i64; values.len()];
    for positions in &members {
        let within: Vec<f64> = positions.iter().map(|&position| values[position]).collect();
        let size = positions.len() as i64;
        for (&position, rank) in positions.iter().zip(doubled_midranks(&within)) {
            ranks[position] = (2 * rank * (count + 1) + size + 1) / (2 * (size + 1));
        }
    }
    ranks
}

/// The mean and population sd of the scores `score(rank)` of each phase group (`phases`:
/// the group of each position), each summed in position order, the sd 0 exactly for a
/// group whose ranks are all equal; None when a group has no value.
fn phase_moments(
    ranks: &[i64],
    phases: &[usize],
    score: &dyn Fn(i64) -> f64,
) -> Option<(Vec<f64>, Vec<f64>)> {
    let groups = phases.iter().max()? + 1;
    let mut sums = vec![0.0; groups];
    let mut counts = vec![0usize; groups];
    let mut lowest = vec![i64::MAX; groups];
    let mut highest = vec![i64::MIN; groups];
    for (&rank, &group) in ranks.iter().zip(phases) {
        sums[group] += score(rank);
        counts[group] += 1;
        lowest[group] = lowest[group].min(rank);
        highest[group] = highest[group].max(rank);
    }
    if counts.contains(&0) {
        return None;
    }
    let means: Vec<f64> = sums
        .iter()
        .zip(&counts)
        .map(|(&s, &c)| s / c as f64)
        .collect();
    let mut squares = vec![0.0; groups];
    for (&rank, &group) in ranks.iter().zip(phases) {
        let deviation = score(rank) - means[group];
        squares[group] += deviation * deviation;
    }
    let sds: Vec<f64> = (0..groups)
        .map(|group| {
            if lowest[group] == highest[group] {
                0.0
            } else {
                (squares[group] / counts[group] as f64).sqrt()
            }
        })
        .collect();
    Some((means, sds))
}

/// The level changes a multiscale moving-sum scan finds (MOSUM: Eichinger & Kirch 2018;
/// multiscale, narrowest first: Messer et al. 2014), by position: binary segmentation's
/// CUSUM over a whole segment cannot see a short incident (a regression of 30 tasks and
/// its fix in 2,000: the CUSUM's extremes are ±w h (1 - w/n), about its noise), and a
/// window around it can.
///
/// Over the van der Waerden scores `s = Φ⁻¹(r / (2 (L + 1)))` of the doubled mid-ranks r
/// (distribution-free as ranks are, and Gaussian: a shift of 3 SD stays about 3, where
/// ranks saturate), at each window width w of [`SCAN_NARROWEST`] · 2^k (k < [`SCAN_WIDTHS`],
/// `L >= SCAN_SPAN w`, `w (1 - share of the commonest rank) >= SCAN_VARIED`), the difference
/// `D_t` of the sums of the w scores from t and the w before (t = w..=L - w), standardised
/// as `z = |D_t - c| / max(MAD_NORMAL · MAD, sd(s) · sqrt(V_w(ρ)))`: c and MAD the median and
/// MAD of the `D_t` (every ⌈m / [`SCAN_SAMPLE`]⌉-th), which see a slow component or a cycle
/// at the window's scale, and [`window_difference_variance`] of an AR(1) series with the
/// ranks' lag-1 autocorrelation ρ within their segments (the search's `phi`, clipped to
/// [0, 0.97]), which the MAD of few windows can miss. Its tail probability over the scan:
/// `p = min(1, W · 2 (L - 2w + 1) · (1.5 / w) · z φ(z))` for z >= 2 (1 below: the product
/// is at least 42 · 0.108 there), the expected
/// number of upcrossings of a stationary Gaussian process whose correlation falls as
/// `1 - 1.5 |h| / w` (Pickands 1969; Rice's formula), Bonferroni over the W widths; the
/// Gumbel limit of Eichinger & Kirch was 5 times too large at these lengths. In each run of
/// consecutive positions with `p <= alpha` the first largest z is a change; the narrowest
/// widths place changes best, and a wider one's change is kept unless a kept change going
/// its way ([`window_direction`] at its w) is within its w, to the nearest of which it then
/// lends its z and p when its p is smaller (each p already counts every width): the two
/// ends of a short incident go opposite ways.
///
/// With `phases` (the phase group of each position, for a metric whose cycle was removed
/// before the search: groups as `shared::seasonal::phase_group_count`), the scores are
/// first centred and scaled within their groups ([`phase_moments`]); a group whose ranks
/// are all equal (a queue empty outside the daily peak) adds 0, and each window's
/// difference is then scaled by its share of values in varying groups against the
/// series' share. Removing a cycle by
/// its phases' medians leaves the phases' score means and spreads unequal when the spread
/// follows the cycle: an error rate per window whose traffic falls fifteenfold at night is
/// 0 in most night windows (a middle rank) and a top rank in the rest, so the night's
/// scores have a larger mean and spread than the day's, and windows shorter than the day
/// read dusk as a change (a false change in 17.5% of two-week exports, p down to 4e-6;
/// none after, `benches/RESULTS.md`).
///
/// Null calibration (300 series each of 100, 500 and 2,000 values; any change at
/// p <= 0.01): iid Gaussian, log-normal, Poisson 2, Bernoulli 0.2 and 0.05, AR(1) 0.5 and
/// 0.9, a slow AR(1) 0.98 or 0.9 component under noise, a trend, a daily sine: at most
/// 1.0%, most 0.
pub fn incidents(
    ranks: &[i64],
    alpha: f64,
    rho: f64,
    phases: Option<&[usize]>,
    budget: &Budget,
) -> CoreResult<Vec<Scanned>> {
    let count = ranks.len();
    let commonest = commonest_count(ranks);
    let widths: Vec<usize> = (0..SCAN_WIDTHS)
        .map(|k| SCAN_NARROWEST << k)
        .filter(|&width| {
            width * SCAN_SPAN <= count && width * (count - commonest) >= SCAN_VARIED * count
        })
        .collect();
    if widths.is_empty() {
        return Ok(Vec::new());
    }
    // the scores are computed again where needed rather than kept (8 bytes a value less)
    let scale_of = 2.0 * (count + 1) as f64;
    let raw_score = |rank: i64| normal_quantile(rank as f64 / scale_of);
    let standard = phases.and_then(|phases| phase_moments(ranks, phases, &raw_score));
    let score = |position: usize, rank: i64| match (&standard, phases) {
        (Some((means, sds)), Some(phases)) => {
            let group = phases[position];
            if sds[group] > 0.0 {
                (raw_score(rank) - means[group]) / sds[group]
            } else {
                0.0 // a phase group without spread adds nothing
            }
        }
        _ => raw_score(rank),
    };
    // With phase groups without spread, the positions in groups that vary, counted up to
    // each position: a window's difference has the variance of its varying values only.
    let varying: Option<Vec<usize>> = match (&standard, phases) {
        (Some((_, sds)), Some(phases)) if sds.contains(&0.0) => {
            let mut counted = Vec::with_capacity(count + 1);
            let mut running = 0;
            counted.push(running);
            for &group in phases {
                running += usize::from(sds[group] > 0.0);
                counted.push(running);
            }
            Some(counted)
        }
        _ => None,
    };
    let mut prefix = Vec::with_capacity(count + 1);
    let mut running = 0.0;
    prefix.push(running);
    for (position, &rank) in ranks.iter().enumerate() {
        running += score(position, rank);
        prefix.push(running);
    }
    // the population sd as mean_and_sum_of_squares has it (the ranks vary: not constant)
    let mean = running / count as f64;
    let sum_of_squares: f64 = ranks
        .iter()
        .enumerate()
        .fold(0.0, |total, (position, &rank)| {
            let deviation = score(position, rank) - mean;
            total + deviation * deviation
        });
    let spread = (sum_of_squares / count as f64).sqrt();
    let mut found: Vec<Scanned> = Vec::new();
    for &width in &widths {
        budget.check(STAGE)?;
        let difference =
            |t: usize| (prefix[t + width] - prefix[t]) - (prefix[t] - prefix[t - width]);
        let positions = count - 2 * width + 1;
        let stride = positions.div_ceil(SCAN_SAMPLE);
        let sample: Vec<f64> = (width..=count - width)
            .step_by(stride)
            .map(difference)
            .collect();
        let (centre, mad) = median_and_mad(&sample);
        if mad <= 0.0 {
            continue;
        }
        let scale = (MAD_NORMAL * mad).max(spread * window_difference_variance(width, rho).sqrt());
        let factor = widths.len() as f64 * 2.0 * positions as f64 * SCAN_CROSSINGS / width as f64;
        let mut best: Option<(usize, f64, f64)> = None;
        for t in width..=count - width {
            let z = match &varying {
                // scaled by the window's share of varying values against the series'
                // (their scores have variance 1, the others 0, so spread² is that share)
                Some(counted) => {
                    let share =
                        (counted[t + width] - counted[t - width]) as f64 / (2 * width) as f64;
                    if share > 0.0 {
                        (difference(t) - centre).abs()
                            / (scale * (share / (spread * spread)).sqrt())
                    } else {
                        0.0
                    }
                }
                None => (difference(t) - centre).abs() / scale,
            };
            // below 2, p is 1: factor >= 42 and z φ(z) >= 0.108 on [1, 2]
            let p_value = if z < 2.0 {
                1.0
            } else {
                (factor * z * (-0.5 * z * z).exp() * INV_SQRT_2PI).min(1.0)
            };
            if p_value <= alpha {
                if best.is_none_or(|(_, most, _)| z > most) {
                    best = Some((t, z, p_value));
                }
            } else if let Some((at, z, p_value)) = best.take() {
                found.push(Scanned {
                    position: at,
                    z,
                    p_value,
                    width,
                });
            }
        }
        if let Some((at, z, p_value)) = best {
            found.push(Scanned {
                position: at,
                z,
                p_value,
                width,
            });
        }
    }
    found.sort_by(|a, b| {
        a.width
            .cmp(&b.width)
            .then(a.p_value.total_cmp(&b.p_value))
            .then(a.position.cmp(&b.position))
    });
    let mut kept: Vec<Scanned> = Vec::new();
    for change in found {
        let way = window_direction(ranks, change.position, change.width);
        let near = nearest(&kept, change.position, change.width, |other| {
            (window_direction(ranks, other.position, change.width) == way).then_some(other.position)
        });
        match near {
            None => kept.push(change),
            // seen better by the wider window: its z and p at the narrower one's place
            Some(index) if change.p_value < kept[index].p_value => {
                kept[index].z = change.z;
                kept[index].p_value = change.p_value;
            }
            Some(_) => {}
        }
    }
    kept.sort_by_key(|change| change.position);
    Ok(kept)
}

/// The values the jump test reads: `ln x` for a clearly right-skewed positive metric (the
/// outlier scale's rule, [`clearly_right_skewed`]) whose `ranks` reject a unit root over all
/// its values ([`keeps_unit_root`] without cuts), else the values. A stationary
/// multiplicative metric's increments grow with its level: at the top of a slow excursion
/// of a latency (100 ms · exp of an AR(1) 0.95 load of unit variance, 10% noise of its own)
/// the raw increments were ten times those of their neighbours, and a jump with p down to
/// 1e-5 was found in 25% of 2,000-value series (1% on the log scale). A metric that keeps
/// its unit root (a price that grows fortyfold) keeps its raw scale: over a long climb the
/// local window follows the scale, and its jumps are the moves a person sees on its plot
/// (the TCPD series `shanghai_license`: the annotated jump at 147 on the raw scale, a move
/// at 12 on the log scale).
pub fn jump_scale<'a>(values: &'a [f64], ranks: &[i64]) -> Cow<'a, [f64]> {
    // the unit-root test first: O(n), where the medcouple reads 512 values pairwise
    if !keeps_unit_root(ranks, &[]) && clearly_right_skewed(values) {
        Cow::Owned(values.iter().map(|v| v.ln()).collect())
    } else {
        Cow::Borrowed(values)
    }
}

/// One jump of a metric's level ([`level_jumps`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Jump {
    /// The first value of the new level.
    pub position: usize,
    pub z: f64,
    pub p_value: f64,
}

/// The jumps of the values, by position: abrupt moves of the level that stay, after the
/// local jump test of Lee & Mykland (2008) with a robust local scale. Each increment
/// `d_t = x_{t+1} - x_t` is screened (its deviation from the median increment above
/// [`JUMP_SCREEN`] times the mean deviation of its window: the [`JUMP_NEIGHBOURS`] + 1
/// increments nearest it, the first or last ones at the ends, t excluded from the mean),
/// then scaled by the median c and the MAD of its window without it,
/// `z = |d_t - c| / (MAD_NORMAL · MAD)`, and tested against Student's t([`JUMP_DF`]),
/// Bonferroni over the m increments: `p = min(1, m · P(|t| >= z))`. A jump when `p <= alpha`
/// and the [`JUMP_LEVEL`] values from t + 1 lie all beyond the [`JUMP_LEVEL`] before it, its
/// way, their median by at least half of `d_t - c` (a lone outlier, also on a steady climb,
/// or a noisy step whose sides overlap, is no jump here); of jumps
/// within [`JUMP_LEVEL`] of each other the largest z is kept (the first of equal ones). No
/// jump where the window's scale is rounding ([`JUMP_RESOLUTION`]) or a difference is not
/// finite, nor with `m <= JUMP_NEIGHBOURS`.
///
/// The null is a path whose increments are locally Gaussian (AR(1), random walks, with
/// slowly varying scale): on 100 series each of 200 and 2,000 values (Gaussian AR(1) 0.9 to
/// 0.99, random walks, log-normal AR(1) 0.99) none had a jump with p <= 0.001. Heavy-tailed
/// increments have jumps by this null: random walks with t(3) steps had 1–9 (median 4) at
/// 2,000 values, their largest steps. The change-point search calls it only on metrics
/// persistent within their segments (`phi` >= [`DRIFT_RHO`]): there the rank CUSUM's
/// long-run variance is inflated by the persistence, and an AR(1) 0.99 metric with a step of
/// 20 increment SDs (2.8 marginal SDs) had it found in 0 of 40 series, a random walk's in 0
/// of 40.
pub fn level_jumps(values: &[f64], alpha: f64) -> Vec<Jump> {
    let differences: Vec<f64> = values.windows(2).map(|pair| pair[1] - pair[0]).collect();
    let count = differences.len();
    if count <= JUMP_NEIGHBOURS || differences.iter().any(|d| !d.is_finite()) {
        return Vec::new();
    }
    let middle = median(&differences);
    let deviations: Vec<f64> = differences.iter().map(|d| (d - middle).abs()).collect();
    let mut prefix = Vec::with_capacity(count + 1);
    let mut running = 0.0;
    prefix.push(running);
    for &deviation in &deviations {
        running += deviation;
        prefix.push(running);
    }
    let resolution = JUMP_RESOLUTION * values.iter().fold(0.0f64, |most, v| most.max(v.abs()));
    let last_start = count - JUMP_NEIGHBOURS - 1;
    let mut found: Vec<Jump> = Vec::new();
    let mut neighbours = Vec::with_capacity(JUMP_NEIGHBOURS);
    for t in 0..count {
        let start = t.saturating_sub(JUMP_NEIGHBOURS / 2).min(last_start);
        let end = start + JUMP_NEIGHBOURS + 1;
        let window = prefix[end] - prefix[start] - deviations[t];
        if deviations[t] <= JUMP_SCREEN * (window / JUMP_NEIGHBOURS as f64) {
            continue;
        }
        neighbours.clear();
        neighbours.extend((start..end).filter(|&j| j != t).map(|j| differences[j]));
        let (centre, mad) = median_and_mad(&neighbours);
        let scale = MAD_NORMAL * mad;
        if scale <= resolution {
            continue;
        }
        let offset = differences[t] - centre;
        let z = offset.abs() / scale;
        let p_value = (count as f64 * student_t_two_sided_p(z, JUMP_DF)).min(1.0);
        let position = t + 1;
        if p_value > alpha || position < JUMP_LEVEL || values.len() - position < JUMP_LEVEL {
            continue;
        }
        let before = &values[position - JUMP_LEVEL..position];
        let after = &values[position..position + JUMP_LEVEL];
        let lowest = |side: &[f64]| side.iter().copied().fold(f64::INFINITY, f64::min);
        let highest = |side: &[f64]| side.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let (separate, moved) = if offset > 0.0 {
            (
                lowest(after) > highest(before),
                median(after) - median(before),
            )
        } else {
            (
                highest(after) < lowest(before),
                median(before) - median(after),
            )
        };
        let stays = separate && moved >= offset.abs() / 2.0;
        if stays {
            found.push(Jump {
                position,
                z,
                p_value,
            });
        }
    }
    found.sort_by(|a, b| b.z.total_cmp(&a.z).then(a.position.cmp(&b.position)));
    let mut kept: Vec<Jump> = Vec::new();
    for jump in found {
        if kept
            .iter()
            .all(|other| jump.position.abs_diff(other.position) > JUMP_LEVEL)
        {
            kept.push(jump);
        }
    }
    kept.sort_by_key(|jump| jump.position);
    kept
}

/// (Σe², ρ) of the scores demeaned within the pieces cut at `bounds` (0 = b₀ < … < b_J = L):
/// `ρ = Σ e_t e_{t+1} / Σe²` over every adjacent pair (the pairs across cuts included; the
/// pieces' sums in order, then the pairs across cuts in order), bias-corrected to
/// `ρ + J (1 + 3ρ) / L` (Kendall 1954, once per fitted mean), not clipped. None when
/// Σe² = 0 (every piece constant).
pub fn residual_rho(scores: &[i64], bounds: &[usize]) -> Option<(f64, f64)> {
    let pieces = bounds.len() - 1;
    let mut energy = 0.0;
    let mut products = 0.0;
    let mut means = Vec::with_capacity(pieces);
    for window in bounds.windows(2) {
        let (piece_energy, piece_products, mean) = side_moments(&scores[window[0]..window[1]]);
        energy += piece_energy;
        products += piece_products;
        means.push(mean);
    }
    for (index, &cut) in bounds[1..pieces].iter().enumerate() {
        products +=
            (scores[cut - 1] as f64 - means[index]) * (scores[cut] as f64 - means[index + 1]);
    }
    if energy <= 0.0 {
        return None;
    }
    let rho = products / energy;
    Some((
        energy,
        rho + pieces as f64 * (1.0 + 3.0 * rho) / scores.len() as f64,
    ))
}

/// The lag-1 autocorrelation of integer scores from their variogram at lags 1 and 2:
/// `D_j = Σ (s_t - s_{t-j})² / count` over the pairs (t - j, t) that do not straddle `cut`
/// (`t - j < cut <= t`), `ρ = D₂/D₁ - 1` (exact integer sums; the floats formed as
/// `(D₂ sum / count₂) / (D₁ sum / count₁) - 1`), not clipped. 0 with fewer than 4 scores or
/// when D₁ = 0.
pub fn difference_rho(scores: &[i64], cut: usize) -> f64 {
    let length = scores.len();
    if length < 4 {
        return 0.0;
    }
    let (mut lag1, mut count1, mut lag2, mut count2) = (0i128, 0usize, 0i128, 0usize);
    for t in 1..length {
        if t != cut {
            let step = (scores[t] - scores[t - 1]) as i128;
            lag1 += step * step;
            count1 += 1;
        }
        if t >= 2 && t != cut && t != cut + 1 {
            let step = (scores[t] - scores[t - 2]) as i128;
            lag2 += step * step;
            count2 += 1;
        }
    }
    if count1 == 0 || count2 == 0 || lag1 == 0 {
        return 0.0;
    }
    (lag2 as f64 / count2 as f64) / (lag1 as f64 / count1 as f64) - 1.0
}

/// The ratio of the long-run variance to the variance of the scores from their block sums
/// (a batch-means estimate made robust to steps): blocks of `j = max(2, ⌊L^0.6 + 1/2⌋)`
/// scores from the start, the differences `d_i = B_{i+1} - B_i` of adjacent block sums
/// whose two blocks hold no cut, `lrv = median(d²) / (χ²₁ median · 2 j)` (for block sums
/// much longer than the correlation, d is normal with variance 2 j lrv; the median leaves
/// out the few differences a step not yet cut falls in), over `γ₀ = Σe² / L` (`energy`);
/// the smaller of this ratio at widths j and 2 j, because a cycle (which has no long-run
/// variance) swings block sums half a period long but not those a whole period long.
/// 1 with fewer than [`MIN_BLOCKS`] blocks of width j. Why: the AR(1) ratio reads the
/// lag-1 autocorrelation, which a slow component under per-task noise (a latency driven
/// by load: ARMA(1, 1)) keeps small while its long-run variance is large — such series got
/// false changes in 39–42% of runs of 2,000 values and 15–95% of 20,000 (measured in
/// `benches/changepoints.py` and `benches/RESULTS.md`). Integer block sums; the median of
/// two middle |d| is the mean of their squares.
fn block_inflation(scores: &[i64], cuts: &[usize], energy: f64) -> f64 {
    let length = scores.len();
    let width = ((length as f64).powf(BLOCK_EXPONENT) + 0.5)
        .floor()
        .max(2.0) as usize;
    if length / width < MIN_BLOCKS || energy <= 0.0 {
        return 1.0;
    }
    block_ratio(scores, cuts, energy, width).min(block_ratio(scores, cuts, energy, 2 * width))
}

/// The block ratio at one block width (1 with fewer than `MIN_BLOCKS / 4` differences).
fn block_ratio(scores: &[i64], cuts: &[usize], energy: f64, width: usize) -> f64 {
    let length = scores.len();
    let count = length / width;
    let sums: Vec<i64> = scores[..count * width]
        .chunks_exact(width)
        .map(|block| block.iter().sum())
        .collect();
    let mut spreads: Vec<u64> = (0..count - 1)
        .filter(|&i| {
            let (start, end) = (i * width, (i + 2) * width);
            !cuts.iter().any(|&cut| start < cut && cut < end)
        })
        .map(|i| sums[i + 1].abs_diff(sums[i]))
        .collect();
    let kept = spreads.len();
    if kept < MIN_BLOCKS / 4 {
        return 1.0;
    }
    spreads.sort_unstable();
    let square = |d: u64| (d as f64) * (d as f64);
    let middle = if kept % 2 == 1 {
        square(spreads[kept / 2])
    } else {
        (square(spreads[kept / 2 - 1]) + square(spreads[kept / 2])) / 2.0
    };
    let long_run = middle / CHI2_MEDIAN / (2.0 * width as f64);
    long_run / (energy / length as f64)
}

/// The smallest c with c³ >= n.
fn ceil_cbrt(n: usize) -> usize {
    let mut c = 0usize;
    while c * c * c < n {
        c += 1;
    }
    c
}

/// The ratio of the flat-top (trapezoid) kernel long-run variance to the variance of the
/// scores demeaned within the pieces cut at `bounds` (0 = b₀ < … < b_J = L; `energy` =
/// Σe²): `lrv = γ₀ + 2 Σ_{j=1}^{2m} λ(j / 2m) γ_j` with λ(x) = 1 for x <= 1/2, 2 (1 - x)
/// above, and m Politis' (2003) adaptive bandwidth ([`KERNEL_C`], [`KERNEL_LAGS`],
/// [`KERNEL_REACH`]); 1 when m = 0 or L / 4 <= K. The lag-j products are summed over pairs
/// within a piece, exactly: for a piece of q scores with sum S,
/// `q² Σ e_t e_{t+j} = q² Σ s_t s_{t+j} - q S (A + B) + (q - j) S²`, A and B the sums of its
/// first and last q - j scores (i128), each piece's sum turned to a float over q² and
/// added in order. Why: a slow component under per-task noise (a latency driven by load)
/// has a small lag-1 autocorrelation and a long-run variance many times its variance;
/// the AR(1) form misses it, the block ratio sees it only from 504 values and with few
/// blocks, and the kernel reads the autocorrelations where they are. Used in the
/// refinement's re-test only ([`refine`]): in the search, a segment still holding steps
/// not yet cut has autocorrelations the kernel takes for dependence (3–10 Gaussian steps
/// in 1,000 values: F1 0.91 → 0.69 with the kernel in every test).
pub fn kernel_inflation(scores: &[i64], bounds: &[usize], energy: f64) -> f64 {
    let length = scores.len();
    let most = (length / 4).min(KERNEL_REACH * ceil_cbrt(length));
    if energy <= 0.0 || most <= KERNEL_LAGS {
        return 1.0;
    }
    let threshold = KERNEL_C * ((length as f64).log10() / length as f64).sqrt();
    let pieces: Vec<(&[i64], i128, Vec<i128>)> = bounds
        .windows(2)
        .map(|w| {
            let side = &scores[w[0]..w[1]];
            let mut prefix = Vec::with_capacity(side.len() + 1);
            prefix.push(0i128);
            for &value in side {
                prefix.push(prefix[prefix.len() - 1] + value as i128);
            }
            (side, prefix[side.len()], prefix)
        })
        .collect();
    // covariances[j]: the lag-j sum of products (lag 0 unused)
    let mut covariances = vec![0.0];
    let (mut quiet, mut bandwidth, mut lag) = (0usize, None::<usize>, 0usize);
    while bandwidth.is_none_or(|m| lag < 2 * m) {
        lag += 1;
        let mut total = 0.0;
        for (side, whole, prefix) in &pieces {
            let q = side.len();
            if lag >= q {
                continue;
            }
            let products = exact_dot(&side[..q - lag], &side[lag..]);
            let (head, tail) = (prefix[q - lag], whole - prefix[lag]);
            let size = q as i128;
            let centred = (|| {
                let a = size.checked_mul(size)?.checked_mul(products)?;
                let b = size.checked_mul(*whole)?.checked_mul(head + tail)?;
                let c = (size - lag as i128)
                    .checked_mul(*whole)?
                    .checked_mul(*whole)?;
                a.checked_sub(b)?.checked_add(c)
            })();
            total += match centred {
                Some(centred) => centred as f64 / (size * size) as f64,
                // beyond i128 (a piece of about 38M doubled ranks): the same sum in floats
                None => {
                    let mean = *whole as f64 / q as f64;
                    side[..q - lag]
                        .iter()
                        .zip(&side[lag..])
                        .map(|(&a, &b)| (a as f64 - mean) * (b as f64 - mean))
                        .sum::<f64>()
                }
            };
        }
        covariances.push(total);
        if bandwidth.is_none() {
            quiet = if (total / energy).abs() < threshold {
                quiet + 1
            } else {
                0
            };
            if quiet == KERNEL_LAGS {
                bandwidth = Some(lag - KERNEL_LAGS);
            } else if lag == most {
                bandwidth = Some(most - KERNEL_LAGS);
            }
        }
    }
    let m = bandwidth.unwrap_or(0);
    let mut long_run = energy;
    for (lag, &covariance) in covariances.iter().enumerate().take(2 * m + 1).skip(1) {
        let weight = if lag <= m {
            1.0
        } else {
            (2 * m - lag) as f64 / m as f64
        };
        long_run += 2.0 * weight * covariance;
    }
    long_run / energy
}

/// `Σ a_i b_i` exactly: i64 sums over chunks short enough not to overflow (scores are
/// doubled ranks or Mood's spread scores, |s| <= 2^24 for series of up to 2^23 values:
/// 2^14 products of up to 2^48 per chunk), added as i128.
fn exact_dot(a: &[i64], b: &[i64]) -> i128 {
    let largest = |v: &[i64]| v.iter().map(|x| x.unsigned_abs()).max().unwrap_or(0);
    let bound = (largest(a) as u128 * largest(b) as u128).max(1);
    let chunk = ((1u128 << 62) / bound).clamp(1, 1 << 20) as usize;
    a.chunks(chunk)
        .zip(b.chunks(chunk))
        .map(|(x, y)| x.iter().zip(y).map(|(&p, &q)| p * q).sum::<i64>() as i128)
        .sum()
}

/// The long-run variance of the scores demeaned within the pieces cut at `cuts`
/// (ascending, inside 1..L-1), and f: the AR(1) ratio `(1 + ρ)/(1 - ρ)` with ρ =
/// max([`residual_rho`], `floor`) clipped to [0, 0.97], or the block ratio
/// [`block_inflation`] when larger (at most the AR(1) ratio at ρ = 0.97), or with `kernel`
/// the [`kernel_inflation`] when larger still (with the same cap);
/// `Σe² / (L - J f) · f` for J pieces (J means fitted); infinite (nothing testable) when
/// `L - J f <= 0`. When every piece is constant: the variance of the whole segment,
/// `(L Σs² - S²) / (L (L - 1))` (0 when constant), and f = 1.
pub fn split_long_run(scores: &[i64], cuts: &[usize], floor: f64, kernel: bool) -> (f64, f64) {
    let length = scores.len();
    let mut bounds = vec![0];
    bounds.extend_from_slice(cuts);
    bounds.push(length);
    match residual_rho(scores, &bounds) {
        Some((energy, rho)) => {
            let rho = rho.max(floor).clamp(0.0, PHI_MAX);
            let most = (1.0 + PHI_MAX) / (1.0 - PHI_MAX);
            let blocks = block_inflation(scores, cuts, energy).min(most);
            let mut inflation = ((1.0 + rho) / (1.0 - rho)).max(blocks);
            if kernel && inflation < most {
                // (at the cap already, the kernel cannot raise f: a random walk's segments)
                inflation = inflation.max(kernel_inflation(scores, &bounds, energy).min(most));
            }
            let denominator = length as f64 - (bounds.len() - 1) as f64 * inflation;
            if denominator <= 0.0 {
                return (f64::INFINITY, inflation);
            }
            (energy / denominator * inflation, inflation)
        }
        None => {
            let (size, _, centred) = centred_energy(scores);
            (centred as f64 / size as f64 / (size - 1) as f64, 1.0)
        }
    }
}

/// (k, T, p) of the CUSUM test of integer scores (L >= 2·min_segment, min_segment >= 1):
/// with `S_k = Σ s[..k] - k · Σs / L` over [min_segment, L - min_segment], m the first
/// maximiser of `|S_k|`, k the first maximiser of `S_k² / (k (L - k))` when `weighted` (the
/// least-squares location), else k = m; j the first maximiser of `-S_j` when S_m > 0 (else
/// of `S_j`), `T = |S_m| / sqrt(L · lrv) · L' / (L' + 9)` with lrv and f from
/// [`split_long_run`] cut at
/// k and j with the floor [`difference_rho`] of the pairs not straddling k
/// ([`SMALL_SAMPLE`]; with `kernel`, the refinement's re-test, f at least
/// [`kernel_inflation`]),
/// p = [`kolmogorov_survival`] of T;
/// (k, 0, 1) when lrv = 0.
pub fn cusum_test(
    scores: &[i64],
    min_segment: usize,
    weighted: bool,
    kernel: bool,
) -> (usize, f64, f64) {
    let (k, statistic, p_value, _) = cusum(scores, min_segment, weighted, kernel);
    (k, statistic, p_value)
}

/// [`cusum_test`] and the ratio f it used.
fn cusum(
    scores: &[i64],
    min_segment: usize,
    weighted: bool,
    kernel: bool,
) -> (usize, f64, f64, f64) {
    let length = scores.len();
    let total_f = scores.iter().sum::<i64>() as f64;
    let mut prefix: i64 = scores[..min_segment - 1].iter().sum();
    let mut signed = Vec::with_capacity(length + 1 - 2 * min_segment);
    for k in min_segment..=length - min_segment {
        prefix += scores[k - 1];
        signed.push(prefix as f64 - k as f64 * total_f / length as f64);
    }
    // First maximiser of |S_k|, and of S_k and -S_k (the CUSUM's other extreme).
    let first_best = |key: &dyn Fn(f64) -> f64| {
        let mut best = (0, f64::NEG_INFINITY);
        for (index, &value) in signed.iter().enumerate() {
            if key(value) > best.1 {
                best = (index, key(value));
            }
        }
        best.0
    };
    let best = first_best(&f64::abs);
    // The other extreme: a change back (a regression, then its fix) is cut out of the
    // residuals too, so it cannot pass for autocorrelation.
    let other = if signed[best] > 0.0 {
        first_best(&|value| -value)
    } else {
        first_best(&|value| value)
    };
    let deviation = signed[best].abs();
    let k = if weighted {
        let mut located = (0, f64::NEG_INFINITY);
        for (index, &value) in signed.iter().enumerate() {
            let k = index + min_segment;
            let score = value * value / (k * (length - k)) as f64;
            if score > located.1 {
                located = (index, score);
            }
        }
        located.0 + min_segment
    } else {
        best + min_segment
    };
    let other = other + min_segment;
    let cuts = match other.cmp(&k) {
        std::cmp::Ordering::Less => vec![other, k],
        std::cmp::Ordering::Equal => vec![k],
        std::cmp::Ordering::Greater => vec![k, other],
    };
    let (lrv, inflation) = split_long_run(scores, &cuts, difference_rho(scores, k), kernel);
    if lrv == 0.0 {
        return (k, 0.0, 1.0, inflation);
    }
    let effective = length as f64 / inflation;
    let statistic =
        deviation / (length as f64 * lrv).sqrt() * effective / (effective + SMALL_SAMPLE);
    (k, statistic, kolmogorov_survival(statistic), inflation)
}

/// The spread test's choice gives way to the level test's when the level test alone
/// rejects at this level (`2 p_level <= LEVEL_FIRST`): on 3–10 Gaussian steps in 1,000
/// values, Mood's spread scores took segments holding several steps and F1 fell 0.924 →
/// 0.905; with the level test first 0.923 (`benches/changepoints.py`).
pub const LEVEL_FIRST: f64 = 0.01;
/// Mood's scores are divided by `2^k`, k the smallest making the largest of them at most
/// this (exact squares while every |d| <= 4,096, as over the whole of a series of up to
/// 2,048 values; a segment's ranks come from the whole series, so its |d| can reach about
/// 4 times the series' length; beyond, the integer sums stay within the bounds the
/// doubled ranks of a series of 2^23 values need).
pub const SPREAD_SCORE_MAX: u64 = 1 << 24;

/// Mood's (1954) scale scores of a segment's doubled ranks (ranked in the whole series):
/// `⌊d² / 2^k⌋` with `d = 2r - (r_(lo) + r_(hi))`, lo and hi the segment's middle order
/// statistics, and k the smallest with `max d² / 2^k <= `[`SPREAD_SCORE_MAX`].
pub fn spread_scores(ranks: &[i64]) -> Vec<i64> {
    let mut ordered = ranks.to_vec();
    let n = ranks.len();
    // the two middle order statistics by selection (O(n)), not a sort
    let (_, &mut high, _) = ordered.select_nth_unstable(n / 2);
    let low = if n % 2 == 1 {
        high
    } else {
        *ordered[..n / 2].iter().max().expect("n >= 2")
    };
    let middle = low + high;
    // the largest distance is that of the smallest or the largest rank
    let (lowest, highest) = ranks
        .iter()
        .fold((i64::MAX, i64::MIN), |(lo, hi), &r| (lo.min(r), hi.max(r)));
    let largest = (2 * highest - middle)
        .max(middle - 2 * lowest)
        .unsigned_abs();
    let largest = largest * largest;
    let mut shift = 0;
    while largest >> shift > SPREAD_SCORE_MAX {
        shift += 1;
    }
    ranks
        .iter()
        .map(|&r| {
            let d = 2 * r - middle;
            (d * d) >> shift
        })
        .collect()
}

/// (k, T, p, spread) of the better of the level and spread tests of one segment: the
/// spread test when its p is the smaller and `2 p_level > `[`LEVEL_FIRST`], else the level
/// test (always when the level test's f is at least the AR(1) ratio at [`DRIFT_RHO`]: the
/// spread is not tested; on the demo's queue, a ramp of 45 noise SDs over 400 batches, the
/// spread test of the ramp's segment gave p = 2e-6 and a cascade of changes along it); k and T of the chosen test,
/// `p = min(1, 2 p)` of it (Bonferroni). With
/// `kernel` (the refinement's re-test) the test and k are chosen as without it, and T and
/// p are the chosen test's with `kernel`: the kernel can raise the level test's f more
/// than the spread test's on a segment that holds part of a ramp, and a choice by those
/// p-values can move a change (the demo's latency change went from batch 622, the ramp
/// starting at 600, to a spread change at 485, with a wider block ratio in the re-test).
/// Without `spread_test` (stratified ranks, [`stratified_ranks`]) the level test alone,
/// its p not doubled.
pub fn split_segment(
    ranks: &[i64],
    min_segment: usize,
    kernel: bool,
    spread_test: bool,
) -> (usize, f64, f64, bool) {
    if ranks.len() - commonest_count(ranks) < min_segment {
        // fewer than min_segment values differ from the commonest one: a stray value is
        // no change (on a load test's constant concurrency stage, a late request of the
        // stage before split the next stage 4 tasks in, and spoilt the step beside it)
        return (min_segment, 0.0, 1.0, false);
    }
    let (k, statistic, p_value, inflation) = cusum(ranks, min_segment, true, false);
    if !spread_test {
        // the level test alone: no Bonferroni
        if kernel {
            let (_, statistic, p_value) = cusum_test(ranks, min_segment, true, true);
            return (k, statistic, p_value, false);
        }
        return (k, statistic, p_value, false);
    }
    let level = (k, statistic, p_value);
    // Ranks as persistent as a drifting metric's (a ramp): their distances from the median
    // swing with the level (a U over a ramp), which Mood's squares read as a change of
    // spread; the spread is not tested.
    let spreads = (inflation < (1.0 + DRIFT_RHO) / (1.0 - DRIFT_RHO)).then(|| {
        let scores = spread_scores(ranks);
        let test = cusum_test(&scores, min_segment, false, false);
        (scores, test)
    });
    let chosen = spreads
        .as_ref()
        .filter(|(_, spread)| spread.2 < level.2 && 2.0 * level.2 > LEVEL_FIRST);
    let use_spread = chosen.is_some();
    let (k, mut statistic, mut p_value) = chosen.map_or(level, |(_, spread)| *spread);
    if kernel {
        let scores = chosen.map_or(ranks, |(scores, _)| &scores[..]);
        (_, statistic, p_value) = cusum_test(scores, min_segment, !use_spread, true);
    }
    (k, statistic, (2.0 * p_value).min(1.0), use_spread)
}

/// A change found by the search: (position, T, p, spread).
type Split = (usize, f64, f64, bool);

/// Whether and where [`metric_changes`] looks for a cycle first.
#[derive(Debug, Clone, Copy)]
pub enum Cycles<'a> {
    /// No cycle search.
    None,
    /// The values are consecutive tasks.
    Consecutive,
    /// The values were recorded at these task positions (ascending) of `length` tasks.
    At { tasks: &'a [usize], length: usize },
    /// As `At`, tested at the periods other metrics of the same tasks repeat
    /// ([`shared_cycle`]) instead of searched; when none fits, the metric is not searched
    /// (it was searched without a cycle already) and comes back untested.
    Shared {
        tasks: &'a [usize],
        length: usize,
        periods: &'a [usize],
    },
    /// As `At`, the cycle of the share of the metric's commonest value ([`atom_cycle`]):
    /// for a metric that neither its own search nor the other metrics' periods gave one;
    /// when it has none, the metric comes back untested.
    Atom { tasks: &'a [usize], length: usize },
}

/// One metric's changes (see the module documentation), after removing its cycle
/// ([`find_cycle`]) as `cycles` says.
pub fn metric_changes(
    values: &[f64],
    cycles: Cycles<'_>,
    min_segment: usize,
    alpha: f64,
    budget: &Budget,
) -> CoreResult<MetricChanges> {
    changes_of(values, cycles, min_segment, alpha, budget, true)
}

/// The level changes of the task-to-task differences `values[t + 1] - values[t]` of a
/// metric drifting over all its values ([`metric_changes`] of the differences, without a
/// cycle search and without differencing again; their spread changes are left out: a
/// build time creeping up 30% with noise proportional to it had "its volatility rose" in 31
/// of 40 CI exports; those of the log differences in as many metrics whose noise does not
/// grow with a rising level), each marked `differenced` and placed at the
/// first value after the first difference of the new regime (`change_index + 1`,
/// `segment_end + 1`). A random walk's differences are its independent steps, a trend's
/// are its slope plus noise: a level change among them is a change of the slope, not an
/// excursion (on 200 random walks with Gaussian and t(3) steps, ARIMA(1, 1, 0) 0.5 and 0.9,
/// trends under AR(1) 0.9 noise and AR(1) 0.99, each of 200 and 2,000 values, one with
/// p <= 0.001 at most). No change when a difference is not finite.
fn difference_changes(
    values: &[f64],
    min_segment: usize,
    alpha: f64,
    budget: &Budget,
) -> CoreResult<Vec<Change>> {
    let differences: Vec<f64> = values.windows(2).map(|pair| pair[1] - pair[0]).collect();
    if differences.iter().any(|d| !d.is_finite()) {
        return Ok(Vec::new());
    }
    let found = changes_of(
        &differences,
        Cycles::None,
        min_segment,
        alpha,
        budget,
        false,
    )?;
    Ok(found
        .changes
        .into_iter()
        .filter(|change| !change.spread)
        .map(|change| Change {
            change_index: change.change_index + 1,
            segment_end: change.segment_end + 1,
            differenced: true,
            ..change
        })
        .collect())
}

/// [`metric_changes`], and with `differences` the changes of the task-to-task differences
/// of a metric drifting over all its values ([`difference_changes`]).
fn changes_of(
    values: &[f64],
    cycles: Cycles<'_>,
    min_segment: usize,
    alpha: f64,
    budget: &Budget,
    differences: bool,
) -> CoreResult<MetricChanges> {
    let count = values.len();
    let mut found = MetricChanges {
        count,
        tested: false,
        phi: f64::NAN,
        drifting: false,
        drift: None,
        period: None,
        changes: Vec::new(),
    };
    let varies = values.iter().any(|&v| v != values[0]);
    if count < min_segment.saturating_mul(2) || !varies {
        return Ok(found);
    }
    let raw = values;
    // A cycle is removed first: the search then sees its steps and drifts, not its swings
    // (not when removing it overflows: values near the largest float).
    let raw_ranks = doubled_midranks(raw);
    let adjusted = match cycles {
        Cycles::None => None,
        Cycles::Consecutive => find_cycle(raw, &raw_ranks, &[], count),
        Cycles::At { tasks, length } => find_cycle(raw, &raw_ranks, tasks, length),
        Cycles::Shared {
            tasks,
            length,
            periods,
        } => shared_cycle(raw, &raw_ranks, tasks, length, periods),
        Cycles::Atom { length, .. } => atom_cycle(raw, &raw_ranks, length),
    };
    if adjusted.is_none() && matches!(cycles, Cycles::Shared { .. } | Cycles::Atom { .. }) {
        return Ok(found); // searched already, without a cycle
    }
    found.period = adjusted.as_ref().map(|(period, _)| *period);
    // every present value's task (none listed: consecutive)
    let task_of = |position: usize| match cycles {
        Cycles::At { tasks, .. } | Cycles::Shared { tasks, .. } | Cycles::Atom { tasks, .. } => {
            tasks.get(position).copied().unwrap_or(position)
        }
        Cycles::None | Cycles::Consecutive => position,
    };
    // a cycle's phase groups (see `incidents` and `stratified_ranks`)
    let phases: Option<Vec<usize>> = found.period.and_then(|period| {
        let groups = phase_group_count(period, count);
        (groups > 0).then(|| {
            (0..count)
                .map(|position| phase_group(task_of(position), period, groups))
                .collect()
        })
    });
    let (values, ranks, spread_test) = match (&adjusted, &phases) {
        (Some((period, removed)), Some(groups))
            if spread_follows_cycle(removed, *period, cycles) =>
        {
            (removed.as_slice(), stratified_ranks(removed, groups), false)
        }
        (Some((_, removed)), _) => (removed.as_slice(), doubled_midranks(removed), true),
        (None, _) => (raw, raw_ranks, true), // no cycle removed: the ranks are the same
    };
    found.tested = true;
    let mut splits: Vec<Split> = Vec::new();
    let mut pending = vec![(0usize, count)];
    while let Some((start, end)) = pending.pop() {
        if end - start < 2 * min_segment {
            continue;
        }
        budget.check(STAGE)?;
        let (k, statistic, p_value, spread) =
            split_segment(&ranks[start..end], min_segment, false, spread_test);
        if p_value <= alpha {
            splits.push((start + k, statistic, p_value, spread));
            pending.push((start + k, end));
            pending.push((start, start + k));
        }
    }
    splits.sort_by_key(|split| split.0);
    let (splits, tested) = refine(&splits, &ranks, min_segment, spread_test, budget)?;
    let (splits, tested) = merge_transitions(splits, tested, &ranks, min_segment, spread_test);
    let positions: Vec<usize> = splits.iter().map(|split| split.0).collect();
    let mut cuts = vec![0];
    cuts.extend_from_slice(&positions);
    cuts.push(count);
    found.phi = residual_rho(&ranks, &cuts).map_or(f64::NAN, |(_, rho)| rho);
    // Abrupt moves of the level: a step is no unit root (Perron 1989), and a drifting
    // metric's jumps are its changes.
    let persistent = found.phi >= DRIFT_RHO;
    let jumped = if differences && persistent {
        level_jumps(&jump_scale(values, &ranks), alpha)
    } else {
        Vec::new()
    };
    let jump_cuts: Vec<usize> = jumped.iter().map(|jump| jump.position).collect();
    if persistent && keeps_unit_root(&ranks, &jump_cuts) {
        // Persistent within the segments too, and not mean-reverting: a random walk or a
        // trend, not steps; what changes is read in its jumps and its task-to-task
        // differences.
        found.drifting = true;
        found.drift = Some((0, count));
        if differences {
            let entries = with_jumps(Vec::new(), &jumped);
            found.changes = kept_changes(raw, &ranks, &entries, min_segment, spread_test, budget)?;
            found
                .changes
                .extend(difference_changes(values, min_segment, alpha, budget)?);
            found.changes.sort_by_key(|change| change.change_index);
        }
        return Ok(found);
    }
    let (kept, mut spans) = drifts(&positions, &ranks, values);
    let spread: Vec<bool> = kept.iter().map(|&index| splits[index].3).collect();
    let kept_positions: Vec<usize> = kept.iter().map(|&index| positions[index]).collect();
    let (smooth_kept, smooth) = smooth_steps(&kept_positions, &spread, &ranks);
    let kept: Vec<usize> = smooth_kept.iter().map(|&slot| kept[slot]).collect();
    spans.extend(smooth);
    let kept_at: Vec<usize> = kept.iter().map(|&index| positions[index]).collect();
    let drift = widest_drift(&mut spans).map(|span| trim_drift(values, span, &kept_at));
    if drift.is_some() {
        found.drifting = true;
        found.drift = drift;
    }
    let rho = if found.phi.is_nan() {
        0.0
    } else {
        found.phi.clamp(0.0, PHI_MAX)
    };
    // a cycle's phases keep their own score means and spreads (see `incidents`)
    let scanned: Vec<Scanned> = incidents(&ranks, alpha, rho, phases.as_deref(), budget)?
        .into_iter()
        .filter(|change| {
            !found
                .drift
                .is_some_and(|(start, end)| start < change.position && change.position < end)
        })
        .collect();
    let entries = with_jumps(
        kept.iter()
            .map(|&index| {
                let (change, statistic, p_value, spread) = splits[index];
                Entry {
                    change,
                    statistic,
                    p_value,
                    spread,
                    tested: Some(tested[index]),
                    p_other: None,
                }
            })
            .collect(),
        &jumped,
    );
    let entries = with_scanned(entries, &scanned, &ranks);
    found.changes = kept_changes(raw, &ranks, &entries, min_segment, spread_test, budget)?;
    if let Some(period) = found.period {
        let phase_of: Vec<usize> = (0..count)
            .map(|position| task_of(position) % period)
            .collect();
        found.changes = fewest_under_cycle(raw, &phase_of, period, found.changes, alpha, rho);
    }
    if differences && found.changes.is_empty() && found.drift == Some((0, count)) {
        // drifting over all its values by its changes' runs and bends: the same reading
        found.changes = difference_changes(values, min_segment, alpha, budget)?;
    }
    Ok(found)
}

/// A change kept by the search or a jump, before its segment is known.
#[derive(Debug, Clone, Copy)]
struct Entry {
    change: usize,
    statistic: f64,
    p_value: f64,
    spread: bool,
    /// The segment it was re-tested in (None: a jump the search did not find).
    tested: Option<(usize, usize)>,
    /// The p-value of the other test that saw it: the jump at it, or the incident scan's
    /// change nearest it within its window, if any.
    p_other: Option<f64>,
}

/// The kept changes and the jumps by position: a kept change within [`JUMP_LEVEL`] of a
/// jump (the nearest, the earlier of two as near) moves to the jump and keeps its re-test
/// segment, T and p, its spread flag cleared; a jump with no such change comes in with its
/// z and p.
fn with_jumps(mut entries: Vec<Entry>, jumped: &[Jump]) -> Vec<Entry> {
    for jump in jumped {
        let near = nearest(&entries, jump.position, JUMP_LEVEL, |entry| {
            entry.p_other.is_none().then_some(entry.change)
        });
        match near {
            Some(index) => {
                let entry = &mut entries[index];
                entry.change = jump.position;
                entry.spread = false;
                entry.p_other = Some(jump.p_value);
            }
            None => entries.push(Entry {
                change: jump.position,
                statistic: jump.z,
                p_value: jump.p_value,
                spread: false,
                tested: None,
                p_other: Some(jump.p_value),
            }),
        }
    }
    entries.sort_by_key(|entry| entry.change);
    entries
}

/// The entries and the incident scan's changes: a change of the scan with no entry going
/// its way ([`window_direction`] at its window) within its window comes in with its z and
/// p; else the nearest such entry, when the search found it and no other test saw it yet,
/// takes the scan's p as its second test's.
fn with_scanned(mut entries: Vec<Entry>, scanned: &[Scanned], ranks: &[i64]) -> Vec<Entry> {
    for change in scanned {
        let way = window_direction(ranks, change.position, change.width);
        let near = nearest(&entries, change.position, change.width, |entry| {
            (window_direction(ranks, entry.change, change.width) == way).then_some(entry.change)
        });
        match near {
            None => entries.push(Entry {
                change: change.position,
                statistic: change.z,
                p_value: change.p_value,
                spread: false,
                tested: None,
                p_other: None,
            }),
            Some(index) if entries[index].tested.is_some() && entries[index].p_other.is_none() => {
                entries[index].p_other = Some(change.p_value);
            }
            Some(_) => {}
        }
    }
    entries.sort_by_key(|entry| entry.change);
    entries
}

/// Each entry ([`with_jumps`], and the incident scan's changes) with its segment between
/// the changes on either side; a change's p-value the larger of its re-test's and that
/// segment's when they differ (a neighbour moved or went: a drift, a bend), then for a
/// change at a jump, or nearest a change of the scan within its window that goes its way,
/// `min(1, 2 min(p, p_other))` (either test could have found it); a jump or a change of
/// the scan alone keeps its own; and the summaries of the values recorded (cycle included)
/// on each side.
fn kept_changes(
    raw: &[f64],
    ranks: &[i64],
    entries: &[Entry],
    min_segment: usize,
    spread_test: bool,
    budget: &Budget,
) -> CoreResult<Vec<Change>> {
    let mut bounds = vec![0];
    bounds.extend(entries.iter().map(|entry| entry.change));
    bounds.push(raw.len());
    let mut changes = Vec::with_capacity(entries.len());
    for (slot, entry) in entries.iter().enumerate() {
        let (change, mut statistic, mut p_value) = (entry.change, entry.statistic, entry.p_value);
        let (start, end) = (bounds[slot], bounds[slot + 2]);
        if let Some(tested) = entry.tested {
            if (start, end) != tested {
                // A neighbour moved or went (a drift, a bend): the change's segment is
                // wider than the one it was re-tested in, and its p-value the larger.
                budget.check(STAGE)?;
                let (_, wider, p_wider, _) =
                    split_segment(&ranks[start..end], min_segment, true, spread_test);
                if p_wider > p_value {
                    (statistic, p_value) = (wider, p_wider);
                }
            }
            if let Some(p_other) = entry.p_other {
                p_value = (2.0 * p_value.min(p_other)).min(1.0);
            }
        }
        changes.push(summarised(
            raw,
            (start, change, end),
            statistic,
            p_value,
            entry.spread,
        ));
    }
    Ok(changes)
}

/// A change at `change` between `start` and `end` with its test, and the summaries of the
/// values recorded (cycle included) on each side.
fn summarised(
    raw: &[f64],
    (start, change, end): (usize, usize, usize),
    statistic: f64,
    p_value: f64,
    spread: bool,
) -> Change {
    let before = &raw[start..change];
    let after = &raw[change..end];
    let (mean_before, ss_before) = mean_and_sum_of_squares(before);
    let (mean_after, ss_after) = mean_and_sum_of_squares(after);
    Change {
        change_index: change,
        segment_start: start,
        segment_end: end,
        statistic,
        p_value,
        spread,
        differenced: false,
        mean_before,
        mean_after,
        median_before: median(before),
        median_after: median(after),
        std_before: (ss_before / before.len() as f64).sqrt(),
        std_after: (ss_after / after.len() as f64).sqrt(),
    }
}

/// A column of the selection's Gram matrix whose energy outside the span of the columns
/// before it is at most this share of its own is in that span.
const SPAN_FLOOR: f64 = 1e-9;
/// [`fewest_under_cycle`] reads metrics with fewer values than this many periods.
pub const FEW_CYCLES: usize = 8;
/// ... and at most this many changes with `p <= alpha`.
pub const MOST_SELECTED: usize = 32;

/// The changes of a metric whose cycle was removed, without those that only stand for an
/// error of the cycle's profile. The profile is the phases' medians, and over a few
/// repetitions a step moves it: with a step in the second of three days, the phases after
/// the step's phase have two shifted values of three, so their median moves, and the
/// values left step at the day's edges and at the step's phase of the other days (a deploy
/// found at its task with four more changes, each with p below 1e-70). Those changes and
/// the step are one explanation; the fewest changes are the other.
///
/// Among the level changes with `p <= alpha` (at least 2), forward selection (Efroymson
/// 1960) of step regressors `[t >= c]` for the doubled mid-ranks of `raw`, every phase of the
/// cycle (`phase_of`, 0..period) with a mean of its own (both the ranks and the steps are
/// demeaned within the phases): at each round the change whose step leaves the smallest
/// residual sum of squares joins while it lowers the BIC on the effective number of values
/// `n' = n (1 - ρ) / (1 + ρ)` (ρ the search's `phi`, clipped), `n' ln(RSS / RSS') >
/// ln n'`; a step in the span of those chosen (its Cholesky pivot at most [`SPAN_FLOOR`]
/// of its energy) is not a candidate. The others go (all stay when not even the first
/// joins); the kept ones keep their tests (of the segment the search found them in) and
/// take the segments between them. Sums run in position order. Only for fewer than
/// [`FEW_CYCLES`] · period values (a few repetitions, where a step moves the medians
/// most) and at most [`MOST_SELECTED`] changes (the selection costs O(J² n + J⁴)).
fn fewest_under_cycle(
    raw: &[f64],
    phase_of: &[usize],
    period: usize,
    changes: Vec<Change>,
    alpha: f64,
    rho: f64,
) -> Vec<Change> {
    // changes of spread are no steps of the level: they stay as they are
    let candidates: Vec<usize> = (0..changes.len())
        .filter(|&k| changes[k].p_value <= alpha && !changes[k].differenced && !changes[k].spread)
        .collect();
    let count = raw.len();
    if candidates.len() < 2 || candidates.len() > MOST_SELECTED || count >= FEW_CYCLES * period {
        return changes;
    }
    let ranks = doubled_midranks(raw);
    let mut counts = vec![0usize; period];
    let mut sums = vec![0.0; period];
    for (&phase, &rank) in phase_of.iter().zip(&ranks) {
        counts[phase] += 1;
        sums[phase] += rank as f64;
    }
    let levels: Vec<f64> = ranks
        .iter()
        .zip(phase_of)
        .map(|(&rank, &phase)| rank as f64 - sums[phase] / counts[phase] as f64)
        .collect();
    let steps: Vec<Vec<f64>> = candidates
        .iter()
        .map(|&k| {
            let at = changes[k].change_index;
            let mut after = vec![0usize; period];
            for &phase in &phase_of[at..] {
                after[phase] += 1;
            }
            (0..count)
                .map(|t| {
                    let phase = phase_of[t];
                    f64::from(u8::from(t >= at)) - after[phase] as f64 / counts[phase] as f64
                })
                .collect()
        })
        .collect();
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).fold(0.0, |sum, (x, y)| sum + x * y);
    let size = steps.len();
    let mut gram = vec![0.0; size * size];
    for a in 0..size {
        for b in a..size {
            let value = dot(&steps[a], &steps[b]);
            gram[a * size + b] = value;
            gram[b * size + a] = value;
        }
    }
    let cross: Vec<f64> = steps.iter().map(|step| dot(step, &levels)).collect();
    let total = dot(&levels, &levels);
    let effective = count as f64 * (1.0 - rho) / (1.0 + rho);
    let chosen = forward_selection(&gram, &cross, total, effective);
    if chosen.is_empty() {
        return changes; // not even the best step lowers the BIC: no reading to prefer
    }
    let dropped: Vec<usize> = (0..size)
        .filter(|c| !chosen.contains(c))
        .map(|c| candidates[c])
        .collect();
    if dropped.is_empty() {
        return changes;
    }
    let kept: Vec<Change> = changes
        .into_iter()
        .enumerate()
        .filter(|(k, _)| !dropped.contains(k))
        .map(|(_, change)| change)
        .collect();
    let mut bounds = vec![0];
    bounds.extend(kept.iter().map(|change| change.change_index));
    bounds.push(count);
    kept.iter()
        .enumerate()
        .map(|(slot, change)| {
            summarised(
                raw,
                (bounds[slot], change.change_index, bounds[slot + 2]),
                change.statistic,
                change.p_value,
                change.spread,
            )
        })
        .collect()
}

/// The steps forward selection keeps (indices into `cross`, in the order chosen): at each
/// round the one leaving the smallest residual sum of squares (the first of equal ones)
/// joins while `effective · ln(RSS / RSS') > ln(effective)` ([`fewest_under_cycle`]).
fn forward_selection(gram: &[f64], cross: &[f64], total: f64, effective: f64) -> Vec<usize> {
    let size = cross.len();
    let penalty = effective.max(2.0).ln();
    let mut chosen = Chosen::default();
    let mut rss = total;
    while chosen.members.len() < size {
        let mut best: Option<(usize, Extension)> = None;
        for candidate in (0..size).filter(|c| !chosen.members.contains(c)) {
            if let Some(extension) = chosen.extended(gram, size, cross, total, candidate) {
                if best
                    .as_ref()
                    .is_none_or(|(_, least)| extension.rss < least.rss)
                {
                    best = Some((candidate, extension));
                }
            }
        }
        let Some((candidate, extension)) = best else {
            break;
        };
        let value = extension.rss;
        if value > 0.0 && effective * (rss / value).ln() <= penalty {
            break;
        }
        chosen.push(candidate, extension);
        rss = value;
        if value <= 0.0 {
            break;
        }
    }
    chosen.members
}

/// The steps chosen so far: the rows of the Cholesky factor of their Gram matrix (in the
/// order chosen), `L⁻¹ b` and its sum of squares.
#[derive(Default)]
struct Chosen {
    members: Vec<usize>,
    rows: Vec<Vec<f64>>,
    solved: Vec<f64>,
    explained: f64,
}

/// What adding one step gives: its row of the factor, its entry of `L⁻¹ b`, the residual
/// sum of squares.
struct Extension {
    row: Vec<f64>,
    solved: f64,
    rss: f64,
}

impl Chosen {
    /// The factor extended by the column `candidate` of the `size` × `size` Gram matrix
    /// (the last row of the Cholesky factor of the chosen and it, in that order) and
    /// `total - bᵀ G⁻¹ b` then; None when its pivot is at most [`SPAN_FLOOR`] of its
    /// energy (it adds nothing to the others).
    fn extended(
        &self,
        gram: &[f64],
        size: usize,
        cross: &[f64],
        total: f64,
        candidate: usize,
    ) -> Option<Extension> {
        let k = self.members.len();
        let mut row = Vec::with_capacity(k + 1);
        for column in 0..k {
            let mut value = gram[candidate * size + self.members[column]];
            for (entry, other) in row.iter().zip(&self.rows[column]) {
                value -= entry * other;
            }
            row.push(value / self.rows[column][column]);
        }
        let mut pivot = gram[candidate * size + candidate];
        for entry in &row {
            pivot -= entry * entry;
        }
        if pivot <= SPAN_FLOOR * gram[candidate * size + candidate] {
            return None;
        }
        let pivot = pivot.sqrt();
        row.push(pivot);
        let mut value = cross[candidate];
        for (entry, solved) in row.iter().zip(&self.solved) {
            value -= entry * solved;
        }
        let solved = value / pivot;
        let explained = self.explained + solved * solved;
        Some(Extension {
            row,
            solved,
            rss: total - explained,
        })
    }

    fn push(&mut self, candidate: usize, extension: Extension) {
        self.members.push(candidate);
        self.explained += extension.solved * extension.solved;
        self.solved.push(extension.solved);
        self.rows.push(extension.row);
    }
}

/// The segment each refined change was re-tested in: [start, end).
type Tested = Vec<(usize, usize)>;

/// Each change, left to right, re-placed and re-tested between its neighbours (the refined
/// one on its left, the found one on its right) by [`split_segment`], and the segments
/// they were re-tested in.
fn refine(
    splits: &[Split],
    ranks: &[i64],
    min_segment: usize,
    spread_test: bool,
    budget: &Budget,
) -> CoreResult<(Vec<Split>, Tested)> {
    let mut positions: Vec<usize> = splits.iter().map(|split| split.0).collect();
    let mut refined = Vec::with_capacity(splits.len());
    let mut tested = Vec::with_capacity(splits.len());
    for index in 0..positions.len() {
        budget.check(STAGE)?;
        let lo = if index > 0 { positions[index - 1] } else { 0 };
        let hi = positions.get(index + 1).copied().unwrap_or(ranks.len());
        let (k, statistic, p_value, spread) =
            split_segment(&ranks[lo..hi], min_segment, true, spread_test);
        positions[index] = lo + k;
        refined.push((lo + k, statistic, p_value, spread));
        tested.push((lo, hi));
    }
    Ok((refined, tested))
}

/// Runs of refined changes that are one move seen through a transition: the requests of
/// two load-test stages interleave in completion order for a few dozen tasks, and the
/// search cut both edges of that zone and the middle (a "spread" change at the first edge,
/// the rest read as a drift). From each change, left to right, the longest run of changes
/// whose span times [`TRANSITION_SHARE`] is below the lengths of the segments before and
/// after it, when the mean ranks of its pieces (from the segment before to the segment
/// after; compared exactly) all move the same way, becomes the one change
/// [`split_segment`] (the refinement's re-test) places between its outer neighbours. An
/// epidemic (a regression and its fix) moves both ways and stays two changes. Its split
/// and re-test segment replace the run's.
fn merge_transitions(
    splits: Vec<Split>,
    tested: Tested,
    ranks: &[i64],
    min_segment: usize,
    spread_test: bool,
) -> (Vec<Split>, Tested) {
    let (mut splits, mut tested) = (splits, tested);
    let count = ranks.len();
    let mut index = 0;
    while index + 1 < splits.len() {
        let lo = if index > 0 { splits[index - 1].0 } else { 0 };
        let mut run = None;
        for last in index + 1..splits.len() {
            let hi = splits.get(last + 1).map_or(count, |split| split.0);
            let span = splits[last].0 - splits[index].0;
            if span * TRANSITION_SHARE < (splits[index].0 - lo).min(hi - splits[last].0) {
                run = Some((last, hi));
            }
        }
        if let Some((last, hi)) = run {
            let mut bounds = vec![lo];
            bounds.extend(splits[index..=last].iter().map(|split| split.0));
            bounds.push(hi);
            let sums: Vec<(i128, i128)> = bounds
                .windows(2)
                .map(|w| {
                    let total: i128 = ranks[w[0]..w[1]].iter().map(|&r| r as i128).sum();
                    (total, (w[1] - w[0]) as i128)
                })
                .collect();
            let ways: Vec<std::cmp::Ordering> = sums
                .windows(2)
                .map(|w| (w[0].0 * w[1].1).cmp(&(w[1].0 * w[0].1)))
                .collect();
            if ways[0] != std::cmp::Ordering::Equal && ways.iter().all(|&way| way == ways[0]) {
                let (k, statistic, p_value, spread) =
                    split_segment(&ranks[lo..hi], min_segment, true, spread_test);
                splits.splice(index..=last, [(lo + k, statistic, p_value, spread)]);
                tested.splice(index..=last, [(lo, hi)]);
                continue;
            }
        }
        index += 1;
    }
    (splits, tested)
}

/// (L, S, L Σy² - S²) of integer values (exact).
fn centred_energy(part: &[i64]) -> (i128, i128, i128) {
    let total: i128 = part.iter().map(|&y| y as i128).sum();
    let squares: i128 = part.iter().map(|&y| (y as i128) * (y as i128)).sum();
    let length = part.len() as i128;
    (length, total, length * squares - total * total)
}

/// (RSS of a least-squares line, RSS of a constant per piece) of `ranks[start..end]` cut at
/// `inner`: with t = 0..L-1, A = L Σy² - S², B = L Σty - (Σt) S, C = L Σt² - (Σt)²,
/// `RSS_line = (A - B²/C) / L` (floats of the exact integers); a piece's RSS is A_i / L_i,
/// summed in order.
fn fit_costs(ranks: &[i64], start: usize, end: usize, inner: &[usize]) -> (f64, f64) {
    let part = &ranks[start..end];
    let (length, total, centred) = centred_energy(part);
    let t_sum = length * (length - 1) / 2;
    let t_squares = (length - 1) * length * (2 * length - 1) / 6;
    let weighted: i128 = part
        .iter()
        .enumerate()
        .map(|(t, &y)| t as i128 * y as i128)
        .sum();
    let cross = (length * weighted - t_sum * total) as f64;
    let spread = (length * t_squares - t_sum * t_sum) as f64;
    let line = (centred as f64 - cross * cross / spread) / length as f64;
    let mut pieces = 0.0;
    let mut lo = start;
    for &hi in inner.iter().chain(std::iter::once(&end)) {
        let (size, _, piece) = centred_energy(&ranks[lo..hi]);
        pieces += piece as f64 / size as f64;
        lo = hi;
    }
    (line, pieces)
}

/// Whether a line fits the doubled mid-ranks of `values[start..end]` (ranked within the
/// span) at least as well by BIC as the constant pieces cut at `inner`:
/// `L ln RSS_line + 2 ln L <= L ln RSS_pieces + (2r + 1) ln L`.
fn line_wins(values: &[f64], start: usize, end: usize, inner: &[usize]) -> bool {
    // Ranks within the span: the whole series' ranks bend a ramp that rises past the
    // values before it into a curve.
    let ranks = doubled_midranks(&values[start..end]);
    let inner: Vec<usize> = inner.iter().map(|&cut| cut - start).collect();
    let (line, pieces) = fit_costs(&ranks, 0, end - start, &inner);
    if pieces <= 0.0 {
        return line <= 0.0;
    }
    if line <= 0.0 {
        return true;
    }
    let length = (end - start) as f64;
    let penalty = length.ln();
    length * line.ln() + 2.0 * penalty
        <= length * pieces.ln() + (2 * inner.len() + 1) as f64 * penalty
}

/// The way each change goes (Greater up, Less down): the mean rank of the segment after it
/// against the one before, compared exactly as integers.
fn directions(changes: &[usize], ranks: &[i64]) -> Vec<std::cmp::Ordering> {
    let mut bounds = vec![0];
    bounds.extend_from_slice(changes);
    bounds.push(ranks.len());
    let sums: Vec<i128> = bounds
        .windows(2)
        .map(|w| ranks[w[0]..w[1]].iter().map(|&r| r as i128).sum())
        .collect();
    let lengths: Vec<i128> = bounds.windows(2).map(|w| (w[1] - w[0]) as i128).collect();
    (0..changes.len())
        .map(|i| (sums[i + 1] * lengths[i]).cmp(&(sums[i] * lengths[i + 1])))
        .collect()
}

/// The widest of the drifting spans once spans that overlap or touch are joined (the first
/// of equally wide ones): a ramp over 400,000 tasks is cut by binary segmentation into
/// dozens of changes, dropped run by run, and each run's span is only part of the ramp.
pub fn widest_drift(spans: &mut [(usize, usize)]) -> Option<(usize, usize)> {
    spans.sort_unstable();
    let mut joined: Vec<(usize, usize)> = Vec::with_capacity(spans.len());
    for &(start, end) in spans.iter() {
        match joined.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => joined.push((start, end)),
        }
    }
    let mut widest: Option<(usize, usize)> = None;
    for span in joined {
        if widest.is_none_or(|(lo, hi)| span.1 - span.0 > hi - lo) {
            widest = Some(span);
        }
    }
    widest
}

/// The indices (into `changes`) of the changes that are not steps of a drift, and the spans
/// found drifting (see the module documentation).
fn drifts(changes: &[usize], ranks: &[i64], values: &[f64]) -> (Vec<usize>, Vec<(usize, usize)>) {
    let mut bounds = vec![0];
    bounds.extend_from_slice(changes);
    bounds.push(ranks.len());
    let directions = directions(changes, ranks);
    let mut dropped = vec![false; changes.len()];
    let mut spans = Vec::new();
    let mut i = 0;
    while i < changes.len() {
        let mut j = i;
        while j + 1 < changes.len() && directions[j + 1] == directions[i] {
            j += 1;
        }
        if j > i {
            // Spans from the segment before the run (first = i: every change goes), then
            // from each change of the run (first = s + 1: the changes after s go).
            let end = bounds[j + 2];
            for first in i..=j {
                let start = bounds[first];
                if line_wins(values, start, end, &changes[first..=j]) {
                    dropped[first..=j].iter_mut().for_each(|d| *d = true);
                    spans.push((start, end));
                    break;
                }
            }
        }
        i = j + 1;
    }
    let kept = (0..changes.len()).filter(|&i| !dropped[i]).collect();
    (kept, spans)
}

/// (RSS of the level step at `cut`, least RSS of a continuous broken line, least RSS of a
/// flat start then a line) of integer scores y of one span (the metric's doubled mid-ranks:
/// no ranking again), over the knots κ = 1..=L-3 of `y = a + b t + c (t - κ)₊` (the
/// continuous piecewise-linear model of Fearnhead, Maidstone & Letchford 2019 with one
/// knot) and of `y = a + c (t - κ)₊`. With S = Σy, `t' = 2t - (L - 1)` (summing to 0) and
/// a hinge h, the centred sums are `Syy = Σy² - S²/L`, `Sty = Σ t'y`, `Sth = Σ t'h`,
/// `Shy = Σ hy - Σh S / L` and `Shh = Σh² - (Σh)²/L`: the step's RSS is
/// `Syy - (L S₁ - k S)² / (L k (L - k))`, S₁ = Σ y[..k]; the broken line's
/// `Syy - (Shh Sty² - 2 Sth Sty Shy + Stt Shy²) / (Stt Shh - Sth²)` (Frisch–Waugh) with
/// the hinge of shorter support: `h = (t - κ)₊` for 2κ >= L, `g = (κ - t)₊` below. Both
/// span the same lines with 1 and t, but the longer one is nearly a multiple of t' and its
/// sums cancel: with h at κ = 2 of 600,000 ranks the broken line's "RSS" came out 3% below
/// the straight line's, and a clear step was dropped as a bend. The flat start's RSS is
/// `Syy - Shy² / Shh` with `h = (t - κ)₊`. Every sum is an exact integer (i128: the sums
/// are about L³) turned to a float, then these floats in this order (L >= 5).
pub fn hinge_fit(scores: &[i64], cut: usize) -> (f64, f64, f64) {
    let length = scores.len();
    let size = length as i128;
    let total: i128 = scores.iter().map(|&y| y as i128).sum();
    let squares: i128 = scores.iter().map(|&y| (y as i128) * (y as i128)).sum();
    let syy = squares as f64 - total as f64 * total as f64 / length as f64;
    let head: i128 = scores[..cut].iter().map(|&y| y as i128).sum();
    let left = (size * head - cut as i128 * total) as f64;
    let step = syy - left * left / ((size * cut as i128 * (size - cut as i128)) as f64);
    let time = |t: usize| 2 * t as i128 - (size - 1);
    let stt = (0..length).map(|t| time(t) * time(t)).sum::<i128>() as f64;
    let sty = (0..length)
        .map(|t| time(t) * scores[t] as i128)
        .sum::<i128>() as f64;
    let (length_f, total_f) = (length as f64, total as f64);
    // Syy minus the broken line's RSS from a hinge's Σh, Σh², Σt'h and Σhy.
    let explained = |sum_h: i128, sum_hh: i128, sth: i128, hy: i128| {
        let sum_h = sum_h as f64;
        let shh = sum_hh as f64 - sum_h * sum_h / length_f;
        let (sth, shy) = (sth as f64, hy as f64 - sum_h * total_f / length_f);
        (shh * sty * sty - 2.0 * sth * sty * shy + stt * shy * shy) / (stt * shh - sth * sth)
    };
    let (mut line, mut flat) = (f64::INFINITY, f64::INFINITY);
    // Before the knot: g = κ..1 at t = 0..κ-1, from sums over t < κ.
    let (mut y_head, mut ty_head, mut c_head, mut ct_head) = (0i128, 0i128, 0i128, 0i128);
    for knot in 1..length.saturating_sub(2) {
        let t = knot - 1;
        let (at, y) = (t as i128, scores[t] as i128);
        y_head += y;
        ty_head += at * y;
        c_head += time(t);
        ct_head += time(t) * at;
        if 2 * knot >= length {
            break;
        }
        let k = knot as i128;
        let (sum_g, sum_gg) = (k * (k + 1) / 2, k * (k + 1) * (2 * k + 1) / 6);
        line = line.min(syy - explained(sum_g, sum_gg, k * c_head - ct_head, k * y_head - ty_head));
    }
    // After the knot: h = 1..m, m = L - 1 - κ, from sums over t >= κ.
    let (mut y_tail, mut ty_tail, mut c_tail, mut ct_tail) = (0i128, 0i128, 0i128, 0i128);
    let last = size - 1;
    for t in (1..length).rev() {
        let (at, y) = (t as i128, scores[t] as i128);
        y_tail += y;
        ty_tail += at * y;
        c_tail += time(t);
        ct_tail += time(t) * at;
        if t > length - 3 {
            continue;
        }
        let tail = last - at;
        let (sum_h, sum_hh) = (
            tail * (tail + 1) / 2,
            tail * (tail + 1) * (2 * tail + 1) / 6,
        );
        let (sth, hy) = (ct_tail - at * c_tail, ty_tail - at * y_tail);
        if 2 * t >= length {
            line = line.min(syy - explained(sum_h, sum_hh, sth, hy));
        }
        let sum_h = sum_h as f64;
        let shh = sum_hh as f64 - sum_h * sum_h / length_f;
        let shy = hy as f64 - sum_h * total_f / length_f;
        flat = flat.min(syy - shy * shy / shh);
    }
    (step, line, flat)
}

/// Whether the scores of a span jump at `cut`: a line on each side (4 coefficients) fits
/// better than the continuous broken line with its knot there (RSS `line`, 3 coefficients)
/// by BIC on the effective number of values, `L' ln(RSS_line / RSS_apart) > ln L'` (the
/// test of a discontinuity against a change in slope; Fearnhead, Maidstone & Letchford
/// 2019). Without it a jump on a rising stretch read as a bend: a quality-control series
/// whose level jumps 2.7 sd at one task, between two smaller rises, was reported as a drift
/// with no change. False with fewer than 3 values on a side or a broken line of RSS 0.
fn jumps(scores: &[i64], cut: usize, line: f64, effective: f64, penalty: f64) -> bool {
    if cut < JUMP_SIDE || scores.len() - cut < JUMP_SIDE || line <= 0.0 {
        return false;
    }
    let apart = line_rss(&scores[..cut]) + line_rss(&scores[cut..]);
    apart <= 0.0 || effective * (line / apart).ln() > JUMP_EVIDENCE * penalty
}

/// A jump needs this many times the BIC penalty (the evidence of a discontinuity that
/// noise around a bend or a trend rarely gives).
pub const JUMP_EVIDENCE: f64 = 2.0;

/// The fewest values on each side of a jump tested by [`jumps`] (a line through two values
/// fits them exactly).
pub const JUMP_SIDE: usize = 3;

/// The least RSS of a straight line `y = a + b t` through integer scores y of one span,
/// `Syy - Sty² / Stt` with the exact sums of [`hinge_fit`] turned to floats in its order.
pub fn line_rss(scores: &[i64]) -> f64 {
    let length = scores.len();
    let total: i128 = scores.iter().map(|&y| y as i128).sum();
    let squares: i128 = scores.iter().map(|&y| (y as i128) * (y as i128)).sum();
    let syy = squares as f64 - total as f64 * total as f64 / length as f64;
    let time = |t: usize| 2 * t as i128 - (length as i128 - 1);
    let stt = (0..length).map(|t| time(t) * time(t)).sum::<i128>() as f64;
    let sty = (0..length)
        .map(|t| time(t) * scores[t] as i128)
        .sum::<i128>() as f64;
    syy - sty * sty / stt
}

/// Where a drift that starts at the first of `scores` (one span of the metric's doubled
/// mid-ranks) stops: the knot κ (2 <= κ <= L - 2, the first of equal ones) of the least-RSS
/// "line then flat" `y = a + c (κ - t)₊` when it fits better than the straight line by BIC
/// on the effective number of values, `L' ln(RSS_line / RSS_end) > ln L'` (3 coefficients
/// against 2), L' = L / f with f = (1 + ρ)/(1 - ρ), ρ = [`difference_rho`] at κ clipped to
/// [0, 0.97] (the variogram of the differences, which a trend does not inflate); None when
/// the line fits as well (the drift runs to the span's end) or L < 8. A ramp from task
/// 1,000 to 1,500 of 3,000, then flat, was reported drifting to task 3,000. With S = Σy,
/// `Sgg = Σg² - (Σg)²/L` and `Sgy = Σgy - Σg S / L` for g = (κ - t)₊ (Σg = κ(κ+1)/2, Σg² =
/// κ(κ+1)(2κ+1)/6, Σgy = κ Σ_{t<κ} y - Σ_{t<κ} t y), `RSS_end = Syy - Sgy² / Sgg`; exact
/// integer sums turned to floats in this order.
pub fn ramp_end(scores: &[i64]) -> Option<usize> {
    let length = scores.len();
    if length < 8 {
        return None;
    }
    let total: i128 = scores.iter().map(|&y| y as i128).sum();
    let squares: i128 = scores.iter().map(|&y| (y as i128) * (y as i128)).sum();
    let (length_f, total_f) = (length as f64, total as f64);
    let syy = squares as f64 - total_f * total_f / length_f;
    let (mut y_head, mut ty_head) = (0i128, 0i128);
    let mut best = (f64::INFINITY, 0usize);
    for knot in 1..length - 1 {
        let t = knot - 1;
        y_head += scores[t] as i128;
        ty_head += t as i128 * scores[t] as i128;
        if knot < 2 {
            continue;
        }
        let k = knot as i128;
        let sum_g = (k * (k + 1) / 2) as f64;
        let sum_gg = (k * (k + 1) * (2 * k + 1) / 6) as f64;
        let sgg = sum_gg - sum_g * sum_g / length_f;
        let sgy = (k * y_head - ty_head) as f64 - sum_g * total_f / length_f;
        let rss = syy - sgy * sgy / sgg;
        if rss < best.0 {
            best = (rss, knot);
        }
    }
    let (end, knot) = best;
    let line = line_rss(scores);
    if line <= 0.0 {
        return None;
    }
    if end <= 0.0 {
        return Some(knot);
    }
    let rho = difference_rho(scores, knot).clamp(0.0, PHI_MAX);
    let effective = length_f / ((1.0 + rho) / (1.0 - rho));
    (effective * (line / end).ln() > effective.max(2.0).ln()).then_some(knot)
}

/// A drift span `[start, end)` of `values` cut to where it moves, around the changes kept
/// (`changes`, ascending): it ends at [`ramp_end`] of the part after the last change inside
/// the span, then starts at the knot κ of a "flat then line" `y = a + c (t - κ)₊` over the
/// part before the first change inside, when that fits better than a line (the same test
/// on the reversed ranks). Each part is ranked within itself: the whole series' ranks bend
/// a long ramp that rises past the values before it into a curve (a 400,000-task ramp was
/// cut 40,000 tasks short), and a step kept inside the span bends a trend across it (a
/// trend from task 0 with a step at 2,000 of 3,000 started at 1,155). A ramp over tasks
/// 1,000..1,500 of 3,000 between flat stretches drifted to task 3,000, or from task 0 when
/// its first change was judged a bend over the span from task 0.
fn trim_drift(values: &[f64], (start, end): (usize, usize), changes: &[usize]) -> (usize, usize) {
    let inside: Vec<usize> = changes
        .iter()
        .copied()
        .filter(|&c| start < c && c < end)
        .collect();
    let tail = inside.last().copied().unwrap_or(start);
    let end = ramp_end(&doubled_midranks(&values[tail..end])).map_or(end, |knot| tail + knot);
    let head = inside.first().copied().unwrap_or(end);
    let mut reversed = doubled_midranks(&values[start..head]);
    reversed.reverse();
    let first = ramp_end(&reversed).map_or(start, |knot| head - 1 - knot);
    (first, end)
}

/// How a smooth curve explains a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// A step fits better than the broken line.
    Step,
    /// The broken line fits as well, and so does a flat start then a line: a drift begins.
    Onset,
    /// The broken line fits as well, a flat start does not: a bend or a cycle.
    Smooth,
}

/// The [`Verdict`] on `ranks[start..end]` (the metric's doubled mid-ranks) for the step at
/// `change`, by BIC on the part's effective number of values `L' = L / f` (f = (1 + ρ)/(1 - ρ),
/// ρ from [`residual_rho`] of the step's residuals clipped to [0, 0.97]: autocorrelated
/// noise inflates a likelihood ratio by about f): Smooth when a straight line fits as well
/// as the step, `L' ln(RSS_straight / RSS_step) <= ln L'` (2 parameters against 3: a slow
/// drift, which binary segmentation cuts where its CUSUM peaks — on CI build times creeping
/// up 8% over 3,000 runs a step was reported in 16 of 20 exports, 1 of 20 with this test),
/// but Onset when then the flat start fits as well as the broken line and better than the
/// straight line, `L' ln(RSS_straight / RSS_flat) > ln L'` (a ramp over the last 40% of
/// the values: the straight line beat the step, and the metric was called drifting from
/// its first value);
/// else the broken line fits as well as the step when `L' ln(RSS_step / RSS_line) >= ln L'`
/// (4 parameters against 3), the flat start as well as the line when
/// `L' ln(RSS_flat / RSS_line) <= ln L'` (3 against 4); ln L' is taken at L' >= 2; Step
/// when RSS_step <= 0 or L < 5, and first of all when the span [`jumps`] at the change.
fn smooth_verdict(ranks: &[i64], start: usize, change: usize, end: usize) -> Verdict {
    let length = end - start;
    if length < 5 {
        return Verdict::Step;
    }
    let ranks = &ranks[start..end];
    let (step, line, flat) = hinge_fit(ranks, change - start);
    if step <= 0.0 {
        return Verdict::Step;
    }
    let rho = residual_rho(ranks, &[0, change - start, length])
        .map_or(0.0, |(_, rho)| rho.clamp(0.0, PHI_MAX));
    let effective = length as f64 / ((1.0 + rho) / (1.0 - rho));
    let penalty = effective.max(2.0).ln();
    if jumps(ranks, change - start, line, effective, penalty) {
        return Verdict::Step;
    }
    let straight = line_rss(ranks);
    let flat_start = flat <= 0.0 || (line > 0.0 && effective * (flat / line).ln() <= penalty);
    if straight <= 0.0 || effective * (straight / step).ln() <= penalty {
        // A straight line (2 coefficients against the step's 3) fits as well: a trend,
        // unless a flat start then a line fits as well as the broken line and better than
        // the straight line (3 against 2): a ramp after a flat stretch, which a straight
        // line over the whole span can fit better than one step does.
        let ramp = straight > 0.0 && flat_start && effective * (straight / flat).ln() > penalty;
        return if ramp {
            Verdict::Onset
        } else {
            Verdict::Smooth
        };
    }
    if line >= step || !(line <= 0.0 || effective * (step / line).ln() >= penalty) {
        return Verdict::Step;
    }
    if flat_start {
        return Verdict::Onset;
    }
    Verdict::Smooth
}

/// The level changes that a smooth curve explains at least as well as a step (a cycle or a
/// bend seen through a window, not a change): in the span between a change's neighbours,
/// or in the window of twice its shorter side on each side of it (within the span), the
/// broken line of [`hinge_fit`] (3 coefficients and a knot) against the step (2 levels and
/// a position) by BIC on the effective number of values ([`smooth_verdict`]). A change
/// whose span is as well described by a flat start then a line is the onset of a drift
/// when it is the first change or goes the way of the change before it (else it is the top
/// of a hump): it stays, and the drift runs from it to the span's end (the window only
/// drops changes). Returns the indices (into `changes`) kept and the spans found drifting.
fn smooth_steps(
    changes: &[usize],
    spread: &[bool],
    ranks: &[i64],
) -> (Vec<usize>, Vec<(usize, usize)>) {
    let directions = directions(changes, ranks);
    let mut kept = Vec::with_capacity(changes.len());
    let mut spans = Vec::new();
    for (index, &change) in changes.iter().enumerate() {
        let lo = if index > 0 { changes[index - 1] } else { 0 };
        let hi = changes.get(index + 1).copied().unwrap_or(ranks.len());
        if spread[index] {
            kept.push(index);
            continue;
        }
        let mut verdict = smooth_verdict(ranks, lo, change, hi);
        let reach = 2 * (change - lo).min(hi - change);
        let window = (lo.max(change.saturating_sub(reach)), hi.min(change + reach));
        if verdict == Verdict::Step && window != (lo, hi) {
            // The window can only drop a change: a flat start seen through it is no onset.
            verdict = match smooth_verdict(ranks, window.0, change, window.1) {
                Verdict::Smooth => Verdict::Smooth,
                _ => Verdict::Step,
            };
        }
        if verdict == Verdict::Onset && index > 0 && directions[index - 1] != directions[index] {
            verdict = Verdict::Smooth; // the top of a hump, not a flat start
        }
        if verdict == Verdict::Onset {
            spans.push((change, hi));
        }
        if verdict == Verdict::Smooth {
            spans.push((lo, hi));
        } else {
            kept.push(index);
        }
    }
    (kept, spans)
}

#[cfg(test)]
mod tests;
