"""The smallest eigenpair of symmetric matrices (the twin of ``detect::shared::eigen``: the
Rust core uses cyclic Jacobi rotations, this backend ``np.linalg.eigh``; they agree to
~1e-9, which the laws' decisions tolerate by design)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = ["IDENTIFIABLE_GAP", "smallest_eigenpairs"]

Float64Array = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

IDENTIFIABLE_GAP = 1e-9  # relative eigenvalue gap of a determined smallest eigenvector


def smallest_eigenpairs(
    matrices: Float64Array,
) -> tuple[Float64Array, Float64Array, BoolArray]:
    """Smallest eigenvalue, its unit eigenvector, and whether that eigenvector is determined
    (gap to the next eigenvalue > IDENTIFIABLE_GAP x the largest |eigenvalue|: a zero
    matrix or a repeated smallest eigenvalue has no unique smallest eigenvector), for each
    symmetric matrix of a stack."""
    eigenvalues, eigenvectors = np.linalg.eigh(matrices)
    largest = np.abs(eigenvalues).max(axis=-1)
    gap = eigenvalues[..., 1] - eigenvalues[..., 0]
    identifiable = (gap > IDENTIFIABLE_GAP * largest) & (largest > 0.0)
    return eigenvalues[..., 0], eigenvectors[..., :, 0], identifiable
