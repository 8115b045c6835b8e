"""Cost of the added detectors (SPEC §6 "Added detectors"): ``Kiln.cool()`` with every
detector on against the four seed detectors alone, at 100k tasks x 16 metrics.

    python benches/added_cost.py                      # current backend, best of 5
    python benches/added_cost.py --backend python --repeats 2
    python benches/added_cost.py --quick              # 2,000 x 6, once: checks it still runs

Data: ``benches/_data.task_metrics(100_000, 16, seed=7)``. Profiles:
``ThermalProfile.default()`` against ``ThermalProfile.default().only(CLUSTERING,
PHASE_TRANSITION, CONSERVATION, CORRELATION)``. Each time is the best of ``--repeats``
cools of a freshly filled kiln (the two profiles alternate, so load on a shared machine hits
both alike). Also printed: the best time of each permutation-tested kernel on the same data
with the profile's parameters, and its permutation rounds.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np

from _data import task_metrics
from crackle_runtime import Kiln, PatternKind, ThermalProfile, _backend
from crackle_runtime.added import (
    MAX_LAG,
    MAX_TEST_N,
    MIN_FLOW_VALUES,
    MIN_PAIRS,
    MIN_SEGMENT,
    PERMUTATION_SEED,
)

TARGET = 3.0  # every detector within 3x the seed four
SEED_FOUR = (
    PatternKind.CLUSTERING,
    PatternKind.PHASE_TRANSITION,
    PatternKind.CONSERVATION,
    PatternKind.CORRELATION,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--backend", default="auto", help="auto, native or python")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--metrics", type=int, default=16)
    parser.add_argument(
        "--quick", action="store_true", help="2,000 x 6, one repeat: only checks it runs"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.tasks, args.metrics, args.repeats = 2_000, 6, 1
    _backend.use(args.backend)
    values, names = task_metrics(args.tasks, args.metrics, seed=7)
    labels = [f"task-{i}" for i in range(values.shape[0])]
    every = ThermalProfile.default()
    seed_four = every.only(*SEED_FOUR)

    def cool(profile: ThermalProfile) -> tuple[float, int]:
        kiln = Kiln(profile)
        kiln.add_matrix(values, names, labels)
        started = time.perf_counter()
        report = kiln.cool()
        return time.perf_counter() - started, report.tests_run

    seed_times, every_times, tests_run = [], [], 0
    for _ in range(args.repeats):
        seed_times.append(cool(seed_four)[0])
        seconds, tests_run = cool(every)
        every_times.append(seconds)
    base, full = min(seed_times), min(every_times)
    backend = _backend.name
    if backend == "native":
        backend += f" ({_backend.build_profile()} build)"
    ratio = full / base
    verdict = "PASS" if ratio <= TARGET else "FAIL"
    if args.quick:
        verdict = "not judged in quick mode"
    print(
        f"{backend}, {args.tasks:,} x {args.metrics}, best of {args.repeats}: seed four "
        f"{base:.3f} s, every detector {full:.3f} s, ratio {ratio:.2f}x "
        f"(target <= {TARGET:g}x: {verdict}); {tests_run} p-valued tests"
    )
    columns = np.ascontiguousarray(values.T)
    kernels = _backend.kernels()
    budget = every.permutations
    runs: list[tuple[str, int, Callable[[], Any]]] = [
        (
            "distribution_shift_stats",
            5,
            lambda: kernels.distribution_shift_stats(
                columns, MIN_SEGMENT, budget, PERMUTATION_SEED, MAX_TEST_N
            ),
        ),
        (
            "dependence_stats",
            7,
            lambda: kernels.dependence_stats(
                columns,
                every.correlation_threshold,
                MIN_PAIRS,
                budget,
                PERMUTATION_SEED,
                MAX_TEST_N,
            ),
        ),
        (
            "information_flow_stats",
            7,
            lambda: kernels.information_flow_stats(
                columns, MIN_FLOW_VALUES, budget, PERMUTATION_SEED, MAX_TEST_N, MAX_LAG
            ),
        ),
    ]
    for name, perms_column, run in runs:
        times = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            stats = np.asarray(run())
            times.append(time.perf_counter() - started)
        rounds = int(np.nansum(stats[:, perms_column]))
        tested = int(np.count_nonzero(~np.isnan(stats[:, perms_column])))
        print(f"  {name}: {min(times):.3f} s, {tested} tests, {rounds} permutation rounds")
    return 0


if __name__ == "__main__":
    sys.exit(main())
