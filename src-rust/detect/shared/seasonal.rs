//! A metric's cycle (a daily load curve seen every P tasks) and its removal, so that the
//! change-point search sees steps and drifts, not the cycle.
//!
//! # Method
//!
//! - **Candidate.** The autocorrelation of the metric's doubled mid-ranks (of their sums
//!   over blocks of `⌈n / 4096⌉` tasks when n > 4096) at every lag up to a third of the
//!   series: the lag with the largest autocorrelation of at least [`PEAK`] that comes after
//!   a lag with at most -[`TROUGH`] (a cycle swings below its mean half a period away; the
//!   autocorrelation of a random walk or an AR(1) series decays without such a swing), both
//!   lowered for a lag seen many times down to 3 Bartlett standard errors ([`limits`]); then,
//!   since noise picks among the multiples of the period, the shortest `lag / d` (rounded)
//!   after the first such trough whose autocorrelation is at least 1/2 and 9/10 of it.
//!   Sums and comparisons are exact in integers: the autocovariance at lag k times n² is
//!   `n² Σ s_j s_{j+k} - n S (Σ_{j<n-k} s_j + Σ_{j>=k} s_j) + (n - k) S²`.
//! - **Period.** The candidate's resolution is one lag (or one block), and a period wrong by
//!   a few tasks smears the cycle across many repetitions; the period is the one within
//!   `±(P/50 + block + 1)` of the candidate that minimises the phase dispersion of the ranks
//!   (Stellingwerf 1978, PDM): the within-phase variance `(Σ r² - Σ_p S_p² / n_p) / (n - P)`
//!   (`S_p`, `n_p` the sum and count of the ranks at phase p = t mod P), the first on ties.
//! - At least [`MIN_CYCLES`] repetitions of at least [`MIN_PERIOD`] tasks; series of more
//!   than `MAX_BLOCKS · MAX_BLOCK` values are not searched (the cost stays O(n) per lag).
//! - **Removal.** Each value minus the median of the values at its phase.
//! - **Gaps.** A metric absent from at most one task in three is searched on its ranks placed
//!   at their tasks (an absent task holds the mean rank) and its cycle removed by task
//!   phase ([`find_cycle`]); with more gaps it is not searched.
//!
//! - **A cycle of an atom's share.** A metric whose commonest value is at least half its
//!   values (a queue wait that is 0 outside the daily peak) and whose ranks' autocorrelation
//!   shows no cycle, nor one at another metric's period, is scanned by the periodogram
//!   ratio test below at every half Fourier step, Bonferroni over the steps
//!   ([`atom_period`], [`atom_cycle`]).
//! - **A period shared by other metrics.** A metric whose own search finds no cycle is
//!   tested at each period found on another metric of the same tasks (a latency that follows
//!   the load its requests and CPU show, over too few days for its weaker cycle to stand out
//!   on its own): at a known frequency the test needs no lag search. It is the periodogram
//!   ratio test of a sinusoid at a known frequency against the periodogram at the
//!   neighbouring Fourier frequencies (Priestley 1981 §6.1.4; Bloomfield 2000 §6.4), on the
//!   ranks placed at their tasks (an absent task at the mean rank): `g = I(1/P) / mean_k
//!   I(k/n)` over the [`SHARED_NEIGHBOURS`] Fourier frequencies on each side at least one
//!   frequency step away, which is F(2, 2M) distributed for a spectrum that is smooth there
//!   (`p = (1 + g/M)^-M`, M the neighbours used). The neighbours carry the metric's own
//!   autocorrelation, so the test holds on AR(1) noise, and a step or a trend puts more
//!   power below the frequency than at it (the test is conservative there). The cycle is
//!   removed at the period of least p when it is at most [`SHARED_ALPHA`] ([`shared_cycle`]).
//!
//! On 100 series each (`benches/changepoints.py`): iid, AR(1) φ 0.9 and 0.99 and random
//! walks of 1,000 and 4,032 values never get a period; a cycle of 288 tasks (amplitude 3
//! sd, or 15 over AR(1) noise) always does.

use rayon::prelude::*;

use super::lagged_product_sum;
use super::ranks::{commonest_count, doubled_midranks, median, median_and_mad};

/// The shortest period searched.
pub const MIN_PERIOD: usize = 4;
/// The fewest repetitions of the period the series must hold.
pub const MIN_CYCLES: usize = 3;
/// The candidate is searched on at most this many block sums.
pub const MAX_BLOCKS: usize = 4096;
/// Longer series than `MAX_BLOCKS · MAX_BLOCK` are not searched.
pub const MAX_BLOCK: usize = 16;
/// The candidate's autocorrelation is at least 1/2 (less over many cycles: [`limits`]).
pub const PEAK: f64 = 0.5;
/// A lag before it has autocorrelation at most -3/10 (less over many cycles).
pub const TROUGH: f64 = 0.3;
/// A step explaining less of the ranks' variance than this hides no cycle worth a second
/// search ([`step_free_ranks`]): it moves every autocorrelation by about that much.
pub const STEP_SHARE: f64 = 0.02;
/// The lowered limits stay this many of Bartlett's standard errors away from 0.
pub const NOISE_SDS: f64 = 3.0;

/// The autocovariances of `series` at `lags`, times n² (exact).
fn scaled_autocovariances(series: &[i64], lags: impl Iterator<Item = usize>) -> Vec<i128> {
    let n = series.len();
    let total: i128 = series.iter().map(|&s| s as i128).sum();
    let mut prefix = Vec::with_capacity(n + 1);
    prefix.push(0i128);
    for &s in series {
        prefix.push(prefix[prefix.len() - 1] + s as i128);
    }
    let size = n as i128;
    // Every product and partial sum is an integer; below 2^53 they are exact in f64 too,
    // whose sums vectorise (eight accumulators) where i64 multiplications do not.
    let largest = series.iter().map(|s| s.unsigned_abs()).max().unwrap_or(0) as u128;
    let exact_in_f64 = largest * largest * (n as u128) < 1u128 << 53;
    let floats: Vec<f64> = if exact_in_f64 {
        series.iter().map(|&s| s as f64).collect()
    } else {
        Vec::new()
    };
    lags.map(|k| {
        // in i64: block sums are at most MAX_BLOCK · 2n <= 2.2e6, so at most MAX_BLOCKS
        // products sum to below 2e16
        let products = if exact_in_f64 {
            lagged_float_products(&floats[..n - k], &floats[k..]) as i128
        } else {
            series[..n - k]
                .iter()
                .zip(&series[k..])
                .map(|(&a, &b)| a * b)
                .sum::<i64>() as i128
        };
        let head = prefix[n - k];
        let tail = total - prefix[k];
        size * size * products - size * total * (head + tail) + (n - k) as i128 * total * total
    })
    .collect()
}

