//! A static kd-tree and a dual-tree fixed-radius join (the clustering's spatial index).
//!
//! Points are split at the median of their widest dimension down to small leaves; every node
//! keeps the tight bounding box of its points. The join walks pairs of nodes, skipping pairs
//! of boxes that are out of range, and compares points only in pairs of leaves.
//!
//! Exactness: every test against the radius uses squared distances accumulated sequentially
//! over the dimensions in order (the same expression as the clustering's edge test), and the
//! box bounds cannot be pushed past a pair's computed distance by rounding: for points a, b
//! in boxes A, B each computed per-dimension gap is <= (lower bound) or >= (upper bound) the
//! computed |a - b|, because the exact inequality survives monotonic rounding.
//!
//! Units: the joins serve connectivity, not a pair list. A node is a *unit* once all its
//! points are known to be connected: a *clique* (with a clique radius, a node whose squared
//! bounding-box diagonal is below it, so all its pairs are within range; its points are
//! connected as the self join starts it), or a node the self join found connected (both
//! children units and connected to each other; a leaf whose points share a root). Between
//! two units one pair is enough and nothing at all once the sink says they are connected;
//! between a unit and a point one pair is enough. This is what makes dense clusters cheap.

use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};

/// Points per leaf.
const LEAF_SIZE: usize = 16;
/// Node pairs holding more points than this are split across rayon workers (and check for
/// cancellation).
const PARALLEL_MIN_POINTS: usize = 4096;

/// Receives the pairs found by [`KdTree::self_join`] and [`KdTree::cross_join`]; shared by
/// the rayon workers.
pub trait PairSink: Sync {
    /// Whether `a` and `b` are already known to be connected (through the pairs reported so
    /// far, or otherwise). Must never answer true wrongly; false is always safe.
    fn connected(&self, a: u32, b: u32) -> bool;
    /// Connect `a` and `b` (ids): they are within range, or stand for units that have a pair
    /// within range.
    fn pair(&self, a: u32, b: u32);
    /// Whether to abandon the join (checked between large node pairs).
    fn cancelled(&self) -> bool;
}

#[derive(Debug, Clone, Copy)]
struct Node {
    /// Range of tree positions covered.
    start: u32,
    end: u32,
    /// Children (0 = leaf: the root is never a child).
    left: u32,
    right: u32,
    /// Every pair of points in this node is within range.
    clique: bool,
}

impl Node {
    #[inline]
    fn len(&self) -> usize {
        (self.end - self.start) as usize
    }

    #[inline]
    fn is_leaf(&self) -> bool {
        self.left == 0
    }
}

/// A kd-tree over `len()` points of `dims()` coordinates, each carrying a caller's id.
#[derive(Debug)]
pub struct KdTree {
    dims: usize,
    /// Coordinates in tree order, row-major.
    coords: Vec<f64>,
    /// The caller's id of the point at each tree position.
    ids: Vec<u32>,
    nodes: Vec<Node>,
    /// Per node: its lower corner then its upper corner (2·dims values).
    bounds: Vec<f64>,
    /// Per node: all its points are known to be connected (see the module doc).
    units: Vec<AtomicBool>,
}

/// Scratch buffers of the build, reused by every node.
struct BuildScratch {
    keys: Vec<(f64, u32)>,
    coords: Vec<f64>,
    ids: Vec<u32>,
}

impl KdTree {
    /// Builds the tree over `ids.len()` points whose coordinates are `points` (row-major,
    /// `dims` per point). With `clique_below = Some(t2)`, nodes whose squared bounding-box
    /// diagonal is < t2 are cliques. Panics only on inconsistent arguments (`dims == 0`,
    /// `points.len() != ids.len() * dims`): a programming error of the caller.
    pub fn build(points: &[f64], ids: &[u32], dims: usize, clique_below: Option<f64>) -> KdTree {
        assert!(dims > 0, "a kd-tree needs at least one dimension");
        assert_eq!(points.len(), ids.len() * dims, "points and ids disagree");
        let mut tree = KdTree {
            dims,
            coords: points.to_vec(),
            ids: ids.to_vec(),
            nodes: Vec::with_capacity(4 * ids.len() / LEAF_SIZE + 1),
            bounds: Vec::new(),
            units: Vec::new(),
        };
        if !ids.is_empty() {
            let mut scratch = BuildScratch {
                keys: Vec::with_capacity(ids.len()),
                coords: Vec::with_capacity(points.len()),
                ids: Vec::with_capacity(ids.len()),
            };
            tree.build_node(0, ids.len(), clique_below, false, &mut scratch);
        }
        tree.units = tree
            .nodes
            .iter()
            .map(|node| AtomicBool::new(node.clique))
            .collect();
        tree
    }

