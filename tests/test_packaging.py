"""Packaging (SPEC §13): the LICENSE file agrees with pyproject.toml and Cargo.toml and is
in the installed distribution; the project has URLs."""

from __future__ import annotations

import tomllib
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def backend() -> str:
    """Packaging does not depend on the kernel backend: run once."""
    return "any"


def test_license_file_agrees_with_the_manifests() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    cargo = tomllib.loads((ROOT / "Cargo.toml").read_text())["package"]
    assert project["license"] == cargo["license"] == "MIT"
    assert project["license-files"] == ["LICENSE"]
    assert (ROOT / "LICENSE").read_text().startswith("MIT License\n")
    assert set(project["urls"]) == {"Homepage", "Documentation", "Issues", "Changelog"}


def test_installed_distribution_carries_the_license_and_urls() -> None:
    dist = metadata.distribution("crackle_runtime")
    assert dist.metadata["License-Expression"] == "MIT"
    licenses = [path for path in dist.files or [] if path.name == "LICENSE"]
    assert licenses, "LICENSE is not in the installed distribution"
    assert licenses[0].read_text().startswith("MIT License\n")
    urls = dict(entry.split(", ", 1) for entry in dist.metadata.get_all("Project-URL") or [])
    assert urls["Homepage"].startswith("https://")
