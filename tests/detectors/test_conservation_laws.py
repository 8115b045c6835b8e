"""The conservation laws detector (SPEC §6 "Conservation laws", docs/kernels.md): linear
combinations of 2..max_terms metrics that stay constant across the complete tasks, fitted
robustly (gross violators do not hide a law), with the tasks that satisfy each; ids and
counters take no part. Planted laws with known coefficients, constants and violators."""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray
from references import MASK64, Columns
from strategies import small_matrices

NAN, INF = math.nan, math.inf
SEED = 0x5EED_CAFE

Result = dict[str, NDArray[Any]]


def run_laws(kernels: ModuleType, columns: Columns, **params: Any) -> Result:
    result: Result = kernels.run_detector(
        "conservation_laws", columns, params={"seed": SEED, **params}
    )
    return result


def laws_in(result: Result) -> list[dict[str, Any]]:
    """The laws of a result, one dict each: the per-law fields, its terms (``metrics``,
    ``coefficients``), the complete ``tasks`` and its row of ``satisfied``."""
    tasks = result["tasks"]
    satisfied = result["satisfied"].reshape(len(result["constant"]), tasks.size)
    laws = []
    for law in range(len(result["constant"])):
        terms = result["term_law"] == law
        laws.append(
            {
                "metrics": result["term_metric"][terms].tolist(),
                "coefficients": result["term_coefficient"][terms].tolist(),
                "constant": result["constant"][law].item(),
                "residual_std": result["residual_std"][law].item(),
                "support": result["support"][law].item(),
                "tasks": tasks,
                "satisfied": satisfied[law],
            }
        )
    return laws


def laws_of(
    kernels: ModuleType,
    columns: Columns,
    tolerance: float = 1e-4,
    max_terms: int = 4,
    sample_size: int = 2000,
) -> list[dict[str, Any]]:
    result = run_laws(
        kernels,
        columns,
        tolerance_eig=tolerance,
        max_terms=max_terms,
        sample_size=sample_size,
    )
    return laws_in(result)


def test_records_law_survives_gross_violators(kernels: ModuleType) -> None:
    rng = np.random.default_rng(17)
    n = 1000
    records_in = rng.integers(100, 1000, n).astype(float)
    dropped = rng.integers(0, 50, n).astype(float)
    records_out = records_in - dropped
    violators = np.zeros(n, dtype=bool)
    violators[rng.choice(n, 50, replace=False)] = True
    records_out[violators] -= rng.integers(100, 300, 50)
    noise = rng.normal(size=n)
    batch_id = np.arange(n, dtype=float)  # a counter: left out by the kernel itself
    columns = np.vstack([records_in, records_out, dropped, noise, batch_id])
    assert kernels.column_roles(columns)["counter"].tolist() == [False] * 4 + [True]
    laws = laws_of(kernels, columns)
    assert len(laws) == 1
    (law,) = laws
    assert law["metrics"] == [0, 1, 2]
    assert law["coefficients"] == [1.0, -1.0, -1.0]
    assert law["constant"] == 0.0
    assert law["residual_std"] == 0.0
    np.testing.assert_array_equal(law["tasks"], np.arange(n))
    np.testing.assert_array_equal(law["satisfied"], ~violators)
    assert law["support"] == 0.95


def test_no_approximate_law_among_fewer_of_an_exact_laws_metrics(kernels: ModuleType) -> None:
    """Pipeline batches dropping about 0.3% of their input (binomial): besides the exact
    records_in - records_out - dropped = 0, records_out = 0.997 records_in holds within a
    band of most batches, with the largest ones as "violators" (the drop count's spread
    grows with the batch). With the exact law it only says drops are about 0.3% of the
    input: it is left out, and so are its noisy supersets (+ a tiny multiple of the
    batch's duration)."""
    rng = np.random.default_rng(1)
    n = 5000
    records_in = np.round(rng.lognormal(np.log(200000), 0.5, n))
    dropped = rng.binomial(records_in.astype(np.int64), 0.003).astype(float)
    duration = records_in * 2.5e-4 * rng.lognormal(0, 0.15, n)
    columns = np.vstack([records_in, records_in - dropped, dropped, duration])
    laws = laws_of(kernels, columns)
    assert [(law["metrics"], law["coefficients"]) for law in laws] == [
        ([0, 1, 2], [1.0, -1.0, -1.0])
    ]
    # the approximate law alone (no dropped column) is still a law
    alone = laws_of(kernels, columns[[0, 1, 3]])
    assert [law["metrics"] for law in alone][:1] == [[0, 1]]


