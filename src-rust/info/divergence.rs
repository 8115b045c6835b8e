//! Divergences between two samples binned alike (the range of their union).

use crate::error::CoreResult;
use crate::info::binning::{finite_range, Binning};
use crate::info::check_bins;
use crate::info::histogram::{frequencies, Sum};

/// KL(current ‖ baseline) in bits over bins shared by both samples; `inf` when `current`
/// has mass where `baseline` has none; 0.0 when either sample is empty.
pub fn kl_divergence(current: &[f64], baseline: &[f64], bins: i64) -> CoreResult<f64> {
    let bins = check_bins(bins)?;
    let Some(cells) = shared_cells(current, "current", baseline, "baseline", bins)? else {
        return Ok(0.0);
    };
    let mut divergence = Sum::default();
    for cell in cells.iter().filter(|cell| cell.first > 0.0) {
        let p = cell.first;
        divergence.add(p * (p / cell.second).log2());
    }
    Ok(divergence.value())
}

/// Jensen–Shannon divergence in bits over bins shared by both samples,
/// `½ KL(P ‖ M) + ½ KL(Q ‖ M)` with `M = (P + Q) / 2`, clipped to [0, 1]; 0.0 when either
/// sample is empty.
pub fn jsd(p: &[f64], q: &[f64], bins: i64) -> CoreResult<f64> {
    let bins = check_bins(bins)?;
    let Some(cells) = shared_cells(p, "p", q, "q", bins)? else {
        return Ok(0.0);
    };
    let (mut p_to_mixture, mut q_to_mixture) = (Sum::default(), Sum::default());
    for cell in &cells {
        let mixture = (cell.first + cell.second) / 2.0;
        if cell.first > 0.0 {
            p_to_mixture.add(cell.first * (cell.first / mixture).log2());
        }
        if cell.second > 0.0 {
            q_to_mixture.add(cell.second * (cell.second / mixture).log2());
        }
    }
    Ok((0.5 * p_to_mixture.value() + 0.5 * q_to_mixture.value()).clamp(0.0, 1.0))
}

/// One bin occupied by either sample, with each sample's share of its values.
struct SharedCell {
    first: f64,
    second: f64,
}

