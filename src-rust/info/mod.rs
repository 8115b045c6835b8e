//! Information-theory kernels (SPEC §7, docs/kernels.md "Information kernels").
//!
//! Pure Rust: 1-D `f64` slices and `i64` parameters in, bits out. Checks run in a fixed
//! order — parameters, then equal lengths, then finiteness — and fail with
//! [`CoreError::InvalidArgument`] whose message starts with the argument name. Every
//! histogram bins through [`binning::Binning`].

pub(crate) mod binning;
mod divergence;
mod entropy;
pub(crate) mod histogram;
mod parallel;
mod permutation;
pub(crate) mod simd;
mod sort;
mod transfer;

pub use divergence::{jsd, kl_divergence};
pub use entropy::{entropy, joint_entropy, mutual_information};
pub use permutation::permutation_entropy;
pub use transfer::transfer_entropy;

use crate::error::{CoreError, CoreResult};

/// Largest permutation-entropy order: 20! is the last factorial below 2**63.
pub const MAX_ORDER: i64 = 20;

/// `value` as a count when it is at least `low`, else the error naming `argument`.
fn at_least(value: i64, low: i64, argument: &'static str) -> CoreResult<u64> {
    if value < low {
        return Err(CoreError::invalid(
            argument,
            format!("{argument} must be >= {low}, got {value}"),
        ));
    }
    // value >= low >= 1 here.
    Ok(value.unsigned_abs())
}

fn check_bins(bins: i64) -> CoreResult<u64> {
    at_least(bins, 1, "bins")
}

fn check_lag(lag: i64) -> CoreResult<u64> {
    at_least(lag, 1, "lag")
}

fn check_order(order: i64) -> CoreResult<usize> {
    let order = at_least(order, 2, "order")?;
    if order > MAX_ORDER as u64 {
        return Err(CoreError::invalid(
            "order",
            format!("order must be <= {MAX_ORDER}, got {order}"),
        ));
    }
    Ok(order as usize)
}

/// Two series that pair up sample by sample (named `x` and `y`).
fn check_same_length(x: &[f64], y: &[f64]) -> CoreResult<()> {
    if x.len() != y.len() {
        return Err(CoreError::invalid(
            "x",
            format!(
                "x and y must have the same length ({} != {})",
                x.len(),
                y.len()
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameter_messages() {
        assert_eq!(
            check_bins(0).unwrap_err().to_string(),
            "bins must be >= 1, got 0"
        );
        assert_eq!(
            check_bins(i64::MIN).unwrap_err().to_string(),
            format!("bins must be >= 1, got {}", i64::MIN)
        );
        assert_eq!(check_bins(i64::MAX), Ok(i64::MAX as u64));
        assert_eq!(
            check_lag(0).unwrap_err().to_string(),
            "lag must be >= 1, got 0"
        );
        assert_eq!(
            check_order(1).unwrap_err().to_string(),
            "order must be >= 2, got 1"
        );
        assert_eq!(
            check_order(21).unwrap_err().to_string(),
            "order must be <= 20, got 21"
        );
        assert_eq!(check_order(20), Ok(20));
        assert_eq!(
            check_same_length(&[1.0; 3], &[1.0; 4])
                .unwrap_err()
                .to_string(),
            "x and y must have the same length (3 != 4)"
        );
    }
}
