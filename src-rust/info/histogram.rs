//! Counting cells and the Shannon entropy of the counts.
//!
//! A count table is dense (one slot per cell, one table per thread, summed) only when the
//! number of cells is small next to the number of samples; otherwise the occupied cells are
//! found by sorting the cell codes. Either way memory stays proportional to the data, for
//! any number of bins, and counts come out in ascending cell order, so both ways sum the
//! same terms in the same order.

use std::ops::Range;

use rayon::prelude::*;

use crate::info::binning::Binning;
use crate::info::parallel::{sort_items, split_work, PARALLEL_MIN};
use crate::info::sort::sort_codes;

/// Whether a dense table of `cells` slots is cheap next to `samples` samples.
pub(crate) fn dense_fits(cells: u128, samples: usize) -> bool {
    cells <= 2 * samples as u128 + 1024
}

/// Items per block: the code buffers of a block live on the stack, in L1.
pub(crate) const BLOCK: usize = 512;

/// A dense count table. Small tables keep four interleaved copies, so that runs of equal
/// codes do not serialise on one counter.
pub(crate) struct DenseCounts {
    slots: Vec<u64>,
    cells: usize,
}

/// Tables up to this many cells get four interleaved copies.
const INTERLEAVE_MAX: usize = 1 << 12;

impl DenseCounts {
    fn new(cells: usize) -> DenseCounts {
        let copies = if cells <= INTERLEAVE_MAX { 4 } else { 1 };
        DenseCounts {
            slots: vec![0; cells * copies],
            cells,
        }
    }

    /// Counts each code (codes are below `cells` by construction; an out-of-range code is
    /// ignored rather than allowed to panic).
    #[inline]
    pub(crate) fn add_all<C: Copy + Into<u64>>(&mut self, codes: &[C]) {
        if self.slots.len() == self.cells {
            for &code in codes {
                tally(&mut self.slots, code.into());
            }
            return;
        }
        let (first, rest) = self.slots.split_at_mut(self.cells);
        let (second, rest) = rest.split_at_mut(self.cells);
        let (third, fourth) = rest.split_at_mut(self.cells);
        let mut quads = codes.chunks_exact(4);
        for quad in &mut quads {
            tally(first, quad[0].into());
            tally(second, quad[1].into());
            tally(third, quad[2].into());
            tally(fourth, quad[3].into());
        }
        for &code in quads.remainder() {
            tally(first, code.into());
        }
    }

    fn into_counts(self) -> Vec<u64> {
        let (first, rest) = self.slots.split_at(self.cells);
        let mut counts = first.to_vec();
        for copy in rest.chunks_exact(self.cells.max(1)) {
            for (sum, &count) in counts.iter_mut().zip(copy) {
                *sum += count;
            }
        }
        counts
    }
}

/// `cells` counters filled by `fill` over pieces of `0..len`: one table per thread (only
/// when each thread has several samples per cell), summed.
pub(crate) fn dense_counts<F>(len: usize, cells: usize, fill: F) -> Vec<u64>
where
    F: Fn(Range<usize>, &mut DenseCounts) + Sync,
{
    let min_piece = PARALLEL_MIN.max(cells.saturating_mul(4));
    let mut tables = split_work(len, min_piece, |range| {
        let mut counts = DenseCounts::new(cells);
        fill(range, &mut counts);
        counts.into_counts()
    })
    .into_iter();
    let mut total = tables.next().unwrap_or_else(|| vec![0u64; cells]);
    for table in tables {
        for (sum, count) in total.iter_mut().zip(table) {
            *sum += count;
        }
    }
    total
}

/// Adds one to `table[code]` (`get_mut`: an out-of-range code cannot panic).
#[inline(always)]
fn tally(table: &mut [u64], code: u64) {
    if let Some(slot) = table.get_mut(code as usize) {
        *slot += 1;
    }
}

/// Entropy (bits) of the histogram of non-empty `values`.
pub(crate) fn histogram_entropy(values: &[f64], binning: &Binning) -> f64 {
    let counts = frequencies(values, binning).into_iter().map(|(_, c)| c);
    entropy_of_counts(counts, values.len())
}

