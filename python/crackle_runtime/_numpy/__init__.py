"""The NumPy backend: every kernel of the native extension, with the same names and results.

It is the fallback when the extension is missing and the baseline the native backend is
benchmarked against, so it is written vectorised: no Python loop over values.
"""

from __future__ import annotations

from crackle_runtime._numpy.detect import (
    DETECTORS,
    PERMUTATION_SEED,
    ROLE_FIELDS,
    column_roles,
    forget_law_fits,
    phase_groups,
    prewhiten,
    run_detector,
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
from crackle_runtime._numpy.record import CHUNK_FIELDS as _CHUNK_FIELDS
from crackle_runtime._numpy.record import fire_chunk
from crackle_runtime._numpy.state import (
    STATE_PAIR_FIELDS,
    STATE_SERIES_FIELDS,
    state_merge,
    state_of_columns,
)
from crackle_runtime._numpy.state_tables import state_rows_needed, table_from_state

build_profile = "numpy"
CHUNK_FIELDS = list(_CHUNK_FIELDS)

__all__ = [
    "CHUNK_FIELDS",
    "DETECTORS",
    "PERMUTATION_SEED",
    "ROLE_FIELDS",
    "STATE_PAIR_FIELDS",
    "STATE_SERIES_FIELDS",
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
