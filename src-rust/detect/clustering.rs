//! Clustering (SPEC §6): the connected components of the graph joining two tasks when they
//! share at least one metric and their Euclidean distance over the shared metrics is below
//! the threshold. Order-independent (the seed's greedy clustering was not).
//!
//! Tasks are grouped by the set of metrics they have. Within a group a kd-tree over its
//! metrics finds the close pairs; between two groups a kd-tree over one group's projection
//! onto the shared metrics is queried with the other group's points. Edges go straight into
//! a lock-free union-find shared by the rayon workers, so the pair list is never
//! materialised; nodes of the tree whose bounding box is narrower than the threshold are
//! cliques, connected once up front and then treated as single points.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

use rayon::prelude::*;

use super::kdtree::{KdTree, NeighbourSink};
use super::{check_deadline, column_length};
use crate::error::{CoreError, CoreResult};
use crate::rng::SplitMix64;

/// The clusters found by [`cluster_components`].
#[derive(Debug, Clone, PartialEq)]
pub struct Clusters {
    /// Per task: its cluster number, or -1 when it is in no cluster (a component of one).
    pub labels: Vec<i64>,
    /// Per cluster: the mean distance over its member pairs that share a metric.
    pub avg_distance: Vec<f64>,
    /// Per cluster: whether `avg_distance` was estimated from a sample of pairs.
    pub sampled: Vec<bool>,
}

/// Clusters up to this size get an exact average pairwise distance.
pub const EXACT_AVERAGE_MAX_MEMBERS: usize = 4096;
/// Base of the SplitMix64 seed of a larger cluster's pair sample (plus the cluster number).
pub const SAMPLE_SEED_BASE: u64 = 0x5EED_C1A5_7E00_0000;
/// Outputs drawn for a cluster's pair sample (two per pair).
pub const SAMPLE_DRAWS: usize = 240_000;

const STAGE: &str = "clustering";
/// Query points per parallel work item (the deadline is checked once per item).
const QUERY_CHUNK: usize = 256;
/// Two groups with at most this many cross pairs are compared pair by pair.
const BRUTE_FORCE_MAX_PAIRS: usize = 4096;
/// Marks a task that has no metric.
const NO_GROUP: u32 = u32::MAX;

/// Connected components of the "distance < threshold" graph (kernels.md):
/// - tasks i, j are joined when they share >= 1 metric and `sqrt(d2) < threshold`, d2 the
///   sum over the shared metrics, in column order, of (a - b)², accumulated sequentially;
/// - clusters are the components with >= 2 tasks, numbered in order of their first member;
/// - `avg_distance[c]`: exact mean over member pairs (a < b) sharing a metric when the cluster
///   has <= 4096 members; otherwise the mean over a sample: SplitMix64 stream
///   `0x5EED_C1A5_7E00_0000 + c`, pair s = (u₂ₛ % k, u₂ₛ₊₁ % k) over the members in recording
///   order for s < 120,000, skipping a == b and pairs sharing no metric (NaN if none is left).
///
/// `threshold` must be finite and > 0. `deadline`: past it, the work stops with
/// `CoreError::Timeout { stage: "clustering" }`. With no columns, n is 0.
pub fn cluster_components(
    columns: &[&[f64]],
    threshold: f64,
    deadline: Option<Instant>,
) -> CoreResult<Clusters> {
    if !(threshold.is_finite() && threshold > 0.0) {
        return Err(CoreError::invalid(
            "threshold",
            format!("threshold must be finite and > 0, got {threshold}"),
        ));
    }
    let n = column_length(columns)?;
    if n >= NO_GROUP as usize {
        return Err(CoreError::invalid(
            "columns",
            format!(
                "columns has {n} tasks; at most {} are supported",
                NO_GROUP - 1
            ),
        ));
    }
    check_deadline(deadline, STAGE)?;
    let t2 = squared_threshold(threshold);
    let (groups, group_of) = group_by_metrics(columns, n);
    let union_find = ConcurrentUnionFind::new(n);

    // Pairs inside each group.
    let mut trees = Vec::with_capacity(groups.len());
    for group in &groups {
        check_deadline(deadline, STAGE)?;
        let points = gather_points(columns, &group.dims, &group.members);
        let tree = KdTree::build(&points, &group.members, group.dims.len(), Some(t2));
        self_join(&tree, &union_find, t2, deadline)?;
        trees.push(tree);
    }
    // Pairs across groups sharing some metrics.
    cross_join_all(columns, &groups, &trees, &union_find, t2, deadline)?;
    drop(trees);

    check_deadline(deadline, STAGE)?;
    let (labels, members) = components(&union_find, n);
    let averages: Vec<(f64, bool)> = members
        .par_iter()
        .enumerate()
        .map(|(cluster, members)| {
            average_distance(columns, &groups, &group_of, cluster, members, deadline)
        })
        .collect::<CoreResult<_>>()?;
    let (avg_distance, sampled) = averages.into_iter().unzip();
    Ok(Clusters {
        labels,
        avg_distance,
        sampled,
    })
}

