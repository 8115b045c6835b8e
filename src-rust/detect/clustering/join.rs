//! The joins that find every pair of tasks closer than the threshold: a kd-tree per group
//! of tasks with the same metrics joined with itself, and trees over shared metrics joined
//! across groups (small pairs of groups compared directly).

use rayon::prelude::*;

use super::kdtree::KdTree;
use super::union_find::{ConcurrentUnionFind, UnionSink};
use super::{Group, BRUTE_FORCE_MAX_PAIRS, MAX_INDEXED_DIMS};
use crate::error::CoreResult;

/// Per metric, the standard deviation of its present values (NaN when it has none): how
/// well a metric separates tasks, to pick the ones a kd-tree's boxes cover.
pub(super) fn metric_spreads(columns: &[&[f64]]) -> Vec<f64> {
    columns
        .par_iter()
        .map(|column| {
            let present = || column.iter().copied().filter(|v| !v.is_nan());
            let (count, sum) = present().fold((0usize, 0.0), |(c, s), v| (c + 1, s + v));
            let mean = sum / count as f64;
            let sum_of_squares = present().fold(0.0, |s, v| s + (v - mean) * (v - mean));
            (sum_of_squares / count as f64).sqrt()
        })
        .collect()
}

/// Positions within `dims` of the metrics a tree over `dims` indexes: all of them up to
/// `MAX_INDEXED_DIMS`, else the ones of largest spread (ties: column order), ascending.
/// The same metric set always gives the same choice, so trees over it can be joined.
pub(super) fn indexed_positions(dims: &[usize], spreads: &[f64]) -> Vec<usize> {
    let mut positions: Vec<usize> = (0..dims.len()).collect();
    if dims.len() > MAX_INDEXED_DIMS {
        let rank = |position: usize| {
            let spread = spreads[dims[position]];
            if spread.is_nan() {
                f64::NEG_INFINITY
            } else {
                spread
            }
        };
        positions.sort_by(|&a, &b| rank(b).total_cmp(&rank(a)).then(a.cmp(&b)));
        positions.truncate(MAX_INDEXED_DIMS);
        positions.sort_unstable();
    }
    positions
}

/// A kd-tree over `tasks` projected onto the metrics `dims`.
pub(super) fn build_tree(
    columns: &[&[f64]],
    dims: &[usize],
    tasks: &[u32],
    spreads: &[f64],
    clique_below: Option<f64>,
) -> KdTree {
    let points = gather_points(columns, dims, tasks);
    let indexed = indexed_positions(dims, spreads);
    KdTree::build_indexed(points, tasks.to_vec(), dims.len(), indexed, clique_below)
}

/// Row-major coordinates of `tasks` over the metrics `dims`.
pub(super) fn gather_points(columns: &[&[f64]], dims: &[usize], tasks: &[u32]) -> Vec<f64> {
    let width = dims.len();
    let mut points = vec![0.0; tasks.len() * width];
    for (k, &dim) in dims.iter().enumerate() {
        let column = columns[dim];
        for (row, &task) in tasks.iter().enumerate() {
            points[row * width + k] = column[task as usize];
        }
    }
    points
}

/// Group pairs compared between two deadline checks of [`cross_join_all`].
const DEADLINE_STRIDE: usize = 256;

/// Joins close pairs across every two groups that share metrics.
///
/// For groups g, h sharing the metrics S, a tree over each group's points projected onto S
/// (the group's own tree, cliques included, when S is all its metrics) and the two trees are
/// joined. Pairs are processed by (larger group, S) so that group's projection is built once
/// per S and dropped after use. Small pairs of groups are compared directly.
pub(super) fn cross_join_all(
    columns: &[&[f64]],
    groups: &[Group],
    trees: &[KdTree],
    spreads: &[f64],
    sink: &UnionSink<'_>,
    t2: f64,
) -> CoreResult<()> {
    // (larger group, shared mask, smaller group)
    let mut jobs: Vec<(usize, Vec<u64>, usize)> = Vec::new();
    for g in 0..groups.len() {
        sink.check()?;
        for h in g + 1..groups.len() {
            // With tens of thousands of presence patterns one g's row of small brute-force
            // joins takes longer than a budget (60k x 64 with 5% gaps: ~0.4 s per row).
            if (h - g) % DEADLINE_STRIDE == 0 {
                sink.check()?;
            }
            let shared: Vec<u64> = groups[g]
                .mask
                .iter()
                .zip(&groups[h].mask)
                .map(|(a, b)| a & b)
                .collect();
            if shared.iter().all(|&word| word == 0) {
                continue;
            }
            let (size_g, size_h) = (groups[g].members.len(), groups[h].members.len());
            if size_g.saturating_mul(size_h) <= BRUTE_FORCE_MAX_PAIRS {
                brute_force_join(
                    columns,
                    &shared,
                    &groups[g],
                    &groups[h],
                    sink.union_find,
                    t2,
                );
            } else if size_h > size_g {
                jobs.push((h, shared, g));
            } else {
                jobs.push((g, shared, h));
            }
        }
    }
    jobs.sort();
    let project = |group: usize, shared: &[u64]| -> Option<KdTree> {
        if groups[group].mask == shared {
            return None;
        }
        let dims = mask_dims(shared, columns.len());
        Some(build_tree(
            columns,
            &dims,
            &groups[group].members,
            spreads,
            None,
        ))
    };
    let mut start = 0;
    while start < jobs.len() {
        let (larger, ref shared, _) = jobs[start];
        let projected_larger = project(larger, shared);
        let tree_larger = projected_larger.as_ref().unwrap_or(&trees[larger]);
        // Units found now stay valid (components only merge): once per tree is enough.
        tree_larger.refresh_units(sink);
        while start < jobs.len() && jobs[start].0 == larger && jobs[start].1 == *shared {
            sink.check()?;
            let smaller = jobs[start].2;
            let projected_smaller = project(smaller, shared);
            let tree_smaller = projected_smaller.as_ref().unwrap_or(&trees[smaller]);
            tree_smaller.refresh_units(sink);
            tree_larger.cross_join(tree_smaller, t2, sink);
            start += 1;
        }
    }
    sink.check()
}

/// The metrics of a presence bitset, in column order.
pub(super) fn mask_dims(mask: &[u64], metrics: usize) -> Vec<usize> {
    (0..metrics)
        .filter(|&metric| mask[metric / 64] & (1u64 << (metric % 64)) != 0)
        .collect()
}

/// Compares every task of `a` with every task of `b` over the metrics in `shared`.
pub(super) fn brute_force_join(
    columns: &[&[f64]],
    shared: &[u64],
    a: &Group,
    b: &Group,
    union_find: &ConcurrentUnionFind,
    t2: f64,
) {
    let dims = mask_dims(shared, columns.len());
    for &i in &a.members {
        for &j in &b.members {
            let mut d2 = 0.0;
            for &dim in &dims {
                let difference = columns[dim][i as usize] - columns[dim][j as usize];
                d2 += difference * difference;
            }
            if d2 < t2 {
                union_find.union(i, j);
            }
        }
    }
}
