"""How many tasks ``fire_all`` keeps in flight on an executor (SPEC §10)."""

from __future__ import annotations

from concurrent.futures import Executor

__all__ = ["in_flight_limit", "worker_threads"]

# Tasks in flight per worker thread: enough that a worker finds its next task waiting
# while the results of earlier ones are recorded, few enough to bound memory.
PER_WORKER = 4
DEFAULT_WORKERS = 4  # when an executor does not say how many workers it has


def worker_threads(executor: Executor) -> int | None:
    """The executor's worker count: ``_max_workers`` of the standard pools and loky, the
    cluster's worker threads for Dask's ``client.get_executor()``; None when unknown."""
    workers = getattr(executor, "_max_workers", None)
    if isinstance(workers, int) and workers > 0:
        return workers
    client = getattr(executor, "_client", None)  # distributed.cfexecutor.ClientExecutor
    nthreads = getattr(client, "nthreads", None)
    if callable(nthreads):
        try:
            threads = sum(int(count) for count in dict(nthreads()).values())
        except Exception:  # a closed or unreachable cluster: fall back to the default
            return None
        return threads if threads > 0 else None
    return None


def in_flight_limit(executor: Executor) -> int:
    """At most this many submitted tasks wait for their results."""
    return PER_WORKER * (worker_threads(executor) or DEFAULT_WORKERS)
