"""Differential tests: the native and NumPy information kernels agree on random input.

Hypothesis feeds both kernel modules directly (1-D contiguous float64 arrays and Python ints,
as the public layer passes them) and requires results equal to 1e-12 (relative and absolute,
``inf`` equal to ``inf``) and, for bad input, the same exception class. Skipped when the
extension is missing, failed instead under ``CRACKLE_REQUIRE_NATIVE=1``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]

MAX_LENGTH = 300
# Past the dense count tables, past int64 products of bins (bins**2, bins**3), and powers of
# two whose cubes wrap to 0 in 128-bit arithmetic.
HUGE_BINS = [1025, 2**20, 2**22, 2**31 + 1, 2**40, 2**43, 2**50, 2**61, 2**62, 2**63 - 1]


@pytest.fixture(scope="module")
def backend() -> Iterator[None]:
    """Overrides the autouse fixture of conftest.py: these tests call both kernel modules
    directly, so running them once per public backend would only repeat them."""
    yield None


# --- strategies -----------------------------------------------------------------------------

finite_floats = st.floats(allow_nan=False, allow_infinity=False)


@st.composite
def series(draw: st.DrawFn, length: int | None = None) -> FloatArray:
    """A finite float64 series of the given (or a random) length, drawn from shapes that
    stress binning: any finite float (huge ranges that overflow ``max - min``, subnormals),
    few distinct values (ties), constants, tiny spreads around a huge offset, and tiny
    magnitudes."""
    size = draw(st.integers(0, MAX_LENGTH)) if length is None else length
    kind = draw(st.sampled_from(["any", "ties", "constant", "offset", "tiny", "unit"]))
    if kind == "any":
        elements: st.SearchStrategy[float] = finite_floats
    elif kind == "ties":
        pool = draw(st.lists(finite_floats, min_size=1, max_size=5))
        elements = st.sampled_from(pool)
    elif kind == "constant":
        elements = st.just(draw(finite_floats))
    elif kind == "offset":
        offset = draw(st.sampled_from([1e15, -1e15, 1e300, 2.0**52]))
        elements = st.integers(-50, 50).map(lambda k: offset + k * 0.125)
    elif kind == "tiny":
        elements = st.floats(-1e-300, 1e-300)
    else:
        elements = st.floats(0.0, 1.0)
    values: FloatArray = draw(hnp.arrays(np.float64, size, elements=elements))
    return np.ascontiguousarray(values)


@st.composite
def series_pair(draw: st.DrawFn) -> tuple[FloatArray, FloatArray]:
    """Two series of the same length, sometimes dependent (the second a function of the
    first, or a shifted copy)."""
    x = draw(series())
    relation = draw(st.sampled_from(["independent", "copy", "shifted", "square"]))
    if relation == "copy":
        return x, x.copy()
    if relation == "shifted" and len(x) > 0:
        return x, np.ascontiguousarray(np.roll(x, draw(st.integers(1, 5))))
    if relation == "square" and len(x) > 0 and np.all(np.abs(x) < 1e150):
        return x, np.ascontiguousarray(x * x)
    return x, draw(series(length=len(x)))


bins_values = st.one_of(
    st.integers(1, 64),
    st.integers(1, 64),
    st.integers(65, 5000),
    st.sampled_from(HUGE_BINS),
    st.integers(5001, 2**63 - 1),
)
lags = st.integers(1, 5)
orders = st.integers(2, 8)


# --- comparison -----------------------------------------------------------------------------


def assert_agree(native_result: Any, numpy_result: Any) -> None:
    assert isinstance(native_result, float)
    assert isinstance(numpy_result, float)
    np.testing.assert_allclose(native_result, numpy_result, rtol=1e-12, atol=1e-12)


def outcome(function: Callable[..., Any], *args: Any) -> tuple[str, Any]:
    try:
        return "ok", function(*args)
    except Exception as exc:  # compared across backends below
        return "raised", exc


def assert_same_outcome(
    native_kernel: Callable[..., Any], numpy_kernel: Callable[..., Any], *args: Any
) -> None:
    native_kind, native_value = outcome(native_kernel, *args)
    numpy_kind, numpy_value = outcome(numpy_kernel, *args)
    assert (native_kind, type(native_value)) == (numpy_kind, type(numpy_value)), (
        f"native: {native_value!r}, numpy: {numpy_value!r}"
    )
    if native_kind == "ok":
        assert_agree(native_value, numpy_value)
    elif isinstance(native_value, ValueError):
        # both messages start with the name of the offending argument
        assert str(native_value).split()[0] == str(numpy_value).split()[0], (
            f"native: {native_value}, numpy: {numpy_value}"
        )


# --- agreement on valid input ---------------------------------------------------------------


@given(series(), bins_values)
def test_entropy(native: ModuleType, numpy_backend: ModuleType, x: FloatArray, bins: int) -> None:
    assert_agree(native.entropy(x, bins), numpy_backend.entropy(x, bins))


@given(series_pair(), bins_values)
def test_joint_entropy(
    native: ModuleType, numpy_backend: ModuleType, pair: tuple[FloatArray, FloatArray], bins: int
) -> None:
    x, y = pair
    assert_agree(native.joint_entropy(x, y, bins), numpy_backend.joint_entropy(x, y, bins))


@given(series_pair(), bins_values)
def test_mutual_information(
    native: ModuleType, numpy_backend: ModuleType, pair: tuple[FloatArray, FloatArray], bins: int
) -> None:
    x, y = pair
    assert_agree(
        native.mutual_information(x, y, bins), numpy_backend.mutual_information(x, y, bins)
    )


@given(series(), series(), bins_values)
def test_kl_divergence(
    native: ModuleType,
    numpy_backend: ModuleType,
    current: FloatArray,
    baseline: FloatArray,
    bins: int,
) -> None:
    assert_agree(
        native.kl_divergence(current, baseline, bins),
        numpy_backend.kl_divergence(current, baseline, bins),
    )


@given(series(), series(), bins_values)
def test_kl_divergence_of_overlapping_samples(
    native: ModuleType, numpy_backend: ModuleType, current: FloatArray, extra: FloatArray, bins: int
) -> None:
    # baseline ⊇ current, so the divergence is finite and its value is compared
    baseline = np.ascontiguousarray(np.concatenate([current, extra]))
    assert_agree(
        native.kl_divergence(current, baseline, bins),
        numpy_backend.kl_divergence(current, baseline, bins),
    )


@given(series(), series(), bins_values)
def test_jsd(
    native: ModuleType, numpy_backend: ModuleType, p: FloatArray, q: FloatArray, bins: int
) -> None:
    assert_agree(native.jsd(p, q, bins), numpy_backend.jsd(p, q, bins))


@given(series_pair(), lags, bins_values)
def test_transfer_entropy(
    native: ModuleType,
    numpy_backend: ModuleType,
    pair: tuple[FloatArray, FloatArray],
    lag: int,
    bins: int,
) -> None:
    x, y = pair
    assert_agree(
        native.transfer_entropy(x, y, lag, bins), numpy_backend.transfer_entropy(x, y, lag, bins)
    )


@given(series(), orders)
def test_permutation_entropy(
    native: ModuleType, numpy_backend: ModuleType, x: FloatArray, order: int
) -> None:
    assert_agree(native.permutation_entropy(x, order), numpy_backend.permutation_entropy(x, order))


@given(series(), st.integers(9, 20))
def test_permutation_entropy_high_orders(
    native: ModuleType, numpy_backend: ModuleType, x: FloatArray, order: int
) -> None:
    assert_agree(native.permutation_entropy(x, order), numpy_backend.permutation_entropy(x, order))


# --- agreement on bad input -----------------------------------------------------------------

bad_bins = st.one_of(
    st.integers(-(2**63), 0),
    st.sampled_from([0, -1, 2**63, -(2**63) - 1, 2**64]),
)
bad_lags = st.one_of(st.integers(-(2**63), 0), st.sampled_from([0, -1, 2**63]))
bad_orders = st.one_of(
    st.integers(-(2**63), 1), st.integers(21, 2**63 - 1), st.sampled_from([0, 1, 21, 2**63])
)
non_finite = st.sampled_from([np.nan, np.inf, -np.inf])


@st.composite
def with_non_finite(draw: st.DrawFn, values: FloatArray) -> FloatArray:
    """``values`` with one to three entries replaced by NaN or ±inf (unchanged when empty)."""
    spoiled = values.copy()
    if len(spoiled) == 0:
        return spoiled
    for _ in range(draw(st.integers(1, 3))):
        spoiled[draw(st.integers(0, len(spoiled) - 1))] = draw(non_finite)
    return spoiled


@st.composite
def bad_call(draw: st.DrawFn) -> tuple[str, tuple[Any, ...]]:
    """A kernel name and arguments, usually with problems: bad parameters, mismatched
    lengths, non-finite values, often several at once (to hold the order of the checks
    equal); the valid calls it draws now and then are compared like any other."""
    name = draw(
        st.sampled_from(
            [
                "entropy",
                "joint_entropy",
                "mutual_information",
                "kl_divergence",
                "jsd",
                "transfer_entropy",
                "permutation_entropy",
            ]
        )
    )
    first = draw(series())
    paired = name in ("joint_entropy", "mutual_information", "transfer_entropy")
    second = draw(series()) if not paired or draw(st.booleans()) else draw(series(len(first)))
    if draw(st.booleans()):
        first = draw(with_non_finite(first))
    if draw(st.booleans()):
        second = draw(with_non_finite(second))
    bins = draw(st.one_of(bad_bins, bins_values))
    if name == "entropy":
        return name, (first, bins)
    if name == "permutation_entropy":
        return name, (first, draw(st.one_of(bad_orders, orders)))
    if name == "transfer_entropy":
        return name, (first, second, draw(st.one_of(bad_lags, lags)), bins)
    return name, (first, second, bins)


@given(bad_call())
def test_bad_input_raises_the_same_class(
    native: ModuleType, numpy_backend: ModuleType, call: tuple[str, tuple[Any, ...]]
) -> None:
    name, args = call
    assert_same_outcome(getattr(native, name), getattr(numpy_backend, name), *args)


@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("entropy", (np.array([1.0, np.nan]), 10)),
        ("entropy", (np.array([]), 0)),
        ("entropy", (np.array([np.inf]), 2**63)),
        ("joint_entropy", (np.array([1.0]), np.array([1.0, 2.0]), 10)),
        ("mutual_information", (np.array([np.nan]), np.array([np.inf]), 10)),
        ("kl_divergence", (np.array([]), np.array([np.nan]), 10)),
        ("kl_divergence", (np.array([np.inf]), np.array([]), 10)),
        ("jsd", (np.array([]), np.array([-np.inf]), 3)),
        ("transfer_entropy", (np.array([np.nan]), np.array([1.0]), 1, 10)),
        ("transfer_entropy", (np.array([1.0]), np.array([1.0]), 0, 0)),
        # every parameter is converted to i64 before any is range-checked
        ("transfer_entropy", (np.array([]), np.array([]), 0, 2**63)),
        ("permutation_entropy", (np.array([np.nan]), 3)),
        ("permutation_entropy", (np.array([1.0, 2.0, 3.0]), 21)),
        # kernels take 1-D float64 arrays only (the public layer converts array-likes), and
        # the arrays are converted before the parameters
        ("entropy", (np.ones((2, 2)), 3)),
        ("entropy", (np.arange(3, dtype=np.float32), 3)),
        ("entropy", ([1.0, 2.0], 3)),
        ("joint_entropy", (np.ones(3), np.ones((3, 1)), 0)),
        ("permutation_entropy", (np.arange(5), 1)),
        ("entropy", (np.array([1.0, 2.0]), 2.0)),
        # a strided (non-contiguous) view is a valid argument
        ("entropy", (np.arange(30.0)[::3], 4)),
        ("permutation_entropy", (np.sin(np.arange(40.0))[::2], 3)),
    ],
)
def test_edge_cases(
    native: ModuleType, numpy_backend: ModuleType, name: str, args: tuple[Any, ...]
) -> None:
    assert_same_outcome(getattr(native, name), getattr(numpy_backend, name), *args)
