"""User cases (SPEC §12, §13): what a person reading the report of a realistic export must
see first, and what must not appear at all.

The CI export: 5,000 runs with a run id, an ISO start time, a branch, log-normal queue and
build times, a +25% build-time regression from run 3,000, 33 runner hiccups (3-8x build
time), a test count that steps once at run 2,000, Poisson retries and cache-hit flags.
"""

from __future__ import annotations

import numpy as np
import pytest

from crackle_runtime import Kiln, PatternKind

pd = pytest.importorskip("pandas")

RUNS, REGRESSION_AT, HICCUPS = 5000, 3000, 33


def ci_export(seed: int) -> tuple[object, set[str]]:
    rng = np.random.default_rng(seed)
    started = pd.Timestamp("2026-01-01") + pd.to_timedelta(
        np.cumsum(rng.exponential(600.0, RUNS)), unit="s"
    )
    build = np.exp(rng.normal(np.log(300.0), 0.15, RUNS))
    build[REGRESSION_AT:] *= 1.25
    hiccups = rng.choice(RUNS, HICCUPS, replace=False)
    build[hiccups] *= rng.uniform(3.0, 8.0, HICCUPS)
    frame = pd.DataFrame(
        {
            "run_id": np.arange(100_000, 100_000 + RUNS),
            "started": started.strftime("%Y-%m-%dT%H:%M:%S"),
            "branch": rng.choice(["main", "dev", "feature"], RUNS),
            "queue_s": np.exp(rng.normal(np.log(20.0), 0.8, RUNS)),
            "build_s": build,
            "tests": np.where(np.arange(RUNS) < 2000, 812.0, 830.0),
            "retries": rng.poisson(0.3, RUNS),
            "cache_hit": rng.random(RUNS) < 0.8,
        }
    )
    return frame, {str(100_000 + i) for i in hiccups}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_ci_regression_leads_the_overview_and_ids_never_appear(seed: int) -> None:
    frame, hiccups = ci_export(seed)
    report = Kiln.from_pandas(frame, label="run_id", order_by="started").cool()
    first = report.overview().incidents[0]
    (change,) = [c for c in first.changes if c.metric == "build_s"]
    assert first.position is not None and abs(first.position - REGRESSION_AT) <= 10
    assert 0.20 <= change.relative <= 0.30
    # the run id and the start time take part in no pattern
    assert not [p for p in report if {"run_id", "started"} & set(map(str, p.details.values()))]
    assert not [p for p in report if "run_id" in p.description or "started" in p.description]
    # runner hiccups are the build-time outliers; few other runs are
    outliers = {
        task
        for pattern in report.by_kind(PatternKind.OUTLIER)
        if "build_s" in pattern.details["metrics"]
        for task in pattern.involved_tasks
    }
    assert len(outliers & hiccups) >= 0.9 * HICCUPS
    assert len(outliers - hiccups) <= 0.01 * RUNS
