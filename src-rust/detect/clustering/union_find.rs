//! The clustering's connectivity: a lock-free union-find the join workers share, the sink
//! that feeds it pairs (and watches the deadline), and the components it ends with.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use rayon::prelude::*;

use super::kdtree::PairSink;
use super::STAGE;
use crate::args::Budget;
use crate::error::{CoreError, CoreResult};

/// A union-find that many threads may update at once: roots are linked by compare-and-swap
/// (the larger index under the smaller, so no cycle can form) and paths are halved on the
/// way up. Components only ever merge, so a "same root" answer is always final.
pub(super) struct ConcurrentUnionFind {
    parent: Vec<AtomicU32>,
}

impl ConcurrentUnionFind {
    pub(super) fn new(n: usize) -> Self {
        ConcurrentUnionFind {
            parent: (0..n as u32).map(AtomicU32::new).collect(),
        }
    }

    /// The current root of `x`'s component.
    #[inline]
    pub(super) fn find(&self, mut x: u32) -> u32 {
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
    pub(super) fn union(&self, a: u32, b: u32) -> u32 {
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

/// Feeds the joins' pairs into the union-find and watches the deadline.
pub(super) struct UnionSink<'a> {
    pub(super) union_find: &'a ConcurrentUnionFind,
    budget: Budget,
    timed_out: AtomicBool,
}

impl<'a> UnionSink<'a> {
    pub(super) fn new(union_find: &'a ConcurrentUnionFind, budget: Budget) -> Self {
        UnionSink {
            union_find,
            budget,
            timed_out: AtomicBool::new(false),
        }
    }

    /// Err(Timeout) once the deadline has passed (remembered for the workers).
    pub(super) fn check(&self) -> CoreResult<()> {
        if self.cancelled() {
            Err(CoreError::Timeout { stage: STAGE })
        } else {
            Ok(())
        }
    }
}

impl PairSink for UnionSink<'_> {
    #[inline]
    fn connected(&self, a: u32, b: u32) -> bool {
        self.union_find.find(a) == self.union_find.find(b)
    }

    #[inline]
    fn pair(&self, a: u32, b: u32) {
        self.union_find.union(a, b);
    }

    fn cancelled(&self) -> bool {
        if self.timed_out.load(Ordering::Relaxed) {
            return true;
        }
        if self.budget.expired() {
            self.timed_out.store(true, Ordering::Relaxed);
            return true;
        }
        false
    }
}

/// Per task its cluster label (-1 outside clusters), and each cluster's members in
/// recording order; clusters numbered in order of their first member.
pub(super) fn components(union_find: &ConcurrentUnionFind, n: usize) -> (Vec<i64>, Vec<Vec<u32>>) {
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
