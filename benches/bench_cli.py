"""P12: ``crackle cool`` of a task file end to end against pandas + ``Kiln.from_pandas`` +
``cool()`` on the same file (SPEC §11, §13).

The file: one row per task, a text run id (the label), an ISO start time and 11 numeric
metrics from ``_data.task_metrics`` (planted shifts, clusters, a conserved sum), with NA
cells. The CLI runs as a subprocess (interpreter start-up and imports included) writing its
default table to a file; the baseline runs in this process with pandas already imported.
The correctness flag compares the patterns both found (kind and description, in order) in
the CLI's JSON output, whose time is shown for information.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from _data import task_metrics
from _harness import BASELINE, Config, Group, Skip, Target, best_of, flag

METRICS = 11  # + the run id and the start time: 13 columns


def write_tasks_csv(path: Path, tasks: int) -> None:
    values, names = task_metrics(tasks, METRICS, seed=121)
    rng = np.random.default_rng(122)
    values[rng.random(values.shape) < 0.001] = np.nan  # NA cells, absent values
    start = np.datetime64("2026-03-01T00:00:00") + np.arange(tasks) * np.timedelta64(7, "s")
    columns = [
        np.char.add("run-", np.arange(tasks).astype(str)),
        np.datetime_as_string(start),
        *(np.where(np.isnan(column), "NA", np.char.mod("%.6g", column)) for column in values.T),
    ]
    with path.open("w") as fh:
        fh.write(",".join(["run_id", "started_at", *names]) + "\n")
        fh.write("\n".join(",".join(row) for row in zip(*columns, strict=True)) + "\n")


def _patterns(report: Any) -> list[tuple[str, str]]:
    return [(pattern["kind"], pattern["description"]) for pattern in report["patterns"]]


def p12(config: Config) -> list[Group]:
    try:
        import pandas as pd
    except ImportError as exc:
        raise Skip("pandas is not installed") from exc
    from crackle_runtime import Kiln

    tasks = config.size(100_000, 5_000)
    group = Group("P12", f"crackle cool, CSV {tasks:,} rows x 13 columns, end to end")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "tasks.csv"
        output = Path(folder) / "report.json"
        write_tasks_csv(path, tasks)

        def baseline() -> Any:
            frame = pd.read_csv(path)
            return Kiln.from_pandas(frame, label="run_id").cool()

        seconds, report = best_of(baseline, config.repeats)
        base = group.add(
            "pandas.read_csv + Kiln.from_pandas + cool()", seconds=seconds, verdict=BASELINE
        )
        expected = _patterns(json.loads(report.to_json()))
        command = [sys.executable, "-m", "crackle_runtime", "cool", str(path), "--label", "run_id"]
        table = [*command, "--output", str(output)]
        as_json = [*command, "--format", "json", "--output", str(output)]

        seconds, _ = best_of(lambda: subprocess.run(table, check=True), config.repeats)
        row = group.add("crackle cool (subprocess, table output)", seconds=seconds)
        seconds, _ = best_of(lambda: subprocess.run(as_json, check=True), 1)
        found = _patterns(json.loads(output.read_text()))
        row.correct = flag(found == expected)
        info = group.add(
            "crackle cool --format json (subprocess)",
            seconds=seconds,
            correct=row.correct,
            note=f"{output.stat().st_size / 1e6:.0f} MB of JSON",
        )
        group.compare([row], base, Target("time", 2.0, "<= 2x pandas + from_pandas + cool"))
        group.compare([info], base)
    return [group]


BENCHMARKS = {"P12": p12}