/// `(bin, count)` of every occupied bin of `values`, in ascending bin order.
pub(crate) fn frequencies(values: &[f64], binning: &Binning) -> Vec<(u64, u64)> {
    let bins = binning.bins();
    if dense_fits(u128::from(bins), values.len()) {
        let table = dense_counts(values.len(), bins as usize, |range, counts| {
            let mut codes = [0u64; BLOCK];
            for block in values[range].chunks(BLOCK) {
                let codes = &mut codes[..block.len()];
                binning.indices(block, codes);
                counts.add_all(codes);
            }
        });
        return occupied(&table);
    }
    let mut indices = cell_codes(&[(values, binning)]);
    sort_codes(&mut indices);
    runs(&indices)
}

/// Joint entropy (bits) of the cells of paired series (equal lengths), each binned by its
/// own binning: a dense table when the cells are few, else sorted mixed-radix codes.
/// `None` when the number of cells does not fit in a u64 code.
pub(crate) fn joint_entropy_of(coordinates: &[(&[f64], &Binning)]) -> Option<f64> {
    let len = coordinates.first().map_or(0, |(values, _)| values.len());
    let cells = coordinates.iter().try_fold(1u64, |cells, (_, binning)| {
        cells.checked_mul(binning.bins())
    })?;
    if dense_fits(u128::from(cells), len) {
        let table = dense_counts(len, cells as usize, |range, counts| {
            let mut codes = [0u64; BLOCK];
            for start in range.clone().step_by(BLOCK) {
                let block = start..(start + BLOCK).min(range.end);
                let codes = &mut codes[..block.len()];
                fill_codes(coordinates, block.start, codes);
                counts.add_all(codes);
            }
        });
        return Some(entropy_of_counts(table, len));
    }
    let mut codes = cell_codes(coordinates);
    sort_codes(&mut codes);
    Some(entropy_of_counts(
        runs(&codes).into_iter().map(|(_, count)| count),
        len,
    ))
}

/// The mixed-radix cell code of every sample (in parallel when many); the caller keeps the
/// product of the bin counts within u64.
pub(crate) fn cell_codes(coordinates: &[(&[f64], &Binning)]) -> Vec<u64> {
    const PIECE: usize = BLOCK * 64;
    let len = coordinates.first().map_or(0, |(values, _)| values.len());
    let mut codes = vec![0u64; len];
    if len >= PARALLEL_MIN {
        codes
            .par_chunks_mut(PIECE)
            .enumerate()
            .for_each(|(piece, out)| fill_codes(coordinates, piece * PIECE, out));
    } else {
        fill_codes(coordinates, 0, &mut codes);
    }
    codes
}

/// `codes[i]` = the cell code of sample `offset + i`.
fn fill_codes(coordinates: &[(&[f64], &Binning)], offset: usize, codes: &mut [u64]) {
    for (k, (values, binning)) in coordinates.iter().enumerate() {
        let Some(values) = values.get(offset..offset + codes.len()) else {
            continue;
        };
        if k == 0 {
            binning.indices(values, codes);
        } else {
            binning.push_indices(values, binning.bins(), codes);
        }
    }
}

/// `(cell, count)` of the nonzero slots of a dense table.
pub(crate) fn occupied(table: &[u64]) -> Vec<(u64, u64)> {
    table
        .iter()
        .enumerate()
        .filter(|&(_, &count)| count > 0)
        .map(|(cell, &count)| (cell as u64, count))
        .collect()
}

/// `(code, run length)` of a sorted slice.
pub(crate) fn runs(sorted: &[u64]) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    for &code in sorted {
        match out.last_mut() {
            Some((last, count)) if *last == code => *count += 1,
            _ => out.push((code, 1)),
        }
    }
    out
}

/// A compensated (Neumaier) sum: the entropies of many cells are differences of sums of up
/// to n terms, and plain left-to-right addition would lose digits the NumPy backend's
/// pairwise sum keeps.
#[derive(Clone, Copy, Default)]
pub(crate) struct Sum {
    total: f64,
    compensation: f64,
}

impl Sum {
    #[inline]
    pub(crate) fn add(&mut self, term: f64) {
        let total = self.total + term;
        self.compensation += if self.total.abs() >= term.abs() {
            (self.total - total) + term
        } else {
            (term - total) + self.total
        };
        self.total = total;
    }