    /// Builds the node over tree positions `start..end` (reordering them), returns its index.
    fn build_node(
        &mut self,
        start: usize,
        end: usize,
        clique_below: Option<f64>,
        parent_clique: bool,
        scratch: &mut BuildScratch,
    ) -> u32 {
        let dims = self.dims;
        let index = self.nodes.len();
        let corner = self.bounds.len();
        self.bounds.resize(corner + dims, f64::INFINITY);
        self.bounds.resize(corner + 2 * dims, f64::NEG_INFINITY);
        {
            let (lower, upper) = self.bounds[corner..].split_at_mut(dims);
            for point in self.coords[start * dims..end * dims].chunks_exact(dims) {
                for ((low, high), &value) in lower.iter_mut().zip(upper.iter_mut()).zip(point) {
                    *low = low.min(value);
                    *high = high.max(value);
                }
            }
        }
        let (lower, upper) = self.bounds[corner..].split_at(dims);
        let clique = parent_clique
            || clique_below.is_some_and(|t2| {
                let mut diagonal = 0.0;
                for (low, high) in lower.iter().zip(upper) {
                    let extent = high - low;
                    diagonal += extent * extent;
                }
                diagonal < t2
            });
        // Split along the widest dimension (NaN extents, from infinite coordinates, never
        // win); even all-equal points are split so that no leaf grows large.
        let mut split_dim = 0;
        let mut widest = -1.0;
        for (dim, (low, high)) in lower.iter().zip(upper).enumerate() {
            let extent = high - low;
            if extent > widest {
                widest = extent;
                split_dim = dim;
            }
        }
        self.nodes.push(Node {
            start: start as u32,
            end: end as u32,
            left: 0,
            right: 0,
            clique,
        });
        let count = end - start;
        if count > LEAF_SIZE {
            let middle = count / 2;
            // Median by selection over (key, offset) records, then one sequential reorder.
            scratch.keys.clear();
            scratch.keys.extend(
                self.coords[start * dims..end * dims]
                    .chunks_exact(dims)
                    .enumerate()
                    .map(|(offset, point)| (point[split_dim], offset as u32)),
            );
            scratch
                .keys
                .select_nth_unstable_by(middle, |a, b| a.0.total_cmp(&b.0));
            scratch.coords.clear();
            scratch.ids.clear();
            for &(_, offset) in &scratch.keys {
                let at = start + offset as usize;
                scratch
                    .coords
                    .extend_from_slice(&self.coords[at * dims..(at + 1) * dims]);
                scratch.ids.push(self.ids[at]);
            }
            self.coords[start * dims..end * dims].copy_from_slice(&scratch.coords);
            self.ids[start..end].copy_from_slice(&scratch.ids);
            let left = self.build_node(start, start + middle, clique_below, clique, scratch);
            let right = self.build_node(start + middle, end, clique_below, clique, scratch);
            self.nodes[index].left = left;
            self.nodes[index].right = right;
        }
        index as u32
    }

    /// Number of points.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// True when the tree holds no point.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Coordinates per point.
    pub fn dims(&self) -> usize {
        self.dims
    }

    /// The coordinates of the point at tree position `position`.
    #[inline]
    pub fn point(&self, position: usize) -> &[f64] {
        &self.coords[position * self.dims..(position + 1) * self.dims]
    }

    /// The id of the point at tree position `position`.
    #[inline]
    pub fn id(&self, position: usize) -> u32 {
        self.ids[position]
    }

