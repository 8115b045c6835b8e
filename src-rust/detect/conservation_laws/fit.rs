//! The robust fit of one subset of standardized metrics: trimmed C-steps (Rousseeuw & Van
//! Driessen's FAST-MCD iteration, applied to the smallest eigenvector) from the full-sample
//! start and elemental starts.

use super::{C_STEPS, ELEMENTAL_STARTS, SCREEN_EIGENVALUE};
use crate::detect::shared::eigen::identifiable_smallest_eigenpair;
use crate::rng::splitmix64_output;
use std::sync::{Mutex, PoisonError};

/// The sample's z-values, row-major, and their population covariance.
pub struct SampleMatrix {
    pub rows: usize,
    pub columns: usize,
    pub values: Vec<f64>,
    /// `columns` × `columns`, row-major, over all rows.
    pub covariance: Vec<f64>,
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

/// Robust fit of the subset's columns of the sample: starts = the full-sample
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

/// Scans of at least this many positions are kept for [`first_positions`] to continue.
const KEPT_SCAN: usize = 1 << 16;

/// One bottom-`count` scan: the `count` smallest (key, index) pairs over positions 0..n.
struct Scan {
    seed: u64,
    count: usize,
    n: usize,
    smallest: Vec<(u64, usize)>,
}

/// The latest long scan: the law sample of a kiln cooled again after `Kiln.extend` is that
/// of the old positions plus the new ones, so the scan goes on from where it stopped.
static LATEST_SCAN: Mutex<Option<Scan>> = Mutex::new(None);

/// The first `count` positions of `permutation(seed, n)` (the `count` smallest (key, index)
/// pairs in order), without sorting all n keys. The key of position i depends on (seed, i)
/// alone, so a scan of 0..m (m <= n, kept when m >= [`KEPT_SCAN`]) goes on over m..n: the
/// same result as a scan from 0.
pub fn first_positions(seed: u64, n: usize, count: usize) -> Vec<usize> {
    if count == 0 {
        return Vec::new();
    }
    let kept = (n >= KEPT_SCAN).then(|| LATEST_SCAN.lock().unwrap_or_else(PoisonError::into_inner));
    let (start, mut smallest) = match kept.as_deref() {
        Some(Some(scan)) if scan.seed == seed && scan.count == count && scan.n <= n => {
            (scan.n, scan.smallest.clone())
        }
        _ => (0, Vec::with_capacity(count + 1)),
    };
    for index in start..n {
        let key = splitmix64_output(seed, index as u64) >> 32;
        // Indices grow, so an equal key never displaces an earlier index (stable).
        if smallest.len() == count && key >= smallest[count - 1].0 {
            continue;
        }
        let at = smallest.partition_point(|&(k, _)| k <= key);
        smallest.insert(at, (key, index));
        smallest.truncate(count);
    }
    if let Some(mut kept) = kept {
        *kept = Some(Scan {
            seed,
            count,
            n,
            smallest: smallest.clone(),
        });
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
pub(super) fn covariance_all(values: &[f64], rows: usize, columns: usize) -> Vec<f64> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::shared::permutation::permutation;
    use crate::detect::shared::ranks::median_in_place;
    use crate::detect::shared::test_data::normals;

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
    fn long_scans_go_on_from_the_kept_one() {
        let n = KEPT_SCAN + 5000;
        let fresh = |seed: u64, n: usize, count: usize| -> Vec<usize> {
            let mut keys: Vec<(u64, usize)> = (0..n)
                .map(|i| (splitmix64_output(seed, i as u64) >> 32, i))
                .collect();
            keys.sort_unstable();
            keys[..count].iter().map(|&(_, i)| i).collect()
        };
        // a scan of n, then of more positions (continued), fewer (from 0), another seed
        for (seed, m, count) in [
            (7u64, n, 300usize),
            (7, n + 777, 300),
            (7, n - 10, 300),
            (8, n, 300),
        ] {
            assert_eq!(first_positions(seed, m, count), fresh(seed, m, count));
        }
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
}
