"""The information-theory kernels of the NumPy backend (SPEC §7, docs/kernels.md).

Same names, arguments and results as the native kernels: 1-D float64 arrays and Python ints
in, a float out. Arguments are first converted as the native binding converts them (arrays,
then ints: TypeError, OverflowError); then checks run in a fixed order — parameters, equal
lengths, finiteness — and fail with a ``ValueError`` whose message starts with the argument
name.

Every histogram goes through :func:`bin_indices` (the one binning expression) and
:func:`_cell_counts` / :func:`_aligned_counts`, which count densely only when the number of
cells is small, so any ``bins`` up to ``2**63 - 1`` works in memory proportional to the data.
"""

from __future__ import annotations

import math
import operator

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import NDArray

__all__ = [
    "entropy",
    "joint_entropy",
    "jsd",
    "kl_divergence",
    "mutual_information",
    "permutation_entropy",
    "transfer_entropy",
]

FloatArray = NDArray[np.float64]
IndexArray = NDArray[np.int64]

_I64_MIN = -(2**63)
_I64_MAX = 2**63 - 1
_MAX_ORDER = 20  # 20! < 2**63 - 1, so every ordinal pattern has an int64 code


# --- checks ---------------------------------------------------------------------------------


def _check_series(values: FloatArray, argument: str) -> None:
    """TypeError unless ``values`` is a 1-D float64 NumPy array, as the native binding's
    argument conversion (which runs first, in argument order); the public layer converts
    array-likes before calling a kernel."""
    if not isinstance(values, np.ndarray):
        raise TypeError(f"{argument} must be a 1-D float64 array, got {type(values).__name__}")
    if values.dtype != np.float64 or values.ndim != 1:
        raise TypeError(
            f"{argument} must be a 1-D float64 array, got a {values.ndim}-D {values.dtype} array"
        )


def _i64(value: int, argument: str) -> int:
    """``value`` as a Python int that fits the native ``i64`` argument: TypeError for
    non-integers, OverflowError outside i64. The native binding converts every argument
    before its kernel runs, so kernels convert all their parameters before checking any."""
    number = operator.index(value)
    if not _I64_MIN <= number <= _I64_MAX:
        raise OverflowError(f"{argument} does not fit in a signed 64-bit integer, got {number}")
    return number


def _check_range(number: int, argument: str, low: int, high: int = _I64_MAX) -> None:
    if number < low:
        raise ValueError(f"{argument} must be >= {low}, got {number}")
    if number > high:
        raise ValueError(f"{argument} must be <= {high}, got {number}")


def _bins(value: int) -> int:
    bins = _i64(value, "bins")
    _check_range(bins, "bins", 1)
    return bins


def _check_same_length(x: FloatArray, y: FloatArray) -> None:
    if len(x) != len(y):
        raise ValueError(f"x and y must have the same length ({len(x)} != {len(y)})")


def _check_finite(values: FloatArray, argument: str) -> None:
    finite = np.isfinite(values)
    if not finite.all():
        index = int(np.argmin(finite))  # the first non-finite value
        raise ValueError(
            f"{argument} contains a non-finite value ({values[index]}) at index {index}"
        )


# --- histograms -----------------------------------------------------------------------------