def test_sum_law_with_a_constant(kernels: ModuleType) -> None:
    rng = np.random.default_rng(23)
    a = rng.uniform(0, 100, 300)
    columns = np.vstack([rng.normal(size=300), a, 100.0 - a])
    columns[0, 5] = NAN  # task 5 is not complete
    laws = laws_of(kernels, columns)
    assert len(laws) == 1
    (law,) = laws
    assert law["metrics"] == [1, 2]
    assert law["coefficients"] == [1.0, 1.0]
    assert law["constant"] == pytest.approx(100.0, rel=1e-12)
    assert law["support"] == 1.0
    assert law["residual_std"] < 1e-12
    assert law["tasks"].tolist() == [t for t in range(300) if t != 5]


def test_implied_laws_are_not_reported(kernels: ModuleType) -> None:
    rng = np.random.default_rng(29)
    n = 400
    x1, x2, x4 = (rng.integers(0, 100, n).astype(float) for _ in range(3))
    x3 = x1 + x2
    x5 = x3 + x4  # implies x1 + x2 + x4 - x5 = 0 (4 terms)
    laws = laws_of(kernels, np.vstack([x1, x2, x3, x4, x5]))
    assert [law["metrics"] for law in laws] == [[0, 1, 2], [2, 3, 4]]
    assert [law["coefficients"] for law in laws] == [[1.0, 1.0, -1.0], [1.0, 1.0, -1.0]]


def test_scaled_copies_are_not_reported_twice(kernels: ModuleType) -> None:
    rng = np.random.default_rng(31)
    a = rng.integers(0, 100, 300).astype(float)
    columns = np.vstack([a, 100.0 - a, 2.0 * a, rng.normal(size=300)])
    laws = laws_of(kernels, columns)
    # three pairwise laws (a + b = 100, a - c/2 = 0, b + c/2 = 100) span two dimensions
    assert len(laws) == 2
    pairs = [tuple(law["metrics"]) for law in laws]
    assert len(set(pairs)) == 2 and set(pairs) <= {(0, 1), (0, 2), (1, 2)}
    expected = {(0, 1): [1.0, 1.0], (0, 2): [1.0, -0.5], (1, 2): [1.0, 0.5]}
    for law in laws:
        assert law["coefficients"] == expected[tuple(law["metrics"])]
        assert law["support"] == 1.0


def test_counters_take_no_part_in_laws(kernels: ModuleType) -> None:
    ids = np.arange(50, dtype=float)
    noise = np.random.default_rng(1).normal(size=50)
    columns = np.vstack([ids, 2 * ids, noise])
    assert kernels.column_roles(columns)["counter"].tolist() == [True, True, False]
    assert laws_of(kernels, columns) == []
    # The same law between two metrics that are not counters (the ids shuffled): found, so
    # the test above can fail.
    shuffled = np.random.default_rng(2).permutation(ids)
    found = laws_of(kernels, np.vstack([shuffled, 2 * shuffled, noise]))
    assert [law["metrics"] for law in found] == [[0, 1]]
    assert [law["coefficients"] for law in found] == [[1.0, -0.5]]


def test_no_laws_in_noise_or_on_few_tasks(kernels: ModuleType) -> None:
    rng = np.random.default_rng(37)
    assert laws_of(kernels, rng.normal(size=(6, 500))) == []
    a = rng.normal(size=9)
    assert laws_of(kernels, np.vstack([a, 1 - a])) == []  # 9 complete tasks
    assert laws_of(kernels, np.vstack([a, np.ones(9)])) == []
    assert laws_of(kernels, np.zeros((0, 20))) == []
    # no law: every field is empty, the complete tasks too
    result = run_laws(kernels, rng.normal(size=(3, 50)))
    assert all(values.shape == (0,) for values in result.values())


