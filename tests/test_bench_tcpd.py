"""The real-annotated-series benchmark's measures (benches/tcpd.py): F1 with a margin and
covering as van den Burg & Williams (2020) define them, by hand, and one run over a
directory laid out like the dataset."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benches"))

import tcpd


def test_f1_by_hand() -> None:
    # Two annotators: {0, 50} and {0, 52, 80}; predictions {0, 51, 90}.
    # Precision: the union {0, 50, 52, 80} matches 0 and 50 (51 is taken by 50, the closer
    # first in ascending order; 52 finds no prediction left; 90 is 10 from 80): 2 / 3.
    # Recall: annotator 1 matches 0 and 50 (2/2), annotator 2 matches 0 and 52 (2/3): 5/6.
    # F1 = 2 P R / (P + R) = 2 (2/3)(5/6) / (2/3 + 5/6) = 20/27.
    annotations = {"1": [50], "2": [52, 80]}
    assert tcpd.f1_score(annotations, [51, 90]) == pytest.approx(20 / 27)
    # No annotation and no prediction: only the point 0, a perfect score.
    assert tcpd.f1_score({"1": [], "2": []}, []) == 1.0


def test_covering_by_hand() -> None:
    # n = 10, one annotator with a change at 5: segments [0, 5) and [5, 10). Predicted
    # change at 4: [0, 4) and [4, 10). Best overlaps: [0, 5) with [0, 4): 4/5; [5, 10) with
    # [4, 10): 5/6. Covering = (5 · 4/5 + 5 · 5/6) / 10 = (4 + 25/6) / 10.
    assert tcpd.covering({"1": [5]}, [4], 10) == pytest.approx((4 + 25 / 6) / 10)
    assert tcpd.covering({"1": [5]}, [5], 10) == 1.0


def test_a_run_over_a_dataset_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(0)
    step = np.r_[rng.normal(0, 1, 100), rng.normal(4, 1, 100)]
    flat = rng.normal(0, 1, 150)
    for name, values in (("step", step), ("flat", flat)):
        folder = tmp_path / "datasets" / name
        folder.mkdir(parents=True)
        series = {"series": [{"label": "V1", "type": "float", "raw": values.tolist()}]}
        (folder / f"{name}.json").write_text(json.dumps(series))
    annotations = {"step": {"1": [100], "2": [101]}, "flat": {"1": [], "2": []}}
    (tmp_path / "annotations.json").write_text(json.dumps(annotations))
    assert tcpd.main(["--root", str(tmp_path)]) == 0
    table = capsys.readouterr().out
    step_row = next(line for line in table.splitlines() if line.startswith("| step |"))
    assert step_row.split(" | ")[3] == "1.000"  # the change at 100 is found: F1 1
    assert "| mean of 2 |" in table
    assert tcpd.main(["--root", str(tmp_path / "missing"), "--only", "x"]) == 1
