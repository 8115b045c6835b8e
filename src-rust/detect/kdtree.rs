//! A static kd-tree for fixed-radius neighbour search (the clustering's spatial index).
//!
//! Points are split at the median of their widest dimension down to small leaves; every node
//! keeps the tight bounding box of its points. All tests against the radius use the squared
//! distance accumulated sequentially over the dimensions in order, the same expression the
//! clustering uses for an edge, and bounds that rounding cannot push past it:
//! for a point b in a box, each computed per-dimension gap is <= the computed |q - b| (the
//! exact inequality survives rounding because rounding is monotonic), so the box's lower
//! bound never exceeds, and its upper bound never falls below, the pair's computed distance.
//!
//! Optionally the tree marks *clique* nodes: nodes whose bounding-box diagonal is already
//! below the radius, so every pair of their points is within range. A query then treats a
//! clique node as one unit (see [`NeighbourSink`]).

use std::ops::Range;

/// Points per leaf (unless the node is a clique, which may be a larger leaf's parent).
const LEAF_SIZE: usize = 12;

/// Receives the results of [`KdTree::query`] for one query point q.
pub trait NeighbourSink {
    /// Whether q is already known to be connected to the points of a clique node, given one
    /// of them (`member`); if so the node is skipped.
    fn joined(&mut self, member: u32) -> bool;
    /// q is within range of the point `id`. For a clique node only one member is reported
    /// (the caller has connected a clique's members to each other beforehand).
    fn edge(&mut self, id: u32);
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

/// A kd-tree over `len()` points of `dims()` coordinates, each carrying a caller's id.
#[derive(Debug, Clone)]
pub struct KdTree {
    dims: usize,
    /// Coordinates in tree order, row-major.
    coords: Vec<f64>,
    /// The caller's id of the point at each tree position.
    ids: Vec<u32>,
    nodes: Vec<Node>,
    /// Per node: its lower corner then its upper corner (2·dims values).
    bounds: Vec<f64>,
}

impl KdTree {
    /// Builds the tree over `ids.len()` points whose coordinates are `points` (row-major,
    /// `dims` per point). With `clique_below = Some(t2)`, nodes whose squared bounding-box
    /// diagonal is < t2 are marked as cliques. Panics only on inconsistent argument lengths
    /// (a programming error of the caller).
    pub fn build(points: &[f64], ids: &[u32], dims: usize, clique_below: Option<f64>) -> KdTree {
        assert!(dims > 0, "a kd-tree needs at least one dimension");
        assert_eq!(points.len(), ids.len() * dims, "points and ids disagree");
        let mut tree = KdTree {
            dims,
            coords: Vec::new(),
            ids: Vec::new(),
            nodes: Vec::with_capacity(2 * ids.len() / LEAF_SIZE + 1),
            bounds: Vec::new(),
        };
        if ids.is_empty() {
            return tree;
        }
        let mut order: Vec<u32> = (0..ids.len() as u32).collect();
        tree.build_node(points, &mut order, 0, clique_below, false);
        tree.coords = Vec::with_capacity(points.len());
        for &index in &order {
            let at = index as usize * dims;
            tree.coords.extend_from_slice(&points[at..at + dims]);
        }
        tree.ids = order.iter().map(|&index| ids[index as usize]).collect();
        tree
    }

