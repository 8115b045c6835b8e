"""The NumPy backend's detectors: one module per detector (the twin of each module of the
Rust core's ``detect``), one registry line each.

Every detector module has ``NAME``, ``KIND`` (the ``PatternKind`` value of its patterns),
``FIELDS`` (its result fields, in order), ``PARAMS`` (its parameters and their defaults)
and ``run(columns, params, budget)`` returning a dict of NumPy arrays named by ``FIELDS``.
:func:`run_detector` runs one by name, exactly as the native ``run_detector`` does.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import ModuleType
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from crackle_runtime._args import Params
from crackle_runtime._numpy.detect import (
    clustering,
    conservation,
    conservation_laws,
    correlation,
    dependence,
    distribution_shift,
    information_flow,
    outlier,
    phase_transition,
    roles,
)
from crackle_runtime._numpy.detect.shared import seasonal
from crackle_runtime._numpy.detect.shared.columns import as_columns, select_rows
from crackle_runtime._numpy.detect.shared.permutation import PERMUTATION_SEED
from crackle_runtime._numpy.detect.shared.prewhiten import prewhiten_columns

__all__ = [
    "DETECTORS",
    "PERMUTATION_SEED",
    "REGISTRY",
    "ROLE_FIELDS",
    "column_roles",
    "forget_law_fits",
    "phase_groups",
    "prewhiten",
    "run_detector",
]

# Every detector, in the order of the pattern kinds (SPEC §6).
REGISTRY: tuple[ModuleType, ...] = (
    clustering,
    phase_transition,
    conservation,
    conservation_laws,
    correlation,
    outlier,
    distribution_shift,
    dependence,
    information_flow,
)

_DEADLINE = {"deadline": float("inf")}
_BY_NAME = {module.NAME: module for module in REGISTRY}

DETECTORS: dict[str, dict[str, Any]] = {
    module.NAME: {
        "kind": module.KIND,
        "fields": tuple(module.FIELDS),
        "params": {**module.PARAMS, **_DEADLINE},
    }
    for module in REGISTRY
}
"""``{name: {"kind", "fields", "params"}}``, as the native module's ``DETECTORS``."""

ROLE_FIELDS = list(roles.FIELDS)


def _rows(columns: ArrayLike, metrics: ArrayLike | None) -> Any:
    """The rows to read (checked for infinities by the detector itself, as natively)."""
    array = np.asarray(columns, dtype=np.float64)
    if array.ndim != 2:
        return as_columns(array)  # the error naming ``columns``
    return array if metrics is None else select_rows(array, metrics)


def _check_complete(rows: Any, complete: ArrayLike | None) -> None:
    """``complete`` holds one flag per row (the native kernels skip the gap scan of the
    flagged rows; NumPy's scans are whole-array operations, so the flags change nothing
    here but are checked the same way)."""
    if complete is None:
        return
    flags = np.asarray(complete, dtype=np.bool_).reshape(-1)
    count = np.asarray(rows).shape[0] if np.ndim(rows) == 2 else len(rows)
    if flags.size != count:
        raise ValueError(
            f"complete must hold one flag per selected row ({flags.size} flags, {count} rows)"
        )


def run_detector(
    name: str,
    columns: ArrayLike,
    metrics: ArrayLike | None = None,
    params: Mapping[str, Any] | None = None,
    complete: ArrayLike | None = None,
) -> dict[str, Any]:
    """Run the registered detector ``name`` over the rows ``metrics`` (all when None) of
    ``columns`` (metrics x tasks, NaN = absent) with ``params`` over its defaults; returns
    its named fields. ``complete``: one flag per selected row, the rows known to hold every
    value (see :func:`_check_complete`)."""
    rows = _rows(columns, metrics)
    module = _BY_NAME.get(name)
    if module is None:
        raise ValueError(f"name: no detector {name!r} (known: {', '.join(_BY_NAME)})")
    resolved = Params(params).resolve(name, {**module.PARAMS, **_DEADLINE})
    _check_complete(rows, complete)
    budget = resolved.deadline("deadline")
    budget.check(name)
    # Values near the float64 range overflow in sums and differences exactly as they do in
    # the native kernels, which the detectors then treat as untestable; NumPy's warnings
    # about it carry no information for the caller.
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        result: dict[str, Any] = module.run(rows, resolved, budget)
    return result


def phase_groups(columns: ArrayLike, periods: ArrayLike, start: int = 0) -> NDArray[np.int64]:
    """Per row of ``columns`` (metrics x tasks, NaN when absent): the number of phase groups
    its spread repeats the cycle of ``periods[row]`` tasks in (0: none), the first task at
    phase ``start`` (``shared.seasonal.phase_groups``)."""
    rows = _rows(columns, None)
    cycles = np.asarray(periods, dtype=np.int64).reshape(-1)
    if cycles.size != rows.shape[0]:
        raise ValueError(f"periods: {cycles.size} periods for {rows.shape[0]} rows of columns")
    if np.any(cycles < 0):
        raise ValueError("periods: a period is at least 0")
    if start < 0:
        raise ValueError("start: at least 0")
    found = [
        seasonal.phase_groups(row, int(period), start)
        for row, period in zip(rows, cycles, strict=True)
    ]
    return np.array(found, dtype=np.int64)


def forget_law_fits() -> None:
    """Forget the conservation-law fits kept for the latest samples: the next run fits every
    subset again."""
    conservation_laws.forget_fits()


def column_roles(
    columns: ArrayLike, metrics: ArrayLike | None = None, complete: ArrayLike | None = None
) -> dict[str, Any]:
    """The roles of the rows ``metrics`` (all when None) of ``columns``; ``complete`` as for
    :func:`run_detector`."""
    rows = _rows(columns, metrics)
    _check_complete(rows, complete)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        return roles.column_roles(rows)


def prewhiten(columns: ArrayLike, metrics: ArrayLike | None = None) -> NDArray[np.float64]:
    """The AR residuals of the rows ``metrics`` (all when None) of ``columns``, one row each
    over the same tasks (``shared.prewhiten.prewhiten_columns``)."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        return prewhiten_columns(np.asarray(_rows(columns, metrics), dtype=np.float64))