    /// Position ranges of the maximal clique nodes (cliques not inside another clique).
    pub fn maximal_cliques(&self) -> Vec<Range<usize>> {
        let mut cliques = Vec::new();
        if self.nodes.is_empty() {
            return cliques;
        }
        let mut stack = vec![0u32];
        while let Some(index) = stack.pop() {
            let node = self.nodes[index as usize];
            if node.clique {
                cliques.push(node.start as usize..node.end as usize);
            } else if !node.is_leaf() {
                stack.push(node.right);
                stack.push(node.left);
            }
        }
        cliques
    }

    #[inline]
    fn is_unit(&self, node: u32) -> bool {
        self.units[node as usize].load(Ordering::Acquire)
    }

    #[inline]
    fn mark_unit(&self, node: u32) {
        self.units[node as usize].store(true, Ordering::Release);
    }

    /// The id of a node's first point (stands for the node when it is a unit).
    #[inline]
    fn representative(&self, node: u32) -> u32 {
        self.ids[self.nodes[node as usize].start as usize]
    }

    /// Whether the sink already connects every point of a leaf.
    fn leaf_connected<S: PairSink>(&self, node: Node, sink: &S) -> bool {
        let first = self.ids[node.start as usize];
        self.ids[node.start as usize + 1..node.end as usize]
            .iter()
            .all(|&id| sink.connected(first, id))
    }

    /// Marks as units the nodes whose points `sink` now connects (bottom-up), so that a
    /// following [`KdTree::cross_join`] can treat them as such.
    pub fn refresh_units<S: PairSink>(&self, sink: &S) {
        // Children come after their parent in `nodes`: walk backwards.
        for (index, node) in self.nodes.iter().enumerate().rev() {
            let index = index as u32;
            if self.is_unit(index) {
                continue;
            }
            let united = if node.is_leaf() {
                self.leaf_connected(*node, sink)
            } else {
                self.is_unit(node.left)
                    && self.is_unit(node.right)
                    && sink.connected(
                        self.representative(node.left),
                        self.representative(node.right),
                    )
            };
            if united {
                self.mark_unit(index);
            }
        }
    }

    #[inline]
    fn corners(&self, node: usize) -> (&[f64], &[f64]) {
        self.bounds[2 * self.dims * node..2 * self.dims * (node + 1)].split_at(self.dims)
    }

    /// Connects, through `sink`, every pair of points of this tree within range (`d2 < t2`):
    /// each pair reported at most once, units as described in the module doc (a maximal
    /// clique's points are reported as pairs with its first point). Marks the units found.
    /// Runs on the rayon pool.
    pub fn self_join<S: PairSink>(&self, t2: f64, sink: &S) {
        if !self.nodes.is_empty() {
            self.self_node(0, t2, sink);
        }
    }

    fn self_node<S: PairSink>(&self, index: u32, t2: f64, sink: &S) {
        let node = self.nodes[index as usize];
        if node.clique {
            let first = self.ids[node.start as usize];
            for &id in &self.ids[node.start as usize + 1..node.end as usize] {
                sink.pair(first, id);
            }
            return;
        }
        if node.is_leaf() {
            let (start, end) = (node.start as usize, node.end as usize);
            for a in start..end {
                let point = self.point(a);
                for b in a + 1..end {
                    if squared_distance(point, self.point(b)) < t2 {
                        sink.pair(self.ids[a], self.ids[b]);
                    }
                }
            }
            if self.leaf_connected(node, sink) {
                self.mark_unit(index);
            }
            return;
        }
        // Children first, then the pairs between them: by then the children are often units.
        if node.len() > PARALLEL_MIN_POINTS {
            if sink.cancelled() {
                return;
            }
            rayon::join(
                || self.self_node(node.left, t2, sink),
                || self.self_node(node.right, t2, sink),
            );
        } else {
            self.self_node(node.left, t2, sink);
            self.self_node(node.right, t2, sink);
        }
        join_nodes(self, node.left, self, node.right, t2, sink);
        if self.is_unit(node.left)
            && self.is_unit(node.right)
            && sink.connected(
                self.representative(node.left),
                self.representative(node.right),
            )
        {
            self.mark_unit(index);
        }
    }

