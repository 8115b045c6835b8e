"""Cooling a Dask DataFrame (SPEC §14): ``crackle_runtime.dask.cool(ddf)``.

The partitions, in order, are the runs of consecutive tasks. Each worker turns its partition
into a mergeable state (``CoolingState``, sent as its versioned bytes, no pickle of library
objects); the states are merged in a binary tree on the cluster; the client receives one
state of every task. Conservation comes from that state; phase transitions and
correlations from that state plus a few buckets of values and the latest 10,000 tasks
(the same tables as a single-machine ``cool()``, SPEC §14).

The other detectors (column roles, conservation laws, clustering, outliers, distribution
shift, dependence, information flow), those filtering reads and the report's wording (the
tasks involved in each pattern) need the values themselves: their columns are
gathered to the client when the frame has at most ``gather_rows`` rows, and the report then
equals a single-machine ``cool()`` of the same data.

Above ``gather_rows``, no step holds every row:

1. one read of each partition returns its state, its rows in a coordinated sample (kept when
   the 64-bit hash of the label column's value, ``pandas.util.hash_array``, is below
   ``2^64 · sample_rows / rows``: the same rows whatever the partitioning; without ``label``
   the hash of the task position, as an index need not name tasks uniquely) and its rows
   among the latest 10,000; and its outliers (the detector run as the cooling loop runs it,
   within the segments between the partition's change points, Bonferroni over the metric's
   present values in the whole frame, as one machine counts them: the read that measures
   the partitions counts them) with the rows of each metric's most severe 50, which hold
   every outlier task a report can name;
2. the filtering pass asks ``state_rows_needed`` which buckets the phase-transition tables
   read next and reads only those rows from the partitions holding them, round after round
   until none is missing, then more of the latest rows (doubling, up to ``TAIL_ROWS`` or
   ``sample_rows`` rows, and only with the correlation detector) while a correlation's
   p-value lacks 10,000 tasks having both metrics; a pair present together on fewer of
   the latest rows than that has its p-value read from those (its r from every row), and
   a note names it;
3. the client cools a kiln of the sample (plus each metric's change task): conservation,
   phase transitions and correlations come from the state and the gathered rows and equal
   the single-machine report's; outliers are worded from the partitions' rows (equal to a
   single machine's with one partition; with more, a partition's scale and fence are its
   own, so borderline values may differ); the other detectors read the sample, a note says
   so, and the report's ``task_count`` is every row's;
4. when the sample holds conservation laws, one more read of the partitions checks each on
   every row (``LawCheck``: the law's coefficients and constant, and the band the sample's
   residuals allow): the tasks that hold it, its residual std over them and its most
   severe violators (at most 1,000 listed) are every row's, equal to a single machine's
   when the sample finds the same law and band.

Each read of a partition repeats the work its graph does; with ``order_by`` that includes
the sort, so a large frame is best stored in task order and cooled with ``order_by=None``.

Needs the ``dask`` extra (``pip install 'crackle_runtime[dask]'``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from crackle_runtime import _backend, _frames, _incremental
from crackle_runtime._numpy import state_tables
from crackle_runtime._numpy.detect.conservation_laws import MIN_SUPPORT as MIN_LAW_SUPPORT
from crackle_runtime._state import CoolingState
from crackle_runtime.detectors._data import DetectionData
from crackle_runtime.detectors._registry import REGISTRY
from crackle_runtime.detectors.outlier import DETECTOR as OUTLIER
from crackle_runtime.detectors.outlier import MAX_PER_METRIC
from crackle_runtime.kiln import Kiln
from crackle_runtime.patterns import CracklePattern, PatternKind
from crackle_runtime.profile import ThermalProfile
from crackle_runtime.report import PatternReport

__all__ = ["DEFAULT_GATHER_ROWS", "DEFAULT_SAMPLE_ROWS", "cool", "local_client", "states"]

log = logging.getLogger("crackle_runtime.dask")

#: The most rows ``cool`` gathers to the client for the detectors that need the values
#: (16 metrics of 10M rows are 1.3 GB of float64).
DEFAULT_GATHER_ROWS = 10_000_000
#: About how many rows of a larger frame the detectors that need the values read (a
#: coordinated sample: a row is kept when the hash of its label is below a threshold).
DEFAULT_SAMPLE_ROWS = 1_000_000
#: The latest rows gathered first for a correlation's p-value (more while too few).
_TAIL = 10_000
#: At most this many of the latest rows (or ``sample_rows``, if more) are gathered for the
#: correlations' p-values: a pair present together on fewer of them has its p-value read
#: from those alone, and a note says so.
TAIL_ROWS = 1_000_000


def _dask() -> Any:
    try:
        import dask
        import dask.dataframe
    except ImportError as exc:  # pragma: no cover - the extra is installed by make test
        raise ImportError(
            "crackle_runtime.dask needs Dask: pip install 'crackle_runtime[dask]'"
        ) from exc
    return dask


@contextlib.contextmanager
def local_client(workers: int, threads_per_worker: int = 1) -> Iterator[Any]:
    """A ``distributed.Client`` of a ``LocalCluster`` of ``workers`` worker processes bound
    to 127.0.0.1 (no dashboard; the scheduler's HTTP routes on a free port), started on
    entry and stopped on exit."""
    try:
        import distributed as _distributed
    except ImportError as exc:  # pragma: no cover - the extra is installed by make test
        raise ImportError(
            "crackle_runtime.dask needs Dask: pip install 'crackle_runtime[dask]'"
        ) from exc
    distributed: Any = _distributed  # untyped
    with (
        distributed.LocalCluster(
            n_workers=workers,
            threads_per_worker=threads_per_worker,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            # The scheduler's HTTP routes (/health, /metrics) start even without a dashboard,
            # on port 8787 by default: a port taken by another cluster made Dask warn (an
            # error under warnings-as-errors). Any free port on 127.0.0.1 instead.
            scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


def _partition_columns(
    partition: Any, label: str | None, order_by: str | None
) -> tuple[list[str], NDArray[np.float64]]:
    """The metric names and (metrics, tasks) values ``Kiln.from_pandas`` would record from
    ``partition`` (the frame is already in order), without making its labels."""
    prepared = _frames.prepare_pandas(partition, label, order_by, None, labels=False, in_order=True)
    return prepared.names, prepared.values.T


def _kiln(frame: Any, label: str | None, order_by: str | None, profile: ThermalProfile) -> Kiln:
    """``Kiln.from_pandas`` of rows gathered from the sorted frame, kept in their order."""
    prepared = _frames.prepare_pandas(frame, label, order_by, None, in_order=True)
    return Kiln._from_prepared(prepared, profile)


_KEY, _POSITION = "__crackle_order_key", "__crackle_order_position"


def _order_key(partition: Any, order_by: str, starts: list[int], partition_info: Any = None) -> Any:
    """``partition`` with the columns that sort every row as ``Kiln.from_pandas`` sorts
    them (``_frames.order_key``, then the row's position: the sort is stable)."""
    columns, _ = _frames.columns_from_pandas(partition[[order_by]])
    start = starts[partition_info["number"]] if partition_info else 0
    return partition.assign(
        **{
            _KEY: _frames.order_key(columns, order_by),
            _POSITION: np.arange(start, start + len(partition), dtype=np.int64),
        }
    )


def _ordered(ddf: Any, order_by: str) -> Any:
    """``ddf`` sorted by ``order_by`` in exactly the order a single machine sorts it (ties
    kept in their order, absent values last)."""
    if order_by not in ddf.columns:
        raise ValueError(f"order_by: no column {order_by!r}")
    starts = _layout(ddf)[1]
    meta = _order_key(ddf._meta, order_by, [0])
    keyed = ddf.map_partitions(_order_key, order_by, starts, meta=meta)
    return keyed.sort_values([_KEY, _POSITION]).drop(columns=[_KEY, _POSITION])


def _partition_state(
    partition: Any, label: str | None, order_by: str | None, start: int, bucket_size: int | None
) -> bytes:
    """The state of one partition (its first row at position ``start``), as bytes."""
    names, columns = _partition_columns(partition, label, order_by)
    return CoolingState.of(names, columns, start=start, bucket_size=bucket_size).to_bytes()


def _partition_pass(
    partition: Any,
    label: str | None,
    order_by: str | None,
    start: int,
    keep_below: int,
    tail_from: int,
    outlier: ThermalProfile | None,
    counts: dict[str, int],
) -> tuple[bytes, Piece]:
    """One read of a partition: its state; its rows in the coordinated sample (those whose
    key's hash is below ``keep_below``, of 2^64) or at positions >= ``tail_from``; with
    ``outlier`` (the profile) its outliers, fenced within its change points' segments with
    a Bonferroni family of each metric's present values in the frame (``counts``), and
    the rows of each metric's most severe."""
    names, columns = _partition_columns(partition, label, order_by)
    columns = np.ascontiguousarray(columns)
    state = CoolingState.of(names, columns, start=start).to_bytes()
    keys = np.arange(start, start + len(partition)) if label is None else partition[label]
    sampled = _sampled(keys, keep_below)
    keep = sampled.copy()
    keep[max(tail_from - start, 0) :] = True
    flagged = None
    if outlier is not None:
        families = [counts.get(name, 0) for name in names]
        flagged, severe = _incremental.Outliers.of_run(names, columns, start, outlier, families)
        keep[severe - start] = True
    local = np.flatnonzero(keep)
    return state, Piece(local + start, partition.iloc[local], sampled[local], flagged)


def _law_pass(
    partition: Any,
    label: str | None,
    order_by: str | None,
    checks: list[_incremental.LawCheck],
    required: list[str],
) -> list[_incremental.LawTally]:
    """Each law over a partition's rows: its complete tasks (having every metric in
    ``required``), those satisfying it and its most severe violators, with their labels."""
    names, columns = _partition_columns(partition, label, order_by)
    absent = np.full(len(partition), np.nan)
    values = {name: columns[k] for k, name in enumerate(names)}
    complete = np.ones(len(partition), dtype=bool)
    for name in required:
        complete &= ~np.isnan(values.get(name, absent))
    keys = (partition.index if label is None else partition[label]).to_numpy()
    tallies = []
    for check in checks:
        tally = check.tally({name: values.get(name, absent) for name in check.names}, complete)
        tally.labels = [str(key) for key in keys[tally.violators].tolist()]
        tallies.append(tally)
    return tallies


def _sampled(keys: Any, keep_below: int) -> NDArray[np.bool_]:
    """Which rows the coordinated sample keeps: those whose key (the label column's value,
    or the task position) has a 64-bit hash (``pandas.util.hash_array``, the same in every
    process) below ``keep_below``."""
    if keep_below >= 2**64:
        return np.ones(len(keys), dtype=bool)
    import pandas as pd

    hashes = pd.util.hash_array(np.asarray(keys))
    return np.asarray(hashes < np.uint64(keep_below), dtype=bool)


@dataclass
class Piece:
    """Rows of the frame read on a worker: their task positions, the rows, and which are
    in the coordinated sample."""

    positions: NDArray[np.int64]
    frame: Any
    sampled: NDArray[np.bool_]
    outliers: _incremental.Outliers | None = None


def _rows_at(partition: Any, local: NDArray[np.int64], start: int) -> Piece:
    """The rows of a partition (first row at position ``start``) at ``local`` offsets."""
    return Piece(local + start, partition.iloc[local], np.zeros(local.size, dtype=bool))


def _merge(first: bytes, second: bytes) -> bytes:
    return CoolingState.from_bytes(first).merge(CoolingState.from_bytes(second)).to_bytes()


def _tree(dask: Any, level: list[Any]) -> Any:
    """The states of ``level`` (delayed bytes, in task order) merged in a binary tree."""
    while len(level) > 1:
        merged = [dask.delayed(_merge)(a, b) for a, b in zip(level[::2], level[1::2], strict=False)]
        if len(level) % 2:
            merged.append(level[-1])
        level = merged
    return level[0]


def _counted(partition: Any) -> tuple[int, dict[str, int]]:
    """A partition's rows and the values present in each of its metric candidates (as
    ``prepare_pandas`` reads them: a NaN stored as a value is absent too)."""
    plain = [isinstance(dtype, np.dtype) for dtype in partition.dtypes]
    present = {str(name): int(n) for name, n in partition.loc[:, plain].count().items()}
    # other dtypes (Arrow, nullable) are counted as they are read, not as pandas counts
    columns, _ = _frames.columns_from_pandas(partition.loc[:, [not p for p in plain]])
    present.update(
        {name: int(np.count_nonzero(~np.isnan(v))) for name, v in columns.numeric.items()}
    )
    return len(partition), present


def _layout(ddf: Any) -> tuple[list[Any], list[int], list[int], dict[str, int]]:
    """The partitions of ``ddf`` (delayed), their first positions and their lengths, and
    the values present in each column of the whole frame."""
    dask = _dask()
    parts = ddf.to_delayed()
    if not parts:
        raise ValueError("ddf: a frame without partitions has no tasks to cool")
    (counted,) = dask.compute([dask.delayed(_counted)(part) for part in parts])
    lengths = [length for length, _ in counted]
    starts = [0, *itertools.accumulate(lengths)][:-1]
    counts: dict[str, int] = {}
    for _, present in counted:
        for name, n in present.items():
            counts[name] = counts.get(name, 0) + n
    return parts, starts, lengths, counts


def states(
    ddf: Any,
    label: str | None = None,
    order_by: str | None = None,
    bucket_size: int | None = None,
) -> CoolingState:
    """The mergeable state of every row of ``ddf`` (partitions in order, each row a task,
    or sorted by ``order_by``): one state per partition on the workers, merged in a binary
    tree on the cluster."""
    dask = _dask()
    if order_by is not None:
        ddf = _ordered(ddf, order_by)
    return _states(dask, ddf, label, order_by, bucket_size)


def _states(
    dask: Any, ddf: Any, label: str | None, order_by: str | None, bucket_size: int | None = None
) -> CoolingState:
    parts, starts, _, _ = _layout(ddf)
    level = [
        dask.delayed(_partition_state)(part, label, order_by, start, bucket_size)
        for part, start in zip(parts, starts, strict=True)
    ]
    (data,) = dask.compute(_tree(dask, level))
    return CoolingState.from_bytes(data)


def cool(
    ddf: Any,
    profile: ThermalProfile | None = None,
    label: str | None = None,
    order_by: str | None = None,
    *,
    gather_rows: int = DEFAULT_GATHER_ROWS,
    sample_rows: int = DEFAULT_SAMPLE_ROWS,
) -> PatternReport:
    """Cool a Dask DataFrame, one task per row, partitions in order, on whatever cluster
    Dask's current scheduler is (a ``distributed.Client`` in scope, or threads).

    ``label`` names the label column (the index otherwise); ``order_by`` the column that
    orders the tasks in time (the frame is sorted by it; it takes part in no detector).
    Up to ``gather_rows`` rows, the report equals ``Kiln.from_pandas(ddf.compute(), label,
    profile, order_by=order_by).cool()`` (exact detectors from the merged state, to
    rounding). Above, conservation, phase transitions and correlations are still those of
    every row; the other detectors read a coordinated sample of about ``sample_rows`` rows
    (see the module's documentation)."""
    _dask()
    if not hasattr(ddf, "map_partitions") or not hasattr(ddf, "to_delayed"):
        raise TypeError(f"ddf must be a Dask DataFrame, got {type(ddf).__name__}")
    if int(gather_rows) < 0:
        raise ValueError(f"gather_rows must be >= 0, got {gather_rows}")
    if int(sample_rows) < 1:
        raise ValueError(f"sample_rows must be >= 1, got {sample_rows}")
    if label is not None and label not in ddf.columns:
        raise ValueError(f"label: no column {label!r}")
    if order_by is not None:
        ddf = _ordered(ddf, order_by)
    profile = ThermalProfile() if profile is None else profile
    layout = _layout(ddf)
    tasks = sum(layout[2])
    if tasks > gather_rows:
        return _Sampled(ddf, layout, label, order_by, profile).cool(int(sample_rows))
    state = _states(_dask(), ddf, label, order_by)
    return _kiln(ddf.compute(), label, order_by, profile)._cool_from_state(state)


class _Sampled:
    """``cool`` of a frame larger than ``gather_rows``: one pass for the state, the
    coordinated sample and the latest rows, then the rounds of the filtering pass."""

    def __init__(
        self,
        ddf: Any,
        layout: tuple[list[Any], list[int], list[int], dict[str, int]],
        label: str | None,
        order_by: str | None,
        profile: ThermalProfile,
    ) -> None:
        self.dask = _dask()
        self.parts, self.starts, self.lengths, self.counts = layout
        self.tasks = sum(self.lengths)
        self.label, self.order_by, self.profile = label, order_by, profile
        self.pieces: list[Piece] = []
        self.rounds = 0
        self.sample_rows = 0
        # whether a pair's p-value may read fewer than 10,000 latest tasks, and the notes
        self.short_tail = False
        self.laws_checked = False
        self.laws_dropped: list[str] = []
        self.short_notes: list[str] = []
        # metric -> its phase-transition change index over every task
        self.changes: dict[str, int] = {}

    def cool(self, sample_rows: int) -> PatternReport:
        began = time.perf_counter()
        self.sample_rows = sample_rows
        state = self._first_pass(sample_rows)
        first = time.perf_counter()
        log.info(
            "dask.cool: states, sample and latest rows of %d rows in %d partitions: %.3f s",
            self.tasks,
            len(self.parts),
            first - began,
        )
        gathered, changes = self._filter(state)
        positions, frame = self._rows()
        log.info(
            "dask.cool: filtering pass, %d rounds: %.3f s; %d rows gathered",
            self.rounds,
            time.perf_counter() - first,
            positions.size,
        )
        runs = [piece.outliers for piece in self.pieces if piece.outliers is not None]
        wanted = np.union1d(
            self._sampled_positions(), [c for c in changes.values() if c >= 0]
        ).astype(np.int64)
        # outliers come from every row (the first pass), not from the sample's cooling
        profile = self.profile.without(PatternKind.OUTLIER) if runs else self.profile
        view = frame.iloc[np.searchsorted(positions, wanted)]
        kiln = _kiln(view, self.label, self.order_by, profile)
        report = kiln._cool_from_gathered(
            state, _incremental.Gathered(gathered, positions, wanted, self.short_tail)
        )
        report = self._with_laws(report, kiln)
        if runs:
            outliers = _incremental.Outliers.merged(runs)
            report = self._with_outliers(report, outliers, positions, frame, wanted)
        return self._whole(report, state, int(wanted.size), bool(runs))

    def _with_laws(self, report: PatternReport, kiln: Kiln) -> PatternReport:
        """``report`` with each conservation law fitted on the sample checked on every
        row (one more read of the partitions): how many tasks hold it, its residual std
        over them and its most severe violators."""
        laws = [p for p in report if p.kind == PatternKind.CONSERVATION and "law" in p.details]
        if not laws:
            return report
        began = time.perf_counter()
        names, columns = kiln._detection_columns()
        index = {label: k for k, label in reversed(list(enumerate(kiln._store.labels)))}
        first = laws[0]
        sample = [index[t] for t in [*first.involved_tasks, *first.details["violations"]]]
        complete = np.array(sorted(set(sample)), dtype=np.int64)
        # the detector's complete tasks are those having every candidate metric
        required = [n for k, n in enumerate(names) if not np.isnan(columns[k, complete]).any()]
        checks = [_incremental.LawCheck.of(law) for law in laws]
        reads = [
            self.dask.delayed(_law_pass)(part, self.label, self.order_by, checks, required)
            for part in self.parts
        ]
        (per_partition,) = self.dask.compute(reads)
        replaced: dict[int, CracklePattern | None] = {}
        for k, law in enumerate(laws):
            tally = _incremental.LawTally.merged([p[k] for p in per_partition], self.starts)
            # as on one machine, a law holding on less than 90% of its tasks is none
            held = tally.complete > 0 and tally.held / tally.complete >= MIN_LAW_SUPPORT
            replaced[id(law)] = _law_pattern(law, tally) if held else None
            if not held:
                self.laws_dropped.append(str(law.details["law"]))
        log.info("dask.cool: laws checked on every row: %.3f s", time.perf_counter() - began)
        self.laws_checked = True
        return report._with([], report.notes, replaced)

    def _with_outliers(
        self,
        report: PatternReport,
        outliers: _incremental.Outliers,
        positions: NDArray[np.int64],
        frame: Any,
        wanted: NDArray[np.int64],
    ) -> PatternReport:
        """``report`` with the outlier patterns of every row: the detector's wording over
        the sample and the rows each partition found most severe (its tasks by position)."""
        rows = np.union1d(wanted, self._severe_positions()).astype(np.int64)
        read = frame.iloc[np.searchsorted(positions, rows)]
        kiln = _kiln(read, self.label, self.order_by, self.profile)
        names, columns = kiln._detection_columns()
        source = report._source
        kept = set(source.names) if source is not None else set()
        data = DetectionData(list(kiln._store.labels), names, columns).select(
            np.array([name in kept for name in names], dtype=bool)
        )
        found = OUTLIER.findings(data, outliers.table(data, rows), _params("outlier", self.profile))
        for pattern in found.patterns:
            pattern.details["task_index"] = int(rows[int(pattern.details["task_index"])])
        notes = [note for note in report.notes if not note.startswith("outlier:")]
        flagged = outliers.tasks_flagged(kept)
        if flagged > len(found.patterns):
            notes.append(
                f"outlier: {flagged} tasks stand out (severity > {self.profile.outlier_z:g} "
                "and the metric's Bonferroni fence); the "
                f"{len(found.patterns)} most severe are reported (at most {MAX_PER_METRIC} "
                "per metric)"
            )
        return report._with(found.patterns, notes)

    def _first_pass(self, sample_rows: int) -> CoolingState:
        dask = self.dask
        keep_below = 2**64 if sample_rows >= self.tasks else (2**64 * sample_rows) // self.tasks
        # the latest tasks are read for the correlations' p-values alone
        tail_from = self.tasks
        if PatternKind.CORRELATION in self.profile.detectors:
            tail_from = max(self.tasks - _TAIL, 0)
        level, pieces = [], []
        outlier = self.profile if PatternKind.OUTLIER in self.profile.detectors else None
        for part, start in zip(self.parts, self.starts, strict=True):
            state, piece = dask.delayed(_partition_pass, nout=2)(
                part, self.label, self.order_by, start, keep_below, tail_from, outlier, self.counts
            )
            level.append(state)
            pieces.append(piece)
        data, self.pieces = dask.compute(_tree(dask, level), pieces)
        self.pieces = list(self.pieces)
        return CoolingState.from_bytes(data)

    def _sampled_positions(self) -> NDArray[np.int64]:
        return np.concatenate([p.positions[p.sampled] for p in self.pieces])

    def _severe_positions(self) -> NDArray[np.int64]:
        """The rows the first pass read besides the sample: each metric's most severe
        outliers, and the latest tasks."""
        return np.concatenate(
            [p.positions[~p.sampled] for p in self.pieces if p.outliers is not None]
        )

    def _rows(self) -> tuple[NDArray[np.int64], Any]:
        """Every gathered row once, in task order: positions and frame."""
        import pandas as pd

        positions = np.concatenate([p.positions for p in self.pieces])
        first = np.unique(positions, return_index=True)[1]
        frame = pd.concat([p.frame for p in self.pieces]).iloc[first]
        return positions[first], frame

    def _columns(self, state: CoolingState) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
        """The gathered rows as the state's metrics x tasks (NaN = absent), and positions."""
        positions, frame = self._rows()
        names, columns = _partition_columns(frame, self.label, self.order_by)
        where = {name: k for k, name in enumerate(names)}
        aligned = np.full((len(state.names), positions.size), np.nan)
        for k, name in enumerate(state.names):
            if name in where:
                aligned[k] = columns[where[name]]
        return aligned, positions

    def _gather(self, spans: NDArray[np.int64]) -> None:
        """Read the rows in ``spans`` (``[low, high)`` task positions) from the partitions."""
        dask = self.dask
        wanted = np.concatenate([np.arange(low, high) for low, high in spans.tolist()])
        reads = []
        for part, start, length in zip(self.parts, self.starts, self.lengths, strict=True):
            local = wanted[(wanted >= start) & (wanted < start + length)] - start
            if local.size:
                reads.append(dask.delayed(_rows_at)(part, local, start))
        (pieces,) = dask.compute(reads)
        self.pieces.extend(pieces)
        self.rounds += 1

    def _filter(self, state: CoolingState) -> tuple[NDArray[np.float64], dict[str, int]]:
        """The filtering pass's rounds: gather what the phase-transition table reads next
        (``state_rows_needed``) until nothing, and more of the latest tasks (doubling, up
        to ``TAIL_ROWS`` or ``sample_rows``) while a correlation's p-value lacks them.
        Returns the gathered columns and each metric's change position (-1: none)."""
        kernels = _backend.kernels()
        metrics = np.arange(len(state.names), dtype=np.int64)
        tail, bound = _TAIL, max(TAIL_ROWS, self.sample_rows)
        correlation = PatternKind.CORRELATION in self.profile.detectors
        while True:
            columns, positions = self._columns(state)
            spans = kernels.state_rows_needed(state.flat, metrics, columns, positions)
            if spans.shape[0]:
                self._gather(spans)
                continue
            if not correlation:
                break
            try:
                kernels.table_from_state(
                    "correlation",
                    state.flat,
                    columns,
                    metrics,
                    _params("correlation", self.profile),
                    positions,
                )
            except ValueError as exc:
                if "latest" not in str(exc) or tail >= self.tasks:
                    raise
                if tail >= bound:
                    self._short_pairs(state, columns, positions)
                    break
                before, tail = tail, min(2 * tail, self.tasks, bound)
                self._gather(np.array([[self.tasks - tail, self.tasks - before]]))
                continue
            break
        phase = kernels.table_from_state(
            "phase_transition",
            state.flat,
            columns,
            metrics,
            _params("phase_transition", self.profile),
            positions,
        )
        self.changes = {name: int(phase["change_index"][k]) for k, name in enumerate(state.names)}
        gathered = _incremental.Gathered(columns, positions, positions)
        changes = {
            name: gathered.change_position(state, k, int(phase["change_index"][k]))
            for k, name in enumerate(state.names)
        }
        return columns, changes

    def _short_pairs(
        self, state: CoolingState, columns: NDArray[np.float64], positions: NDArray[np.int64]
    ) -> None:
        """The notes on the pairs whose r reaches the threshold and whose p-value reads
        fewer tasks having both than a single machine's: those in the run of gathered tasks
        that ends at the last task (reported or not)."""
        self.short_tail = True
        params = _params("correlation", self.profile)
        table = _backend.kernels().table_from_state(
            "correlation",
            state.flat,
            columns,
            np.arange(len(state.names), dtype=np.int64),
            params,
            positions,
            True,
        )
        start = state_tables.latest_run(positions, self.tasks)
        run = positions.size - start
        present = (~np.isnan(columns[:, start:])).astype(np.float64)
        together = present @ present.T
        for a, b, n, r, p in zip(
            *(np.asarray(table[field]).tolist() for field in ("i", "j", "n", "r", "p_value")),
            strict=True,
        ):
            read = int(together[a, b])
            if abs(r) < params["threshold"] or read >= min(_TAIL, n):
                continue
            first, second = state.names[a], state.names[b]
            said = "no p-value" if p != p else f"p = {p:.2g}"
            self.short_notes.append(
                f"correlation: {first!r} and {second!r} (r = {r:.3f} over the {n} tasks "
                f"having both) have {read} tasks having both among the latest {run}; their "
                f"p-value read those alone ({said}; a single machine reads the latest "
                f"{min(_TAIL, n)} having both)"
            )

    def _whole(
        self, report: PatternReport, state: CoolingState, sample: int, outliers: bool
    ) -> PatternReport:
        """The report of the view, said of every task: the task count, each phase
        transition's change index over every task, and a note on what read the sample."""
        report.task_count = state.tasks
        for pattern in report:
            if pattern.kind == PatternKind.PHASE_TRANSITION:
                name = str(pattern.details["metric"])
                pattern.metrics["change_index"] = float(self.changes[name])
        read = "conservation, phase transitions and correlations"
        key = "the task position" if self.label is None else f"the label column {self.label!r}"
        if outliers:
            read = (
                "conservation, phase transitions, correlations and outliers (fenced within "
                "each partition)"
            )
        report.notes.append(
            f"cooled on the cluster: {read} read all {state.tasks} tasks; the other "
            f"detectors read a coordinated sample of {sample} tasks (kept by a hash of "
            f"{key}), and the tasks each of their patterns lists are those of the sample"
            + (
                "; conservation laws, fitted on the sample, are checked on every task (with "
                "the band the sample allows), and each lists at most "
                f"{_incremental.MAX_LAW_VIOLATIONS} violators, the most severe"
                if self.laws_checked
                else ""
            )
        )
        report.notes.extend(self.short_notes)
        for law in self.laws_dropped:
            report.notes.append(
                f"conservation laws: '{law}' holds in the sample but on fewer than "
                f"{MIN_LAW_SUPPORT:.0%} of every row's complete tasks: not reported"
            )
        return report


def _law_pattern(law: CracklePattern, tally: _incremental.LawTally) -> CracklePattern:
    """The law pattern ``law`` (worded over the sample) said of every task of ``tally``."""
    support = tally.held / tally.complete if tally.complete else 0.0
    residual_std = tally.residual_std
    metrics = {**law.metrics, "support": support, "residual_std": residual_std}
    details = {**law.details, "violations": list(tally.labels or [])}
    return dataclasses.replace(
        law,
        description=f"law '{law.details['law']}' holds across {tally.held} of "
        f"{tally.complete} tasks (residual std: {residual_std:.3g})",
        confidence=support,
        metrics=metrics,
        details=details,
    )


def _params(name: str, profile: ThermalProfile) -> dict[str, Any]:
    """The parameters the profile gives detector ``name``."""
    detector = next(detector for detector in REGISTRY if detector.name == name)
    return detector.params(profile)