/// The bins occupied by either sample, ascending, binned over the range of their union,
/// after the finiteness checks (first, then second); `None` when either sample is empty.
fn shared_cells(
    first: &[f64],
    first_argument: &'static str,
    second: &[f64],
    second_argument: &'static str,
    bins: u64,
) -> CoreResult<Option<Vec<SharedCell>>> {
    let first_range = finite_range(first, first_argument)?;
    let second_range = finite_range(second, second_argument)?;
    let (Some((first_min, first_max)), Some((second_min, second_max))) =
        (first_range, second_range)
    else {
        return Ok(None);
    };
    let binning = Binning::new(first_min.min(second_min), first_max.max(second_max), bins);
    let (first_len, second_len) = (first.len() as f64, second.len() as f64);
    let share = |count: u64, len: f64| count as f64 / len;
    let mut first_counts = frequencies(first, &binning).into_iter().peekable();
    let mut second_counts = frequencies(second, &binning).into_iter().peekable();
    let mut cells = Vec::new();
    // Merge the two ascending (bin, count) lists.
    loop {
        let cell = match (first_counts.peek(), second_counts.peek()) {
            (Some(&(a, count)), Some(&(b, _))) if a < b => {
                first_counts.next();
                (share(count, first_len), 0.0)
            }
            (Some(&(a, _)), Some(&(b, count))) if b < a => {
                second_counts.next();
                (0.0, share(count, second_len))
            }
            (Some(&(_, first_count)), Some(&(_, second_count))) => {
                first_counts.next();
                second_counts.next();
                (
                    share(first_count, first_len),
                    share(second_count, second_len),
                )
            }
            (Some(&(_, count)), None) => {
                first_counts.next();
                (share(count, first_len), 0.0)
            }
            (None, Some(&(_, count))) => {
                second_counts.next();
                (0.0, share(count, second_len))
            }
            (None, None) => break,
        };
        cells.push(SharedCell {
            first: cell.0,
            second: cell.1,
        });
    }
    Ok(Some(cells))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(result: CoreResult<f64>) -> String {
        result.unwrap_err().to_string()
    }

    #[test]
    fn disjoint_constant_samples_use_shared_bins() {
        let low = [1.0, 1.0, 1.0];
        let high = [10.0, 10.0, 10.0];
        assert_eq!(kl_divergence(&low, &high, 10), Ok(f64::INFINITY));
        assert_eq!(jsd(&low, &high, 10), Ok(1.0));
        assert_eq!(jsd(&low, &high, i64::MAX), Ok(1.0));
        assert_eq!(kl_divergence(&low, &low, 10), Ok(0.0));
        assert_eq!(jsd(&low, &low, 10), Ok(0.0));
    }

    #[test]
    fn hand_worked_values() {
        // Shared range [0, 1], 2 bins: current 3/4 | 1/4, baseline 1/2 | 1/2.
        let current = [0.0, 0.1, 0.2, 1.0];
        let baseline = [0.0, 1.0];
        let expected = 0.75 * (0.75f64 / 0.5).log2() + 0.25 * (0.25f64 / 0.5).log2();
        assert_eq!(kl_divergence(&current, &baseline, 2), Ok(expected));
        // Baseline has mass where current has none: finite.
        assert_eq!(kl_divergence(&[0.0, 0.0], &[0.0, 1.0], 2), Ok(1.0));
        assert_eq!(
            kl_divergence(&[0.0, 1.0], &[0.0, 0.0], 2),
            Ok(f64::INFINITY)
        );
        // P = (1, 0), Q = (1/2, 1/2), M = (3/4, 1/4).
        let expected = 0.5 * (1.0f64 / 0.75).log2()
            + 0.5 * (0.5 * (0.5f64 / 0.75).log2() + 0.5 * (0.5f64 / 0.25).log2());
        assert_eq!(jsd(&[0.0, 0.0], &[0.0, 1.0], 2), Ok(expected));
    }

    #[test]
    fn empty_samples() {
        assert_eq!(kl_divergence(&[], &[1.0], 10), Ok(0.0));
        assert_eq!(kl_divergence(&[1.0], &[], 10), Ok(0.0));
        assert_eq!(jsd(&[], &[], 10), Ok(0.0));
    }

    #[test]
    fn errors_in_order() {
        assert_eq!(
            message(kl_divergence(&[], &[], 0)),
            "bins must be >= 1, got 0"
        );
        assert_eq!(
            message(kl_divergence(&[f64::NAN], &[f64::NAN], 0)),
            "bins must be >= 1, got 0"
        );
        assert_eq!(
            message(kl_divergence(&[1.0, f64::INFINITY], &[f64::NAN], 3)),
            "current contains a non-finite value (inf) at index 1"
        );
        assert_eq!(
            message(kl_divergence(&[], &[f64::NAN], 3)),
            "baseline contains a non-finite value (nan) at index 0"
        );
        assert_eq!(
            message(jsd(&[f64::NAN], &[1.0], 3)),
            "p contains a non-finite value (nan) at index 0"
        );
        assert_eq!(
            message(jsd(&[1.0], &[2.0, f64::NEG_INFINITY], 3)),
            "q contains a non-finite value (-inf) at index 1"
        );
    }

    #[test]
    fn huge_bins_match_exact_bins() {
        // Integers 0..=99 and 50..=149 with one bin per integer, then with i64::MAX bins.
        let p: Vec<f64> = (0..100).map(f64::from).collect();
        let q: Vec<f64> = (50..150).map(f64::from).collect();
        let exact = jsd(&p, &q, 150).unwrap();
        assert!((exact - 0.5).abs() < 1e-12, "{exact}");
        let huge = jsd(&p, &q, i64::MAX).unwrap();
        assert!((huge - 0.5).abs() < 1e-12, "{huge}");
        assert_eq!(kl_divergence(&p, &q, i64::MAX), Ok(f64::INFINITY));
    }
}