    /// Builds the node for the points `order` (tree positions `start..`), returns its index.
    fn build_node(
        &mut self,
        points: &[f64],
        order: &mut [u32],
        start: usize,
        clique_below: Option<f64>,
        parent_clique: bool,
    ) -> u32 {
        let dims = self.dims;
        let index = self.nodes.len();
        let mut lower = vec![f64::INFINITY; dims];
        let mut upper = vec![f64::NEG_INFINITY; dims];
        for &point in order.iter() {
            let coordinates = &points[point as usize * dims..(point as usize + 1) * dims];
            for ((low, high), &value) in lower.iter_mut().zip(upper.iter_mut()).zip(coordinates) {
                *low = low.min(value);
                *high = high.max(value);
            }
        }
        let clique = parent_clique
            || clique_below.is_some_and(|t2| {
                let mut diagonal = 0.0;
                for (low, high) in lower.iter().zip(&upper) {
                    let extent = high - low;
                    diagonal += extent * extent;
                }
                diagonal < t2
            });
        // Split along the widest dimension (NaN extents, from infinite coordinates, never
        // win); even all-equal points are split so that no leaf grows large.
        let mut split_dim = 0;
        let mut widest = -1.0;
        for (dim, (low, high)) in lower.iter().zip(&upper).enumerate() {
            let extent = high - low;
            if extent > widest {
                widest = extent;
                split_dim = dim;
            }
        }
        self.bounds.extend_from_slice(&lower);
        self.bounds.extend_from_slice(&upper);
        self.nodes.push(Node {
            start: start as u32,
            end: (start + order.len()) as u32,
            left: 0,
            right: 0,
            clique,
        });
        if order.len() > LEAF_SIZE {
            let middle = order.len() / 2;
            order.select_nth_unstable_by(middle, |&a, &b| {
                let va = points[a as usize * dims + split_dim];
                let vb = points[b as usize * dims + split_dim];
                va.total_cmp(&vb)
            });
            let (left_points, right_points) = order.split_at_mut(middle);
            let left = self.build_node(points, left_points, start, clique_below, clique);
            let right = self.build_node(points, right_points, start + middle, clique_below, clique);
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
            } else if node.left != 0 {
                stack.push(node.right);
                stack.push(node.left);
            }
        }
        cliques
    }

    /// Squared distance from q to the box of `node` (0 inside): a lower bound.
    #[inline]
    fn min_distance2(&self, node: usize, q: &[f64]) -> f64 {
        let corners = &self.bounds[2 * self.dims * node..2 * self.dims * (node + 1)];
        let (lower, upper) = corners.split_at(self.dims);
        let mut sum = 0.0;
        for ((&value, &low), &high) in q.iter().zip(lower).zip(upper) {
            let gap = if value < low {
                low - value
            } else if value > high {
                value - high
            } else {
                0.0
            };
            sum += gap * gap;
        }
        sum
    }

    /// Squared distance from q to the farthest corner of the box of `node`: an upper bound.
    #[inline]
    fn max_distance2(&self, node: usize, q: &[f64]) -> f64 {
        let corners = &self.bounds[2 * self.dims * node..2 * self.dims * (node + 1)];
        let (lower, upper) = corners.split_at(self.dims);
        let mut sum = 0.0;
        for ((&value, &low), &high) in q.iter().zip(lower).zip(upper) {
            let gap = (value - low).abs().max((high - value).abs());
            sum += gap * gap;
        }
        sum
    }

