//! Symmetric eigen decomposition by cyclic Jacobi rotations (conservation
//! laws): small matrices (at most 16 × 16), exact enough that the NumPy backend's
//! `np.linalg.eigh` agrees to ~1e-9.

/// Sweeps at most.
pub const MAX_SWEEPS: usize = 100;
/// Stop when the off-diagonal Frobenius norm falls below this times the matrix's norm.
pub const RELATIVE_OFF_DIAGONAL: f64 = 1e-15;

/// Eigenvalues and orthonormal eigenvectors of a symmetric matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct SymmetricEigen {
    /// Order of the matrix.
    pub n: usize,
    /// Eigenvalues, in the order of the final diagonal (not sorted).
    pub values: Vec<f64>,
    /// Row-major n × n; column k (`vectors[i * n + k]`, i = 0..n) is the unit eigenvector of
    /// `values[k]`.
    pub vectors: Vec<f64>,
}

impl SymmetricEigen {
    /// Eigenvector k as a vector.
    pub fn vector(&self, k: usize) -> Vec<f64> {
        (0..self.n).map(|i| self.vectors[i * self.n + k]).collect()
    }

    /// (λ, v) of the smallest eigenvalue (the first on ties). None for n = 0.
    pub fn smallest(&self) -> Option<(f64, Vec<f64>)> {
        let mut best: Option<usize> = None;
        for (k, &value) in self.values.iter().enumerate() {
            if best.is_none_or(|b| value < self.values[b]) {
                best = Some(k);
            }
        }
        best.map(|k| (self.values[k], self.vector(k)))
    }
}

