//! Order statistics and binning shared by the detectors: quantile (rank)
//! bins, equal-width bins, medians and the median absolute deviation.

use crate::info::binning::Binning;

/// Maps a float to a u64 whose unsigned order is the float order (-0.0 and 0.0 map alike,
/// so equal values get equal keys). NaN must not occur.
#[inline]
fn order_key(value: f64) -> u64 {
    let bits = (value + 0.0).to_bits(); // -0.0 + 0.0 == +0.0
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | (1 << 63)
    }
}

/// The (order key, index) of every value, sorted by key: runs of equal keys are ties.
fn sorted_keys(values: &[f64]) -> Vec<(u64, usize)> {
    let mut keyed: Vec<(u64, usize)> = values
        .iter()
        .enumerate()
        .map(|(index, &value)| (order_key(value), index))
        .collect();
    keyed.sort_unstable_by_key(|&(key, _)| key);
    keyed
}

/// For each value, the 0-based position in the ascending sort of the series of the FIRST
/// element equal to it (ties share the smallest rank). NumPy:
/// `np.searchsorted(np.sort(x), x, side="left")`.
pub fn min_ranks(values: &[f64]) -> Vec<usize> {
    let keyed = sorted_keys(values);
    let mut ranks = vec![0usize; values.len()];
    let mut run_start = 0usize;
    for position in 0..keyed.len() {
        if position > 0 && keyed[position].0 != keyed[position - 1].0 {
            run_start = position;
        }
        ranks[keyed[position].1] = run_start;
    }
    ranks
}

/// For each value, its 0-based average rank: the mean of the positions its run of equal
/// values takes in the ascending sort, `(first + last) / 2` (ties share it; Spearman's
/// convention). NumPy: `(searchsorted(sort(x), x, "left") + searchsorted(sort(x), x,
/// "right") - 1) / 2`.
pub fn average_ranks(values: &[f64]) -> Vec<f64> {
    let keyed = sorted_keys(values);
    let mut ranks = vec![0.0; values.len()];
    let mut start = 0usize;
    while start < keyed.len() {
        let mut end = start + 1;
        while end < keyed.len() && keyed[end].0 == keyed[start].0 {
            end += 1;
        }
        let average = (start + end - 1) as f64 / 2.0;
        for &(_, index) in &keyed[start..end] {
            ranks[index] = average;
        }
        start = end;
    }
    ranks
}

/// Quantile bins from [`min_ranks`]: `bin_i = floor(minrank_i * bins / n)` in integer
/// arithmetic (n = `ranks.len()`). `bins` must be in 1..=256.
pub fn quantile_codes(ranks: &[usize], bins: usize) -> Vec<u8> {
    debug_assert!((1..=256).contains(&bins));
    let n = ranks.len();
    if n.checked_mul(bins).is_some() {
        ranks
            .iter()
            .map(|&rank| ((rank * bins) / n) as u8)
            .collect()
    } else {
        let (n, bins) = (n as u128, bins as u128);
        ranks
            .iter()
            .map(|&rank| ((rank as u128 * bins) / n) as u8)
            .collect()
    }
}

/// Quantile bins of a series (`quantile_codes(min_ranks(values), bins)`).
pub fn quantile_bins(values: &[f64], bins: usize) -> Vec<u8> {
    quantile_codes(&min_ranks(values), bins)
}

/// Equal-width bins (SPEC §7) through the one binning of the crate,
/// [`crate::info::binning::Binning`]: width = (max - min) / bins, index =
/// min(floor((v - min) / width), bins - 1); max == min → every value in bin 0. `bins` must be
/// in 1..=256; values finite.
pub fn equal_width_bins(values: &[f64], bins: usize) -> Vec<u8> {
    debug_assert!((1..=256).contains(&bins));
    let Some((min, max)) = range(values) else {
        return Vec::new();
    };
    let binning = Binning::new(min, max, bins as u64);
    // indices are below `bins` <= 256
    values
        .iter()
        .map(|&value| binning.index(value) as u8)
        .collect()
}

