//! A static kd-tree and a dual-tree fixed-radius join (the clustering's spatial index).
//!
//! Points are split in place, at the median of a sample of rows along the sample's widest
//! dimension, down to small leaves; every node then gets the tight bounding box of its points
//! (fitted bottom-up). The join walks pairs of nodes, skipping pairs of boxes that are out of
//! range, and compares points only in pairs of leaves (skipping those out of range of the
//! other leaf's box).
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
///
/// The boxes may cover only some of the coordinates (the *indexed* ones, e.g. the few
/// widest of many): every bound is then taken over those alone, which keeps lower bounds
/// valid (a sum over fewer non-negative terms, in the same order, is never larger) while
/// the leaves still compare points over all coordinates. Upper bounds and cliques need every
/// coordinate and are not used then.
#[derive(Debug)]
pub struct KdTree {
    dims: usize,
    /// Positions (ascending) of the coordinates the boxes cover.
    indexed: Vec<usize>,
    /// Whether every coordinate is indexed.
    full: bool,
    /// Coordinates in tree order, row-major.
    coords: Vec<f64>,
    /// The caller's id of the point at each tree position.
    ids: Vec<u32>,
    nodes: Vec<Node>,
    /// Per node: its lower corner then its upper corner over the indexed coordinates.
    bounds: Vec<f64>,
    /// Per node: all its points are known to be connected (see the module doc).
    units: Vec<AtomicBool>,
}

/// What the build needs besides the points.
#[derive(Clone, Copy)]
struct BuildParams<'a> {
    dims: usize,
    indexed: &'a [usize],
    clique_below: Option<f64>,
}

/// Nodes (pre-order, children after their parent) and their bounds, for a subtree.
#[derive(Default)]
struct Subtree {
    nodes: Vec<Node>,
    bounds: Vec<f64>,
}

impl Subtree {
    /// Appends `other` (a subtree numbered from 0) and returns the index its root gets here.
    fn append(&mut self, other: Subtree) -> u32 {
        let offset = self.nodes.len() as u32;
        self.nodes.extend(other.nodes.into_iter().map(|mut node| {
            if !node.is_leaf() {
                node.left += offset;
                node.right += offset;
            }
            node
        }));
        self.bounds.extend(other.bounds);
        offset
    }

    /// Pushes a leaf node for positions `start..end` with an empty box; returns its index.
    fn push(&mut self, start: usize, end: usize, dims: usize) -> usize {
        self.nodes.push(Node {
            start: start as u32,
            end: end as u32,
            left: 0,
            right: 0,
            clique: false,
        });
        self.bounds.resize(self.bounds.len() + dims, f64::INFINITY);
        self.bounds
            .resize(self.bounds.len() + dims, f64::NEG_INFINITY);
        self.nodes.len() - 1
    }

    /// Sets a node's box to the tight box of `coords` (its rows) over the indexed
    /// coordinates.
    fn fit_box(&mut self, index: usize, coords: &[f64], params: BuildParams<'_>) {
        let width = params.indexed.len();
        let (lower, upper) =
            self.bounds[2 * width * index..2 * width * (index + 1)].split_at_mut(width);
        for point in coords.chunks_exact(params.dims) {
            for ((low, high), &position) in
                lower.iter_mut().zip(upper.iter_mut()).zip(params.indexed)
            {
                let value = point[position];
                *low = low.min(value);
                *high = high.max(value);
            }
        }
    }

    /// Sets a node's box to the union of its children's boxes.
    fn merge_boxes(&mut self, index: usize, dims: usize) {
        let (left, right) = (
            self.nodes[index].left as usize,
            self.nodes[index].right as usize,
        );
        for k in 0..dims {
            let lower = self.bounds[2 * dims * left + k].min(self.bounds[2 * dims * right + k]);
            let upper = self.bounds[2 * dims * left + dims + k]
                .max(self.bounds[2 * dims * right + dims + k]);
            self.bounds[2 * dims * index + k] = lower;
            self.bounds[2 * dims * index + dims + k] = upper;
        }
    }
}

