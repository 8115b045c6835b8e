"""How the detectors hold on realistic telemetry (SPEC §12, issue 11): the share of runs with
a false pattern per kind on the nulls, and recall / location on the signals, over seeded
generators (benches/_telemetry.py).

    python benches/telemetry.py                # 100 seeds per case
    python benches/telemetry.py --quick        # 5 seeds per case: a smoke test
    python benches/telemetry.py --seeds 200 --only "AR(1)"

Every run fills a kiln from ``numpy.random.default_rng([seed, case_number])`` and cools it
with the default profile (every detector, FDR 0.01). Columns: for each kind the share of
runs with at least one pattern of that kind (all false on the nulls); ``outl/task`` the mean
share of tasks reported as outliers; ``index`` the share of runs where an index column is
named by some pattern; then the signal's own measures.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _telemetry import CASES, Case
from crackle_runtime import Kiln, PatternKind, ThermalProfile

KINDS = (
    (PatternKind.CORRELATION, "corr"),
    (PatternKind.DEPENDENCE, "dep"),
    (PatternKind.INFORMATION_FLOW, "flow"),
    (PatternKind.DISTRIBUTION_SHIFT, "shift"),
    (PatternKind.PHASE_TRANSITION, "phase"),
    (PatternKind.CONSERVATION, "cons"),
    (PatternKind.CLUSTERING, "clust"),
)


def named(pattern: Any) -> set[str]:
    details = pattern.details
    names = set(details.get("metrics", []))
    names.update(details[key] for key in ("metric", "source", "target") if key in details)
    return names


def run_case(number: int, case: Case, seeds: int) -> dict[str, Any]:
    counts = {label: 0 for _, label in KINDS}
    outlier_share, index_named = 0.0, 0
    signal: dict[str, float] = {}
    started = time.perf_counter()
    for seed in range(seeds):
        rng = np.random.default_rng([seed, number])
        names, columns, planted = case.make(rng, case.n)
        kiln = Kiln(ThermalProfile.default())
        kiln.add_matrix(np.ascontiguousarray(columns.T), names, [f"t{i}" for i in range(case.n)])
        report = kiln.cool()
        for kind, label in KINDS:
            counts[label] += any(p.kind == kind for p in report)
        outliers = [p for p in report if p.kind == PatternKind.OUTLIER]
        outlier_tasks = {int(p.details["task_index"]) for p in outliers}
        outlier_share += len(outlier_tasks) / case.n
        index = set(planted.get("index", []))
        index_named += any(index & named(p) for p in report)
        measure(case, planted, report, outlier_tasks, signal)
    return {
        "case": case.name,
        "n": case.n,
        "runs": seeds,
        **{label: counts[label] / seeds for label in counts},
        "outl/task": outlier_share / seeds,
        "index": index_named / seeds,
        **{key: value / seeds for key, value in signal.items()},
        "seconds": time.perf_counter() - started,
    }


def measure(
    case: Case, planted: dict[str, Any], report: Any, outliers: set[int], signal: dict[str, float]
) -> None:
    def add(key: str, value: float) -> None:
        signal[key] = signal.get(key, 0.0) + value

    if case.kind == "outlier":
        tasks = set(planted["tasks"])
        add("all found", float(tasks <= outliers))
        add("exactly", float(tasks == outliers))
        add("found share", len(tasks & outliers) / len(tasks))
        add("others/task", len(outliers - tasks) / case.n)
    elif case.kind == "information flow":
        flows = [p for p in report if p.kind == PatternKind.INFORMATION_FLOW]
        right = [p for p in flows if p.details["source"] == planted["source"]]
        add("found", float(bool(flows)))
        add("right dir", float(bool(right) and len(right) == len(flows)))
        add("right lag", float(any(p.details["lag"] == planted["lag"] for p in right)))
    elif case.kind == "change":
        shifts = [p for p in report if p.kind == PatternKind.DISTRIBUTION_SHIFT]
        mine = [p for p in shifts if p.details["metric"] == planted["metric"]]
        errors = [abs(int(p.metrics["change_index"]) - planted["at"]) for p in mine]
        add("found", float(bool(mine)))
        add("within 30", float(any(e <= 30 for e in errors)))
        add("within 90", float(any(e <= 90 for e in errors)))
        add("other changes", float(len(shifts) - len(mine) + sum(e > 90 for e in errors) > 0))
    elif case.kind == "dependence":
        add("found", float(any(p.kind == PatternKind.DEPENDENCE for p in report)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=100)
    parser.add_argument("--quick", action="store_true", help="5 seeds per case")
    parser.add_argument("--only", default="", help="cases whose name contains this")
    args = parser.parse_args(argv)
    seeds = 5 if args.quick else args.seeds
    rows = [
        run_case(number, case, seeds) for number, case in enumerate(CASES) if args.only in case.name
    ]
    keys: list[str] = []
    for row in rows:
        keys.extend(key for key in row if key not in keys)
    print(" | ".join(keys))
    print(" | ".join("---" for _ in keys))
    for row in rows:
        cells = [
            (f"{row[key]:.3f}" if isinstance(row[key], float) else str(row[key]))
            if key in row
            else ""
            for key in keys
        ]
        print(" | ".join(cells))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
