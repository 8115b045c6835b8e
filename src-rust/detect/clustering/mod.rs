//! Clustering (SPEC §6): the connected components of the graph joining two tasks when they
//! share at least one metric and their Euclidean distance over the shared metrics is below
//! the threshold. Order-independent (the seed's greedy clustering was not).
//!
//! Tasks are grouped by the set of metrics they have. Within a group a kd-tree over its
//! metrics is joined with itself; between two groups, kd-trees over both groups' projections
//! onto the shared metrics are joined (dual-tree traversal, see `kdtree`). Edges go straight
//! into a lock-free union-find shared by the rayon workers, so the pair list is never
//! materialised; tree nodes whose bounding box is narrower than the threshold are cliques,
//! connected once and then treated as units.

mod average;
mod join;
pub mod kdtree;
mod union_find;

use std::collections::HashMap;

use rayon::prelude::*;

use super::shared::columns::column_length;
use super::{Detector, Table};
use crate::args::{Budget, DefaultValue, ParamSpec, Params};
use crate::error::{CoreError, CoreResult};
use average::average_distance;
use join::{build_tree, cross_join_all, metric_spreads};
use union_find::{components, ConcurrentUnionFind, UnionSink};

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

impl Clusters {
    /// The clusters as a table of [`FIELDS`].
    pub fn table(self) -> Table {
        Table::new()
            .with("label", self.labels)
            .with("avg_distance", self.avg_distance)
            .with("sampled", self.sampled)
    }
}

/// The registry entry.
pub const DETECTOR: Detector = Detector {
    name: "clustering",
    kind: "clustering",
    fields: FIELDS,
    params: &[ParamSpec {
        name: "threshold",
        default: DefaultValue::Float(2.5),
    }],
    run,
};

/// The result fields: `label` per task (empty when there are no columns), `avg_distance`
/// and `sampled` per cluster (see [`Clusters`]).
pub const FIELDS: &[&str] = &["label", "avg_distance", "sampled"];

fn run(columns: &[&[f64]], params: &Params, budget: &Budget) -> CoreResult<Table> {
    let threshold = params.finite("threshold", 0.0, false)?;
    Ok(cluster_components(columns, threshold, budget)?.table())
}

/// Clusters up to this size get an exact average pairwise distance.
pub const EXACT_AVERAGE_MAX_MEMBERS: usize = 4096;
/// Base of the SplitMix64 seed of a larger cluster's pair sample (plus the cluster number).
pub const SAMPLE_SEED_BASE: u64 = 0x5EED_C1A5_7E00_0000;
/// Outputs drawn for a cluster's pair sample (two per pair).
pub const SAMPLE_DRAWS: usize = 240_000;

pub(crate) const STAGE: &str = "clustering";
/// Two groups with at most this many cross pairs are compared pair by pair.
pub(crate) const BRUTE_FORCE_MAX_PAIRS: usize = 4096;
/// A kd-tree's boxes cover at most this many metrics (the most spread out): in more
/// dimensions boxes prune poorly and cost memory, while the leaves still compare tasks over
/// every metric. (On the benches' 1M × 16 workload, 4 ran ~1.7× faster than 8.)
pub(crate) const MAX_INDEXED_DIMS: usize = 4;
/// A sampled cluster's rows are copied together when they hold at most this many values.
pub(crate) const GATHER_MAX_VALUES: usize = 1 << 22;
/// Clusters up to this size compute their exact average on one worker.
pub(crate) const SEQUENTIAL_AVERAGE_MAX_MEMBERS: usize = 256;
/// Marks a task that has no metric.
pub(crate) const NO_GROUP: u32 = u32::MAX;

