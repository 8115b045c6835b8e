"""Conservation laws across metrics (SPEC §6 "Conservation laws"), the twin of the Rust
core's ``detect::conservation_laws``: linear combinations of 2..max_terms metrics that stay
constant across the complete tasks, found robustly (trimmed C-steps from several starts) in
the near-null space of the standardized covariance; many subsets are fitted at once as the
rows of stacked arrays."""

from __future__ import annotations

import math
from itertools import combinations
from typing import Any

import numpy as np
from numpy.typing import NDArray

from crackle_runtime._args import Budget, Params
from crackle_runtime._numpy._stats import (
    all_equal,
    mean_and_sum_of_squares,
    population_std,
    sequential_sum,
)
from crackle_runtime._numpy.detect.roles import is_counter
from crackle_runtime._numpy.detect.shared.columns import as_columns
from crackle_runtime._numpy.detect.shared.eigen import smallest_eigenpairs
from crackle_runtime._numpy.detect.shared.permutation import (
    PERMUTATION_SEED,
    smallest_positions,
    stream_outputs,
)
from crackle_runtime._numpy.detect.shared.ranks import median

__all__ = ["FIELDS", "KIND", "NAME", "PARAMS", "run"]

NAME = "conservation_laws"
KIND = "conservation law"
FIELDS = (
    "constant",
    "residual_std",
    "support",
    "band",
    "term_law",
    "term_metric",
    "term_coefficient",
    "tasks",
    "satisfied",
)
PARAMS: dict[str, Any] = {
    "tolerance_eig": 1e-4,
    "seed": PERMUTATION_SEED,
    "max_terms": 4,
    "sample_size": 2000,
}

STAGE = "conservation_laws"
MAX_TERMS = 8  # the largest law the detector looks for
MAX_CANDIDATES = 16
MIN_TASKS = 10
ELEMENTAL_STARTS = 6
C_STEPS = 2
MIN_WEIGHT = 1e-6  # every term of a law has |w_k| >= this (standardized, unit w)
MIN_TRIMMED_VARIANCE = 1e-3  # every term varies over the trimmed rows (standardized)
TRIM_QUANTUM = 1e-12  # residual distances this close tie when trimming
SCREEN_EIGENVALUE = 0.05  # full-sample fits above this skip the elemental starts
SNAP_DENOMINATORS = 12
SNAP_TOLERANCE = 1e-6
SPAN_TOLERANCE = 1e-6
ZERO_EIGENVALUE = 1e-12  # eigenvalues this small order as 0 (exact laws)
MIN_SUPPORT = 0.9

Float64Array = NDArray[np.float64]
Int64Array = NDArray[np.int64]
BoolArray = NDArray[np.bool_]


def _law_candidates(
    values: Float64Array, present: BoolArray, excluded: BoolArray
) -> tuple[list[int], BoolArray]:
    """Candidate metrics (not excluded, >= 2 distinct values over the complete tasks, the
    first 16) and the complete tasks (those having every candidate).

    "Complete" depends on the candidates and "varies" on the complete tasks: start from
    every non-excluded metric and drop the metrics constant over the tasks having all
    remaining ones until none is dropped (dropping a metric only adds complete tasks, so a
    kept metric keeps varying)."""
    candidates = np.flatnonzero(~excluded).tolist()
    tasks = values.shape[1]
    while True:
        complete: BoolArray = np.asarray(
            present[candidates].all(axis=0) if candidates else np.ones(tasks), dtype=np.bool_
        )
        varying = [k for k in candidates if not all_equal(values[k][complete])]
        if varying == candidates:
            break
        candidates = varying
    if len(candidates) > MAX_CANDIDATES:
        candidates = candidates[:MAX_CANDIDATES]
        complete = np.asarray(present[candidates].all(axis=0), dtype=np.bool_)
    return candidates, complete


def _trimmed_mask(deviation: Float64Array, keep: int) -> BoolArray:
    """The ``keep`` smallest entries of each row (the earlier position first on ties)."""
    kth = np.partition(deviation, keep - 1, axis=-1)[..., keep - 1 : keep]
    mask = deviation < kth
    needed = keep - mask.sum(axis=-1, keepdims=True)
    equal = deviation == kth
    surplus = (equal.sum(axis=-1, keepdims=True) > needed)[..., 0]
    if surplus.any():  # ties at the cut: only the earliest ones are kept
        equal[surplus] &= np.cumsum(equal[surplus], axis=-1) <= needed[surplus]
    mask |= equal
    return mask


