"""Shared fixtures: every test runs on both backends, and differential tests get both kernel
modules.

The native case is skipped when the extension is missing, unless ``CRACKLE_REQUIRE_NATIVE=1``
(set by ``make test`` / CI): then it fails, so a broken build cannot pass by testing only the
NumPy fallback.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

import crackle_runtime
from crackle_runtime import _backend

# deadline=None: timings on a shared CI machine are noise, and the first call of a kernel
# pays for imports. The autouse `backend` fixture only selects a module, so sharing it
# across the examples of one test is safe.
# derandomize: `make test` runs the same examples every time, so a run that passed passes
# again on a clean clone (the thorough and fuzz profiles keep drawing new ones).
settings.register_profile(
    "crackle",
    deadline=None,
    max_examples=100,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
settings.register_profile(
    "thorough",
    parent=settings.get_profile("crackle"),
    max_examples=2000,
    derandomize=False,
)
# make fuzz: many more examples for the fuzz tests (tests/test_fuzz.py)
settings.register_profile(
    "fuzz",
    parent=settings.get_profile("crackle"),
    max_examples=5_000,
    derandomize=False,
    suppress_health_check=list(HealthCheck),
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "crackle"))


def _native_required() -> bool:
    return os.environ.get("CRACKLE_REQUIRE_NATIVE", "") == "1"


def _native_or_skip() -> ModuleType:
    """The native module; skip without it, or fail when the native backend is required."""
    try:
        return _backend.native_module()
    except ImportError as exc:
        if _native_required():
            pytest.fail(
                f"CRACKLE_REQUIRE_NATIVE=1 but the native extension did not load: {exc}",
                pytrace=False,
            )
        pytest.skip(f"native extension not built: {exc}")


@pytest.fixture(autouse=True, params=["python", "native"])
def backend(request: pytest.FixtureRequest) -> Iterator[str]:
    """Run the test with the public API on the given backend, then restore the previous one."""
    name: str = request.param
    if name == "native":
        _native_or_skip()
    previous = _backend.name
    _backend.use(name)
    assert crackle_runtime.backend == name
    try:
        yield name
    finally:
        _backend.use(previous)


@pytest.fixture(scope="session")
def native() -> ModuleType:
    """The native kernel module (skipped, or failed under CRACKLE_REQUIRE_NATIVE=1, when the
    extension is missing)."""
    return _native_or_skip()


@pytest.fixture(scope="session")
def numpy_backend() -> ModuleType:
    """The NumPy backend's kernel module."""
    return _backend.numpy_module()


@pytest.fixture
def wide_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CSV of 3 rows x 20,000 numeric columns (c0 … c19999)."""
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("wide") / "wide.csv"
    header = ",".join(f"c{i}" for i in range(20_000))
    body = "\n".join(",".join(f"{v:.3f}" for v in row) for row in rng.normal(size=(3, 20_000)))
    path.write_text(header + "\n" + body + "\n")
    return path
