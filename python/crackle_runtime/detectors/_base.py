"""What a detector's wording module declares, and what it hands the cooling loop."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from crackle_runtime import _backend
from crackle_runtime.detectors._data import DetectionData
from crackle_runtime.patterns import CracklePattern, PatternKind
from crackle_runtime.profile import ThermalProfile

__all__ = [
    "MAX_PAIR_METRICS",
    "MAX_PATTERNS_PER_KIND",
    "Detector",
    "Findings",
    "Result",
    "Test",
    "detect_with",
    "flagged",
    "strongest",
]

MAX_PATTERNS_PER_KIND = 1000
"""A report words at most this many patterns of one kind: m metrics have m(m - 1) / 2
pairs, and wide data (5,000 metrics over 3 tasks) would otherwise word millions of
correlations. The strongest are kept (largest |r| for correlations, :func:`strongest`;
smallest p-values after Benjamini–Hochberg for tested kinds, in the cooling loop); the
report's notes give the total."""

MAX_PAIR_METRICS = 2000
"""A pairwise detector compares the pairs among at most this many metrics (the first, in
first-seen order; 1,999,000 pairs): 5,000 metrics would be 12.5 million pairs. The report
lists the detector as incomplete and says which metrics took part."""

Result = Mapping[str, NDArray[Any]]
"""A kernel's named fields (``run_detector``'s dict)."""


@dataclass
class Test:
    """One p-valued hypothesis: the report-wide Benjamini–Hochberg pass decides it, and only
    a rejected one is worded (``build`` may still decline, returning None)."""

    kind: PatternKind
    p_value: float
    build: Callable[[], CracklePattern | None]


@dataclass
class Findings:
    """What one detector found: patterns kept by rule, tests for the FDR pass, why it had
    nothing to test (``skipped``), notes for the report and the metrics found drifting."""

    patterns: list[CracklePattern] = field(default_factory=list)
    tests: list[Test] = field(default_factory=list)
    skipped: str | None = None
    notes: list[str] = field(default_factory=list)
    # metrics this detector found drifting (a trend or a random walk), by name
    drifting: list[str] = field(default_factory=list)


def _always(data: DetectionData) -> bool:
    return True


@dataclass(frozen=True)
class Detector:
    """A detector's wording: the kernel it runs (``name``, a key of the backends'
    ``DETECTORS``), the kind of its patterns, its parameters from a profile, and how its
    result becomes patterns and tests (index columns never reach it: the cooling loop leaves
    them out). ``prepare(data)``: the data the kernel reads instead of ``data`` (the same
    tasks and metrics, e.g. prewhitened; the wording still reads ``data``). ``applies(data)``:
    whether there is anything for it to read at all (else it neither runs nor counts as
    skipped). ``pairwise``: it compares metric pairs (at most MAX_PAIR_METRICS metrics take
    part). ``min_tasks``: the kernel parameter giving the fewest tasks a row can be tested
    on; with fewer tasks the kernel does not run and ``findings`` sees a result without rows
    (it words why nothing was tested). ``segmented``: the kernel reads each metric within
    the segments between its change points (found by the distribution-shift detector in
    the same cooling, which then runs first), so a regime change does not set its scale.
    ``cycles(data, result, periods)``: the result again for the metrics that repeat a cycle
    (``periods``: metric -> period, from the distribution-shift detector, which then runs
    first)."""

    name: str
    kind: PatternKind
    params: Callable[[ThermalProfile], dict[str, Any]]
    findings: Callable[[DetectionData, Result, dict[str, Any]], Findings]
    applies: Callable[[DetectionData], bool] = _always
    pairwise: bool = False
    min_tasks: str | None = None
    prepare: Callable[[DetectionData], DetectionData] | None = None
    segmented: bool = False
    cycles: Callable[[DetectionData, Result, dict[int, int]], Result] | None = None


def flagged(result: Result, flag: str) -> list[int]:
    """Indices of the rows whose bool field ``flag`` is set."""
    return np.flatnonzero(np.asarray(result[flag])).tolist()


def detect_with(
    detector: Detector, data: DetectionData, params: dict[str, Any]
) -> list[CracklePattern]:
    """The patterns ``detector`` finds in ``data`` with ``params``, outside a cooling (the
    seed's static ``detect`` methods: no time budget; these detectors have no tests)."""
    if not detector.applies(data):
        return []
    result = _backend.kernels().run_detector(detector.name, data.matrix, data.rows, params)
    return detector.findings(data, result, params).patterns


def strongest(
    rows: list[int], strength: NDArray[np.float64], what: str
) -> tuple[list[int], str | None]:
    """The ``rows`` to word: all of them up to MAX_PATTERNS_PER_KIND, else that many of the
    largest ``strength[row]`` (ties: the earlier row), in row order; and the note saying so
    (None when nothing was left out). ``what`` names the findings ("strong correlations")."""
    if len(rows) <= MAX_PATTERNS_PER_KIND:
        return rows, None
    candidates = np.asarray(rows, dtype=np.int64)
    order = np.argsort(-np.asarray(strength, dtype=np.float64)[candidates], kind="stable")
    kept = np.sort(candidates[order[:MAX_PATTERNS_PER_KIND]])
    note = f"{len(rows)} {what} found; the {MAX_PATTERNS_PER_KIND} strongest are reported"
    return kept.tolist(), note
