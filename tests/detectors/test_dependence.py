"""The dependence detector (SPEC §6 ``DEPENDENCE``, docs/kernels.md): per metric pair, the
plug-in and Miller–Madow mutual information of quantile bins, the information coefficient,
the range of y's mean over the x-bins and a sequential permutation p-value, for pairs whose
|r| stays below ``threshold_r``. References: scikit-learn's ``mutual_info_score``, and the
mutual information and permutation test written out with loops from the contract."""

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
from references import MASK64, Columns, round_shift, row, sequential_reference
from sklearn.metrics import mutual_info_score
from strategies import small_matrices

from crackle_runtime._numpy.detect import dependence as numpy_dependence
from crackle_runtime._numpy.detect.shared.ranks import rank_bins

NAN, INF = math.nan, math.inf
SEED = 0x5EED_CAFE

Result = dict[str, NDArray[Any]]
# The fields of a tested pair only (NaN, or 0 runs, when untested).
TEST_FIELDS = ("mi", "mi_corrected", "p_value", "info_coef", "effect")


def dependence(
    kernels: ModuleType,
    columns: Columns,
    threshold_r: float,
    min_pairs: int,
    permutations: int,
    seed: int,
    max_test_n: int,
) -> Result:
    result: Result = kernels.run_detector(
        "dependence",
        columns,
        params={
            "threshold_r": threshold_r,
            "min_pairs": min_pairs,
            "permutations": permutations,
            "seed": seed,
            "max_test_n": max_test_n,
        },
    )
    return result


def mutual_information_reference(x: list[int], y: list[int]) -> float:
    n = len(x)

    def entropy(counts: Counter[Any]) -> float:
        return -sum(c / n * math.log2(c / n) for c in counts.values())

    joint = Counter(zip(x, y, strict=True))
    return max(0.0, entropy(Counter(x)) + entropy(Counter(y)) - entropy(joint))


def test_dependence_of_a_square_law_is_found(kernels: ModuleType) -> None:
    rng = np.random.default_rng(8)
    x = rng.normal(size=1000)
    y = x**2 + 0.1 * rng.normal(size=1000)
    z = rng.normal(size=1000)
    result = dependence(kernels, np.vstack([x, y, z]), 0.5, 30, 199, SEED, 10_000)
    assert list(zip(result["i"].tolist(), result["j"].tolist(), strict=True)) == [
        (0, 1),
        (0, 2),
        (1, 2),
    ]
    square, independent, other = (row(result, pair) for pair in range(3))
    assert square["tested"] is True and abs(square["r"]) < 0.1
    assert square["p_value"] < 1e-6
    assert square["info_coef"] > 0.5
    assert square["effect"] > 2.0  # the mean of y varies by more than 2 across the x bins
    for stats in (independent, other):
        assert stats["tested"] is True
        assert stats["p_value"] > 0.01
        assert stats["info_coef"] < 0.3


def test_dependence_values_follow_the_contract(kernels: ModuleType) -> None:
    rng = np.random.default_rng(9)
    x = rng.integers(0, 30, 200).astype(float)  # ties: they share a rank bin
    y = np.sin(x) + 0.3 * rng.normal(size=200)
    columns = np.vstack([x, y])
    columns[1, :7] = NAN
    stats = row(dependence(kernels, columns, 0.9, 30, 50, SEED, 10_000), 0)
    xs, ys = x[7:], y[7:]
    n = 193
    bins = 6  # round(sqrt(193 / 5)) = round(6.21)
    x_bins, y_bins = rank_bins(xs, bins), rank_bins(ys, bins)
    mi = mutual_info_score(x_bins, y_bins) / math.log(2)
    cells = len(set(zip(x_bins.tolist(), y_bins.tolist(), strict=True)))
    occupied_x, occupied_y = len(set(x_bins.tolist())), len(set(y_bins.tolist()))
    corrected = max(0.0, mi - (cells - occupied_x - occupied_y + 1) / (2 * n * math.log(2)))
    means = [ys[x_bins == b].mean() for b in sorted(set(x_bins.tolist()))]
    assert (stats["i"], stats["j"], stats["n"]) == (0, 1, n)
    assert stats["r"] == pytest.approx(np.corrcoef(xs, ys)[0, 1], rel=1e-12)
    assert stats["mi"] == pytest.approx(mi, rel=1e-10)
    assert stats["mi_corrected"] == pytest.approx(corrected, rel=1e-10)
    assert stats["info_coef"] == pytest.approx(math.sqrt(1 - 2 ** (-2 * corrected)), rel=1e-10)
    assert stats["effect"] == pytest.approx(max(means) - min(means), rel=1e-12)
    assert stats["bins"] == bins and stats["tested"] is True