    /// Reports to `sink` the points at positions >= `min_position` whose squared distance
    /// from `q` (sequential over the dimensions) is < `t2`, clique nodes as one unit (see
    /// [`NeighbourSink`]). `stack` is scratch space reused across queries.
    pub fn query<S: NeighbourSink>(
        &self,
        q: &[f64],
        t2: f64,
        min_position: usize,
        stack: &mut Vec<u32>,
        sink: &mut S,
    ) {
        if self.nodes.is_empty() || q.len() != self.dims {
            return;
        }
        stack.clear();
        stack.push(0);
        while let Some(index) = stack.pop() {
            let index = index as usize;
            let node = self.nodes[index];
            if node.end as usize <= min_position {
                continue;
            }
            // A NaN bound comes only from infinite coordinates, never within range: skip too.
            let within_reach = self.min_distance2(index, q) < t2;
            if !within_reach {
                continue;
            }
            if node.clique {
                if sink.joined(self.ids[node.start as usize]) {
                    continue;
                }
                if self.max_distance2(index, q) < t2 {
                    sink.edge(self.ids[node.start as usize]);
                    continue;
                }
            }
            if node.left == 0 {
                let first = (node.start as usize).max(min_position);
                for position in first..node.end as usize {
                    if squared_distance(q, self.point(position)) < t2 {
                        sink.edge(self.ids[position]);
                        if node.clique {
                            break;
                        }
                    }
                }
            } else {
                stack.push(node.right);
                stack.push(node.left);
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

    /// Collects every reported id (cliques disabled in these tests unless stated).
    struct Collect(Vec<u32>);

    impl NeighbourSink for Collect {
        fn joined(&mut self, _member: u32) -> bool {
            false
        }
        fn edge(&mut self, id: u32) {
            self.0.push(id);
        }
    }

    fn random_points(seed: u64, n: usize, dims: usize, scale: f64) -> Vec<f64> {
        let mut rng = SplitMix64::new(seed);
        (0..n * dims).map(|_| rng.next_f64() * scale).collect()
    }

    #[test]
    fn range_query_matches_brute_force() {
        let dims = 3;
        let n = 2000;
        let points = random_points(5, n, dims, 10.0);
        let ids: Vec<u32> = (0..n as u32).map(|i| i * 3).collect();
        let tree = KdTree::build(&points, &ids, dims, None);
        assert_eq!(tree.len(), n);
        let t2 = 0.8;
        let mut stack = Vec::new();
        for query in 0..50 {
            let q = &points[query * dims..(query + 1) * dims];
            let mut sink = Collect(Vec::new());
            tree.query(q, t2, 0, &mut stack, &mut sink);
            sink.0.sort_unstable();
            let expected: Vec<u32> = (0..n)
                .filter(|&j| squared_distance(q, &points[j * dims..(j + 1) * dims]) < t2)
                .map(|j| ids[j])
                .collect();
            assert_eq!(sink.0, expected);
        }
    }

    #[test]
    fn min_position_restricts_to_later_positions() {
        let points = random_points(9, 500, 2, 1.0);
        let ids: Vec<u32> = (0..500).collect();
        let tree = KdTree::build(&points, &ids, 2, None);
        let mut stack = Vec::new();
        let mut pairs = 0;
        for position in 0..tree.len() {
            let mut sink = Collect(Vec::new());
            tree.query(
                tree.point(position),
                0.01,
                position + 1,
                &mut stack,
                &mut sink,
            );
            pairs += sink.0.len();
        }
        let mut expected = 0;
        for i in 0..500 {
            for j in i + 1..500 {
                if squared_distance(&points[2 * i..2 * i + 2], &points[2 * j..2 * j + 2]) < 0.01 {
                    expected += 1;
                }
            }
        }
        assert_eq!(pairs, expected);
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
        let cliques = tree.maximal_cliques();
        assert_eq!(cliques.len(), 2);
        let mut members: Vec<Vec<u32>> = cliques
            .iter()
            .map(|range| {
                let mut ids: Vec<u32> = range.clone().map(|p| tree.id(p)).collect();
                ids.sort_unstable();
                ids
            })
            .collect();
        members.sort();
        assert_eq!(members[0], (0..40).collect::<Vec<u32>>());
        assert_eq!(members[1], (40..80).collect::<Vec<u32>>());
        // A query near one group reports a single member of it.
        let mut sink = Collect(Vec::new());
        tree.query(&[0.5, 0.0], 1.0, 0, &mut Vec::new(), &mut sink);
        assert_eq!(sink.0.len(), 1);
        assert!(sink.0[0] < 40);
    }

    #[test]
    fn degenerate_inputs() {
        let empty = KdTree::build(&[], &[], 2, Some(1.0));
        assert!(empty.is_empty());
        assert!(empty.maximal_cliques().is_empty());
        let mut sink = Collect(Vec::new());
        empty.query(&[0.0, 0.0], 1.0, 0, &mut Vec::new(), &mut sink);
        assert!(sink.0.is_empty());
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
        tree.query(&[1.0, 1.0], 0.5, 0, &mut Vec::new(), &mut sink);
        assert_eq!(sink.0.len(), 100);
        let mut sink = Collect(Vec::new());
        tree.query(&[f64::INFINITY, 1.0], 0.5, 0, &mut Vec::new(), &mut sink);
        assert!(sink.0.is_empty());
    }
}
