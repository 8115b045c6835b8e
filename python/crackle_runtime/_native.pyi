"""Type stub of the Rust extension ``crackle_runtime._native`` (checked by mypy.stubtest).

Kernels take 1-D float64 arrays (non-contiguous arrays are copied) and Python ints that fit
in a signed 64-bit integer (``OverflowError`` otherwise); bad parameters or non-finite values
raise ``ValueError`` naming the argument. The GIL is released while a kernel runs.
"""

from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "__version__",
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

__version__: str
build_profile: str

def entropy(values: NDArray[np.float64], bins: int = 10) -> float:
    """Shannon entropy (bits) of the equal-width histogram of ``values``."""

def joint_entropy(x: NDArray[np.float64], y: NDArray[np.float64], bins: int = 10) -> float:
    """Entropy (bits) of the 2-D histogram of ``(x, y)``, each binned over its own range."""

def mutual_information(x: NDArray[np.float64], y: NDArray[np.float64], bins: int = 10) -> float:
    """``H(X) + H(Y) - H(X, Y)`` in bits, clipped at 0."""

def kl_divergence(
    current: NDArray[np.float64], baseline: NDArray[np.float64], bins: int = 10
) -> float:
    """KL(current ‖ baseline) in bits over bins shared by both samples; ``inf`` when
    ``current`` has mass where ``baseline`` has none."""

def jsd(p: NDArray[np.float64], q: NDArray[np.float64], bins: int = 10) -> float:
    """Jensen–Shannon divergence in bits (in [0, 1]) over bins shared by both samples."""

def transfer_entropy(
    x: NDArray[np.float64], y: NDArray[np.float64], lag: int = 1, bins: int = 10
) -> float:
    """Transfer entropy X → Y in bits: ``I(Y[t+lag]; X[t] | Y[t])``, clipped at 0."""

def permutation_entropy(values: NDArray[np.float64], order: int = 3) -> float:
    """Normalized Bandt–Pompe permutation entropy (delay 1, ties broken by position)."""

# --- detector kernels: columns is a float64 (metrics, tasks) array, NaN = absent -----------
def cluster_components(
    columns: NDArray[np.float64], threshold: float, deadline: float = ...
) -> tuple[NDArray[np.int64], NDArray[np.float64], NDArray[np.bool_]]:
    """Connected components of tasks closer than ``threshold``:
    (labels, avg_distance, sampled)."""

def phase_transition_stats(columns: NDArray[np.float64], sensitivity: float) -> NDArray[np.float64]:
    """Per metric: count, first_avg, second_avg, mean_all, shift, p_value, change_index,
    delta, detected."""

def conservation_stats(columns: NDArray[np.float64], tolerance: float) -> NDArray[np.float64]:
    """Per metric: count, total, mean, std, cv, is_counter, detected."""

def correlation_stats(columns: NDArray[np.float64], threshold: float) -> NDArray[np.float64]:
    """Per metric pair: i, j, n, r, p_value, detected."""

def fire_chunk(
    tasks: Any, limit: int, skip: bool, recorder: Any, max_seconds: float
) -> tuple[Any, ...]:
    """Fire at most ``limit`` tasks of an iterator and return the recorded chunk (holds the
    GIL: it calls Python); see ``crackle_runtime._numpy.record.fire_chunk``."""

def outlier_scores(
    columns: NDArray[np.float64], z_threshold: float
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64], NDArray[np.float64]]:
    """(task, metric, z, deviation) of every value whose robust z-score exceeds the threshold."""

def distribution_shift_stats(
    columns: NDArray[np.float64], min_segment: int, permutations: int, seed: int, max_test_n: int
) -> NDArray[np.float64]:
    """Per metric: the best change point, its JSD and a permutation p-value (13 columns)."""

def dependence_stats(
    columns: NDArray[np.float64],
    threshold_r: float,
    min_pairs: int,
    permutations: int,
    seed: int,
    max_test_n: int,
) -> NDArray[np.float64]:
    """Per metric pair: bias-corrected mutual information with a permutation p-value."""

def information_flow_stats(
    columns: NDArray[np.float64],
    min_values: int,
    permutations: int,
    seed: int,
    max_test_n: int,
    max_lag: int,
) -> NDArray[np.float64]:
    """Per ordered metric pair: transfer entropy with a source-surrogate p-value."""

def conservation_laws(
    columns: NDArray[np.float64],
    excluded: NDArray[np.bool_],
    tolerance_eig: float,
    seed: int,
    max_terms: int,
    sample_size: int,
) -> list[dict[str, Any]]:
    """Linear laws among 2..max_terms metrics that hold for most complete tasks."""