def bin_indices(values: FloatArray, bins: int, low: float, high: float) -> IndexArray:
    """Equal-width bin of each value over ``[low, high]``: ``min(floor((v - low) / width),
    bins - 1)`` with ``width = (high - low) / bins``; everything in bin 0 when ``high == low``.

    The only binning expression of the backend. Degenerate widths follow the native cast
    (``f64 as i64``): NaN quotients (0/0, inf/inf) give bin 0, quotients beyond the last bin
    give ``bins - 1``.
    """
    if high == low:
        return np.zeros(len(values), dtype=np.int64)
    with np.errstate(over="ignore"):
        wide = not math.isfinite(high - low)
    if wide:
        # a range wider than the float range: bin the halved values (exact for such
        # magnitudes; equal-width bins do not change under scaling), as the native code does
        values, low, high = values * 0.5, low * 0.5, high * 0.5
    width = (high - low) / float(bins)
    # One temporary, updated in place: (values - low) / width, floored.
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        quotient = np.subtract(values, low)
        np.divide(quotient, width, out=quotient)
    np.floor(quotient, out=quotient)
    if not width > 0.0:
        # width underflowed to 0: quotients are inf or NaN (0/0); NaN goes to bin 0, as in
        # the native code
        quotient[np.isnan(quotient)] = 0.0
    last = bins - 1
    if last <= 2**53:  # exactly representable: clip in floating point, then cast
        np.minimum(quotient, float(last), out=quotient)
        return quotient.astype(np.int64)
    # Beyond 2**53 compare as integers; quotients >= 2**63 cannot be cast and are past the end.
    beyond = quotient >= 2.0**63
    quotient[beyond] = 0.0
    indices = np.minimum(quotient.astype(np.int64), last)
    indices[beyond] = last
    return indices


def _own_range_indices(values: FloatArray, bins: int) -> IndexArray:
    if len(values) == 0:
        return np.zeros(0, dtype=np.int64)
    return bin_indices(values, bins, float(values.min()), float(values.max()))


def _is_dense(cells: int, samples: int) -> bool:
    """Whether a count table of ``cells`` entries is cheap next to ``samples`` values."""
    return cells <= 4 * samples + 1024


def _dense_ranks(codes: IndexArray) -> tuple[IndexArray, int]:
    """Occupied codes renumbered 0..k-1 in increasing order, and k."""
    distinct, ranks = np.unique(codes, return_inverse=True)
    return ranks.astype(np.int64, copy=False), len(distinct)


def _cell_counts(indices: list[IndexArray], bins: int) -> IndexArray:
    """Counts of the cells of the joint histogram of the index arrays (each in [0, bins)).

    Zero counts may be present (dense table) and carry no information. Sparse data is
    counted by sorting mixed-radix int64 codes; when the radix product would overflow int64,
    the occupied cells are renumbered first (at most n of them), so codes stay below n**2.
    """
    samples = len(indices[0])
    if _is_dense(bins ** len(indices), samples):
        codes = indices[0]
        for index in indices[1:]:
            codes = codes * bins + index
        return np.bincount(codes).astype(np.int64, copy=False)
    codes, span = indices[0], bins
    for index in indices[1:]:
        radix = bins
        if span * radix > _I64_MAX:
            codes, span = _dense_ranks(codes)
            index, radix = _dense_ranks(index)
        codes = codes * radix + index
        span *= radix
    _, counts = np.unique(codes, return_counts=True)
    return counts.astype(np.int64, copy=False)


def _aligned_counts(
    first: IndexArray, second: IndexArray, bins: int
) -> tuple[IndexArray, IndexArray]:
    """Per-bin counts of two samples binned alike, cell ``k`` of both arrays being the same
    bin (only the bins occupied by either sample when ``bins`` is large)."""
    if _is_dense(bins, len(first) + len(second)):
        return (
            np.bincount(first, minlength=bins).astype(np.int64, copy=False),
            np.bincount(second, minlength=bins).astype(np.int64, copy=False),
        )
    ranks, cells = _dense_ranks(np.concatenate([first, second]))
    return (
        np.bincount(ranks[: len(first)], minlength=cells).astype(np.int64, copy=False),
        np.bincount(ranks[len(first) :], minlength=cells).astype(np.int64, copy=False),
    )


