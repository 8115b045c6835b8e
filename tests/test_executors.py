"""fire_all on executors (SPEC §10): as many tasks in flight as the executor has workers,
Dask's ``client.get_executor()`` included (its cluster's worker threads)."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from typing import Any

import pytest

from crackle_runtime import Kiln, TaskOutput
from crackle_runtime._executors import in_flight_limit, worker_threads

WORKERS = 24


class Square:
    """A picklable task: its label and ``y = i * i``."""

    def __init__(self, i: int) -> None:
        self.i = i

    def label(self) -> str:
        return f"square-{self.i}"

    def fire(self) -> TaskOutput:
        return TaskOutput(None, {"y": float(self.i * self.i)})


class _Client:
    """The part of ``distributed.Client`` the executor limit reads."""

    def nthreads(self) -> dict[str, int]:
        return {"tcp://127.0.0.1:1": WORKERS // 2, "tcp://127.0.0.1:2": WORKERS // 2}


class DaskLikeExecutor(Executor):
    """Shaped like ``distributed.cfexecutor.ClientExecutor``: no ``_max_workers``, a
    ``_client``; runs tasks on a private thread pool as big as the fake cluster."""

    def __init__(self) -> None:
        self._client = _Client()
        self._pool = ThreadPoolExecutor(WORKERS)

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        return self._pool.submit(fn, *args, **kwargs)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._pool.shutdown(wait, cancel_futures=cancel_futures)


@pytest.fixture(autouse=True)
def backend() -> str:
    """Submitting tasks does not depend on the kernel backend: run once."""
    return "any"


def test_worker_threads_of_known_executors() -> None:
    with ThreadPoolExecutor(3) as pool:
        assert worker_threads(pool) == 3
        assert in_flight_limit(pool) == 12
    executor = DaskLikeExecutor()
    try:
        assert worker_threads(executor) == WORKERS
        assert in_flight_limit(executor) == 4 * WORKERS
    finally:
        executor.shutdown()


def test_every_worker_thread_of_a_dask_like_cluster_is_busy() -> None:
    """Each task waits until all WORKERS run at once: with 16 in flight (the old limit for
    an executor without ``_max_workers``) the barrier breaks and the tasks fail."""
    barrier = threading.Barrier(WORKERS, timeout=10.0)

    def task() -> TaskOutput:
        barrier.wait()
        return TaskOutput("t", {"x": 1.0})

    executor = DaskLikeExecutor()
    try:
        kiln = Kiln()
        kiln.fire_all([task] * (3 * WORKERS), executor=executor)
    finally:
        executor.shutdown()
    assert kiln.task_count == 3 * WORKERS


def test_fire_all_on_a_real_dask_cluster_keeps_every_worker_thread_busy() -> None:
    """A real ``dask.distributed.LocalCluster`` (two worker processes of two threads on
    127.0.0.1, started and stopped here): every task is recorded in submission order."""
    pytest.importorskip("distributed")
    import cloudpickle

    from crackle_runtime import dask as crackle_dask

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import tests
    with crackle_dask.local_client(2, threads_per_worker=2) as client:
        executor = client.get_executor()
        assert worker_threads(executor) == 4
        assert in_flight_limit(executor) == 16
        kiln = Kiln()
        outputs = kiln.fire_all([Square(i) for i in range(60)], executor=executor)
    assert kiln.labels == [f"square-{i}" for i in range(60)]
    assert [output.metrics["y"] for output in outputs] == [float(i * i) for i in range(60)]
