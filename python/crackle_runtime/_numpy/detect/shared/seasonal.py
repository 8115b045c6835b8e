"""A metric's cycle and its removal, the twin of the Rust core's
``detect::shared::seasonal`` (the method and its constants are documented there): the
period from the exact autocorrelation of the doubled mid-ranks (block sums for long
series), refined by phase dispersion minimisation (Stellingwerf 1978); each value minus the
median of its phase."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from crackle_runtime._numpy.detect.shared.ranks import doubled_midranks, median

__all__ = [
    "MAX_ABSENT",
    "atom_cycle",
    "atom_period",
    "find_cycle",
    "phase_group_count",
    "phase_groups",
    "remove_cycle",
    "remove_cycle_at",
    "seasonal_period",
    "shared_cycle",
    "shared_period_p",
    "step_free_ranks",
]

MIN_PERIOD = 4
MIN_CYCLES = 3
MAX_BLOCKS = 4096
MAX_BLOCK = 16
PEAK = 0.5  # autocorrelation at the period >= 1/2 (less over many cycles, see _limits)
TROUGH = 0.3  # some lag before it <= -3/10 (less over many cycles)
STEP_SHARE = 0.02  # a step explaining less of the ranks' variance: no second search
NOISE_SDS = 3.0  # the lowered limits stay this many of Bartlett's standard errors out
SHARED_ALPHA = 1e-3  # another metric's period is this metric's cycle at p <= 0.001 ...
SHARED_NEIGHBOURS = 8  # ... against this many Fourier frequencies on each side
ATOM_SHARE = (1, 2)  # a commonest value on at least half the values: atom_period searches
PHASE_GROUP_VALUES = 200  # a phase group holds at least this many values
MAX_PHASE_GROUPS = 24
MIN_PHASE_GROUPS = 4
PHASE_SPAN = 3  # a group spans at least this many phases
PHASE_SPREAD_RATIO = 2.0  # the widest group's MAD over the narrowest's
PHASE_ALPHA = 1e-3  # the level of the periodogram ratio test of the spread's cycle

Int64Array = NDArray[np.int64]
Float64Array = NDArray[np.float64]


def scaled_autocovariances(series: Int64Array, lags: range) -> list[int]:
    """The autocovariances of ``series`` at ``lags``, times n^2, as exact integers:
    n^2 sum s_j s_(j+k) - n S (sum_(j<n-k) s_j + sum_(j>=k) s_j) + (n - k) S^2."""
    n = series.size
    total = int(series.sum())
    prefix = np.concatenate(([0], np.cumsum(series)))
    out = []
    for k in lags:
        products = int(np.dot(series[: n - k], series[k:]))  # exact: int64 sums fit
        head, tail = int(prefix[n - k]), total - int(prefix[k])
        out.append(n * n * products - n * total * (head + tail) + (n - k) * total * total)
    return out


def per_present_pair(
    covariances: list[int], present: NDArray[np.bool_], block: int, blocks: int
) -> list[int]:
    """The autocovariances at lags 1, 2, ... rescaled to every task present (the Rust
    ``per_present_pair``): c_h (B - h) W_0 / (B W_h), W_h = sum w_i w_(i+h) over the blocks'
    present-task counts w, integer division toward zero; 0 when W_h = 0."""
    weights = present[: blocks * block].reshape(blocks, block).sum(axis=1).astype(np.int64)
    everything = int(np.dot(weights, weights))
    out = []
    for lag, covariance in enumerate(covariances, start=1):
        pairs = int(np.dot(weights[: blocks - lag], weights[lag:]))
        if pairs == 0:
            out.append(0)
            continue
        numerator = covariance * ((blocks - lag) * everything)
        denominator = blocks * pairs
        quotient = abs(numerator) // denominator  # toward zero, as Rust's i128 division
        out.append(quotient if numerator >= 0 else -quotient)
    return out


def phase_dispersion(
    ranks: Int64Array, period: int, present: NDArray[np.bool_] | None = None
) -> tuple[float, bool]:
    """((sum r^2 - sum_p S_p^2 / n_p) / (n - phases), every phase has a task) over the tasks
    ``present`` marks (all when None), phases without one left out, the phase terms summed
    in phase order."""
    phases = np.arange(ranks.size) % period
    if present is not None:
        ranks, phases = ranks[present], phases[present]
    counts_int = np.bincount(phases, minlength=period)
    seen = counts_int > 0
    sums = np.bincount(phases, weights=ranks, minlength=period)[seen]  # exact: < 2^53
    counts = counts_int[seen].astype(np.float64)
    between = float(np.cumsum(sums * sums / counts)[-1]) if sums.size else 0.0  # sequential
    squares = int(np.dot(ranks, ranks))
    dispersion = (float(squares) - between) / max(ranks.size - int(seen.sum()), 1)
    return dispersion, bool(seen.all())


def _limits(covariances: list[int], variance: int, blocks: int) -> tuple[list[float], list[float]]:
    """Per lag k (1-based, position k - 1): the autocorrelation a peak reaches and the one
    a trough goes below (Rust ``limits``): PEAK and TROUGH times min(1, sqrt(3 k / blocks))
    (a cycle seen many times swings less and still stands out), never below NOISE_SDS of
    Bartlett's standard error sqrt((1 + 2 sum_{j<k} r_j^2) / blocks), floats formed in
    this order."""
    scale = float(variance)
    peaks: list[float] = []
    troughs: list[float] = []
    squares = 0.0
    for lag, covariance in enumerate(covariances, 1):
        many = min(1.0, math.sqrt(MIN_CYCLES * lag / blocks))
        noise = NOISE_SDS * math.sqrt((1.0 + 2.0 * squares) / blocks)
        peaks.append(min(PEAK, max(PEAK * many, noise)))
        troughs.append(min(TROUGH, max(TROUGH * many, noise)))
        r = float(covariance) / scale
        squares += r * r
    return peaks, troughs


def seasonal_period(ranks: Int64Array, present: NDArray[np.bool_] | None = None) -> int | None:
    """The period of the cycle of ``ranks`` (doubled mid-ranks in task order), or None;
    with ``present`` (ranks placed at their tasks): the autocovariances per pair of present
    tasks (:func:`per_present_pair`) and the phase dispersion over the present tasks (the
    Rust ``seasonal_period_of``)."""
    n = ranks.size
    block = max(1, -(-n // MAX_BLOCKS))
    if block > MAX_BLOCK:
        return None
    blocks = n // block
    if blocks < MIN_CYCLES * MIN_PERIOD:
        return None
    sums = ranks[: blocks * block].reshape(blocks, block).sum(axis=1)
    (variance,) = scaled_autocovariances(sums, range(1))
    if variance <= 0:
        return None
    last = blocks // MIN_CYCLES
    covariances = scaled_autocovariances(sums, range(1, last + 1))
    if present is not None:
        covariances = per_present_pair(covariances, present, block, blocks)
    peaks, troughs = _limits(covariances, variance, blocks)
    scale = float(variance)
    best: tuple[int, int] | None = None
    trough: int | None = None
    for lag, covariance in zip(range(1, last + 1), covariances, strict=True):
        peak = float(covariance) >= peaks[lag - 1] * scale
        if trough is not None and peak and lag * block >= MIN_PERIOD:
            if best is None or covariance > best[1]:
                best = (lag, covariance)
        if trough is None and float(covariance) <= -troughs[lag - 1] * scale:
            trough = lag
    if best is None:
        return None
    first_trough = 0 if trough is None else trough
    # noise picks among the multiples of the period: the shortest lag / d (rounded) after
    # the first trough whose peak is at least 9/10 of the best
    lag, top = best
    for divisor in range(2, best[0] + 1):
        shorter = (2 * best[0] + divisor) // (2 * divisor)
        covariance = covariances[shorter - 1]
        if (
            shorter > first_trough
            and shorter * block >= MIN_PERIOD
            and float(covariance) >= peaks[shorter - 1] * scale
            and 10 * covariance >= 9 * top
        ):
            lag = shorter
    return _refined(ranks, lag * block, block, present)


def _refined(
    ranks: Int64Array, candidate: int, block: int, present: NDArray[np.bool_] | None
) -> int | None:
    """The period within ±(candidate / 50 + block + 1) of ``candidate`` with the least phase
    dispersion among those whose every phase is seen; None when the candidate has a phase
    never seen and fits better (the cycle cannot be removed)."""
    at_candidate, seen = phase_dispersion(ranks, candidate, present)
    reach = candidate // 50 + block + 1
    lowest = max(candidate - reach, MIN_PERIOD)
    highest = min(candidate + reach, ranks.size // MIN_CYCLES)
    chosen: tuple[int, float] | None = None
    for period in range(lowest, highest + 1):
        dispersion, complete = phase_dispersion(ranks, period, present)
        if complete and (chosen is None or dispersion < chosen[1]):
            chosen = (period, dispersion)
    if chosen is None or (not seen and at_candidate < chosen[1]):
        return None
    return chosen[0]


def atom_period(ranks: Int64Array) -> int | None:
    """The period of a cycle in the share of a metric's commonest value (at least
    ATOM_SHARE of its values; the Rust ``atom_period``): the periodogram ratio test
    (:func:`shared_period_p`'s) at every half Fourier step h / (2 B) of the B block sums of
    the centred ranks (h >= 2 MIN_CYCLES, period >= MIN_PERIOD, h < B) against the Fourier
    frequencies within SHARED_NEIGHBOURS steps, at least one step from it and from its
    harmonics; Bonferroni over the H frequencies tested (p H <= SHARED_ALPHA); the least p,
    or the shortest h = round(best / d) that also passes; the period of least phase
    dispersion between 2 N / (h + 1) and 2 N / (h - 1) (N = B block)."""
    n = ranks.size
    block = max(1, -(-n // MAX_BLOCKS))
    blocks = n // block
    if block > MAX_BLOCK or blocks < MIN_CYCLES * MIN_PERIOD:
        return None
    if int(np.bincount(ranks).max()) * ATOM_SHARE[1] < n * ATOM_SHARE[0]:
        return None
    span = blocks * block
    sums = (ranks[:span] - (n + 1)).reshape(blocks, block).sum(axis=1)
    # |sum x_t exp(-2 pi i h t / (2 B))|^2 at every half step h <= B
    power = np.abs(np.fft.rfft(sums.astype(np.float64), 2 * blocks)) ** 2
    h = np.arange(2 * MIN_CYCLES, min(blocks - 1, 2 * span // MIN_PERIOD) + 1)
    if h.size == 0:
        return None
    reach = SHARED_NEIGHBOURS
    k = (h // 2)[:, None] + np.arange(-reach, reach + 2)[None, :]
    doubled = 2 * k
    nearest = np.rint(doubled / h[:, None])
    keep = (k >= 1) & (doubled < blocks) & (k <= (h[:, None] + 1) // 2 + reach)
    keep &= np.abs(doubled - h[:, None]) >= 2
    keep &= (nearest < 2) | (np.abs(doubled - nearest * h[:, None]) >= 2)
    used = keep.sum(axis=1)
    noise = np.where(keep, power[np.clip(2 * k, 0, blocks)], 0.0).sum(axis=1)
    tested = (used > 0) & (noise > 0.0)
    m = np.maximum(used, 1).astype(np.float64)
    g = power[h] / np.where(tested, noise, 1.0) * m
    p = np.where(tested, np.minimum((1.0 + g / m) ** -m, 1.0), 1.0)
    passing = p * h.size <= SHARED_ALPHA
    if not passing.any():
        return None
    best = int(h[int(np.argmin(p))])
    chosen = best
    for divisor in range(2, best // (2 * MIN_CYCLES) + 1):
        shorter = (2 * best + divisor) // (2 * divisor)
        if shorter >= 2 * MIN_CYCLES and passing[shorter - 2 * MIN_CYCLES]:
            chosen = shorter
    lowest = max(MIN_PERIOD, 2 * span // (chosen + 1))
    highest = min(n // MIN_CYCLES, -(-2 * span // (chosen - 1)))
    found: tuple[int, float] | None = None
    for period in range(lowest, highest + 1):
        dispersion, _ = phase_dispersion(ranks, period)
        if found is None or dispersion < found[1]:
            found = (period, dispersion)
    return None if found is None else found[0]


def atom_cycle(
    values: Float64Array, ranks: Int64Array, length: int
) -> tuple[int, Float64Array] | None:
    """(period, values with the cycle removed) of a metric without gaps whose own search
    and the other metrics' periods found no cycle, from :func:`atom_period` (the Rust
    ``atom_cycle``); None with gaps, without one, or when the removal is not finite."""
    if values.size != length:
        return None
    period = atom_period(ranks)
    if period is None:
        return None
    removed = remove_cycle(values, period)
    if not np.all(np.isfinite(removed)):
        return None
    return period, removed


def remove_cycle(values: Float64Array, period: int) -> Float64Array:
    """Each value minus the median of the values at its phase (t mod ``period``), taken of
    the halved values and doubled (no overflow near the largest float)."""
    removed = remove_cycle_at(values, np.arange(values.size), period)
    return values.copy() if removed is None else removed


def remove_cycle_at(
    values: Float64Array, tasks: NDArray[np.int64], period: int
) -> Float64Array | None:
    """:func:`remove_cycle` of values recorded at the task positions ``tasks`` (ascending):
    a value's phase is its task mod ``period``; None when a phase has no value."""
    phases = tasks % period
    counts = np.bincount(phases, minlength=period)
    if counts.min() == 0:
        return None
    # the halved values grouped by phase (one stable sort, not one mask per phase)
    grouped = np.split(values[np.argsort(phases, kind="stable")] * 0.5, np.cumsum(counts)[:-1])
    profile = np.array([2.0 * float(median(group)) for group in grouped])
    return np.asarray(values - profile[phases], dtype=np.float64)