def _trimmed_covariance(
    z: Float64Array, products: Float64Array, mask: BoolArray, keep: int
) -> Float64Array:
    """Population covariance of the rows of ``z`` (subsets x tasks x terms) selected by
    ``mask`` (subsets x starts x tasks): subsets x starts x terms x terms, as the mean of
    the ``products`` z z^T of the rows minus the outer product of their mean (z is
    standardized, so the means are small and the subtraction loses nothing that matters)."""
    size = z.shape[2]
    weights = mask.astype(np.float64)
    means = np.matmul(weights, z) / keep  # subsets x starts x terms
    second = np.matmul(weights, products) / keep  # subsets x starts x terms**2
    second = second.reshape(*second.shape[:2], size, size)
    covariance: Float64Array = second - means[..., :, None] * means[..., None, :]
    return covariance


def _fit_subsets(
    sample: Float64Array,
    subsets: Int64Array,
    ranks: Int64Array,
    seed: int,
    keep: int,
    full_covariance: Float64Array,
) -> tuple[Float64Array, Float64Array, BoolArray]:
    """Robust fit of every subset (rows of ``subsets``, candidate columns of ``sample``):
    the best of the full-sample start and 6 elemental starts after 2 C-steps each.
    Returns the final eigenvalue, unit vector and trimmed rows of each subset."""
    count, size = subsets.shape
    sampled = sample.shape[0]
    z = np.ascontiguousarray(sample[:, subsets].transpose(1, 0, 2))  # subsets x tasks x terms
    starts = np.empty((count, 1 + ELEMENTAL_STARTS, size))
    full = full_covariance[subsets[:, :, None], subsets[:, None, :]]
    # Starts whose eigenvector is undetermined are abandoned (eigenvalue +inf at the end).
    abandoned = np.zeros((count, 1 + ELEMENTAL_STARTS), dtype=np.bool_)
    _, starts[:, 0, :], identifiable = smallest_eigenpairs(full)
    abandoned[:, 0] = ~identifiable
    # start e of subset g: output e of the stream seed ^ g
    streams = stream_outputs(np.uint64(seed) ^ ranks.astype(np.uint64), ELEMENTAL_STARTS).ravel()
    positions = smallest_positions(streams, sampled, size).reshape(count, -1)
    points = np.take_along_axis(z, positions[:, :, None], axis=1).reshape(
        count, ELEMENTAL_STARTS, size, size
    )
    differences = points[:, :, :-1, :] - points[:, :, -1:, :]
    normal = np.matmul(differences.transpose(0, 1, 3, 2), differences)
    _, starts[:, 1:, :], identifiable = smallest_eigenpairs(normal)
    abandoned[:, 1:] = ~identifiable
    products = (z[:, :, :, None] * z[:, :, None, :]).reshape(count, sampled, size * size)
    weights = starts
    eigenvalues = np.empty((count, 1 + ELEMENTAL_STARTS))
    mask = np.empty((count, 1 + ELEMENTAL_STARTS, sampled), dtype=np.bool_)
    for _ in range(C_STEPS):
        # residuals r = Z w of every start, as subsets x starts x tasks
        residuals = np.ascontiguousarray(np.matmul(weights, z.transpose(0, 2, 1)))
        residuals -= median(residuals, axis=-1)[..., None]
        # distances within TRIM_QUANTUM tie (the earlier row wins), so rounding of the
        # eigenvector cannot decide which of two near-equal rows is trimmed
        np.abs(residuals, out=residuals)
        mask = _trimmed_mask(np.floor(residuals / TRIM_QUANTUM), keep)
        eigenvalues, weights, identifiable = smallest_eigenpairs(
            _trimmed_covariance(z, products, mask, keep)
        )
        abandoned |= ~identifiable
    eigenvalues = np.where(abandoned, np.inf, eigenvalues)
    best = np.argmin(eigenvalues, axis=1)
    # Screen: a subset whose full-sample fit ends above SCREEN_EIGENVALUE is not a law and
    # keeps that fit (the elemental starts only rescue laws hidden by a few gross violators).
    best[~(eigenvalues[:, 0] <= SCREEN_EIGENVALUE)] = 0
    chosen = np.arange(count)
    return eigenvalues[chosen, best], weights[chosen, best], mask[chosen, best]


