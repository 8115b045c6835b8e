"""crackle_runtime: record the metrics of many executed tasks, then find what no single
task shows — clusters, shifts, conserved quantities, dependencies, outliers, information flow.
"""

from __future__ import annotations

import platform
import sys
import types
from importlib import metadata as _metadata

import numpy as np

from crackle_runtime import _backend
from crackle_runtime._state import CoolingState
from crackle_runtime.detectors import (
    ClusteringPattern,
    ConservationPattern,
    CorrelationPattern,
    PhaseTransitionPattern,
)
from crackle_runtime.errors import (
    CoolingTimeoutError,
    CrackleError,
    DetectionFailedError,
    InvalidMetricError,
    InvalidProfileError,
    KilnCooledError,
    TaskPanickedError,
)
from crackle_runtime.glaze import GlazeLayer
from crackle_runtime.info import (
    entropy,
    joint_entropy,
    jsd,
    kl_divergence,
    mutual_information,
    permutation_entropy,
    transfer_entropy,
)
from crackle_runtime.kiln import Kiln, MetricMatrix, TaskEntry, TaskMetadata, Timestamp
from crackle_runtime.patterns import CracklePattern, PatternKind
from crackle_runtime.profile import CoolingRate, ThermalProfile
from crackle_runtime.report import PatternReport
from crackle_runtime.task import CrackleTask, TaskOutput

__version__ = _metadata.version("crackle_runtime")  # from Cargo.toml, the one version source

__all__ = [
    "ClusteringPattern",
    "ConservationPattern",
    "CoolingRate",
    "CoolingState",
    "CoolingTimeoutError",
    "CorrelationPattern",
    "CrackleError",
    "CracklePattern",
    "CrackleTask",
    "DetectionFailedError",
    "GlazeLayer",
    "InvalidMetricError",
    "InvalidProfileError",
    "Kiln",
    "KilnCooledError",
    "MetricMatrix",
    "PatternKind",
    "PatternReport",
    "PhaseTransitionPattern",
    "TaskEntry",
    "TaskMetadata",
    "TaskOutput",
    "TaskPanickedError",
    "ThermalProfile",
    "Timestamp",
    "__version__",
    "backend",
    "entropy",
    "joint_entropy",
    "jsd",
    "kl_divergence",
    "mutual_information",
    "permutation_entropy",
    "show_versions",
    "transfer_entropy",
]


class _Package(types.ModuleType):
    """The package module's class: ``crackle_runtime.backend`` is a property that follows
    the backend in use ("native" or "python"). A property rather than a module
    ``__getattr__``, so a misspelt attribute (``cr.Klin``) still fails the type checker."""

    @property
    def backend(self) -> str:
        return _backend.name

    def __dir__(self) -> list[str]:
        return sorted({*super().__dir__(), "backend"})


sys.modules[__name__].__class__ = _Package
backend: str  # declared for type checkers; the property above answers at run time


def show_versions() -> None:
    """Print the package, backend, build profile, NumPy and Python versions."""
    rows = [
        ("crackle_runtime", __version__),
        ("backend", _backend.name),
        ("build profile", _backend.build_profile()),
        ("numpy", np.__version__),
        ("python", sys.version.split()[0]),
        ("platform", platform.platform()),
    ]
    width = max(len(key) for key, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}} : {value}")
