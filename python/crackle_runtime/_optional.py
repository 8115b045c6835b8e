"""Optional dependencies, imported when a feature that needs them is used."""

from __future__ import annotations

from typing import Any

__all__ = ["pyarrow", "pyplot"]


def pyarrow() -> Any:
    """The pyarrow module, or ImportError naming the extra that installs it."""
    try:
        import pyarrow as module
    except ImportError as exc:
        raise ImportError(
            "the Arrow stream needs pyarrow: pip install 'crackle_runtime[arrow]'"
        ) from exc
    return module


def pyplot() -> Any:
    """matplotlib.pyplot, or ImportError naming the extra that installs it."""
    try:
        import matplotlib.pyplot as module
    except ImportError as exc:
        raise ImportError("plot() needs matplotlib: pip install 'crackle_runtime[plot]'") from exc
    return module