/// (min, max) of the values, None when empty.
pub fn range(values: &[f64]) -> Option<(f64, f64)> {
    let first = *values.first()?;
    Some(
        values
            .iter()
            .fold((first, first), |(lo, hi), &v| (lo.min(v), hi.max(v))),
    )
}

/// The median (the mean `(a + b) / 2` of the two middle values for even counts); reorders
/// `values`. NaN for an empty slice.
pub fn median_in_place(values: &mut [f64]) -> f64 {
    let n = values.len();
    if n == 0 {
        return f64::NAN;
    }
    let upper_index = n / 2;
    let (lower, &mut upper, _) = values.select_nth_unstable_by(upper_index, f64::total_cmp);
    if n % 2 == 1 {
        return upper;
    }
    let below = lower.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (below + upper) / 2.0
}

/// The median of the values (copied).
pub fn median(values: &[f64]) -> f64 {
    median_in_place(&mut values.to_vec())
}

/// (median, MAD) with MAD = median(|x - median|). NaN, NaN for an empty slice.
pub fn median_and_mad(values: &[f64]) -> (f64, f64) {
    let mut scratch = values.to_vec();
    let center = median_in_place(&mut scratch);
    for (slot, &value) in scratch.iter_mut().zip(values) {
        *slot = (value - center).abs();
    }
    (center, median_in_place(&mut scratch))
}

/// ⌊(8·count)^(1/3)⌋ = ⌊2·∛count⌋, exactly (integer correction of the float estimate).
pub fn floor_twice_cbrt(count: usize) -> usize {
    let target = 8u128 * count as u128;
    let mut root = (2.0 * (count as f64).cbrt()).floor() as u128;
    while root > 0 && root * root * root > target {
        root -= 1;
    }
    while (root + 1) * (root + 1) * (root + 1) <= target {
        root += 1;
    }
    root as usize
}

/// Python's `round(value)` for non-negative finite values (half to even), as usize.
pub fn round_half_even(value: f64) -> usize {
    let floor = value.floor();
    let fraction = value - floor;
    let rounded = if fraction > 0.5 || (fraction == 0.5 && floor % 2.0 != 0.0) {
        floor + 1.0
    } else {
        floor
    };
    rounded as usize
}

/// 2 × the 1-based mid-rank of each value: a tie group at sorted positions i..=j (0-based)
/// gets i + j + 2.
pub fn doubled_midranks(values: &[f64]) -> Vec<i64> {
    let n = values.len();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]).then(a.cmp(&b)));
    let mut ranks = vec![0i64; n];
    let mut start = 0;
    while start < n {
        let mut end = start;
        // -0.0 and 0.0 tie (compared as numbers, as NumPy does).
        while end + 1 < n && values[order[end + 1]] == values[order[start]] {
            end += 1;
        }
        for &position in &order[start..=end] {
            ranks[position] = (start + end + 2) as i64;
        }
        start = end + 1;
    }
    ranks
}

