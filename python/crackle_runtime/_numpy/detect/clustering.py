"""Clustering (SPEC §6), the twin of the Rust core's ``detect::clustering``: the connected
components of the graph joining two tasks when they share at least one metric and their
Euclidean distance over the shared metrics is below the threshold, with each cluster's
average pairwise distance (exact up to 4,096 members, else from a fixed SplitMix64 sample).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from crackle_runtime._args import Budget, Params
from crackle_runtime._numpy._rng import splitmix64
from crackle_runtime._numpy._stats import sequential_sum
from crackle_runtime._numpy.detect.shared.columns import as_columns

__all__ = ["FIELDS", "KIND", "NAME", "PARAMS", "cluster_components", "run"]

NAME = "clustering"
KIND = "clustering"
FIELDS = ("label", "avg_distance", "sampled")
PARAMS: dict[str, Any] = {"threshold": 2.5}

Float64Array = NDArray[np.float64]
Int64Array = NDArray[np.int64]
BoolArray = NDArray[np.bool_]

STAGE = "clustering"
# Clustering: exact average distance up to this many members, else sampled.
EXACT_AVERAGE_MAX_MEMBERS = 4096
DENSE_MIN_MEMBERS = 64  # from this size on, a cluster's pairs are computed as dense blocks
SAMPLE_DRAWS = 240_000  # SplitMix64 outputs per sampled cluster: 120,000 pairs
SAMPLE_SEED = 0x5EED_C1A5_7E00_0000
# Elements of one pairwise block (rows x columns); bounds the memory of a block to a few
# arrays of this many float64s.
BLOCK_ELEMENTS = 1 << 21
# Values per block of tasks when the coordinates are prepared (a deadline check each).
PREPARE_ELEMENTS = 1 << 18
# Most rows of a sweep block once the pairs inside its largest component are skipped.
MAX_BLOCK_ROWS = 1 << 14
# Tasks every task is first compared with when the sweep leaves many candidates, and how
# many times their cost the sweep's candidate pairs must be.
ANCHORS = 256
ANCHOR_GAIN = 2
# A block skips the pairs inside its largest component when they are at least this share.
PRUNE_FRACTION = 0.25
# Below this share of a block's pairs still to decide, pairs are checked one by one.
SPARSE_FRACTION = 0.05
# Up to this many distinct metric-presence patterns, which pairs share a metric is looked up.
MAX_PATTERNS = 2048
_NO_EDGES = (np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64))
_EPSILON = float(np.finfo(np.float64).eps)
_MASK64 = (1 << 64) - 1
# Extreme values may overflow a square to inf (then no edge, or an inf statistic, as in the
# Rust core); that is a result, not a warning for the caller.
_QUIET_FLOATS = np.errstate(over="ignore", invalid="ignore")


def run(columns: Float64Array, params: Params, budget: Budget) -> dict[str, Any]:
    threshold = params.finite("threshold", 0.0, inclusive=False)
    labels, average, sampled = cluster_components(columns, threshold, budget)
    return {"label": labels, "avg_distance": average, "sampled": sampled}


def _union(parent: Int64Array, u: Int64Array, v: Int64Array) -> None:
    """Join the components of the edges (u, v) in ``parent`` (in place).

    ``parent`` is a forest with parent[i] <= i kept fully compressed (every entry is a root,
    the lowest index of its component). Each round hooks the larger root of every edge still
    crossing two components under the smaller one, then compresses by pointer jumping.
    """
    while u.size:
        root_u = parent[u]
        root_v = parent[v]
        crossing = root_u != root_v
        if not crossing.any():
            return
        u, v = u[crossing], v[crossing]
        root_u, root_v = root_u[crossing], root_v[crossing]
        np.minimum.at(parent, np.maximum(root_u, root_v), np.minimum(root_u, root_v))
        while True:
            jumped = parent[parent]
            if np.array_equal(jumped, parent):
                break
            parent[:] = jumped


def _pair_squared_distances(
    values: Float64Array, present: BoolArray, first: Int64Array, second: Int64Array
) -> tuple[Float64Array, BoolArray]:
    """d2 of the task pairs (first[p], second[p]) over their shared metrics, accumulated
    metric by metric in column order, and whether they share any metric."""
    d2 = np.zeros(first.shape, dtype=np.float64)
    shared = np.zeros(first.shape, dtype=np.bool_)
    for metric in range(values.shape[0]):
        both = present[metric, first] & present[metric, second]
        difference = values[metric, first] - values[metric, second]
        d2 += np.where(both, difference * difference, 0.0)
        shared |= both
    return d2, shared


def _presence_patterns(task_present: BoolArray) -> tuple[BoolArray, Int64Array]:
    """The distinct rows of ``task_present`` (tasks x metrics) and each task's row among
    them. Rows are packed to bytes first (``np.unique(axis=0)`` on the bools sorts n rows
    of m void bytes, seconds for 100k x 64); the order of the patterns does not matter."""
    tasks, metrics = task_present.shape
    if task_present.all():
        return np.ones((1, metrics), dtype=np.bool_), np.zeros(tasks, dtype=np.int64)
    packed = np.packbits(task_present, axis=1)
    if packed.shape[1] <= 8:
        keys = np.zeros((tasks, 8), dtype=np.uint8)
        keys[:, : packed.shape[1]] = packed
        words = keys.view(np.uint64).reshape(-1)
        _, first, pattern_of = np.unique(words, return_index=True, return_inverse=True)
    else:
        rows = np.ascontiguousarray(packed).view(np.dtype((np.void, packed.shape[1])))
        _, first, pattern_of = np.unique(rows.reshape(-1), return_index=True, return_inverse=True)
    return task_present[first], pattern_of.reshape(-1).astype(np.int64)


class _PairIndex:
    """Candidate generation for the clustering graph: blocked pairwise squared distances by
    one matrix product per block, over a 1-D sweep along one metric.

    Tasks having the sweep metric are sorted by it; a block of consecutive sorted tasks only
    needs the columns whose sweep value lies within the threshold of the block's range (tasks
    lacking the sweep metric are compared with everything). In each block the squared
    distances over shared metrics come from one GEMM of masked, centered coordinates z:
    d2 = |z_i|^2 + |z_j|^2 - 2 z_i . z_j when every task has every metric, else
    q_i . m_j + m_i . q_j - 2 z_i . z_j (q = z^2, m = presence). Pairs clearly below or above
    threshold^2 are decided from it; the thin band where its rounding error could matter is
    decided by the exact sequential d2 of the contract (``sqrt(d2) < threshold``).
    Every per-task array is kept in sweep order, so a block's rows and columns are slices.
    """

    def __init__(
        self, values: Float64Array, present: BoolArray, threshold: float, budget: Budget
    ) -> None:
        self.values = values
        self.present = present
        self.threshold = threshold
        self.threshold2 = threshold * threshold
        metrics = values.shape[0]
        self._sweep(np.flatnonzero(present.any(axis=0)), budget)  # tasks having >= 1 metric
        budget.check(STAGE)

        # Task-major masked, centered coordinates, in sweep order, filled in blocks of
        # tasks (the deadline is checked between blocks).
        tasks = self.order.size
        counts = present.sum(axis=1)
        centers = np.where(present, values, 0.0).sum(axis=1) / np.maximum(counts, 1)
        self.complete = bool((counts == tasks).all())
        width = metrics if self.complete else 3 * metrics
        task_present = np.empty((tasks, metrics), dtype=np.bool_)
        self.norms = np.empty(tasks)
        self.left = np.empty((tasks, width))
        self.right = np.empty((tasks, width))
        block = max(1, PREPARE_ELEMENTS // max(metrics, 1))
        for start in range(0, tasks, block):
            budget.check(STAGE)
            rows = slice(start, min(tasks, start + block))
            block_present = present[:, self.order[rows]].T
            centered = np.where(block_present, values[:, self.order[rows]].T - centers, 0.0)
            squares = centered * centered
            self.norms[rows] = squares.sum(axis=1)
            task_present[rows] = block_present
            if self.complete:
                self.left[rows] = centered
                self.right[rows] = -2.0 * centered
            else:
                self.left[rows] = np.hstack([squares, block_present, centered])
                self.right[rows] = np.hstack([block_present, squares, -2.0 * centered])
        budget.check(STAGE)
        # Pairs sharing no metric are never joined. Which presence patterns overlap is known
        # from the distinct patterns; only when some pair of them is disjoint does a block
        # need the test, by pattern lookup (or a GEMM of the masks if patterns abound).
        patterns, self.pattern_of = _presence_patterns(task_present)
        self.overlap: BoolArray | None = None
        self.mask: Float64Array | None = None
        if patterns.shape[0] <= MAX_PATTERNS:
            pattern_mask = patterns.astype(np.float64)
            overlap = (pattern_mask @ pattern_mask.T) > 0.5
            if not overlap.all():
                self.overlap = overlap
        else:
            self.mask = task_present.astype(np.float64)
        # Bound of the rounding error of the GEMM estimate, of the centering and of the
        # exact sequential d2, relative to |z_i|^2 + |z_j|^2 + threshold^2 (generous).
        self.tolerance_scale = 16.0 * (metrics + 4) * _EPSILON
        # The estimate needs its sums of squares far from overflow (a sum of 3m products,
        # each at most the larger norm); beyond that every pair takes the exact path.
        largest_norm = float(self.norms.max()) if self.norms.size else 0.0
        self.approximate = largest_norm < 1e300 and 0.0 < self.threshold2 < 1e300

    def _sweep(self, active: Int64Array, budget: Budget) -> None:
        """Sort the active tasks along the metric that prunes the most pairs; tasks lacking
        it go last (``self.order``: task indices in sweep order)."""
        best_cost, best_metric = math.inf, -1
        for metric in range(self.values.shape[0]):
            budget.check(STAGE)
            has = self.present[metric, active]
            count = int(has.sum())
            if count == 0:
                continue
            column = self.values[metric, active][has]
            spread = float(column.max() - column.min())
            window = 1.0 if spread == 0.0 else min(1.0, 2.0 * self.threshold / spread)
            cost = (active.size - count) * active.size + count * count * window
            if cost < best_cost:
                best_cost, best_metric = cost, metric
        if best_metric < 0:
            self.order = active
            self.swept = 0
            self.sweep_values = np.empty(0)
            self.window = math.inf
            return
        has = self.present[best_metric, active]
        with_metric = active[has]
        column = self.values[best_metric, with_metric]
        by_value = np.argsort(column, kind="stable")
        self.order = np.concatenate([with_metric[by_value], active[~has]])
        self.swept = with_metric.size
        self.sweep_values = column[by_value]
        largest = float(np.abs(self.sweep_values).max())
        # Wider than the threshold by more than the rounding of the comparisons, so that no
        # pair closer than the threshold falls outside a block's window.
        self.window = self.threshold * (1.0 + 1e-6) + 8.0 * float(np.spacing(largest))

    def _deviation(self, rows: Int64Array | slice, columns: Int64Array | slice) -> Float64Array:
        """The GEMM estimate of d2 - threshold^2 for the sweep positions rows x columns."""
        deviation = self.left[rows] @ self.right[columns].T
        if self.complete:
            deviation += (self.norms[rows] - self.threshold2)[:, None]
            deviation += self.norms[columns][None, :]
        else:
            deviation -= self.threshold2
        return deviation

    def _edges(
        self, parent: Int64Array, rows: Int64Array | slice, columns: Int64Array | slice
    ) -> tuple[Int64Array, Int64Array]:
        """Edges between the sweep positions ``rows`` x ``columns`` whose tasks are not yet
        in one component, as pairs of task indices."""
        row_tasks = self.order[rows]
        column_tasks = self.order[columns]
        separate = parent[row_tasks][:, None] != parent[column_tasks][None, :]
        if self.overlap is not None:
            separate &= self.overlap[
                self.pattern_of[rows][:, None], self.pattern_of[columns][None, :]
            ]
        elif self.mask is not None:
            separate &= (self.mask[rows] @ self.mask[columns].T) > 0.5
        pending = np.count_nonzero(separate)
        if pending == 0:  # the block lies inside components found already
            return _NO_EDGES
        # Keep only the rows and columns with a pair left to decide (once a big component
        # has formed, that is a few stragglers).
        row_pending = separate.any(axis=1)
        column_pending = separate.any(axis=0)
        if not (row_pending.all() and column_pending.all()):
            separate = separate[np.ix_(row_pending, column_pending)]
            rows = _positions(rows)[row_pending]
            columns = _positions(columns)[column_pending]
            row_tasks, column_tasks = row_tasks[row_pending], column_tasks[column_pending]
        if not self.approximate or pending < SPARSE_FRACTION * separate.size:
            # Few pairs left to decide: the exact d2 of each beats a GEMM of the block.
            candidate_rows, candidate_columns = np.divmod(
                np.flatnonzero(separate), separate.shape[1]
            )
            undecided = np.ones(candidate_rows.size, dtype=np.bool_)
            certain = np.zeros(candidate_rows.size, dtype=np.bool_)
        else:
            deviation = self._deviation(rows, columns)
            # One bound for the block: the largest norms on either side.
            tolerance = self.tolerance_scale * (
                float(self.norms[rows].max()) + float(self.norms[columns].max()) + self.threshold2
            )
            separate &= deviation <= tolerance
            candidate_rows, candidate_columns = np.divmod(
                np.flatnonzero(separate), separate.shape[1]
            )
            certain = deviation[candidate_rows, candidate_columns] < -tolerance
            undecided = ~certain
        first = row_tasks[candidate_rows]
        second = column_tasks[candidate_columns]
        if undecided.any():
            d2, shared = _pair_squared_distances(
                self.values, self.present, first[undecided], second[undecided]
            )
            certain[undecided] = shared & (np.sqrt(d2) < self.threshold)
        return first[certain], second[certain]

    def join(self, parent: Int64Array, budget: Budget) -> None:
        """Union every edge of the graph into ``parent``, block by block of sweep rows.

        A block whose pairs lie mostly inside one component (noise in a few dimensions is
        one giant component) skips those pairs without forming them, and the next block
        grows; any other block is sized to one GEMM of its pairs, as its reach gives.
        Pairs already in one component have no edge to add, so the components are those
        of the plain blocked comparison of every candidate pair.
        """
        total = self.order.size
        swept = self.swept
        if self.approximate:
            self._join_anchors(parent, budget)
        block_rows = max(8, BLOCK_ELEMENTS // max(total, 1))
        start = 0
        while start < swept:
            budget.check(STAGE)
            stop = min(swept, start + block_rows)
            reach = int(
                np.searchsorted(
                    self.sweep_values, self.sweep_values[stop - 1] + self.window, side="right"
                )
            )
            # Earlier sorted tasks were paired with this block when their own block ran.
            width = reach - start + total - swept
            rows = np.arange(start, stop)
            columns = np.arange(start, reach)
            if swept < total:
                columns = np.concatenate([columns, np.arange(swept, total)])
            inside = self._inside_largest(parent, rows, columns)
            if inside is None:  # the plain block: every candidate pair
                pending = width
            else:
                row_in, column_in = inside
                outside_rows = int(rows.size - row_in.sum())
                pending = int(columns.size - column_in.sum()) + (
                    outside_rows * columns.size
                ) // max(rows.size, 1)
            fitting = max(8, BLOCK_ELEMENTS // max(pending, 1))
            if rows.size > 4 * fitting:  # a grown block left the large component: shrink
                block_rows = fitting
                continue
            if inside is None:
                first, second = self._edges(parent, slice(start, stop), _as_index(columns))
                _union(parent, first, second)
            else:
                self._join_outside(parent, rows, columns, *inside, budget)
            block_rows = min(fitting, MAX_BLOCK_ROWS)
            start = stop
        # Tasks lacking the sweep metric against every task (each pair once).
        block_rows = max(8, BLOCK_ELEMENTS // max(total, 1))
        start = swept
        while start < total:
            budget.check(STAGE)
            stop = min(total, start + block_rows)
            columns = np.concatenate([np.arange(0, swept), np.arange(start, total)])
            first, second = self._edges(parent, slice(start, stop), columns)
            _union(parent, first, second)
            start = stop

    def _join_anchors(self, parent: Int64Array, budget: Budget) -> None:
        """When the sweep leaves most pairs as candidates (dense data), first join the
        anchors (tasks spread along the sweep) with each other and every task with its
        nearest anchor, so that a large component forms at once and the blocks skip its
        pairs. Costs tasks x ANCHORS estimates and at most one edge per task; only done
        when the sweep's candidate pairs are ANCHOR_GAIN times more and a quarter of the
        anchors are in one component."""
        total = self.order.size
        swept = self.swept
        if total < 4 * ANCHORS:
            return
        reach = np.searchsorted(self.sweep_values, self.sweep_values + self.window, side="right")
        candidates = int((reach - np.arange(swept)).sum()) + (total - swept) * total
        if candidates < ANCHOR_GAIN * ANCHORS * total:
            return
        anchors = np.unique(np.linspace(0, total - 1, ANCHORS).round().astype(np.int64))
        first, second = self._edges(parent, anchors, anchors)
        _union(parent, first, second)
        if np.bincount(parent[self.order[anchors]]).max() < PRUNE_FRACTION * anchors.size:
            return  # no large component among the anchors: nothing for the blocks to skip
        step = max(1, BLOCK_ELEMENTS // anchors.size)
        for start in range(0, total, step):
            budget.check(STAGE)
            rows = slice(start, min(total, start + step))
            nearest = anchors[np.argmin(self._deviation(rows, anchors), axis=1)]
            first, second = self.order[rows], self.order[nearest]
            d2, shared = _pair_squared_distances(self.values, self.present, first, second)
            joined = shared & (np.sqrt(d2) < self.threshold)
            _union(parent, first[joined], second[joined])

    def _inside_largest(
        self, parent: Int64Array, rows: Int64Array, columns: Int64Array
    ) -> tuple[BoolArray, BoolArray] | None:
        """Which rows and columns (sweep positions) of a block are in its largest
        component, when at least PRUNE_FRACTION of its pairs lie inside it; else None."""
        row_in_roots = parent[self.order[rows]]
        column_roots = parent[self.order[columns]]
        largest = int(np.argmax(np.bincount(np.concatenate([row_in_roots, column_roots]))))
        row_in = row_in_roots == largest
        column_in = column_roots == largest
        inside = int(row_in.sum()) * int(column_in.sum())
        if inside < PRUNE_FRACTION * rows.size * columns.size:
            return None
        return row_in, column_in

    def _join_outside(
        self,
        parent: Int64Array,
        rows: Int64Array,
        columns: Int64Array,
        row_in: BoolArray,
        column_in: BoolArray,
        budget: Budget,
    ) -> None:
        """Union the edges of every pair of the block with a row or a column outside its
        largest component (each such pair once); the pairs inside are never formed."""
        for pair_rows, pair_columns in (
            (rows, columns[~column_in]),
            (rows[~row_in], columns[column_in]),
        ):
            step = max(1, BLOCK_ELEMENTS // max(pair_columns.size, 1))
            for first_row in range(0, pair_rows.size if pair_columns.size else 0, step):
                budget.check(STAGE)
                first, second = self._edges(
                    parent, pair_rows[first_row : first_row + step], pair_columns
                )
                _union(parent, first, second)


def _as_index(positions: Int64Array) -> Int64Array | slice:
    """Ascending distinct positions as a slice when they are contiguous (a view, no copy)."""
    if positions.size and positions.size == 1 + int(positions[-1]) - int(positions[0]):
        return slice(int(positions[0]), int(positions[-1]) + 1)
    return positions


def _positions(index: Int64Array | slice) -> Int64Array:
    """An index (array or slice with explicit bounds) as an array of positions."""
    if isinstance(index, slice):
        return np.arange(index.start, index.stop)
    return index


def _average_distances(
    values: Float64Array,
    present: BoolArray,
    labels: Int64Array,
    clusters: int,
    budget: Budget,
) -> tuple[Float64Array, BoolArray]:
    """Mean distance over the member pairs sharing a metric, per cluster: exact (pairs a < b
    in recording order, summed in that order) up to EXACT_AVERAGE_MAX_MEMBERS members, else
    from the SplitMix64 sample of the contract."""
    average = np.full(clusters, np.nan)
    sampled = np.zeros(clusters, dtype=np.bool_)
    if clusters == 0:
        return average, sampled
    clustered = np.flatnonzero(labels >= 0)
    members = clustered[np.argsort(labels[clustered], kind="stable")]  # by cluster, then index
    sizes = np.bincount(labels[clustered], minlength=clusters)
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])

    # Small clusters in batches: every ordered pair of a batch at once, a < b kept.
    batch: list[int] = []
    batch_pairs = 0

    def flush() -> None:
        nonlocal batch_pairs
        if batch:
            _exact_batch(values, present, members, sizes, offsets, np.array(batch), average)
            batch.clear()
            batch_pairs = 0
            budget.check(STAGE)

    for cluster in range(clusters):
        size = int(sizes[cluster])
        if size > EXACT_AVERAGE_MAX_MEMBERS:
            average[cluster] = _sampled_average(
                values, present, members[offsets[cluster] : offsets[cluster] + size], cluster
            )
            sampled[cluster] = True
            budget.check(STAGE)
        elif size >= DENSE_MIN_MEMBERS:
            average[cluster] = _exact_dense(
                values, present, members[offsets[cluster] : offsets[cluster] + size], budget
            )
        else:
            if batch_pairs + size * size > BLOCK_ELEMENTS:
                flush()
            batch.append(cluster)
            batch_pairs += size * size
    flush()
    return average, sampled


def _exact_batch(
    values: Float64Array,
    present: BoolArray,
    members: Int64Array,
    sizes: Int64Array,
    offsets: Int64Array,
    batch: Int64Array,
    average: Float64Array,
) -> None:
    batch_sizes = sizes[batch]
    squares = batch_sizes * batch_sizes
    which = np.repeat(np.arange(batch.size), squares)
    within = np.arange(int(squares.sum())) - np.repeat(np.cumsum(squares) - squares, squares)
    size_of = batch_sizes[which]
    a, b = within // size_of, within % size_of
    keep = a < b
    which, a, b = which[keep], a[keep], b[keep]
    start_of = offsets[batch][which]
    d2, shared = _pair_squared_distances(
        values, present, members[start_of + a], members[start_of + b]
    )
    # bincount adds its weights in input order: a sequential sum per cluster, pairs in
    # recording order.
    totals = np.bincount(which[shared], weights=np.sqrt(d2[shared]), minlength=batch.size)
    counts = np.bincount(which[shared], minlength=batch.size)
    with np.errstate(invalid="ignore", divide="ignore"):
        average[batch] = totals / counts


def _exact_dense(
    values: Float64Array, present: BoolArray, members: Int64Array, budget: Budget
) -> float:
    """Exact mean pairwise distance of one cluster from dense row blocks of its members'
    coordinates (pairs a < b in recording order, summed sequentially in that order)."""
    size = members.size
    coordinates = values[:, members]
    member_present = present[:, members]
    complete = bool(member_present.all())
    total, count = 0.0, 0
    block_rows = max(1, BLOCK_ELEMENTS // size)
    for start in range(0, size, block_rows):
        stop = min(size, start + block_rows)
        d2 = np.zeros((stop - start, size - start))
        keep = np.arange(start, size)[None, :] > np.arange(start, stop)[:, None]
        shared = np.zeros_like(keep)
        for metric in range(values.shape[0]):
            row = coordinates[metric]
            difference = row[start:stop, None] - row[None, start:]
            if complete:
                d2 += difference * difference
            else:
                both = (
                    member_present[metric, start:stop, None] & member_present[metric, None, start:]
                )
                d2 += np.where(both, difference * difference, 0.0)
                shared |= both
        if not complete:
            keep &= shared
        distances = np.sqrt(d2[keep])
        if distances.size:
            total = float(np.cumsum(np.concatenate([[total], distances]))[-1])
            count += distances.size
        budget.check(STAGE)
    return total / count if count else math.nan


def _sampled_average(
    values: Float64Array, present: BoolArray, members: Int64Array, cluster: int
) -> float:
    size = members.size
    draws = splitmix64((SAMPLE_SEED + cluster) & _MASK64, SAMPLE_DRAWS)
    a = (draws[0::2] % np.uint64(size)).astype(np.int64)
    b = (draws[1::2] % np.uint64(size)).astype(np.int64)
    distinct = a != b
    d2, shared = _pair_squared_distances(
        values, present, members[a[distinct]], members[b[distinct]]
    )
    distances = np.sqrt(d2[shared])
    return sequential_sum(distances) / distances.size if distances.size else math.nan


@_QUIET_FLOATS
def cluster_components(
    columns: Float64Array, threshold: float, budget: Budget
) -> tuple[Int64Array, Float64Array, BoolArray]:
    """Connected components of the graph joining tasks closer than ``threshold``.

    Tasks i and j are joined when they share at least one metric and the Euclidean distance
    over their shared metrics is below ``threshold``. Returns ``(labels, avg_distance,
    sampled)``: labels[i] is the cluster of task i (components of >= 2 tasks, numbered in
    order of their first member) or -1 (no labels at all when there are no metrics);
    avg_distance[c] is the mean distance over the member pairs sharing a metric (estimated
    from a fixed SplitMix64 sample above 4,096 members, then sampled[c] is True). Past the
    budget's deadline, CoolingTimeoutError.
    """
    values = as_columns(columns)
    budget.check(STAGE)
    present = ~np.isnan(values)
    tasks = values.shape[1] if values.shape[0] else 0

    parent = np.arange(tasks, dtype=np.int64)
    if tasks >= 2:
        index = _PairIndex(values, present, threshold, budget)
        budget.check(STAGE)
        index.join(parent, budget)
    # parent[i] is the lowest index of i's component: the numbering by first member.
    sizes = np.bincount(parent, minlength=tasks)
    is_first = (parent == np.arange(tasks)) & (sizes >= 2)
    number = np.cumsum(is_first) - 1
    labels = np.where(sizes[parent] >= 2, number[parent], -1).astype(np.int64)
    clusters = int(is_first.sum())
    average, sampled = _average_distances(values, present, labels, clusters, budget)
    return labels, average, sampled
