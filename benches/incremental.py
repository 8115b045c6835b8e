"""Incremental cooling and Dask cooling (SPEC §14), measured in one run.

1. A kiln of N tasks x 16 metrics is cooled; ``extend()``, A more tasks, ``cool()`` again,
   against cooling all N + A tasks from scratch; with the time of each detector and whether
   the exact detectors' patterns agree.
2. ``crackle_runtime.dask.cool`` of the same N + A rows (P partitions) on a
   ``LocalCluster(processes=True, n_workers=2)``, against ``Kiln.from_pandas(...).cool()``.

Usage: .venv/bin/python benches/incremental.py [--tasks N] [--appended A] [--partitions P]
       [--detectors exact|all] [--skip-dask]

``--detectors exact`` (default) enables the three detectors computed from the state (phase
transition, conservation, correlation); ``all`` every detector but clustering (on 16
independent normal metrics clustering alone takes minutes and is not incremental).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from crackle_runtime import Kiln, PatternKind, ThermalProfile, _backend

EXACT = {"phase_transition", "conservation", "correlation"}
METRICS = 16


def _data(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    values = rng.normal(size=(n, METRICS)) + 10.0
    values[:, 1] = 2.0 * values[:, 0] + 0.1 * rng.normal(size=n)
    values[int(0.6 * n) :, 2] += 5.0
    values[rng.random(n) < 0.02, 3] = np.nan
    return values


def _names() -> list[str]:
    return [f"m{k:02d}" for k in range(METRICS)]


def _exact(report: list) -> list[tuple[str, str]]:
    kinds = {"phase transition", "conservation law", "correlation"}
    return [(p.kind.value, p.description) for p in report if p.kind.value in kinds]


def _profile(detectors: str) -> ThermalProfile:
    profile = ThermalProfile.default().with_max_cooling_duration(3600)
    if detectors == "exact":
        kinds = (PatternKind.PHASE_TRANSITION, PatternKind.CONSERVATION, PatternKind.CORRELATION)
        return profile.only(*kinds)
    return profile.without(PatternKind.CLUSTERING)


def incremental(n: int, appended: int, profile: ThermalProfile) -> None:
    values = _data(n + appended)
    kiln = Kiln(profile)
    kiln.add_matrix(values[:n], _names())
    began = time.perf_counter()
    kiln.cool()
    first = time.perf_counter() - began
    began = time.perf_counter()
    kiln.extend()
    extend = time.perf_counter() - began
    kiln.add_matrix(values[n:], _names(), [f"new-{i}" for i in range(appended)])
    began = time.perf_counter()
    report = kiln.cool()
    again = time.perf_counter() - began
    scratch = Kiln(profile)
    scratch.add_matrix(values, _names(), kiln.labels)
    _backend.kernels().forget_law_fits()  # time the laws' fit from scratch too
    began = time.perf_counter()
    expected = scratch.cool()
    full = time.perf_counter() - began
    print(f"incremental: {n:,} tasks x {METRICS} metrics cooled, extend(), +{appended:,} tasks")
    print(f"  first cool()                      {first:8.3f} s")
    print(f"  extend() (state of {n:,} tasks)   {extend:8.3f} s  (once per kiln)")
    print(f"  cool() after extend               {again:8.3f} s")
    print(f"  cool() of all tasks from scratch  {full:8.3f} s   ratio {full / again:.2f}x")
    print("  per detector (after extend / from scratch):")
    for name, seconds in expected.timings.items():
        mark = "state" if name in EXACT else "all tasks"
        print(f"    {name:20s} {report.timings.get(name, 0.0):8.3f} s  {seconds:8.3f} s  ({mark})")
    print(f"  exact detectors' patterns equal: {_exact(report) == _exact(expected)}")


def dask_cool(n: int, partitions: int, profile: ThermalProfile) -> None:
    import dask.dataframe as dd
    import pandas as pd

    from crackle_runtime import dask as crackle_dask

    values = _data(n)
    frame = pd.DataFrame(values, columns=_names())
    began = time.perf_counter()
    expected = Kiln.from_pandas(frame, profile=profile).cool()
    single = time.perf_counter() - began
    with crackle_dask.local_client(2):
        ddf = dd.from_pandas(frame, npartitions=partitions).persist()
        began = time.perf_counter()
        state = crackle_dask.states(ddf)
        states = time.perf_counter() - began
        began = time.perf_counter()
        report = crackle_dask.cool(ddf, profile=profile)
        whole = time.perf_counter() - began
    print(f"dask: {n:,} rows x {METRICS} metrics, {partitions} partitions, 2 worker processes")
    print(f"  states + tree reduce              {states:8.3f} s  ({state.tasks:,} tasks)")
    print(f"  dask.cool() (states, gather, cool) {whole:7.3f} s")
    print(f"  Kiln.from_pandas(...).cool()      {single:8.3f} s")
    print(f"  exact detectors' patterns equal: {_exact(report) == _exact(expected)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--appended", type=int, default=1_000)
    parser.add_argument("--partitions", type=int, default=16)
    parser.add_argument("--detectors", choices=["exact", "all"], default="exact")
    parser.add_argument("--skip-dask", action="store_true")
    args = parser.parse_args()
    profile = _profile(args.detectors)
    print(f"detectors: {sorted(kind.name.lower() for kind in profile.detectors)}")
    incremental(args.tasks, args.appended, profile)
    if not args.skip_dask:
        dask_cool(args.tasks, args.partitions, profile)


if __name__ == "__main__":
    main()