/// The count of the commonest rank when it holds more than a third of them, else the
/// largest count it could have, ⌊L / 3⌋ (the scan's widths need it only above 3/8): the
/// Misra–Gries summary with two counters (every value above L / 3 survives it), then a
/// count of its survivors; no table of every rank.
pub fn commonest_count(ranks: &[i64]) -> usize {
    let mut kept: [(i64, usize); 2] = [(0, 0); 2];
    for &rank in ranks {
        if let Some(slot) = kept.iter_mut().find(|(value, n)| *n > 0 && *value == rank) {
            slot.1 += 1;
        } else if let Some(slot) = kept.iter_mut().find(|(_, n)| *n == 0) {
            *slot = (rank, 1);
        } else {
            for slot in &mut kept {
                slot.1 -= 1;
            }
        }
    }
    let mut commonest = ranks.len() / 3;
    for (value, n) in kept {
        if n > 0 {
            commonest = commonest.max(ranks.iter().filter(|&&rank| rank == value).count());
        }
    }
    commonest
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn average_ranks_share_ties() {
        // sorted: -0.0 = 0.0 (positions 0, 1), 1, 1 (2, 3), 3, 3 (4, 5), 7 (6)
        let values = [3.0, 1.0, 3.0, -0.0, 0.0, 7.0, 1.0];
        assert_eq!(
            average_ranks(&values),
            vec![4.5, 2.5, 4.5, 0.5, 0.5, 6.0, 2.5]
        );
        assert!(average_ranks(&[]).is_empty());
    }

    #[test]
    fn min_ranks_share_ties() {
        let values = [3.0, 1.0, 3.0, -0.0, 0.0, 7.0, 1.0];
        // sorted: -0, 0, 1, 1, 3, 3, 7
        assert_eq!(min_ranks(&values), vec![4, 2, 4, 0, 0, 6, 2]);
        assert!(min_ranks(&[]).is_empty());
        assert_eq!(
            min_ranks(&[-1e300, f64::MIN_POSITIVE, -5e-324]),
            vec![0, 2, 1]
        );
    }

    #[test]
    fn quantile_bins_by_hand() {
        // n = 6, b = 3: ranks 0..5 → floor(r*3/6) = 0,0,1,1,2,2
        let values = [10.0, 20.0, 30.0, 40.0, 50.0, 60.0];
        assert_eq!(quantile_bins(&values, 3), vec![0, 0, 1, 1, 2, 2]);
        // ties share the bin of their first rank: ranks 0,0,2,2,2,5 → 0,0,1,1,1,2
        let values = [1.0, 1.0, 2.0, 2.0, 2.0, 3.0];
        assert_eq!(quantile_bins(&values, 3), vec![0, 0, 1, 1, 1, 2]);
        // constant → all bin 0
        assert_eq!(quantile_bins(&[4.0; 5], 4), vec![0; 5]);
    }

    #[test]
    fn equal_width_bins_by_hand() {
        let values = [0.0, 0.25, 0.5, 0.75, 1.0];
        assert_eq!(equal_width_bins(&values, 4), vec![0, 1, 2, 3, 3]);
        assert_eq!(equal_width_bins(&[2.0, 2.0], 8), vec![0, 0]);
        assert!(equal_width_bins(&[], 8).is_empty());
        // A range wider than the float range: the bins of the halved values.
        assert_eq!(equal_width_bins(&[-1e308, 0.0, 1e308], 8), vec![0, 4, 7]);
        // A width that underflows to 0: 0 / 0 goes to bin 0, x / 0 = inf to the last bin.
        assert_eq!(equal_width_bins(&[0.0, 5e-324, 1e-323], 10), vec![0, 9, 9]);
        assert_eq!(equal_width_bins(&[0.0, 1.0], 256), vec![0, 255]);
    }

    #[test]
    fn medians_and_mad() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(&[]).is_nan());
        assert_eq!(median_and_mad(&[22.5, 23.1, 45.2]).0, 23.1);
        let (center, mad) = median_and_mad(&[1.0, 1.0, 2.0, 2.0, 4.0, 6.0, 9.0]);
        assert_eq!((center, mad), (2.0, 1.0));
    }

    #[test]
    fn integer_formulas() {
        assert_eq!(floor_twice_cbrt(0), 0);
        assert_eq!(floor_twice_cbrt(1), 2);
        assert_eq!(floor_twice_cbrt(63), 7);
        assert_eq!(floor_twice_cbrt(64), 8);
        for cube in 2..=40usize {
            assert_eq!(floor_twice_cbrt(cube * cube * cube), 2 * cube);
            assert_eq!(floor_twice_cbrt(cube * cube * cube - 1), 2 * cube - 1);
        }
        assert_eq!(floor_twice_cbrt(4096), 32);
        assert_eq!(round_half_even(0.5), 0);
        assert_eq!(round_half_even(1.5), 2);
        assert_eq!(round_half_even(2.5), 2);
        assert_eq!(round_half_even(2.4999), 2);
        assert_eq!(round_half_even(2.5001), 3);
        assert_eq!(round_half_even(0.0), 0);
    }
}
