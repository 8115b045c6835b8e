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
equals a single-machine ``cool()`` of the same data. Above that, ``cool`` raises
``CrackleError`` rather than report on part of the data.

Needs the ``dask`` extra (``pip install 'crackle_runtime[dask]'``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from crackle_runtime._state import CoolingState
from crackle_runtime.errors import CrackleError
from crackle_runtime.kiln import Kiln
from crackle_runtime.profile import ThermalProfile
from crackle_runtime.report import PatternReport

__all__ = ["DEFAULT_GATHER_ROWS", "cool", "local_client", "states"]

#: The most rows ``cool`` gathers to the client for the detectors that need the values
#: (16 metrics of 10M rows are 1.3 GB of float64).
DEFAULT_GATHER_ROWS = 10_000_000


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


def _partition_state(
    partition: Any, label: str | None, order_by: str | None, start: int, bucket_size: int | None
) -> bytes:
    """The state of one partition (its first row at position ``start``), as bytes; its
    metrics are those ``Kiln.from_pandas`` finds (the frame is already in order)."""
    kiln = Kiln.from_pandas(partition, label=label, order_by=order_by)
    names, columns = kiln._detection_columns()
    return CoolingState.of(names, columns, start=start, bucket_size=bucket_size).to_bytes()


def _merge(first: bytes, second: bytes) -> bytes:
    return CoolingState.from_bytes(first).merge(CoolingState.from_bytes(second)).to_bytes()


def states(
    ddf: Any,
    label: str | None = None,
    order_by: str | None = None,
    bucket_size: int | None = None,
) -> CoolingState:
    """The mergeable state of every row of ``ddf`` (partitions in order, each row a task):
    one state per partition on the workers, merged in a binary tree on the cluster."""
    dask = _dask()
    lengths = [int(n) for n in ddf.map_partitions(len).compute()]
    starts = [sum(lengths[:i]) for i in range(len(lengths))]
    parts = ddf.to_delayed()
    if not parts:
        raise ValueError("ddf: a frame without partitions has no tasks to cool")
    level = [
        dask.delayed(_partition_state)(part, label, order_by, start, bucket_size)
        for part, start in zip(parts, starts, strict=True)
    ]
    while len(level) > 1:
        merged = [dask.delayed(_merge)(a, b) for a, b in zip(level[::2], level[1::2], strict=False)]
        if len(level) % 2:
            merged.append(level[-1])
        level = merged
    (data,) = dask.compute(level[0])
    return CoolingState.from_bytes(data)


def cool(
    ddf: Any,
    profile: ThermalProfile | None = None,
    label: str | None = None,
    order_by: str | None = None,
    *,
    gather_rows: int = DEFAULT_GATHER_ROWS,
) -> PatternReport:
    """Cool a Dask DataFrame, one task per row, partitions in order, on whatever cluster
    Dask's current scheduler is (a ``distributed.Client`` in scope, or threads).

    ``label`` names the label column (the index otherwise); ``order_by`` the column that
    orders the tasks in time (the frame is sorted by it; it takes part in no detector). The
    report equals ``Kiln.from_pandas(ddf.compute(), label, profile, order_by=order_by)
    .cool()`` (exact detectors from the merged state, to rounding); with more than
    ``gather_rows`` rows, CrackleError (see the module's documentation)."""
    _dask()
    if not hasattr(ddf, "map_partitions") or not hasattr(ddf, "to_delayed"):
        raise TypeError(f"ddf must be a Dask DataFrame, got {type(ddf).__name__}")
    if int(gather_rows) < 0:
        raise ValueError(f"gather_rows must be >= 0, got {gather_rows}")
    if order_by is not None:
        if order_by not in ddf.columns:
            raise ValueError(f"order_by: no column {order_by!r}")
        ddf = ddf.sort_values(order_by)
    if label is not None and label not in ddf.columns:
        raise ValueError(f"label: no column {label!r}")
    state = states(ddf, label, order_by)
    if state.tasks > gather_rows:
        raise CrackleError(
            f"{state.tasks} rows are more than gather_rows = {gather_rows}: the detectors "
            "that need the values (roles, laws, clustering, outliers, distribution shift, "
            "dependence, information flow, and the buckets phase transitions and correlations "
            "read) and the tasks each pattern involves are read on "
            "the client; raise gather_rows if the columns fit in its memory"
        )
    frame = ddf.compute()
    kiln = Kiln.from_pandas(frame, label=label, profile=profile, order_by=order_by)
    return kiln._cool_from_state(state)