    pub(crate) fn value(self) -> f64 {
        if self.total.is_finite() {
            self.total + self.compensation
        } else {
            // An infinite term (KL where the baseline has no mass): the compensation is NaN.
            self.total
        }
    }
}

/// `-p log2 p`, the entropy term of a cell holding `count` of `total` samples.
#[inline]
pub(crate) fn surprise(count: u64, total: f64) -> f64 {
    let p = count as f64 / total;
    -(p * p.log2())
}

/// Shannon entropy in bits, `-Σ p log2 p` with `p = count / total`, zero counts skipped,
/// summed left to right in the given order: the one entropy-of-counts of the crate (the
/// detectors' permutation tests compare statistics exactly, and the NumPy backend's
/// `entropy_of_counts` sums the same terms in the same order, so both give the same bits).
/// 0 for total 0.
pub(crate) fn entropy_of_counts(counts: impl IntoIterator<Item = u64>, total: usize) -> f64 {
    let total = total as f64;
    let mut entropy = 0.0;
    for count in counts {
        if count > 0 {
            entropy += surprise(count, total);
        }
    }
    entropy
}

/// Entropies of the leading 1, 2, …, D coordinates of sorted code tuples (runs of equal
/// prefixes), in one pass: `result[k]` is the joint entropy of coordinates `0..=k`.
pub(crate) fn prefix_entropies<const D: usize>(sorted: &[[u64; D]]) -> [f64; D] {
    let mut entropy = [Sum::default(); D];
    let total = sorted.len() as f64;
    let mut run_start = [0usize; D];
    for end in 1..=sorted.len() {
        // The shortest prefix that changes at `end` (D: none, 0 at the end of the data).
        let changed = match (sorted.get(end - 1), sorted.get(end)) {
            (Some(before), Some(after)) => (0..D).find(|&k| before[k] != after[k]).unwrap_or(D),
            _ => 0,
        };
        for level in changed..D {
            entropy[level].add(surprise((end - run_start[level]) as u64, total));
            run_start[level] = end;
        }
    }
    entropy.map(Sum::value)
}

/// Sorts code tuples (in parallel when many) for [`prefix_entropies`].
pub(crate) fn sorted<const D: usize>(mut codes: Vec<[u64; D]>) -> Vec<[u64; D]> {
    sort_items(&mut codes);
    codes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compensated_sum_keeps_small_terms() {
        let mut sum = Sum::default();
        for term in [1.0, 1e-16, 1e-16, -1.0] {
            sum.add(term);
        }
        assert_eq!(sum.value(), 2e-16);
        // A thousand 0.1s: plain addition drifts by about 1e-13.
        let mut sum = Sum::default();
        for _ in 0..1000 {
            sum.add(0.1);
        }
        assert_eq!(sum.value(), 100.0);
    }

    #[test]
    fn entropy_of_uniform_counts() {
        assert_eq!(entropy_of_counts([1, 1, 1, 1], 4), 2.0);
        assert_eq!(entropy_of_counts([0, 8, 0], 8), 0.0);
        assert_eq!(entropy_of_counts([], 0), 0.0);
    }

    #[test]
    fn prefix_entropies_match_counts() {
        let codes = sorted(vec![[1, 0], [0, 0], [0, 1], [0, 1]]);
        let [first, both] = prefix_entropies(&codes);
        assert_eq!(first, entropy_of_counts([3, 1], 4));
        assert_eq!(both, entropy_of_counts([1, 2, 1], 4));
        assert_eq!(prefix_entropies::<2>(&[]), [0.0, 0.0]);
    }

    #[test]
    fn dense_and_sorted_frequencies_agree() {
        let values: Vec<f64> = (0..1000).map(|i| ((i * 37) % 101) as f64).collect();
        let small = Binning::new(0.0, 100.0, 50);
        let large = Binning::new(0.0, 100.0, 1 << 40);
        let dense = frequencies(&values, &small);
        assert_eq!(dense.iter().map(|&(_, c)| c).sum::<u64>(), 1000);
        let sparse = frequencies(&values, &large);
        assert_eq!(sparse.len(), 101);
        assert_eq!(sparse.iter().map(|&(_, c)| c).sum::<u64>(), 1000);
    }
}