/// `Σ a_i b_i` of integer-valued floats whose every partial sum stays below 2^53 (so the
/// order of the additions does not matter), in eight accumulators.
fn lagged_float_products(a: &[f64], b: &[f64]) -> i64 {
    let mut lanes = [0.0f64; 8];
    let (head_a, head_b) = (a.chunks_exact(8), b.chunks_exact(8));
    let (rest_a, rest_b) = (head_a.remainder(), head_b.remainder());
    for (x, y) in head_a.zip(head_b) {
        for lane in 0..8 {
            lanes[lane] += x[lane] * y[lane];
        }
    }
    let mut total: f64 = lanes.iter().sum();
    for (x, y) in rest_a.iter().zip(rest_b) {
        total += x * y;
    }
    total as i64
}

/// Rescales the autocovariances at lags 1, 2, ... of block sums over tasks of which
/// `present` marks those with a value, to what they would be with every task present: the
/// lag-h sum runs over the pairs of blocks h apart and counts their pairs of present tasks
/// `W_h = Σ w_i w_{i+h}` (`w_i` the present tasks of block i), against `(B - h) / B · W_0`
/// with every task present, so each becomes `c_h (B - h) W_0 / (B W_h)` (integer division
/// toward zero; 0 without a present pair). Without it, a metric absent at every k-th task
/// has more present pairs at lags that are multiples of k, and its cycle's candidate is
/// pulled onto one of them. Every task present: unchanged.
fn per_present_pair(covariances: &mut [i128], present: &[bool], block: usize, blocks: usize) {
    let weights: Vec<i128> = present[..blocks * block]
        .chunks_exact(block)
        .map(|chunk| chunk.iter().filter(|&&p| p).count() as i128)
        .collect();
    let pairs = |lag: usize| lagged_product_sum(&weights, lag);
    let all = pairs(0);
    let size = blocks as i128;
    for (index, covariance) in covariances.iter_mut().enumerate() {
        let lag = index + 1;
        let present_pairs = pairs(lag);
        *covariance = if present_pairs == 0 {
            0
        } else {
            *covariance * ((size - lag as i128) * all) / (size * present_pairs)
        };
    }
}

/// The within-phase variance of `ranks` for period `period` (phase dispersion) over the
/// tasks `present` says (every task when None), phases without such a task left out, and
/// whether every phase has one.
fn phase_dispersion(ranks: &[i64], period: usize, present: Option<&[bool]>) -> (f64, bool) {
    let mut sums = vec![0i64; period];
    let mut counts = vec![0i64; period];
    let mut squares: i128 = 0;
    let mut count = 0usize;
    for (t, &r) in ranks.iter().enumerate() {
        if present.is_none_or(|present| present[t]) {
            sums[t % period] += r;
            counts[t % period] += 1;
            squares += r as i128 * r as i128;
            count += 1;
        }
    }
    let mut between = 0.0;
    let mut phases = 0usize;
    for (&sum, &count) in sums.iter().zip(&counts) {
        if count > 0 {
            let sum = sum as f64;
            between += sum * sum / count as f64;
            phases += 1;
        }
    }
    let dispersion = (squares as f64 - between) / count.saturating_sub(phases).max(1) as f64;
    (dispersion, phases == period)
}

/// Per lag k (1-based, at k - 1): the autocorrelation a peak reaches and the one a trough
/// goes below. [`PEAK`] and [`TROUGH`] times `min(1, sqrt(3 k / blocks))`: a cycle seen
/// many times swings less than 1/2 and still stands out (a p99 latency whose daily cycle
/// is 29% of its variance, 14 days of 5-minute windows: never found with the fixed
/// limits, 20 of 20 with these). Never below [`NOISE_SDS`] of Bartlett's (1946) standard
/// error of the autocorrelation at lag k, `sqrt((1 + 2 Σ_{j<k} r_j²) / blocks)`: a
/// persistent series has noisy autocorrelations (without this floor an AR(1) 0.99 series
/// of 10,000 values got a period in 3 of 100). Floats formed in this order (the NumPy
/// twin repeats it).
fn limits(covariances: &[i128], variance: i128, blocks: usize) -> (Vec<f64>, Vec<f64>) {
    let scale = variance as f64;
    let (mut peaks, mut troughs) = (Vec::new(), Vec::new());
    let mut squares = 0.0;
    for (lag, &covariance) in (1..).zip(covariances) {
        let many = ((MIN_CYCLES * lag) as f64 / blocks as f64).sqrt().min(1.0);
        let noise = NOISE_SDS * ((1.0 + 2.0 * squares) / blocks as f64).sqrt();
        peaks.push(PEAK.min((PEAK * many).max(noise)));
        troughs.push(TROUGH.min((TROUGH * many).max(noise)));
        let r = covariance as f64 / scale;
        squares += r * r;
    }
    (peaks, troughs)
}

/// The period of the cycle of `ranks` (a metric's doubled mid-ranks in task order), if it
/// has one (see the module documentation).
pub fn seasonal_period(ranks: &[i64]) -> Option<usize> {
    seasonal_period_of(ranks, None)
}

