"""P9's measurement, run in a fresh interpreter: ``_memory_child.py TASKS METRICS BACKEND``.

Prints one JSON line. The kiln is filled chunk by chunk from the workload generator, so
filling never holds a second full copy of the matrix. The peak resident set size (VmHWM,
else ``ru_maxrss``) is then reset (``/proc/self/clear_refs`` = 5, Linux) and read again after
``cool()``: the increase is what cooling itself needs above the filled kiln. Without the
reset (other kernels), the peak after filling is the reference instead, which under-reports
cooling's need when filling peaked higher, so the child says which one it used.
"""

from __future__ import annotations

import gc
import json
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))


def peak_rss() -> int:
    """Peak resident set size of this process, in bytes.

    VmHWM of /proc/self/status where there is one, else ``ru_maxrss``: on Linux, execve
    carries the parent's peak into the child's ``ru_maxrss`` (the runner is a big process by
    the time P9 runs) and clear_refs does not reset that part, while VmHWM is this
    process's own high-water mark.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def current_rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize()


def reset_peak() -> bool:
    """Reset the peak RSS to the current RSS; whether the kernel allowed it."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
    except OSError:
        return False
    return peak_rss() <= current_rss() + (4 << 20)


def main() -> None:
    tasks, metrics, which = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    profile_name = sys.argv[4] if len(sys.argv) > 4 else "seed"
    import numpy as np  # noqa: F401  (part of the interpreter baseline)

    from _data import METRIC_NAMES, task_metric_chunks
    from _harness import Skip, kernels_present
    from bench_kiln import default_profile, seed_profile
    from crackle_runtime import Kiln, _backend

    _backend.use(which)
    gc.collect()
    baseline = peak_rss()

    kiln = Kiln(seed_profile() if profile_name == "seed" else default_profile())
    names = list(METRIC_NAMES[:metrics])
    for chunk in task_metric_chunks(tasks, metrics, seed=71):
        kiln.add_matrix(chunk, names)
        del chunk
    gc.collect()
    filled_peak = peak_rss()
    hwm_reset = reset_peak()
    before = current_rss() if hwm_reset else filled_peak

    start = time.perf_counter()
    try:
        with kernels_present("native" if which == "native" else "NumPy"):
            report = kiln.cool()
    except Skip as exc:
        print(json.dumps({"skip": str(exc)}))
        return
    seconds = time.perf_counter() - start
    after = peak_rss()
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(
        json.dumps(
            {
                "baseline": baseline,
                "filled_peak": filled_peak,
                "before_cool": before,
                "cool_peak": after,
                "cool_peak_increase": max(0, after - before),
                "peak_above_baseline": max(after, filled_peak) - baseline,
                "hwm_reset": hwm_reset,
                "ru_maxrss_after_cool": maxrss,
                "cool_seconds": seconds,
                "patterns": len(report),
                "incomplete": [str(item) for item in report.incomplete],
            }
        )
    )


if __name__ == "__main__":
    main()
