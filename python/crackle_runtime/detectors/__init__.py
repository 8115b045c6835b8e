"""The detectors' wording: one module per detector (patterns, descriptions, details), the
registry (``_registry``) and the cooling loop (``_cooling``). The kernels that compute are
the backend's (``run_detector``, Rust or NumPy, same results).

The seed's four detector classes stay public here with their static ``detect`` methods.
"""

from __future__ import annotations

from crackle_runtime.detectors._data import DetectionData
from crackle_runtime.detectors.clustering import ClusteringPattern
from crackle_runtime.detectors.conservation import ConservationPattern
from crackle_runtime.detectors.correlation import CorrelationPattern
from crackle_runtime.detectors.phase_transition import PhaseTransitionPattern

__all__ = [
    "ClusteringPattern",
    "ConservationPattern",
    "CorrelationPattern",
    "DetectionData",
    "PhaseTransitionPattern",
]