def step_free_ranks(values: Float64Array, ranks: Int64Array) -> Int64Array | None:
    """``values`` ranked within the two pieces cut at the least-squares location of one
    change of ``ranks`` (the first k in [n/10, n - n/10] maximising T_k^2 / (k (n - k)),
    T_k = n sum(ranks[:k]) - k sum(ranks); Hinkley 1970), each piece's doubled mid-ranks
    minus their mean L + 1 (the Rust ``step_free_ranks``): a step no longer hides the
    cycle's trough. None when the step explains less than STEP_SHARE of the ranks'
    variance, or the series is too short to cut."""
    n = ranks.size
    margin = max(n // 10, 1)
    if n < 2 * margin + 1:
        return None
    # exact in int64 for the lengths searched (n <= MAX_BLOCKS * MAX_BLOCK)
    total = int(ranks.sum())
    cuts = np.arange(margin, n - margin + 1, dtype=np.int64)
    prefix = np.cumsum(ranks, dtype=np.int64)[cuts - 1]
    t = (n * prefix - cuts * total).astype(np.float64)
    criterion = t * t / (cuts * (n - cuts)).astype(np.float64)
    best = int(np.argmax(criterion))  # the first maximiser
    spread = float(n * int(np.dot(ranks, ranks)) - total * total)
    if float(criterion[best]) < STEP_SHARE * spread:  # the step's share of the variance
        return None
    cut = int(cuts[best])
    pieces = (values[:cut], values[cut:])
    return np.concatenate([doubled_midranks(piece) - (piece.size + 1) for piece in pieces])


MAX_ABSENT = (1, 3)  # at most one task in three absent for the cycle search


def find_cycle(
    values: Float64Array, ranks: NDArray[np.int64], tasks: NDArray[np.int64], length: int
) -> tuple[int, Float64Array] | None:
    """(period, values with the cycle removed) of a metric recorded at ``tasks`` of
    ``length`` tasks (``ranks`` the values' doubled mid-ranks; see the Rust ``find_cycle``):
    without gaps, :func:`seasonal_period` of the ranks; with at most one task in three
    absent, of the ranks placed at their tasks with the mean rank count + 1 at the absent
    ones, removed by task phase; None otherwise, or when the removal is not finite."""
    count = values.size
    if count == length:
        period = seasonal_period(ranks)
        if period is None and count <= MAX_BLOCKS * MAX_BLOCK:  # longer: not searched
            free = step_free_ranks(values, ranks)
            period = None if free is None else seasonal_period(free)
        if period is None:
            return None
        removed: Float64Array | None = remove_cycle(values, period)
    else:
        if (length - count) * MAX_ABSENT[1] > length * MAX_ABSENT[0]:
            return None
        placed = np.full(length, count + 1, dtype=np.int64)
        placed[tasks] = ranks
        present = np.zeros(length, dtype=np.bool_)
        present[tasks] = True
        period = seasonal_period(placed, present)
        if period is None:
            return None
        removed = remove_cycle_at(values, tasks, period)
    if removed is None or not np.all(np.isfinite(removed)):
        return None
    return period, removed


def _tables(count: int) -> tuple[Float64Array, Float64Array]:
    """cos and sin of 2 pi i / count for i < count."""
    angles = 2.0 * math.pi * np.arange(count, dtype=np.float64) / count
    return np.cos(angles), np.sin(angles)


def _periodogram(
    centred: Int64Array, tables: tuple[Float64Array, Float64Array], step: int
) -> float:
    """(sum x_t cos theta_t)^2 + (sum x_t sin theta_t)^2, theta_t = 2 pi (t step mod count)
    / count read from the count-point ``tables`` (the Rust ``periodogram``)."""
    cosines, sines = tables
    index = (np.arange(centred.size, dtype=np.int64) * step) % cosines.size
    x = centred.astype(np.float64)
    re = float(x @ cosines[index])
    im = float(x @ sines[index])
    return re * re + im * im


def shared_period_p(centred: Int64Array, period: int) -> float:
    """The periodogram ratio test of a cycle of ``period`` tasks in ``centred`` (integers
    with mean 0, one per task): I(1/period) against the mean periodogram at the
    SHARED_NEIGHBOURS Fourier frequencies on each side at least one step away, below n/2;
    p = (1 + g/M)^-M, F(2, 2M) (Priestley 1981 §6.1.4). 1 without a neighbour or power."""
    n = centred.size
    at_period = _periodogram(centred, _tables(period), 1)
    lowest = max(n // period - SHARED_NEIGHBOURS, 0)
    highest = -(-n // period) + SHARED_NEIGHBOURS
    ks = [
        k
        for k in range(lowest, highest + 1)
        if k != 0 and 2 * k < n and abs(k * period - n) >= period
    ]
    tables = _tables(n)  # one n-point table for every Fourier frequency
    noise = sum(_periodogram(centred, tables, k) for k in ks)
    if not ks or noise <= 0.0:
        return 1.0
    m = float(len(ks))
    g = at_period / (noise / m)
    return float(min((1.0 + g / m) ** -m, 1.0))


def shared_cycle(
    values: Float64Array,
    ranks: Int64Array,
    tasks: NDArray[np.int64],
    length: int,
    periods: list[int],
) -> tuple[int, Float64Array] | None:
    """The cycle of a metric whose own search found none at one of ``periods`` (found on
    other metrics of the same ``length`` tasks; the Rust ``shared_cycle``): the period of
    least :func:`shared_period_p` on the ranks placed at their tasks (the first on ties),
    when at most SHARED_ALPHA, and the values with it removed by task phase."""
    count = values.size
    if length > MAX_BLOCKS * MAX_BLOCK or (length - count) * MAX_ABSENT[1] > length * MAX_ABSENT[0]:
        return None
    centred = np.zeros(length, dtype=np.int64)
    centred[tasks] = ranks - (count + 1)  # an absent task adds nothing
    best: tuple[int, float] | None = None
    for period in periods:
        if period < MIN_PERIOD or length < MIN_CYCLES * period:
            continue
        p = shared_period_p(centred, period)
        if best is None or p < best[1]:
            best = (period, p)
    if best is None or best[1] > SHARED_ALPHA:
        return None
    period = best[0]
    removed = remove_cycle_at(values, tasks, period)
    if removed is None or not np.all(np.isfinite(removed)):
        return None
    return period, removed


def _group_medians(values: Float64Array, group: Int64Array, groups: int) -> Float64Array:
    """The median of the values of each group 0..groups-1 (every group non-empty)."""
    ordered = values[np.lexsort((values, group))]
    sizes = np.bincount(group, minlength=groups)
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    low, high = ordered[starts + (sizes - 1) // 2], ordered[starts + sizes // 2]
    return np.asarray(np.where(sizes % 2 == 1, high, (low + high) / 2.0), dtype=np.float64)


def phase_group_count(period: int, count: int) -> int:
    """min(MAX_PHASE_GROUPS, period // PHASE_SPAN, count // PHASE_GROUP_VALUES), 0 below
    MIN_PHASE_GROUPS (the Rust ``phase_group_count``); task t is in group
    ``t % period * groups // period``."""
    groups = min(MAX_PHASE_GROUPS, period // PHASE_SPAN, count // PHASE_GROUP_VALUES)
    return groups if groups >= MIN_PHASE_GROUPS else 0


def phase_groups(column: Float64Array, period: int, start: int = 0) -> int:
    """The number of phase groups a metric's values (``column``, NaN when absent, the first
    task at phase ``start``) are best read in when their spread repeats a cycle of
    ``period`` tasks, 0 when it does not (the Rust ``phase_groups``: the groups' MADs differ
    by PHASE_SPREAD_RATIO and the deviations from the group medians repeat the cycle by
    :func:`shared_period_p` on the ranks of the deviations from the median at PHASE_ALPHA).
    """
    length = column.size
    if period < MIN_PERIOD or length > MAX_BLOCKS * MAX_BLOCK or length < MIN_CYCLES * period:
        return 0
    tasks = np.flatnonzero(~np.isnan(column))
    count = tasks.size
    groups = phase_group_count(period, count)
    if not groups:
        return 0
    group = (start + tasks) % period * groups // period
    if np.unique(group).size < groups:
        return 0
    values = column[tasks]
    centers = _group_medians(values, group, groups)
    deviations = np.abs(values - centers[group])
    spreads = _group_medians(deviations, group, groups)
    widest = float(spreads.max())
    if not (widest > 0.0 and widest >= PHASE_SPREAD_RATIO * float(spreads.min())):
        return 0
    if not deviations_repeat(column, tasks, period):
        return 0
    return int(groups)


def deviations_repeat(column: Float64Array, tasks: NDArray[np.int64], period: int) -> bool:
    """Whether the absolute deviations from the median of the present values (at ``tasks``)
    repeat the cycle: :func:`shared_period_p` of their doubled mid-ranks placed at their
    tasks at PHASE_ALPHA (the Rust ``deviations_repeat``)."""
    values = column[tasks]
    centred = np.zeros(column.size, dtype=np.int64)
    centred[tasks] = doubled_midranks(np.abs(values - median(values))) - (tasks.size + 1)
    return shared_period_p(centred, period) <= PHASE_ALPHA
