"""The package as a type checker sees it (SPEC §13): a misspelt attribute fails
``mypy --strict``; ``crackle_runtime.backend`` is a ``str`` and still follows the backend."""

from __future__ import annotations

from pathlib import Path

import pytest

import crackle_runtime
from crackle_runtime import _backend

SNIPPET = """\
import crackle_runtime as cr
from crackle_runtime import backend

name: str = cr.backend
also: str = backend
kiln: cr.Kiln = cr.Kiln()
typo = cr.Klin()
"""


@pytest.fixture(autouse=True)
def backend() -> str:
    """Type checking does not depend on the kernel backend: run once."""
    return "any"


def test_a_typo_fails_mypy_strict_and_backend_is_a_str(tmp_path: Path) -> None:
    api = pytest.importorskip("mypy.api")
    script = tmp_path / "snippet.py"
    script.write_text(SNIPPET)
    out, err, status = api.run(
        ["--strict", "--cache-dir", str(tmp_path / "cache"), "--no-error-summary", str(script)]
    )
    assert status == 1, err
    assert out.splitlines() == [
        f'{script}:7: error: Module has no attribute "Klin"  [attr-defined]'
    ]


def test_backend_follows_the_backend_in_use() -> None:
    previous = _backend.name
    try:
        for name in ("python", previous):
            _backend.use(name)
            assert crackle_runtime.backend == name
    finally:
        _backend.use(previous)
    assert "backend" in dir(crackle_runtime)
    with pytest.raises(AttributeError, match="has no attribute 'Klin'"):
        crackle_runtime.Klin  # type: ignore[attr-defined]  # noqa: B018
