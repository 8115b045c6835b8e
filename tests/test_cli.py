"""The ``crackle`` command line (SPEC §10)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from crackle_runtime.cli import main


def _write_csv(path: Path, rows: int = 60) -> Path:
    rng = np.random.default_rng(1)
    lines = ["name,latency,errors,region,records_in,records_out,dropped"]
    for i in range(rows):
        latency = 50 + (40 if i >= rows // 2 else 0) + rng.normal(0, 2)
        records_in = 1000 + int(rng.integers(-30, 30))
        dropped = int(rng.integers(0, 10))
        lines.append(
            f"job-{i},{latency:.3f},{int(latency > 70)},eu,{records_in},"
            f"{records_in - dropped},{dropped}"
        )
    path.write_text("\n".join(lines) + "\n")
    return path


def test_cool_csv_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write_csv(tmp_path / "jobs.csv")
    assert main(["cool", str(path), "--label", "name"]) == 0
    out = capsys.readouterr().out
    assert "phase transition" in out
    assert "metric 'latency' shifted by" in out
    assert "pattern(s) across 60 task(s) and 5 metric(s)" in out


def test_cool_json_to_file(tmp_path: Path) -> None:
    path = _write_csv(tmp_path / "jobs.csv")
    target = tmp_path / "report.json"
    assert (
        main(["cool", str(path), "--label", "name", "--format", "json", "--output", str(target)])
        == 0
    )
    report = json.loads(target.read_text())
    assert report["task_count"] == 60
    kinds = {p["kind"] for p in report["patterns"]}
    assert "phase transition" in kinds
    shift = next(p for p in report["patterns"] if p["kind"] == "phase transition")
    assert shift["involved_tasks"][0] == "job-0"


def test_cool_jsonl_and_formats(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "runs.jsonl"
    rows = [{"run": f"r{i}", "x": float(i % 2), "y": 2.0 * (i % 2), "note": "n"} for i in range(12)]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    assert main(["cool", str(path), "--label", "run", "--format", "csv", "--profile", "fast"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "kind,confidence,description,involved_tasks,metrics"
    assert "strong positive correlation between 'x' and 'y'" in out
    assert main(["cool", str(path), "--format", "html"]) == 0
    assert capsys.readouterr().out.startswith("<!DOCTYPE html>")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["cool", "/no/such/file.csv"], "no such file"),
        (["cool"], "the following arguments are required"),
        (["bake"], "invalid choice"),
        (["cool", "{csv}", "--label", "missing"], "no such column"),
        (["cool", "{csv}", "--profile", "tepid"], "invalid choice"),
        (["cool", "{bad}"], "not JSON"),
        (["cool", "{text}"], "no numeric columns"),
        (["cool", "{inf}"], "not finite"),
    ],
)
def test_bad_usage_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    files = {
        "{csv}": _write_csv(tmp_path / "ok.csv", 10),
        "{bad}": tmp_path / "bad.jsonl",
        "{text}": tmp_path / "text.csv",
        "{inf}": tmp_path / "inf.csv",
    }
    files["{bad}"].write_text('{"x": 1}\n{oops\n')
    files["{text}"].write_text("a,b\nx,y\n")
    files["{inf}"].write_text("a,b\n1,inf\n2,3\n")
    argv = [str(files[a]) if a in files else a for a in args]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith("crackle: error:")
    assert message in err


def test_python_dash_m_is_the_same_cli(tmp_path: Path) -> None:
    path = _write_csv(tmp_path / "jobs.csv", 20)
    done = subprocess.run(
        [sys.executable, "-m", "crackle_runtime", "cool", str(path), "--format", "json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["task_count"] == 20
    bad = subprocess.run(
        [sys.executable, "-m", "crackle_runtime", "cool", str(tmp_path / "nope.csv")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 2
    assert bad.stderr.strip() == f"crackle: error: no such file: {tmp_path / 'nope.csv'}"