    /// Connects, through `sink`, every pair (a of this tree, b of `other`) within range
    /// (`d2 < t2`), units as described in the module doc (a tree with cliques must have been
    /// self-joined first). Both trees must have the same dimensions. Runs on the rayon pool.
    pub fn cross_join<S: PairSink>(&self, other: &KdTree, t2: f64, sink: &S) {
        if !self.nodes.is_empty() && !other.nodes.is_empty() && self.dims == other.dims {
            join_nodes(self, 0, other, 0, t2, sink);
        }
    }
}

/// Squared distance between the boxes of two nodes: a lower bound of every pair's.
#[inline]
fn box_min_distance2(first: &KdTree, a: u32, second: &KdTree, b: u32) -> f64 {
    let (lower_a, upper_a) = first.corners(a as usize);
    let (lower_b, upper_b) = second.corners(b as usize);
    let mut sum = 0.0;
    for k in 0..lower_a.len() {
        let gap = if upper_a[k] < lower_b[k] {
            lower_b[k] - upper_a[k]
        } else if upper_b[k] < lower_a[k] {
            lower_a[k] - upper_b[k]
        } else {
            0.0
        };
        sum += gap * gap;
    }
    sum
}

/// Squared distance between the farthest corners of two boxes: an upper bound of every
/// pair's.
#[inline]
fn box_max_distance2(first: &KdTree, a: u32, second: &KdTree, b: u32) -> f64 {
    let (lower_a, upper_a) = first.corners(a as usize);
    let (lower_b, upper_b) = second.corners(b as usize);
    let mut sum = 0.0;
    for k in 0..lower_a.len() {
        let gap = (upper_a[k] - lower_b[k])
            .abs()
            .max((upper_b[k] - lower_a[k]).abs());
        sum += gap * gap;
    }
    sum
}

/// Pairs between node `a` of `first` and node `b` of `second` (disjoint point sets).
fn join_nodes<S: PairSink>(first: &KdTree, a: u32, second: &KdTree, b: u32, t2: f64, sink: &S) {
    // A NaN bound comes only from infinite coordinates, never within range: skip too.
    let reachable = box_min_distance2(first, a, second, b) < t2;
    if !reachable {
        return;
    }
    let node_a = first.nodes[a as usize];
    let node_b = second.nodes[b as usize];
    let unit_a = first.is_unit(a);
    let unit_b = second.is_unit(b);
    if unit_a && unit_b {
        let member_a = first.ids[node_a.start as usize];
        let member_b = second.ids[node_b.start as usize];
        if sink.connected(member_a, member_b) {
            return;
        }
        if box_max_distance2(first, a, second, b) < t2 {
            sink.pair(member_a, member_b);
            return;
        }
    }
    if node_a.is_leaf() && node_b.is_leaf() {
        join_leaves(first, node_a, unit_a, second, node_b, unit_b, t2, sink);
        return;
    }
    // Split the larger node (or the one that can be split).
    let split_a = !node_a.is_leaf() && (node_b.is_leaf() || node_a.len() >= node_b.len());
    let parallel = node_a.len() + node_b.len() > PARALLEL_MIN_POINTS;
    if parallel && sink.cancelled() {
        return;
    }
    if split_a {
        let (left, right) = (node_a.left, node_a.right);
        if parallel {
            rayon::join(
                || join_nodes(first, left, second, b, t2, sink),
                || join_nodes(first, right, second, b, t2, sink),
            );
        } else {
            join_nodes(first, left, second, b, t2, sink);
            join_nodes(first, right, second, b, t2, sink);
        }
    } else {
        let (left, right) = (node_b.left, node_b.right);
        if parallel {
            rayon::join(
                || join_nodes(first, a, second, left, t2, sink),
                || join_nodes(first, a, second, right, t2, sink),
            );
        } else {
            join_nodes(first, a, second, left, t2, sink);
            join_nodes(first, a, second, right, t2, sink);
        }
    }
}