def _terms_vary(sample: Float64Array, subset: Int64Array, mask: BoolArray) -> bool:
    """Every term varies over the trimmed rows (population variance >= MIN_TRIMMED_VARIANCE
    in standardized units): a term that is constant once a few extreme tasks are trimmed
    satisfies any "law" trivially."""
    rows = np.flatnonzero(mask)
    if rows.size == 0:
        return False
    for column in subset.tolist():
        values = sample[rows, column]
        mean = sequential_sum(values) / rows.size
        variance = sequential_sum((values - mean) * (values - mean)) / rows.size
        if variance < MIN_TRIMMED_VARIANCE:
            return False
    return True


def _snap(coefficient: float) -> float:
    """The p/q (q = 1..12) within 1e-6 of ``coefficient``, else the coefficient."""
    best, distance = coefficient, math.inf
    for denominator in range(1, SNAP_DENOMINATORS + 1):
        numerator = round(coefficient * denominator)
        value = numerator / denominator
        gap = abs(coefficient - value)
        if gap <= SNAP_TOLERANCE and gap < distance:
            best, distance = value, gap
    return best


def law_band(residual: Float64Array) -> float:
    """The distance from the constant a law allows every task: 3.5 x 1.4826 x the MAD of
    its residuals (a task also holds within 1e-9 of its terms' magnitude)."""
    return 3.5 * 1.4826 * float(median(np.abs(residual - float(median(residual)))))


def _combination(coefficients: list[float], raw: Float64Array) -> Float64Array:
    """sum_k c_k x_k per row of ``raw`` (tasks x terms), summed over k in order."""
    total = coefficients[0] * raw[:, 0]
    for k in range(1, len(coefficients)):
        total = total + coefficients[k] * raw[:, k]
    return np.asarray(total, dtype=np.float64)


def _absolute_combination(coefficients: list[float], raw: Float64Array) -> Float64Array:
    total = np.abs(coefficients[0] * raw[:, 0])
    for k in range(1, len(coefficients)):
        total = total + np.abs(coefficients[k] * raw[:, k])
    return np.asarray(total, dtype=np.float64)


def _law_coefficients(
    weights: Float64Array, stds: Float64Array, trimmed: Float64Array
) -> list[float]:
    """c = w / std scaled to max |c| = 1 with c_0 > 0, snapped to simple ratios unless
    snapping raises the residual std over the trimmed rows above 1.01x (+1e-12 scale)."""
    raw = weights / stds
    coefficients = raw / float(np.abs(raw).max())
    if coefficients[0] < 0.0:
        coefficients = -coefficients
    unsnapped = [float(c) for c in coefficients]
    snapped = [_snap(c) for c in unsnapped]
    if snapped == unsnapped:
        return unsnapped
    scale = float(median(_absolute_combination(unsnapped, trimmed)))
    std_unsnapped = population_std(_combination(unsnapped, trimmed))
    std_snapped = population_std(_combination(snapped, trimmed))
    if std_snapped > 1.01 * std_unsnapped + 1e-12 * scale:
        return unsnapped
    return snapped


def run(columns: Float64Array, params: Params, budget: Budget) -> dict[str, Any]:
    """Linear laws sum_k c_k x_k = constant of 2..max_terms metrics (counters take no part):
    per law ``constant``, ``residual_std``, ``support``, ``band``; per term ``term_law``,
    ``term_metric``, ``term_coefficient``; the complete ``tasks``; and ``satisfied`` per law
    and complete task (law-major). See the Rust core's ``detect::conservation_laws``."""
    tolerance_eig = params.finite("tolerance_eig", 0.0, inclusive=True)
    seed = params.seed("seed")
    max_terms = params.integer("max_terms", 2, MAX_TERMS)
    sample_size = params.count("sample_size", MIN_TASKS)
    values = as_columns(columns)
    laws = conservation_laws(values, tolerance_eig, seed, max_terms, sample_size, budget)
    tasks = laws[0]["tasks"] if laws else np.zeros(0, dtype=np.int64)
    term_law = [index for index, law in enumerate(laws) for _ in law["metrics"]]
    return {
        "constant": np.array([law["constant"] for law in laws], dtype=np.float64),
        "residual_std": np.array([law["residual_std"] for law in laws], dtype=np.float64),
        "support": np.array([law["support"] for law in laws], dtype=np.float64),
        "band": np.array([law["band"] for law in laws], dtype=np.float64),
        "term_law": np.array(term_law, dtype=np.int64),
        "term_metric": np.array(
            [metric for law in laws for metric in law["metrics"]], dtype=np.int64
        ),
        "term_coefficient": np.array(
            [c for law in laws for c in law["coefficients"]], dtype=np.float64
        ),
        "tasks": np.asarray(tasks, dtype=np.int64),
        "satisfied": (
            np.concatenate([law["satisfied"] for law in laws])
            if laws
            else np.zeros(0, dtype=np.bool_)
        ),
    }


