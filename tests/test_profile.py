"""Cooling rates and thermal profiles (SPEC §5)."""

from __future__ import annotations

import math

import pytest

from crackle_runtime import CoolingRate, InvalidProfileError, PatternKind, ThermalProfile

SEED_TABLE = {
    CoolingRate.FAST: (1.5, 0.5, 2, 0.3, 0.5),
    CoolingRate.NORMAL: (2.5, 0.7, 3, 0.5, 0.3),
    CoolingRate.SLOW: (4.0, 0.9, 5, 0.8, 0.1),
}


@pytest.mark.parametrize("rate", list(CoolingRate))
def test_cooling_rate_methods_have_the_seed_numbers(rate: CoolingRate) -> None:
    assert (
        rate.cluster_threshold(),
        rate.correlation_threshold(),
        rate.min_tasks_for_detection(),
        rate.phase_transition_sensitivity(),
        rate.conservation_tolerance(),
    ) == SEED_TABLE[rate]


@pytest.mark.parametrize(
    ("constructor", "rate", "duration"),
    [
        (ThermalProfile.default, CoolingRate.NORMAL, 60.0),
        (ThermalProfile.fast_cooling, CoolingRate.FAST, 10.0),
        (ThermalProfile.slow_cooling, CoolingRate.SLOW, 300.0),
    ],
)
def test_constructors(constructor, rate, duration) -> None:  # type: ignore[no-untyped-def]
    profile = constructor()
    assert profile.rate is rate
    assert profile.max_cooling_duration == duration
    assert (
        profile.cluster_threshold,
        profile.correlation_threshold,
        profile.min_tasks_for_detection,
        profile.phase_transition_sensitivity,
        profile.conservation_tolerance,
    ) == SEED_TABLE[rate]
    assert profile.fdr == 0.01
    assert profile.outlier_z == 3.5
    assert profile.detectors == frozenset(PatternKind)


def test_profile_is_an_immutable_value() -> None:
    assert ThermalProfile.default() == ThermalProfile.default()
    assert hash(ThermalProfile.default()) == hash(ThermalProfile.default())
    assert ThermalProfile.default() != ThermalProfile.fast_cooling()
    with pytest.raises(AttributeError):
        ThermalProfile.default().cluster_threshold = 3.0  # type: ignore[misc]


def test_no_detection_turns_every_detector_off() -> None:
    assert ThermalProfile.no_detection().detectors == frozenset()


def test_builders_switch_single_detectors() -> None:
    base = ThermalProfile.default()
    assert PatternKind.CLUSTERING not in base.without_clustering().detectors
    assert PatternKind.PHASE_TRANSITION not in base.without_phase_transitions().detectors
    assert PatternKind.CONSERVATION not in base.without_conservation().detectors
    assert PatternKind.CORRELATION not in base.without_correlations().detectors
    assert base.without(PatternKind.OUTLIER).detectors == frozenset(PatternKind) - {
        PatternKind.OUTLIER
    }
    assert base.only("correlation", PatternKind.CLUSTERING).detectors == {
        PatternKind.CORRELATION,
        PatternKind.CLUSTERING,
    }
    # builders return new values and leave the original alone
    assert base.detectors == frozenset(PatternKind)


def test_with_rate_resets_thresholds_and_keeps_the_rest() -> None:
    custom = (
        ThermalProfile.default()
        .with_thresholds(cluster_threshold=9.0, fdr=0.05, outlier_z=5.0)
        .with_max_cooling_duration(12.5)
        .without_clustering()
    )
    slow = custom.with_rate(CoolingRate.SLOW)
    assert slow.cluster_threshold == 4.0
    assert slow.correlation_threshold == 0.9
    assert slow.fdr == 0.05
    assert slow.outlier_z == 5.0
    assert slow.max_cooling_duration == 12.5
    assert PatternKind.CLUSTERING not in slow.detectors


def test_with_thresholds_overrides_by_name() -> None:
    profile = ThermalProfile.default().with_thresholds(
        correlation_threshold=0.8, min_tasks_for_detection=10, conservation_tolerance=0.05
    )
    assert profile.correlation_threshold == 0.8
    assert profile.min_tasks_for_detection == 10
    assert profile.conservation_tolerance == 0.05
    assert profile.cluster_threshold == 2.5


@pytest.mark.parametrize(
    "overrides",
    [
        {"cluster_threshold": -1.0},
        {"cluster_threshold": math.nan},
        {"cluster_threshold": 0.0},
        {"correlation_threshold": 0.0},
        {"correlation_threshold": 1.5},
        {"fdr": 0.0},
        {"fdr": 2.0},
        {"phase_transition_sensitivity": -0.1},
        {"conservation_tolerance": math.nan},
        {"outlier_z": 0.0},
        {"min_tasks_for_detection": -3},
        {"nonsense": 1.0},
    ],
)
def test_invalid_thresholds_raise(overrides: dict[str, float]) -> None:
    with pytest.raises(InvalidProfileError, match=next(iter(overrides))):
        ThermalProfile.default().with_thresholds(**overrides)


def test_invalid_duration_and_kinds_raise() -> None:
    with pytest.raises(InvalidProfileError, match="max_cooling_duration"):
        ThermalProfile.default().with_max_cooling_duration(0)
    with pytest.raises(InvalidProfileError, match="unknown pattern kind"):
        ThermalProfile.default().without("telepathy")
    with pytest.raises(InvalidProfileError, match="unknown cooling rate"):
        ThermalProfile.default().with_rate("lukewarm")
    assert issubclass(InvalidProfileError, ValueError)


def test_ignoring_leaves_metrics_out_of_every_detector() -> None:
    from crackle_runtime import Kiln

    profile = ThermalProfile.fast_cooling().ignoring("run_id")
    assert profile.ignored == frozenset({"run_id"})
    assert profile.ignoring("other").ignored == frozenset({"run_id", "other"})
    assert ThermalProfile.from_dict(profile.to_dict()) == profile
    kiln = Kiln(profile)
    for i in range(40):
        kiln.add_entry(f"t{i}", {"run_id": float(i), "x": float(i % 3), "y": float(i % 3) * 2})
    report = kiln.cool()
    assert report, "x and y still give patterns"
    for pattern in report:
        assert "run_id" not in pattern.description
        assert "run_id" not in str(pattern.details)
    assert any("'run_id' takes part in no detector: ignored" in note for note in report.notes)


@pytest.mark.parametrize("bad", ["", 3, None])
def test_ignoring_needs_names(bad: object) -> None:
    with pytest.raises(InvalidProfileError, match="ignored"):
        ThermalProfile.default().ignoring(bad)  # type: ignore[arg-type]


def test_permutations_are_bounded_by_the_kernels_limit() -> None:
    profile = ThermalProfile.default().with_thresholds(permutations=1_000_000)
    assert profile.permutations == 1_000_000
    for bad in (0, 1_000_001):
        with pytest.raises(InvalidProfileError, match="permutations must be between 1 and"):
            ThermalProfile.default().with_thresholds(permutations=bad)
