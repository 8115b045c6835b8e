"""Cooling partitioned Parquet on a Dask cluster (SPEC §14): a dataset of ``--rows`` rows x
16 metrics written in files of ``--chunk`` rows, cooled by ``crackle_runtime.dask.cool`` on a
``LocalCluster(processes=True, n_workers=2)`` (wall time, peak resident memory of each worker
process); its first ``--reference-rows`` rows cooled on one machine by ``Kiln.from_pandas(...)
.cool()`` (time per row) and by ``dask.cool`` with the same sampling, whose exact detectors
(phase transition, conservation of a metric, correlation) must equal the single machine's.

The data: a run id (the label), 16 telemetry-like metrics: AR(1) 0.6 CPU-like metrics, a
log-normal latency with a +30% median regression at 60% of the rows, a queue depth pair that
moves together (r ~ 0.99), records in/out/dropped (a conserved difference), a near-constant
batch size, retries (Poisson 0.3) and a metric with 2% gaps. Every detector but clustering
is enabled (clustering 16-D noise of 10M rows on one machine takes far longer than the rest).

Usage: .venv/bin/python benches/dask_parquet.py [--rows 100000000] [--chunk 1000000]
       [--reference-rows 10000000] [--dir /tmp/crackle-parquet] [--quick]
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import resource
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.signal

from crackle_runtime import Kiln, PatternKind, ThermalProfile
from crackle_runtime import dask as crackle_dask

METRICS = 16


def _chunk(start: int, rows: int, total: int, seed: int) -> pd.DataFrame:
    """Rows ``start .. start + rows`` of the dataset (each chunk its own seed; the AR(1)
    metrics restart at each chunk, which a reader cannot see at 1M rows per chunk)."""
    rng = np.random.default_rng(seed)
    position = np.arange(start, start + rows)
    ar = scipy.signal.lfilter([1.0], [1.0, -0.6], rng.normal(size=(6, rows)), axis=1)
    latency = np.exp(np.log(120.0) + 0.5 * rng.normal(size=rows))
    latency[position >= int(0.6 * total)] *= 1.3
    queue = 20.0 + 3.0 * ar[0]
    records_in = rng.integers(900, 1100, size=rows).astype(np.float64)
    dropped = rng.poisson(2.0, size=rows).astype(np.float64)
    gappy = 50.0 + ar[5]
    gappy[rng.random(rows) < 0.02] = np.nan
    columns: dict[str, Any] = {
        "run_id": position.astype(np.int64),
        "cpu_0": 40.0 + 5.0 * ar[1],
        "cpu_1": 40.0 + 5.0 * ar[2],
        "cpu_2": 40.0 + 5.0 * ar[3],
        "mem_mb": 2048.0 + 30.0 * ar[4],
        "latency_ms": latency,
        "queue": queue,
        "queue_wait_ms": 4.0 * queue + rng.normal(size=rows),
        "records_in": records_in,
        "records_out": records_in - dropped,
        "dropped": dropped,
        "batch_size": 512.0 + 0.5 * rng.normal(size=rows),
        "retries": rng.poisson(0.3, size=rows).astype(np.float64),
        "gappy": gappy,
        "io_mb": rng.gamma(2.0, 10.0, size=rows),
        "gc_ms": rng.exponential(3.0, size=rows),
        "threads": rng.integers(8, 17, size=rows).astype(np.float64),
    }
    frame = pd.DataFrame(columns)
    assert frame.shape[1] == METRICS + 1
    return frame


def write(directory: Path, rows: int, chunk: int) -> float:
    """The dataset in files ``part-00000.parquet`` ... (kept when already written with the
    same shape); returns the seconds spent writing."""
    manifest = directory / "manifest.json"
    wanted = {"rows": rows, "chunk": chunk, "metrics": METRICS, "version": 1}
    if manifest.exists() and json.loads(manifest.read_text()) == wanted:
        return 0.0
    directory.mkdir(parents=True, exist_ok=True)
    for old in directory.glob("part-*.parquet"):
        old.unlink()
    began = time.perf_counter()
    for k, start in enumerate(range(0, rows, chunk)):
        frame = _chunk(start, min(chunk, rows - start), rows, seed=k)
        frame.to_parquet(directory / f"part-{k:05d}.parquet", index=False)
    manifest.write_text(json.dumps(wanted))
    return time.perf_counter() - began


def _profile() -> ThermalProfile:
    return ThermalProfile.default().with_max_cooling_duration(7200).without(PatternKind.CLUSTERING)


def _exact(report: Any) -> list[tuple[str, str]]:
    """The exact detectors' patterns, their numbers to 9 significant digits (the merged
    sums may differ from one pass in the last bits)."""
    kinds = {PatternKind.PHASE_TRANSITION, PatternKind.CORRELATION, PatternKind.CONSERVATION}
    return [
        (p.kind.value, re.sub(r"-?\d+\.\d+", lambda x: f"{float(x.group()):.9g}", p.description))
        for p in report
        if p.kind in kinds and "law" not in p.details
    ]


def _peak_mb(client: Any) -> list[float]:
    """The peak resident memory of each worker process, MB (Linux reports KB)."""
    peaks = client.run(lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    return [peak / 1024.0 for peak in peaks.values()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000_000)
    parser.add_argument("--chunk", type=int, default=1_000_000)
    parser.add_argument("--reference-rows", type=int, default=10_000_000)
    parser.add_argument("--sample-rows", type=int, default=crackle_dask.DEFAULT_SAMPLE_ROWS)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/crackle-parquet"))
    parser.add_argument("--quick", action="store_true", help="a small run that checks it works")
    args = parser.parse_args()
    if args.quick:
        args.rows, args.chunk, args.reference_rows, args.sample_rows = (
            120_000,
            40_000,
            80_000,
            8_000,
        )
        args.dir = args.dir.with_name(args.dir.name + "-quick")
    if args.reference_rows % args.chunk:
        parser.error("--reference-rows must be a multiple of --chunk")
    said = logging.StreamHandler()
    said.setFormatter(logging.Formatter("  %(message)s"))
    logger = logging.getLogger("crackle_runtime.dask")
    logger.addHandler(said)
    logger.setLevel(logging.INFO)
    import dask.dataframe as dd

    wrote = write(args.dir, args.rows, args.chunk)
    files = sorted(str(path) for path in args.dir.glob("part-*.parquet"))
    print(
        f"dataset: {args.rows:,} rows x {METRICS} metrics in {len(files)} Parquet files"
        f" ({sum(Path(f).stat().st_size for f in files) / 1e9:.2f} GB; written in {wrote:.1f} s,"
        " 0 = already there)"
    )
    profile = _profile()
    reference_files = files[: args.reference_rows // args.chunk]

    def on_dask(paths: list[str]) -> tuple[Any, float]:
        began = time.perf_counter()
        report = crackle_dask.cool(
            dd.read_parquet(paths),
            profile,
            label="run_id",
            gather_rows=0,
            sample_rows=args.sample_rows,
        )
        return report, time.perf_counter() - began

    with crackle_dask.local_client(2) as client:
        report, whole = on_dask(files)
        peaks = _peak_mb(client)
        first, first_time = on_dask(reference_files)
    print(
        f"dask.cool, 2 workers: {args.rows:,} rows in {whole:.1f} s"
        f" ({whole / args.rows * 1e6:.2f} us/row), {len(report)} patterns;"
        f" peak RSS per worker {', '.join(f'{p:,.0f} MB' for p in peaks)}"
    )
    print(f"    patterns by kind: {report.counts()}")
    for note in report.notes:
        print(f"    note: {note}")
    for kind, description in _exact(report)[:6]:
        print(f"    {kind}: {description}")
    began = time.perf_counter()
    frame = pd.concat([pd.read_parquet(f) for f in reference_files], ignore_index=True)
    read = time.perf_counter() - began
    began = time.perf_counter()
    single = Kiln.from_pandas(frame, label="run_id", profile=profile).cool()
    single_time = time.perf_counter() - began
    del frame
    n = args.reference_rows
    print(
        f"first {n:,} rows: Kiln.from_pandas(...).cool() {single_time:.1f} s"
        f" ({single_time / n * 1e6:.2f} us/row; reading {read:.1f} s not counted);"
        f" dask.cool {first_time:.1f} s ({first_time / n * 1e6:.2f} us/row)"
    )
    print(
        f"  100M-row run per row / single machine per row: "
        f"{(whole / args.rows) / (single_time / n):.2f}x"
    )
    same = _exact(first) == _exact(single)
    print(
        f"  exact detectors equal on the first {n:,} rows: {same} ({len(_exact(single))} patterns)"
    )
    if not same:
        raise SystemExit("the exact detectors differ from the single-machine report")


if __name__ == "__main__":
    main()
