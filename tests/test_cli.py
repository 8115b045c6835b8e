"""The ``crackle`` command line (SPEC §10)."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import time
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
    digits = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8]  # no cycle: a shared one is no correlation
    rows = [
        {"run": f"r{i}", "x": float(d), "y": 2.0 * d, "note": "n"} for i, d in enumerate(digits)
    ]
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


# --- SPEC §13: options for CI, exit codes, readers, robustness ---------------------------
def _ci_export(path: Path, rows: int = 120) -> Path:
    """Runs in shuffled start order: build_s rises 25% from the 61st run by start time; a
    text column, a start time, NA cells in a steady column."""
    rng = np.random.default_rng(5)
    order = rng.permutation(rows)
    lines = ["run_id,started_at,branch,build_s,queue_s,tests"]
    for i in order:
        build = (100.0 if i < rows // 2 else 125.0) + rng.normal(0, 1.0)
        tests = "NA" if i % 11 == 0 else str(500 + int(rng.integers(0, 3)))
        lines.append(
            f"run-{i:04d},2026-03-01T{i // 60:02d}:{i % 60:02d}:00Z,main,"
            f"{build:.2f},{rng.exponential(2.0):.3f},{tests}"
        )
    path.write_text("\n".join(lines) + "\n")
    return path


def _run(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "crackle_runtime", *args],
        input=stdin,
        capture_output=True,
        check=False,
    )


def test_fail_on_exit_codes_via_subprocess(tmp_path: Path) -> None:
    path = str(_ci_export(tmp_path / "ci.csv"))
    common = ["cool", path, "--label", "run_id", "--order-by", "started_at", "--format", "json"]
    found = _run(*common, "--only", "distribution_shift", "--fail-on", "distribution_shift")
    assert found.returncode == 1, found.stderr
    report = json.loads(found.stdout)
    shift = next(p for p in report["patterns"] if p["kind"] == "distribution shift")
    assert shift["details"]["metric"] == "build_s"
    assert shift["details"]["change_label"] == "run-0060"
    assert _run(*common, "--only", "distribution_shift", "--fail-on", "clustering").returncode == 0
    assert _run(*common, "--only", "distribution_shift", "--fail-on", "any").returncode == 1
    bad = _run(*common, "--fail-on", "regression")
    assert bad.returncode == 2
    assert bad.stderr.decode().count("\n") == 1
    assert "unknown pattern kind 'regression'" in bad.stderr.decode()


def test_cool_reads_stdin(tmp_path: Path) -> None:
    data = _ci_export(tmp_path / "ci.csv").read_bytes()
    done = _run("cool", "-", "--label", "run_id", "--format", "json", stdin=gzip.compress(data))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["task_count"] == 120


def test_order_by_ignore_only_fdr_and_notes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(_ci_export(tmp_path / "ci.csv"))
    argv = ["cool", path, "--label", "run_id", "--order-by", "started_at", "--ignore", "tests"]
    argv += ["--without", "clustering,dependence,information-flow", "--fdr", "0.05"]
    assert main([*argv, "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["fdr"] == 0.05
    assert report["task_count"] == 120
    assert report["notes"][-3:] == [
        "'tests' takes part in no detector: ignored (--ignore)",
        "'started_at' takes part in no detector: it orders the tasks (--order-by)",
        "'branch' takes part in no detector: it is not numeric (text)",
    ]
    kinds = {p["kind"] for p in report["patterns"]}
    assert kinds.isdisjoint({"clustering", "dependence", "information flow"})
    assert all("tests" not in p["description"] for p in report["patterns"])
    assert main([*argv, "--format", "csv", "--fail-on", "distribution_shift"]) == 1
    assert "distribution shift" in capsys.readouterr().out
    assert main(["cool", path, "--only", "outlier", "--without", "outlier"]) == 0
    assert "0 pattern(s)" in capsys.readouterr().out


def test_without_order_by_a_timestamp_column_is_named_in_the_notes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(_ci_export(tmp_path / "ci.csv"))
    assert main(["cool", path, "--only", "outlier"]) == 0
    out = capsys.readouterr().out
    assert (
        "'started_at' takes part in no detector: it holds timestamps (order the tasks by it "
        "with --order-by 'started_at')" in out
    )
    assert "'run_id' takes part in no detector: it is not numeric (text)" in out


def test_version_and_help_texts(capsys: pytest.CaptureFixture[str]) -> None:
    from crackle_runtime import __version__

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"crackle {__version__}"
    assert main(["cool", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())  # help wraps lines
    for option in ("FILE|-", "--label", "--order-by", "--ignore", "--only", "--without"):
        assert option in text
    for example in (
        "e.g. runs.csv",
        "e.g. --label run_id",
        "e.g. --order-by started_at",
        "e.g. --ignore",
        "e.g. --only",
        "e.g. --without clustering",
        "e.g. --fdr 0.05",
        "or --fail-on any",
        "e.g. --profile fast",
        "e.g. --format json",
        "e.g. --output report.html",
        "exit status: 0",
    ):
        assert example in text, example


@pytest.mark.parametrize(
    ("name", "content", "extra", "message"),
    [
        ("big.jsonl", '{"x": ' + "9" * 401 + '}\n{"x": 1}\n{"x": 2}\n', [], "too large"),
        ("deep.jsonl", '{"x": 1}\n{"x": ' + "[" * 100_000 + "]" * 100_000 + "}\n", [], "deeply"),
        ("na.csv", "a,b\n1,x\n2,y\n", ["--order-by", "c"], "--order-by 'c': no such column"),
        ("na2.csv", "a,b\n1,x\n2,y\n", ["--ignore", "a,,b"], "empty column name"),
        ("na3.csv", "a,b\n1,x\n2,y\n", ["--fdr", "2"], "between 0.0 and 1.0"),
    ],
)
def test_bad_input_is_exit_2_and_one_line(
    tmp_path: Path, name: str, content: str, extra: list[str], message: str
) -> None:
    path = tmp_path / name
    path.write_text(content)
    done = _run("cool", str(path), *extra)
    assert done.returncode == 2
    err = done.stderr.decode()
    assert err.count("\n") == 1 and err.startswith("crackle: error:"), err
    assert message in err


def test_parquet_with_duplicate_names_is_one_line(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    path = tmp_path / "dup.parquet"
    pq.write_table(pa.Table.from_arrays([pa.array([1.0]), pa.array([2.0])], ["a", "a"]), path)
    done = _run("cool", str(path))
    assert done.returncode == 2
    assert done.stderr.decode() == f"crackle: error: {path}: duplicate column name 'a'\n"


def test_lone_surrogate_label_renders_in_every_format(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    # the metric name (in every description) and one label hold a lone surrogate
    rows = [{"run": "\ud800" if i == 30 else f"r{i}", "\udc80x": float(i >= 30)} for i in range(60)]
    path.write_text("\n".join(json.dumps(row) for row in rows) + "\n")
    for fmt in ("html", "table", "csv", "json"):
        done = _run(
            "cool", str(path), "--label", "run", "--only", "phase_transition", "--format", fmt
        )
        assert done.returncode == 0, done.stderr
        assert b"\\udc80x" in done.stdout, fmt
        done.stdout.decode("utf-8")  # valid UTF-8


def test_wide_csv_is_bounded(wide_csv: Path) -> None:
    path = wide_csv
    started = time.perf_counter()
    done = _run("cool", str(path))
    assert time.perf_counter() - started < 30.0  # was more than 120 s
    assert done.returncode == 2
    assert done.stderr.decode() == (
        f"crackle: error: {path}: 20,000 metric columns, more than the 1,000 the pairwise "
        "detectors take; leave them out with --without correlation,dependence,"
        "information_flow or name fewer columns (--ignore)\n"
    )


def test_a_closed_pipe_is_not_a_traceback(tmp_path: Path) -> None:
    path = _write_csv(tmp_path / "jobs.csv", 60)
    command = [sys.executable, "-m", "crackle_runtime", "cool", str(path), "--fail-on", "any"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
        assert process.stdout is not None and process.stderr is not None
        process.stdout.close()  # like `| head` that has read enough
        err = process.stderr.read()
        assert process.wait(timeout=120) == 1  # patterns were found
    assert err == b""


def test_a_file_named_like_a_glob_is_that_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write_csv(tmp_path / "runs[1].csv")
    _write_csv(tmp_path / "runs1.csv", rows=30)  # what the glob would match
    assert main(["cool", str(path), "--label", "name"]) == 0
    assert "across 60 task(s)" in capsys.readouterr().out


def test_a_cluster_run_of_a_missing_path_or_stdin_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("distributed")
    assert main(["cool", str(tmp_path / "nothing-here"), "--workers", "1"]) == 2
    assert "no such file or directory" in capsys.readouterr().err
    assert main(["cool", "-", "--workers", "1"]) == 2
    assert "not standard input" in capsys.readouterr().err


def test_a_directory_of_parquet_is_read_as_one_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    rng = np.random.default_rng(3)
    x = np.r_[rng.normal(0.0, 1.0, 200), rng.normal(5.0, 1.0, 200)]
    (tmp_path / "d").mkdir()
    for part in range(4):
        chunk = pa.table({"x": x[100 * part : 100 * (part + 1)]})
        pq.write_table(chunk, tmp_path / "d" / f"part-{part}.parquet")
    pq.write_table(pa.table({"x": x}), tmp_path / "all.parquet")
    outputs = []
    for source in (tmp_path / "d", tmp_path / "all.parquet"):
        assert main(["cool", str(source), "--format", "json"]) == 0
        report = json.loads(capsys.readouterr().out)
        outputs.append([(p["kind"], p["description"]) for p in report["patterns"]])
        assert main(["cool", str(source), "--ignore", "nope"]) == 2
        assert "--ignore 'nope': no such column" in capsys.readouterr().err
    assert outputs[0] == outputs[1]
    assert any("at task 'row-201'" in text for _, text in outputs[0])


def test_values_near_the_largest_float_are_cooled(tmp_path: Path) -> None:
    flip = np.r_[np.full(50, -1.7e308), np.full(50, 1.7e308), np.full(50, -1.7e308)]
    path = tmp_path / "flip.csv"
    path.write_text("flip,other\n" + "".join(f"{v!r},{i % 7}\n" for i, v in enumerate(flip)))
    assert main(["cool", str(path), "--format", "json", "--output", str(tmp_path / "r.json")]) == 0
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["task_count"] == 150
