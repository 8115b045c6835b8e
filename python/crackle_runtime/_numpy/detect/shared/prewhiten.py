"""Autoregressive prewhitening (Box & Jenkins 1970; Haugh 1976), the twin of the Rust core's
``detect::shared::prewhiten``: a series is replaced by the innovations of its own AR(p)
model, Yule–Walker by the Levinson–Durbin recursion with the order chosen by Akaike's
criterion (at most min(12, n // 5)), so that autocorrelation, drift, a trend, a step or a
regular cycle leave (nearly) white residuals. The first values use the recursion's lower
orders, so no value is lost. Same operations in the same order as the Rust code."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from crackle_runtime._numpy._stats import sequential_sum

__all__ = [
    "MAX_AR_ORDER",
    "MIN_PREWHITEN_VALUES",
    "VALUES_PER_AR_ORDER",
    "ar_residuals",
    "ar_residuals_both_ways",
    "fit_ar",
    "max_ar_order",
    "power_of_two_below",
    "prewhiten_columns",
    "prewhiten_columns_both_ways",
]

Float64Array = NDArray[np.float64]

MAX_AR_ORDER = 12
VALUES_PER_AR_ORDER = 5
MIN_PREWHITEN_VALUES = 3  # fewer present values: the column is not prewhitened (all NaN)


def max_ar_order(n: int) -> int:
    """The largest AR order fitted to ``n`` values: min(12, n // 5)."""
    return min(MAX_AR_ORDER, n // VALUES_PER_AR_ORDER)


def fit_ar(centered: Float64Array) -> list[list[float]]:
    """``coefficients[q]`` = φ_{q,1..q} for q = 0..p of the Yule–Walker model of the
    centered values chosen by AIC ``n ln v_k + 2k`` (first minimum); the recursion stops
    before an order with |a_k| >= 1 or v_k <= 0."""
    n = centered.size
    limit = min(max_ar_order(n), n - 1)
    orders: list[list[float]] = [[]]
    if n == 0:
        return orders
    g = [sequential_sum(centered[: n - lag] * centered[lag:]) / n for lag in range(limit + 1)]
    g0 = g[0]
    if not (g0 > 0.0 and math.isfinite(g0)):
        return orders
    variance = g0
    best, best_aic = 0, n * math.log(variance)
    for k in range(1, limit + 1):
        previous = orders[k - 1]
        numerator = g[k]
        for j in range(1, k):
            numerator -= previous[j - 1] * g[k - j]
        reflection = numerator / variance
        if not abs(reflection) < 1.0:
            break
        next_variance = variance * (1.0 - reflection * reflection)
        if not next_variance > 0.0:
            break
        current = [previous[j - 1] - reflection * previous[k - j - 1] for j in range(1, k)]
        current.append(reflection)
        variance = next_variance
        orders.append(current)
        aic = n * math.log(variance) + 2.0 * k
        if aic < best_aic:
            best, best_aic = k, aic
    return orders[: best + 1]


def power_of_two_below(largest: float) -> float:
    """The power of two at or below ``largest`` (finite, > 0); 1 for a subnormal one."""
    if largest < np.finfo(np.float64).tiny:
        return 1.0
    return math.ldexp(1.0, math.frexp(largest)[1] - 1)


def ar_residuals(values: Float64Array) -> Float64Array:
    """The AR(p) residuals of ``values`` (finite, in order), in their units: values divided
    by s, the power of two at or below max |v| (exact), centered, ``e_t = c_t - sum_{j<=q}
    φ_{q,j} c_{t-j}`` with q = min(t, p), times s; zeros for a constant series."""
    return ar_residuals_both_ways(values, backward=False)[0]


def ar_residuals_both_ways(
    values: Float64Array, backward: bool = True
) -> tuple[Float64Array, Float64Array]:
    """(forward, backward) residuals: :func:`ar_residuals`, and when ``backward`` the same
    model read backward in time, ``b_t = c_t - sum_{j<=q} φ_{q,j} c_{t+j}`` with
    q = min(n - 1 - t, p), times s (a stationary AR model has the same Yule–Walker
    coefficients in both directions); an empty array when not ``backward``."""
    values = np.asarray(values, dtype=np.float64)
    n = values.size
    largest = float(np.max(np.abs(values))) if n else 0.0
    if not (largest > 0.0 and math.isfinite(largest)):
        return np.zeros(n), np.zeros(n if backward else 0)
    scale = power_of_two_below(largest)
    scaled = values / scale
    centered = scaled - sequential_sum(scaled) / n
    coefficients = fit_ar(centered)
    p = len(coefficients) - 1
    forward = centered.copy()
    for t in range(min(p, n)):  # the first values: the lower orders
        for j, phi in enumerate(coefficients[t]):
            forward[t] -= phi * centered[t - 1 - j]
    for j, phi in enumerate(coefficients[p]):
        forward[p:] -= phi * centered[p - 1 - j : n - 1 - j]
    forward *= scale
    if not backward:
        return forward, np.zeros(0)
    reading_back = centered.copy()
    for t in range(min(p, n)):  # the last values: the lower orders
        for j, phi in enumerate(coefficients[t]):
            reading_back[n - 1 - t] -= phi * centered[n - t + j]
    for j, phi in enumerate(coefficients[p]):
        reading_back[: n - p] -= phi * centered[1 + j : n - p + 1 + j]
    reading_back *= scale
    return forward, reading_back


def prewhiten_columns(columns: Float64Array) -> Float64Array:
    """Per row of ``columns`` (metrics, tasks): the AR residuals of its present values at
    their tasks, NaN at the absent ones; all NaN with fewer than 3 present values."""
    return _prewhiten(columns, backward=False)[0]


def prewhiten_columns_both_ways(columns: Float64Array) -> tuple[Float64Array, Float64Array]:
    """(forward, backward): :func:`prewhiten_columns` and, at the same tasks, the backward
    residuals of :func:`ar_residuals_both_ways`."""
    return _prewhiten(columns, backward=True)


def _prewhiten(columns: Float64Array, backward: bool) -> tuple[Float64Array, Float64Array]:
    forward = np.full(columns.shape, np.nan)
    reading_back = np.full(columns.shape if backward else (0, 0), np.nan)
    for k in range(columns.shape[0]):
        column = columns[k]
        tasks = np.flatnonzero(~np.isnan(column))
        if tasks.size >= MIN_PREWHITEN_VALUES:
            forward[k, tasks], back = ar_residuals_both_ways(column[tasks], backward)
            if backward:
                reading_back[k, tasks] = back
    return forward, reading_back
