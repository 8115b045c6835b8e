"""The seven information-theory functions (SPEC §7).

Each converts its array-like inputs once (1-D float64, contiguous) and hands them to the
current backend's kernel of the same name; the kernels validate parameters first, then
values, and raise ``ValueError`` naming the argument.
"""

from __future__ import annotations

import operator

import numpy as np
from numpy.typing import ArrayLike, NDArray

from crackle_runtime import _backend

__all__ = [
    "entropy",
    "joint_entropy",
    "jsd",
    "kl_divergence",
    "mutual_information",
    "permutation_entropy",
    "transfer_entropy",
]


def as_series(values: ArrayLike, argument: str) -> NDArray[np.float64]:
    """``values`` as a contiguous 1-D float64 array; TypeError/ValueError name ``argument``."""
    if isinstance(values, np.ma.MaskedArray):
        raise TypeError(
            f"{argument} is a masked array and its mask would be ignored: pass "
            f"{argument}.compressed() (drop the masked values) or {argument}.filled(value)"
        )
    if isinstance(values, np.ndarray):
        array = values
    else:
        try:
            array = np.asarray(values)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{argument} must be a 1-D sequence of numbers: {exc}") from None
    if array.dtype.kind not in "biuf":
        if array.dtype.kind == "O":
            if any(item is None for item in array.flat):
                raise TypeError(f"{argument} must contain real numbers, got None")
            try:
                array = array.astype(np.float64)
            except OverflowError:
                raise ValueError(
                    f"{argument} holds an integer too large for a float64 (beyond ~1.8e308)"
                ) from None
            except (TypeError, ValueError):
                raise TypeError(
                    f"{argument} must contain real numbers, got values of type "
                    f"{type(array.flat[0]).__name__ if array.size else 'object'}"
                ) from None
        else:
            raise TypeError(f"{argument} must contain real numbers, got dtype {array.dtype}")
    if array.ndim != 1:
        raise ValueError(f"{argument} must be 1-D, got an array of shape {array.shape}")
    return np.ascontiguousarray(array, dtype=np.float64)


_I64_MAX = 2**63 - 1


def integer_argument(value: int, argument: str) -> int:
    """``value`` as an int the kernels take: TypeError naming ``argument`` for bools and
    non-integers, ValueError beyond the signed 64-bit range (a kernel would refuse it with
    an OverflowError that names nothing)."""
    if isinstance(value, bool | np.bool_):
        raise TypeError(f"{argument} must be an integer, got bool")
    try:
        number = operator.index(value)
    except TypeError:
        raise TypeError(f"{argument} must be an integer, got {type(value).__name__}") from None
    if not -_I64_MAX - 1 <= number <= _I64_MAX:
        raise ValueError(
            f"{argument} must be within the signed 64-bit range, got an integer of "
            f"{number.bit_length()} bits"
        )
    return number


def entropy(values: ArrayLike, bins: int = 10) -> float:
    """Shannon entropy (bits) of the equal-width histogram of ``values``."""
    bins = integer_argument(bins, "bins")
    return float(_backend.kernels().entropy(as_series(values, "values"), bins))


def joint_entropy(x: ArrayLike, y: ArrayLike, bins: int = 10) -> float:
    """Entropy (bits) of the 2-D histogram of ``(x, y)``, each binned over its own range."""
    bins = integer_argument(bins, "bins")
    return float(_backend.kernels().joint_entropy(as_series(x, "x"), as_series(y, "y"), bins))


def mutual_information(x: ArrayLike, y: ArrayLike, bins: int = 10) -> float:
    """``H(X) + H(Y) - H(X, Y)`` in bits, clipped at 0."""
    bins = integer_argument(bins, "bins")
    return float(_backend.kernels().mutual_information(as_series(x, "x"), as_series(y, "y"), bins))


def kl_divergence(current: ArrayLike, baseline: ArrayLike, bins: int = 10) -> float:
    """KL(current ‖ baseline) in bits over bins shared by both samples; ``inf`` when
    ``current`` has mass where ``baseline`` has none."""
    bins = integer_argument(bins, "bins")
    return float(
        _backend.kernels().kl_divergence(
            as_series(current, "current"), as_series(baseline, "baseline"), bins
        )
    )


def jsd(p: ArrayLike, q: ArrayLike, bins: int = 10) -> float:
    """Jensen–Shannon divergence in bits (in [0, 1]) over bins shared by both samples."""
    bins = integer_argument(bins, "bins")
    return float(_backend.kernels().jsd(as_series(p, "p"), as_series(q, "q"), bins))


def transfer_entropy(x: ArrayLike, y: ArrayLike, lag: int = 1, bins: int = 10) -> float:
    """Transfer entropy X → Y in bits: ``I(Y[t+lag]; X[t] | Y[t])``, clipped at 0."""
    lag = integer_argument(lag, "lag")
    bins = integer_argument(bins, "bins")
    return float(
        _backend.kernels().transfer_entropy(as_series(x, "x"), as_series(y, "y"), lag, bins)
    )


def permutation_entropy(values: ArrayLike, order: int = 3) -> float:
    """Normalized Bandt–Pompe permutation entropy (delay 1, ties broken by position)."""
    order = integer_argument(order, "order")
    return float(_backend.kernels().permutation_entropy(as_series(values, "values"), order))
