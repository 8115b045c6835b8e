"""Change points on real annotated series: the Turing Change Point Dataset (TCPD; van den
Burg & Williams 2020, "An Evaluation of Change Point Detection Algorithms").

    python benches/tcpd.py --root PATH      # PATH: a checkout of the TCPD repository
    python benches/tcpd.py --root PATH --only quality

The dataset is not shipped with the project: its series come with their own licences, and
the repository builds some of them by download. The series present as
``datasets/NAME/NAME.json`` under ``--root`` are read (32 of them in a plain checkout), with
the annotations of five annotators each (``annotations.json``). Each series is cooled as a
kiln of one metric per dimension with the default profile restricted to distribution shift;
the predictions are the tasks of the reported changes (a drift is not a change here).

Measures, as the paper defines them (point 0 counts as a change in every set):

- F1 with a margin of 5: precision against the union of the annotators' points (each
  annotated point matches at most one prediction), recall averaged over the annotators;
- covering: for each annotator, the segments' overlap (Jaccard) with the best predicted
  segment, weighted by length, averaged over annotators.

Reference rows: ``zero`` (no change at all, the paper's baseline) and ruptures' ``Binseg``
(``model="l2"``, BIC-type penalty ``2 d log n`` on standardised series) when installed.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from crackle_runtime import Kiln, PatternKind, ThermalProfile

MARGIN = 5


def true_positives(truth: set[int], predicted: set[int], margin: int = MARGIN) -> set[int]:
    """The points of ``truth`` matched to a prediction within ``margin`` (each prediction
    at most once, the closest first, truth in ascending order)."""
    left = set(predicted)
    matched = set()
    for point in sorted(truth):
        close = sorted((abs(point - p), p) for p in left if abs(point - p) <= margin)
        if close:
            matched.add(point)
            left.remove(close[0][1])
    return matched


def f1_score(annotations: dict[str, list[int]], predicted: list[int]) -> float:
    sets = [set(points) | {0} for points in annotations.values()]
    guesses = set(predicted) | {0}
    union = set().union(*sets)
    precision = len(true_positives(union, guesses)) / len(guesses)
    recall = float(np.mean([len(true_positives(s, guesses)) / len(s) for s in sets]))
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def _segments(points: list[int], n: int) -> list[tuple[int, int]]:
    bounds = sorted({0, n, *(p for p in points if 0 < p < n)})
    return list(itertools.pairwise(bounds))


def covering(annotations: dict[str, list[int]], predicted: list[int], n: int) -> float:
    guessed = _segments(predicted, n)

    def jaccard(a: tuple[int, int], b: tuple[int, int]) -> float:
        overlap = max(0, min(a[1], b[1]) - max(a[0], b[0]))
        return overlap / (max(a[1], b[1]) - min(a[0], b[0]))

    scores = []
    for points in annotations.values():
        truth = _segments(points, n)
        scores.append(sum((b - a) * max(jaccard((a, b), g) for g in guessed) for a, b in truth))
    return float(np.mean(scores)) / n


def load(root: Path, name: str) -> np.ndarray[Any, Any]:
    data = json.loads((root / "datasets" / name / f"{name}.json").read_text())
    rows = [[np.nan if v is None else float(v) for v in s["raw"]] for s in data["series"]]
    return np.array(rows, dtype=np.float64)


def crackle_changes(series: np.ndarray[Any, Any]) -> list[int]:
    names = [f"dim{k}" for k in range(series.shape[0])]
    kiln = Kiln(ThermalProfile.default().only(PatternKind.DISTRIBUTION_SHIFT))
    kiln.add_matrix(np.ascontiguousarray(series.T), names, [str(t) for t in range(series.shape[1])])
    found = set()
    for pattern in kiln.cool().by_kind(PatternKind.DISTRIBUTION_SHIFT):
        metric = names.index(pattern.details["metric"])
        tasks = np.flatnonzero(~np.isnan(series[metric]))
        found.add(int(tasks[int(pattern.metrics["change_index"])]))
    return sorted(found)


def binseg_changes(series: np.ndarray[Any, Any]) -> list[int] | None:
    try:
        import ruptures
    except ImportError:
        return None
    values = series.T.copy()
    values = np.where(np.isnan(values), np.nanmean(values, axis=0), values)
    values = (values - values.mean(axis=0)) / (values.std(axis=0) + 1e-12)
    n, d = values.shape
    found = (
        ruptures.Binseg(model="l2", min_size=2, jump=1).fit(values).predict(pen=2.0 * d * np.log(n))
    )
    return [int(c) for c in found if c < n]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--root", type=Path, required=True, help="a checkout of TCPD")
    parser.add_argument("--only", default="", help="series whose name contains this")
    args = parser.parse_args(argv)
    if not (args.root / "annotations.json").exists():
        print(f"no TCPD checkout at {args.root} (annotations.json missing)", file=sys.stderr)
        return 1
    annotations = json.loads((args.root / "annotations.json").read_text())
    names = sorted(
        name
        for name in annotations
        if args.only in name and (args.root / "datasets" / name / f"{name}.json").exists()
    )
    if not names:
        print(f"no TCPD series under {args.root}", file=sys.stderr)
        return 1
    print("| series | n | d | crackle F1 | cover | Binseg F1 | cover | zero F1 | cover | changes |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    totals = []
    for name in names:
        series = load(args.root, name)
        n = series.shape[1]
        truth = annotations[name]
        ours = crackle_changes(series)
        binseg = binseg_changes(series)
        row = [f1_score(truth, ours), covering(truth, ours, n)]
        row += (
            [f1_score(truth, binseg), covering(truth, binseg, n)]
            if binseg is not None
            else [
                np.nan,
                np.nan,
            ]
        )
        row += [f1_score(truth, []), covering(truth, [], n)]
        totals.append(row)
        cells = " | ".join(f"{v:.3f}" for v in row)
        print(f"| {name} | {n} | {series.shape[0]} | {cells} | {ours[:6]} |")
    mean = np.nanmean(np.array(totals), axis=0)
    print(f"| mean of {len(names)} | | | " + " | ".join(f"{v:.3f}" for v in mean) + " | |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