/// The smallest t2 with `sqrt(t2) >= threshold`, so that `d2 < t2` ⟺ `sqrt(d2) < threshold`
/// for every d2 (sqrt is monotonic): the edge test without a square root per pair.
fn squared_threshold(threshold: f64) -> f64 {
    let next_up = |x: f64| f64::from_bits(x.to_bits() + 1);
    let next_down = |x: f64| f64::from_bits(x.to_bits() - 1);
    let mut t2 = threshold * threshold;
    // Correctly rounded sqrt makes each loop run at most a couple of times.
    for _ in 0..64 {
        if t2 < f64::INFINITY && t2.sqrt() < threshold {
            t2 = next_up(t2);
        } else {
            break;
        }
    }
    for _ in 0..64 {
        if t2 > 0.0 && next_down(t2).sqrt() >= threshold {
            t2 = next_down(t2);
        } else {
            break;
        }
    }
    t2
}

/// Tasks having exactly the same metrics.
struct Group {
    /// Presence bitset (bit k = metric k).
    mask: Vec<u64>,
    /// The metrics, in column order.
    dims: Vec<usize>,
    /// The tasks, in recording order.
    members: Vec<u32>,
}

/// Groups the tasks that have at least one metric by their metric set (groups in order of
/// first appearance); also returns each task's group (`NO_GROUP` for tasks with no metric).
fn group_by_metrics(columns: &[&[f64]], n: usize) -> (Vec<Group>, Vec<u32>) {
    let words = columns.len().div_ceil(64);
    let mut masks = vec![0u64; n * words];
    for (metric, column) in columns.iter().enumerate() {
        let (word, bit) = (metric / 64, 1u64 << (metric % 64));
        for (task, value) in column.iter().enumerate() {
            if !value.is_nan() {
                masks[task * words + word] |= bit;
            }
        }
    }
    let mut groups: Vec<Group> = Vec::new();
    let mut index: HashMap<&[u64], u32> = HashMap::new();
    let mut group_of = vec![NO_GROUP; n];
    let mut previous: Option<(&[u64], u32)> = None;
    for task in 0..n {
        let mask = &masks[task * words..(task + 1) * words];
        if mask.iter().all(|&word| word == 0) {
            continue;
        }
        let group = match previous {
            Some((last, group)) if last == mask => group,
            _ => *index.entry(mask).or_insert_with(|| {
                let dims = (0..columns.len())
                    .filter(|&metric| mask[metric / 64] & (1u64 << (metric % 64)) != 0)
                    .collect();
                groups.push(Group {
                    mask: mask.to_vec(),
                    dims,
                    members: Vec::new(),
                });
                (groups.len() - 1) as u32
            }),
        };
        previous = Some((mask, group));
        groups[group as usize].members.push(task as u32);
        group_of[task] = group;
    }
    (groups, group_of)
}

