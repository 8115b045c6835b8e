"""Information flow (SPEC §6 ``INFORMATION_FLOW``, §12): transfer entropy from one metric to
another at source delay 1..3, conditioned on the target's immediate past (Wibral et al.
2013), significantly above the reverse direction; tested against circular time shifts of
the source (they keep its autocorrelation), in the report's FDR pass. The kernel reads each
metric as its AR(p) innovations (``prewhiten`` = 1, as ``DetectionData.prewhitened``
would), so autocorrelation, drift and a shared trend, step or daily cycle give no flow
(SPEC §12); the transfer entropies are those of the innovations.

A flow is a claim about time's direction, so it must also pass the time-reversal test
(time-reversed Granger causality: Haufe et al. 2013; Winkler et al. 2016): the net flow
must turn around when the series are read backward in time. Two views of one process
with different noise (a p50 and a p99 latency) give a transfer entropy from the quieter
to the noisier one in both directions of time, so they are not reported as a lead. The
test's p-value is the larger of the surrogate and direction p-values (an
intersection–union test, Berger 1982).
"""

from __future__ import annotations

from typing import Any

from crackle_runtime import _backend
from crackle_runtime.detectors._base import Detector, Findings, Result, Test, flagged
from crackle_runtime.detectors._data import DetectionData
from crackle_runtime.patterns import CracklePattern, PatternKind
from crackle_runtime.profile import ThermalProfile

__all__ = ["DETECTOR"]


def _params(profile: ThermalProfile) -> dict[str, Any]:
    # a direction is tested only for a p-value that can be a discovery (at most the FDR)
    return {
        "permutations": int(profile.permutations),
        "prewhiten": 1,
        "direction_alpha": float(profile.fdr),
    }


def _p_value(result: Result, row: int) -> float:
    """The claim's p-value: dependence at a delay (surrogates) and forward in time."""
    return max(float(result["p_value"][row]), float(result["direction_p"][row]))


def _pattern(data: DetectionData, result: Result, row: int) -> CracklePattern | None:
    def field(name: str) -> float:
        return float(result[name][row])

    te, te_reverse = field("te"), field("te_reverse")
    if not te > te_reverse:
        return None
    i, j = int(result["i"][row]), int(result["j"][row])
    lag = int(result["best_lag"][row])
    source, target = data.names[i], data.names[j]
    return CracklePattern(
        PatternKind.INFORMATION_FLOW,
        f"'{source}' leads '{target}' by {lag} task(s): transfer entropy "
        f"{te:.3f} bits vs {te_reverse:.3f} bits in reverse",
        data.pair_tasks(i, j),
        te / (te + te_reverse) if te + te_reverse > 0 else 0.0,
        {
            "transfer_entropy": te,
            "reverse_transfer_entropy": te_reverse,
            "net_transfer_entropy": te - te_reverse,
            "lag": float(lag),
            "p_value": _p_value(result, row),
            "surrogate_p_value": field("p_value"),
            "direction_p_value": field("direction_p"),
            "time_reversed_net_transfer_entropy": field("te_time_reversed")
            - field("te_reverse_time_reversed"),
            "bins": field("bins"),
            "permutations": field("perms_run"),
            "n": field("n"),
        },
        {"source": source, "target": target, "lag": lag, "metrics": [source, target]},
    )


def _findings(data: DetectionData, result: Result, params: dict[str, Any]) -> Findings:
    found = Findings()
    tested = flagged(result, "tested")
    if not tested:
        min_values = _backend.kernels().DETECTORS["information_flow"]["params"]["min_values"]
        found.skipped = f"no metric pair has {min_values} or more tasks with both"
        return found
    found.tests = [
        Test(
            PatternKind.INFORMATION_FLOW,
            _p_value(result, row),
            lambda row=row: _pattern(data, result, row),  # type: ignore[misc]
        )
        for row in tested
    ]
    return found


DETECTOR = Detector(
    "information_flow",
    PatternKind.INFORMATION_FLOW,
    _params,
    _findings,
    pairwise=True,
    min_tasks="min_values",
)
