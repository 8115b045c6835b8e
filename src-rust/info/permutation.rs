//! Permutation entropy (Bandt–Pompe ordinal patterns, delay 1).
//!
//! A window's pattern is its rank vector with ties broken by position (the earlier of two
//! equal values ranks lower). Its Lehmer code has digit `i` = the number of later values
//! smaller than value `i`, a bijection onto `[0, order!)`. Up to order 6 the patterns are
//! counted by their raw pairwise comparison bits (at most 15), which neighbouring windows
//! share, and converted to Lehmer codes afterwards; longer windows compute Lehmer codes
//! directly.

use std::ops::Range;

use crate::error::CoreResult;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::info::binning::{all_finite, check_finite};
use crate::info::check_order;
use crate::info::histogram::{dense_counts, dense_fits, entropy_of_counts, occupied, runs, BLOCK};
use crate::info::parallel::{split_work, PARALLEL_MIN};
use crate::info::simd::{widest, Vectors};
use crate::info::sort::sort_codes;

/// Normalized permutation entropy of `values`: Shannon entropy (bits) of the ordinal-pattern
/// frequencies of the windows of `order` values over `log2(order!)`; 0.0 when
/// `values.len() < order`.
pub fn permutation_entropy(values: &[f64], order: i64) -> CoreResult<f64> {
    let order = check_order(order)?;
    if values.len() < order {
        check_finite(values, "values")?;
        return Ok(0.0);
    }
    // Finiteness is checked on the way, while each block is in cache; on failure the
    // entropy is discarded and the first non-finite value reported.
    let (entropy, finite) = match order {
        2 => pattern_entropy::<Comparisons<2>>(values),
        3 => pattern_entropy::<Comparisons<3>>(values),
        4 => pattern_entropy::<Comparisons<4>>(values),
        5 => pattern_entropy::<Comparisons<5>>(values),
        6 => pattern_entropy::<Comparisons<6>>(values),
        7 => pattern_entropy::<Lehmer<7>>(values),
        8 => pattern_entropy::<Lehmer<8>>(values),
        9 => pattern_entropy::<Lehmer<9>>(values),
        10 => pattern_entropy::<Lehmer<10>>(values),
        11 => pattern_entropy::<Lehmer<11>>(values),
        12 => pattern_entropy::<Lehmer<12>>(values),
        13 => pattern_entropy::<Lehmer<13>>(values),
        14 => pattern_entropy::<Lehmer<14>>(values),
        15 => pattern_entropy::<Lehmer<15>>(values),
        16 => pattern_entropy::<Lehmer<16>>(values),
        17 => pattern_entropy::<Lehmer<17>>(values),
        18 => pattern_entropy::<Lehmer<18>>(values),
        19 => pattern_entropy::<Lehmer<19>>(values),
        _ => pattern_entropy::<Lehmer<20>>(values),
    };
    if !finite {
        check_finite(values, "values")?;
    }
    let patterns: u64 = (2..=order as u64).product();
    Ok(entropy / (patterns as f64).log2())
}

/// A way to give every window a code that identifies its pattern.
trait Patterns {
    /// The window length.
    const ORDER: usize;
    /// Every code is below this.
    const CODES: u128;
    /// Whether a dense table of `CODES` slots may be used.
    const DENSE: bool;
    /// The code type (the narrower, the more codes per vector instruction).
    type Code: Copy + Into<u64>;
    /// Calls `emit` with the codes of the windows starting in `windows`, block by block;
    /// `false` when a value of those windows is not finite.
    fn codes(values: &[f64], windows: Range<usize>, emit: impl FnMut(&[Self::Code])) -> bool;
    /// The Lehmer code of the pattern with code `code`.
    fn lehmer(code: u64) -> u64;
}