impl KdTree {
    /// Builds the tree over `ids.len()` points whose coordinates are `points` (row-major,
    /// `dims` per point; the vectors are reordered into tree order and kept). With
    /// `clique_below = Some(t2)`, nodes whose squared bounding-box diagonal is < t2 are
    /// cliques. Panics only on inconsistent arguments (`dims == 0`,
    /// `points.len() != ids.len() * dims`): a programming error of the caller. Large trees
    /// are built on the rayon pool.
    pub fn build(
        points: Vec<f64>,
        ids: Vec<u32>,
        dims: usize,
        clique_below: Option<f64>,
    ) -> KdTree {
        Self::build_indexed(points, ids, dims, (0..dims).collect(), clique_below)
    }

    /// Like [`KdTree::build`], with boxes over the coordinates at `indexed` only (ascending,
    /// non-empty, each < dims); cliques need every coordinate indexed.
    pub fn build_indexed(
        points: Vec<f64>,
        ids: Vec<u32>,
        dims: usize,
        indexed: Vec<usize>,
        clique_below: Option<f64>,
    ) -> KdTree {
        assert!(dims > 0, "a kd-tree needs at least one dimension");
        assert_eq!(points.len(), ids.len() * dims, "points and ids disagree");
        assert!(
            !indexed.is_empty()
                && indexed.windows(2).all(|pair| pair[0] < pair[1])
                && indexed.iter().all(|&position| position < dims),
            "indexed coordinates must be ascending positions below dims"
        );
        let full = indexed.len() == dims;
        let clique_below = if full { clique_below } else { None };
        let mut coords = points;
        let mut ids = ids;
        let params = BuildParams {
            dims,
            indexed: &indexed,
            clique_below,
        };
        let mut subtree = Subtree::default();
        if !ids.is_empty() {
            subtree = build_subtree(&mut coords, &mut ids, 0, params);
            mark_cliques(&mut subtree, params);
        }
        let units = subtree
            .nodes
            .iter()
            .map(|node| AtomicBool::new(node.clique))
            .collect();
        KdTree {
            dims,
            full,
            indexed,
            coords,
            ids,
            nodes: subtree.nodes,
            bounds: subtree.bounds,
            units,
        }
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

    /// Whether node `index` is a unit, marking it when `sink` now connects its points: a
    /// leaf whose points share a root, or a node whose children are units connected to each
    /// other (one check, no descent: units rise as the joins visit the children). Components
    /// only merge, so a unit stays one.
    #[inline]
    fn settle_unit<S: PairSink>(&self, index: u32, sink: &S) -> bool {
        if self.is_unit(index) {
            return true;
        }
        let node = self.nodes[index as usize];
        let united = if node.is_leaf() {
            self.leaf_connected(node, sink)
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
        united
    }

    /// Marks as units the nodes whose points `sink` now connects (bottom-up), so that a
    /// following [`KdTree::cross_join`] can treat them as such.
    pub fn refresh_units<S: PairSink>(&self, sink: &S) {
        // Children come after their parent in `nodes`: walk backwards.
        for index in (0..self.nodes.len() as u32).rev() {
            self.settle_unit(index, sink);
        }
    }

    /// The positions of the coordinates the boxes cover.
    pub fn indexed(&self) -> &[usize] {
        &self.indexed
    }

    #[inline]
    fn corners(&self, node: usize) -> (&[f64], &[f64]) {
        let width = self.indexed.len();
        self.bounds[2 * width * node..2 * width * (node + 1)].split_at(width)
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
                    if within(point, self.point(b), t2) {
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
    /// self-joined first). Both trees must have the same dimensions and indexed coordinates
    /// (else this panics: a programming error). Runs on the rayon pool.
    pub fn cross_join<S: PairSink>(&self, other: &KdTree, t2: f64, sink: &S) {
        assert!(
            self.dims == other.dims && self.indexed == other.indexed,
            "cross_join needs trees over the same coordinates"
        );
        if !self.nodes.is_empty() && !other.nodes.is_empty() {
            join_nodes(self, 0, other, 0, t2, sink);
        }
    }
}

/// Points above which the two halves of a node are built in parallel.
const PARALLEL_BUILD_MIN_POINTS: usize = 16_384;
/// Rows sampled to choose a node's split dimension and pivot.
const SPLIT_SAMPLE: usize = 127;

/// Builds the subtree over `coords`/`ids` (reordering them; tree positions from `start`),
/// numbered from 0, boxes tight. Large nodes build their halves on two rayon workers.
fn build_subtree(
    coords: &mut [f64],
    ids: &mut [u32],
    start: usize,
    params: BuildParams<'_>,
) -> Subtree {
    let mut subtree = Subtree::default();
    if ids.len() <= PARALLEL_BUILD_MIN_POINTS {
        build_node(&mut subtree, coords, ids, start, params);
        return subtree;
    }
    let index = subtree.push(start, start + ids.len(), params.indexed.len());
    let middle = split_rows(coords, ids, params);
    let (left_coords, right_coords) = coords.split_at_mut(middle * params.dims);
    let (left_ids, right_ids) = ids.split_at_mut(middle);
    let (left, right) = rayon::join(
        || build_subtree(left_coords, left_ids, start, params),
        || build_subtree(right_coords, right_ids, start + middle, params),
    );
    let left = subtree.append(left);
    let right = subtree.append(right);
    subtree.nodes[index].left = left;
    subtree.nodes[index].right = right;
    subtree.merge_boxes(index, params.indexed.len());
    subtree
}

/// Appends the node over `coords`/`ids` (tree positions from `start`) and its descendants
/// to `subtree`; returns its index there.
fn build_node(
    subtree: &mut Subtree,
    coords: &mut [f64],
    ids: &mut [u32],
    start: usize,
    params: BuildParams<'_>,
) -> u32 {
    let dims = params.dims;
    let index = subtree.push(start, start + ids.len(), params.indexed.len());
    if ids.len() <= LEAF_SIZE {
        subtree.fit_box(index, coords, params);
        return index as u32;
    }
    let middle = split_rows(coords, ids, params);
    let (left_coords, right_coords) = coords.split_at_mut(middle * dims);
    let (left_ids, right_ids) = ids.split_at_mut(middle);
    let left = build_node(subtree, left_coords, left_ids, start, params);
    let right = build_node(subtree, right_coords, right_ids, start + middle, params);
    subtree.nodes[index].left = left;
    subtree.nodes[index].right = right;
    subtree.merge_boxes(index, params.indexed.len());
    index as u32
}

/// Marks the cliques: nodes whose squared box diagonal is < the clique bound, and every
/// node below a clique (parents come before their children in `nodes`).
fn mark_cliques(subtree: &mut Subtree, params: BuildParams<'_>) {
    let Some(t2) = params.clique_below else {
        return;
    };
    let dims = params.indexed.len();
    for index in 0..subtree.nodes.len() {
        let node = subtree.nodes[index];
        let clique = node.clique || {
            let (lower, upper) =
                subtree.bounds[2 * dims * index..2 * dims * (index + 1)].split_at(dims);
            let mut diagonal = 0.0;
            for (low, high) in lower.iter().zip(upper) {
                let extent = high - low;
                diagonal += extent * extent;
            }
            diagonal < t2
        };
        if clique {
            subtree.nodes[index].clique = true;
            if !node.is_leaf() {
                subtree.nodes[node.left as usize].clique = true;
                subtree.nodes[node.right as usize].clique = true;
            }
        }
    }
}

/// Splits the rows in two (at least one row each side) and returns the size of the first
/// part. The dimension is the widest over a sample of rows and the pivot the sample's
/// median: rows below it go first. (Any split is correct, boxes being fitted afterwards;
/// this one keeps the tree balanced and its boxes small.)
fn split_rows(coords: &mut [f64], ids: &mut [u32], params: BuildParams<'_>) -> usize {
    let dims = params.dims;
    let count = ids.len();
    let sample = count.min(SPLIT_SAMPLE);
    let sampled_row = |s: usize| s * count / sample;
    let mut split_dim = params.indexed[0];
    let mut widest = -1.0;
    for &dim in params.indexed {
        let (mut low, mut high) = (f64::INFINITY, f64::NEG_INFINITY);
        for s in 0..sample {
            let value = coords[sampled_row(s) * dims + dim];
            low = low.min(value);
            high = high.max(value);
        }
        // NaN extents (infinite coordinates) never win.
        if high - low > widest {
            widest = high - low;
            split_dim = dim;
        }
    }
    let mut keys: [f64; SPLIT_SAMPLE] = [0.0; SPLIT_SAMPLE];
    for (s, key) in keys[..sample].iter_mut().enumerate() {
        *key = coords[sampled_row(s) * dims + split_dim];
    }
    let keys = &mut keys[..sample];
    keys.select_nth_unstable_by(sample / 2, f64::total_cmp);
    let pivot = keys[sample / 2];
    let key = |coords: &[f64], row: usize| coords[row * dims + split_dim];
    let mut middle = partition_rows(coords, ids, dims, |c, row| key(c, row) < pivot);
    if middle == 0 {
        middle = partition_rows(coords, ids, dims, |c, row| key(c, row) <= pivot);
    }
    if middle == 0 || middle == count {
        // All keys (nearly) equal: any halving will do.
        middle = count / 2;
    }
    middle
}

/// Moves the rows satisfying `goes_first` before the others (Hoare-style swaps of whole
/// rows and their ids); returns how many there are.
fn partition_rows(
    coords: &mut [f64],
    ids: &mut [u32],
    dims: usize,
    goes_first: impl Fn(&[f64], usize) -> bool,
) -> usize {
    let (mut low, mut high) = (0, ids.len());
    loop {
        while low < high && goes_first(coords, low) {
            low += 1;
        }
        while low < high && !goes_first(coords, high - 1) {
            high -= 1;
        }
        if low + 1 >= high {
            return low;
        }
        // Row `low` goes second, row `high - 1` goes first: swap them.
        let (head, tail) = coords.split_at_mut((high - 1) * dims);
        head[low * dims..(low + 1) * dims].swap_with_slice(&mut tail[..dims]);
        ids.swap(low, high - 1);
        low += 1;
        high -= 1;
    }
}

/// Squared distance between the boxes of two nodes: a lower bound of every pair's.
#[inline]
fn box_min_distance2(first: &KdTree, a: u32, second: &KdTree, b: u32) -> f64 {
    // Both trees index the same coordinates (checked by `cross_join`).
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
    if !first.full {
        return f64::INFINITY;
    }
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
    // Settled on every visit: once a giant component has formed, most node pairs inside
    // it end here after one root comparison instead of comparing their points.
    let unit_a = first.settle_unit(a, sink);
    let unit_b = second.settle_unit(b, sink);
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
        join_leaves(first, a, unit_a, second, b, unit_b, t2, sink);
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
/// units need one pair in all. Points out of reach of the other leaf's box are skipped.
#[allow(clippy::too_many_arguments)]
fn join_leaves<S: PairSink>(
    first: &KdTree,
    index_a: u32,
    unit_a: bool,
    second: &KdTree,
    index_b: u32,
    unit_b: bool,
    t2: f64,
    sink: &S,
) {
    let node_a = first.nodes[index_a as usize];
    let node_b = second.nodes[index_b as usize];
    let range_a = node_a.start as usize..node_a.end as usize;
    let range_b = node_b.start as usize..node_b.end as usize;
    let (lower_a, upper_a) = first.corners(index_a as usize);
    let (lower_b, upper_b) = second.corners(index_b as usize);
    match (unit_a, unit_b) {
        (true, true) => {
            for a in range_a {
                let point = first.point(a);
                if !reaches_box(point, second, lower_b, upper_b, t2) {
                    continue;
                }
                if range_b.clone().any(|b| within(point, second.point(b), t2)) {
                    sink.pair(first.ids[a], second.ids[range_b.start]);
                    return;
                }
            }
        }
        (true, false) => {
            let member = first.ids[range_a.start];
            for b in range_b {
                let point = second.point(b);
                if !reaches_box(point, first, lower_a, upper_a, t2)
                    || sink.connected(member, second.ids[b])
                {
                    continue;
                }
                if range_a.clone().any(|a| within(first.point(a), point, t2)) {
                    sink.pair(member, second.ids[b]);
                }
            }
        }
        (false, true) => {
            let member = second.ids[range_b.start];
            for a in range_a {
                let point = first.point(a);
                if !reaches_box(point, second, lower_b, upper_b, t2)
                    || sink.connected(first.ids[a], member)
                {
                    continue;
                }
                if range_b.clone().any(|b| within(point, second.point(b), t2)) {
                    sink.pair(first.ids[a], member);
                }
            }
        }
        (false, false) => {
            for a in range_a {
                let point = first.point(a);
                if !reaches_box(point, second, lower_b, upper_b, t2) {
                    continue;
                }
                for b in range_b.clone() {
                    if within(point, second.point(b), t2) {
                        sink.pair(first.ids[a], second.ids[b]);
                    }
                }
            }
        }
    }
}

/// Whether the box may hold a point within range of `point` (squared distance to the box,
/// sequential over the dimensions, < t2; false for NaN, which only infinities produce).
#[inline]
fn reaches_box(point: &[f64], tree: &KdTree, lower: &[f64], upper: &[f64], t2: f64) -> bool {
    let gap = |value: f64, low: f64, high: f64| {
        if value < low {
            low - value
        } else if value > high {
            value - high
        } else {
            0.0
        }
    };
    let mut sum = 0.0;
    if tree.full {
        for ((&value, &low), &high) in point.iter().zip(lower).zip(upper) {
            let gap = gap(value, low, high);
            sum += gap * gap;
        }
    } else {
        for ((&position, &low), &high) in tree.indexed.iter().zip(lower).zip(upper) {
            let gap = gap(point[position], low, high);
            sum += gap * gap;
        }
    }
    sum < t2
}

/// `squared_distance(a, b) < t2`, giving up as soon as a partial sum reaches t2 (partial
/// sums of non-negative terms never decrease, rounding included).
#[inline]
fn within(a: &[f64], b: &[f64], t2: f64) -> bool {
    let mut sum = 0.0;
    for (chunk_a, chunk_b) in a.chunks(4).zip(b.chunks(4)) {
        for (&x, &y) in chunk_a.iter().zip(chunk_b) {
            let difference = x - y;
            sum += difference * difference;
        }
        if sum >= t2 {
            return false;
        }
    }
    sum < t2
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
            let tree = KdTree::build(points.clone(), ids.clone(), dims, None);
            assert_eq!(tree.len(), n);
            let sink = Collect::default();
            tree.self_join(t2, &sink);
            assert_eq!(sink.sorted(), brute_pairs(&points, &ids, dims, t2));
        }
    }

    /// Pairs by a sweep along the first coordinate (for inputs too large for all pairs).
    fn sweep_pairs(points: &[f64], ids: &[u32], dims: usize, t2: f64) -> Vec<(u32, u32)> {
        let mut order: Vec<usize> = (0..ids.len()).collect();
        order.sort_by(|&a, &b| points[a * dims].total_cmp(&points[b * dims]));
        let mut pairs = Vec::new();
        for (rank, &i) in order.iter().enumerate() {
            for &j in &order[rank + 1..] {
                let gap = points[j * dims] - points[i * dims];
                if gap * gap >= t2 {
                    break;
                }
                let a = &points[i * dims..(i + 1) * dims];
                if squared_distance(a, &points[j * dims..(j + 1) * dims]) < t2 {
                    pairs.push((ids[i].min(ids[j]), ids[i].max(ids[j])));
                }
            }
        }
        pairs.sort_unstable();
        pairs
    }

    #[test]
    fn parallel_build_and_join_report_every_pair_once() {
        let (n, dims, t2) = (60_000, 3, 0.0004);
        let points = random_points(12, n, dims, 1.0);
        let ids: Vec<u32> = (0..n as u32).rev().collect();
        let tree = KdTree::build(points.clone(), ids.clone(), dims, None);
        let sink = Collect::default();
        tree.self_join(t2, &sink);
        let pairs = sink.sorted();
        assert!(pairs.len() > 1000);
        assert_eq!(pairs, sweep_pairs(&points, &ids, dims, t2));
        // Every position holds its own point: ids and coordinates moved together.
        for position in 0..n {
            let id = tree.id(position) as usize;
            let original = n - 1 - id;
            assert_eq!(
                tree.point(position),
                &points[original * dims..(original + 1) * dims]
            );
        }
    }

    #[test]
    fn indexed_subsets_still_report_every_pair() {
        let (dims, t2) = (7, 6.0);
        let points = random_points(21, 4000, dims, 4.0);
        let ids: Vec<u32> = (0..4000).collect();
        for indexed in [vec![0], vec![1, 4], vec![0, 2, 3, 6]] {
            let tree = KdTree::build_indexed(points.clone(), ids.clone(), dims, indexed, Some(t2));
            assert!(tree.maximal_cliques().is_empty());
            let sink = Collect::default();
            tree.self_join(t2, &sink);
            assert_eq!(sink.sorted(), brute_pairs(&points, &ids, dims, t2));
        }
        // Cross join of two indexed trees.
        let other = random_points(22, 1500, dims, 4.0);
        let other_ids: Vec<u32> = (10_000..11_500).collect();
        let indexed = vec![2, 5];
        let tree_a = KdTree::build_indexed(points.clone(), ids, dims, indexed.clone(), None);
        let tree_b = KdTree::build_indexed(other.clone(), other_ids, dims, indexed, None);
        let sink = Collect::default();
        tree_a.cross_join(&tree_b, t2, &sink);
        let mut expected = Vec::new();
        for i in 0..4000 {
            for j in 0..1500 {
                let a = &points[i * dims..(i + 1) * dims];
                if squared_distance(a, &other[j * dims..(j + 1) * dims]) < t2 {
                    expected.push((i as u32, 10_000 + j as u32));
                }
            }
        }
        assert_eq!(sink.sorted(), expected);
    }

    #[test]
    fn cross_join_without_cliques_reports_every_pair() {
        let dims = 3;
        let first = random_points(8, 2500, dims, 10.0);
        let second = random_points(9, 1800, dims, 10.0);
        let first_ids: Vec<u32> = (0..2500).collect();
        let second_ids: Vec<u32> = (10_000..11_800).collect();
        let tree_a = KdTree::build(first.clone(), first_ids, dims, None);
        let tree_b = KdTree::build(second.clone(), second_ids, dims, None);
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
        let tree = KdTree::build(points.clone(), ids.clone(), 2, Some(1.0));
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
        let lone = KdTree::build(vec![0.5, 0.0], vec![500], 2, Some(1.0));
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
        let tree = KdTree::build(points.clone(), ids.clone(), 2, None);
        let sink = Collect::default();
        sink.cancel.store(true, Ordering::Relaxed);
        tree.self_join(0.001, &sink);
        assert!(sink.sorted().len() < brute_pairs(&points, &ids, 2, 0.001).len());
    }

    #[test]
    fn degenerate_inputs() {
        let empty = KdTree::build(Vec::new(), Vec::new(), 2, Some(1.0));
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
        let tree = KdTree::build(points.clone(), ids.clone(), 2, None);
        let sink = Collect::default();
        tree.self_join(0.5, &sink);
        assert_eq!(sink.sorted().len(), 100 * 99 / 2);
        let one = KdTree::build(vec![f64::INFINITY, 1.0], vec![7], 2, None);
        let sink = Collect::default();
        tree.cross_join(&one, 0.5, &sink);
        assert!(sink.sorted().is_empty());
    }
}