def test_law_sample_is_a_subset_of_the_tasks(kernels: ModuleType) -> None:
    rng = np.random.default_rng(41)
    a = rng.uniform(1, 2, 5000)
    b = rng.uniform(1, 2, 5000)
    columns = np.vstack([a, b, 3 * a - 2 * b])
    (law,) = laws_of(kernels, columns, sample_size=300)
    assert law["coefficients"] == [1.0, -2.0 / 3.0, -1.0 / 3.0]
    assert law["support"] == 1.0


def _noisy_law(tasks: int, seed: int = 47) -> NDArray[np.float64]:
    """records_out = 0.7 records_in + noise (an unsnapped law whose coefficients, constant and
    band depend on every sampled value), 1% gross violators, one metric with gaps, noise."""
    rng = np.random.default_rng(seed)
    records_in = rng.uniform(100.0, 1000.0, tasks)
    records_out = 0.7 * records_in + rng.normal(0.0, 1.0, tasks)
    records_out[rng.random(tasks) < 0.01] += 300.0
    noise = rng.normal(size=(2, tasks))
    noise[1, rng.random(tasks) < 0.05] = NAN
    return np.vstack([records_in, records_out, noise])


def test_laws_read_a_sample_that_appended_tasks_rarely_change(kernels: ModuleType) -> None:
    # The fit, the constant and the band read the sample (the complete tasks' positions
    # with the smallest keys), and the kept fit of a sample is the fit itself: the result
    # is the same whether the fit is new or kept, before and after tasks are appended.
    columns = _noisy_law(6000)
    for tasks in (5000, 5030, 6000):
        kernels.forget_law_fits()
        fresh = run_laws(kernels, columns[:, :tasks], sample_size=500)
        kept = run_laws(kernels, columns[:, :tasks], sample_size=500)
        assert set(fresh) == set(kept)
        for name in fresh:
            np.testing.assert_array_equal(kept[name], fresh[name])
        (law,) = laws_in(fresh)
        assert law["metrics"] == [0, 1]
        assert law["coefficients"][0] == pytest.approx(0.7, rel=2e-3)
        assert 0.95 < law["support"] < 0.995
        violators = np.flatnonzero(~law["satisfied"])
        assert violators.size == pytest.approx(0.01 * law["tasks"].size, rel=0.35)


def test_law_sample_stays_until_its_prefix_moves(kernels: ModuleType) -> None:
    # Above sample_size the sample is drawn from the first max(size, n // q * q) complete
    # tasks, q = 2^(floor(log2 n) - 3): 4,700 and 5,100 complete tasks both draw from the
    # first 4,608, so the unsnapped law's constant, coefficients and band agree and the
    # first tasks hold or not alike; at 5,120 the prefix moves and the sample with it.
    from crackle_runtime._numpy.detect.conservation_laws import law_sample_prefix

    assert [law_sample_prefix(n, 500) for n in (500, 4700, 5100, 5120)] == [500, 4608, 4608, 5120]
    columns = _noisy_law(6000)
    complete_so_far = np.cumsum(~np.isnan(columns).any(axis=0))
    ((before,), (after,), (moved,)) = (
        laws_in(
            run_laws(
                kernels, columns[:, : np.searchsorted(complete_so_far, n) + 1], sample_size=500
            )
        )
        for n in (4700, 5100, 5120)
    )
    assert [law["tasks"].size for law in (before, after, moved)] == [4700, 5100, 5120]
    assert after["constant"] == before["constant"]
    assert after["coefficients"] == before["coefficients"]
    common = before["tasks"].size
    np.testing.assert_array_equal(after["tasks"][:common], before["tasks"])
    np.testing.assert_array_equal(after["satisfied"][:common], before["satisfied"])
    assert moved["constant"] != after["constant"]