/// Entropy (bits) of the pattern frequencies, summed in ascending Lehmer-code order, and
/// whether every value was finite.
fn pattern_entropy<P: Patterns>(values: &[f64]) -> (f64, bool) {
    // Callers guarantee values.len() >= order >= 2.
    let windows = values.len() + 1 - P::ORDER;
    let finite = AtomicBool::new(true);
    let mut counts: Vec<(u64, u64)> = if P::DENSE && dense_fits(P::CODES, windows) {
        let table = dense_counts(windows, P::CODES as usize, |range, table| {
            if !P::codes(values, range, |codes| table.add_all(codes)) {
                finite.store(false, Ordering::Relaxed);
            }
        });
        occupied(&table)
    } else {
        let mut codes: Vec<u64> = split_work(windows, PARALLEL_MIN, |range| {
            let mut codes = Vec::with_capacity(range.len());
            let all_finite = P::codes(values, range, |block| {
                codes.extend(block.iter().map(|&code| code.into()));
            });
            if !all_finite {
                finite.store(false, Ordering::Relaxed);
            }
            codes
        })
        .concat();
        sort_codes(&mut codes);
        runs(&codes)
    };
    for (code, _) in &mut counts {
        *code = P::lehmer(*code);
    }
    counts.sort_unstable();
    let entropy = entropy_of_counts(counts.into_iter().map(|(_, count)| count), windows);
    (entropy, finite.into_inner())
}

/// Windows of up to 6 values coded by their pairwise comparisons: group `i` of the code
/// holds, for `d = 1..order-i`, the bit `x[t+i+d] < x[t+i]`. Each position's comparisons
/// with the next values are computed once per block and shared by the overlapping windows.
struct Comparisons<const M: usize>;

impl<const M: usize> Patterns for Comparisons<M> {
    const ORDER: usize = M;
    const CODES: u128 = 1 << (M * (M - 1) / 2);
    const DENSE: bool = true;
    type Code = u16;

    fn codes(values: &[f64], windows: Range<usize>, emit: impl FnMut(&[u16])) -> bool {
        match widest() {
            // SAFETY (both): the CPU supports the features the function is compiled for.
            #[cfg(target_arch = "x86_64")]
            Vectors::Avx512 => unsafe { comparison_codes_avx512::<M>(values, windows, emit) },
            #[cfg(target_arch = "x86_64")]
            Vectors::Avx2 => unsafe { comparison_codes_avx2::<M>(values, windows, emit) },
            _ => comparison_codes::<M>(values, windows, emit),
        }
    }

    fn lehmer(code: u64) -> u64 {
        let mut lehmer = 0;
        let mut offset = 0;
        for i in 0..M {
            let width = M - 1 - i;
            let smaller_later = ((code >> offset) & ((1 << width) - 1)).count_ones();
            lehmer = lehmer * (M - i) as u64 + u64::from(smaller_later);
            offset += width;
        }
        lehmer
    }
}

