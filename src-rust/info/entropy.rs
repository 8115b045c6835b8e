//! Entropy of one series, joint entropy and mutual information of two.

use crate::error::CoreResult;
use crate::info::binning::Binning;
use crate::info::histogram::{
    cell_codes, dense_counts, dense_fits, entropy_of_counts, histogram_entropy, joint_entropy_of,
    prefix_entropies, sorted, BLOCK,
};
use crate::info::{check_bins, check_same_length};

/// Shannon entropy (bits) of the equal-width histogram of `values` with `bins` bins.
pub fn entropy(values: &[f64], bins: i64) -> CoreResult<f64> {
    let bins = check_bins(bins)?;
    let Some(binning) = Binning::over(values, bins, "values")? else {
        return Ok(0.0);
    };
    Ok(histogram_entropy(values, &binning))
}

/// Entropy (bits) of the 2-D histogram of `(x, y)`, each binned over its own range.
pub fn joint_entropy(x: &[f64], y: &[f64], bins: i64) -> CoreResult<f64> {
    let bins = check_bins(bins)?;
    let Some((x_bins, y_bins)) = paired_binnings(x, y, bins)? else {
        return Ok(0.0);
    };
    Ok(pair_entropies(x, y, &x_bins, &y_bins).joint)
}

/// `H(X) + H(Y) - H(X, Y)` in bits, clipped at 0.
pub fn mutual_information(x: &[f64], y: &[f64], bins: i64) -> CoreResult<f64> {
    let bins = check_bins(bins)?;
    let Some((x_bins, y_bins)) = paired_binnings(x, y, bins)? else {
        return Ok(0.0);
    };
    let entropies = pair_entropies(x, y, &x_bins, &y_bins);
    let (x_entropy, y_entropy) = entropies
        .marginals
        .unwrap_or_else(|| (histogram_entropy(x, &x_bins), histogram_entropy(y, &y_bins)));
    Ok((x_entropy + y_entropy - entropies.joint).max(0.0))
}

/// The binnings of `x` and `y`, each over its own range, after the length and finiteness
/// checks; `None` when both are empty.
fn paired_binnings(x: &[f64], y: &[f64], bins: u64) -> CoreResult<Option<(Binning, Binning)>> {
    check_same_length(x, y)?;
    let x_bins = Binning::over(x, bins, "x")?;
    let y_bins = Binning::over(y, bins, "y")?;
    Ok(x_bins.zip(y_bins))
}

struct PairEntropies {
    joint: f64,
    /// `H(X)` and `H(Y)`, when the joint table was dense (its row and column sums are free).
    marginals: Option<(f64, f64)>,
}

