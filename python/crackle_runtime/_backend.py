"""Choose the kernel backend once at import: the native extension or the NumPy fallback.

``CRACKLE_BACKEND=auto`` (default) uses the extension when it imports, else NumPy;
``native`` requires the extension; ``python`` forces the NumPy backend. Both backends expose
the same kernel names with the same results; the public API calls kernels through
:func:`kernels`, so tests can switch backends with :func:`use`.
"""

from __future__ import annotations

import os
from types import ModuleType
from typing import Any, Literal

BackendName = Literal["native", "python"]

_native: ModuleType | None
_native_error: ImportError | None
try:
    from crackle_runtime import _native as _native_module

    _native, _native_error = _native_module, None
except ImportError as exc:  # the extension was not built
    _native, _native_error = None, exc

from crackle_runtime import _numpy as _numpy_backend  # noqa: E402

_current: ModuleType
name: BackendName


def native_module() -> ModuleType:
    """The native extension module; ImportError with a build hint when it is missing."""
    if _native is None:
        raise ImportError(
            "crackle_runtime's native extension is not available "
            f"({_native_error}); build it with `make build` (maturin develop --release) "
            "or set CRACKLE_BACKEND=python to use the NumPy backend"
        ) from _native_error
    return _native


def numpy_module() -> ModuleType:
    return _numpy_backend


def use(backend: str) -> None:
    """Switch the backend used by the public API: "native", "python" or "auto"."""
    global _current, name
    choice = backend.strip().lower()
    if choice == "auto":
        choice = "native" if _native is not None else "python"
    if choice == "native":
        _current, name = native_module(), "native"
    elif choice == "python":
        _current, name = _numpy_backend, "python"
    else:
        raise ValueError(f"CRACKLE_BACKEND must be auto, native or python, got {backend!r}")


def kernels() -> Any:
    """The module whose functions implement the kernels for the current backend."""
    return _current


def build_profile() -> str:
    if _native is None:
        return "none"
    return str(getattr(_native, "build_profile", "unknown"))


use(os.environ.get("CRACKLE_BACKEND", "auto"))