def entropy_of_counts(counts: IndexArray, total: int | IndexArray) -> FloatArray:
    """Entropy (bits) of each row of a 2-D array of counts summing to ``total`` (one total
    for every row, or one per row): ``-sum p log2 p`` with ``p = count / total`` over the
    non-empty cells, summed left to right (a cumulative sum), as the native
    ``entropy_of_counts`` does; 0 for total 0.

    The one entropy-of-counts of this backend: the information functions and the
    detectors' permutation tests (which compare statistics exactly) share it, so both
    backends give the same bits.
    """
    totals = np.asarray(total)
    if totals.ndim == 0:
        if total == 0:
            return np.zeros(counts.shape[0])
        probabilities = counts / float(total)
    else:  # a row of total 0 has no count: its entropy is 0
        probabilities = counts / np.maximum(totals, 1).astype(np.float64)[:, None]
    terms = np.zeros_like(probabilities)
    np.log2(probabilities, out=terms, where=counts > 0)
    terms *= probabilities
    # 0.0 - s rather than -s: a single occupied cell gives +0.0, not -0.0.
    return np.asarray(0.0 - np.cumsum(terms, axis=1)[:, -1], dtype=np.float64)


def _entropy_of_cells(counts: IndexArray) -> float:
    """Entropy (bits) of one histogram given by its cell counts."""
    if len(counts) == 0:
        return 0.0
    return float(entropy_of_counts(counts[None, :], int(counts.sum()))[0])


def _joint_entropy(indices: list[IndexArray], bins: int) -> float:
    return _entropy_of_cells(_cell_counts(indices, bins))


def _shared_range(first: FloatArray, second: FloatArray) -> tuple[float, float]:
    low = min(float(first.min()), float(second.min()))
    high = max(float(first.max()), float(second.max()))
    return low, high


def _relative_entropy(p: FloatArray, q: FloatArray) -> float:
    """KL(p ‖ q) in bits for probability vectors over the same cells; inf when p has mass
    where q has none."""
    support = p > 0.0
    if np.any(q[support] == 0.0):
        return math.inf
    p_support = p[support]
    return float(np.sum(p_support * np.log2(p_support / q[support])))


# --- kernels --------------------------------------------------------------------------------


def entropy(values: FloatArray, bins: int) -> float:
    """Shannon entropy (bits) of the equal-width histogram of ``values``."""
    _check_series(values, "values")
    bins = _bins(bins)
    _check_finite(values, "values")
    if len(values) == 0:
        return 0.0
    return _joint_entropy([_own_range_indices(values, bins)], bins)


def joint_entropy(x: FloatArray, y: FloatArray, bins: int) -> float:
    """Entropy (bits) of the 2-D histogram of ``(x, y)``, each binned over its own range."""
    _check_series(x, "x")
    _check_series(y, "y")
    bins = _bins(bins)
    _check_same_length(x, y)
    _check_finite(x, "x")
    _check_finite(y, "y")
    if len(x) == 0:
        return 0.0
    return _joint_entropy([_own_range_indices(x, bins), _own_range_indices(y, bins)], bins)


def mutual_information(x: FloatArray, y: FloatArray, bins: int) -> float:
    """``H(X) + H(Y) - H(X, Y)`` in bits, clipped at 0."""
    _check_series(x, "x")
    _check_series(y, "y")
    bins = _bins(bins)
    _check_same_length(x, y)
    _check_finite(x, "x")
    _check_finite(y, "y")
    if len(x) == 0:
        return 0.0
    x_bins, y_bins = _own_range_indices(x, bins), _own_range_indices(y, bins)
    information = (
        _joint_entropy([x_bins], bins)
        + _joint_entropy([y_bins], bins)
        - _joint_entropy([x_bins, y_bins], bins)
    )
    return max(information, 0.0)


def kl_divergence(current: FloatArray, baseline: FloatArray, bins: int) -> float:
    """KL(current ‖ baseline) in bits over bins shared by both samples (the range of their
    union); ``inf`` when ``current`` has mass where ``baseline`` has none."""
    _check_series(current, "current")
    _check_series(baseline, "baseline")
    bins = _bins(bins)
    _check_finite(current, "current")
    _check_finite(baseline, "baseline")
    if len(current) == 0 or len(baseline) == 0:
        return 0.0
    low, high = _shared_range(current, baseline)
    current_counts, baseline_counts = _aligned_counts(
        bin_indices(current, bins, low, high), bin_indices(baseline, bins, low, high), bins
    )
    return _relative_entropy(
        current_counts / float(len(current)), baseline_counts / float(len(baseline))
    )


