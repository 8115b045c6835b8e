//! Sorting cell codes: a least-significant-digit radix sort.
//!
//! Cell codes use few of their 64 bits (a bin index below `bins`, a Lehmer code below
//! `order!`), so only the digits on which the codes differ are sorted on.

/// Below this many codes the standard sort is as fast.
const RADIX_MIN: usize = 1 << 12;

/// Bits per digit: 2048 buckets stay in L1 and 64-bit codes need at most six passes.
const DIGIT_BITS: u32 = 11;

/// Sorts `codes` ascending.
pub(crate) fn sort_codes(codes: &mut Vec<u64>) {
    if codes.len() < RADIX_MIN {
        codes.sort_unstable();
        return;
    }
    let (any, all) = codes.iter().fold((0u64, u64::MAX), |(any, all), &code| {
        (any | code, all & code)
    });
    let differing = any ^ all;
    let mut buffer = vec![0u64; codes.len()];
    let mut next = vec![0usize; 1 << DIGIT_BITS];
    let mask = (1u64 << DIGIT_BITS) - 1;
    for shift in (0..64).step_by(DIGIT_BITS as usize) {
        if (differing >> shift) & mask == 0 {
            continue;
        }
        let digit = |code: u64| ((code >> shift) & mask) as usize;
        next.fill(0);
        for &code in codes.iter() {
            next[digit(code)] += 1;
        }
        let mut start = 0;
        for slot in next.iter_mut() {
            let count = *slot;
            *slot = start;
            start += count;
        }
        // Stable scatter: `next[d]` is where the next code with digit d goes; the counts
        // add up to the length, so every slot exists.
        for &code in codes.iter() {
            let position = &mut next[digit(code)];
            if let Some(slot) = buffer.get_mut(*position) {
                *slot = code;
            }
            *position += 1;
        }
        std::mem::swap(codes, &mut buffer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_like_the_standard_sort() {
        let mut state = 7u64;
        for (len, mask) in [
            (0, u64::MAX),
            (10, u64::MAX),
            (5000, 0xFFF),
            (70_000, u64::MAX),
            (70_000, 0xF0F0_0000_00FF_0000),
            (9000, 0),
        ] {
            let codes: Vec<u64> = (0..len)
                .map(|_| {
                    state = state
                        .wrapping_mul(6_364_136_223_846_793_005)
                        .wrapping_add(1_442_695_040_888_963_407);
                    state & mask
                })
                .collect();
            let mut expected = codes.clone();
            expected.sort_unstable();
            let mut got = codes;
            sort_codes(&mut got);
            assert_eq!(got, expected);
        }
    }
}
