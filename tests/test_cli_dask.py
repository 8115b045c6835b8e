"""``crackle cool`` of a directory or glob of Parquet files, on a local Dask cluster the
command starts itself (``--workers``), equals a single-machine cool of the same rows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from crackle_runtime.cli import main
from test_dask import _frame, _printed

pytest.importorskip("distributed")


def test_crackle_cool_of_a_parquet_directory_on_a_local_cluster(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frame = _frame(1200, seed=5)
    for part in range(3):
        frame.iloc[part * 400 : (part + 1) * 400].to_parquet(tmp_path / f"part-{part}.parquet")
    frame.to_parquet(tmp_path.parent / "whole.parquet")
    options = ["--label", "run", "--order-by", "started", "--format", "json"]
    assert main(["cool", str(tmp_path), "--workers", "2", *options]) == 0
    on_dask = json.loads(capsys.readouterr().out)
    assert main(["cool", str(tmp_path / "part-*.parquet"), *options]) == 0
    globbed = json.loads(capsys.readouterr().out)
    assert main(["cool", str(tmp_path.parent / "whole.parquet"), *options]) == 0
    single = json.loads(capsys.readouterr().out)

    def described(report: dict[str, Any]) -> list[str]:
        return [_printed(pattern["description"]) for pattern in report["patterns"]]

    assert described(on_dask) == described(single) == described(globbed)
    assert described(single)
    assert main(["cool", str(tmp_path / "none-*.parquet"), "--workers", "2"]) == 2
    assert "no Parquet files" in capsys.readouterr().err
    assert main(["cool", str(tmp_path), "--workers", "0"]) == 2
    assert "--workers must be >= 1" in capsys.readouterr().err


def test_crackle_cool_above_gather_rows_reads_a_sample(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frame = _frame(9000, seed=6).sort_values("started")
    for part in range(3):
        frame.iloc[part * 3000 : (part + 1) * 3000].to_parquet(tmp_path / f"part-{part}.parquet")
    options = ["--label", "run", "--format", "json"]
    sampled = ["--gather-rows", "0", "--sample-rows", "900"]
    assert main(["cool", str(tmp_path), "--workers", "2", *sampled, *options]) == 0
    on_dask = json.loads(capsys.readouterr().out)
    assert main(["cool", str(tmp_path / "part-*.parquet"), *options]) == 0
    single = json.loads(capsys.readouterr().out)
    exact = ("phase transition", "correlation")

    def described(report: dict[str, Any]) -> list[str]:
        return [
            _printed(pattern["description"])
            for pattern in report["patterns"]
            if pattern["kind"] in exact
        ]

    assert described(on_dask) == described(single)
    assert len(described(single)) >= 3
    assert on_dask["task_count"] == 9000
    assert any("coordinated sample" in note for note in on_dask["notes"])
    assert main(["cool", str(tmp_path), "--workers", "1", "--sample-rows", "0"]) == 2
    assert "--sample-rows must be >= 1, got 0" in capsys.readouterr().err
    assert main(["cool", str(tmp_path), "--gather-rows", "5"]) == 2
    assert "need --scheduler or --workers" in capsys.readouterr().err