def test_dependence_untested_pairs_keep_r(kernels: ModuleType) -> None:
    x = np.arange(40, dtype=float)
    columns = np.vstack([x, 2 * x + 1, np.r_[x[:10], [NAN] * 30], np.ones(40)])
    result = dependence(kernels, columns, 0.5, 30, 10, SEED, 10_000)
    assert all(values.shape == (6,) for values in result.values())
    # |r| = 1, n = 10 < 30, constant metric
    assert result["tested"].tolist() == [False] * 6
    assert result["r"][0] == 1.0
    assert result["n"][1] == 10
    assert result["r"][2] == 0.0
    for name in TEST_FIELDS:
        assert np.isnan(result[name]).all(), name
    assert result["perms_run"].tolist() == [0] * 6
    assert result["bins"].tolist() == [4] * 6  # bins of n = 40 or 10


def test_dependence_on_thinned_pairs(kernels: ModuleType) -> None:
    rng = np.random.default_rng(12)
    x = rng.uniform(-1, 1, 3000)
    y = np.abs(x) + 0.05 * rng.normal(size=3000)
    full = dependence(kernels, np.vstack([x, y]), 0.5, 30, 99, SEED, 10_000)
    thinned = dependence(kernels, np.vstack([x, y]), 0.5, 30, 99, SEED, 500)
    # effect sizes use every pair: identical; only the test differs
    for name in ("i", "j", "n", "r", "mi", "mi_corrected", "info_coef", "effect", "bins"):
        np.testing.assert_array_equal(full[name], thinned[name], err_msg=name)
    np.testing.assert_array_equal(full["tested"], thinned["tested"])
    assert thinned["p_value"][0] < 1e-6


@pytest.mark.parametrize(
    ("arguments", "name"),
    [
        ((0.0, 30, 10, 1, 100), "threshold_r"),
        ((1.5, 30, 10, 1, 100), "threshold_r"),
        ((0.5, 0, 10, 1, 100), "min_pairs"),
        ((0.5, 30, 0, 1, 100), "permutations"),
        ((0.5, 30, 10, -3, 100), "seed"),
        ((0.5, 30, 10, 1, 0), "max_test_n"),
    ],
)
def test_dependence_arguments_are_validated(
    kernels: ModuleType, arguments: tuple[float, int, int, int, int], name: str
) -> None:
    with pytest.raises(ValueError, match=rf"^{name}"):
        dependence(kernels, np.ones((2, 40)), *arguments)


def test_dependence_p_value_is_the_sequential_permutation_test(kernels: ModuleType) -> None:
    rng = np.random.default_rng(44)
    x = rng.normal(size=90)
    y = np.abs(x) + rng.normal(size=90)
    columns = np.vstack([rng.normal(size=90), x, y])
    budget = 80
    assert numpy_dependence.DEPENDENCE_TEST_FAMILY == 1000
    for max_test_n, step in ((10_000, 1), (40, 3)):
        result = dependence(kernels, columns, 0.6, 10, budget, SEED, max_test_n)
        stats = row(result, 2)
        assert (stats["i"], stats["j"]) == (1, 2)
        xs, ys = x[::step], y[::step]
        bins = 4  # round(sqrt(90 / 5)) = 4; thinned: round(sqrt(30 / 5)) = 2, raised to 4
        x_bins = rank_bins(xs, bins).tolist()
        y_bins = rank_bins(ys, bins).tolist()
        observed = mutual_information_reference(x_bins, y_bins)

        def permuted(r: int, x_bins: list[int] = x_bins, y_bins: list[int] = y_bins) -> float:
            # every pair: family 1000; y circularly shifted (no lag scanned: floor 1)
            order = round_shift(SEED, 1000, r, y_bins, 1)
            return mutual_information_reference(x_bins, [y_bins[i] for i in order])

        p_value, runs = sequential_reference(observed, permuted, budget)
        assert stats["perms_run"] == runs
        assert stats["p_value"] == pytest.approx(p_value, rel=1e-9)


@settings(max_examples=60)
@given(
    columns=small_matrices(),
    permutations=st.sampled_from([1, 7, 40]),
    seed=st.integers(0, MASK64),
    thin=st.booleans(),
)
def test_dependence_keeps_its_invariants_on_random_input(
    kernels: ModuleType, columns: Columns, permutations: int, seed: int, thin: bool
) -> None:
    metrics = columns.shape[0]
    test_n = 9 if thin else 10_000
    result = dependence(kernels, columns, 0.6, 5, permutations, seed, test_n)
    assert all(values.shape == (metrics * (metrics - 1) // 2,) for values in result.values())
    tested = result["tested"]
    assert np.all(result["n"][tested] >= 5) and np.all(np.abs(result["r"][tested]) < 0.6)
    mi, corrected = result["mi"][tested], result["mi_corrected"][tested]
    assert np.all((corrected >= 0) & (corrected <= mi + 1e-12 + 1.0))
    p_value, perms_run = result["p_value"][tested], result["perms_run"][tested]
    assert np.all((p_value > 0) & (p_value <= 1) & (perms_run <= permutations))
    info_coef = result["info_coef"][tested]
    assert np.all((info_coef >= 0) & (info_coef <= 1) & (result["bins"][tested] >= 4))
    for name in TEST_FIELDS:
        assert np.isnan(result[name][~tested]).all(), name
