"""The exact detectors' result tables from a mergeable state (SPEC §14), plus a filtering
pass over a few buckets of the data.

Conservation, correlation and phase transition read only the state's summaries; phase
transition also reads the values of at most a few buckets per metric (the one holding the
halves' split, the buckets whose bound admits a better change point than the best found,
the one holding that change point). Each function returns the same named fields as the
detector's kernel (``src-rust/detect/<kind>.rs``) with the same values up to rounding
(~1e-12 relative; p-values of metrics offset far from zero agree to the precision their
means carry), so the detector's own wording module turns them into the same patterns.

Which detectors are exact from the state and which are recomputed over every task is
listed in :data:`FROM_STATE`; the others (column roles, conservation laws, clustering,
outliers, distribution shift, dependence, information flow) read the whole matrix.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from crackle_runtime._numpy._stats import student_t_two_sided_p
from crackle_runtime._numpy.state import STATE_SERIES_FIELDS, merge_series, series_of
from crackle_runtime._state import CoolingState
from crackle_runtime.detectors._data import DetectionData

__all__ = ["FROM_STATE", "tables_from_state"]

Table = dict[str, NDArray[Any]]

# the kernels' constants (src-rust/detect/*.rs), one name each
_ZERO_MEAN_RELATIVE = 1e-12
_MIN_COUNTER_VALUES = 8
_MIN_COUNTER_DISTINCT = 3
_MIN_TESTED_HALF = 4
_SIGNIFICANCE = 0.01
_MAX_RHO = 0.97
_MIN_TESTED_PAIRS = 10
_MIN_DIFFERENCED_PAIRS = 4
# a bucket is read when its bound reaches the best score found within this relative margin
# (the bound and the scores are computed in floating point)
_BOUND_MARGIN = 1e-9


class _Series:
    """One series summary (the state's SERIES_FIELDS row) read by name; merged by the
    NumPy twin's Series::merge."""

    __slots__ = ("count", "first", "lag", "last", "m2", "offset", "range", "row")

    def __init__(self, row: list[float]) -> None:
        self.row = row
        self.count, self.offset, self.m2, self.lag, self.first, self.last = row[:6]
        self.range = row[11]

    @classmethod
    def of(cls, values: NDArray[np.float64]) -> _Series:
        return cls(series_of(values))

    @classmethod
    def empty(cls) -> _Series:
        return cls(series_of(np.empty(0)))

    @property
    def mean(self) -> float:
        return self.first + self.offset

    def merge(self, following: _Series) -> _Series:
        return _Series(merge_series(self.row, following.row))


# --- conservation ----------------------------------------------------------------------------


def conservation_table(state: CoolingState, metrics: list[int], params: Mapping[str, Any]) -> Table:
    """conservation_stats (src-rust/detect/conservation.rs) from the state's series."""
    tolerance = float(params["tolerance"])
    s = state.series
    rows: dict[str, list[Any]] = {
        k: [] for k in ("count", "total", "mean", "std", "cv", "is_counter", "detected")
    }
    for k in metrics:
        count = float(s["count"][k])
        if count == 0:
            values: tuple[Any, ...] = (0, 0.0, math.nan, math.nan, math.nan, False, False)
        else:
            mean = float(s["first"][k]) + float(s["mean_offset"][k])
            std = math.sqrt(float(s["m2"][k]) / count)
            cv = math.nan if mean == 0.0 else std / abs(mean)
            counter = (
                count >= _MIN_COUNTER_VALUES
                and (s["non_decreasing"][k] != 0.0 or s["non_increasing"][k] != 0.0)
                and float(s["changes"][k]) + 1.0 >= _MIN_COUNTER_DISTINCT
            )
            largest = max(abs(float(s["min"][k])), abs(float(s["max"][k])))
            detected = (
                count >= 2
                and abs(mean) > _ZERO_MEAN_RELATIVE * largest
                and cv < tolerance
                and not counter
            )
            values = (int(count), mean * count, mean, std, cv, counter, detected)
        for key, value in zip(rows, values, strict=True):
            rows[key].append(value)
    return _table(rows, ints=("count",), bools=("is_counter", "detected"))


# --- correlation -----------------------------------------------------------------------------


def _pair_rows(state: CoolingState, block: str, a: int, b: int) -> dict[str, float]:
    """The pair series of state metrics a and b (x = a, y = b) from ``block``."""
    m = len(state.names)
    i, j = min(a, b), max(a, b)
    index = i * m - i * (i + 1) // 2 + (j - i - 1)
    fields = getattr(state, block)
    row = {key: float(values[index]) for key, values in fields.items()}
    if a > b:
        row = {
            (key[:-1] + ("y" if key[-1] == "x" else "x")) if key[-2:] in ("_x", "_y") else key: v
            for key, v in row.items()
        }
    return row


def _r(row: dict[str, float]) -> float:
    if row["count"] < 2 or row["min_x"] == row["max_x"] or row["min_y"] == row["max_y"]:
        return 0.0
    if row["m2_x"] == 0.0 or row["m2_y"] == 0.0:
        return 0.0
    return max(-1.0, min(1.0, row["comoment"] / math.sqrt(row["m2_x"] * row["m2_y"])))


def differenced_p_value(pair: dict[str, float], differences: dict[str, float]) -> float:
    """differenced_p_value (src-rust/detect/correlation.rs) from the pair's summaries."""
    if pair["count"] < _MIN_DIFFERENCED_PAIRS:
        return math.nan
    r = _r(differences)
    n_d = differences["count"]

    def lag1(axis: str) -> float:
        squares = differences[f"m2_{axis}"]
        return 0.0 if squares == 0.0 or n_d < 2 else differences[f"lag_{axis}"] / squares

    product = lag1("x") * lag1("y")
    n_eff = min(max(n_d * (1.0 - product) / (1.0 + product), 3.0), n_d)
    if abs(r) >= 1.0:
        return 0.0
    df = n_eff - 2.0
    return student_t_two_sided_p(r * math.sqrt(df / (1.0 - r * r)), df)


def correlation_table(state: CoolingState, metrics: list[int], params: Mapping[str, Any]) -> Table:
    """correlation_stats (src-rust/detect/correlation.rs) from the state's pair series."""
    threshold = float(params["threshold"])
    rows: dict[str, list[Any]] = {k: [] for k in ("i", "j", "n", "r", "p_value", "detected")}
    for i in range(len(metrics)):
        for j in range(i + 1, len(metrics)):
            pair = _pair_rows(state, "pairs", metrics[i], metrics[j])
            n = int(pair["count"])
            r = _r(pair)
            p_value = math.nan
            if abs(r) >= threshold:
                p_value = differenced_p_value(
                    pair, _pair_rows(state, "differences", metrics[i], metrics[j])
                )
            detected = (
                n >= 3
                and abs(r) >= threshold
                and (n < _MIN_TESTED_PAIRS or p_value < _SIGNIFICANCE)
            )
            for key, value in zip(rows, (i, j, n, r, p_value, detected), strict=True):
                rows[key].append(value)
    return _table(rows, ints=("i", "j", "n"), bools=("detected",))


# --- phase transition ------------------------------------------------------------------------


class _Buckets:
    """One metric's bucket series in task order, with the filtering pass over its column."""

    def __init__(self, state: CoolingState, metric: int, column: NDArray[np.float64]) -> None:
        b = state.buckets
        self.column = column
        self.size = state.bucket_size
        self.first_bucket = state.first_bucket
        self.start = state.start
        count = b["count"][:, metric]
        self.present = np.flatnonzero(count > 0)
        rows = np.stack([b[field][self.present, metric] for field in STATE_SERIES_FIELDS], axis=1)
        self.series = [_Series(row) for row in rows.tolist()]
        self.counts = np.array([s.count for s in self.series])
        self.before = np.concatenate([[0.0], np.cumsum(self.counts)])  # values before each
        self.prefix: list[_Series] = []
        acc = _Series.empty()
        for s in self.series:
            acc = acc.merge(s)
            self.prefix.append(acc)
        self.suffix: list[_Series] = [acc] * len(self.series)
        acc = _Series.empty()
        for index in range(len(self.series) - 1, -1, -1):
            acc = self.series[index].merge(acc)
            self.suffix[index] = acc

    def values(self, index: int) -> NDArray[np.float64]:
        """The present values of the index-th non-empty bucket (the filtering pass)."""
        bucket = self.first_bucket + int(self.present[index])
        low = max(bucket * self.size, self.start) - self.start
        high = min((bucket + 1) * self.size - self.start, self.column.size)
        values = self.column[low:high]
        return values[~np.isnan(values)]

    def split(self, k: int) -> tuple[_Series, _Series]:
        """The summaries of the first k values and of the rest."""
        index = int(np.searchsorted(self.before, k, side="right")) - 1
        empty = _Series.empty()
        if index >= len(self.series):
            return self.prefix[-1], empty
        before = self.prefix[index - 1] if index > 0 else empty
        after = self.suffix[index + 1] if index + 1 < len(self.series) else empty
        inside = k - int(self.before[index])
        if inside == 0:
            return before, self.suffix[index]
        values = self.values(index)
        return before.merge(_Series.of(values[:inside])), _Series.of(values[inside:]).merge(after)


def _best_change(buckets: _Buckets, whole: _Series) -> int:
    """best_change_index: the k in 1..N-1 maximising S_k² N / (k (N - k)), S_k the sum of
    the first k values minus the mean (first k on ties): exact at bucket boundaries, and
    inside the buckets whose bound admits a higher score."""
    n = whole.count
    candidates: list[tuple[float, int]] = []

    def score(partial: float, k: float) -> float:
        return partial * partial * n / (k * (n - k))

    for prefix in buckets.prefix:
        k = prefix.count
        if 1 <= k <= n - 1:
            # S_k = k (mean_prefix - mean) with both means relative to the first value
            candidates.append((score(k * (prefix.offset - whole.offset), k), int(k)))
    best = max((s for s, _ in candidates), default=-math.inf)
    bounds = []
    for index, s in enumerate(buckets.series):
        c = s.count
        if c < 2:
            continue
        k0 = buckets.before[index]
        partial0 = k0 * (buckets.prefix[index - 1].offset - whole.offset) if index > 0 else 0.0
        shift = abs((s.first - whole.first) + s.offset - whole.offset)
        reach = abs(partial0) + buckets.series[index].range + c * shift
        denominator = min((k0 + 1) * (n - k0 - 1), (k0 + c - 1) * (n - k0 - c + 1))
        if denominator <= 0:
            continue
        bounds.append((reach * reach * n / denominator, index, partial0))
    for bound, index, partial0 in sorted(bounds, reverse=True):
        if bound < best * (1.0 - _BOUND_MARGIN):
            break
        values = buckets.values(index)
        k0 = int(buckets.before[index])
        partials = partial0 + np.cumsum((values[:-1] - whole.first) - whole.offset)
        ks = k0 + np.arange(1, values.size, dtype=np.float64)
        inside = ks <= n - 1
        scores = partials[inside] ** 2 * n / (ks[inside] * (n - ks[inside]))
        if scores.size:
            top = int(np.argmax(scores))  # the first k of the bucket's highest score
            candidates.append((float(scores[top]), int(ks[inside][top])))
            best = max(best, float(scores[top]))
    if not candidates:
        return 1
    highest = max(s for s, _ in candidates)
    return min(k for s, k in candidates if s == highest)


def _inflation(before: _Series, after: _Series) -> float:
    """autocorrelation_inflation (src-rust/detect/phase_transition.rs) from the summaries
    of the values before and after the change."""
    energy = before.m2 + after.m2
    if energy <= 0.0:
        return 1.0
    seam = ((before.last - before.first) - before.offset) * (-after.offset)
    rho = (before.lag + after.lag + seam) / energy
    rho = min(max(rho + 2.0 * (1.0 + 3.0 * rho) / (before.count + after.count), 0.0), _MAX_RHO)
    return (1.0 + rho) / (1.0 - rho)


def _welch(a: _Series, b: _Series, inflation: float) -> float:
    """welch_t_test_inflated (src-rust/stats.rs) from the halves' summaries."""
    if a.count < 2 or b.count < 2:
        return math.nan
    na, nb = a.count, b.count
    weight_a = a.m2 / (na - 1.0) / na
    weight_b = b.m2 / (nb - 1.0) / nb
    total = weight_a + weight_b
    difference = (a.first - b.first) + (a.offset - b.offset)
    if total == 0.0:
        return 1.0 if difference == 0.0 else 0.0
    t = difference / math.sqrt(total * inflation)
    share_a, share_b = weight_a / total, weight_b / total
    df = 1.0 / (share_a * share_a / (na - 1.0) + share_b * share_b / (nb - 1.0)) / inflation
    return student_t_two_sided_p(t, df)


def phase_transition_table(
    state: CoolingState,
    metrics: list[int],
    params: Mapping[str, Any],
    columns: list[NDArray[np.float64]],
) -> Table:
    """phase_transition_stats (src-rust/detect/phase_transition.rs) from the state's bucket
    series and a filtering pass over a few buckets of ``columns`` (the metrics' values)."""
    sensitivity = float(params["sensitivity"])
    s = state.series
    keys = (
        "count",
        "first_avg",
        "second_avg",
        "mean_all",
        "shift",
        "p_value",
        "change_index",
        "delta",
        "detected",
    )
    rows: dict[str, list[Any]] = {k: [] for k in keys}
    for metric, column in zip(metrics, columns, strict=True):
        count = int(s["count"][metric])
        if count < 2:
            values: tuple[Any, ...] = (count, *([math.nan] * 5), -1, math.nan, False)
        else:
            buckets = _Buckets(state, metric, column)
            whole = buckets.prefix[-1]
            first, second = buckets.split(count // 2)
            mean_all = float(s["first"][metric]) + float(s["mean_offset"][metric])
            delta = (second.first - first.first) + (second.offset - first.offset)
            largest = max(abs(float(s["min"][metric])), abs(float(s["max"][metric])))
            shift = (
                math.nan
                if abs(mean_all) <= _ZERO_MEAN_RELATIVE * largest
                else abs(delta) / abs(mean_all)
            )
            change = _best_change(buckets, whole)
            inflation = _inflation(*buckets.split(change))
            p_value = _welch(first, second, inflation)
            tested = first.count >= _MIN_TESTED_HALF and second.count >= _MIN_TESTED_HALF
            detected = shift > sensitivity and (not tested or p_value < _SIGNIFICANCE)
            values = (
                count,
                first.mean,
                second.mean,
                mean_all,
                shift,
                p_value,
                change,
                delta,
                detected,
            )
        for key, value in zip(keys, values, strict=True):
            rows[key].append(value)
    return _table(rows, ints=("count", "change_index"), bools=("detected",))


def _table(rows: Mapping[str, list[Any]], ints: tuple[str, ...], bools: tuple[str, ...]) -> Table:
    table: Table = {}
    for key, values in rows.items():
        dtype = np.int64 if key in ints else np.bool_ if key in bools else np.float64
        table[key] = np.array(values, dtype=dtype)
    return table


# --- the loop's hook -------------------------------------------------------------------------

#: The detectors whose result comes from the state (exact); every other detector reads
#: every task.
FROM_STATE = ("phase_transition", "conservation", "correlation")


def tables_from_state(
    state: CoolingState,
) -> dict[str, Callable[[DetectionData, Mapping[str, Any]], Table]]:
    """For each detector of :data:`FROM_STATE`, a function of the cooling loop's view and
    parameters returning the kernel's table from ``state`` (over the same metrics, by name)."""
    index = {name: k for k, name in enumerate(state.names)}

    def metrics_of(view: DetectionData) -> list[int]:
        return [index[name] for name in view.names]

    def phase(view: DetectionData, params: Mapping[str, Any]) -> Table:
        columns = [view.column(k) for k in range(len(view.names))]
        return phase_transition_table(state, metrics_of(view), params, columns)

    return {
        "phase_transition": phase,
        "conservation": lambda view, params: conservation_table(state, metrics_of(view), params),
        "correlation": lambda view, params: correlation_table(state, metrics_of(view), params),
    }