/// Row-major coordinates of `tasks` over the metrics `dims`.
fn gather_points(columns: &[&[f64]], dims: &[usize], tasks: &[u32]) -> Vec<f64> {
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

/// Joins every close pair inside one tree (each pair once: positions after the query's).
fn self_join(
    tree: &KdTree,
    union_find: &ConcurrentUnionFind,
    t2: f64,
    deadline: Option<Instant>,
) -> CoreResult<()> {
    for clique in tree.maximal_cliques() {
        let first = tree.id(clique.start);
        for position in clique.start + 1..clique.end {
            union_find.union(first, tree.id(position));
        }
    }
    let chunks = tree.len().div_ceil(QUERY_CHUNK);
    (0..chunks)
        .into_par_iter()
        .try_for_each_init(Vec::new, |stack, chunk| {
            check_deadline(deadline, STAGE)?;
            let end = ((chunk + 1) * QUERY_CHUNK).min(tree.len());
            for position in chunk * QUERY_CHUNK..end {
                let mut sink = UnionSink::new(union_find, tree.id(position));
                tree.query(tree.point(position), t2, position + 1, stack, &mut sink);
            }
            Ok(())
        })
}

/// Joins the points `queries` (row-major over the tree's dimensions, ids `query_ids`) to
/// the close points of `tree`.
fn cross_join(
    tree: &KdTree,
    queries: &[f64],
    query_ids: &[u32],
    union_find: &ConcurrentUnionFind,
    t2: f64,
    deadline: Option<Instant>,
) -> CoreResult<()> {
    let dims = tree.dims();
    let chunks = query_ids.len().div_ceil(QUERY_CHUNK);
    (0..chunks)
        .into_par_iter()
        .try_for_each_init(Vec::new, |stack, chunk| {
            check_deadline(deadline, STAGE)?;
            let end = ((chunk + 1) * QUERY_CHUNK).min(query_ids.len());
            for row in chunk * QUERY_CHUNK..end {
                let mut sink = UnionSink::new(union_find, query_ids[row]);
                tree.query(
                    &queries[row * dims..(row + 1) * dims],
                    t2,
                    0,
                    stack,
                    &mut sink,
                );
            }
            Ok(())
        })
}

/// Joins close pairs across every two groups that share metrics.
///
/// For a pair of groups with shared metrics S, the tree is the self tree of a group whose
/// metrics are exactly S (its cliques stay valid), else a tree over the projection onto S of
/// the larger group; the other group's points are the queries. Pairs are processed by
/// (tree group, S) so each projection is built once and dropped after use. Small pairs of
/// groups are compared directly.
fn cross_join_all(
    columns: &[&[f64]],
    groups: &[Group],
    trees: &[KdTree],
    union_find: &ConcurrentUnionFind,
    t2: f64,
    deadline: Option<Instant>,
) -> CoreResult<()> {
    // (tree group, shared mask, query group)
    let mut jobs: Vec<(usize, Vec<u64>, usize)> = Vec::new();
    for g in 0..groups.len() {
        check_deadline(deadline, STAGE)?;
        for h in g + 1..groups.len() {
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
                brute_force_join(columns, &shared, &groups[g], &groups[h], union_find, t2);
                continue;
            }
            let tree_side = if shared == groups[g].mask {
                g
            } else if shared == groups[h].mask || size_h > size_g {
                h
            } else {
                g
            };
            let query_side = if tree_side == g { h } else { g };
            jobs.push((tree_side, shared, query_side));
        }
    }
    jobs.sort();
    let mut start = 0;
    while start < jobs.len() {
        let (tree_side, ref shared, _) = jobs[start];
        let mut end = start;
        while end < jobs.len() && jobs[end].0 == tree_side && jobs[end].1 == *shared {
            end += 1;
        }
        check_deadline(deadline, STAGE)?;
        let group = &groups[tree_side];
        let dims = mask_dims(shared, columns.len());
        let projected;
        let tree = if *shared == group.mask {
            &trees[tree_side]
        } else {
            let points = gather_points(columns, &dims, &group.members);
            projected = KdTree::build(&points, &group.members, dims.len(), None);
            &projected
        };
        let query_ids: Vec<u32> = jobs[start..end]
            .iter()
            .flat_map(|job| groups[job.2].members.iter().copied())
            .collect();
        let queries = gather_points(columns, &dims, &query_ids);
        cross_join(tree, &queries, &query_ids, union_find, t2, deadline)?;
        start = end;
    }
    Ok(())
}

/// The metrics of a presence bitset, in column order.
fn mask_dims(mask: &[u64], metrics: usize) -> Vec<usize> {
    (0..metrics)
        .filter(|&metric| mask[metric / 64] & (1u64 << (metric % 64)) != 0)
        .collect()
}

