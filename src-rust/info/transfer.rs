//! Transfer entropy X → Y.

use crate::error::CoreResult;
use crate::info::binning::Binning;
use crate::info::histogram::{
    cell_codes, dense_counts, dense_fits, entropy_of_counts, histogram_entropy, joint_entropy_of,
    prefix_entropies, sorted, BLOCK,
};
use crate::info::{check_bins, check_lag, check_same_length};

/// Transfer entropy X → Y in bits, `I(Y[t+lag]; X[t] | Y[t])` over t = 0..n-1-lag:
/// `H(Y[t+lag], Y[t]) - H(Y[t]) - H(Y[t+lag], X[t], Y[t]) + H(X[t], Y[t])`, clipped at 0.
/// Each series is binned once over its whole range; 0.0 when `n <= lag + 1`.
pub fn transfer_entropy(x: &[f64], y: &[f64], lag: i64, bins: i64) -> CoreResult<f64> {
    let lag = check_lag(lag)?;
    let bins = check_bins(bins)?;
    check_same_length(x, y)?;
    let x_bins = Binning::over(x, bins, "x")?;
    let y_bins = Binning::over(y, bins, "y")?;
    let (Some(x_bins), Some(y_bins)) = (x_bins, y_bins) else {
        return Ok(0.0);
    };
    let n = x.len();
    if n as u64 <= lag.saturating_add(1) {
        return Ok(0.0);
    }
    // lag < n - 1 here, so it is a valid offset.
    let lag = lag as usize;
    let samples = n - lag;
    // bins**3 overflows even u128 past 2**42 bins: such tables are never dense.
    let bins = u128::from(bins);
    let cells = bins
        .checked_mul(bins)
        .and_then(|square| square.checked_mul(bins));
    let entropies = if cells.is_some_and(|cells| dense_fits(cells, samples)) {
        dense_entropies(x, y, lag, &x_bins, &y_bins)
    } else {
        sorted_entropies(x, y, lag, &x_bins, &y_bins)
    };
    let transfer = entropies.future_past - entropies.past - entropies.all + entropies.driver_past;
    Ok(transfer.max(0.0))
}

/// The four entropies of the formula, `future` = Y[t+lag], `driver` = X[t], `past` = Y[t].
struct Entropies {
    future_past: f64,
    past: f64,
    all: f64,
    driver_past: f64,
}

/// From one dense table over (past, driver, future), row-major, and its marginals.
fn dense_entropies(
    x: &[f64],
    y: &[f64],
    lag: usize,
    x_bins: &Binning,
    y_bins: &Binning,
) -> Entropies {
    let samples = x.len() - lag;
    let (x_past, y_past, y_future) = (&x[..samples], &y[..samples], &y[lag..]);
    let bins = y_bins.bins() as usize;
    let table = dense_counts(samples, bins * bins * bins, |range, counts| {
        let mut codes = [0u64; BLOCK];
        for start in range.clone().step_by(BLOCK) {
            let block = start..(start + BLOCK).min(range.end);
            let codes = &mut codes[..block.len()];
            y_bins.indices(&y_past[block.clone()], codes);
            x_bins.push_indices(&x_past[block.clone()], bins as u64, codes);
            y_bins.push_indices(&y_future[block], bins as u64, codes);
            counts.add_all(codes);
        }
    });
    let total = samples;
    // table[(past * bins + driver) * bins + future]
    let past_blocks = table.chunks_exact(bins * bins);
    let past = past_blocks.clone().map(|block| block.iter().sum::<u64>());
    let driver_past = table.chunks_exact(bins).map(|row| row.iter().sum::<u64>());
    let future_past = past_blocks.flat_map(|block| {
        (0..bins).map(move |future| {
            block
                .iter()
                .skip(future)
                .step_by(bins)
                .copied()
                .sum::<u64>()
        })
    });
    Entropies {
        future_past: entropy_of_counts(future_past, total),
        past: entropy_of_counts(past, total),
        all: entropy_of_counts(table.iter().copied(), total),
        driver_past: entropy_of_counts(driver_past, total),
    }
}

