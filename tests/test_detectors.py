"""The seed's four detectors through the public API, on both backends (SPEC §6, §9)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from crackle_runtime import (
    ClusteringPattern,
    ConservationPattern,
    CoolingTimeoutError,
    CorrelationPattern,
    Kiln,
    PatternKind,
    PhaseTransitionPattern,
    ThermalProfile,
)

SEED_ONLY = (
    PatternKind.CLUSTERING,
    PatternKind.PHASE_TRANSITION,
    PatternKind.CONSERVATION,
    PatternKind.CORRELATION,
)


def _kiln(profile: ThermalProfile | None = None) -> Kiln:
    return Kiln((profile or ThermalProfile.default()).only(*SEED_ONLY))


# --- clustering ---------------------------------------------------------------------------
def test_cluster_found() -> None:
    labels = ["a", "b", "c", "far"]
    metrics = [{"x": 1.0, "y": 1.0}, {"x": 1.5, "y": 1.0}, {"x": 1.0, "y": 1.5}, {"x": 50.0}]
    (pattern,) = ClusteringPattern.detect(labels, metrics, 2.5)
    assert pattern.kind is PatternKind.CLUSTERING
    assert pattern.involved_tasks == ("a", "b", "c")
    avg = (0.5 + 0.5 + math.sqrt(0.5)) / 3
    assert pattern.metrics["avg_distance"] == pytest.approx(avg, rel=1e-12)
    assert pattern.metrics["cluster_size"] == 3.0
    assert pattern.confidence == pytest.approx(1 - avg / 2.5, rel=1e-12)
    assert (
        pattern.description
        == f"3 tasks clustered together in metric space (avg distance: {avg:.3f})"
    )


def test_no_cluster_when_everything_is_far_apart() -> None:
    metrics = [{"x": 0.0}, {"x": 10.0}, {"x": 20.0}]
    assert ClusteringPattern.detect(["a", "b", "c"], metrics, 2.5) == []


def test_too_few_tasks_detect_nothing() -> None:
    kiln = _kiln()
    kiln.add_entry("a", {"x": 1.0})
    kiln.add_entry("b", {"x": 1.0})
    report = kiln.cool()
    assert list(report) == []
    assert report.skipped  # the report says why


@pytest.mark.parametrize("order", [(0, 1, 2), (0, 2, 1), (2, 0, 1), (1, 2, 0)])
def test_clustering_is_order_independent_connected_components(order: tuple[int, ...]) -> None:
    # a-b and b-c are within the threshold, a-c is not: one component whatever the order
    # (the seed's greedy clustering split this chain depending on recording order).
    points = {"a": 0.0, "b": 2.0, "c": 4.0}
    names = ["a", "b", "c"]
    labels = [names[i] for i in order]
    (pattern,) = ClusteringPattern.detect(labels, [{"x": points[k]} for k in labels], 2.5)
    assert sorted(pattern.involved_tasks) == ["a", "b", "c"]
    assert pattern.involved_tasks == tuple(labels)  # recording order
    assert pattern.metrics["avg_distance"] == pytest.approx((2 + 2 + 4) / 3)


def test_tasks_sharing_no_metric_are_not_joined() -> None:
    labels = ["a", "b"]
    assert ClusteringPattern.detect(labels, [{"x": 1.0}, {"y": 1.0}], 2.5) == []


def test_metric_distance() -> None:
    assert ClusteringPattern.metric_distance({"x": 0.0, "y": 0.0}, {"x": 3.0, "y": 4.0}) == 5.0
    assert ClusteringPattern.metric_distance({"x": 0.0, "z": 100.0}, {"x": 3.0}) == 3.0
    assert ClusteringPattern.metric_distance({"x": 0.0}, {"y": 1.0}) == math.inf
    assert ClusteringPattern.metric_distance({}, {}) == math.inf


def test_distance_equal_to_threshold_does_not_join() -> None:
    assert ClusteringPattern.detect(["a", "b"], [{"x": 0.0}, {"x": 2.5}], 2.5) == []


# --- correlation ------------------------------------------------------------------------
def test_pearson_correlation_cases() -> None:
    assert CorrelationPattern.pearson_correlation([(1, 2), (2, 4), (3, 6)]) == pytest.approx(1.0)
    assert CorrelationPattern.pearson_correlation([(1, 6), (2, 4), (3, 2)]) == pytest.approx(-1.0)
    assert CorrelationPattern.pearson_correlation([(1, 5), (2, 5), (3, 5)]) == 0.0
    assert CorrelationPattern.pearson_correlation([(1, 5)]) == 0.0
    assert CorrelationPattern.pearson_correlation([]) == 0.0


def test_pearson_is_exact_on_offset_data() -> None:
    # Raw-sum formulas lose every digit here; the centered two-pass formula does not.
    base = np.array([0.1, 0.4, 0.2, 0.9, 0.5])
    other = np.array([1.0, 3.0, 2.5, 4.0, 2.0])
    expected = float(np.corrcoef(base, other)[0, 1])
    offset = 1e9 + base
    r = CorrelationPattern.pearson_correlation(zip(offset, other, strict=True))
    assert r == pytest.approx(expected, rel=1e-6)


def test_correlation_found_with_tasks_having_both_and_p_value() -> None:
    rng = np.random.default_rng(3)
    kiln = _kiln()
    x = rng.normal(size=40)
    for i in range(40):
        metrics = {"x": float(x[i]), "y": float(2 * x[i] + rng.normal(scale=0.1))}
        if i % 4 == 0:
            del metrics["y"]
        kiln.add_entry(f"t{i}", metrics)
    kiln.add_entry("z-only", {"z": 1.0})
    (pattern,) = kiln.cool().by_kind(PatternKind.CORRELATION)
    assert pattern.description.startswith("strong positive correlation between 'x' and 'y'")
    # the seed listed the first n labels; involved are the tasks having both metrics
    assert pattern.involved_tasks == tuple(f"t{i}" for i in range(40) if i % 4)
    assert pattern.metrics["n"] == 30
    assert pattern.metrics["p_value"] < 1e-10
    assert pattern.confidence == pytest.approx(abs(pattern.metrics["correlation"]))
    assert pattern.details["metrics"] == ["x", "y"]


def test_weak_correlation_not_reported() -> None:
    rng = np.random.default_rng(5)
    labels = [f"t{i}" for i in range(200)]
    metrics = [{"a": float(v), "b": float(w)} for v, w in rng.normal(size=(200, 2))]
    assert CorrelationPattern.detect(labels, metrics, 0.7) == []


def test_negative_correlation_description() -> None:
    labels = [f"t{i}" for i in range(5)]
    metrics = [{"a": float(i), "b": float(-3 * i)} for i in range(5)]
    (pattern,) = CorrelationPattern.detect(labels, metrics, 0.7)
    assert pattern.description == "strong negative correlation between 'a' and 'b' (r = -1.000)"


# --- phase transition -------------------------------------------------------------------
def test_phase_transition_found() -> None:
    labels = [f"t{i}" for i in range(8)]
    values = [1.0, 1.0, 1.0, 1.0, 10.0, 10.0, 10.0, 10.0]
    (pattern,) = PhaseTransitionPattern.detect(labels, [{"m": v} for v in values], 0.5)
    shift = 9 / 5.5
    assert pattern.description == (
        f"metric 'm' shifted by {shift * 100:.1f}% between first and second half of tasks"
    )
    assert pattern.metrics["shift_magnitude"] == pytest.approx(shift)
    assert pattern.metrics["first_half_avg"] == 1.0
    assert pattern.metrics["second_half_avg"] == 10.0
    assert pattern.metrics["delta"] == 9.0
    assert pattern.metrics["change_index"] == 4
    assert pattern.metrics["p_value"] == 0.0  # both halves constant, means differ
    assert pattern.details == {"metric": "m", "change_label": "t4"}
    assert pattern.confidence == 1.0


def test_phase_transition_not_found_on_stable_metric() -> None:
    labels = [f"t{i}" for i in range(6)]
    assert PhaseTransitionPattern.detect(labels, [{"m": 5.0}] * 6, 0.5) == []


def test_zero_mean_noise_is_not_a_phase_transition() -> None:
    # The seed divided by the overall mean and reported shifts of hundreds of percent here.
    rng = np.random.default_rng(11)
    labels = [f"t{i}" for i in range(400)]
    metrics = [{"noise": float(v)} for v in rng.normal(0.0, 1.0, 400)]
    stats = PhaseTransitionPattern.detect(labels, metrics, 0.5)
    assert stats == []


def test_phase_transition_change_index_and_welch_p_value() -> None:
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(2)
    values = np.concatenate([rng.normal(10, 1, 30), rng.normal(20, 1, 50)])
    labels = [f"t{i}" for i in range(80)]
    (pattern,) = PhaseTransitionPattern.detect(labels, [{"m": float(v)} for v in values], 0.3)
    assert pattern.metrics["change_index"] == 30
    assert pattern.details["change_label"] == "t30"
    expected = stats.ttest_ind(values[40:], values[:40], equal_var=False).pvalue
    assert pattern.metrics["p_value"] == pytest.approx(expected, rel=1e-9)


def test_seed_readme_shift_is_38_5_percent() -> None:
    kiln = _kiln(ThermalProfile.fast_cooling())
    for reading, sid in [(22.5, "sensor-1"), (23.1, "sensor-2"), (45.2, "sensor-3")]:
        kiln.add_entry(sid, {"value": reading})
    (pattern,) = kiln.cool().by_kind(PatternKind.PHASE_TRANSITION)
    assert "shifted by 38.5%" in pattern.description
    assert math.isnan(pattern.metrics["p_value"])  # a half with a single value


# --- conservation -----------------------------------------------------------------------
def test_conservation_found() -> None:
    labels = [f"t{i}" for i in range(4)]
    values = [100.0, 100.0, 100.5, 99.5]
    (pattern,) = ConservationPattern.detect(labels, [{"energy": v} for v in values], 0.3)
    std = float(np.std(values))
    assert pattern.description == (
        f"metric 'energy' is conserved across 4 tasks (sum: 400.000, std_dev: {std:.3f})"
    )
    assert pattern.metrics["total"] == 400.0
    assert pattern.metrics["std_dev"] == pytest.approx(std)
    assert pattern.metrics["coefficient_of_variation"] == pytest.approx(std / 100.0)
    assert pattern.confidence == pytest.approx(1 - std / 100.0)
    assert pattern.involved_tasks == tuple(labels)


def test_conservation_not_found() -> None:
    labels = [f"t{i}" for i in range(4)]
    assert ConservationPattern.detect(labels, [{"m": v} for v in (1.0, 50, 3, 100)], 0.3) == []


def test_counters_and_ids_are_not_conserved() -> None:
    labels = [f"t{i}" for i in range(100)]
    metrics = [{"task_id": 1000.0 + i, "countdown": 5000.0 - i} for i in range(100)]
    # both have cv < 0.3 but are monotonic with many distinct values: ids / counters
    assert ConservationPattern.detect(labels, metrics, 0.3) == []


def test_short_monotonic_series_may_still_be_conserved() -> None:
    labels = [f"t{i}" for i in range(7)]
    metrics = [{"m": 100.0 + i * 0.1} for i in range(7)]
    assert len(ConservationPattern.detect(labels, metrics, 0.3)) == 1


def test_all_zero_metric_is_neither_conserved_nor_shifted() -> None:
    kiln = _kiln()
    for i in range(10):
        kiln.add_entry(f"t{i}", {"zero": 0.0})
    kinds = {p.kind for p in kiln.cool()}
    assert PatternKind.CONSERVATION not in kinds
    assert PatternKind.PHASE_TRANSITION not in kinds


# --- the whole kiln -----------------------------------------------------------------------
def test_no_seed_artifacts_in_pattern_metrics() -> None:
    kiln = _kiln(ThermalProfile.fast_cooling())
    for i in range(20):
        kiln.add_entry(f"t{i}", {"a": float(i % 3), "b": float(2 * (i % 3)), "c": 5.0})
    for pattern in kiln.cool():
        assert not {"metric_name_hash", "metric_a_len", "metric_b_len"} & set(pattern.metrics)


def test_profile_switches_turn_detectors_off() -> None:
    def cooled(profile: ThermalProfile) -> set[PatternKind]:
        kiln = Kiln(profile)
        for i in range(12):
            kiln.add_entry(f"t{i}", {"a": float(i < 6), "b": 2.0 * float(i < 6), "c": 5.0})
        return {p.kind for p in kiln.cool()}

    everything = cooled(ThermalProfile.fast_cooling().only(*SEED_ONLY))
    assert set(SEED_ONLY) <= everything
    assert PatternKind.CLUSTERING not in cooled(ThermalProfile.fast_cooling().without_clustering())
    assert cooled(ThermalProfile.no_detection()) == set()
    assert cooled(ThermalProfile.fast_cooling().only(PatternKind.CORRELATION)) == {
        PatternKind.CORRELATION
    }


def test_time_budget_is_respected() -> None:
    rng = np.random.default_rng(0)
    profile = ThermalProfile.default().only(*SEED_ONLY).with_max_cooling_duration(1e-9)
    kiln = Kiln(profile)
    kiln.add_matrix(rng.normal(size=(2000, 4)), ["a", "b", "c", "d"])
    report = kiln.cool()
    assert {kind for kind, _ in report.incomplete} == set(SEED_ONLY)
    kiln = Kiln(profile)
    kiln.add_matrix(rng.normal(size=(2000, 4)), ["a", "b", "c", "d"])
    with pytest.raises(CoolingTimeoutError):
        kiln.cool(on_timeout="raise")
    assert not kiln.is_cooled


def test_cool_returns_sorted_report() -> None:
    kiln = _kiln(ThermalProfile.fast_cooling())
    for i in range(30):
        kiln.add_entry(f"t{i}", {"a": float(i >= 15), "b": float(i >= 15) * 3 + 1, "c": 7.0})
    report = kiln.cool()
    confidences = [p.confidence for p in report]
    assert confidences == sorted(confidences, reverse=True)
    assert kiln.cool() is report
