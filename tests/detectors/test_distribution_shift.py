"""The distribution shift detector (SPEC §6 ``DISTRIBUTION_SHIFT``, docs/kernels.md): the
best single change point of a metric's equal-width-binned values by the split statistic G,
the JSD of the two sides, their means, stds and medians, and a sequential permutation
p-value. References: the split gains and the permutation test written out with loops from
the contract, the information kernels of the NumPy backend."""

from __future__ import annotations

import math
from collections import Counter
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray
from references import MASK64, Columns, round_permutation, sequential_reference
from strategies import small_matrices

from crackle_runtime._numpy import info as numpy_info
from crackle_runtime._numpy.detect import distribution_shift

NAN, INF = math.nan, math.inf
SEED = 0x5EED_CAFE

Result = dict[str, NDArray[Any]]
# Every field but the test's: what thinning the test must leave unchanged.
EFFECT_FIELDS = (
    "count",
    "change_index",
    "statistic",
    "jsd",
    "mean_before",
    "mean_after",
    "std_before",
    "std_after",
    "median_before",
    "median_after",
    "tested",
)
SUMMARY_FIELDS = (*EFFECT_FIELDS[2:-1], "p_value")  # NaN when untested


def shift(
    kernels: ModuleType,
    columns: Columns,
    min_segment: int,
    permutations: int,
    seed: int,
    max_test_n: int,
) -> Result:
    result: Result = kernels.run_detector(
        "distribution_shift",
        columns,
        params={
            "min_segment": min_segment,
            "permutations": permutations,
            "seed": seed,
            "max_test_n": max_test_n,
        },
    )
    return result


def row(result: Result, metric: int) -> dict[str, Any]:
    """The fields of one metric, as Python numbers."""
    return {name: values[metric].item() for name, values in result.items()}


def split_gains_reference(codes: list[int], min_segment: int) -> list[float]:
    """G_k for k = min_segment..N - min_segment, written out from the contract."""

    def information(counts: Counter[int]) -> float:
        total = sum(counts.values())
        value = total * math.log(total) if total else 0.0
        return value - sum(n * math.log(n) for n in counts.values() if n)

    whole = information(Counter(codes))
    return [
        whole - information(Counter(codes[:k])) - information(Counter(codes[k:]))
        for k in range(min_segment, len(codes) - min_segment + 1)
    ]


def test_shift_statistic_and_summaries_follow_the_contract(kernels: ModuleType) -> None:
    rng = np.random.default_rng(3)
    values = np.concatenate([rng.normal(0, 1, 40), rng.normal(2, 1, 25)])
    stats = row(shift(kernels, values[None, :], 5, 50, SEED, 10_000), 0)
    bins = 8  # floor(2 cbrt(65)) = 8
    codes = numpy_info._own_range_indices(values, bins).tolist()
    gains = split_gains_reference(codes, 5)
    change = 5 + int(np.argmax(gains))
    assert stats["count"] == 65 and stats["tested"] is True
    assert stats["change_index"] == change
    assert stats["statistic"] == pytest.approx(max(gains), rel=1e-12)
    before, after = values[:change], values[change:]
    assert stats["jsd"] == pytest.approx(numpy_info.jsd(before, after, bins), rel=1e-12)
    summaries = [
        "mean_before",
        "mean_after",
        "std_before",
        "std_after",
        "median_before",
        "median_after",
    ]
    assert [stats[name] for name in summaries] == (
        pytest.approx(
            [
                before.mean(),
                after.mean(),
                before.std(),
                after.std(),
                np.median(before),
                np.median(after),
            ],
            rel=1e-12,
        )
    )
    assert 1 <= stats["perms_run"] <= 50
    assert 0.0 < stats["p_value"] <= 1.0


def test_shift_in_spread_is_found_at_the_change(kernels: ModuleType) -> None:
    rng = np.random.default_rng(11)
    values = np.concatenate([rng.normal(0, 1, 300), rng.normal(0, 3, 300)])
    stats = row(shift(kernels, values[None, :], 20, 199, SEED, 10_000), 0)
    assert stats["tested"] is True
    assert abs(stats["change_index"] - 300) <= 30
    assert stats["p_value"] < 1e-3
    assert stats["std_after"] > 2 * stats["std_before"]
    # the medians hardly move: not a mean shift
    assert abs(stats["median_after"] - stats["median_before"]) < 1.0


def test_shift_on_thinned_series_still_finds_the_change(kernels: ModuleType) -> None:
    rng = np.random.default_rng(5)
    values = np.concatenate([rng.exponential(1.0, 1500), rng.normal(1.0, 0.1, 1500)])
    full = shift(kernels, values[None, :], 20, 99, SEED, 10_000)
    thinned = shift(kernels, values[None, :], 20, 99, SEED, 400)
    # effect sizes use every value: identical; only the test differs
    for name in EFFECT_FIELDS:
        np.testing.assert_array_equal(full[name], thinned[name], err_msg=name)
    assert abs(full["change_index"][0] - 1500) <= 15
    assert full["p_value"][0] < 1e-6 and thinned["p_value"][0] < 1e-6


def test_iid_series_are_rarely_significant(kernels: ModuleType) -> None:
    columns = np.vstack([np.random.default_rng(seed).normal(size=600) for seed in range(20)])
    result = shift(kernels, columns, 20, 199, SEED, 10_000)
    assert result["tested"].all()
    assert np.count_nonzero(result["p_value"] < 0.05) <= 3
    assert np.all(result["p_value"] > 1e-3)


