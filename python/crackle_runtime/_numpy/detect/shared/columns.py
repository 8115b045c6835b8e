"""Column checks and views every detector uses (the twin of ``detect::shared::columns``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["as_columns", "empty_result", "select_rows", "store"]

Float64Array = NDArray[np.float64]


def as_columns(columns: Float64Array) -> Float64Array:
    """``columns`` as a contiguous float64 (metrics, tasks) array; ValueError naming
    ``columns`` for another shape or an infinity (NaN marks an absent value)."""
    array = np.ascontiguousarray(columns, dtype=np.float64)
    if array.ndim != 2:
        raise ValueError(
            f"columns must be a 2-D array (metrics x tasks), got {array.ndim} dimension(s)"
        )
    infinite = np.isinf(array)
    if infinite.any():
        metric, task = np.argwhere(infinite)[0]
        raise ValueError(
            f"columns contains an infinite value ({array[metric, task]}) at metric {metric}, "
            f"task {task}; absent values are NaN, present ones must be finite"
        )
    return array


def select_rows(columns: Float64Array, metrics: object) -> Float64Array:
    """The rows ``metrics`` (indices, any order, repeats allowed) of ``columns``, or
    ValueError naming ``metrics`` for an index out of range."""
    rows = np.asarray(metrics, dtype=np.int64).reshape(-1)
    count = columns.shape[0]
    bad = (rows < 0) | (rows >= count)
    if bad.any():
        raise ValueError(
            f"metrics: row {int(rows[bad][0])} is out of range (columns has {count} rows)"
        )
    return np.asarray(columns[rows], dtype=np.float64)


def empty_result(
    fields: Iterable[str],
    length: int,
    ints: Iterable[str] = (),
    bools: Iterable[str] = (),
) -> dict[str, Any]:
    """A detector's result of ``length`` rows before anything is known: the ``ints`` fields
    0 (int64), the ``bools`` False, the others NaN (float64), in the order of ``fields``."""
    ints, bools = set(ints), set(bools)
    result: dict[str, Any] = {}
    for name in fields:
        if name in ints:
            result[name] = np.zeros(length, dtype=np.int64)
        elif name in bools:
            result[name] = np.zeros(length, dtype=np.bool_)
        else:
            result[name] = np.full(length, np.nan)
    return result


def store(result: dict[str, Any], row: int, values: Mapping[str, Any]) -> None:
    """Set row ``row`` of the named fields of ``result``."""
    for name, value in values.items():
        result[name][row] = value
