//! Splitting a pass over `len` items into one contiguous piece per rayon thread.
//!
//! Rayon's global pool sizes itself from `RAYON_NUM_THREADS`; inputs too small to repay the
//! hand-off stay on the calling thread.

use std::ops::Range;

use rayon::prelude::*;

/// Below this many items a pass runs on the calling thread.
pub(crate) const PARALLEL_MIN: usize = 1 << 16;

/// `work` over contiguous pieces of `0..len`, in order: one piece per rayon thread, each at
/// least `min_piece` long (a single piece, run here, when `len` is small).
pub(crate) fn split_work<T, F>(len: usize, min_piece: usize, work: F) -> Vec<T>
where
    T: Send,
    F: Fn(Range<usize>) -> T + Sync,
{
    let pieces = (len / min_piece.max(1)).clamp(1, rayon::current_num_threads().max(1));
    if pieces == 1 {
        return vec![work(0..len)];
    }
    let step = len.div_ceil(pieces);
    (0..pieces)
        .into_par_iter()
        .map(|piece| {
            let start = (piece * step).min(len);
            work(start..(start + step).min(len))
        })
        .collect()
}

/// Sorts in parallel when `items` is large.
pub(crate) fn sort_items<K: Ord + Send>(items: &mut [K]) {
    if items.len() >= PARALLEL_MIN {
        items.par_sort_unstable();
    } else {
        items.sort_unstable();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_cover_the_range_in_order() {
        for len in [0, 1, 5, PARALLEL_MIN - 1, 3 * PARALLEL_MIN + 7] {
            let pieces = split_work(len, PARALLEL_MIN, |range| range);
            assert_eq!(pieces.first().map(|range| range.start), Some(0));
            assert_eq!(pieces.last().map(|range| range.end), Some(len));
            for pair in pieces.windows(2) {
                assert_eq!(pair[0].end, pair[1].start);
            }
        }
    }
}
