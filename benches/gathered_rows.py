"""The phase-transition filtering pass on gathered rows (SPEC §14): how many rows and rounds
``state_rows_needed`` asks for, and that the tables from those rows equal the tables of every
row (phase transition and correlation).

Run: .venv/bin/python benches/gathered_rows.py [--tasks 1000000] [--metrics 16]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import scipy.signal

from crackle_runtime import CoolingState, _backend


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--metrics", type=int, default=16)
    parser.add_argument("--latest", type=int, default=10_000)
    args = parser.parse_args()
    _backend.use("native")
    kernels = _backend.kernels()
    rng = np.random.default_rng(0)
    n, m = args.tasks, args.metrics
    # AR(1) 0.5 metrics around 10, a step in one, 2% gaps in another
    columns = 10 + scipy.signal.lfilter([1.0], [1.0, -0.5], rng.normal(size=(m, n)), axis=1)
    columns[min(3, m - 1), int(0.6 * n) :] += 0.5
    columns[min(5, m - 1), rng.random(n) < 0.02] = np.nan
    names = [f"m{i}" for i in range(m)]
    half = n // 2
    state = CoolingState.of(names, columns[:, :half]).merge(
        CoolingState.of(names, columns[:, half:], start=half)
    )
    selected = np.arange(m, dtype=np.int64)
    started = time.perf_counter()
    keep = np.zeros(n, dtype=bool)
    positions = np.empty(0, dtype=np.int64)
    rounds = 0
    while True:
        gathered = np.ascontiguousarray(columns[:, positions])
        more = kernels.state_rows_needed(state.flat, selected, gathered, positions)
        if more.shape[0] == 0:
            break
        rounds += 1
        for low, high in more.tolist():
            keep[low:high] = True
        positions = np.flatnonzero(keep)
    elapsed = time.perf_counter() - started
    buckets = positions.size
    keep[n - args.latest :] = True
    positions = np.flatnonzero(keep)
    gathered = np.ascontiguousarray(columns[:, positions])
    for name, params in (("phase_transition", {}), ("correlation", {"threshold": 0.01})):
        got = kernels.table_from_state(name, state.flat, gathered, selected, params, positions)
        every = kernels.table_from_state(name, state.flat, columns, selected, params)
        if not all(np.array_equal(got[f], every[f], equal_nan=True) for f in every):
            raise SystemExit(f"{name}: the tables from gathered rows differ")
    print(
        f"{n:,} x {m}: {rounds} rounds ({elapsed:.3f} s), {buckets:,} rows of buckets + the "
        f"latest {args.latest:,} = {positions.size:,} rows ({positions.size / n:.1%}); "
        "tables equal"
    )


if __name__ == "__main__":
    main()