/// [`seasonal_period`] of ranks placed at their tasks, `present` marking the tasks with a
/// value: the candidate from the autocorrelation of every task, each lag's autocovariance
/// per pair of present tasks ([`per_present_pair`]); the period of least phase dispersion
/// over the present tasks only (an absent task's placeholder rank has no spread: a metric
/// absent at every k-th task pulled the period onto a multiple of k), among the periods
/// whose every phase has a present task; None when the candidate has a phase without one
/// and fits better than that period (a cycle never seen at some phase cannot be removed
/// by phase medians).
pub fn seasonal_period_of(ranks: &[i64], present: Option<&[bool]>) -> Option<usize> {
    let n = ranks.len();
    let block = n.div_ceil(MAX_BLOCKS).max(1);
    if block > MAX_BLOCK {
        return None;
    }
    let blocks = n / block;
    if blocks < MIN_CYCLES * MIN_PERIOD {
        return None;
    }
    let sums: Vec<i64> = ranks[..blocks * block]
        .chunks_exact(block)
        .map(|chunk| chunk.iter().sum())
        .collect();
    let variance = scaled_autocovariances(&sums, std::iter::once(0))[0];
    if variance <= 0 {
        return None;
    }
    let last = blocks / MIN_CYCLES;
    let mut covariances = scaled_autocovariances(&sums, 1..=last);
    if let Some(present) = present {
        per_present_pair(&mut covariances, present, block, blocks);
    }
    let (peaks, troughs) = limits(&covariances, variance, blocks);
    let scale = variance as f64;
    let mut best: Option<(usize, i128)> = None;
    let mut trough: Option<usize> = None;
    for (lag, &covariance) in (1..=last).zip(&covariances) {
        let peak = covariance as f64 >= peaks[lag - 1] * scale;
        if trough.is_some()
            && peak
            && lag * block >= MIN_PERIOD
            && best.is_none_or(|b| covariance > b.1)
        {
            best = Some((lag, covariance));
        }
        if trough.is_none() && covariance as f64 <= -troughs[lag - 1] * scale {
            trough = Some(lag);
        }
    }
    let (highest_peak, top) = best?;
    let trough = trough.unwrap_or(0);
    // Noise picks among the multiples of the period: the shortest lag lag/d (rounded)
    // after the first trough whose peak is at least 9/10 of the best is the period.
    let mut lag = highest_peak;
    for divisor in 2..=highest_peak {
        let shorter = (2 * highest_peak + divisor) / (2 * divisor);
        let covariance = covariances[shorter - 1];
        if shorter > trough
            && shorter * block >= MIN_PERIOD
            && covariance as f64 >= peaks[shorter - 1] * scale
            && 10 * covariance >= 9 * top
        {
            lag = shorter;
        }
    }
    let candidate = lag * block;
    let (at_candidate, seen) = phase_dispersion(ranks, candidate, present);
    let reach = candidate / 50 + block + 1;
    let lowest = candidate.saturating_sub(reach).max(MIN_PERIOD);
    let highest = (candidate + reach).min(n / MIN_CYCLES);
    let mut chosen: Option<(usize, f64)> = None;
    for period in lowest..=highest {
        let (dispersion, complete) = phase_dispersion(ranks, period, present);
        if complete && chosen.is_none_or(|c| dispersion < c.1) {
            chosen = Some((period, dispersion));
        }
    }
    // A candidate with a phase never seen that fits better than every period seen at all
    // its phases is the cycle: it cannot be removed.
    chosen.filter(|c| seen || c.1 <= at_candidate).map(|c| c.0)
}

/// [`atom_period`] searches a metric whose commonest value is at least this share
/// (numerator, denominator) of its values.
pub const ATOM_SHARE: (usize, usize) = (1, 2);

/// The period of a cycle in the share of a metric's commonest value, for a metric (doubled
/// mid-ranks `ranks` in task order, no gaps) whose commonest value is at least
/// [`ATOM_SHARE`] of its values: a queue wait that is 0 outside the daily peak and on half
/// the windows in it, an error count that is 0 at night. Its ranks' autocorrelation is weak
/// (the tied atom carries no order, and the peak's windows are busy at random): at the
/// period about 0.35 against the 1/2 a peak must reach, with no trough below -0.2 (a
/// narrow peak swings little below its mean), so [`seasonal_period`] finds none and the
/// search read its three daily peaks as 5 to 8 changes.
///
/// The test is [`shared_period_p`]'s periodogram ratio (Priestley 1981 §6.1.4), scanned:
/// on the `B` block sums of the centred ranks (blocks as in [`seasonal_period`]), at every
/// half Fourier step `h / (2B)` with `h >= 2 MIN_CYCLES`, period `2N / h >= MIN_PERIOD`
/// (`N = B · block`) and `h < B` (a cycle between two Fourier frequencies keeps its
/// power), against the Fourier frequencies `k / B` within [`SHARED_NEIGHBOURS`] steps that
/// are at least one step from it and from its harmonics (a narrow peak puts much of its
/// power there); Bonferroni over the `H` frequencies tested: `p H <= `[`SHARED_ALPHA`].
/// The fundamental is the least p's `h`, or the shortest `round(h / d)` that also passes
/// (as [`seasonal_period`] takes the shortest multiple); the period is the one of least
/// phase dispersion between `2N / (h + 1)` and `2N / (h - 1)` (the candidate's
/// resolution), at most `n / MIN_CYCLES`. The ratio compares the frequency with its
/// neighbours, so it holds on persistent noise (a queue busy while an AR(1) 0.99 load is
/// high), flags and counts: measured in `benches/RESULTS.md`.
pub fn atom_period(ranks: &[i64]) -> Option<usize> {
    let n = ranks.len();
    let block = n.div_ceil(MAX_BLOCKS).max(1);
    let blocks = n / block;
    if block > MAX_BLOCK || blocks < MIN_CYCLES * MIN_PERIOD {
        return None;
    }
    // exact above a third of the values, enough for the half asked
    if commonest_count(ranks) * ATOM_SHARE.1 < n * ATOM_SHARE.0 {
        return None;
    }
    let span = blocks * block;
    let centre = n as i64 + 1;
    let sums: Vec<i64> = ranks[..span]
        .chunks_exact(block)
        .map(|chunk| chunk.iter().map(|&r| r - centre).sum())
        .collect();
    let highest_h = (blocks - 1).min(2 * span / MIN_PERIOD);
    let lowest_h = 2 * MIN_CYCLES;
    if highest_h < lowest_h {
        return None;
    }
    // the periodogram at every half step h / (2B), h <= B, from one 2B-point table
    let (cosines, sines): (Vec<f64>, Vec<f64>) = (0..2 * blocks)
        .map(|i| {
            let angle = std::f64::consts::TAU * i as f64 / (2 * blocks) as f64;
            (angle.cos(), angle.sin())
        })
        .unzip();
    let power: Vec<f64> = (0..=blocks)
        .into_par_iter()
        .map(|h| periodogram(&sums, &cosines, &sines, h % (2 * blocks)))
        .collect();
    let tested = highest_h - lowest_h + 1;
    let p_values: Vec<f64> = (lowest_h..=highest_h)
        .map(|h| {
            let mut noise = 0.0;
            let mut used = 0usize;
            let first = (h / 2).saturating_sub(SHARED_NEIGHBOURS).max(1);
            for k in first..=h.div_ceil(2) + SHARED_NEIGHBOURS {
                let doubled = 2 * k;
                let nearest = (doubled + h / 2) / h; // the multiple of h nearest 2k
                if doubled >= blocks
                    || doubled.abs_diff(h) < 2
                    || (nearest >= 2 && doubled.abs_diff(nearest * h) < 2)
                {
                    continue;
                }
                noise += power[doubled];
                used += 1;
            }
            if used == 0 || noise <= 0.0 {
                return 1.0;
            }
            let m = used as f64;
            let g = power[h] / noise * m;
            (1.0 + g / m).powf(-m).min(1.0)
        })
        .collect();
    let passes = |h: usize| p_values[h - lowest_h] * tested as f64 <= SHARED_ALPHA;
    let mut best = lowest_h;
    for h in lowest_h..=highest_h {
        if p_values[h - lowest_h] < p_values[best - lowest_h] {
            best = h;
        }
    }
    if !passes(best) {
        return None;
    }
    let mut chosen = best;
    for divisor in 2..=best / (2 * MIN_CYCLES) {
        let shorter = (2 * best + divisor) / (2 * divisor);
        if shorter >= lowest_h && passes(shorter) {
            chosen = shorter;
        }
    }
    let lowest = (2 * span / (chosen + 1)).max(MIN_PERIOD);
    let highest = (n / MIN_CYCLES).min((2 * span).div_ceil(chosen - 1));
    let mut found: Option<(usize, f64)> = None;
    for period in lowest..=highest {
        let (dispersion, _) = phase_dispersion(ranks, period, None);
        if found.is_none_or(|f| dispersion < f.1) {
            found = Some((period, dispersion));
        }
    }
    found.map(|f| f.0)
}

