//! Equal-width binning and the scan that finds its range: the one place the binning formula
//! of docs/kernels.md ("Binning") lives. Every kernel bins through [`Binning::index`].

use rayon::prelude::*;

use crate::error::{CoreError, CoreResult};
use crate::info::parallel::{split_work, PARALLEL_MIN};
use crate::info::simd::{widest, Vectors};

/// 2**63, the first float past `i64::MAX`.
const TWO_TO_63: f64 = 9_223_372_036_854_775_808.0;

/// Equal-width bins over `[min, max]`: `width = (max - min) / bins`, computed once, and
/// `index = min(floor((v - min) / width), bins - 1)`; every value in bin 0 when `max == min`.
///
/// When `max - min` overflows (a range wider than `f64::MAX`, e.g. `[-1e308, 1e308]`) the
/// formula is evaluated on the halved values, `(v/2 - min/2) / ((max/2 - min/2) / bins)`:
/// halving is exact for such magnitudes and equal-width bins do not change under scaling, so
/// the bins are those of the same data divided by two. Otherwise `scale` is 1 and the
/// multiplication by it is exact.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Binning {
    scale: f64,
    /// `min * scale`
    min: f64,
    width: f64,
    last: i64,
    constant: bool,
    bins: u64,
}

impl Binning {
    /// Bins over `[min, max]` (finite, `min <= max`); `bins >= 1`.
    pub(crate) fn new(min: f64, max: f64, bins: u64) -> Binning {
        let last = i64::try_from(bins.saturating_sub(1)).unwrap_or(i64::MAX);
        let scale = if (max - min).is_finite() { 1.0 } else { 0.5 };
        Binning {
            scale,
            min: min * scale,
            width: (max * scale - min * scale) / bins as f64,
            last,
            constant: max == min,
            bins,
        }
    }

    /// Bins over the range of `values`, or `None` when `values` is empty. Fails, naming
    /// `argument`, at the first non-finite value.
    pub(crate) fn over(
        values: &[f64],
        bins: u64,
        argument: &'static str,
    ) -> CoreResult<Option<Binning>> {
        Ok(finite_range(values, argument)?.map(|(min, max)| Binning::new(min, max, bins)))
    }

    /// The number of bins.
    pub(crate) fn bins(&self) -> u64 {
        self.bins
    }

    /// The bin of `value`, a value inside the range.
    ///
    /// `value - min >= 0`, so truncation is the floor. The cast saturates: a NaN quotient
    /// (0/0 when the width underflowed to 0) gives bin 0 and a quotient past the end
    /// (including +inf) the last bin; nothing can overflow.
    #[inline(always)]
    pub(crate) fn index(&self, value: f64) -> u64 {
        if self.constant {
            return 0;
        }
        let quotient = (value * self.scale - self.min) / self.width;
        // `(quotient as i64).min(self.last).max(0)`, spelled so that it vectorises: convert
        // only values known to fit, then pick 0 for NaN and i64::MAX past 2**63 as the
        // saturating cast would.
        let fits = (0.0..TWO_TO_63).contains(&quotient);
        let inside = if fits { quotient } else { 0.0 };
        // SAFETY: `inside` is finite and in [0, 2**63), so it truncates to a valid i64.
        let truncated: i64 = unsafe { inside.to_int_unchecked() };
        let saturated = if quotient >= TWO_TO_63 {
            i64::MAX
        } else {
            truncated
        };
        saturated.min(self.last) as u64
    }

    /// `out[i] = self.index(values[i])` over the common length, vectorised with the widest
    /// instructions the CPU offers (the float-to-integer conversion is what needs them).
    pub(crate) fn indices(&self, values: &[f64], out: &mut [u64]) {
        match widest() {
            // SAFETY (both): the CPU supports the features the function is compiled for.
            #[cfg(target_arch = "x86_64")]
            Vectors::Avx512 => unsafe { self.indices_avx512(values, out) },
            #[cfg(target_arch = "x86_64")]
            Vectors::Avx2 => unsafe { self.indices_avx2(values, out) },
            _ => self.indices_portable(values, out),
        }
    }

    /// `codes[i] = codes[i] * radix + self.index(values[i])`: the bin as one more
    /// coordinate of a mixed-radix cell code (the caller keeps codes below 2**64).
    pub(crate) fn push_indices(&self, values: &[f64], radix: u64, codes: &mut [u64]) {
        match widest() {
            // SAFETY (both): the CPU supports the features the function is compiled for.
            #[cfg(target_arch = "x86_64")]
            Vectors::Avx512 => unsafe { self.push_indices_avx512(values, radix, codes) },
            #[cfg(target_arch = "x86_64")]
            Vectors::Avx2 => unsafe { self.push_indices_avx2(values, radix, codes) },
            _ => self.push_indices_portable(values, radix, codes),
        }
    }

