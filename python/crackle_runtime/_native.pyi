"""Type stub of the Rust extension ``crackle_runtime._native`` (checked by mypy.stubtest).

Kernels take 1-D float64 arrays (non-contiguous arrays are copied) and Python ints that fit
in a signed 64-bit integer (``OverflowError`` otherwise); bad parameters or non-finite values
raise ``ValueError`` naming the argument. The GIL is released while a kernel runs.
"""

from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "CHUNK_FIELDS",
    "DETECTORS",
    "PERMUTATION_SEED",
    "ROLE_FIELDS",
    "STATE_PAIR_FIELDS",
    "STATE_SERIES_FIELDS",
    "__version__",
    "build_profile",
    "column_roles",
    "entropy",
    "fire_chunk",
    "forget_law_fits",
    "joint_entropy",
    "jsd",
    "kl_divergence",
    "mutual_information",
    "permutation_entropy",
    "phase_groups",
    "prewhiten",
    "run_detector",
    "state_merge",
    "state_of_columns",
    "state_rows_needed",
    "table_from_state",
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

# --- detectors: columns is a float64 (metrics, tasks) array, NaN = absent ---------------
DETECTORS: dict[str, dict[str, Any]]
"""``{name: {"kind": str, "fields": tuple[str, ...], "params": {name: default}}}`` for every
registered detector, in the order of the pattern kinds."""

ROLE_FIELDS: list[str]
PERMUTATION_SEED: int
CHUNK_FIELDS: list[str]

def run_detector(
    name: str,
    columns: NDArray[np.float64],
    metrics: NDArray[np.int64] | None = None,
    params: dict[str, Any] | None = None,
    complete: NDArray[np.bool_] | None = None,
) -> dict[str, NDArray[Any]]:
    """Run the registered detector ``name`` over the rows ``metrics`` (all when None) of
    ``columns`` with ``params`` over its defaults; returns its named fields. ``complete``:
    one flag per selected row, the rows known to hold every value, all finite (the caller's
    word, not checked: a wrong flag has NaN read as a value; the NumPy backend ignores the
    flags)."""

def forget_law_fits() -> None:
    """Forget the conservation-law fits kept for the latest samples: the next run fits every
    subset again."""

def column_roles(
    columns: NDArray[np.float64],
    metrics: NDArray[np.int64] | None = None,
    complete: NDArray[np.bool_] | None = None,
) -> dict[str, NDArray[Any]]:
    """The roles of the rows ``metrics`` (all when None): ``counter`` per metric."""

def phase_groups(
    columns: NDArray[np.float64], periods: NDArray[np.int64], start: int = 0
) -> NDArray[np.int64]:
    """Per row: the number of phase groups its spread repeats the cycle of ``periods[row]``
    tasks in (0: none), the first task at phase ``start``."""

def prewhiten(
    columns: NDArray[np.float64], metrics: NDArray[np.int64] | None = None
) -> NDArray[np.float64]:
    """The AR residuals of the rows ``metrics`` (all when None), one row each over the same
    tasks: each row's present values replaced by the innovations of its own AR(p) model,
    NaN where absent; all NaN with fewer than 3 present values."""

def fire_chunk(
    tasks: Any, limit: int, skip: bool, recorder: Any, max_seconds: float
) -> dict[str, Any]:
    """Fire at most ``limit`` tasks of an iterator and return the recorded chunk, a dict
    with the keys ``CHUNK_FIELDS`` (also left on ``recorder.pending``; holds the
    GIL: it calls Python); see ``crackle_runtime._numpy.record.fire_chunk``."""

# --- mergeable cooling state: a state travels as its flat float64 body ------------------
STATE_SERIES_FIELDS: list[str]
STATE_PAIR_FIELDS: list[str]

def state_of_columns(
    columns: NDArray[np.float64], start: int, bucket_size: int
) -> NDArray[np.float64]:
    """The flat state of the tasks in ``columns`` ((metrics, tasks), NaN = absent), the
    first at position ``start``, with buckets of ``bucket_size`` task positions."""

def state_merge(first: NDArray[np.float64], second: NDArray[np.float64]) -> NDArray[np.float64]:
    """The flat state of the run ``first`` followed by the run ``second``."""

def table_from_state(
    name: str,
    flat: NDArray[np.float64],
    columns: NDArray[np.float64],
    metrics: NDArray[np.int64],
    params: dict[str, Any] | None = None,
    positions: NDArray[np.int64] | None = None,
    short_tail: bool = False,
) -> dict[str, NDArray[Any]]:
    """The table of detector ``name`` ("phase_transition" or "correlation") from the flat
    state ``flat`` over its metrics ``metrics``, reading a few buckets of ``columns`` (the
    state's metrics x its tasks, or x the tasks at ``positions``; NaN = absent);
    ``short_tail`` True lets a correlation's p-value read fewer than the latest 10,000
    tasks having both metrics when those are all the latest gathered tasks hold."""

def state_rows_needed(
    flat: NDArray[np.float64],
    metrics: NDArray[np.int64],
    columns: NDArray[np.float64] | None = None,
    positions: NDArray[np.int64] | None = None,
) -> NDArray[np.int64]:
    """The tasks the phase-transition table of the state's metrics ``metrics`` reads next
    and the gathered ``columns`` (x the tasks at ``positions``; None: nothing gathered)
    lack, as (n, 2) ``[low, high)`` spans relative to the state's first task."""
