"""Cost of every detector together (SPEC P11): ``Kiln.cool()`` with every detector on
against the seed crate's four detectors alone, at 100k tasks x 16 metrics.

    python benches/detector_cost.py                      # current backend, best of 5
    python benches/detector_cost.py --backend python --repeats 2
    python benches/detector_cost.py --quick              # 2,000 x 6, once: checks it runs

Data: ``benches/_data.task_metrics(100_000, 16, seed=7)``. Profiles:
``ThermalProfile.default()`` against ``ThermalProfile.default().only(CLUSTERING,
PHASE_TRANSITION, CONSERVATION, CORRELATION)``. Each time is the best of ``--repeats``
cools of a freshly filled kiln (the two profiles alternate, so load on a shared machine hits
both alike). Also printed: the time of each detector in one more cooling with every
detector (``report.timings``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


from _data import task_metrics
from crackle_runtime import Kiln, PatternKind, ThermalProfile, _backend

TARGET = 3.0  # every detector within 3x the seed crate's four (P11)
SEED_DETECTORS = (
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
    seed_only = every.only(*SEED_DETECTORS)

    def cool(profile: ThermalProfile) -> tuple[float, int]:
        kiln = Kiln(profile)
        kiln.add_matrix(values, names, labels)
        _backend.kernels().forget_law_fits()  # the laws' fit from scratch every time
        started = time.perf_counter()
        report = kiln.cool()
        return time.perf_counter() - started, report.tests_run

    seed_times, every_times, tests_run = [], [], 0
    for _ in range(args.repeats):
        seed_times.append(cool(seed_only)[0])
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
        f"{backend}, {args.tasks:,} x {args.metrics}, best of {args.repeats}: seed detectors "
        f"{base:.3f} s, every detector {full:.3f} s, ratio {ratio:.2f}x "
        f"(target <= {TARGET:g}x: {verdict}); {tests_run} p-valued tests"
    )
    kiln = Kiln(every)
    kiln.add_matrix(values, names, labels)
    _backend.kernels().forget_law_fits()
    report = kiln.cool()
    for name, seconds in report.timings.items():
        print(f"  {name}: {seconds:.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