/// Eigen decomposition of the symmetric n × n row-major `matrix` by cyclic Jacobi
/// rotations: sweeps visit (p, q), p < q, row by row; a rotation zeroes a_pq with
/// θ = (a_qq - a_pp) / (2 a_pq), t = sign(θ) / (|θ| + √(θ² + 1)), c = 1/√(t² + 1), s = t·c
/// (pairs with a_pq = 0 are skipped). Sweeps stop when the off-diagonal Frobenius norm is
/// below 1e-15 × the Frobenius norm of the matrix (or is 0), after at most 100 sweeps.
/// Non-finite entries give NaN results rather than a panic. Only the given matrix is read;
/// it should be symmetric.
pub fn symmetric_eigen(matrix: &[f64], n: usize) -> SymmetricEigen {
    // Missing entries (a slice shorter than n²) count as 0 rather than panicking.
    let mut a: Vec<f64> = matrix
        .iter()
        .copied()
        .chain(std::iter::repeat(0.0))
        .take(n * n)
        .collect();
    // Scaled by a power of two so that the largest |entry| is in [0.5, 1): exact for
    // entries in the normal range, and the squares below neither underflow (subnormal
    // entries) nor overflow (entries near f64::MAX). The eigenvalues are scaled back.
    let exponent = power_of_two_exponent(a.iter().fold(0.0f64, |peak, x| peak.max(x.abs())));
    for entry in a.iter_mut() {
        *entry = scale_by_power_of_two(*entry, -exponent);
    }
    let mut v = vec![0.0; n * n];
    for i in 0..n {
        v[i * n + i] = 1.0;
    }
    let norm = a.iter().map(|x| x * x).sum::<f64>().sqrt();
    for _ in 0..MAX_SWEEPS {
        let mut off = 0.0;
        for i in 0..n {
            for j in 0..n {
                if i != j {
                    off += a[i * n + j] * a[i * n + j];
                }
            }
        }
        let off = off.sqrt();
        if off == 0.0 || off < RELATIVE_OFF_DIAGONAL * norm || !off.is_finite() {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = a[p * n + q];
                if apq == 0.0 {
                    continue;
                }
                let theta = (a[q * n + q] - a[p * n + p]) / (2.0 * apq);
                let t = if theta.abs() > 1e150 {
                    0.5 / theta
                } else {
                    theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt())
                };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..n {
                    let akp = a[k * n + p];
                    let akq = a[k * n + q];
                    a[k * n + p] = c * akp - s * akq;
                    a[k * n + q] = s * akp + c * akq;
                }
                for k in 0..n {
                    let apk = a[p * n + k];
                    let aqk = a[q * n + k];
                    a[p * n + k] = c * apk - s * aqk;
                    a[q * n + k] = s * apk + c * aqk;
                }
                a[p * n + q] = 0.0;
                a[q * n + p] = 0.0;
                for k in 0..n {
                    let vkp = v[k * n + p];
                    let vkq = v[k * n + q];
                    v[k * n + p] = c * vkp - s * vkq;
                    v[k * n + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    SymmetricEigen {
        n,
        values: (0..n)
            .map(|i| scale_by_power_of_two(a[i * n + i], exponent))
            .collect(),
        vectors: v,
    }
}

/// The exponent e with `peak = m · 2^e`, m in [0.5, 1) (as C's `frexp`); 0 for 0 and
/// non-finite peaks (nothing to scale).
pub fn power_of_two_exponent(peak: f64) -> i32 {
    if peak == 0.0 || !peak.is_finite() {
        return 0;
    }
    let mut exponent = 0i32;
    let mut scaled = peak;
    // a subnormal peak: bring it into the normal range first (2^64 is exact)
    if scaled < f64::MIN_POSITIVE {
        scaled *= 18_446_744_073_709_551_616.0;
        exponent -= 64;
    }
    let biased = ((scaled.to_bits() >> 52) & 0x7ff) as i32;
    exponent + biased - 1022
}

/// `value · 2^exponent`, exact unless the result leaves the normal range (as C's `ldexp`,
/// computed in steps so that no intermediate power of two overflows).
pub fn scale_by_power_of_two(value: f64, exponent: i32) -> f64 {
    let mut result = value;
    let mut remaining = exponent;
    while remaining != 0 {
        let step = remaining.clamp(-1000, 1000);
        result *= f64::from_bits(((1023 + step) as u64) << 52);
        remaining -= step;
    }
    result
}

/// (λ_min, unit eigenvector) of a symmetric n × n row-major matrix (n >= 1).
pub fn smallest_eigenpair(matrix: &[f64], n: usize) -> Option<(f64, Vec<f64>)> {
    symmetric_eigen(matrix, n).smallest()
}

/// The smallest eigenpair when its eigenvector is determined: the gap to the next eigenvalue
/// must exceed [`IDENTIFIABLE_GAP`] times the largest |eigenvalue| (a zero matrix, or one
/// whose smallest eigenvalue is repeated, has no unique smallest eigenvector, and any vector
/// a solver returns there is arbitrary). None otherwise.
pub fn identifiable_smallest_eigenpair(matrix: &[f64], n: usize) -> Option<(f64, Vec<f64>)> {
    let eigen = symmetric_eigen(matrix, n);
    let (smallest, vector) = eigen.smallest()?;
    let mut sorted = eigen.values.clone();
    sorted.sort_by(f64::total_cmp);
    let largest = sorted.iter().fold(0.0f64, |acc, v| acc.max(v.abs()));
    let next = *sorted.get(1)?;
    (next - smallest > IDENTIFIABLE_GAP * largest && largest > 0.0).then_some((smallest, vector))
}

/// Relative eigenvalue gap below which the smallest eigenvector is taken as undetermined.
pub const IDENTIFIABLE_GAP: f64 = 1e-9;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SplitMix64;

    fn check_decomposition(matrix: &[f64], n: usize, tolerance: f64) {
        let eigen = symmetric_eigen(matrix, n);
        for k in 0..n {
            let vector = eigen.vector(k);
            let length: f64 = vector.iter().map(|x| x * x).sum();
            assert!((length - 1.0).abs() < 1e-13);
            for i in 0..n {
                let av: f64 = (0..n).map(|j| matrix[i * n + j] * vector[j]).sum();
                assert!(
                    (av - eigen.values[k] * vector[i]).abs() < tolerance,
                    "k={k} i={i}"
                );
            }
            for other in 0..k {
                let dot: f64 = vector
                    .iter()
                    .zip(eigen.vector(other))
                    .map(|(a, b)| a * b)
                    .sum();
                assert!(dot.abs() < 1e-13);
            }
        }
    }

    #[test]
    fn powers_of_two_match_frexp_and_ldexp() {
        assert_eq!(power_of_two_exponent(1.0), 1);
        assert_eq!(power_of_two_exponent(0.75), 0);
        assert_eq!(power_of_two_exponent(f64::MAX), 1024);
        assert_eq!(power_of_two_exponent(5e-324), -1073);
        assert_eq!(power_of_two_exponent(0.0), 0);
        assert_eq!(scale_by_power_of_two(5e-324, 1073), 0.5);
        assert_eq!(
            scale_by_power_of_two(f64::MAX, -1024),
            f64::MAX / 2f64.powi(1023) / 2.0
        );
        assert_eq!(scale_by_power_of_two(3.0, 0), 3.0);
    }

    #[test]
    fn tiny_and_huge_matrices_decompose_like_their_scaled_copies() {
        let unit = [2.0, 1.0, 0.0, 1.0, 3.0, 1.0, 0.0, 1.0, 4.0];
        let reference = symmetric_eigen(&unit, 3);
        // powi(-1060) is 1 / 2^1060 = 0 when evaluated at run time (debug builds)
        for factor in [-1060, -1030, 1000].map(|e| scale_by_power_of_two(1.0, e)) {
            let scaled: Vec<f64> = unit.iter().map(|x| x * factor).collect();
            let eigen = symmetric_eigen(&scaled, 3);
            assert_eq!(eigen.vectors, reference.vectors);
            for (value, expected) in eigen.values.iter().zip(&reference.values) {
                // subnormal eigenvalues keep only the precision of 2^-1074
                let error = (value - expected * factor).abs();
                let allowed = 1e-12 * (expected * factor).abs() + f64::from_bits(1);
                assert!(error <= allowed, "{value:e} vs {expected} x {factor:e}");
            }
        }
    }

    #[test]
    fn two_by_two_closed_form() {
        let eigen = symmetric_eigen(&[2.0, 1.0, 1.0, 2.0], 2);
        let mut values = eigen.values.clone();
        values.sort_by(f64::total_cmp);
        assert!((values[0] - 1.0).abs() < 1e-15 && (values[1] - 3.0).abs() < 1e-15);
        let (lambda, vector) = eigen.smallest().unwrap();
        assert!((lambda - 1.0).abs() < 1e-15);
        let h = std::f64::consts::FRAC_1_SQRT_2;
        assert!((vector[0].abs() - h).abs() < 1e-15);
        assert!((vector[0] + vector[1]).abs() < 1e-15);
    }

    #[test]
    fn diagonal_zero_and_empty_matrices() {
        let eigen = symmetric_eigen(&[3.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 2.0], 3);
        assert_eq!(eigen.values, vec![3.0, -1.0, 2.0]);
        assert_eq!(eigen.smallest().unwrap(), (-1.0, vec![0.0, 1.0, 0.0]));
        let zero = symmetric_eigen(&[0.0; 4], 2);
        assert_eq!(zero.values, vec![0.0, 0.0]);
        assert_eq!(zero.smallest().unwrap().1, vec![1.0, 0.0]);
        assert!(symmetric_eigen(&[], 0).smallest().is_none());
        let nan = symmetric_eigen(&[f64::NAN, 1.0, 1.0, 0.0], 2);
        assert_eq!(nan.values.len(), 2);
    }

    #[test]
    fn random_symmetric_matrices() {
        let mut rng = SplitMix64::new(17);
        for n in 1..=16 {
            let mut matrix = vec![0.0; n * n];
            for i in 0..n {
                for j in i..n {
                    let value = rng.next_f64() * 2.0 - 1.0;
                    matrix[i * n + j] = value;
                    matrix[j * n + i] = value;
                }
            }
            check_decomposition(&matrix, n, 1e-13);
        }
    }

    #[test]
    fn null_vector_of_a_law() {
        // Covariance of (a, b, a - b): singular with null vector ∝ (1, -1, -1).
        let mut rng = SplitMix64::new(5);
        let rows: Vec<[f64; 3]> = (0..200)
            .map(|_| {
                let a = rng.next_f64();
                let b = rng.next_f64();
                [a, b, a - b]
            })
            .collect();
        let mut cov = [0.0; 9];
        for row in &rows {
            for i in 0..3 {
                for j in 0..3 {
                    cov[i * 3 + j] += row[i] * row[j] / 200.0;
                }
            }
        }
        let (lambda, vector) = smallest_eigenpair(&cov, 3).unwrap();
        assert!(lambda.abs() < 1e-15);
        let scale = vector[0];
        for (component, expected) in vector.iter().zip([1.0, -1.0, -1.0]) {
            assert!((component / scale - expected).abs() < 1e-12);
        }
    }
}
