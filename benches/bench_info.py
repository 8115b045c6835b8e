"""P1–P3: the information functions (SPEC §7, §11).

Each function is called through the public API under each backend (``native``, then the
NumPy backend ``python``), so the timing is what a user gets; the native result must equal
the NumPy backend's (the backends are specified to compute the same numbers).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import numpy as np

import crackle_runtime as cr
from _data import coupled_pair, series
from _harness import (
    BASELINE,
    FAIL,
    PASS,
    Config,
    Group,
    Row,
    Skip,
    Target,
    backend,
    best_of,
    flag,
    native_or_skip,
    same_float,
)

BINS = 10


def _both_backends(
    group: Group, call: Callable[[], float], config: Config
) -> tuple[Row | None, Row, float]:
    """Time ``call`` under the NumPy backend and the native one (a skip row when the
    extension is missing): ``(native_row, numpy_row, reference_value)``, the reference being
    the native result when there is one. The NumPy backend gets at most 3 repeats."""
    with backend("python"):
        seconds, numpy_value = best_of(call, min(config.repeats, 3))
    numpy_row = group.add("crackle NumPy backend", seconds=seconds)
    try:
        native_or_skip()
    except Skip as exc:
        group.skip("crackle native", str(exc))
        return None, numpy_row, float(numpy_value)
    with backend("native"):
        seconds, native_value = best_of(call, config.repeats)
    agrees = same_float(native_value, numpy_value)
    native = group.add("crackle native", seconds=seconds, correct=flag(agrees))
    numpy_row.correct = flag(agrees)
    if not agrees:
        native.note = f"native {native_value!r} != NumPy backend {numpy_value!r}"
    return native, numpy_row, float(native_value)


# --- P1 ----------------------------------------------------------------------------------


def p1(config: Config) -> list[Group]:
    n = config.size(10_000_000, 100_000)
    x = series(n, seed=11)
    y = series(n, seed=12) + 0.5
    target = Target("time", 3.0, "<= 3x np.sum time")
    groups = []
    cases: list[tuple[str, Callable[[], float], tuple[np.ndarray[Any, Any], ...]]] = [
        ("entropy", lambda: cr.entropy(x, BINS), (x,)),
        ("kl_divergence", lambda: cr.kl_divergence(x, y, BINS), (x, y)),
        ("jsd", lambda: cr.jsd(x, y, BINS), (x, y)),
    ]
    for name, call, inputs in cases:
        group = Group("P1", f"{name}, {len(inputs)} x {n:,} float64, bins={BINS}")
        groups.append(group)

        def summed(inputs: tuple[np.ndarray[Any, Any], ...] = inputs) -> float:
            return float(sum(np.sum(a) for a in inputs))

        seconds, _ = best_of(summed, config.repeats)
        baseline = group.add(
            f"np.sum over {'both inputs' if len(inputs) == 2 else 'the input'}",
            seconds=seconds,
            verdict=BASELINE,
        )
        native, numpy_row, _ = _both_backends(group, call, config)
        group.compare([numpy_row], baseline)
        if native is not None:
            group.compare([native], baseline, target)
    return groups


# --- P2 ----------------------------------------------------------------------------------


def p2(config: Config) -> list[Group]:
    n = config.size(1_000_000, 20_000)
    order = 5
    x = series(n, seed=21)
    group = Group("P2", f"permutation_entropy order {order}, n = {n:,}")
    try:
        antropy = importlib.import_module("antropy")
    except ImportError:
        group.skip("antropy.perm_entropy", "antropy not installed")
        return [group]

    def peer() -> float:
        return float(antropy.perm_entropy(x, order=order, normalize=True))

    antropy.perm_entropy(x[:1000], order=order, normalize=True)  # numba/JIT warm-up, if any
    seconds, peer_value = best_of(peer, config.repeats)
    baseline = group.add("antropy.perm_entropy", seconds=seconds, verdict=BASELINE)
    native, numpy_row, value = _both_backends(
        group, lambda: cr.permutation_entropy(x, order), config
    )
    # antropy breaks ties by np.argsort (not stable); continuous data has no ties.
    agrees = same_float(value, peer_value)
    baseline.correct = flag(agrees)
    if not agrees:
        baseline.note = f"antropy {peer_value!r} != crackle {value!r}"
    group.compare([numpy_row], baseline, kind="speedup")
    if native is not None:
        group.compare([native], baseline, Target("speedup", 20.0, ">= 20x faster"))
    return [group]


# --- P3 ----------------------------------------------------------------------------------


def _pyinform_row(
    group: Group, x: np.ndarray[Any, Any], y: np.ndarray[Any, Any], config: Config
) -> Row:
    try:
        pyinform = importlib.import_module("pyinform")
    except Exception as exc:  # ImportError, or a broken native library underneath
        return group.skip("pyinform.transfer_entropy", f"not installed ({type(exc).__name__})")

    # pyinform takes integer states: bin exactly as crackle does (equal width, 10 bins).
    def binned(values: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        low, high = float(values.min()), float(values.max())
        width = (high - low) / BINS
        return np.minimum(np.floor((values - low) / width), BINS - 1).astype(np.int32)

    xs, ys = binned(x), binned(y)
    seconds, value = best_of(lambda: pyinform.transfer_entropy(xs, ys, k=1), config.repeats)
    return group.add(
        "pyinform.transfer_entropy",
        seconds=seconds,
        note=f"k=1 history on pre-binned states (binning untimed); TE = {value:.6f}",
    )


def p3(config: Config) -> list[Group]:
    n = config.size(1_000_000, 20_000)
    x, y = coupled_pair(n, seed=31)
    target = Target("speedup", 5.0, ">= 5x faster")
    groups = []
    for name, call in [
        ("mutual_information", lambda: cr.mutual_information(x, y, BINS)),
        ("transfer_entropy", lambda: cr.transfer_entropy(x, y, 1, BINS)),
    ]:
        group = Group("P3", f"{name}, n = {n:,}, bins={BINS}")
        groups.append(group)
        native, numpy_row, _ = _both_backends(group, call, config)
        numpy_row.verdict = BASELINE
        if native is not None:
            group.compare([native], numpy_row, target)
        if name == "transfer_entropy":
            peer = _pyinform_row(group, x, y, config)
            if peer.seconds is not None and native is not None and native.seconds:
                # The SPEC's second TE target: the native kernel faster than pyinform.
                peer.ratio, peer.ratio_label = peer.seconds / native.seconds, "native's time"
                peer.target = "> 1x native's time"
                peer.verdict = PASS if peer.ratio > 1.0 else FAIL
    return groups


BENCHMARKS = {"P1": p1, "P2": p2, "P3": p3}
