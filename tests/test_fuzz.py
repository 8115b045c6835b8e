"""Fuzzing the native kernels (SPEC §8: a Rust panic reaching Python is a bug).

Hypothesis feeds every kernel of ``crackle_runtime._native`` — the information functions,
``column_roles`` and every registered detector through ``run_detector`` — arrays with NaN,
infinities, subnormal and near-maximal values, ties and empty inputs, and parameters of
every type (valid, out of range, huge, negative, the wrong type). Each call must either
return or raise ``TypeError`` / ``ValueError`` / ``OverflowError`` (the documented
classes); a ``pyo3_runtime.PanicException`` (a BaseException) or any other error fails.
The NumPy backend must take the same decision: both succeed, or both raise the same class.

``make test`` runs a brief pass (the ``crackle`` Hypothesis profile); ``make fuzz`` runs the
``fuzz`` profile (many more examples per kernel).
"""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

ALLOWED = (TypeError, ValueError, OverflowError)


@pytest.fixture
def once(backend: str) -> None:
    """These tests call both backends themselves: run them under one parametrisation."""
    if backend != "python":
        pytest.skip("differential fuzzing: runs once, under the python parametrisation")


nasty_floats = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 5e-324, -5e-324, 1e-310, 1e308, -1e308, 1.7976931348623157e308]),
    st.integers(-3, 3).map(float),
)


def series(max_size: int = 40) -> st.SearchStrategy[np.ndarray]:
    return hnp.arrays(np.float64, st.integers(0, max_size), elements=nasty_floats)


nasty_params = st.one_of(
    st.integers(-(2**70), 2**70),
    st.integers(-3, 300),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.text(max_size=3),
)


def _outcome(call: Any) -> tuple[str, Any]:
    """("ok", result) or ("error", class name); anything else than the allowed errors
    (a Rust panic above all) fails the test."""
    try:
        return "ok", call()
    except ALLOWED as exc:
        return "error", type(exc).__name__
    except BaseException as exc:  # PanicException derives from BaseException
        pytest.fail(f"{type(exc).__module__}.{type(exc).__name__} escaped: {exc!r}")


def _both(native: ModuleType, numpy_backend: ModuleType, name: str, *args: Any) -> None:
    got = _outcome(lambda: getattr(native, name)(*args))
    expected = _outcome(lambda: getattr(numpy_backend, name)(*args))
    assert got[0] == expected[0], (name, got, expected)
    if got[0] == "error":
        assert got[1] == expected[1], (name, got, expected)
    elif isinstance(got[1], float):
        same = got[1] == expected[1] or (math.isnan(got[1]) and math.isnan(expected[1]))
        assert same or math.isclose(got[1], expected[1], rel_tol=1e-9, abs_tol=1e-12), (
            name,
            got,
            expected,
        )


ONE_SERIES = ("entropy", "permutation_entropy")
TWO_SERIES = ("joint_entropy", "mutual_information", "kl_divergence", "jsd")


@pytest.mark.usefixtures("once")
@settings(suppress_health_check=list(HealthCheck))
@given(
    name=st.sampled_from(ONE_SERIES + TWO_SERIES + ("transfer_entropy",)),
    x=series(),
    y=series(),
    first=nasty_params,
    second=nasty_params,
)
def test_information_kernels_never_panic_and_agree(
    native: ModuleType,
    numpy_backend: ModuleType,
    name: str,
    x: np.ndarray,
    y: np.ndarray,
    first: Any,
    second: Any,
) -> None:
    if name in ONE_SERIES:
        _both(native, numpy_backend, name, x, first)
    elif name in TWO_SERIES:
        _both(native, numpy_backend, name, x, y, first)
    else:
        _both(native, numpy_backend, name, x, y, first, second)


@pytest.mark.usefixtures("once")
@settings(suppress_health_check=list(HealthCheck))
@given(
    data=st.data(),
    columns=hnp.arrays(
        np.float64,
        st.tuples(st.integers(0, 5), st.integers(0, 30)),
        elements=nasty_floats,
    ),
)
def test_detectors_never_panic_and_decide_alike(
    native: ModuleType, numpy_backend: ModuleType, data: st.DataObject, columns: np.ndarray
) -> None:
    name = data.draw(st.sampled_from(sorted(native.DETECTORS)))
    spec = native.DETECTORS[name]["params"]
    # each parameter: its default, or a nasty value
    params = {
        key: data.draw(st.one_of(st.just(default), nasty_params), label=key)
        for key, default in spec.items()
        if key != "deadline"
    }
    got = _outcome(lambda: native.run_detector(name, columns, None, params))
    expected = _outcome(lambda: numpy_backend.run_detector(name, columns, None, params))
    assert got[0] == expected[0], (name, params, got, expected)
    if got[0] == "error":
        assert got[1] == expected[1], (name, params, got, expected)
    else:
        assert list(got[1]) == list(expected[1]) == list(spec and native.DETECTORS[name]["fields"])


@pytest.mark.usefixtures("once")
@settings(suppress_health_check=list(HealthCheck))
@given(
    columns=hnp.arrays(
        np.float64, st.tuples(st.integers(0, 4), st.integers(0, 40)), elements=nasty_floats
    )
)
def test_column_roles_never_panic_and_agree(
    native: ModuleType, numpy_backend: ModuleType, columns: np.ndarray
) -> None:
    got = _outcome(lambda: native.column_roles(columns))
    expected = _outcome(lambda: numpy_backend.column_roles(columns))
    assert got[0] == expected[0]
    if got[0] == "ok":
        for field in native.ROLE_FIELDS:
            np.testing.assert_array_equal(got[1][field], expected[1][field])