/// Connected components of the "distance < threshold" graph:
/// - tasks i, j are joined when they share >= 1 metric and `sqrt(d2) < threshold`, d2 the
///   sum over the shared metrics, in column order, of (a - b)², accumulated sequentially;
/// - clusters are the components with >= 2 tasks, numbered in order of their first member;
/// - `avg_distance[c]`: exact mean over member pairs (a < b) sharing a metric when the cluster
///   has <= 4096 members; otherwise the mean over a sample: SplitMix64 stream
///   `0x5EED_C1A5_7E00_0000 + c`, pair s = (u₂ₛ % k, u₂ₛ₊₁ % k) over the members in recording
///   order for s < 120,000, skipping a == b and pairs sharing no metric (NaN if none is left).
///
/// `threshold` finite and > 0 (checked by the caller). Past the budget's deadline the work
/// stops with `CoreError::Timeout { stage: "clustering" }`. With no columns, n is 0.
pub fn cluster_components(
    columns: &[&[f64]],
    threshold: f64,
    budget: &Budget,
) -> CoreResult<Clusters> {
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
    budget.check(STAGE)?;
    let t2 = squared_threshold(threshold);
    let (groups, group_of) = group_by_metrics(columns, n);
    let union_find = ConcurrentUnionFind::new(n);
    let sink = UnionSink::new(&union_find, *budget);
    // Only trees over more than MAX_INDEXED_DIMS metrics choose among them.
    let spreads = if groups.iter().any(|g| g.dims.len() > MAX_INDEXED_DIMS) {
        metric_spreads(columns)
    } else {
        Vec::new()
    };

    // Pairs inside each group.
    let mut trees = Vec::with_capacity(groups.len());
    for group in &groups {
        budget.check(STAGE)?;
        let tree = build_tree(columns, &group.dims, &group.members, &spreads, Some(t2));
        tree.self_join(t2, &sink);
        sink.check()?;
        trees.push(tree);
    }
    // Pairs across groups sharing some metrics.
    cross_join_all(columns, &groups, &trees, &spreads, &sink, t2)?;
    drop(trees);

    budget.check(STAGE)?;
    let (labels, members) = components(&union_find, n);
    let averages: Vec<(f64, bool)> = members
        .par_iter()
        .enumerate()
        .map(|(cluster, members)| {
            average_distance(columns, &groups, &group_of, cluster, members, budget)
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
pub(crate) struct Group {
    /// Presence bitset (bit k = metric k).
    pub(crate) mask: Vec<u64>,
    /// The metrics, in column order.
    pub(crate) dims: Vec<usize>,
    /// The tasks, in recording order.
    pub(crate) members: Vec<u32>,
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

#[cfg(test)]
mod tests {
    use super::join::indexed_positions;
    use super::*;
    use crate::rng::{splitmix64_output, SplitMix64};
    use std::time::{Duration, Instant};

    const NAN: f64 = f64::NAN;

    fn cluster(columns: &[&[f64]], threshold: f64) -> Clusters {
        cluster_components(columns, threshold, &Budget::unlimited()).unwrap()
    }

    /// The contract's distance over shared metrics (None when none is shared).
    fn reference_distance(columns: &[&[f64]], i: usize, j: usize) -> Option<f64> {
        let mut shared = false;
        let mut d2 = 0.0;
        for column in columns {
            if !column[i].is_nan() && !column[j].is_nan() {
                shared = true;
                d2 += (column[i] - column[j]) * (column[i] - column[j]);
            }
        }
        shared.then(|| d2.sqrt())
    }

    /// O(n²) reference: labels by first member, exact averages over sharing pairs.
    fn reference(columns: &[&[f64]], threshold: f64) -> (Vec<i64>, Vec<f64>) {
        let n = columns.first().map_or(0, |c| c.len());
        let mut parent: Vec<usize> = (0..n).collect();
        fn root(parent: &mut [usize], mut x: usize) -> usize {
            while parent[x] != x {
                parent[x] = parent[parent[x]];
                x = parent[x];
            }
            x
        }
        for i in 0..n {
            for j in i + 1..n {
                if reference_distance(columns, i, j).is_some_and(|d| d < threshold) {
                    let (a, b) = (root(&mut parent, i), root(&mut parent, j));
                    parent[a.max(b)] = a.min(b);
                }
            }
        }
        let roots: Vec<usize> = (0..n).map(|i| root(&mut parent, i)).collect();
        let mut labels = vec![-1i64; n];
        let mut next = 0;
        let mut members: Vec<Vec<usize>> = Vec::new();
        for i in 0..n {
            if roots.iter().filter(|&&r| r == roots[i]).count() < 2 {
                continue;
            }
            let first = (0..n).find(|&j| roots[j] == roots[i]).unwrap();
            if first == i {
                labels[i] = next;
                next += 1;
                members.push(vec![i]);
            } else {
                labels[i] = labels[first];
                members[labels[first] as usize].push(i);
            }
        }
        let averages = members
            .iter()
            .map(|members| {
                let (mut sum, mut count) = (0.0, 0);
                for (x, &a) in members.iter().enumerate() {
                    for &b in &members[x + 1..] {
                        if let Some(d) = reference_distance(columns, a, b) {
                            sum += d;
                            count += 1;
                        }
                    }
                }
                sum / count as f64
            })
            .collect();
        (labels, averages)
    }

    fn assert_matches_reference(columns: &[&[f64]], threshold: f64) {
        let result = cluster(columns, threshold);
        let (labels, averages) = reference(columns, threshold);
        assert_eq!(result.labels, labels);
        assert_eq!(result.avg_distance.len(), averages.len());
        for (actual, expected) in result.avg_distance.iter().zip(&averages) {
            assert!(
                (actual - expected).abs() <= 1e-12 * expected.abs(),
                "{actual} != {expected}"
            );
        }
        assert!(result.sampled.iter().all(|&s| !s));
    }

    #[test]
    fn two_blobs_give_two_clusters() {
        // Interleaved recording order: cluster 0 starts at task 0, cluster 1 at task 1.
        let x = [0.0, 10.0, 0.3, 10.4, 0.1, 50.0];
        let y = [0.0, 10.0, 0.4, 10.3, 0.0, 50.0];
        let result = cluster(&[&x, &y], 1.0);
        assert_eq!(result.labels, vec![0, 1, 0, 1, 0, -1]);
        // Cluster 0: d(0,2) = 0.5, d(0,4) = 0.1, d(2,4) = √(0.04 + 0.16).
        let expected0 = (0.5 + 0.1 + 0.2f64.sqrt()) / 3.0;
        assert!((result.avg_distance[0] - expected0).abs() < 1e-15);
        assert!((result.avg_distance[1] - 0.5).abs() < 1e-15);
        assert_eq!(result.sampled, vec![false, false]);
    }

    #[test]
    fn chains_join_transitively_in_any_order() {
        // a-b and b-c are close, a-c is not: one cluster of three whatever the order.
        let points = [0.0, 0.9, 1.8];
        let orders = [
            [0, 1, 2],
            [0, 2, 1],
            [1, 0, 2],
            [1, 2, 0],
            [2, 0, 1],
            [2, 1, 0],
        ];
        for order in orders {
            let x: Vec<f64> = order.iter().map(|&k| points[k]).collect();
            let result = cluster(&[&x], 1.0);
            assert_eq!(result.labels, vec![0, 0, 0], "order {order:?}");
            let expected = (0.9 + 0.9 + 1.8) / 3.0;
            assert!((result.avg_distance[0] - expected).abs() < 1e-15);
        }
    }

    #[test]
    fn distance_equal_to_threshold_is_not_an_edge() {
        let x = [0.0, 1.0, 3.0, 3.5];
        let result = cluster(&[&x], 1.0);
        assert_eq!(result.labels, vec![-1, -1, 0, 0]);
        // 3-4-5 triangle: distance exactly 5.
        let result = cluster(&[&[0.0, 3.0], &[0.0, 4.0]], 5.0);
        assert_eq!(result.labels, vec![-1, -1]);
        let result = cluster(&[&[0.0, 3.0], &[0.0, 4.0]], 5.000000000000001);
        assert_eq!(result.labels, vec![0, 0]);
    }

    #[test]
    fn tasks_sharing_no_metric_are_never_joined() {
        // Task 0 has only x, task 1 only y: no edge although both values are equal.
        let x = [1.0, NAN, NAN];
        let y = [NAN, 1.0, NAN];
        let result = cluster(&[&x, &y], 10.0);
        assert_eq!(result.labels, vec![-1, -1, -1]);
        assert!(result.avg_distance.is_empty());
        // A bridge having both joins them; the average skips the pair sharing nothing.
        let x = [1.0, NAN, 1.5];
        let y = [NAN, 1.0, 1.2];
        let result = cluster(&[&x, &y], 1.0);
        assert_eq!(result.labels, vec![0, 0, 0]);
        assert!((result.avg_distance[0] - (0.5 + 0.2) / 2.0).abs() < 1e-15);
    }

    #[test]
    fn distance_uses_only_shared_metrics() {
        // Tasks 0 and 1 share x only (close); y of task 0 is far from everything.
        let x = [0.0, 0.5];
        let y = [100.0, NAN];
        let result = cluster(&[&x, &y], 1.0);
        assert_eq!(result.labels, vec![0, 0]);
        assert_eq!(result.avg_distance, vec![0.5]);
    }

    #[test]
    fn degenerate_inputs_do_not_panic() {
        let empty = cluster(&[], 1.0);
        assert!(empty.labels.is_empty() && empty.avg_distance.is_empty());
        let no_tasks = cluster(&[&[], &[]], 1.0);
        assert!(no_tasks.labels.is_empty());
        assert_eq!(cluster(&[&[4.0]], 1.0).labels, vec![-1]);
        assert_eq!(
            cluster(&[&[NAN, NAN], &[NAN, NAN]], 1.0).labels,
            vec![-1, -1]
        );
        // Duplicates form a cluster with average distance 0.
        let result = cluster(&[&[2.0; 5]], 1e-300);
        assert_eq!(result.labels, vec![0; 5]);
        assert_eq!(result.avg_distance, vec![0.0]);
        // Infinite values are invalid input (NaN marks absence), refused with an error.
        let x = [f64::INFINITY, f64::INFINITY, 1.0, f64::NEG_INFINITY];
        match cluster_components(&[&x], 1.0, &Budget::unlimited()) {
            Err(CoreError::InvalidArgument { argument, .. }) => assert_eq!(argument, "columns"),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn rejects_bad_threshold_and_ragged_columns() {
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let params = Params::new().with("threshold", bad);
            match run(&[&[1.0]], &params, &Budget::unlimited()) {
                Err(CoreError::InvalidArgument { argument, message }) => {
                    assert_eq!(argument, "threshold");
                    assert!(message.starts_with("threshold must be finite and > 0"));
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        match cluster_components(&[&[1.0, 2.0], &[1.0]], 1.0, &Budget::unlimited()) {
            Err(CoreError::InvalidArgument { argument, .. }) => assert_eq!(argument, "columns"),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn past_deadline_times_out() {
        let x: Vec<f64> = (0..1000).map(f64::from).collect();
        let past = Instant::now() - Duration::from_millis(1);
        assert_eq!(
            cluster_components(&[&x], 1.5, &Budget::until(past)),
            Err(CoreError::Timeout {
                stage: "clustering"
            })
        );
        let future = Instant::now() + Duration::from_secs(3600);
        assert!(cluster_components(&[&x], 1.5, &Budget::until(future)).is_ok());
    }

    #[test]
    fn deadline_passing_mid_work_stops_it() {
        // 300k points in a small square, a radius joining everything: ~0.1 s of work here.
        // The deadline passes while the tree is built; the join stops at its first check.
        let mut rng = SplitMix64::new(8);
        let x: Vec<f64> = (0..300_000).map(|_| rng.next_f64()).collect();
        let y: Vec<f64> = (0..300_000).map(|_| rng.next_f64()).collect();
        let start = Instant::now();
        let deadline = start + Duration::from_millis(1);
        let result = cluster_components(&[&x, &y], 0.05, &Budget::until(deadline));
        assert_eq!(
            result,
            Err(CoreError::Timeout {
                stage: "clustering"
            })
        );
        assert!(start.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn squared_threshold_is_the_exact_sqrt_boundary() {
        let mut rng = SplitMix64::new(3);
        for _ in 0..2000 {
            let threshold = (rng.next_f64() * 40.0 - 20.0).exp();
            let t2 = squared_threshold(threshold);
            assert!(t2.sqrt() >= threshold);
            let below = f64::from_bits(t2.to_bits() - 1);
            assert!(below.sqrt() < threshold);
        }
        assert_eq!(squared_threshold(1e-300), f64::from_bits(1));
        assert_eq!(squared_threshold(1e200), f64::INFINITY);
    }

    /// Random tasks in a few blobs, with metrics missing at random (rate `missing`).
    fn random_columns(seed: u64, n: usize, m: usize, missing: f64) -> Vec<Vec<f64>> {
        let mut rng = SplitMix64::new(seed);
        let centers: Vec<Vec<f64>> = (0..5)
            .map(|_| (0..m).map(|_| rng.next_f64() * 20.0).collect())
            .collect();
        let mut columns = vec![Vec::with_capacity(n); m];
        for _ in 0..n {
            let center = &centers[rng.next_below(5) as usize];
            for (k, column) in columns.iter_mut().enumerate() {
                let value = center[k] + (rng.next_f64() - 0.5) * 6.0;
                column.push(if rng.next_f64() < missing { NAN } else { value });
            }
        }
        columns
    }

    #[test]
    fn matches_brute_force_on_random_data() {
        for (seed, n, m, missing, threshold) in [
            (1, 300, 2, 0.0, 0.6),
            (2, 400, 3, 0.0, 1.5),
            (3, 500, 4, 0.0, 3.0),
            (4, 300, 3, 0.2, 1.0),
            (5, 600, 2, 0.4, 0.5),
            (6, 200, 5, 0.5, 2.5),
            (7, 1200, 3, 0.1, 0.7),
        ] {
            let columns = random_columns(seed, n, m, missing);
            let views: Vec<&[f64]> = columns.iter().map(|c| c.as_slice()).collect();
            assert_matches_reference(&views, threshold);
        }
    }

    #[test]
    fn many_metrics_use_indexed_trees_and_still_match() {
        // 7 and 10 metrics: trees index only the widest few; some metrics missing, so
        // groups share more than the indexed number of metrics too.
        for (seed, n, m, missing, threshold) in [
            (31, 1500, 7, 0.0, 2.5),
            (32, 1200, 10, 0.05, 5.0),
            (33, 900, 10, 0.3, 1.5),
        ] {
            let mut columns = random_columns(seed, n, m, missing);
            // Very different spreads per metric, so the choice of indexed metrics matters.
            for (k, column) in columns.iter_mut().enumerate() {
                for value in column.iter_mut() {
                    *value *= 0.2 + k as f64 * 0.3;
                }
            }
            let views: Vec<&[f64]> = columns.iter().map(|c| c.as_slice()).collect();
            assert_matches_reference(&views, threshold);
            // Neither trivial case: some clusters, some singletons.
            let labels = cluster(&views, threshold).labels;
            assert!(labels.iter().any(|&l| l < 0) && labels.iter().any(|&l| l >= 1));
        }
    }

    #[test]
    fn odd_values_and_over_64_metrics_do_not_panic() {
        // 70 metrics (two mask words), absent values everywhere, overflowing squares,
        // signed zeros: the labels still follow the contract's definition. (Infinities are
        // refused as input: see degenerate_inputs_do_not_panic.)
        let (n, m) = (120, 70);
        let mut rng = SplitMix64::new(77);
        let odd = [f64::MAX, f64::MIN, 1e300, -1e300, -0.0, 0.0, 5e-324];
        let columns: Vec<Vec<f64>> = (0..m)
            .map(|_| {
                (0..n)
                    .map(|_| match rng.next_below(10) {
                        0..=5 => NAN,
                        6 => odd[rng.next_below(odd.len() as u64) as usize],
                        _ => rng.next_f64() * 0.5,
                    })
                    .collect()
            })
            .collect();
        let views: Vec<&[f64]> = columns.iter().map(|c| c.as_slice()).collect();
        for threshold in [1e-300, 0.5, 2.0, 1e150] {
            let result = cluster(&views, threshold);
            assert_eq!(result.labels, reference(&views, threshold).0);
        }
        // Every detector takes the same input without panicking.
        for detector in crate::detect::REGISTRY {
            crate::detect::run_detector(detector.name, &views, &Params::new()).unwrap();
        }
    }

    #[test]
    fn indexed_positions_pick_the_widest_metrics() {
        let spreads = [1.0, 9.0, f64::NAN, 3.0, 9.0, 0.5, 7.0];
        assert_eq!(indexed_positions(&[0, 1, 2], &spreads), vec![0, 1, 2]);
        // dims 0..7: widest are metrics 1, 4 (tie: column order), 6, 3.
        assert_eq!(
            indexed_positions(&[0, 1, 2, 3, 4, 5, 6], &spreads),
            vec![1, 3, 4, 6]
        );
        // Positions are within the given metric list.
        assert_eq!(
            indexed_positions(&[2, 3, 4, 5, 6], &spreads),
            vec![1, 2, 3, 4]
        );
    }

    #[test]
    fn cross_group_trees_match_brute_force() {
        // Two large groups ({x, y} and {y, z}) sharing only y: the projection path; and a
        // group {x} inside {x, y}: the self-tree path.
        let mut rng = SplitMix64::new(17);
        let n = 900;
        let (mut x, mut y, mut z) = (vec![NAN; n], vec![NAN; n], vec![NAN; n]);
        for task in 0..n {
            let (a, b, c) = (
                rng.next_f64() * 30.0,
                rng.next_f64() * 30.0,
                rng.next_f64() * 30.0,
            );
            match task % 3 {
                0 => {
                    x[task] = a;
                    y[task] = b;
                }
                1 => {
                    y[task] = b;
                    z[task] = c;
                }
                _ => x[task] = a,
            }
        }
        assert_matches_reference(&[&x, &y, &z], 0.4);
        assert_matches_reference(&[&x, &y, &z], 0.05);
    }

    #[test]
    fn tight_blobs_use_cliques_and_still_match() {
        // Dense duplicates and near-duplicates (clique nodes) plus sparse bridges.
        let mut rng = SplitMix64::new(23);
        let mut x = Vec::new();
        let mut y = Vec::new();
        for blob in 0..6 {
            for _ in 0..150 {
                x.push(blob as f64 * 3.0 + rng.next_f64() * 0.01);
                y.push(rng.next_f64() * 0.01);
            }
        }
        for _ in 0..60 {
            x.push(rng.next_f64() * 18.0);
            y.push(rng.next_f64() * 0.5);
        }
        assert_matches_reference(&[&x, &y], 1.0);
        assert_matches_reference(&[&x, &y], 0.3);
    }

    #[test]
    fn large_clusters_are_sampled_with_the_contract_stream() {
        // 5000 tasks on a line 0.001 apart: one cluster, > 4096 members → sampled.
        let n = 5000;
        let x: Vec<f64> = (0..n).map(|i| i as f64 * 0.001).collect();
        let mut y: Vec<f64> = (0..n).map(|i| (i % 7) as f64 * 0.0001).collect();
        y[10] = NAN;
        let columns: [&[f64]; 2] = [&x, &y];
        let result = cluster(&columns, 0.01);
        assert_eq!(result.labels, vec![0; n]);
        assert_eq!(result.sampled, vec![true]);
        let seed = 0x5EED_C1A5_7E00_0000u64;
        let (mut sum, mut count) = (0.0, 0);
        for s in 0..120_000u64 {
            let a = (splitmix64_output(seed, 2 * s) % n as u64) as usize;
            let b = (splitmix64_output(seed, 2 * s + 1) % n as u64) as usize;
            if a != b {
                sum += reference_distance(&columns, a, b).unwrap();
                count += 1;
            }
        }
        assert_eq!(result.avg_distance[0], sum / count as f64);
        // The estimate is close to the exact mean of |i - j|·0.001 ≈ n/3·0.001.
        assert!((result.avg_distance[0] - 5000.0 / 3.0 * 0.001).abs() < 0.02);
    }

    #[test]
    fn cluster_seed_depends_on_cluster_number() {
        // Two large clusters: cluster 1 draws from stream base + 1.
        let n = 4200;
        let mut x: Vec<f64> = (0..n).map(|i| i as f64 * 0.001).collect();
        x.extend((0..n).map(|i| 100.0 + i as f64 * 0.002));
        let result = cluster(&[&x], 0.01);
        assert_eq!(result.sampled, vec![true, true]);
        let seed = 0x5EED_C1A5_7E00_0001u64;
        let (mut sum, mut count) = (0.0, 0);
        for s in 0..120_000u64 {
            let a = (splitmix64_output(seed, 2 * s) % n as u64) as usize;
            let b = (splitmix64_output(seed, 2 * s + 1) % n as u64) as usize;
            if a != b {
                sum += (x[n + a] - x[n + b]).abs();
                count += 1;
            }
        }
        assert_eq!(result.avg_distance[1], sum / count as f64);
    }

    #[test]
    fn exact_average_at_the_size_limit() {
        // 4096 members: still exact; every pair at distance |i - j|·0.001.
        let n = 4096;
        let x: Vec<f64> = (0..n).map(|i| i as f64 * 0.001).collect();
        let result = cluster(&[&x], 0.0015);
        assert_eq!(result.sampled, vec![false]);
        // mean |i - j| over pairs = (n + 1) / 3
        let expected = (n as f64 + 1.0) / 3.0 * 0.001;
        assert!((result.avg_distance[0] - expected).abs() < 1e-12 * expected);
    }

    /// Gaussian blobs: `centers` centers uniform in [-box, box]^m, unit-std noise
    /// (Box–Muller over SplitMix64), row-major n × m.
    fn gaussian_blobs(n: usize, m: usize, centers: usize, half_width: f64) -> Vec<f64> {
        let mut rng = SplitMix64::new(2024);
        let centers: Vec<Vec<f64>> = (0..centers)
            .map(|_| {
                (0..m)
                    .map(|_| (rng.next_f64() * 2.0 - 1.0) * half_width)
                    .collect()
            })
            .collect();
        let mut normal = move || {
            let u = 1.0 - rng.next_f64();
            let v = rng.next_f64();
            (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
        };
        let mut rows = Vec::with_capacity(n * m);
        for task in 0..n {
            let center = &centers[task % centers.len()];
            for &coordinate in center {
                rows.push(coordinate + normal());
            }
        }
        rows
    }

    /// Writes a little-endian float64 / int64 .npy file.
    fn write_npy(path: &std::path::Path, descr: &str, shape: &str, data: &[u8]) {
        let header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
        let mut header = header.into_bytes();
        while (10 + header.len() + 1) % 64 != 0 {
            header.push(b' ');
        }
        header.push(b'\n');
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        bytes.extend((header.len() as u16).to_le_bytes());
        bytes.extend(header);
        bytes.extend_from_slice(data);
        std::fs::write(path, bytes).unwrap();
    }

    /// P5 timing (run with `cargo test --release -- --ignored p5 --nocapture`): by default
    /// 100k tasks × 4 metrics of Gaussian blobs. Environment: CRACKLE_P5_INPUT (a C-ordered
    /// (n, m) float64 .npy file to use instead, e.g. the benches' `gaussian_blobs`),
    /// CRACKLE_P5_CENTERS (20), CRACKLE_P5_BOX (half-width of the centers' box, 20),
    /// CRACKLE_P5_RADIUS (0.3), CRACKLE_P5_REPEATS (7), CRACKLE_P5_DIR (if set, X.npy and
    /// labels.npy are written there for the scipy / scikit-learn comparison).
    #[test]
    #[ignore]
    fn p5_clustering_timing() {
        let env = |name: &str, default: f64| {
            std::env::var(name)
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(default)
        };
        let (mut n, mut m) = (100_000, 4);
        let centers = env("CRACKLE_P5_CENTERS", 20.0) as usize;
        let half_width = env("CRACKLE_P5_BOX", 20.0);
        let radius = env("CRACKLE_P5_RADIUS", 0.3);
        let rows = match std::env::var("CRACKLE_P5_INPUT") {
            // A C-ordered (n, m) float64 .npy file (e.g. the benches' gaussian_blobs).
            Ok(path) => {
                let bytes = std::fs::read(path).unwrap();
                let header = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
                let text = String::from_utf8_lossy(&bytes[10..10 + header]).to_string();
                let shape = text
                    .split("'shape': (")
                    .nth(1)
                    .unwrap()
                    .split(')')
                    .next()
                    .unwrap();
                let dims: Vec<usize> = shape
                    .split(',')
                    .filter_map(|v| v.trim().parse().ok())
                    .collect();
                (n, m) = (dims[0], dims[1]);
                let data = &bytes[10 + header..];
                assert_eq!(data.len(), n * m * 8);
                data.chunks_exact(8)
                    .map(|b| f64::from_le_bytes(b.try_into().unwrap()))
                    .collect()
            }
            Err(_) => gaussian_blobs(n, m, centers, half_width),
        };
        let columns: Vec<Vec<f64>> = (0..m)
            .map(|k| (0..n).map(|i| rows[i * m + k]).collect())
            .collect();
        let views: Vec<&[f64]> = columns.iter().map(|c| c.as_slice()).collect();
        // Process CPU seconds (user + system, all threads) from /proc: steadier than wall
        // time on a busy machine.
        let cpu_seconds = || -> f64 {
            let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
            let fields: Vec<&str> = stat
                .rsplit(')')
                .next()
                .unwrap_or("")
                .split_whitespace()
                .collect();
            let ticks = |i: usize| {
                fields
                    .get(i)
                    .and_then(|v| v.parse::<f64>().ok())
                    .unwrap_or(0.0)
            };
            (ticks(11) + ticks(12)) / 100.0
        };
        let mut best = f64::INFINITY;
        let mut result = None;
        let repeats = env("CRACKLE_P5_REPEATS", 7.0) as usize;
        let cpu_start = cpu_seconds();
        for _ in 0..repeats {
            let start = Instant::now();
            let clusters = cluster(&views, radius);
            best = best.min(start.elapsed().as_secs_f64());
            result = Some(clusters);
        }
        println!(
            "cpu per call {:.1} ms",
            (cpu_seconds() - cpu_start) / repeats as f64 * 1e3
        );
        let result = result.unwrap();
        // The partition alone (labels), to separate it from the average distances.
        let t2 = squared_threshold(radius);
        let mut best_partition = f64::INFINITY;
        let mut stages = String::new();
        for _ in 0..repeats {
            let start = Instant::now();
            let (groups, _) = group_by_metrics(&views, n);
            let spreads = metric_spreads(&views);
            let union_find = ConcurrentUnionFind::new(n);
            let t_group = start.elapsed().as_secs_f64();
            let mut t_build = 0.0;
            let mut t_join = 0.0;
            for group in &groups {
                let s0 = Instant::now();
                let tree = build_tree(&views, &group.dims, &group.members, &spreads, Some(t2));
                t_build += s0.elapsed().as_secs_f64();
                let s1 = Instant::now();
                tree.self_join(t2, &UnionSink::new(&union_find, Budget::unlimited()));
                t_join += s1.elapsed().as_secs_f64();
            }
            let s2 = Instant::now();
            let (labels, _) = components(&union_find, n);
            let elapsed = start.elapsed().as_secs_f64();
            if elapsed < best_partition {
                best_partition = elapsed;
                stages = format!(
                    "grouping {:.1} ms, tree build {:.1} ms, join {:.1} ms, components {:.1} ms",
                    t_group * 1e3,
                    t_build * 1e3,
                    t_join * 1e3,
                    s2.elapsed().as_secs_f64() * 1e3
                );
            }
            assert_eq!(labels, result.labels);
        }
        let in_clusters = result.labels.iter().filter(|&&l| l >= 0).count();
        let largest = {
            let mut sizes = vec![0usize; result.avg_distance.len()];
            for &label in result.labels.iter().filter(|&&l| l >= 0) {
                sizes[label as usize] += 1;
            }
            sizes.into_iter().max().unwrap_or(0)
        };
        println!(
            "P5 n={n} m={m} centers={centers} box={half_width} r={radius}: \
             cluster_components {:.1} ms (partition only {:.1} ms), {} clusters, {} tasks \
             clustered, largest {}, sampled {}, threads {}",
            best * 1e3,
            best_partition * 1e3,
            result.avg_distance.len(),
            in_clusters,
            largest,
            result.sampled.iter().filter(|&&s| s).count(),
            rayon::current_num_threads()
        );
        println!("  partition stages (best run): {stages}");
        if let Ok(dir) = std::env::var("CRACKLE_P5_DIR") {
            let dir = std::path::Path::new(&dir);
            let x: Vec<u8> = rows.iter().flat_map(|v| v.to_le_bytes()).collect();
            write_npy(&dir.join("X.npy"), "<f8", &format!("({n}, {m})"), &x);
            let labels: Vec<u8> = result.labels.iter().flat_map(|v| v.to_le_bytes()).collect();
            write_npy(&dir.join("labels.npy"), "<i8", &format!("({n},)"), &labels);
        }
    }
}