/// `H(X, Y)` of paired non-empty series and, from a dense table, `H(X)` and `H(Y)`.
fn pair_entropies(x: &[f64], y: &[f64], x_bins: &Binning, y_bins: &Binning) -> PairEntropies {
    let n = x.len();
    let (rows, columns) = (x_bins.bins(), y_bins.bins());
    let cells = u128::from(rows) * u128::from(columns);
    if dense_fits(cells, n) {
        // Row-major: cell = x bin * columns + y bin.
        let columns = columns as usize;
        let table = dense_counts(n, cells as usize, |range, counts| {
            let mut codes = [0u64; BLOCK];
            let blocks = x[range.clone()].chunks(BLOCK).zip(y[range].chunks(BLOCK));
            for (x_block, y_block) in blocks {
                let codes = &mut codes[..x_block.len()];
                x_bins.indices(x_block, codes);
                y_bins.push_indices(y_block, columns as u64, codes);
                counts.add_all(codes);
            }
        });
        let mut row_sums = Vec::with_capacity(rows as usize);
        let mut column_sums = vec![0u64; columns];
        for row in table.chunks_exact(columns) {
            row_sums.push(row.iter().sum::<u64>());
            for (sum, &count) in column_sums.iter_mut().zip(row) {
                *sum += count;
            }
        }
        return PairEntropies {
            joint: entropy_of_counts(table.iter().copied(), n),
            marginals: Some((
                entropy_of_counts(row_sums, n),
                entropy_of_counts(column_sums, n),
            )),
        };
    }
    let joint = joint_entropy_of(&[(x, x_bins), (y, y_bins)]).unwrap_or_else(|| {
        // More than 2**64 cells: sort (x bin, y bin) pairs instead of codes.
        let pairs: Vec<[u64; 2]> = cell_codes(&[(x, x_bins)])
            .into_iter()
            .zip(cell_codes(&[(y, y_bins)]))
            .map(|(a, b)| [a, b])
            .collect();
        let [_, joint] = prefix_entropies(&sorted(pairs));
        joint
    });
    PairEntropies {
        joint,
        marginals: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(result: CoreResult<f64>) -> String {
        result.unwrap_err().to_string()
    }

    #[test]
    fn entropy_hand_worked() {
        assert_eq!(entropy(&[1.0, 2.0, 3.0, 4.0], 4), Ok(2.0));
        assert_eq!(entropy(&[1.0, 2.0, 3.0, 4.0], 2), Ok(1.0));
        assert_eq!(entropy(&[1.0, 2.0, 3.0, 4.0], 1), Ok(0.0));
        assert_eq!(entropy(&[7.0, 7.0, 7.0], 10), Ok(0.0));
        // Bins of width 0.75 over [1, 4]: 1 | 2 | 3 | 4 → 0, 1, 2, 3 and [1,1,1,4] → 3/4, 1/4.
        let expected = -(0.75f64 * 0.75f64.log2() + 0.25 * 0.25f64.log2());
        assert_eq!(entropy(&[1.0, 1.0, 1.0, 4.0], 4), Ok(expected));
        assert_eq!(entropy(&[], 10), Ok(0.0));
    }

    #[test]
    fn entropy_errors() {
        assert_eq!(message(entropy(&[], 0)), "bins must be >= 1, got 0");
        assert_eq!(message(entropy(&[1.0], -3)), "bins must be >= 1, got -3");
        assert_eq!(
            message(entropy(&[1.0, f64::NAN], 0)),
            "bins must be >= 1, got 0"
        );
        assert_eq!(
            message(entropy(&[1.0, 2.0, f64::NAN], 4)),
            "values contains a non-finite value (nan) at index 2"
        );
        assert_eq!(
            message(entropy(&[f64::INFINITY], 4)),
            "values contains a non-finite value (inf) at index 0"
        );
    }

    #[test]
    fn huge_bins_count_only_occupied_cells() {
        // Every value in its own bin: log2(n) bits, without a table of i64::MAX slots.
        let values: Vec<f64> = (0..1000).map(f64::from).collect();
        let expected = 1000f64.log2();
        let got = entropy(&values, i64::MAX).unwrap();
        assert!((got - expected).abs() < 1e-12, "{got}");
        let large: Vec<f64> = (0..300_000).map(|i| f64::from(i % 1000)).collect();
        let got = entropy(&large, i64::MAX).unwrap();
        assert!((got - expected).abs() < 1e-12, "{got}");
        let got = joint_entropy(&values, &values, i64::MAX).unwrap();
        assert!((got - expected).abs() < 1e-12, "{got}");
        let got = mutual_information(&values, &values, i64::MAX).unwrap();
        assert!((got - expected).abs() < 1e-12, "{got}");
        // Beyond the dense limit but with bins**2 still small enough for u128.
        let got = mutual_information(&values, &values, 1 << 20).unwrap();
        assert!((got - expected).abs() < 1e-12, "{got}");
    }

    #[test]
    fn dense_and_sparse_paths_agree() {
        // 200 bins over 300k samples is dense; 10**6 bins is not. Same occupied cells when
        // each value sits at a bin start of both.
        let x: Vec<f64> = (0..300_000u64).map(|i| ((i * 7919) % 200) as f64).collect();
        let y: Vec<f64> = (0..300_000u64)
            .map(|i| ((i * 104_729) % 200) as f64)
            .collect();
        let dense = mutual_information(&x, &y, 200).unwrap();
        let joint_dense = joint_entropy(&x, &y, 200).unwrap();
        let scaled: Vec<f64> = x.iter().map(|v| v * 5000.0).collect();
        let scaled_y: Vec<f64> = y.iter().map(|v| v * 5000.0).collect();
        let sparse = mutual_information(&scaled, &scaled_y, 199 * 5000).unwrap();
        let joint_sparse = joint_entropy(&scaled, &scaled_y, 199 * 5000).unwrap();
        // x and y are functions of i mod 200, and of each other: MI = H(X) = log2(200).
        assert!((dense - 200f64.log2()).abs() < 1e-12, "{dense}");
        assert!((dense - sparse).abs() < 1e-12, "{dense} {sparse}");
        assert!((joint_dense - joint_sparse).abs() < 1e-12);
    }

    #[test]
    fn joint_and_mutual_information_hand_worked() {
        let x = [0.0, 0.0, 1.0, 1.0];
        let y = [0.0, 1.0, 0.0, 1.0];
        assert_eq!(joint_entropy(&x, &y, 2), Ok(2.0));
        assert_eq!(mutual_information(&x, &y, 2), Ok(0.0));
        assert_eq!(mutual_information(&x, &x, 2), Ok(1.0));
        assert_eq!(joint_entropy(&x, &x, 2), Ok(1.0));
        // Each series over its own range: y = 10 x + 3 is the same partition.
        let scaled: Vec<f64> = x.iter().map(|v| 10.0 * v + 3.0).collect();
        assert_eq!(mutual_information(&x, &scaled, 2), Ok(1.0));
        assert_eq!(joint_entropy(&[], &[], 5), Ok(0.0));
        assert_eq!(mutual_information(&[], &[], 5), Ok(0.0));
        assert_eq!(mutual_information(&[3.0], &[4.0], 5), Ok(0.0));
    }

    #[test]
    fn pair_errors_in_order() {
        assert_eq!(
            message(joint_entropy(&[1.0], &[1.0, 2.0], 0)),
            "bins must be >= 1, got 0"
        );
        assert_eq!(
            message(mutual_information(&[f64::NAN; 3], &[1.0; 4], 2)),
            "x and y must have the same length (3 != 4)"
        );
        assert_eq!(
            message(mutual_information(&[1.0, f64::NAN], &[f64::NAN, 1.0], 2)),
            "x contains a non-finite value (nan) at index 1"
        );
        assert_eq!(
            message(joint_entropy(&[1.0, 2.0], &[1.0, f64::NEG_INFINITY], 2)),
            "y contains a non-finite value (-inf) at index 1"
        );
    }
}
