"""The kiln's analyses (SPEC §4): information and correlation matrices between metrics,
half-to-half divergences and permutation entropies, over the detection matrix.

Every function takes the metric names (first-seen order) and the ``(metrics, tasks)``
float64 matrix (NaN = absent); each metric is read over the tasks that have it, in
recording order, and each pair over the tasks having both.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from crackle_runtime import _backend, info
from crackle_runtime._entries import MetricMatrix

__all__ = [
    "correlation_matrix",
    "distribution_shift",
    "jsd_shift",
    "mi_matrix",
    "permutation_entropies",
    "rank",
    "transfer_entropy_matrix",
]

Columns = NDArray[np.float64]


def _series(names: Sequence[str], columns: Columns) -> list[tuple[str, NDArray[np.float64]]]:
    return [
        (name, np.ascontiguousarray(column[~np.isnan(column)]))
        for name, column in zip(names, columns, strict=True)
    ]


def _pairwise(
    names: Sequence[str],
    columns: Columns,
    kernel: Callable[[NDArray[np.float64], NDArray[np.float64]], float],
    diagonal: Callable[[NDArray[np.float64]], float] | None,
) -> MetricMatrix:
    m = len(names)
    values = np.zeros((m, m))
    present = ~np.isnan(columns)
    for i, j in itertools.product(range(m), repeat=2):
        if i == j and diagonal is not None:
            values[i, i] = diagonal(columns[i][present[i]])
            continue
        both = present[i] & present[j]
        values[i, j] = kernel(
            np.ascontiguousarray(columns[i][both]), np.ascontiguousarray(columns[j][both])
        )
    return MetricMatrix(list(names), values)


def mi_matrix(names: Sequence[str], columns: Columns, bins: int) -> MetricMatrix:
    """Mutual information between metrics (bits); entropy on the diagonal."""
    bins = info.integer_argument(bins, "bins")
    kernels = _backend.kernels()
    return _pairwise(
        names,
        columns,
        lambda x, y: kernels.mutual_information(x, y, bins),
        lambda x: kernels.entropy(x, bins),
    )


def transfer_entropy_matrix(
    names: Sequence[str], columns: Columns, lag: int, bins: int
) -> MetricMatrix:
    """``[i, j]`` = transfer entropy from metric i to metric j (bits)."""
    lag = info.integer_argument(lag, "lag")
    bins = info.integer_argument(bins, "bins")
    kernels = _backend.kernels()
    return _pairwise(names, columns, lambda x, y: kernels.transfer_entropy(x, y, lag, bins), None)


def distribution_shift(
    names: Sequence[str], columns: Columns, bins: int
) -> list[tuple[str, float]]:
    """``KL(second half ‖ first half)`` per metric, descending."""
    bins = info.integer_argument(bins, "bins")
    shifts = [
        (name, info.kl_divergence(x[len(x) // 2 :], x[: len(x) // 2], bins))
        for name, x in _series(names, columns)
    ]
    return sorted(shifts, key=lambda item: -item[1])


def jsd_shift(names: Sequence[str], columns: Columns, bins: int) -> list[tuple[str, float]]:
    """``JSD(first half, second half)`` per metric, descending."""
    bins = info.integer_argument(bins, "bins")
    shifts = [
        (name, info.jsd(x[: len(x) // 2], x[len(x) // 2 :], bins))
        for name, x in _series(names, columns)
    ]
    return sorted(shifts, key=lambda item: -item[1])


def permutation_entropies(
    names: Sequence[str], columns: Columns, order: int
) -> list[tuple[str, float]]:
    order = info.integer_argument(order, "order")
    return [(name, info.permutation_entropy(x, order)) for name, x in _series(names, columns)]


def correlation_matrix(
    names: Sequence[str], columns: Columns, method: Literal["pearson", "spearman"]
) -> MetricMatrix:
    """Pairwise Pearson (or Spearman) correlation over the tasks having both metrics."""
    if method not in ("pearson", "spearman"):
        raise ValueError(f"method must be 'pearson' or 'spearman', got {method!r}")
    m = len(names)
    values = np.eye(m)
    if m < 2:
        return MetricMatrix(list(names), values)
    if method == "pearson":
        result = _correlations(columns)
        i, j, r = result["i"], result["j"], result["r"]
        values[i, j] = r
        values[j, i] = r
        return MetricMatrix(list(names), values)
    present = ~np.isnan(columns)
    for a in range(m):
        for b in range(a + 1, m):
            both = present[a] & present[b]
            pair = np.vstack([rank(columns[a][both]), rank(columns[b][both])])
            values[a, b] = values[b, a] = float(_correlations(pair)["r"][0])
    return MetricMatrix(list(names), values)


def _correlations(columns: Columns) -> dict[str, NDArray[Any]]:
    """The correlation detector's fields (Pearson r of every pair, computed stably)."""
    result: dict[str, NDArray[Any]] = _backend.kernels().run_detector(
        "correlation", columns, None, {"threshold": 1.0}
    )
    return result


def rank(values: NDArray[np.float64]) -> NDArray[np.float64]:
    """Average ranks (ties share the mean rank), as Spearman's rho needs."""
    order = np.argsort(values, kind="stable")
    sorted_values = values[order]
    boundaries = np.flatnonzero(np.diff(sorted_values)) + 1
    starts = np.concatenate([[0], boundaries])
    ends = np.concatenate([boundaries, [len(values)]])
    average = (starts + ends - 1) / 2.0
    ranks = np.empty(len(values))
    ranks[order] = np.repeat(average, ends - starts)
    return ranks
