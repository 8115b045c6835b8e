"""Deterministic workloads of the benchmarks (fixed seeds: every run measures the same data).

``task_metrics`` imitates what a kiln records from real runs (CI jobs, load-test requests):
a few latent factors (load, payload size, contention) drive every metric with a
metric-specific scale plus noise; half-way through, a regression lands (one factor steps up
and ``queue_ms`` grows 2.5-fold); one task in ten is a re-run of a recent task
(near-identical metrics), so the clustering detector finds many small clusters. All tasks
have every metric, the common case the SPEC requires to be sub-quadratic. Rows are generated
in fixed-size chunks, each from its own seed, so a caller can stream them into a kiln
without holding a second copy.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from numpy.typing import NDArray

Matrix = NDArray[np.float64]

METRIC_NAMES = (
    "wall_ms",
    "cpu_ms",
    "queue_ms",
    "io_wait_ms",
    "rss_mb",
    "bytes_in_kb",
    "bytes_out_kb",
    "cache_hit_pct",
    "gc_ms",
    "threads",
    "requests",
    "db_ms",
    "net_ms",
    "p50_ms",
    "p99_ms",
    "retries_x10",
)
LATENT_FACTORS = 3
STEP_AT = 0.5  # share of the tasks before the regression
STEP_SIZE = 1.5  # in standard deviations of factor 0
REGRESSED_METRIC = 2  # queue_ms: its level jumps at the regression ...
REGRESSION_FACTOR = 2.5  # ... by this factor
RERUN_SHARE = 0.1
RERUN_WINDOW = 1000  # a re-run copies one of the previous this-many tasks
RERUN_NOISE = 0.1  # absolute, per metric: re-runs sit well within the cluster threshold
CHUNK_ROWS = 1 << 16


def _parameters(metrics: int, seed: int) -> tuple[Matrix, Matrix, Matrix, Matrix]:
    rng = np.random.default_rng([seed, 0xC0FFEE])
    base = rng.uniform(20.0, 500.0, size=metrics)
    scale = base * rng.uniform(0.05, 0.4, size=metrics)
    loadings = rng.normal(0.0, 1.0, size=(LATENT_FACTORS, metrics)) / np.sqrt(LATENT_FACTORS)
    loadings[0, :2] = (1.0, 0.9)  # wall_ms and cpu_ms move together: a strong correlation
    noise = scale * rng.uniform(0.2, 0.6, size=metrics)
    return base, scale, loadings, noise


def task_metric_chunks(tasks: int, metrics: int, seed: int = 7) -> Iterator[Matrix]:
    """The rows of ``task_metrics(tasks, metrics, seed)`` in chunks of CHUNK_ROWS."""
    if not 1 <= metrics <= len(METRIC_NAMES):
        raise ValueError(f"metrics must be in 1..{len(METRIC_NAMES)}")
    base, scale, loadings, noise = _parameters(metrics, seed)
    step_at = int(STEP_AT * tasks)
    for chunk, start in enumerate(range(0, tasks, CHUNK_ROWS)):
        rows = min(CHUNK_ROWS, tasks - start)
        rng = np.random.default_rng([seed, chunk])
        factors = rng.normal(0.0, 1.0, size=(rows, LATENT_FACTORS))
        after = max(0, step_at - start)
        factors[after:, 0] += STEP_SIZE
        values = factors @ loadings
        values *= scale
        values += base
        values += rng.normal(0.0, 1.0, size=(rows, metrics)) * noise
        if metrics > REGRESSED_METRIC:
            values[after:, REGRESSED_METRIC] *= REGRESSION_FACTOR
        del factors
        # Re-runs copy an earlier task of the same chunk, plus a little noise.
        reruns = np.flatnonzero(rng.random(rows) < RERUN_SHARE)
        reruns = reruns[reruns > 0]
        back = rng.integers(1, RERUN_WINDOW + 1, size=reruns.size)
        sources = reruns - np.minimum(back, reruns)
        values[reruns] = values[sources] + rng.normal(0.0, RERUN_NOISE, size=(reruns.size, metrics))
        yield values


def task_metrics(tasks: int, metrics: int, seed: int = 7) -> tuple[Matrix, list[str]]:
    """``(values (tasks, metrics), names)``: see the module docstring."""
    values = np.empty((tasks, metrics))
    start = 0
    for chunk in task_metric_chunks(tasks, metrics, seed):
        values[start : start + len(chunk)] = chunk
        start += len(chunk)
    return values, list(METRIC_NAMES[:metrics])


def series(n: int, seed: int) -> Matrix:
    """A 1-D float64 sample: a random walk plus noise (has order for permutation entropy)."""
    rng = np.random.default_rng(seed)
    return np.cumsum(rng.normal(0.0, 1.0, size=n)) * 0.1 + rng.normal(0.0, 1.0, size=n)


def coupled_pair(n: int, seed: int) -> tuple[Matrix, Matrix]:
    """``x`` and a ``y`` that follows ``x`` one step later (information flows x -> y)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 1.0, size=n)
    y = np.empty(n)
    y[0] = 0.0
    y[1:] = 0.6 * x[:-1] + 0.8 * rng.normal(0.0, 1.0, size=n - 1)
    return x, y


def gaussian_blobs(
    n: int, dims: int, blobs: int, spread: float, seed: int
) -> tuple[Matrix, NDArray[np.int64]]:
    """``n`` points around ``blobs`` centres drawn uniformly in [0, 100]^dims."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0.0, 100.0, size=(blobs, dims))
    which = rng.integers(0, blobs, size=n)
    points = centres[which] + rng.normal(0.0, spread, size=(n, dims))
    return points, which
