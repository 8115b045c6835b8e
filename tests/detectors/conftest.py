"""Fixtures of the detector tests: the kernel module of the backend under test.

Every detector test takes ``kernels``: the NumPy backend's module under the ``python``
parametrisation of the autouse ``backend`` fixture (tests/conftest.py) and the native
extension under ``native``, so the same assertions hold both backends to the kernel
contract. Both expose ``run_detector(name, columns, metrics=None, params=None)``, returning
the detector's named fields.
"""

from __future__ import annotations

from types import ModuleType

import pytest

from crackle_runtime import _backend


@pytest.fixture
def kernels(backend: str) -> ModuleType:
    """The kernel module of the backend under test (the autouse ``backend`` fixture has
    selected it, or skipped / failed when the native extension is missing)."""
    module: ModuleType = _backend.kernels()
    return module


@pytest.fixture
def numpy_only(backend: str) -> None:
    """For the NumPy-side helpers (their Rust twins are tested by `cargo test`)."""
    if backend != "python":
        pytest.skip("tests a NumPy-side helper; runs under the python parametrisation only")


@pytest.fixture
def python_only(backend: str) -> None:
    """For the differential tests, which call both backends themselves: run them once."""
    if backend != "python":
        pytest.skip("differential test: runs once, under the python parametrisation")
