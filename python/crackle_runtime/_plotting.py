"""``Kiln.plot``: metrics against recording order, with what cooling found marked
(matplotlib, imported lazily)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from crackle_runtime import _optional
from crackle_runtime.patterns import CracklePattern, PatternKind

__all__ = ["plot_metrics"]


def plot_metrics(
    names: Sequence[str],
    columns: NDArray[np.float64],
    report: Sequence[CracklePattern] | None,
    metrics: Sequence[str],
    ax: Any,
) -> Any:
    """Draw ``metrics`` (default: the first 8) over task order; robust z-scores when
    several share the axis; change points dashed, outlier values circled. Returns the Axes."""
    plt = _optional.pyplot()
    unknown = [name for name in metrics if name not in names]
    if unknown:
        raise ValueError(f"metrics: no recorded metric named {', '.join(map(repr, unknown))}")
    chosen = list(metrics) if metrics else list(names[:8])
    if ax is None:
        _, ax = plt.subplots(figsize=(10, 4))
    scaled = len(chosen) > 1
    for name in chosen:
        row = columns[list(names).index(name)]
        positions = np.flatnonzero(~np.isnan(row))
        values = row[positions]
        if scaled and values.size:
            median = float(np.median(values))
            spread = 1.4826 * float(np.median(np.abs(values - median)))
            values = (values - median) / (spread if spread > 0 else 1.0)
        (line,) = ax.plot(positions, values, lw=0.8, label=name)
        for pattern in report or []:
            if pattern.details.get("metric") == name and "change_index" in pattern.metrics:
                change = positions[int(pattern.metrics["change_index"])]
                ax.axvline(change, color=line.get_color(), ls="--", lw=1.0)
            elif pattern.kind is PatternKind.OUTLIER and name in pattern.details["metrics"]:
                task = int(pattern.details["task_index"])
                at = int(np.searchsorted(positions, task))
                ax.scatter([task], [values[at]], s=60, facecolors="none", edgecolors="red")
    ax.set_xlabel("task (recording order)")
    ax.set_ylabel("robust z-score" if scaled else chosen[0] if chosen else "value")
    if chosen:
        ax.legend(loc="best", fontsize="small")
    return ax