/// The cycle of a metric without gaps whose own search ([`find_cycle`]) and the other
/// metrics' periods ([`shared_cycle`]) found none, in the share of its commonest value
/// ([`atom_period`]), and the values with it removed; None otherwise (also with gaps, or
/// when the removal is not finite).
pub fn atom_cycle(values: &[f64], ranks: &[i64], length: usize) -> Option<(usize, Vec<f64>)> {
    if values.len() != length {
        return None;
    }
    let period = atom_period(ranks)?;
    let removed = remove_cycle(values, period);
    removed
        .iter()
        .all(|v| v.is_finite())
        .then_some((period, removed))
}

/// Each value minus the median of the values at its phase (t mod `period`), the median
/// taken of the halved values and doubled (the mean of two middle values near the largest
/// float does not overflow; halving and doubling are exact above the subnormals).
pub fn remove_cycle(values: &[f64], period: usize) -> Vec<f64> {
    let tasks: Vec<usize> = (0..values.len()).collect();
    remove_cycle_at(values, &tasks, period).unwrap_or_else(|| values.to_vec())
}

/// [`remove_cycle`] of values recorded at the task positions `tasks` (ascending): the
/// phase of a value is its task mod `period`. None when a phase has no value.
pub fn remove_cycle_at(values: &[f64], tasks: &[usize], period: usize) -> Option<Vec<f64>> {
    let mut halves: Vec<Vec<f64>> = vec![Vec::new(); period];
    for (&value, &task) in values.iter().zip(tasks) {
        halves[task % period].push(value * 0.5);
    }
    if halves.iter().any(Vec::is_empty) {
        return None;
    }
    let profile: Vec<f64> = halves.iter().map(|phase| 2.0 * median(phase)).collect();
    Some(
        values
            .iter()
            .zip(tasks)
            .map(|(&value, &task)| value - profile[task % period])
            .collect(),
    )
}

/// `values` ranked within the two pieces cut at the least-squares location of one change
/// of `ranks` (their doubled mid-ranks; Hinkley 1970: the first k in [n/10, n - n/10]
/// maximising `T_k² / (k (n - k))`, `T_k = n Σ ranks[..k] - k Σ ranks`), each piece's
/// doubled mid-ranks minus their mean `L + 1`: integers with the piece's level removed. A
/// deploy that moves a metric by 40% adds to every autocorrelation of its ranks and hides
/// its daily cycle's trough; [`find_cycle`] searches these when the ranks show no cycle.
/// None (no second search, no ranking again) when that step explains less than
/// [`STEP_SHARE`] of the ranks' variance, or the series is too short to cut.
pub fn step_free_ranks(values: &[f64], ranks: &[i64]) -> Option<Vec<i64>> {
    let n = ranks.len();
    let margin = (n / 10).max(1);
    if n < 2 * margin + 1 {
        return None;
    }
    let total: i128 = ranks.iter().map(|&r| r as i128).sum();
    let squares: i128 = ranks.iter().map(|&r| r as i128 * r as i128).sum();
    let mut prefix: i128 = ranks[..margin].iter().map(|&r| r as i128).sum();
    let (mut cut, mut best) = (margin, f64::NEG_INFINITY);
    for k in margin..=n - margin {
        if k > margin {
            prefix += ranks[k - 1] as i128;
        }
        let t = (n as i128 * prefix - k as i128 * total) as f64;
        let criterion = t * t / ((k * (n - k)) as f64);
        if criterion > best {
            (cut, best) = (k, criterion);
        }
    }
    // best / (n Σr² - S²) is the share of the ranks' variance the step explains
    if best < STEP_SHARE * (n as i128 * squares - total * total) as f64 {
        return None;
    }
    let mut free = Vec::with_capacity(n);
    for piece in [&values[..cut], &values[cut..]] {
        let mean = piece.len() as i64 + 1;
        free.extend(doubled_midranks(piece).into_iter().map(|r| r - mean));
    }
    Some(free)
}

/// A period found on another metric is this metric's cycle too when the periodogram ratio
/// test gives at most this p-value ([`shared_cycle`]). On 200 series each of 1,152, 4,032
/// and 20,000 values tested at 288 tasks (iid Gaussian, log-normal, Poisson 0.3, AR(1) 0.7
/// and 0.9, AR(1) 0.98 under noise, random walks, a step), at most 1 in 200 got p <= 0.001;
/// a latency whose daily cycle is a third of its variance under AR(1) noise, 4 days of
/// 288 samples: p from 9e-7 to 8e-4 over 10 exports.
pub const SHARED_ALPHA: f64 = 1e-3;
/// The Fourier frequencies compared on each side of a shared period's frequency.
pub const SHARED_NEIGHBOURS: usize = 8;

/// `(Σ x_t cos θ_t)² + (Σ x_t sin θ_t)²` with `θ_t = 2π (t · step mod n) / n` read from
/// `cosines` and `sines` (the n-point tables; `step < n`): the periodogram at frequency
/// step/n, times n.
fn periodogram(centred: &[i64], cosines: &[f64], sines: &[f64], step: usize) -> f64 {
    let n = cosines.len();
    let (mut re, mut im) = (0.0, 0.0);
    let mut angle = 0usize;
    for &x in centred {
        re += x as f64 * cosines[angle];
        im += x as f64 * sines[angle];
        angle += step;
        if angle >= n {
            angle -= n;
        }
    }
    re * re + im * im
}

