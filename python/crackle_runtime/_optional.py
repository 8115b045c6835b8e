"""Optional dependencies, imported when a feature that needs them is used."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["pyarrow", "pyplot", "require_utf8"]


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


def require_utf8(what: str, texts: Iterable[str]) -> None:
    """Arrow strings are UTF-8: raise ValueError naming the first text that cannot be
    encoded (a lone surrogate)."""
    for text in texts:
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValueError(
                f"{what}: {text!r} is not valid Unicode for Arrow ({exc.reason})"
            ) from None