/// Pairs between two leaves. A unit leaf needs only one pair per point of the other leaf
/// (its points are connected already), none with a point already connected to it; two
/// units need one pair in all.
#[allow(clippy::too_many_arguments)]
fn join_leaves<S: PairSink>(
    first: &KdTree,
    node_a: Node,
    unit_a: bool,
    second: &KdTree,
    node_b: Node,
    unit_b: bool,
    t2: f64,
    sink: &S,
) {
    let range_a = node_a.start as usize..node_a.end as usize;
    let range_b = node_b.start as usize..node_b.end as usize;
    match (unit_a, unit_b) {
        (true, true) => {
            for a in range_a {
                let point = first.point(a);
                for b in range_b.clone() {
                    if squared_distance(point, second.point(b)) < t2 {
                        sink.pair(first.ids[a], second.ids[b]);
                        return;
                    }
                }
            }
        }
        (true, false) => {
            let member = first.ids[range_a.start];
            for b in range_b {
                if sink.connected(member, second.ids[b]) {
                    continue;
                }
                let point = second.point(b);
                if range_a
                    .clone()
                    .any(|a| squared_distance(first.point(a), point) < t2)
                {
                    sink.pair(member, second.ids[b]);
                }
            }
        }
        (false, true) => {
            let member = second.ids[range_b.start];
            for a in range_a {
                if sink.connected(first.ids[a], member) {
                    continue;
                }
                let point = first.point(a);
                if range_b
                    .clone()
                    .any(|b| squared_distance(point, second.point(b)) < t2)
                {
                    sink.pair(first.ids[a], member);
                }
            }
        }
        (false, false) => {
            for a in range_a {
                let point = first.point(a);
                for b in range_b.clone() {
                    if squared_distance(point, second.point(b)) < t2 {
                        sink.pair(first.ids[a], second.ids[b]);
                    }
                }
            }
        }
    }
}

