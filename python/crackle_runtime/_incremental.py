"""The exact detectors' result tables from a mergeable state (SPEC §14).

Conservation (near-constant metrics) reads only the state's per-metric summaries. Phase
transition and correlation come from the backend's ``table_from_state``
(``src-rust/state/tables.rs`` and its NumPy twin): the state's bucket and pair summaries
plus a filtering pass over a few buckets of the values (the buckets holding the halves'
split and the best change point, those whose bound admits a better change point) and, for
a correlation's p-value, the latest 10,000 tasks having both metrics. Each returns the same
named fields as its kernel (``src-rust/detect/<kind>.rs``) with the same values up to
rounding (~1e-12 relative), so the detector's own wording module turns them into the same
patterns.

Which detectors come from the state is listed in :data:`FROM_STATE`; the others read the
whole matrix.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from crackle_runtime import _backend
from crackle_runtime._state import CoolingState
from crackle_runtime.detectors._data import DetectionData
from crackle_runtime.profile import ThermalProfile

__all__ = ["FROM_STATE", "Gathered", "tables_from_state"]

Table = dict[str, NDArray[Any]]

# the kernels' constants (src-rust/detect/*.rs), one name each
_ZERO_MEAN_RELATIVE = 1e-12
_MIN_COUNTER_VALUES = 8
_MIN_COUNTER_DISTINCT = 3


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
    gathered: Gathered | None = None,
) -> dict[str, Callable[[DetectionData, Mapping[str, Any]], Table]]:
    """For each detector of :data:`FROM_STATE`, a function of the cooling loop's view and
    parameters returning the kernel's table from ``state`` (over the same metrics, by name).

    Without ``gathered`` the view's matrix holds every task of the state. With it, the
    filtering pass reads the gathered rows instead, and the view holds other tasks (those
    at ``gathered.view_positions``, which include each metric's change): a phase
    transition's ``change_index`` is then counted among the view's values."""
    index = {name: k for k, name in enumerate(state.names)}

    def metrics_of(view: DetectionData) -> list[int]:
        return [index[name] for name in view.names]

    def from_kernel(name: str) -> Callable[[DetectionData, Mapping[str, Any]], Table]:
        def table(view: DetectionData, params: Mapping[str, Any]) -> Table:
            metrics = metrics_of(view)
            selected = np.asarray(metrics, dtype=np.int64)
            kernels = _backend.kernels()
            if gathered is not None:
                result: Table = kernels.table_from_state(
                    name,
                    state.flat,
                    gathered.columns,
                    selected,
                    params,
                    gathered.positions,
                    gathered.short_tail,
                )
                if name == "phase_transition":
                    result["change_index"] = gathered.view_changes(
                        state, metrics, view, result["change_index"]
                    )
                return result
            rows = np.arange(len(metrics)) if view.rows is None else view.rows
            if view.matrix.shape != (len(state.names), state.tasks) or list(rows) != metrics:
                raise ValueError(f"{name}: the view does not read the state's matrix")
            result = kernels.table_from_state(name, state.flat, view.matrix, selected, params)
            return result

        return table

    return {
        "phase_transition": from_kernel("phase_transition"),
        "conservation": lambda view, params: conservation_table(state, metrics_of(view), params),
        "correlation": from_kernel("correlation"),
    }


@dataclass(frozen=True)
class Gathered:
    """The rows a cluster's client gathered for the filtering pass: ``columns`` (the
    state's metrics x the gathered tasks, NaN = absent) at the task positions ``positions``
    (ascending), and the positions of the tasks the cooling loop's view holds."""

    columns: NDArray[np.float64]
    positions: NDArray[np.int64]
    view_positions: NDArray[np.int64]
    # a correlation's p-value may read fewer than the latest 10,000 tasks having both
    # metrics: the client gathered no more of the latest tasks than its bound
    short_tail: bool = False

    def change_position(self, state: CoolingState, metric: int, change: int) -> int:
        """The task position of the ``change``-th present value of state metric ``metric``
        (-1 when out of range), found from the state's per-bucket counts and the gathered
        bucket holding it (the filtering pass always gathers that bucket)."""
        counts = np.cumsum(state.buckets["count"][:, metric])
        if not 0 <= change < (counts[-1] if counts.size else 0):
            return -1
        bucket = int(np.searchsorted(counts, change, side="right"))
        before = int(counts[bucket - 1]) if bucket else 0
        low = max((state.first_bucket + bucket) * state.bucket_size, state.start)
        high = min(low - low % state.bucket_size + state.bucket_size, state.start + state.tasks)
        at = np.searchsorted(self.positions, [low, high])
        values = self.columns[metric, at[0] : at[1]]
        present = self.positions[at[0] : at[1]][~np.isnan(values)]
        if at[1] - at[0] != high - low:
            raise ValueError(f"gathered: the bucket of tasks [{low}, {high}) was not gathered")
        return int(present[change - before])

    def view_changes(
        self,
        state: CoolingState,
        metrics: list[int],
        view: DetectionData,
        changes: NDArray[Any],
    ) -> NDArray[np.int64]:
        """``changes`` (present-value indices over every task, one per metric) as indices
        among the view's present values; -1 where the change is not in the view."""
        out = np.asarray(changes, dtype=np.int64).copy()
        for row, metric in enumerate(metrics):
            position = self.change_position(state, metric, int(out[row]))
            having = self.view_positions[view.present(row)]
            at = int(np.searchsorted(having, position))
            found = position >= 0 and at < having.size and having[at] == position
            out[row] = at if found else -1
        return out


@dataclass(frozen=True)
class Outliers:
    """The outlier detector's flagged (task, metric) rows over runs of tasks scored apart
    (a cluster's partitions), by task position and metric name, and the scale each run
    chose for each metric and the cycle it read the metric's phases in (0: none)."""

    positions: NDArray[np.int64]
    metrics: list[str]
    severity: NDArray[np.float64]
    deviation: NDArray[np.float64]
    scales: dict[str, list[int]]
    periods: dict[str, list[int]] = field(default_factory=dict)
    #: Each row's scale (that of the piece of the run that scored it).
    row_scale: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    #: Each row's reach of neighbours (a persistent metric's reading; 0: none).
    row_reach: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    #: Each row's run of consecutive tasks flagged together (1: on its own).
    run_length: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    @classmethod
    def of_run(
        cls,
        names: list[str],
        columns: NDArray[np.float64],
        start: int,
        profile: ThermalProfile,
        families: list[int],
    ) -> tuple[Outliers, NDArray[np.int64]]:
        """The outliers of the tasks ``columns`` (metrics ``names`` x tasks, the first at
        position ``start``), fenced within the segments between their change points as the
        cooling loop does, Bonferroni over at least ``families[k]`` values of metric k
        (its present values in every run, as one machine counts them); and the positions
        of each metric's most severe (at most ``MAX_PER_METRIC``: every task a report of
        all the runs can name is among them)."""
        from crackle_runtime.detectors import _cooling
        from crackle_runtime.detectors.outlier import most_severe

        data = DetectionData([""] * columns.shape[1], names, columns)
        family = np.asarray(families, dtype=np.int64)
        task, metric, severity, deviation, row_scale, row_reach = [], [], [], [], [], []
        run_length: list[NDArray[np.int64]] = []
        scales = np.full(len(names), -1, dtype=np.int64)
        periods = np.zeros(len(names), dtype=np.int64)
        for count in np.unique(family).tolist():
            group = family == count
            result = _cooling.segmented_result("outlier", data.select(group), profile, count)
            chosen = np.flatnonzero(group)
            task.append(np.asarray(result["task"], dtype=np.int64))
            metric.append(chosen[np.asarray(result["metric"], dtype=np.int64)])
            severity.append(np.asarray(result["severity"], dtype=np.float64))
            deviation.append(np.asarray(result["deviation"], dtype=np.float64))
            if "row_scale" in result:
                row_scale.append(np.asarray(result["row_scale"], dtype=np.int64))
            else:  # one kernel run: each row's scale is its metric's
                row_scale.append(np.asarray(result["scale"], dtype=np.int64)[result["metric"]])
            rows = np.asarray(result["task"]).size
            row_reach.append(np.asarray(result.get("row_reach", np.zeros(rows)), dtype=np.int64))
            run_length.append(np.asarray(result["run_length"], dtype=np.int64))
            scales[chosen] = np.asarray(result["scale"], dtype=np.int64)
            periods[chosen] = np.asarray(result.get("period", 0), dtype=np.int64)
        if not task:
            task = metric = row_scale = row_reach = run_length = [np.zeros(0, dtype=np.int64)]
            severity = deviation = [np.zeros(0)]
        tasks, metrics = np.concatenate(task), np.concatenate(metric)
        order = np.lexsort((metrics, tasks))
        tasks, metrics = tasks[order], metrics[order]
        severities = np.concatenate(severity)[order]
        found = cls(
            tasks + start,
            [names[k] for k in metrics.tolist()],
            severities,
            np.concatenate(deviation)[order],
            {name: [int(scale)] for name, scale in zip(names, scales.tolist(), strict=True)},
            {name: [int(p)] for name, p in zip(names, periods.tolist(), strict=True)},
            np.concatenate(row_scale)[order],
            np.concatenate(row_reach)[order],
            np.concatenate(run_length)[order],
        )
        return found, np.unique(tasks[most_severe(metrics, severities)]).astype(np.int64) + start

    @classmethod
    def merged(cls, runs: list[Outliers]) -> Outliers:
        """The rows and scales of every run."""
        scales: dict[str, list[int]] = {}
        periods: dict[str, list[int]] = {}
        for run in runs:
            for name, chosen in run.scales.items():
                scales.setdefault(name, []).extend(chosen)
            for name, cycle in run.periods.items():
                periods.setdefault(name, []).extend(cycle)
        return cls(
            np.concatenate([run.positions for run in runs]),
            [name for run in runs for name in run.metrics],
            np.concatenate([run.severity for run in runs]),
            np.concatenate([run.deviation for run in runs]),
            scales,
            periods,
            np.concatenate([run.row_scale for run in runs]),
            np.concatenate([run.row_reach for run in runs]),
            np.concatenate([run.run_length for run in runs]),
        )

    def scale(self, name: str) -> int:
        """The scale most runs that scored metric ``name`` chose (-1, as the kernel says of a
        metric with fewer than 3 values, when none scored it)."""
        chosen = [scale for scale in self.scales.get(name, []) if scale >= 0]
        return int(np.bincount(chosen).argmax()) if chosen else -1

    def period(self, name: str) -> int:
        """The cycle most runs read metric ``name``'s phases in (0: none, or no run)."""
        return Counter(self.periods.get(name, [0])).most_common(1)[0][0]

    def tasks_flagged(self, names: set[str]) -> int:
        """How many tasks have an outlier on one of the metrics ``names``."""
        on = np.array([name in names for name in self.metrics], dtype=bool)
        return int(np.unique(self.positions[on]).size)

    def table(self, view: DetectionData, view_positions: NDArray[np.int64]) -> Table:
        """The outlier kernel's table over the view (the tasks at ``view_positions``): the
        rows of its metrics at its tasks, sorted by task then metric."""
        index = {name: k for k, name in enumerate(view.names)}
        metric = np.array([index.get(name, -1) for name in self.metrics], dtype=np.int64)
        at = np.searchsorted(view_positions, self.positions)
        inside = at < view_positions.size
        inside[inside] = view_positions[at[inside]] == self.positions[inside]
        keep = inside & (metric >= 0)
        task, metric = at[keep].astype(np.int64), metric[keep]
        order = np.lexsort((metric, task))
        return {
            "task": task[order],
            "metric": metric[order],
            "severity": self.severity[keep][order],
            "deviation": self.deviation[keep][order],
            "scale": np.array([self.scale(name) for name in view.names], dtype=np.int64),
            "period": np.array([self.period(name) for name in view.names], dtype=np.int64),
            "row_scale": self.row_scale[keep][order],
            "row_reach": self.row_reach[keep][order],
            "run_length": self.run_length[keep][order],
        }


#: The most violators of a law a cluster's report lists (the most severe; the count is
#: every task's).
MAX_LAW_VIOLATIONS = 1_000


@dataclass(frozen=True)
class LawCheck:
    """A conservation law fitted on a sample (a cluster's client), to be checked on every
    task: a task having every metric in ``required`` (the law detector's candidates, its
    "complete" tasks) satisfies it when ``|sum_k c_k x_k - constant| <= max(1e-9 sum_k
    |c_k x_k|, band)``, the band being the detector's (the pattern's metric ``band``: 3.5
    robust standard deviations of the residuals over the sample it fitted the law on,
    ``evaluate_law``)."""

    names: list[str]
    coefficients: list[float]
    constant: float
    band: float

    @classmethod
    def of(cls, pattern: Any) -> LawCheck:
        """The check of a law pattern: its terms, constant and band."""
        names = [str(name) for name in pattern.details["metrics"]]
        coefficients = [float(pattern.metrics[f"coef:{name}"]) for name in names]
        metrics = pattern.metrics
        return cls(names, coefficients, float(metrics["constant"]), float(metrics["band"]))

    def tally(
        self, values: Mapping[str, NDArray[np.float64]], complete: NDArray[np.bool_]
    ) -> LawTally:
        """The law over a run of tasks (``values`` per metric, ``complete`` the tasks having
        every required metric)."""
        from crackle_runtime._numpy.detect.conservation_laws import (
            _absolute_combination,
            _combination,
        )

        at = np.flatnonzero(complete)
        raw = np.column_stack([values[name][at] for name in self.names])
        residual = _combination(self.coefficients, raw)
        allowed = np.maximum(1e-9 * _absolute_combination(self.coefficients, raw), self.band)
        off = np.abs(residual - self.constant)
        satisfied = off <= allowed
        held = residual[satisfied] - self.constant
        severity = np.divide(off, allowed, out=np.full(off.size, np.inf), where=allowed > 0)
        worst = np.flatnonzero(~satisfied)
        worst = worst[np.argsort(-severity[worst], kind="stable")[:MAX_LAW_VIOLATIONS]]
        return LawTally(
            int(at.size),
            int(held.size),
            float(held.sum()),
            float((held * held).sum()),
            at[worst].astype(np.int64),
            severity[worst],
        )


@dataclass
class LawTally:
    """A law over a run of tasks: complete and satisfying tasks, the sums of the satisfying
    residuals (less the constant) and their squares, and the most severe violators (task
    offsets, severities: how many times the allowed distance)."""

    complete: int
    held: int
    total: float
    squares: float
    violators: NDArray[np.int64]
    severity: NDArray[np.float64]
    labels: list[str] | None = None  # the violators' labels, when known

    @classmethod
    def merged(cls, runs: list[LawTally], starts: list[int]) -> LawTally:
        """The tally of the runs together (their violators at task positions, the runs'
        first tasks being ``starts``), keeping the most severe violators."""
        violators = np.concatenate([r.violators + s for r, s in zip(runs, starts, strict=True)])
        severity = np.concatenate([r.severity for r in runs])
        labels = [label for r in runs for label in (r.labels or [""] * r.violators.size)]
        worst = np.argsort(-severity, kind="stable")[:MAX_LAW_VIOLATIONS]
        worst = worst[np.argsort(violators[worst], kind="stable")]  # in task order
        return cls(
            sum(r.complete for r in runs),
            sum(r.held for r in runs),
            math.fsum(r.total for r in runs),
            math.fsum(r.squares for r in runs),
            violators[worst].astype(np.int64),
            severity[worst],
            [labels[k] for k in worst.tolist()],
        )

    @property
    def residual_std(self) -> float:
        """The population std of the satisfying residuals (NaN when none)."""
        if self.held == 0:
            return math.nan
        mean = self.total / self.held
        return math.sqrt(max(self.squares / self.held - mean * mean, 0.0))