def jsd(p: FloatArray, q: FloatArray, bins: int) -> float:
    """Jensen–Shannon divergence in bits over bins shared by both samples, in [0, 1]."""
    _check_series(p, "p")
    _check_series(q, "q")
    bins = _bins(bins)
    _check_finite(p, "p")
    _check_finite(q, "q")
    if len(p) == 0 or len(q) == 0:
        return 0.0
    low, high = _shared_range(p, q)
    p_counts, q_counts = _aligned_counts(
        bin_indices(p, bins, low, high), bin_indices(q, bins, low, high), bins
    )
    p_probabilities = p_counts / float(len(p))
    q_probabilities = q_counts / float(len(q))
    mixture = (p_probabilities + q_probabilities) / 2.0
    divergence = 0.5 * _relative_entropy(p_probabilities, mixture) + 0.5 * _relative_entropy(
        q_probabilities, mixture
    )
    return min(max(divergence, 0.0), 1.0)


def transfer_entropy(x: FloatArray, y: FloatArray, lag: int, bins: int) -> float:
    """Transfer entropy X → Y in bits, ``I(Y[t+lag]; X[t] | Y[t])`` over t = 0..n-1-lag:
    ``H(Y+, Y) - H(Y) - H(Y+, X, Y) + H(X, Y)``, clipped at 0; each series binned once over
    its whole range; 0.0 when ``n <= lag + 1``."""
    _check_series(x, "x")
    _check_series(y, "y")
    lag, bins = _i64(lag, "lag"), _i64(bins, "bins")
    _check_range(lag, "lag", 1)
    _check_range(bins, "bins", 1)
    _check_same_length(x, y)
    _check_finite(x, "x")
    _check_finite(y, "y")
    samples = len(x)
    if samples <= lag + 1:
        return 0.0
    x_bins, y_bins = _own_range_indices(x, bins), _own_range_indices(y, bins)
    y_future, y_past, x_past = y_bins[lag:], y_bins[: samples - lag], x_bins[: samples - lag]
    transfer = (
        _joint_entropy([y_future, y_past], bins)
        - _joint_entropy([y_past], bins)
        - _joint_entropy([y_future, x_past, y_past], bins)
        + _joint_entropy([x_past, y_past], bins)
    )
    return max(transfer, 0.0)


def permutation_entropy(values: FloatArray, order: int) -> float:
    """Normalized Bandt–Pompe permutation entropy (delay 1): Shannon entropy (bits) of the
    ordinal-pattern frequencies over ``log2(order!)``; ties broken by position (the earlier
    of two equal values ranks lower); 0.0 when ``len(values) < order``."""
    _check_series(values, "values")
    order = _i64(order, "order")
    _check_range(order, "order", 2, _MAX_ORDER)
    _check_finite(values, "values")
    if len(values) < order:
        return 0.0
    windows = sliding_window_view(values, order)
    # Lehmer code of each window: digit i counts the later values smaller than value i
    # (equal later values rank higher), weighted by (order - 1 - i)!; a bijection onto
    # [0, order!), so equal codes are equal patterns.
    codes = np.zeros(len(windows), dtype=np.int64)
    smaller_later = np.empty(len(windows), dtype=np.int64)
    for i in range(order - 1):
        smaller_later.fill(0)
        for j in range(i + 1, order):
            smaller_later += windows[:, j] < windows[:, i]
        codes += smaller_later * math.factorial(order - 1 - i)
    patterns = math.factorial(order)
    if _is_dense(patterns, len(codes)):
        counts = np.bincount(codes).astype(np.int64, copy=False)
    else:
        counts = np.unique(codes, return_counts=True)[1].astype(np.int64, copy=False)
    return _entropy_of_cells(counts) / math.log2(patterns)
