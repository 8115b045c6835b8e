"""The NumPy backend: every kernel of the native extension, with the same names and results.

It is the fallback when the extension is missing and the baseline the native backend is
benchmarked against, so it is written vectorised: no Python loop over values.
"""

from __future__ import annotations

from crackle_runtime._numpy.added import (
    conservation_laws,
    dependence_stats,
    distribution_shift_stats,
    information_flow_stats,
    outlier_scores,
)
from crackle_runtime._numpy.detect import (
    cluster_components,
    conservation_stats,
    correlation_stats,
    phase_transition_stats,
)
from crackle_runtime._numpy.info import (
    entropy,
    joint_entropy,
    jsd,
    kl_divergence,
    mutual_information,
    permutation_entropy,
    transfer_entropy,
)
from crackle_runtime._numpy.record import fire_chunk

build_profile = "numpy"

__all__ = [
    "build_profile",
    "cluster_components",
    "conservation_laws",
    "conservation_stats",
    "correlation_stats",
    "dependence_stats",
    "distribution_shift_stats",
    "entropy",
    "fire_chunk",
    "information_flow_stats",
    "joint_entropy",
    "jsd",
    "kl_divergence",
    "mutual_information",
    "outlier_scores",
    "permutation_entropy",
    "phase_transition_stats",
    "transfer_entropy",
]
