"""Seeded generators of realistic telemetry (SPEC §12, issue 11): the nulls every detector
must stay quiet on and the signals it must find and locate. Every generator takes a
``numpy.random.Generator`` and returns ``(names, columns)`` with columns ``(metrics, tasks)``
plus, for signals, what was planted.

Nulls: log-normal latencies (σ 0.5, 1), Pareto tails (α 2), retry counts (Poisson 0.3) and
flags (Bernoulli), independent AR(1) series (φ 0.5, 0.9, 0.99), independent random walks,
a shared daily cycle, a shared trend, a shared step, and id / row-number / timestamp
columns beside two measured metrics, two views of one latency (p50 and p99), CPU and
latency driven by one load, waits at a floor of 0 (queue, GC pause, retransmits). Signals:
×10 bursts on five tasks of a log-normal metric (five random tasks, or five consecutive
ones), ×5 bursts after a regime change (the level triples), runner hiccups (3–8× build
time) in a CI-like series with a slow drift and in one from two runner pools (5% of the
builds twice as slow: a mode, not outliers), a retry storm on four consecutive tasks,
stuck queue waits among waits at a floor of 0, a lead-lag pair of AR(1) series, a queue
depth that latency follows two tasks later, and y = x² dependence.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

Matrix = NDArray[np.float64]

__all__ = ["CASES", "Case", "ar1"]


def ar1(rng: np.random.Generator, phi: float, n: int, count: int = 1) -> Matrix:
    """``count`` independent stationary AR(1) series of unit innovation variance."""
    noise = rng.normal(size=(count, n))
    series = np.empty((count, n))
    series[:, 0] = noise[:, 0] / np.sqrt(1.0 - phi * phi)
    for t in range(1, n):
        series[:, t] = phi * series[:, t - 1] + noise[:, t]
    return series


@dataclass(frozen=True)
class Case:
    """One benchmark case: a generator of ``(names, columns, planted)``."""

    name: str
    kind: str  # "null" or the kind of the planted signal
    n: int
    make: Callable[[np.random.Generator, int], tuple[list[str], Matrix, dict[str, Any]]]
    notes: dict[str, Any] = field(default_factory=dict)


def _pair(values: Matrix) -> tuple[list[str], Matrix, dict[str, Any]]:
    return ["a", "b"], values, {}


def _lognormal(sigma: float) -> Callable[..., Any]:
    return lambda rng, n: _pair(rng.lognormal(3.0, sigma, (2, n)))


def _daily_cycle(rng: np.random.Generator, n: int) -> tuple[list[str], Matrix, dict[str, Any]]:
    cycle = np.sin(2 * np.pi * np.arange(n) / 24.0)
    return _pair(np.vstack([3 * cycle, 2 * cycle]) + ar1(rng, 0.5, n, 2))


def _trend(rng: np.random.Generator, n: int) -> tuple[list[str], Matrix, dict[str, Any]]:
    return _pair(np.linspace(0.0, 8.0, n) + ar1(rng, 0.5, n, 2))


def _step(rng: np.random.Generator, n: int) -> tuple[list[str], Matrix, dict[str, Any]]:
    return _pair(np.where(np.arange(n) < n // 2, 0.0, 4.0) + ar1(rng, 0.5, n, 2))


def _index_columns(rng: np.random.Generator, n: int) -> tuple[list[str], Matrix, dict[str, Any]]:
    ids = np.arange(n, dtype=float) + 1000.0
    started = 1.7e9 + 30.0 * np.arange(n) + rng.uniform(0.0, 90.0, n)  # completion order
    bytes_total = np.cumsum(rng.integers(1, 1000, n)).astype(float)
    measured = np.vstack([rng.lognormal(3.0, 0.5, n), ar1(rng, 0.5, n)[0]])
    names = ["task_id", "started_at", "bytes_total", "latency", "load"]
    return names, np.vstack([ids, started, bytes_total, measured]), {"index": names[:3]}


def _bursts(sigma: float) -> Callable[..., Any]:
    def make(rng: np.random.Generator, n: int) -> tuple[list[str], Matrix, dict[str, Any]]:
        values = rng.lognormal(3.0, sigma, n)
        planted = np.sort(rng.choice(n, 5, replace=False))
        values[planted] *= 10.0
        return ["latency"], values[None, :], {"tasks": planted.tolist()}

    return make


def _consecutive_burst(sigma: float) -> Callable[..., Any]:
    """One burst: five consecutive tasks of a log-normal metric ×10 (a stalled dependency)."""

    def make(rng: np.random.Generator, n: int) -> tuple[list[str], Matrix, dict[str, Any]]:
        values = rng.lognormal(3.0, sigma, n)
        at = int(rng.integers(0, n - 5))
        values[at : at + 5] *= 10.0
        return ["latency"], values[None, :], {"tasks": list(range(at, at + 5))}

    return make


def _runner_pools(rng: np.random.Generator, n: int) -> tuple[list[str], Matrix, dict[str, Any]]:
    """A CI export from two runner pools: 5% of the builds run 2× slower (a mode, not
    outliers), 0.6% are runner hiccups 3–8× the build time of their pool."""
    slow = rng.random(n) < 0.05
    build = np.exp(np.log(300.0) + rng.normal(0.0, 0.12, n)) * np.where(slow, 2.0, 1.0)
    planted = np.sort(rng.choice(n, max(1, round(0.006 * n)), replace=False))
    build[planted] *= rng.uniform(3.0, 8.0, planted.size)
    return ["build_s"], build[None, :], {"tasks": planted.tolist()}


def _retry_storm(rng: np.random.Generator, n: int) -> tuple[list[str], Matrix, dict[str, Any]]:
    """Retry counts (Poisson 0.3) with a storm: 3 retries on 4 consecutive tasks (a flaky
    dependency), which no fence finds one task at a time."""
    retries = rng.poisson(0.3, n).astype(float)
    at = int(rng.integers(0, n - 4))
    retries[at : at + 4] = 3.0
    return ["retries"], retries[None, :], {"tasks": list(range(at, at + 4))}


def _queue_waits(stuck: int) -> Callable[..., Any]:
    """Metrics at a floor of 0 with a continuous excess on some tasks: a queue wait (0 unless
    the pool is busy, 20% of the tasks, then exponential with mean 40 ms), a GC pause (0 on
    95% of the tasks, else log-normal σ 1 around 15 ms) and a retransmit time (0 on 99%,
    else exponential with mean 200 ms); with ``stuck``, that many queue waits of 30 times
    their mean (requests stuck behind a lock)."""

    def make(rng: np.random.Generator, n: int) -> tuple[list[str], Matrix, dict[str, Any]]:
        queue = np.where(rng.random(n) < 0.2, rng.exponential(40.0, n), 0.0)
        gc = np.where(rng.random(n) < 0.05, rng.lognormal(np.log(15.0), 1.0, n), 0.0)
        retransmit = np.where(rng.random(n) < 0.01, rng.exponential(200.0, n), 0.0)
        planted: dict[str, Any] = {}
        if stuck:
            at = np.sort(rng.choice(n, stuck, replace=False))
            queue[at] = 1200.0 * rng.uniform(0.9, 1.1, stuck)
            planted = {"tasks": at.tolist()}
        names = ["queue_wait_ms", "gc_pause_ms", "retransmit_ms"]
        return names, np.vstack([queue, gc, retransmit]), planted

    return make


def _bursts_after_change(
    rng: np.random.Generator, n: int
) -> tuple[list[str], Matrix, dict[str, Any]]:
    """×5 bursts on five tasks of a log-normal metric (σ 0.3) whose level triples half-way (a
    regime change: one scale for both regimes hides the bursts)."""
    values = rng.lognormal(3.0, 0.3, n)
    values[n // 2 :] *= 3.0
    planted = np.sort(rng.choice(n, 5, replace=False))
    values[planted] *= 5.0
    return ["latency"], values[None, :], {"tasks": planted.tolist()}


def _hiccups(rng: np.random.Generator, n: int) -> tuple[list[str], Matrix, dict[str, Any]]:
    """A CI export: build time log-normal (σ 0.12) around a slow drift (+30% over the
    export) with 0.6% runner hiccups 3–8× the build time."""
    drift = np.linspace(0.0, np.log(1.3), n)
    build = np.exp(np.log(240.0) + drift + rng.normal(0.0, 0.12, n))
    planted = np.sort(rng.choice(n, max(1, round(0.006 * n)), replace=False))
    build[planted] *= rng.uniform(3.0, 8.0, planted.size)
    tests = rng.poisson(2.0, n).astype(float)
    return ["build_s", "flaky_tests"], np.vstack([build, tests]), {"tasks": planted.tolist()}


def _lead_lag(rng: np.random.Generator, n: int) -> tuple[list[str], Matrix, dict[str, Any]]:
    x = ar1(rng, 0.5, n)[0]
    y = np.empty(n)
    y[0] = rng.normal()
    noise = rng.normal(size=n)
    for t in range(1, n):
        y[t] = 0.5 * y[t - 1] + 0.8 * x[t - 1] + noise[t]
    return ["cause", "effect"], np.vstack([x, y]), {"source": "cause", "lag": 1}


def _queue_leads_latency(
    rng: np.random.Generator, n: int
) -> tuple[list[str], Matrix, dict[str, Any]]:
    """Latency (log-normal) follows a persistent queue depth two tasks later."""
    queue = 5.0 + 2.0 * ar1(rng, 0.9, n)[0]
    latency = np.empty(n)
    latency[:2] = np.exp(3.0 + rng.normal(0.0, 0.3, 2))
    latency[2:] = np.exp(3.0 + 0.15 * queue[:-2] + rng.normal(0.0, 0.3, n - 2))
    return (
        ["queue_depth", "latency_ms"],
        np.vstack([queue, latency]),
        {
            "source": "queue_depth",
            "lag": 2,
        },
    )


def _p50_p99(rng: np.random.Generator, n: int) -> tuple[list[str], Matrix, dict[str, Any]]:
    """Two views of one latency process: p99 is p50 times independent noise (no lead)."""
    level = 0.3 * ar1(rng, 0.9, n)[0] * np.sqrt(1.0 - 0.81)
    p50 = np.exp(np.log(50.0) + level + rng.normal(0.0, 0.05, n))
    return (
        ["latency_p50_ms", "latency_p99_ms"],
        np.vstack([p50, p50 * np.exp(1.2 + rng.normal(0.0, 0.3, n))]),
        {},
    )


def _load_driven(rng: np.random.Generator, n: int) -> tuple[list[str], Matrix, dict[str, Any]]:
    """CPU and latency both driven by one persistent load, each with its own noise."""
    load = ar1(rng, 0.95, n)[0] * np.sqrt(1.0 - 0.95**2)
    cpu = 40.0 + 10.0 * load + rng.normal(0.0, 1.0, n)
    latency = np.exp(4.0 + 0.2 * load + rng.normal(0.0, 0.3, n))
    return ["cpu_pct", "latency_ms"], np.vstack([cpu, latency]), {}


def _night_error_rate(bursts: int) -> Callable[..., Any]:
    """Two weeks of 5-minute windows whose traffic falls fifteenfold at night: requests,
    the error rate (errors / requests at p = 0.002: zero in most night windows, a few errors
    over a few hundred requests in the rest) and CPU; with ``bursts``, that many windows get
    5% more errors."""

    def make(rng: np.random.Generator, n: int) -> tuple[list[str], Matrix, dict[str, Any]]:
        traffic = 1600 * (1 - 0.9 * np.cos(2 * np.pi * np.arange(n) / 288.0)) + 60
        requests = rng.poisson(traffic)
        rate = rng.binomial(requests, 0.002) / requests
        cpu = 15 + 60 * traffic / traffic.max() + rng.normal(0.0, 3.0, n)
        planted: dict[str, Any] = {}
        if bursts:
            at = np.sort(rng.choice(np.arange(300, n - 300), bursts, replace=False))
            rate[at] += 0.05
            planted = {"tasks": at.tolist()}
        names = ["requests", "error_rate", "cpu_pct"]
        return names, np.vstack([requests.astype(float), rate, cpu]), planted

    return make


def _whole_units(rng: np.random.Generator, n: int) -> tuple[list[str], Matrix, dict[str, Any]]:
    """Metrics recorded in whole units: a job's duration in whole seconds (log-normal σ 0.25
    around 12 s), its queue wait in whole seconds (exponential, mean 2 s) and a pool's busy
    workers (normal(50, 5) rounded)."""
    duration = np.round(rng.lognormal(np.log(12.0), 0.25, n))
    queue = np.round(rng.exponential(2.0, n))
    busy = np.round(rng.normal(50.0, 5.0, n))
    return ["duration_s", "queue_s", "busy_workers"], np.vstack([duration, queue, busy]), {}


def _weak_cycle_deploy(deploy: bool) -> Callable[..., Any]:
    """Four days of 5-minute samples: requests repeat a daily cycle of 288; latency's cycle
    is a third of its variance under AR(1) 0.7 noise (too weak for its own cycle search over
    four repetitions); with ``deploy``, latency +15% from 72% of the samples."""

    def make(rng: np.random.Generator, n: int) -> tuple[list[str], Matrix, dict[str, Any]]:
        day = np.sin(2 * np.pi * np.arange(n) / 288.0)
        requests = rng.poisson(1000 * (1 + 0.6 * day)).astype(float)
        noise = 0.1 * np.sqrt(1.0 - 0.49) * ar1(rng, 0.7, n)[0] + rng.normal(0.0, 0.05, n)
        latency = 80.0 * np.exp(0.15 * day + noise)
        planted: dict[str, Any] = {}
        if deploy:
            at = int(0.72 * n)
            latency[at:] *= 1.15
            planted = {"metric": "latency_ms", "at": at}
        return ["requests", "latency_ms"], np.vstack([requests, latency]), planted

    return make


def _memory_spikes(rng: np.random.Generator, n: int) -> tuple[list[str], Matrix, dict[str, Any]]:
    """A memory gauge (a random walk around 2 GB, steps of 2 MB) with three spikes of 40 MB
    and a burst of 3 samples at +40 MB, beside a queue depth (a reflected walk of whole
    requests) and a latency driven by a persistent load (log-normal, AR(1) 0.95)."""
    memory = 2000.0 + np.cumsum(rng.normal(0.0, 2.0, n))
    spikes = np.sort(rng.choice(np.arange(50, n - 50), 3, replace=False))
    burst = int(rng.integers(50, n - 50))
    while np.min(np.abs(spikes - burst)) < 10:
        burst = int(rng.integers(50, n - 50))
    memory[spikes] += 40.0
    memory[burst : burst + 3] += 40.0
    names, columns, _ = _persistent_queue_and_latency(rng, n)
    planted = sorted([*spikes.tolist(), burst, burst + 1, burst + 2])
    return ["mem_mb", *names], np.vstack([memory, columns]), {"tasks": planted}


def _persistent_queue_and_latency(
    rng: np.random.Generator, n: int
) -> tuple[list[str], Matrix, dict[str, Any]]:
    """A queue depth (whole requests: arrivals Poisson(0.9), departures Poisson(1.0) per
    sample, never below 0) and a latency driven by a persistent load (100 ms times
    exp(AR(1) 0.95 of unit variance) with 10% noise of its own)."""
    arrivals, departures = rng.poisson(0.9, n), rng.poisson(1.0, n)
    queue = np.empty(n)
    depth = 0
    for t in range(n):
        depth = max(0, depth + int(arrivals[t]) - int(departures[t]))
        queue[t] = depth
    load = ar1(rng, 0.95, n)[0] * np.sqrt(1.0 - 0.95**2)
    latency = 100.0 * np.exp(load + rng.normal(0.0, 0.1, n))
    return ["queue_depth", "latency_ms"], np.vstack([queue, latency]), {}


def _square(rng: np.random.Generator, n: int) -> tuple[list[str], Matrix, dict[str, Any]]:
    x = rng.uniform(-1.0, 1.0, n)
    return ["x", "y"], np.vstack([x, x**2 + rng.normal(0.0, 0.05, n)]), {}


def _daily_peak(deploy: bool) -> Callable[..., Any]:
    """Three days of 1-minute windows: a load that peaks once a day drives the requests,
    a CPU that is clipped at 100% at the peak, a queue wait that is 0 outside the peak (and
    on half of the windows in it) and a latency; with ``deploy``, latency +20% from the
    middle of day 2."""

    def make(rng: np.random.Generator, n: int) -> tuple[list[str], Matrix, dict[str, Any]]:
        t = np.arange(n)
        load = 1 + 0.6 * np.sin(2 * np.pi * t / 1440.0) + 0.1 * rng.standard_normal(n)
        requests = rng.poisson(500 * load.clip(0.1)).astype(float)
        cpu = np.minimum(100.0, 70.0 * load + 5.0 * rng.standard_normal(n))
        busy = (load > 1.4) & (rng.random(n) < 0.5)
        queue = np.where(busy, rng.exponential(30.0, n), 0.0)
        latency = 40.0 * np.exp(0.3 * load + 0.05 * rng.standard_normal(n))
        planted: dict[str, Any] = {}
        if deploy:
            at = 2200
            latency[at:] *= 1.2
            planted = {"metric": "latency_ms", "at": at}
        names = ["requests", "cpu_pct", "queue_wait_ms", "latency_ms"]
        return names, np.vstack([requests, cpu, queue, latency]), planted

    return make


def _lone_peak_queue(rng: np.random.Generator, n: int) -> tuple[list[str], Matrix, dict[str, Any]]:
    """Three days of 1-minute windows of a queue wait that is 0 outside the daily peak and
    on half of the windows in it, beside retries (Poisson 0.3) without a cycle: no other
    metric carries the daily period."""
    load = 1 + 0.6 * np.sin(2 * np.pi * np.arange(n) / 1440.0) + 0.1 * rng.standard_normal(n)
    queue = np.where((load > 1.4) & (rng.random(n) < 0.5), rng.exponential(30.0, n), 0.0)
    retries = rng.poisson(0.3, n).astype(float)
    return ["queue_wait_ms", "retries"], np.vstack([queue, retries]), {}


CASES: tuple[Case, ...] = (
    Case("lognormal σ=0.5", "null", 1000, _lognormal(0.5)),
    Case("lognormal σ=1", "null", 1000, _lognormal(1.0)),
    Case("pareto α=2", "null", 1000, lambda rng, n: _pair(1.0 + rng.pareto(2.0, (2, n)))),
    Case(
        "counts/flags",
        "null",
        1000,
        lambda rng, n: _pair(np.vstack([rng.poisson(0.3, n), rng.random(n) < 0.1]).astype(float)),
    ),
    Case("AR(1) φ=0.5", "null", 300, lambda rng, n: _pair(ar1(rng, 0.5, n, 2))),
    Case("AR(1) φ=0.9", "null", 300, lambda rng, n: _pair(ar1(rng, 0.9, n, 2))),
    Case("AR(1) φ=0.99", "null", 300, lambda rng, n: _pair(ar1(rng, 0.99, n, 2))),
    Case("random walks", "null", 300, lambda rng, n: _pair(np.cumsum(rng.normal(size=(2, n)), 1))),
    Case("shared daily cycle", "null", 480, _daily_cycle),
    Case("shared trend", "null", 300, _trend),
    Case("shared step", "null", 300, _step),
    Case("id/timestamp columns", "null", 500, _index_columns),
    Case("x10 bursts, lognormal σ=0.3", "outlier", 1000, _bursts(0.3)),
    Case("x10 bursts, lognormal σ=0.5", "outlier", 1000, _bursts(0.5)),
    Case("x5 bursts after a x3 level change, σ=0.3", "outlier", 1000, _bursts_after_change),
    Case("runner hiccups (CI, n=5000)", "outlier", 5000, _hiccups),
    Case("lead-lag AR(1) φ=0.5", "information flow", 300, _lead_lag),
    Case("y = x²", "dependence", 300, _square),
    # added later: appended, so the cases above keep their seeds
    Case("p50 / p99 of one latency", "null", 2000, _p50_p99),
    Case("CPU and latency driven by load", "null", 1000, _load_driven),
    Case("queue depth leads latency by 2", "information flow", 1000, _queue_leads_latency),
    Case("requests and latency, 4 days of cycles", "null", 1152, _weak_cycle_deploy(False)),
    Case("deploy +15% on a weak daily cycle, 4 days", "change", 1152, _weak_cycle_deploy(True)),
    Case("error rate, night traffic /15, 14 days", "null", 4032, _night_error_rate(0)),
    Case("error bursts +5%, night traffic /15", "outlier", 4032, _night_error_rate(3)),
    Case("whole seconds and whole workers", "null", 3000, _whole_units),
    Case("queue depth and load-driven latency", "null", 2000, _persistent_queue_and_latency),
    Case("memory gauge spikes, random walk", "outlier", 2000, _memory_spikes),
    # appended (a case's seeds depend on its place in this list)
    Case("x10 on 5 consecutive tasks, lognormal σ=0.5", "outlier", 1000, _consecutive_burst(0.5)),
    Case("x10 on 5 consecutive tasks, lognormal σ=1", "outlier", 1000, _consecutive_burst(1.0)),
    Case("CI hiccups 3-8x on two runner pools (5% at 2x)", "outlier", 3000, _runner_pools),
    Case("retry storm: 3 retries on 4 consecutive tasks", "outlier", 1000, _retry_storm),
    Case("waits at a floor of 0 (queue, GC, retransmits)", "null", 3000, _queue_waits(0)),
    Case("3 stuck queue waits (30x the mean wait)", "outlier", 3000, _queue_waits(3)),
    Case("daily peak: CPU clipped, queue waits, 3 days", "null", 4320, _daily_peak(False)),
    Case("deploy +20% latency under a daily peak, 3 days", "change", 4320, _daily_peak(True)),
    Case("queue wait alone, 0 off-peak, 3 days", "null", 4320, _lone_peak_queue),
)