/// Σ (a_k - b_k)², accumulated sequentially in dimension order.
#[inline]
pub fn squared_distance(a: &[f64], b: &[f64]) -> f64 {
    let mut sum = 0.0;
    for (&x, &y) in a.iter().zip(b) {
        let difference = x - y;
        sum += difference * difference;
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SplitMix64;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Mutex;

    /// Collects every reported pair; never claims a connection.
    #[derive(Default)]
    struct Collect {
        pairs: Mutex<Vec<(u32, u32)>>,
        cancel: AtomicBool,
    }

    impl PairSink for Collect {
        fn connected(&self, _a: u32, _b: u32) -> bool {
            false
        }
        fn pair(&self, a: u32, b: u32) {
            self.pairs.lock().unwrap().push((a.min(b), a.max(b)));
        }
        fn cancelled(&self) -> bool {
            self.cancel.load(Ordering::Relaxed)
        }
    }

    impl Collect {
        fn sorted(self) -> Vec<(u32, u32)> {
            let mut pairs = self.pairs.into_inner().unwrap();
            pairs.sort_unstable();
            pairs
        }
    }

    fn random_points(seed: u64, n: usize, dims: usize, scale: f64) -> Vec<f64> {
        let mut rng = SplitMix64::new(seed);
        (0..n * dims).map(|_| rng.next_f64() * scale).collect()
    }

    fn brute_pairs(points: &[f64], ids: &[u32], dims: usize, t2: f64) -> Vec<(u32, u32)> {
        let mut pairs = Vec::new();
        for i in 0..ids.len() {
            for j in i + 1..ids.len() {
                let d2 = squared_distance(
                    &points[i * dims..(i + 1) * dims],
                    &points[j * dims..(j + 1) * dims],
                );
                if d2 < t2 {
                    pairs.push((ids[i].min(ids[j]), ids[i].max(ids[j])));
                }
            }
        }
        pairs.sort_unstable();
        pairs
    }

    #[test]
    fn self_join_without_cliques_reports_every_pair_once() {
        for (seed, n, dims, t2) in [(5, 3000, 3, 0.4), (6, 10_000, 2, 0.01), (7, 800, 5, 9.0)] {
            let points = random_points(seed, n, dims, 10.0);
            let ids: Vec<u32> = (0..n as u32).map(|i| i * 3 + 1).collect();
            let tree = KdTree::build(&points, &ids, dims, None);
            assert_eq!(tree.len(), n);
            let sink = Collect::default();
            tree.self_join(t2, &sink);
            assert_eq!(sink.sorted(), brute_pairs(&points, &ids, dims, t2));
        }
    }

    #[test]
    fn cross_join_without_cliques_reports_every_pair() {
        let dims = 3;
        let first = random_points(8, 2500, dims, 10.0);
        let second = random_points(9, 1800, dims, 10.0);
        let first_ids: Vec<u32> = (0..2500).collect();
        let second_ids: Vec<u32> = (10_000..11_800).collect();
        let tree_a = KdTree::build(&first, &first_ids, dims, None);
        let tree_b = KdTree::build(&second, &second_ids, dims, None);
        let sink = Collect::default();
        tree_a.cross_join(&tree_b, 0.3, &sink);
        let mut expected = Vec::new();
        for i in 0..2500 {
            for j in 0..1800 {
                let a = &first[i * dims..(i + 1) * dims];
                if squared_distance(a, &second[j * dims..(j + 1) * dims]) < 0.3 {
                    expected.push((i as u32, 10_000 + j as u32));
                }
            }
        }
        assert_eq!(sink.sorted(), expected);
    }

    #[test]
    fn cliques_are_tight_groups() {
        // Two tight groups of 40 points far apart: each is a clique for radius 1.
        let mut points = Vec::new();
        for i in 0..80 {
            let base = if i < 40 { 0.0 } else { 100.0 };
            points.push(base + (i % 40) as f64 * 0.001);
            points.push(base);
        }
        let ids: Vec<u32> = (0..80).collect();
        let tree = KdTree::build(&points, &ids, 2, Some(1.0));
        let mut members: Vec<Vec<u32>> = tree
            .maximal_cliques()
            .iter()
            .map(|range| {
                let mut ids: Vec<u32> = range.clone().map(|p| tree.id(p)).collect();
                ids.sort_unstable();
                ids
            })
            .collect();
        members.sort();
        assert_eq!(members.len(), 2);
        assert_eq!(members[0], (0..40).collect::<Vec<u32>>());
        assert_eq!(members[1], (40..80).collect::<Vec<u32>>());
        // The self join reports each clique as a star around one member: 2 × 39 pairs.
        let sink = Collect::default();
        tree.self_join(1.0, &sink);
        assert_eq!(sink.sorted().len(), 78);
        // A lone point near one clique gets a single pair with it.
        let lone = KdTree::build(&[0.5, 0.0], &[500], 2, Some(1.0));
        let sink = Collect::default();
        tree.cross_join(&lone, 1.0, &sink);
        let pairs = sink.sorted();
        assert_eq!(pairs.len(), 1);
        assert!(pairs[0].0 < 40 && pairs[0].1 == 500);
    }

    #[test]
    fn cancelled_join_stops_early() {
        let points = random_points(10, 6000, 2, 1.0);
        let ids: Vec<u32> = (0..6000).collect();
        let tree = KdTree::build(&points, &ids, 2, None);
        let sink = Collect::default();
        sink.cancel.store(true, Ordering::Relaxed);
        tree.self_join(0.001, &sink);
        assert!(sink.sorted().len() < brute_pairs(&points, &ids, 2, 0.001).len());
    }

    #[test]
    fn degenerate_inputs() {
        let empty = KdTree::build(&[], &[], 2, Some(1.0));
        assert!(empty.is_empty());
        assert!(empty.maximal_cliques().is_empty());
        let sink = Collect::default();
        empty.self_join(1.0, &sink);
        empty.cross_join(&empty, 1.0, &sink);
        assert!(sink.sorted().is_empty());
        // Many identical points and infinite coordinates do not break the build.
        let mut points = vec![1.0; 200];
        points.extend([
            f64::INFINITY,
            1.0,
            f64::INFINITY,
            1.0,
            f64::NEG_INFINITY,
            1.0,
        ]);
        let ids: Vec<u32> = (0..103).collect();
        let tree = KdTree::build(&points, &ids, 2, None);
        let sink = Collect::default();
        tree.self_join(0.5, &sink);
        assert_eq!(sink.sorted().len(), 100 * 99 / 2);
        let one = KdTree::build(&[f64::INFINITY, 1.0], &[7], 2, None);
        let sink = Collect::default();
        tree.cross_join(&one, 0.5, &sink);
        assert!(sink.sorted().is_empty());
    }
}