_Found = list[tuple[int, float, int, tuple[int, ...], Float64Array, BoolArray]]
_MEMO_VALUES = 1 << 20  # samples of at most this many values have their fits kept
_MEMO_ENTRIES = 4  # the fits of this many samples are kept (the most recent)
_FITS: list[tuple[tuple[Any, ...], _Found]] = []


def forget_fits() -> None:
    """Forget the kept fits (benchmarks that time a fit, tests that compare with a new one)."""
    _FITS.clear()


def _fitted(
    settings: tuple[Any, ...],
    sample_rows: Int64Array,
    sample_raw: Float64Array,
    means: Float64Array,
    stds: Float64Array,
    budget: Budget,
) -> _Found:
    """Every subset fitted on the sample, the laws among them in the order they are taken
    (size, eigenvalue, subset rank). A function of the settings, the candidates and the
    sample's positions and values alone: the result for a sample seen among the latest
    ones is taken from there (a cooled kiln that records more tasks is cooled again with the
    same sample until the sample's prefix, ``law_sample_prefix``, moves)."""
    tolerance_eig, seed, max_terms, _, candidates = settings
    key = (*settings, sample_rows.tobytes(), sample_raw.tobytes())
    memo = sample_raw.size <= _MEMO_VALUES
    for seen, fits in _FITS if memo else []:
        if seen == key:
            return list(fits)
    sample = (sample_raw - means) / stds
    sampled = sample_rows.size
    keep = (9 * sampled + 9) // 10  # ceil(0.9 |S|), exactly
    centered_sample = sample - sample.mean(axis=0)
    full_covariance = centered_sample.T @ centered_sample / sampled
    found: _Found = []
    rank = 0
    for size in range(2, min(max_terms, len(candidates)) + 1):
        subsets = np.array(list(combinations(range(len(candidates)), size)), dtype=np.int64)
        chunk = max(1, (1 << 21) // ((1 + ELEMENTAL_STARTS) * sampled * size))
        for start in range(0, len(subsets), chunk):
            budget.check(STAGE)
            block = subsets[start : start + chunk]
            block_ranks = np.arange(rank + start, rank + start + len(block), dtype=np.int64)
            eigenvalues, weights, masks = _fit_subsets(
                sample, block, block_ranks, seed, keep, full_covariance
            )
            accepted = (eigenvalues <= tolerance_eig) & (np.abs(weights) >= MIN_WEIGHT).all(axis=1)
            for index in np.flatnonzero(accepted).tolist():
                accepted[index] = _terms_vary(sample, block[index], masks[index])
            for index in np.flatnonzero(accepted).tolist():
                found.append(
                    (
                        size,
                        float(eigenvalues[index]),
                        int(block_ranks[index]),
                        tuple(block[index].tolist()),
                        weights[index],
                        masks[index],
                    )
                )
        rank += len(subsets)
    # size, then the eigenvalue (<= ZERO_EIGENVALUE counts as 0: exact laws differ only
    # by rounding there), then the subset rank
    found.sort(key=lambda law: (law[0], 0.0 if law[1] <= ZERO_EIGENVALUE else law[1], law[2]))
    if memo:
        if len(_FITS) >= _MEMO_ENTRIES:
            del _FITS[0]
        _FITS.append((key, list(found)))
    return found


def law_sample_prefix(n_complete: int, sample_size: int) -> int:
    """The complete tasks the law sample is drawn from when there are more than
    ``sample_size``: the first ``max(sample_size, n // q * q)`` with the quantum
    ``q = 2 ** (floor(log2 n) - 3)``. They hold more than 7/8 of the tasks, and the count
    moves once per ``q`` new tasks, so a kiln cooled again after ``Kiln.extend`` keeps its
    sample (and its fits) between those steps."""
    if n_complete <= sample_size:
        return n_complete
    quantum = 1 << max(n_complete.bit_length() - 1 - 3, 0)
    return max(n_complete // quantum * quantum, sample_size)


def conservation_laws(
    values: Float64Array,
    tolerance_eig: float,
    seed: int,
    max_terms: int,
    sample_size: int,
    budget: Budget,
) -> list[dict[str, Any]]:
    """The laws as dicts with "metrics", "coefficients", "constant", "residual_std",
    "satisfied" (over the complete tasks), "tasks" (the complete tasks) and "support"."""
    metrics, _ = values.shape
    present = ~np.isnan(values)
    counters = np.array([is_counter(row[~np.isnan(row)]) for row in values], dtype=np.bool_)
    candidates, complete = _law_candidates(values, present, counters.reshape(metrics))
    tasks = np.flatnonzero(complete).astype(np.int64)
    if len(candidates) < 2 or tasks.size < MIN_TASKS:
        return []
    # the sample: a bottom-k sample of the first law_sample_prefix(...) complete tasks'
    # positions (the key of position i depends on (seed, i) only), so appending tasks
    # changes it only when that prefix moves
    if tasks.size <= sample_size:
        sample_rows = np.arange(tasks.size)
    else:
        seeds = np.array([seed], dtype=np.uint64)
        eligible = law_sample_prefix(tasks.size, sample_size)
        sample_rows = np.sort(smallest_positions(seeds, eligible, sample_size)[0])
    raw = np.ascontiguousarray(values[candidates][:, tasks].T)  # complete tasks x candidates
    means = np.empty(len(candidates))
    stds = np.empty(len(candidates))
    for k in range(len(candidates)):
        mean, sum_of_squares = mean_and_sum_of_squares(raw[sample_rows, k])
        means[k], stds[k] = mean, math.sqrt(sum_of_squares / sample_rows.size)
    # a candidate constant over the sample takes no part
    varies = np.isfinite(stds) & (stds > 0.0) & np.isfinite(means)
    if not varies.all():
        candidates = [c for c, keep in zip(candidates, varies.tolist(), strict=True) if keep]
        raw, means, stds = raw[:, varies], means[varies], stds[varies]
    if len(candidates) < 2:
        return []
    sample_raw = np.ascontiguousarray(raw[sample_rows])
    key = (tolerance_eig, seed, max_terms, sample_size, tuple(candidates))
    found = _fitted(key, sample_rows, sample_raw, means, stds, budget)

    laws: list[dict[str, Any]] = []
    basis: list[Float64Array] = []
    exact_sets: list[set[int]] = []  # the metrics of each exact law accepted so far
    # exact fits first (each group in its order): an exact law is known before the
    # approximate laws among fewer of its metrics
    found = sorted(found, key=lambda fit: bool(fit[1] > ZERO_EIGENVALUE))
    for _, eigenvalue, _, subset, weights, mask in found:
        columns_of_law = list(subset)
        trimmed_rows = sample_rows[mask]
        law_raw = raw[:, columns_of_law]
        coefficients = _law_coefficients(weights, stds[columns_of_law], law_raw[trimmed_rows])
        direction = np.zeros(metrics)
        direction[[candidates[k] for k in columns_of_law]] = (
            np.array(coefficients) * stds[columns_of_law]
        )
        remainder = direction.copy()
        for vector in basis:
            remainder -= float(vector @ remainder) * vector
        norm = float(np.linalg.norm(direction))
        remainder_norm = float(np.linalg.norm(remainder))
        # a noisy law's supersets sit within about sqrt(eigenvalue) of its span: implied too
        if remainder_norm < max(SPAN_TOLERANCE, math.sqrt(max(eigenvalue, 0.0))) * norm:
            continue
        residual = _combination(coefficients, law_raw)
        magnitude = _absolute_combination(coefficients, law_raw)
        constant = float(median(residual[trimmed_rows]))
        typical = float(median(magnitude[trimmed_rows]))
        if abs(constant) <= 1e-9 * typical:
            constant = 0.0
        band = law_band(residual[sample_rows])
        allowed = np.maximum(1e-9 * magnitude, band)
        satisfied = np.abs(residual - constant) <= allowed
        support = float(np.count_nonzero(satisfied)) / tasks.size
        if support < MIN_SUPPORT:
            continue
        # an approximate law among fewer of an exact law's metrics is a relation between its
        # other terms and these, not a second law (the Rust ``within_exact_law``)
        law_metrics = {candidates[k] for k in columns_of_law}
        exact = band <= 1e-9 * typical
        basis.append(remainder / remainder_norm)  # a law left out still implies its supersets
        if not exact and any(law_metrics < known for known in exact_sets):
            continue
        if exact:
            exact_sets.append(law_metrics)
        laws.append(
            {
                "metrics": [candidates[k] for k in columns_of_law],
                "coefficients": coefficients,
                "constant": constant,
                "residual_std": population_std(residual[satisfied]),
                "band": band,
                "satisfied": satisfied,
                "tasks": tasks.copy(),
                "support": support,
            }
        )
    return laws