/// The p-value of the periodogram ratio test of a cycle of `period` tasks in `centred`
/// (integers with mean 0, one per task; see the module documentation), 1 when no
/// neighbouring frequency is left or the neighbours carry no power.
pub fn shared_period_p(centred: &[i64], period: usize) -> f64 {
    let n = centred.len();
    let table = |count: usize| -> (Vec<f64>, Vec<f64>) {
        (0..count)
            .map(|i| {
                let angle = std::f64::consts::TAU * i as f64 / count as f64;
                (angle.cos(), angle.sin())
            })
            .unzip()
    };
    // at 1/period: the phase t mod period, read from a period-point table
    let (cosines, sines) = table(period);
    let at_period = periodogram(centred, &cosines, &sines, 1);
    // the Fourier frequencies k/n at least one step from n/period, below n/2
    let (cosines, sines) = table(n);
    let lowest = (n / period).saturating_sub(SHARED_NEIGHBOURS);
    let highest = n.div_ceil(period) + SHARED_NEIGHBOURS;
    let mut noise = 0.0;
    let mut used = 0usize;
    for k in lowest..=highest {
        if k == 0 || 2 * k >= n || (k * period).abs_diff(n) < period {
            continue;
        }
        noise += periodogram(centred, &cosines, &sines, k);
        used += 1;
    }
    if used == 0 || noise <= 0.0 {
        return 1.0;
    }
    let m = used as f64;
    let g = at_period / (noise / m);
    (1.0 + g / m).powf(-m).min(1.0)
}

/// The cycle of a metric whose own search found none, at one of `periods` (found on other
/// metrics of the same `length` tasks; see the module documentation): `values` (ranks
/// `ranks`) recorded at `tasks` (unread when every task has a value), tested at each
/// period with at least [`MIN_CYCLES`] repetitions by [`shared_period_p`] on the ranks
/// placed at their tasks; the period of least p (the first on ties) when it is at most
/// [`SHARED_ALPHA`], and the values with it removed by task phase. None as
/// [`find_cycle`] says for gaps and length, or when a phase has no value.
pub fn shared_cycle(
    values: &[f64],
    ranks: &[i64],
    tasks: &[usize],
    length: usize,
    periods: &[usize],
) -> Option<(usize, Vec<f64>)> {
    let count = values.len();
    if length > MAX_BLOCKS * MAX_BLOCK || (length - count) * MAX_ABSENT.1 > length * MAX_ABSENT.0 {
        return None;
    }
    // the doubled mid-ranks' mean is count + 1: an absent task adds nothing
    let mut centred = vec![0i64; length];
    if count == length {
        for (slot, &rank) in centred.iter_mut().zip(ranks) {
            *slot = rank - (count as i64 + 1);
        }
    } else {
        for (&rank, &task) in ranks.iter().zip(tasks) {
            centred[task] = rank - (count as i64 + 1);
        }
    }
    let mut best: Option<(usize, f64)> = None;
    for &period in periods {
        if period < MIN_PERIOD || length < MIN_CYCLES * period {
            continue;
        }
        let p = shared_period_p(&centred, period);
        if best.is_none_or(|b| p < b.1) {
            best = Some((period, p));
        }
    }
    let (period, p) = best?;
    if p > SHARED_ALPHA {
        return None;
    }
    let removed = if count == length {
        remove_cycle(values, period)
    } else {
        remove_cycle_at(values, tasks, period)?
    };
    removed
        .iter()
        .all(|v| v.is_finite())
        .then_some((period, removed))
}

/// A phase group holds at least this many values ([`phase_groups`]): the MAD of 200 values
/// is within about ±9% of the spread's.
pub const PHASE_GROUP_VALUES: usize = 200;
/// At most this many phase groups (an hour of a daily cycle).
pub const MAX_PHASE_GROUPS: usize = 24;
/// Fewer groups than this read no cycle of the spread.
pub const MIN_PHASE_GROUPS: usize = 4;
/// A group spans at least this many phases of the cycle.
pub const PHASE_SPAN: usize = 3;
/// The widest group's MAD is at least this many times the narrowest's.
pub const PHASE_SPREAD_RATIO: f64 = 2.0;
/// The level of the periodogram ratio test of the spread's cycle.
pub const PHASE_ALPHA: f64 = 1e-3;

/// The number of phase groups of `count` values over a cycle of `period` tasks:
/// `min(MAX_PHASE_GROUPS, period / PHASE_SPAN, count / PHASE_GROUP_VALUES)`, 0 when that is
/// below [`MIN_PHASE_GROUPS`].
pub fn phase_group_count(period: usize, count: usize) -> usize {
    let groups = MAX_PHASE_GROUPS
        .min(period / PHASE_SPAN)
        .min(count / PHASE_GROUP_VALUES);
    if groups < MIN_PHASE_GROUPS {
        0
    } else {
        groups
    }
}

/// The phase group of task `task` (counted from phase 0) among `groups` equal spans of a
/// cycle of `period` tasks.
pub fn phase_group(task: usize, period: usize, groups: usize) -> usize {
    task % period * groups / period
}

/// The number of phase groups a metric's values are best read in when their *spread*
/// repeats a cycle of `period` tasks (an error rate per 5-minute window whose requests fall
/// tenfold at night: its values there are few errors over few requests, ten times as
/// noisy), 0 when it does not. `column` holds the metric at consecutive tasks (NaN when
/// absent), the first at phase `start` of the cycle.
///
/// The groups split the cycle into `G = min(MAX_PHASE_GROUPS, period / PHASE_SPAN,
/// m / PHASE_GROUP_VALUES)` equal spans of phase (task t in group `((start + t) mod period)
/// · G / period`), at least [`MIN_PHASE_GROUPS`]. The spread repeats the cycle when both:
/// - the largest of the groups' MADs (around each group's median) is at least
///   [`PHASE_SPREAD_RATIO`] times the smallest (an effect worth a scale per group: each
///   group's fence is then read on fewer values), and
/// - the absolute deviations from the median repeat the cycle by the periodogram ratio
///   test of [`shared_period_p`] on their doubled mid-ranks placed at their tasks
///   (Priestley 1981 §6.1.4; the neighbouring frequencies carry the series' own
///   autocorrelation) at [`PHASE_ALPHA`]: the phases differ by more than chance. (Not the
///   deviations from the group medians: where most values sit at a floor, as an error
///   rate's at night, the group median is the floor and the deviations are zeros and a
///   few large ones, whose mean rank is no larger than elsewhere.)
///
/// A level cycle that moves several noise widths within a group widens that group's MAD
/// too: such a metric is also read by phase, which takes the cycle's swing out of its
/// scale. A scale per phase is the seasonal reading of outliers of Hochenbaum, Vallis & Kejariwal
/// (2017, the seasonal hybrid ESD): each value is compared with the values at the same
/// phase of the other repetitions. 0 also for series the cycle search does not read
/// (longer than `MAX_BLOCKS · MAX_BLOCK` tasks, fewer than [`MIN_CYCLES`] repetitions).
pub fn phase_groups(column: &[f64], period: usize, start: usize) -> usize {
    let length = column.len();
    if period < MIN_PERIOD || length > MAX_BLOCKS * MAX_BLOCK || length < MIN_CYCLES * period {
        return 0;
    }
    let tasks: Vec<usize> = (0..length).filter(|&t| !column[t].is_nan()).collect();
    let count = tasks.len();
    let groups = phase_group_count(period, count);
    if groups == 0 {
        return 0;
    }
    let group_of = |task: usize| phase_group(start + task, period, groups);
    let mut members: Vec<Vec<f64>> = vec![Vec::new(); groups];
    for &task in &tasks {
        members[group_of(task)].push(column[task]);
    }
    if members.iter().any(Vec::is_empty) {
        return 0;
    }
    let spreads: Vec<(f64, f64)> = members
        .iter()
        .map(|values| median_and_mad(values))
        .collect();
    let narrowest = spreads.iter().map(|s| s.1).fold(f64::INFINITY, f64::min);
    let widest = spreads.iter().map(|s| s.1).fold(0.0, f64::max);
    if !(widest > 0.0 && widest >= PHASE_SPREAD_RATIO * narrowest) {
        return 0;
    }
    if !deviations_repeat(column, &tasks, period) {
        return 0;
    }
    groups
}