    #[inline(always)]
    fn push_indices_portable(&self, values: &[f64], radix: u64, codes: &mut [u64]) {
        for (code, &value) in codes.iter_mut().zip(values) {
            *code = code.wrapping_mul(radix).wrapping_add(self.index(value));
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512dq,avx512vl,avx512bw")]
    fn push_indices_avx512(&self, values: &[f64], radix: u64, codes: &mut [u64]) {
        self.push_indices_portable(values, radix, codes);
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn push_indices_avx2(&self, values: &[f64], radix: u64, codes: &mut [u64]) {
        self.push_indices_portable(values, radix, codes);
    }

    #[inline(always)]
    fn indices_portable(&self, values: &[f64], out: &mut [u64]) {
        for (slot, &value) in out.iter_mut().zip(values) {
            *slot = self.index(value);
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512dq,avx512vl,avx512bw")]
    fn indices_avx512(&self, values: &[f64], out: &mut [u64]) {
        self.indices_portable(values, out);
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn indices_avx2(&self, values: &[f64], out: &mut [u64]) {
        self.indices_portable(values, out);
    }
}

/// `(min, max)` of `values`, `None` when empty; fails, naming `argument`, at the first
/// non-finite value. One pass, in parallel on large inputs.
pub(crate) fn finite_range(
    values: &[f64],
    argument: &'static str,
) -> CoreResult<Option<(f64, f64)>> {
    if values.is_empty() {
        return Ok(None);
    }
    let pieces = split_work(values.len(), PARALLEL_MIN, |range| {
        scan_min_max(&values[range])
    });
    let mut min = f64::INFINITY;
    let mut max = f64::NEG_INFINITY;
    let mut finite = true;
    for (piece_min, piece_max, piece_finite) in pieces {
        min = min.min(piece_min);
        max = max.max(piece_max);
        finite &= piece_finite;
    }
    if !finite || !min.is_finite() || !max.is_finite() {
        return Err(non_finite_error(values, argument));
    }
    Ok(Some((min, max)))
}

/// Whether every value is finite: no exponent field all ones (an integer OR-reduction,
/// which vectorises).
#[inline]
pub(crate) fn all_finite(values: &[f64]) -> bool {
    const EXPONENT: u64 = 0x7FF0_0000_0000_0000;
    let special = values.iter().fold(0u64, |any, v| {
        any | u64::from(v.to_bits() & EXPONENT == EXPONENT)
    });
    special == 0
}

/// Fails, naming `argument`, at the first non-finite value.
pub(crate) fn check_finite(values: &[f64], argument: &'static str) -> CoreResult<()> {
    finite_range(values, argument).map(|_| ())
}

/// Min, max and whether no NaN was seen, vectorised with the widest instructions the CPU
/// offers.
fn scan_min_max(values: &[f64]) -> (f64, f64, bool) {
    match widest() {
        // SAFETY (both): the CPU supports the features the function is compiled for.
        #[cfg(target_arch = "x86_64")]
        Vectors::Avx512 => unsafe { scan_min_max_avx512(values) },
        #[cfg(target_arch = "x86_64")]
        Vectors::Avx2 => unsafe { scan_min_max_avx2(values) },
        _ => scan_min_max_portable(values),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq,avx512vl,avx512bw")]
fn scan_min_max_avx512(values: &[f64]) -> (f64, f64, bool) {
    scan_min_max_portable(values)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn scan_min_max_avx2(values: &[f64]) -> (f64, f64, bool) {
    scan_min_max_portable(values)
}

/// Sixteen independent lanes so the loop vectorises. `min`/`max` skip NaN; the probe sums
/// `v * 0.0`, which is NaN exactly when some `v` is NaN or infinite.
#[inline(always)]
fn scan_min_max_portable(values: &[f64]) -> (f64, f64, bool) {
    const LANES: usize = 16;
    let mut low = [f64::INFINITY; LANES];
    let mut high = [f64::NEG_INFINITY; LANES];
    let mut probe = [0.0f64; LANES];
    let mut blocks = values.chunks_exact(LANES);
    for block in &mut blocks {
        let Ok(block) = <&[f64; LANES]>::try_from(block) else {
            continue;
        };
        for lane in 0..LANES {
            low[lane] = low[lane].min(block[lane]);
            high[lane] = high[lane].max(block[lane]);
            probe[lane] += block[lane] * 0.0;
        }
    }
    let mut min = f64::INFINITY;
    let mut max = f64::NEG_INFINITY;
    let mut total_probe = 0.0;
    for lane in 0..LANES {
        min = min.min(low[lane]);
        max = max.max(high[lane]);
        total_probe += probe[lane];
    }
    for &v in blocks.remainder() {
        min = min.min(v);
        max = max.max(v);
        total_probe += v * 0.0;
    }
    (min, max, total_probe == 0.0)
}

/// The error for the first non-finite value of `values` (the caller knows there is one).
fn non_finite_error(values: &[f64], argument: &'static str) -> CoreError {
    let first = if values.len() >= PARALLEL_MIN {
        values.par_iter().position_first(|v| !v.is_finite())
    } else {
        values.iter().position(|v| !v.is_finite())
    };
    let index = first.unwrap_or(0);
    let value = values.get(index).copied().unwrap_or(f64::NAN);
    // Spelled as Python prints floats, like the NumPy backend's message.
    let shown = if value.is_nan() {
        "nan"
    } else if value > 0.0 {
        "inf"
    } else {
        "-inf"
    };
    CoreError::invalid(
        argument,
        format!("{argument} contains a non-finite value ({shown}) at index {index}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_follows_the_formula() {
        let binning = Binning::new(1.0, 4.0, 4);
        let indices: Vec<u64> = [1.0, 1.74, 1.75, 2.5, 3.99, 4.0]
            .iter()
            .map(|&v| binning.index(v))
            .collect();
        assert_eq!(indices, vec![0, 0, 1, 2, 3, 3]);
    }

    #[test]
    fn vectorised_indices_match_index() {
        let values: Vec<f64> = (0..1000).map(|i| f64::from(i) * 0.37 - 50.0).collect();
        for binning in [
            Binning::new(-50.0, 319.63, 7),
            Binning::new(-50.0, 319.63, i64::MAX as u64),
            Binning::new(-50.0, -50.0, 3),
            Binning::new(-50.0, f64::MAX, 1 << 60),
        ] {
            let mut out = vec![u64::MAX; values.len()];
            binning.indices(&values, &mut out);
            let expected: Vec<u64> = values.iter().map(|&v| binning.index(v)).collect();
            assert_eq!(out, expected);
        }
    }

    #[test]
    fn a_range_wider_than_the_float_range_bins_like_the_halved_values() {
        let values = [-1e308, 0.0, 1e307, 1e308, f64::MAX, -f64::MAX];
        let (min, max) = (-f64::MAX, f64::MAX);
        let wide = Binning::new(min, max, 4);
        let halved = Binning::new(min / 2.0, max / 2.0, 4);
        for value in values {
            assert_eq!(wide.index(value), halved.index(value / 2.0));
        }
        let got: Vec<u64> = values.iter().map(|&v| wide.index(v)).collect();
        assert_eq!(got, vec![0, 2, 2, 3, 3, 0]);
    }

    #[test]
    fn constant_range_is_bin_zero() {
        let binning = Binning::new(5.0, 5.0, 7);
        assert_eq!(binning.index(5.0), 0);
    }

    #[test]
    fn degenerate_widths_saturate() {
        // Width underflows to 0: the minimum gives 0/0 (bin 0), anything above +inf (last).
        let tiny = Binning::new(0.0, f64::from_bits(1), 10);
        assert_eq!(tiny.index(0.0), 0);
        assert_eq!(tiny.index(f64::from_bits(1)), 9);
        // max - min overflows: the halved range, so the ends are the first and last bins.
        let wide = Binning::new(-f64::MAX, f64::MAX, 10);
        assert_eq!(wide.index(-f64::MAX), 0);
        assert_eq!(wide.index(0.0), 5);
        assert_eq!(wide.index(f64::MAX), 9);
        // The largest bin count keeps the last index representable.
        let huge = Binning::new(0.0, 1.0, i64::MAX as u64);
        assert_eq!(huge.index(1.0), i64::MAX as u64 - 1);
        assert_eq!(huge.index(0.0), 0);
    }

    #[test]
    fn range_and_first_non_finite() {
        assert_eq!(finite_range(&[], "values"), Ok(None));
        assert_eq!(
            finite_range(&[3.0, -1.0, 2.0], "values"),
            Ok(Some((-1.0, 3.0)))
        );
        let error = finite_range(&[1.0, 2.0, f64::NAN, f64::INFINITY], "values").unwrap_err();
        assert_eq!(
            error.to_string(),
            "values contains a non-finite value (nan) at index 2"
        );
        let error = finite_range(&[f64::NEG_INFINITY], "p").unwrap_err();
        assert_eq!(
            error.to_string(),
            "p contains a non-finite value (-inf) at index 0"
        );
        // Past the vectorised blocks and in a large input scanned in parallel.
        let mut long = vec![1.0; 200_003];
        long[200_001] = f64::INFINITY;
        long[200_002] = f64::NAN;
        let error = finite_range(&long, "x").unwrap_err();
        assert_eq!(
            error.to_string(),
            "x contains a non-finite value (inf) at index 200001"
        );
        long[200_001] = 1.0;
        let error = finite_range(&long, "x").unwrap_err();
        assert_eq!(
            error.to_string(),
            "x contains a non-finite value (nan) at index 200002"
        );
        long[7] = f64::NAN;
        let error = finite_range(&long, "x").unwrap_err();
        assert_eq!(
            error.to_string(),
            "x contains a non-finite value (nan) at index 7"
        );
    }
}