/// Each entropy on its own: dense or sorted codes, or sorted index tuples when the cells
/// outnumber 2**64.
fn sorted_entropies(
    x: &[f64],
    y: &[f64],
    lag: usize,
    x_bins: &Binning,
    y_bins: &Binning,
) -> Entropies {
    let samples = x.len() - lag;
    let past = (&y[..samples], y_bins);
    let driver = (&x[..samples], x_bins);
    let future = (&y[lag..], y_bins);
    let coded = || {
        Some(Entropies {
            all: joint_entropy_of(&[past, driver, future])?,
            future_past: joint_entropy_of(&[past, future])?,
            driver_past: joint_entropy_of(&[past, driver])?,
            past: histogram_entropy(past.0, y_bins),
        })
    };
    coded().unwrap_or_else(|| tuple_entropies(x, y, lag, x_bins, y_bins))
}

/// From sorted (past, driver, future) and (past, future) index tuples.
fn tuple_entropies(
    x: &[f64],
    y: &[f64],
    lag: usize,
    x_bins: &Binning,
    y_bins: &Binning,
) -> Entropies {
    let samples = x.len() - lag;
    let driver = cell_codes(&[(&x[..samples], x_bins)]);
    // y binned once: past and future are two offsets into the same bins.
    let y_indices = cell_codes(&[(y, y_bins)]);
    let (past, future) = (&y_indices[..samples], &y_indices[lag..]);
    let triples: Vec<[u64; 3]> = past
        .iter()
        .zip(&driver)
        .zip(future)
        .map(|((&p, &d), &f)| [p, d, f])
        .collect();
    let [past_entropy, driver_past, all] = prefix_entropies(&sorted(triples));
    let pairs: Vec<[u64; 2]> = past.iter().zip(future).map(|(&p, &f)| [p, f]).collect();
    let [_, future_past] = prefix_entropies(&sorted(pairs));
    Entropies {
        future_past,
        past: past_entropy,
        all,
        driver_past,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(result: CoreResult<f64>) -> String {
        result.unwrap_err().to_string()
    }

    /// SplitMix64 uniforms in [0, 1) (the SplitMix64 of docs/kernels.md), enough for test data.
    fn uniforms(seed: u64, n: usize) -> Vec<f64> {
        (1..=n as u64)
            .map(|i| {
                let mut z = seed.wrapping_add(i.wrapping_mul(0x9E37_79B9_7F4A_7C15));
                z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                z ^= z >> 31;
                (z >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
            })
            .collect()
    }

    #[test]
    fn driven_series_carries_information() {
        // y[t+1] = x[t]: knowing x[t] pins y[t+1] down completely.
        let x = uniforms(1, 20_000);
        let mut y = vec![0.5; x.len()];
        y[1..].copy_from_slice(&x[..x.len() - 1]);
        let driven = transfer_entropy(&x, &y, 1, 8).unwrap();
        assert!(driven > 2.9 && driven <= 3.0 + 1e-9, "{driven}");
        // No information flows backwards, nor at the wrong lag: what remains is the
        // plug-in estimator's bias, about 8**3 / (2 n ln 2) ≈ 0.018 bits here.
        let reverse = transfer_entropy(&y, &x, 1, 8).unwrap();
        assert!(reverse < 0.03, "{reverse}");
        let wrong_lag = transfer_entropy(&x, &y, 2, 8).unwrap();
        assert!(wrong_lag < 0.03, "{wrong_lag}");
    }

    #[test]
    fn independent_series_carry_almost_nothing() {
        let x = uniforms(2, 100_000);
        let y = uniforms(3, 100_000);
        let transfer = transfer_entropy(&x, &y, 1, 4).unwrap();
        assert!(transfer < 0.002, "{transfer}");
    }

    #[test]
    fn hand_worked_value() {
        // x = 0 1 0 1 0, y = 0 0 1 0 1 (y[t+1] = x[t]), 2 bins, t = 0..3: (past, future)
        // pairs (0,0) (0,1) (1,0) (0,1), past 0 0 1 0, (past, driver, future) triples
        // (0,0,0) (0,1,1) (1,0,0) (0,1,1), (driver, past) pairs (0,0) (1,0) (0,1) (1,0):
        // TE = H(Yf,Yp) - H(Yp) - H(Yf,X,Yp) + H(X,Yp) = 1.5 - H(3/4,1/4) - 1.5 + 1.5.
        let x = [0.0, 1.0, 0.0, 1.0, 0.0];
        let y = [0.0, 0.0, 1.0, 0.0, 1.0];
        let h = -(0.75f64 * 0.75f64.log2() + 0.25 * 0.25f64.log2());
        let expected = 1.5 - h - 1.5 + 1.5;
        let got = transfer_entropy(&x, &y, 1, 2).unwrap();
        assert!((got - expected).abs() < 1e-15, "{got} {expected}");
    }

    #[test]
    fn short_and_empty_series() {
        assert_eq!(transfer_entropy(&[], &[], 1, 10), Ok(0.0));
        assert_eq!(transfer_entropy(&[1.0, 2.0], &[2.0, 1.0], 1, 10), Ok(0.0));
        assert_eq!(
            transfer_entropy(&[1.0, 2.0, 3.0], &[2.0, 1.0, 0.0], 2, 10),
            Ok(0.0)
        );
        assert_eq!(
            transfer_entropy(&[1.0; 5], &[1.0; 5], i64::MAX, 10),
            Ok(0.0)
        );
        assert_eq!(transfer_entropy(&[1.0; 5], &[1.0; 5], 1, 10), Ok(0.0));
    }

    #[test]
    fn errors_in_order() {
        assert_eq!(
            message(transfer_entropy(&[1.0], &[], 0, 0)),
            "lag must be >= 1, got 0"
        );
        assert_eq!(
            message(transfer_entropy(&[1.0], &[], 1, 0)),
            "bins must be >= 1, got 0"
        );
        assert_eq!(
            message(transfer_entropy(&[f64::NAN], &[], 1, 3)),
            "x and y must have the same length (1 != 0)"
        );
        // Finiteness is checked even when the series are too short to have a value.
        assert_eq!(
            message(transfer_entropy(&[1.0, 2.0], &[f64::NAN, 1.0], 1, 3)),
            "y contains a non-finite value (nan) at index 0"
        );
        assert_eq!(
            message(transfer_entropy(
                &[1.0, f64::INFINITY],
                &[f64::NAN, 1.0],
                5,
                3
            )),
            "x contains a non-finite value (inf) at index 1"
        );
    }

    #[test]
    fn huge_bins_match_exact_bins() {
        // Integer-valued series in 0..=7: one bin per integer with 8 bins, and the same
        // partition with i64::MAX bins (the sorted path).
        let x: Vec<f64> = uniforms(4, 5000)
            .iter()
            .map(|u| (u * 8.0).floor())
            .collect();
        let mut y = vec![0.0; x.len()];
        y[1..].copy_from_slice(&x[..x.len() - 1]);
        let exact = transfer_entropy(&x, &y, 1, 8).unwrap();
        let huge = transfer_entropy(&x, &y, 1, i64::MAX).unwrap();
        assert!(exact > 2.5);
        assert!((exact - huge).abs() < 1e-12, "{exact} {huge}");
        // Sorted u64 cell codes (1000, 2 million bins); bins**3 past u64, or even u128:
        // sorted index tuples.
        for bins in [1000, 2_000_000, 1 << 40, 1 << 43, 1 << 62, (1 << 62) + 1] {
            let big = transfer_entropy(&x, &y, 1, bins).unwrap();
            assert!((exact - big).abs() < 1e-12, "{bins}: {exact} {big}");
        }
    }
}