def test_shift_untested_rows(kernels: ModuleType) -> None:
    columns = np.array(
        [
            [1.0] * 30,  # constant
            [float(i) for i in range(9)] + [NAN] * 21,  # too few values
            [float(i % 7) for i in range(30)],  # tested
        ]
    )
    result = shift(kernels, columns, 5, 20, SEED, 10_000)
    assert result["count"].tolist() == [30, 9, 30]
    assert result["tested"].tolist() == [False, False, True]
    # untested: change_index -1, no permutation run, NaN statistics
    assert result["change_index"][:2].tolist() == [-1, -1]
    assert result["perms_run"][:2].tolist() == [0, 0]
    for name in SUMMARY_FIELDS:
        assert np.isnan(result[name][:2]).all(), name
        assert not np.isnan(result[name][2]), name
    empty = shift(kernels, np.zeros((0, 5)), 5, 20, SEED, 10_000)
    assert all(values.shape == (0,) for values in empty.values())


def test_shift_is_reproducible_and_depends_on_the_seed(kernels: ModuleType) -> None:
    columns = np.random.default_rng(2).normal(size=(3, 200))
    first = shift(kernels, columns, 10, 199, SEED, 10_000)
    again = shift(kernels, columns, 10, 199, SEED, 10_000)
    for name, values in first.items():
        np.testing.assert_array_equal(values, again[name], err_msg=name)
    other = shift(kernels, columns, 10, 199, SEED + 1, 10_000)
    for name in ("count", "change_index", "statistic", "jsd"):
        np.testing.assert_array_equal(first[name], other[name], err_msg=name)
    assert not np.array_equal(first["p_value"], other["p_value"])


@pytest.mark.parametrize(
    ("arguments", "name"),
    [
        ((0, 10, 1, 100), "min_segment"),
        ((5, 0, 1, 100), "permutations"),
        ((5, 10, -1, 100), "seed"),
        ((5, 10, 1 << 64, 100), "seed"),
        ((5, 10, 1, 19), "max_test_n"),  # below 4 * min_segment
    ],
)
def test_shift_arguments_are_validated(
    kernels: ModuleType, arguments: tuple[int, int, int, int], name: str
) -> None:
    with pytest.raises(ValueError, match=rf"^{name}"):
        shift(kernels, np.ones((1, 40)), *arguments)


@pytest.mark.parametrize(
    ("count", "max_test_n", "mean_after"),
    [(70, 10_000, 1.5), (130, 40, 0.8)],  # a tail after 60 rounds; a stop after 39
)
def test_shift_p_value_is_the_sequential_permutation_test(
    kernels: ModuleType, count: int, max_test_n: int, mean_after: float
) -> None:
    rng = np.random.default_rng(count)
    half = count // 2
    values = np.concatenate([rng.normal(0, 1, half), rng.normal(mean_after, 1, count - half)])
    columns = np.vstack([rng.normal(size=count), values])
    budget, min_segment = 60, 6
    stats = row(shift(kernels, columns, min_segment, budget, SEED, max_test_n), 1)
    bins = 8 if count < 100 else 10  # floor(2 cbrt(70)) = 8, floor(2 cbrt(130)) = 10
    codes = numpy_info._own_range_indices(values, bins).tolist()
    if count > max_test_n:
        codes = codes[:: -(-count // max_test_n)]
    observed = max(0.0, *split_gains_reference(codes, min_segment))

    def permuted(r: int) -> float:
        order = round_permutation(SEED, 0, r, len(codes))  # every metric: family 0
        return max(0.0, *split_gains_reference([codes[i] for i in order], min_segment))

    assert distribution_shift.SHIFT_TEST_FAMILY == 0
    p_value, runs = sequential_reference(observed, permuted, budget)
    assert stats["perms_run"] == runs and runs == (60 if count == 70 else 39)
    assert stats["p_value"] == pytest.approx(p_value, rel=1e-9)


@settings(max_examples=60)
@given(
    columns=small_matrices(),
    min_segment=st.integers(1, 6),
    permutations=st.sampled_from([1, 7, 40]),
    seed=st.integers(0, MASK64),
    thin=st.booleans(),
)
def test_shifts_keep_their_invariants_on_random_input(
    kernels: ModuleType,
    columns: Columns,
    min_segment: int,
    permutations: int,
    seed: int,
    thin: bool,
) -> None:
    present = ~np.isnan(columns)
    test_n = 4 * min_segment + 3 if thin else 10_000
    result = shift(kernels, columns, min_segment, permutations, seed, test_n)
    assert all(values.shape == (columns.shape[0],) for values in result.values())
    assert result["count"].tolist() == present.sum(axis=1).tolist()
    tested = result["tested"]
    assert (result["change_index"][~tested] == -1).all()
    assert (result["perms_run"][~tested] == 0).all()
    for name in SUMMARY_FIELDS:
        assert np.isnan(result[name][~tested]).all(), name
    change, count = result["change_index"][tested], result["count"][tested]
    assert np.all((change >= min_segment) & (change <= count - min_segment))
    p_value, perms_run = result["p_value"][tested], result["perms_run"][tested]
    assert np.all((p_value > 0) & (p_value <= 1) & (perms_run >= 1))
    assert np.all((perms_run <= permutations) & (result["statistic"][tested] >= 0))
    jsd = result["jsd"][tested]
    assert np.all((jsd >= 0) & (jsd <= 1))