/// Compares every task of `a` with every task of `b` over the metrics in `shared`.
fn brute_force_join(
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

/// Per task its cluster label (-1 outside clusters), and each cluster's members in
/// recording order; clusters numbered in order of their first member.
fn components(union_find: &ConcurrentUnionFind, n: usize) -> (Vec<i64>, Vec<Vec<u32>>) {
    let roots: Vec<u32> = (0..n as u32)
        .into_par_iter()
        .map(|task| union_find.find(task))
        .collect();
    let mut sizes = vec![0u32; n];
    for &root in &roots {
        sizes[root as usize] += 1;
    }
    let mut label_of_root = vec![-1i64; n];
    let mut labels = vec![-1i64; n];
    let mut members: Vec<Vec<u32>> = Vec::new();
    for (task, &root) in roots.iter().enumerate() {
        if sizes[root as usize] < 2 {
            continue;
        }
        if label_of_root[root as usize] < 0 {
            label_of_root[root as usize] = members.len() as i64;
            members.push(Vec::with_capacity(sizes[root as usize] as usize));
        }
        let label = label_of_root[root as usize];
        labels[task] = label;
        members[label as usize].push(task as u32);
    }
    (labels, members)
}

/// (avg_distance, sampled) of one cluster.
fn average_distance(
    columns: &[&[f64]],
    groups: &[Group],
    group_of: &[u32],
    cluster: usize,
    members: &[u32],
    deadline: Option<Instant>,
) -> CoreResult<(f64, bool)> {
    check_deadline(deadline, STAGE)?;
    if members.len() > EXACT_AVERAGE_MAX_MEMBERS {
        return Ok((sampled_average(columns, cluster, members), true));
    }
    let group = group_of[members[0] as usize];
    let uniform = members.iter().all(|&task| group_of[task as usize] == group);
    let average = if uniform {
        exact_average_uniform(columns, &groups[group as usize].dims, members, deadline)?
    } else {
        exact_average_mixed(columns, members, deadline)?
    };
    Ok((average, false))
}

/// Exact mean distance when every member has the same metrics `dims` (all pairs count).
fn exact_average_uniform(
    columns: &[&[f64]],
    dims: &[usize],
    members: &[u32],
    deadline: Option<Instant>,
) -> CoreResult<f64> {
    let k = members.len();
    let coordinates: Vec<Vec<f64>> = dims
        .iter()
        .map(|&dim| {
            members
                .iter()
                .map(|&task| columns[dim][task as usize])
                .collect()
        })
        .collect();
    let row_sums: Vec<f64> = (0..k.saturating_sub(1))
        .into_par_iter()
        .map_init(Vec::new, |squared, a| {
            if a % 64 == 0 {
                check_deadline(deadline, STAGE)?;
            }
            // squared[b - a - 1] = d2(a, b), accumulated metric by metric (column order).
            squared.clear();
            squared.resize(k - a - 1, 0.0);
            for column in &coordinates {
                let origin = column[a];
                for (d2, &value) in squared.iter_mut().zip(&column[a + 1..]) {
                    let difference = value - origin;
                    *d2 += difference * difference;
                }
            }
            // Four independent partial sums let the square roots vectorise.
            let mut lanes = [0.0f64; 4];
            let chunks = squared.chunks_exact(4);
            let remainder = chunks.remainder();
            for chunk in chunks {
                for (lane, &d2) in lanes.iter_mut().zip(chunk) {
                    *lane += d2.sqrt();
                }
            }
            let mut sum = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
            for &d2 in remainder {
                sum += d2.sqrt();
            }
            Ok(sum)
        })
        .collect::<CoreResult<_>>()?;
    let pairs = (k * (k - 1) / 2) as f64;
    Ok(row_sums.iter().sum::<f64>() / pairs)
}

/// Exact mean distance over the member pairs that share a metric (members with different
/// metric sets).
fn exact_average_mixed(
    columns: &[&[f64]],
    members: &[u32],
    deadline: Option<Instant>,
) -> CoreResult<f64> {
    let m = columns.len();
    let k = members.len();
    let mut rows = vec![0.0; k * m];
    for (metric, column) in columns.iter().enumerate() {
        for (row, &task) in members.iter().enumerate() {
            rows[row * m + metric] = column[task as usize];
        }
    }
    let row_totals: Vec<(f64, usize)> = (0..k.saturating_sub(1))
        .into_par_iter()
        .map(|a| {
            if a % 64 == 0 {
                check_deadline(deadline, STAGE)?;
            }
            let origin = &rows[a * m..(a + 1) * m];
            let mut sum = 0.0;
            let mut count = 0usize;
            for b in a + 1..k {
                if let Some(distance) = shared_distance(origin, &rows[b * m..(b + 1) * m]) {
                    sum += distance;
                    count += 1;
                }
            }
            Ok((sum, count))
        })
        .collect::<CoreResult<_>>()?;
    let (sum, count) = row_totals
        .iter()
        .fold((0.0, 0usize), |(s, c), &(rs, rc)| (s + rs, c + rc));
    Ok(if count == 0 {
        f64::NAN
    } else {
        sum / count as f64
    })
}

/// Estimated mean distance of a large cluster from its fixed-seed pair sample.
fn sampled_average(columns: &[&[f64]], cluster: usize, members: &[u32]) -> f64 {
    let k = members.len() as u64;
    let mut rng = SplitMix64::new(SAMPLE_SEED_BASE.wrapping_add(cluster as u64));
    let mut sum = 0.0;
    let mut count = 0usize;
    for _ in 0..SAMPLE_DRAWS / 2 {
        let a = rng.next_below(k) as usize;
        let b = rng.next_below(k) as usize;
        if a == b {
            continue;
        }
        let (i, j) = (members[a] as usize, members[b] as usize);
        let mut shared = false;
        let mut d2 = 0.0;
        for column in columns {
            let (x, y) = (column[i], column[j]);
            if !x.is_nan() && !y.is_nan() {
                shared = true;
                let difference = x - y;
                d2 += difference * difference;
            }
        }
        if shared {
            sum += d2.sqrt();
            count += 1;
        }
    }
    if count == 0 {
        f64::NAN
    } else {
        sum / count as f64
    }
}

/// Distance over the metrics both rows have (NaN = absent), None when they share none.
#[inline]
fn shared_distance(a: &[f64], b: &[f64]) -> Option<f64> {
    let mut shared = false;
    let mut d2 = 0.0;
    for (&x, &y) in a.iter().zip(b) {
        if !x.is_nan() && !y.is_nan() {
            shared = true;
            let difference = x - y;
            d2 += difference * difference;
        }
    }
    shared.then(|| d2.sqrt())
}

/// A union-find that many threads may update at once: roots are linked by compare-and-swap
/// (the larger index under the smaller, so no cycle can form) and paths are halved on the
/// way up. Components only ever merge, so a "same root" answer is always final.
struct ConcurrentUnionFind {
    parent: Vec<AtomicU32>,
}

impl ConcurrentUnionFind {
    fn new(n: usize) -> Self {
        ConcurrentUnionFind {
            parent: (0..n as u32).map(AtomicU32::new).collect(),
        }
    }

    /// The current root of `x`'s component.
    #[inline]
    fn find(&self, mut x: u32) -> u32 {
        loop {
            let parent = self.parent[x as usize].load(Ordering::Acquire);
            if parent == x {
                return x;
            }
            let grandparent = self.parent[parent as usize].load(Ordering::Acquire);
            if grandparent != parent {
                // Path halving; losing the race only means someone else moved x up first.
                let _ = self.parent[x as usize].compare_exchange_weak(
                    parent,
                    grandparent,
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                );
            }
            x = grandparent;
        }
    }

    /// Merges the components of `a` and `b`; returns the merged component's root.
    #[inline]
    fn union(&self, a: u32, b: u32) -> u32 {
        let (mut root_a, mut root_b) = (self.find(a), self.find(b));
        loop {
            if root_a == root_b {
                return root_a;
            }
            let (child, root) = if root_a > root_b {
                (root_a, root_b)
            } else {
                (root_b, root_a)
            };
            match self.parent[child as usize].compare_exchange(
                child,
                root,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return root,
                Err(_) => {
                    root_a = self.find(root_a);
                    root_b = self.find(root_b);
                }
            }
        }
    }
}

/// Feeds one query's neighbours into the union-find, remembering the query's root.
struct UnionSink<'a> {
    union_find: &'a ConcurrentUnionFind,
    root: u32,
}

impl<'a> UnionSink<'a> {
    fn new(union_find: &'a ConcurrentUnionFind, task: u32) -> Self {
        UnionSink {
            union_find,
            root: union_find.find(task),
        }
    }
}

impl NeighbourSink for UnionSink<'_> {
    #[inline]
    fn joined(&mut self, member: u32) -> bool {
        let other = self.union_find.find(member);
        if other == self.root {
            return true;
        }
        // Our remembered root may have been linked under another since.
        self.root = self.union_find.find(self.root);
        other == self.root
    }

    #[inline]
    fn edge(&mut self, id: u32) {
        // A former root still leads to the component's current root.
        self.root = self.union_find.union(self.root, id);
    }
}