def test_law_sample_prefix_is_the_same_in_both_backends(
    native: ModuleType, numpy_backend: ModuleType
) -> None:
    columns = _noisy_law(6000)
    for tasks in (2100, 4700, 5100, 5120):
        ours = run_laws(numpy_backend, columns[:, :tasks], sample_size=500)
        theirs = run_laws(native, columns[:, :tasks], sample_size=500)
        assert set(ours) == set(theirs)
        for name in ours:
            np.testing.assert_allclose(ours[name], theirs[name], rtol=1e-12, atol=1e-12)


def test_law_sample_is_kept_when_no_appended_key_is_smaller() -> None:
    # The sample's positions are the smallest keys of a stream that depends on (seed,
    # position) only: appending positions keeps the sample unless one of them has a key
    # among the smallest (a bottom-k sample, as the kept fits assume).
    from crackle_runtime._numpy.detect.shared.permutation import permutation

    for tasks, appended, size in [(5000, 30, 500), (5000, 1000, 500), (300, 10, 100)]:
        before = np.sort(permutation(SEED, tasks)[:size])
        after = np.sort(permutation(SEED, tasks + appended)[:size])
        entered = after[after >= tasks]
        assert (entered.size == 0) == bool(np.array_equal(before, after))
        assert np.isin(after[after < tasks], before).all()


def test_satisfied_is_law_major(kernels: ModuleType) -> None:
    # Two laws over the same 200 complete tasks; task 7 violates only the first.
    rng = np.random.default_rng(43)
    a, c = rng.uniform(0, 100, 200), rng.uniform(0, 100, 200)
    b, d = 100.0 - a, 50.0 - c
    b[7] += 500.0
    result = run_laws(kernels, np.vstack([a, b, c, d]))
    assert result["term_law"].tolist() == [0, 0, 1, 1]
    assert result["term_metric"].tolist() == [0, 1, 2, 3]
    assert result["satisfied"].shape == (2 * 200,)
    assert np.flatnonzero(~result["satisfied"]).tolist() == [7]
    assert result["support"].tolist() == [199 / 200, 1.0]


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"tolerance_eig": -1.0}, "tolerance_eig"),
        ({"tolerance_eig": NAN}, "tolerance_eig"),
        ({"seed": -1}, "seed"),
        ({"max_terms": 1}, "max_terms"),
        ({"max_terms": 9}, "max_terms"),
        ({"sample_size": 5}, "sample_size"),
    ],
)
def test_law_arguments_are_validated(
    kernels: ModuleType, params: dict[str, Any], name: str
) -> None:
    with pytest.raises(ValueError, match=rf"^{name}"):
        kernels.run_detector("conservation_laws", np.ones((2, 40)), params=params)
    # The former ``excluded`` mask is gone: the kernel finds the counters itself.
    with pytest.raises(ValueError, match=r"no parameter .excluded."):
        kernels.run_detector(
            "conservation_laws", np.ones((2, 40)), params={"excluded": [False, False]}
        )


@settings(max_examples=60)
@given(columns=small_matrices(), seed=st.integers(0, MASK64))
def test_laws_keep_their_invariants_on_random_input(
    kernels: ModuleType, columns: Columns, seed: int
) -> None:
    present = ~np.isnan(columns)
    result = kernels.run_detector(
        "conservation_laws",
        columns,
        params={"tolerance_eig": 1e-4, "seed": seed, "max_terms": 3, "sample_size": 50},
    )
    laws = laws_in(result)
    assert result["satisfied"].size == len(laws) * result["tasks"].size
    for law in laws:
        coefficients = np.asarray(law["coefficients"])
        assert np.abs(coefficients).max() == 1.0 and coefficients[0] > 0
        assert law["metrics"] == sorted(law["metrics"]) and 2 <= len(law["metrics"]) <= 3
        assert law["support"] == pytest.approx(law["satisfied"].mean()) and law["support"] >= 0.9
        assert np.all(present[np.ix_(law["metrics"], law["tasks"])])