/// The codes of [`Comparisons`]: per block, each position's comparisons with the next
/// `M - 1` values (a byte), then each window's groups gathered from them (15 bits at most).
#[inline(always)]
fn comparison_codes<const M: usize>(
    values: &[f64],
    windows: Range<usize>,
    mut emit: impl FnMut(&[u16]),
) -> bool {
    let n = values.len();
    // masks[k - start]: bit d-1 is x[k+d] < x[k], for the positions k whose windows start
    // in the block (k < stop + M - 2), and only where k + d < n. Pass d = 1 overwrites the
    // previous block's masks everywhere a window looks (positions up to n - 2).
    let mut masks = [0u8; BLOCK + 32];
    let mut codes = [0u16; BLOCK];
    let mut finite = true;
    let mut start = windows.start;
    while start < windows.end {
        let stop = (start + BLOCK).min(windows.end);
        let count = stop - start;
        let positions = count + M - 2;
        finite &= values
            .get(start..(stop + M - 1).min(n))
            .is_none_or(all_finite);
        for d in 1..M {
            let end = (start + positions).min(n - d);
            let (Some(base), Some(ahead)) =
                (values.get(start..end), values.get(start + d..end + d))
            else {
                continue;
            };
            let pairs = masks.iter_mut().zip(base).zip(ahead);
            if d == 1 {
                for ((mask, &a), &b) in pairs {
                    *mask = u8::from(b < a);
                }
            } else {
                for ((mask, &a), &b) in pairs {
                    *mask |= u8::from(b < a) << (d - 1);
                }
            }
        }
        // Group i of window t: the first M-1-i bits of masks[t + i].
        let codes = &mut codes[..count];
        let mut offset = 0;
        for i in 0..M - 1 {
            let width = M - 1 - i;
            let keep = (1u8 << width) - 1;
            let groups = codes.iter_mut().zip(&masks[i..i + count]);
            if i == 0 {
                for (code, &mask) in groups {
                    *code = u16::from(mask & keep);
                }
            } else {
                for (code, &mask) in groups {
                    *code |= u16::from(mask & keep) << offset;
                }
            }
            offset += width;
        }
        emit(codes);
        start = stop;
    }
    finite
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq,avx512vl,avx512bw")]
fn comparison_codes_avx512<const M: usize>(
    values: &[f64],
    windows: Range<usize>,
    emit: impl FnMut(&[u16]),
) -> bool {
    comparison_codes::<M>(values, windows, emit)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn comparison_codes_avx2<const M: usize>(
    values: &[f64],
    windows: Range<usize>,
    emit: impl FnMut(&[u16]),
) -> bool {
    comparison_codes::<M>(values, windows, emit)
}

/// Windows coded by their Lehmer code directly.
struct Lehmer<const M: usize>;

impl<const M: usize> Patterns for Lehmer<M> {
    const ORDER: usize = M;
    const CODES: u128 = {
        let mut product = 1u128;
        let mut k = 2;
        while k <= M {
            product *= k as u128;
            k += 1;
        }
        product
    };
    // Up to 10! = 3.6M slots; beyond that the codes are sorted.
    const DENSE: bool = M <= 10;
    type Code = u64;

    fn codes(values: &[f64], windows: Range<usize>, mut emit: impl FnMut(&[u64])) -> bool {
        let Some(span) = values.get(windows.start..windows.end + M - 1) else {
            return true;
        };
        let mut codes = [0u64; BLOCK];
        let mut filled = 0;
        for window in span.windows(M) {
            let Ok(window) = <&[f64; M]>::try_from(window) else {
                continue;
            };
            let mut code = 0u64;
            for i in 0..M {
                let mut smaller_later = 0u64;
                for j in i + 1..M {
                    smaller_later += u64::from(window[j] < window[i]);
                }
                code = code * (M - i) as u64 + smaller_later;
            }
            codes[filled] = code;
            filled += 1;
            if filled == BLOCK {
                emit(&codes);
                filled = 0;
            }
        }
        emit(&codes[..filled]);
        all_finite(span)
    }

    fn lehmer(code: u64) -> u64 {
        code
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(result: CoreResult<f64>) -> String {
        result.unwrap_err().to_string()
    }

    /// Entropy straight from the definition: stable argsort of each window, patterns
    /// counted in a map (in their own order; the summation is shared).
    fn reference(values: &[f64], order: usize) -> f64 {
        use std::collections::BTreeMap;
        if values.len() < order {
            return 0.0;
        }
        let mut counts: BTreeMap<Vec<usize>, u64> = BTreeMap::new();
        for window in values.windows(order) {
            let mut ranks: Vec<usize> = (0..order).collect();
            ranks.sort_by(|&a, &b| window[a].total_cmp(&window[b]));
            *counts.entry(ranks).or_default() += 1;
        }
        let windows = values.len() + 1 - order;
        let entropy = entropy_of_counts(counts.values().copied(), windows);
        let patterns: u64 = (2..=order as u64).product();
        entropy / (patterns as f64).log2()
    }

    fn noise(n: usize, levels: u64) -> Vec<f64> {
        let mut state = 0x1234_5678_9ABC_DEF0u64;
        (0..n)
            .map(|_| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                ((state >> 33) % levels) as f64
            })
            .collect()
    }

    #[test]
    fn monotone_and_constant_series_have_no_entropy() {
        let rising: Vec<f64> = (0..100).map(f64::from).collect();
        let falling: Vec<f64> = rising.iter().rev().copied().collect();
        for order in [2, 3, 5, 6, 7, 12, 20] {
            assert_eq!(permutation_entropy(&rising, order), Ok(0.0));
            assert_eq!(permutation_entropy(&falling, order), Ok(0.0));
            assert_eq!(permutation_entropy(&[4.0; 50], order), Ok(0.0));
        }
    }

    #[test]
    fn hand_worked_values() {
        // Order 2 on 1 3 2 4: up, down, up → H(2/3, 1/3) / log2(2).
        let expected = -(2.0 / 3.0f64 * (2.0 / 3.0f64).log2() + 1.0 / 3.0 * (1.0 / 3.0f64).log2());
        let got = permutation_entropy(&[1.0, 3.0, 2.0, 4.0], 2).unwrap();
        assert!((got - expected).abs() < 1e-15);
        // Ties rank by position: (1, 1) is "up", like (1, 2).
        assert_eq!(permutation_entropy(&[1.0, 1.0, 2.0], 2), Ok(0.0));
        // All 6 patterns once each: log2(6) / log2(6).
        let all = [
            [1.0, 2.0, 3.0],
            [1.0, 3.0, 2.0],
            [2.0, 1.0, 3.0],
            [2.0, 3.0, 1.0],
            [3.0, 1.0, 2.0],
            [3.0, 2.0, 1.0],
        ];
        let windows: Vec<u64> = all
            .iter()
            .map(|w| {
                let mut code = 0;
                Lehmer::<3>::codes(w, 0..1, |c| code = c.first().copied().unwrap_or(code));
                code
            })
            .collect();
        assert_eq!(windows, vec![0, 1, 2, 3, 4, 5]);
        for w in &all {
            let mut comparison = 0;
            Comparisons::<3>::codes(w, 0..1, |c| {
                comparison = c.first().copied().unwrap_or(comparison)
            });
            let mut lehmer = 0;
            Lehmer::<3>::codes(w, 0..1, |c| lehmer = c.first().copied().unwrap_or(lehmer));
            assert_eq!(Comparisons::<3>::lehmer(comparison.into()), lehmer);
        }
    }

    #[test]
    fn matches_the_definition() {
        for levels in [3, 1000] {
            let values = noise(3000, levels);
            for order in 2..=20 {
                let got = permutation_entropy(&values, order as i64).unwrap();
                let expected = reference(&values, order);
                assert!(
                    (got - expected).abs() < 1e-12,
                    "order {order}: {got} {expected}"
                );
            }
        }
        // Large enough for the parallel and dense paths.
        let values = noise(300_001, 50);
        for order in [3, 5, 6, 7, 9, 11] {
            let got = permutation_entropy(&values, order as i64).unwrap();
            let expected = reference(&values, order);
            assert!(
                (got - expected).abs() < 1e-12,
                "order {order}: {got} {expected}"
            );
        }
    }

    #[test]
    fn short_series() {
        assert_eq!(permutation_entropy(&[], 3), Ok(0.0));
        assert_eq!(permutation_entropy(&[1.0, 2.0], 3), Ok(0.0));
        assert_eq!(permutation_entropy(&[2.0, 1.0, 3.0], 3), Ok(0.0));
    }

    #[test]
    fn errors_in_order() {
        assert_eq!(
            message(permutation_entropy(&[], 1)),
            "order must be >= 2, got 1"
        );
        assert_eq!(
            message(permutation_entropy(&[f64::NAN], 21)),
            "order must be <= 20, got 21"
        );
        assert_eq!(
            message(permutation_entropy(&[1.0, f64::NAN], i64::MIN)),
            format!("order must be >= 2, got {}", i64::MIN)
        );
        // Finiteness is checked even when the series is too short to have a value.
        assert_eq!(
            message(permutation_entropy(&[1.0, f64::NAN], 3)),
            "values contains a non-finite value (nan) at index 1"
        );
        // ... and anywhere in a long one, whatever the order (checked while coding).
        let mut values = noise(300_000, 100);
        for (index, bad, shown) in [
            (299_999, f64::NAN, "nan"),
            (150_000, f64::INFINITY, "inf"),
            (0, f64::NEG_INFINITY, "-inf"),
        ] {
            values[index] = bad;
            for order in [2, 5, 6, 7, 12] {
                assert_eq!(
                    message(permutation_entropy(&values, order)),
                    format!("values contains a non-finite value ({shown}) at index {index}")
                );
            }
        }
    }
}
