"""Time budget and wide data: wall time of ``cool()`` (and of the detector that the budget
cuts) against ``max_cooling_duration``, on both backends.

    .venv/bin/python benches/budget.py [CASE ...]

Cases (``name: tasks x metrics, data, detectors, budget``) are listed in ``CASES``; each
prints the wall time of ``cool()``, its overrun past the budget, ``report.incomplete`` and
the detectors' timings, then the wall time of ``cool(on_timeout="raise")`` and whether it
raised. Run one case per process for peak memory (``/usr/bin/time -f %M``).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass

import numpy as np

from crackle_runtime import Kiln, ThermalProfile, _backend
from crackle_runtime.errors import CoolingTimeoutError


@dataclass(frozen=True)
class Case:
    backend: str
    tasks: int
    metrics: int
    budget: float
    only: tuple[str, ...] = ()
    gaps: bool = False


CASES = {
    "noise-200k-x8": Case("native", 200_000, 8, 60.0),
    "noise-1M-x8-clustering": Case("native", 1_000_000, 8, 60.0, ("clustering",)),
    "wide-3-x5000": Case("native", 3, 5000, 60.0),
    "numpy-clustering-60k-x8": Case("python", 60_000, 8, 60.0, ("clustering",)),
    "numpy-clustering-200k-x8": Case("python", 200_000, 8, 60.0, ("clustering",)),
    "numpy-clustering-100k-x64": Case("python", 100_000, 64, 1.0, ("clustering",)),
    "numpy-clustering-100k-x64-gaps": Case("python", 100_000, 64, 1.0, ("clustering",), True),
    "dependence-500-x400": Case("native", 500, 400, 1.0, ("dependence",)),
    "flow-60-x1500": Case("native", 60, 1500, 1.0, ("information flow",)),
}


def run(name: str, case: Case) -> None:
    _backend.use(case.backend)
    rng = np.random.default_rng(1)
    values = rng.standard_normal((case.tasks, case.metrics))
    if case.gaps:
        values[rng.random(values.shape) < 0.05] = np.nan
    profile = ThermalProfile.default().with_max_cooling_duration(case.budget)
    if case.only:
        profile = profile.only(*case.only)
    names = [f"m{k}" for k in range(case.metrics)]
    for on_timeout in ("skip", "raise"):
        kiln = Kiln(profile)
        kiln.add_matrix(values, names)
        began = time.perf_counter()
        try:
            report = kiln.cool(on_timeout=on_timeout)  # type: ignore[arg-type]
            outcome = f"incomplete={[(str(k), r) for k, r in report.incomplete]}"
            timings = {k: round(v, 2) for k, v in report.timings.items()}
            outcome += f" timings={timings} patterns={len(report)}"
        except CoolingTimeoutError as error:
            outcome = f"raised: {error}"
        elapsed = time.perf_counter() - began
        print(
            f"{name} [{case.backend}] {case.tasks}x{case.metrics} budget {case.budget:g} s "
            f"on_timeout={on_timeout}: {elapsed:.2f} s "
            f"(overrun {max(elapsed - case.budget, 0.0):.2f} s) {outcome}",
            flush=True,
        )
        if case.budget >= 60.0:
            break  # one run of the long cases is enough


if __name__ == "__main__":
    for name in sys.argv[1:] or list(CASES):
        run(name, CASES[name])