/// Whether the absolute deviations from the median of the present values of `column` (at
/// `tasks`, ascending) repeat the cycle of `period` tasks: the periodogram ratio test of
/// [`shared_period_p`] on their doubled mid-ranks placed at their tasks (an absent task at
/// the mean rank) at [`PHASE_ALPHA`]. The test of [`phase_groups`] without the groups'
/// MADs, which are all 0 where a metric sits at a floor at most phases (a queue wait that
/// is 0 outside the daily peak and on half the windows in it).
pub fn deviations_repeat(column: &[f64], tasks: &[usize], period: usize) -> bool {
    let present: Vec<f64> = tasks.iter().map(|&task| column[task]).collect();
    let count = present.len();
    let center = median(&present);
    let deviations: Vec<f64> = present
        .iter()
        .map(|&value| (value - center).abs())
        .collect();
    // the doubled mid-ranks' mean is count + 1: an absent task adds nothing
    let mut centred = vec![0i64; column.len()];
    for (&task, rank) in tasks.iter().zip(doubled_midranks(&deviations)) {
        centred[task] = rank - (count as i64 + 1);
    }
    shared_period_p(&centred, period) <= PHASE_ALPHA
}

/// The most absent tasks a metric may have for its cycle to be searched: one in three
/// (a sinusoid of 288 tasks under noise of 2/15 of its amplitude: found in 18 of 20 series
/// with 30% of the tasks absent, 0 of 20 with 50%: an absent task dilutes the
/// autocorrelation; no period on AR(1) 0.99 or random walks with gaps).
pub const MAX_ABSENT: (usize, usize) = (1, 3);

