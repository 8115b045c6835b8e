"""Run the benchmarks of SPEC §11 and print one table of ratios measured in this run.

    python benches/run.py                 # full sizes (SPEC), 5 repeats, minutes
    python benches/run.py --quick         # tiny sizes, 1 repeat: a smoke test (make test)
    python benches/run.py --only P1,P5 --json results.json

Each row: benchmark id, workload, implementation, best time (min of the repeats,
``time.perf_counter``), ratio against the baseline the SPEC names, the target, PASS/FAIL and
a correctness flag (the native result against the NumPy backend's or a peer's). The exit
status is non-zero only when a benchmark raised or a result was wrong — a missed speed target
is reported, not fatal (timings on a shared machine are noise; wrong answers are not).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np

import bench_cli
import bench_cluster
import bench_info
import bench_kiln
from _harness import (
    ERROR,
    FAIL,
    MISMATCH,
    PASS,
    SKIP,
    Config,
    Group,
    Row,
    Skip,
    error_rows,
    render,
)

BENCHMARKS: dict[str, Callable[[Config], list[Group]]] = {
    **bench_info.BENCHMARKS,
    **bench_kiln.BENCHMARKS,
    **bench_cluster.BENCHMARKS,
    **bench_cli.BENCHMARKS,
}
ORDER = sorted(BENCHMARKS, key=lambda name: int(name[1:]))


def environment(config: Config) -> dict[str, Any]:
    import crackle_runtime
    from crackle_runtime import _backend

    return {
        "mode": "quick" if config.quick else "full",
        "repeats": config.repeats,
        "crackle_runtime": crackle_runtime.__version__,
        "build_profile": _backend.build_profile(),
        "numpy": np.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average_at_start": round(os.getloadavg()[0], 2),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
    }


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one repeat")
    parser.add_argument("--only", default="", help="comma-separated ids, e.g. P1,P3")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON to this path")
    arguments = parser.parse_args(argv)
    chosen = [name.strip().upper() for name in arguments.only.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark id(s) {', '.join(unknown)}; known: {', '.join(ORDER)}")
    arguments.chosen = [name for name in ORDER if not chosen or name in chosen]
    return arguments


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    config = Config.make(arguments.quick)
    meta = environment(config)
    print(
        f"crackle_runtime {meta['crackle_runtime']} (build: {meta['build_profile']}), "
        f"numpy {meta['numpy']}, python {meta['python']}, {meta['cpus']} CPUs, "
        f"load average {meta['load_average_at_start']}, {meta['mode']} mode, "
        f"best of {config.repeats}",
        flush=True,
    )
    rows: list[Row] = []
    started = time.perf_counter()
    for name in arguments.chosen:
        began = time.perf_counter()
        try:
            groups = BENCHMARKS[name](config)
            new_rows = [row for group in groups for row in group.rows]
        except Skip as exc:
            new_rows = [Row(name, "(skipped)", "(benchmark)", verdict=SKIP, note=str(exc))]
        except Exception as exc:  # report, keep going, fail at the end
            new_rows = error_rows(name, "(raised)", exc)
        rows += new_rows
        print(f"  {name} done in {time.perf_counter() - began:.1f} s", file=sys.stderr, flush=True)
    print()
    print(render(rows))
    wrong = [row for row in rows if row.correct == MISMATCH]
    raised = [row for row in rows if row.verdict == ERROR]
    judged = [row for row in rows if row.verdict in (PASS, FAIL)]
    passed = sum(row.verdict == PASS for row in judged)
    print(
        f"\n{passed}/{len(judged)} targets met; {len(wrong)} correctness mismatch(es); "
        f"{len(raised)} benchmark error(s); {time.perf_counter() - started:.1f} s in total"
    )
    meta["load_average_at_end"] = round(os.getloadavg()[0], 2)
    print(f"load average at the end: {meta['load_average_at_end']} (other work skews ratios)")
    if arguments.json is not None:
        payload = {"environment": meta, "rows": [row.as_dict() for row in rows]}
        arguments.json.write_text(json.dumps(payload, indent=2, allow_nan=True) + "\n")
    return 1 if wrong or raised else 0


if __name__ == "__main__":
    sys.exit(main())
