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
    # scaled by a power of two so the largest |entry| of each matrix is in [0.5, 1), as the
    # Rust core does (exact in the normal range; LAPACK fails to converge on subnormal
    # entries); the eigenvalues are scaled back (subnormal results keep their own
    # rounding); a matrix with a non-finite entry gives NaN eigenvalues, the identity's
    # vectors and no identifiable eigenvector, as the Rust core does (LAPACK would raise)
    finite: BoolArray = np.asarray(np.isfinite(matrices).all(axis=(-2, -1)))
    safe = np.where(finite[..., None, None], matrices, 0.0)
    _, exponents = np.frexp(np.abs(safe).max(axis=(-2, -1), initial=0.0))
    scaled = np.ldexp(safe, -exponents[..., None, None])
    eigenvalues, eigenvectors = np.linalg.eigh(scaled)
    eigenvalues = np.ldexp(eigenvalues, exponents[..., None])
    eigenvalues[~finite] = np.nan
    eigenvectors[~finite] = np.eye(matrices.shape[-1])
    largest = np.abs(eigenvalues).max(axis=-1)
    gap = eigenvalues[..., 1] - eigenvalues[..., 0]
    identifiable = (gap > IDENTIFIABLE_GAP * largest) & (largest > 0.0)
    return eigenvalues[..., 0], eigenvectors[..., :, 0], identifiable