/// The cycle of a metric whose `values` (with `ranks` their doubled mid-ranks) were
/// recorded at the task positions `tasks` (ascending, out of `length` tasks; unread when
/// every task has a value) and the values with it removed: (period, removed).
/// Without gaps, [`seasonal_period`] of the ranks and
/// [`remove_cycle`]. With gaps (at most [`MAX_ABSENT`] of the tasks), the period is
/// searched on the ranks placed at their tasks, an absent task holding the mean doubled
/// rank `count + 1` (it adds nothing to the autocovariances; [`seasonal_period_of`]), and
/// the cycle is removed by task phase ([`remove_cycle_at`]; none when a phase has no
/// value). None when no cycle
/// is found, with more gaps, or when removing it gives a non-finite value (values near
/// the largest float).
pub fn find_cycle(
    values: &[f64],
    ranks: &[i64],
    tasks: &[usize],
    length: usize,
) -> Option<(usize, Vec<f64>)> {
    let count = values.len();
    let (period, removed) = if count == length {
        // Longer series are not searched: no ranking again.
        let period = seasonal_period(ranks).or_else(|| {
            (count <= MAX_BLOCKS * MAX_BLOCK)
                .then(|| step_free_ranks(values, ranks))
                .flatten()
                .and_then(|free| seasonal_period(&free))
        })?;
        (period, remove_cycle(values, period))
    } else {
        if (length - count) * MAX_ABSENT.1 > length * MAX_ABSENT.0 {
            return None;
        }
        let mut placed = vec![count as i64 + 1; length];
        let mut present = vec![false; length];
        for (&rank, &task) in ranks.iter().zip(tasks) {
            placed[task] = rank;
            present[task] = true;
        }
        let period = seasonal_period_of(&placed, Some(&present))?;
        (period, remove_cycle_at(values, tasks, period)?)
    };
    removed
        .iter()
        .all(|v| v.is_finite())
        .then_some((period, removed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::distribution_shift::doubled_midranks;
    use crate::rng::SplitMix64;

    fn noise(seed: u64, n: usize) -> Vec<f64> {
        let mut rng = SplitMix64::new(seed);
        (0..n).map(|_| rng.next_f64() - 0.5).collect()
    }

    #[test]
    fn phase_groups_read_a_spread_that_repeats_and_not_a_level_that_does() {
        // Two weeks of 288 tasks: noise five times as wide over a quarter of each day.
        let n = 4032;
        let wide: Vec<f64> = noise(21, n)
            .iter()
            .enumerate()
            .map(|(t, e)| if t % 288 < 72 { 5.0 * e } else { *e })
            .collect();
        // min(24, 288 / 3, 4,032 / 200)
        assert_eq!(phase_groups(&wide, 288, 0), 20);
        // a level cycle of constant spread, and plain noise: no groups (a level that moves
        // several noise widths within a group widens that group's MAD: it is read by phase)
        assert_eq!(phase_groups(&sine(22, n, 288.0, 1.0), 288, 0), 0);
        assert_eq!(phase_groups(&sine(22, n, 288.0, 10.0), 288, 0), 20);
        assert_eq!(phase_groups(&noise(23, n), 288, 0), 0);
        // absent values are left out; too few repetitions read nothing
        let mut gappy = wide.clone();
        for t in (0..n).step_by(10) {
            gappy[t] = f64::NAN;
        }
        assert_eq!(phase_groups(&gappy, 288, 0), 18);
        assert_eq!(phase_groups(&wide[..800], 288, 0), 0);
    }

    /// `amplitude · sin(2πt / period)` plus [`noise`].
    fn sine(seed: u64, n: usize, period: f64, amplitude: f64) -> Vec<f64> {
        noise(seed, n)
            .iter()
            .enumerate()
            .map(|(t, e)| amplitude * (std::f64::consts::TAU * t as f64 / period).sin() + e)
            .collect()
    }

    /// A queue wait over three cycles of `period` tasks: 0, except on about half the
    /// tasks of the peak (the sixth of each cycle around its middle), where it is
    /// `1 + 30 u` (u uniform).
    fn peak_waits(seed: u64, n: usize, period: usize) -> Vec<f64> {
        let mut rng = SplitMix64::new(seed);
        (0..n)
            .map(|t| {
                let busy = (t % period) * 12 / period;
                let (coin, size) = (rng.next_f64(), rng.next_f64());
                if (5..7).contains(&busy) && coin < 0.5 {
                    1.0 + 30.0 * size
                } else {
                    0.0
                }
            })
            .collect()
    }

    #[test]
    fn a_cycle_in_the_share_of_a_metrics_commonest_value() {
        for (period, n) in [(480usize, 1440usize), (1440, 4320), (400, 1800)] {
            let waits = peak_waits(period as u64, n, period);
            let ranks = doubled_midranks(&waits);
            // the autocorrelation search misses it ...
            assert_eq!(seasonal_period(&ranks), None);
            // ... the scan of the periodogram finds it, within its resolution
            let found = atom_period(&ranks).expect("a period");
            assert!(
                found.abs_diff(period) <= period / 25,
                "{found} for {period}"
            );
            assert_eq!(find_cycle(&waits, &ranks, &[], n), None);
            let (cycle, removed) = atom_cycle(&waits, &ranks, n).expect("a cycle");
            assert_eq!((cycle, removed.len()), (found, n));
            assert_eq!(atom_cycle(&waits[1..], &ranks[1..], n), None); // gaps: not searched
        }
        // a commonest value on fewer than half the values: not searched
        let mut busy = peak_waits(7, 1440, 480);
        for (t, wait) in busy.iter_mut().enumerate() {
            if t % 3 != 0 {
                *wait += 0.5 + t as f64 * 1e-6;
            }
        }
        assert_eq!(atom_period(&doubled_midranks(&busy)), None);
        // flags at random and a queue's wait: an atom, no cycle
        let mut rng = SplitMix64::new(8);
        let flags: Vec<f64> = (0..2000)
            .map(|_| f64::from(u8::from(rng.next_f64() < 0.2)))
            .collect();
        assert_eq!(atom_period(&doubled_midranks(&flags)), None);
        // a queue's wait (Lindley's recursion), empty more than half the time
        let mut wait = 0.0;
        let queue: Vec<f64> = noise(9, 2000)
            .iter()
            .map(|e| {
                wait = f64::max(wait + e - 0.15, 0.0);
                wait
            })
            .collect();
        assert!(queue.iter().filter(|&&w| w == 0.0).count() >= 1000);
        assert_eq!(atom_period(&doubled_midranks(&queue)), None);
        // too short to hold 3 cycles of 4 tasks
        assert_eq!(atom_period(&doubled_midranks(&flags[..11])), None);
    }

    #[test]
    fn autocovariances_per_present_pair() {
        // Every task present: unchanged (the factor is exactly 1).
        let mut covariances = vec![-48i128, 17, 5];
        per_present_pair(&mut covariances, &[true; 8], 2, 4);
        assert_eq!(covariances, vec![-48, 17, 5]);
        // Blocks of 2 tasks, present counts 2, 1, 2, 0: W_0 = 4 + 1 + 4 = 9, W_1 = 2 + 2 = 4,
        // W_2 = 4, W_3 = 0. Lag 1: -48 · 3 · 9 / (4 · 4) = -81 (toward zero), lag 2:
        // 17 · 2 · 9 / 16 = 19, lag 3: no present pair.
        let present = [true, true, true, false, true, true, false, false];
        let mut covariances = vec![-48i128, 17, 5];
        per_present_pair(&mut covariances, &present, 2, 4);
        assert_eq!(covariances, vec![-81, 19, 0]);
    }

    #[test]
    fn hand_worked_autocovariances() {
        // 1, 3, 2, 6: S = 12, n = 4; lag 1 products 3 + 6 + 12 = 21, head 6, tail 11:
        // 16 · 21 - 4 · 12 · 17 + 3 · 144 = 336 - 816 + 432 = -48 (= 16 Σ (s_j - 3)(s_{j+1} - 3)
        // = 16 · (-2 · 0 + 0 · -1 + -1 · 3) = -48).
        assert_eq!(scaled_autocovariances(&[1, 3, 2, 6], 1..=1), vec![-48]);
        // lag 0: 16 Σ (s - 3)² = 16 · (4 + 0 + 1 + 9) = 224
        assert_eq!(scaled_autocovariances(&[1, 3, 2, 6], 0..=0), vec![224]);
    }

    #[test]
    fn a_cycle_is_found_at_its_period_and_noise_has_none() {
        for (period, n) in [(7usize, 60usize), (24, 500), (288, 4032), (288, 20_000)] {
            let values: Vec<f64> = noise(period as u64, n)
                .iter()
                .enumerate()
                .map(|(t, e)| 3.0 * (std::f64::consts::TAU * t as f64 / period as f64).sin() + e)
                .collect();
            assert_eq!(
                seasonal_period(&doubled_midranks(&values)),
                Some(period),
                "{period} {n}"
            );
        }
        let plain = noise(5, 3000);
        assert_eq!(seasonal_period(&doubled_midranks(&plain)), None);
        let mut walk = noise(6, 3000);
        for t in 1..walk.len() {
            walk[t] += walk[t - 1];
        }
        assert_eq!(seasonal_period(&doubled_midranks(&walk)), None);
        // too few repetitions, a constant series, too long a series
        let short: Vec<f64> = (0..20).map(|t| (t % 8) as f64).collect();
        assert_eq!(seasonal_period(&doubled_midranks(&short)), None);
        assert_eq!(seasonal_period(&[5; 100]), None);
        let long: Vec<i64> = (0..70_000).map(|t| (t % 10) as i64).collect();
        assert_eq!(seasonal_period(&long), None);
    }

    #[test]
    fn removing_a_cycle_leaves_the_step() {
        // period 4 profile 0, 10, 0, -10; +1 from t = 8 (medians of 3 values per phase)
        let values: Vec<f64> = (0..12)
            .map(|t| [0.0, 10.0, 0.0, -10.0][t % 4] + if t >= 8 { 1.0 } else { 0.0 })
            .collect();
        let removed = remove_cycle(&values, 4);
        assert_eq!(removed[..8], [0.0; 8]);
        assert_eq!(removed[8..], [1.0; 4]);
        // The same values with tasks 1 and 6 absent: phases count tasks, not values.
        let tasks: Vec<usize> = (0..12).filter(|&t| t != 1 && t != 6).collect();
        let present: Vec<f64> = tasks.iter().map(|&t| values[t]).collect();
        let removed = remove_cycle_at(&present, &tasks, 4).unwrap();
        let expected: Vec<f64> = tasks.iter().map(|&t| removed_at(t)).collect();
        assert_eq!(removed, expected);
        // A phase without a value: nothing removed.
        let odd: Vec<usize> = (0..12).filter(|t| t % 4 != 2).collect();
        let odd_values: Vec<f64> = odd.iter().map(|&t| values[t]).collect();
        assert_eq!(remove_cycle_at(&odd_values, &odd, 4), None);
    }

    /// The cycle-free value at task t of `removing_a_cycle_leaves_the_step`'s series with
    /// tasks 1 and 6 absent: phase 1 keeps tasks 5 and 9 (10 and 11: median 10.5), phase 2
    /// tasks 2 and 10 (0 and 1: median 0.5), phases 0 and 3 their three values (median of
    /// 0, 0, 1 and of -10, -10, -9: 0 and -10).
    fn removed_at(t: usize) -> f64 {
        let value = [0.0, 10.0, 0.0, -10.0][t % 4] + if t >= 8 { 1.0 } else { 0.0 };
        value - [0.0, 10.5, 0.5, -10.0][t % 4]
    }

    #[test]
    fn a_shared_period_is_tested_not_searched() {
        // Four repetitions of a weak cycle (amplitude 0.4 under noise of sd 0.29): its own
        // search finds none; tested at 288 it is found and removed; at 200 it is not.
        let weak = sine(21, 1152, 288.0, 0.4);
        let ranks = doubled_midranks(&weak);
        assert_eq!(find_cycle(&weak, &ranks, &[], 1152), None);
        let (period, removed) = shared_cycle(&weak, &ranks, &[], 1152, &[200, 288]).unwrap();
        assert_eq!(period, 288);
        assert_eq!(removed, remove_cycle(&weak, 288));
        assert_eq!(shared_cycle(&weak, &ranks, &[], 1152, &[200]), None);
        // Noise alone, or too few repetitions of the period: no cycle.
        let plain = noise(22, 1152);
        let plain_ranks = doubled_midranks(&plain);
        assert_eq!(shared_cycle(&plain, &plain_ranks, &[], 1152, &[288]), None);
        assert_eq!(shared_cycle(&weak, &ranks, &[], 1152, &[400]), None);
        // With gaps, by task phase; with more than a third of the tasks absent, not tested.
        let tasks: Vec<usize> = (0..1152).filter(|t| t % 10 != 3).collect();
        let seen: Vec<f64> = tasks.iter().map(|&t| weak[t]).collect();
        let seen_ranks = doubled_midranks(&seen);
        let (period, _) = shared_cycle(&seen, &seen_ranks, &tasks, 1152, &[288]).unwrap();
        assert_eq!(period, 288);
        let sparse: Vec<usize> = (0..1152).filter(|t| t % 2 == 0).collect();
        let seen: Vec<f64> = sparse.iter().map(|&t| weak[t]).collect();
        let seen_ranks = doubled_midranks(&seen);
        assert_eq!(
            shared_cycle(&seen, &seen_ranks, &sparse, 1152, &[288]),
            None
        );
    }

    #[test]
    fn the_periodogram_ratio_of_a_pure_cycle() {
        // x_t = cos(2πt/8) · 100 rounded, n = 48: all its power at 6/48, none at the
        // neighbours but rounding's: p far below 1e-3; a constant: no power, p = 1.
        let centred: Vec<i64> = (0..48)
            .map(|t| (100.0 * (std::f64::consts::TAU * t as f64 / 8.0).cos()).round() as i64)
            .collect();
        assert!(shared_period_p(&centred, 8) < 1e-12);
        assert_eq!(shared_period_p(&[0; 48], 8), 1.0);
    }

    #[test]
    fn a_cycle_with_gaps_is_found_by_task_phase() {
        // A 288-task cycle over two weeks with 5%, 15% and 30% of the tasks absent: the
        // period is found on the ranks placed at their tasks, and removing it by task
        // phase leaves noise (no value beyond the noise's range).
        let n = 4032;
        let values: Vec<f64> = noise(11, n)
            .iter()
            .enumerate()
            .map(|(t, e)| 15.0 * (std::f64::consts::TAU * t as f64 / 288.0).sin() + 4.0 * e)
            .collect();
        let mut rng = SplitMix64::new(12);
        let draws: Vec<f64> = (0..n).map(|_| rng.next_f64()).collect();
        for share in [0.05, 0.15, 0.30] {
            let tasks: Vec<usize> = (0..n).filter(|&t| draws[t] >= share).collect();
            let present: Vec<f64> = tasks.iter().map(|&t| values[t]).collect();
            let ranks = doubled_midranks(&present);
            let (period, removed) = find_cycle(&present, &ranks, &tasks, n).unwrap();
            assert_eq!(period, 288, "{share}");
            assert!(removed.iter().all(|v| v.abs() < 4.0), "{share}");
            // Reading positions among the present values as phases smears the cycle.
            let misread = remove_cycle(&present, 288);
            assert!(misread.iter().any(|v| v.abs() > 4.0), "{share}");
        }
        // Absent at every third task with a cycle of 24: the phases 0, 3, 6, ... are never
        // seen, so the cycle cannot be removed (none, rather than a neighbouring period).
        let short = sine(14, 600, 24.0, 3.0);
        let every_third: Vec<usize> = (0..600).filter(|t| t % 3 != 0).collect();
        let seen: Vec<f64> = every_third.iter().map(|&t| short[t]).collect();
        assert_eq!(
            find_cycle(&seen, &doubled_midranks(&seen), &every_third, 600),
            None
        );
        // Absent at every fourth task with a cycle of 290 (not a multiple of 4): found.
        let long = sine(15, 2320, 290.0, 3.0);
        let every_fourth: Vec<usize> = (0..2320).filter(|t| t % 4 != 0).collect();
        let seen: Vec<f64> = every_fourth.iter().map(|&t| long[t]).collect();
        let (period, _) = find_cycle(&seen, &doubled_midranks(&seen), &every_fourth, 2320).unwrap();
        assert!(period.abs_diff(290) <= 1, "{period}");
        // More than a third of the tasks absent: not searched.
        let tasks: Vec<usize> = (0..n).filter(|&t| draws[t] >= 0.4).collect();
        let present: Vec<f64> = tasks.iter().map(|&t| values[t]).collect();
        assert_eq!(
            find_cycle(&present, &doubled_midranks(&present), &tasks, n),
            None
        );
        // No cycle in a random walk with gaps.
        let mut walk = noise(13, n);
        for t in 1..n {
            walk[t] += walk[t - 1];
        }
        let tasks: Vec<usize> = (0..n).filter(|&t| draws[t] >= 0.1).collect();
        let present: Vec<f64> = tasks.iter().map(|&t| walk[t]).collect();
        assert_eq!(
            find_cycle(&present, &doubled_midranks(&present), &tasks, n),
            None
        );
    }
}
