"""DataFrames in and out of a kiln (SPEC §10): pandas and Arrow."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from crackle_runtime import _optional
from crackle_runtime.errors import InvalidMetricError

__all__ = ["from_pandas", "to_arrow", "to_pandas"]


def from_pandas(frame: Any, label: str | None) -> tuple[NDArray[np.float64], list[str], list[str]]:
    """``(values, names, labels)`` of a DataFrame: one task per row, numeric and bool
    columns are metrics (timedeltas in seconds; complex columns are an error), labels from
    the ``label`` column or the index."""
    labels = (
        [str(v) for v in frame[label].tolist()]
        if label is not None
        else [str(v) for v in frame.index.tolist()]
    )
    numeric = frame.select_dtypes(include=["number", "bool"])
    if label is not None and label in numeric.columns:
        numeric = numeric.drop(columns=[label])
    kinds = [dtype.kind for dtype in numeric.dtypes]
    if "c" in kinds:
        name = numeric.columns[kinds.index("c")]
        raise InvalidMetricError(
            f"column {name!r} holds complex numbers; pass a real column (e.g. its .real or "
            "abs()) as the metric",
            metric=str(name),
        )
    values = numeric.to_numpy(dtype=np.float64)
    for position, kind in enumerate(kinds):
        if kind == "m":  # durations are metrics in seconds (NaT: absent)
            values[:, position] = numeric.iloc[:, position].dt.total_seconds().to_numpy()
    return values, [str(c) for c in numeric.columns], labels


def to_pandas(labels: Sequence[str], names: Sequence[str], columns: NDArray[np.float64]) -> Any:
    """One row per task (index = labels), one column per metric, NaN where absent."""
    try:
        import pandas as pd
    except ImportError as exc:
        raise ImportError("to_pandas() needs pandas: pip install pandas") from exc
    return pd.DataFrame(
        np.ascontiguousarray(columns.T),
        index=pd.Index(list(labels), name="label"),
        columns=list(names),
    )


def to_arrow(labels: Sequence[str], names: Sequence[str], columns: NDArray[np.float64]) -> Any:
    """A ``pyarrow.Table``: a ``label`` column (``task_label``, ``task_label_2``, … when a
    metric already has that name) and one float64 column per metric, null where absent."""
    pa = _optional.pyarrow()
    label_name = "label"
    suffix = 1
    while label_name in names:
        label_name = "task_label" if suffix == 1 else f"task_label_{suffix}"
        suffix += 1
    _optional.require_utf8("metric names", names)
    _optional.require_utf8("labels", labels)
    arrays = [pa.array(list(labels), type=pa.string())]
    arrays += [pa.array(row, type=pa.float64(), mask=np.isnan(row)) for row in columns]
    return pa.Table.from_arrays(arrays, names=[label_name, *names])
