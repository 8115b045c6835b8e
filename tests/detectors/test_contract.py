"""The contract every registered detector keeps, checked over the whole registry (in the
spirit of scikit-learn's ``estimator_checks``): adding a detector to the registry runs it
through every test here on both backends.

- Both backends describe the same registry (``DETECTORS``, ``PERMUTATION_SEED``,
  ``ROLE_FIELDS``), and the Python wording layer words exactly those detectors.
- A result has exactly the detector's ``fields``, in order, as 1-D arrays of the documented
  dtypes (counts and indices int64, flags bool, the rest float64), also on degenerate input.
- Every parameter refuses a bad value (chosen from its default's type) with ValueError
  whose message starts with the parameter's name; unknown parameters and detector names,
  infinities in ``columns`` and out-of-range ``metrics`` are refused too; a spent
  ``deadline`` raises CoolingTimeoutError. Each backend is held to the exact class, so both
  raise the same one.
- ``metrics=`` reads the selected rows exactly as running on those rows does.
- Hypothesis: on random small matrices both backends return the same result.
"""

from __future__ import annotations

import math
import re
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numpy.typing import NDArray
from references import MASK64, Columns
from strategies import small_matrices

from crackle_runtime import _backend
from crackle_runtime.detectors._registry import REGISTRY
from crackle_runtime.errors import CoolingTimeoutError
from crackle_runtime.patterns import PatternKind

NAN, INF = math.nan, math.inf

Result = dict[str, NDArray[Any]]

# Read at collection from the NumPy backend (always importable); the first test holds the
# native module to the same registry.
DETECTORS: dict[str, dict[str, Any]] = _backend.numpy_module().DETECTORS
NAMES = list(DETECTORS)

# Counts and indices are int64, flags bool, every other field float64.
INT_FIELDS = frozenset(
    {
        "label",
        "count",
        "change_index",
        "i",
        "j",
        "n",
        "task",
        "metric",
        "perms_run",
        "best_lag",
        "bins",
        "term_law",
        "term_metric",
        "tasks",
        "scale",
        "segment_start",
        "segment_end",
        "drift_start",
        "drift_end",
        "period",
        "run_length",
    }
)
BOOL_FIELDS = frozenset(
    {
        "sampled",
        "detected",
        "is_counter",
        "tested",
        "satisfied",
        "drifting",
        "spread",
        "differenced",
    }
)

# Parameters small enough that the detectors test something on a few dozen tasks.
SMALL_PARAMS: dict[str, dict[str, Any]] = {
    "clustering": {"threshold": 1.0},
    "distribution_shift": {"min_segment": 3},
    "dependence": {"min_pairs": 10, "permutations": 19},
    "information_flow": {"min_values": 12, "permutations": 19},
    "conservation_laws": {"max_terms": 3, "sample_size": 50},
}


def expected_dtype(field: str) -> np.dtype[Any]:
    if field in INT_FIELDS:
        return np.dtype(np.int64)
    if field in BOOL_FIELDS:
        return np.dtype(np.bool_)
    return np.dtype(np.float64)


def run(
    kernels: ModuleType,
    name: str,
    columns: Columns,
    metrics: NDArray[np.int64] | None = None,
    **params: Any,
) -> Result:
    result: Result = kernels.run_detector(name, columns, metrics, {**params})
    return result


def planted_columns(tasks: int = 90) -> Columns:
    """Six metrics with something for every detector: a law (metric 1 = 10 - metric 0), a
    step (metric 2), a square dependence and a lagged copy (metrics 3, 4), an outlier,
    absent values, and two identical tasks (a cluster)."""
    rng = np.random.default_rng(7)
    base = rng.normal(size=tasks)
    columns = np.vstack(
        [
            base,
            10.0 - base,
            np.where(np.arange(tasks) < tasks // 2, 1.0, 4.0) + 0.1 * rng.normal(size=tasks),
            base**2 + 0.05 * rng.normal(size=tasks),
            np.r_[0.0, base[:-1]] + 0.1 * rng.normal(size=tasks),
            rng.uniform(size=tasks),
        ]
    )
    columns[5, 3] = 40.0  # an outlier
    columns[5, 10:14] = NAN
    columns[:, 1] = columns[:, 0]  # tasks 0 and 1 coincide
    return columns


def assert_contract_shape(name: str, result: Result) -> None:
    """Exactly the detector's fields, in order, as 1-D arrays of the documented dtypes."""
    assert tuple(result) == DETECTORS[name]["fields"]
    for field, values in result.items():
        assert isinstance(values, np.ndarray), field
        assert values.ndim == 1, field
        assert values.dtype == expected_dtype(field), (field, values.dtype)
    if "p_value" in result:
        p_value = result["p_value"]
        assert np.all(np.isnan(p_value) | ((p_value >= 0.0) & (p_value <= 1.0)))


# --- the registry --------------------------------------------------------------------------------


def test_both_backends_describe_the_same_registry(
    native: ModuleType, numpy_backend: ModuleType
) -> None:
    assert native.DETECTORS == numpy_backend.DETECTORS
    assert native.PERMUTATION_SEED == numpy_backend.PERMUTATION_SEED
    assert native.ROLE_FIELDS == numpy_backend.ROLE_FIELDS
    assert native.ROLE_FIELDS == ["counter", "spearman", "distinct_share", "index"]
    assert native.CHUNK_FIELDS == numpy_backend.CHUNK_FIELDS
    assert native.CHUNK_FIELDS[:3] == ["count", "done", "labels"]
    # the same order, and defaults of the same types (they decide what a bad value is)
    assert list(native.DETECTORS) == list(numpy_backend.DETECTORS)
    for name, described in native.DETECTORS.items():
        theirs = numpy_backend.DETECTORS[name]
        assert list(described) == list(theirs) == ["kind", "fields", "params"]
        assert list(described["params"]) == list(theirs["params"])
        for param, default in described["params"].items():
            assert type(default) is type(theirs["params"][param]), (name, param)
        assert described["params"]["deadline"] == INF


def test_the_wording_layer_words_every_registered_detector() -> None:
    assert [detector.name for detector in REGISTRY] == NAMES
    for detector in REGISTRY:
        assert detector.kind is PatternKind(DETECTORS[detector.name]["kind"])
    assert {detector.kind for detector in REGISTRY} == set(PatternKind)


@pytest.mark.parametrize("name", NAMES)
def test_small_params_name_real_parameters(name: str) -> None:
    assert set(SMALL_PARAMS.get(name, {})) <= set(DETECTORS[name]["params"])


# --- fields and dtypes ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_result_has_the_fields_in_order_with_their_dtypes(kernels: ModuleType, name: str) -> None:
    result = run(kernels, name, planted_columns(), **SMALL_PARAMS.get(name, {}))
    assert_contract_shape(name, result)
    # the planted data give every detector something to report: no field is vacuously empty
    assert all(values.size > 0 for values in result.values()), {
        field: values.size for field, values in result.items()
    }


def degenerate_inputs() -> list[Columns]:
    """Inputs a detector must survive: no metrics, no tasks, one value, only NaN, constants,
    -0.0, a ramp, two values, gaps, huge and subnormal values (the Rust contract test's)."""
    ramp = np.arange(60.0)
    huge = np.where(np.arange(60) % 2 == 0, 1e308, -1e308)
    sparse = np.where(np.arange(60) % 3 == 0, NAN, ramp)
    return [
        np.zeros((0, 0)),
        np.zeros((0, 5)),
        np.zeros((1, 0)),
        np.zeros((2, 0)),
        np.array([[1.0]]),
        np.array([[1.0], [2.0], [NAN]]),
        np.full((2, 30), NAN),
        np.vstack([np.full(30, 3.0), np.full(30, 3.0), np.full(30, -0.0)]),
        np.vstack([ramp, ramp % 2, sparse, huge, ramp * 5e-324]),
    ]


@pytest.mark.parametrize("name", NAMES)
def test_degenerate_inputs_keep_the_fields_and_dtypes(kernels: ModuleType, name: str) -> None:
    for columns in degenerate_inputs():
        for params in ({}, SMALL_PARAMS.get(name, {})):
            assert_contract_shape(name, run(kernels, name, columns, **params))


# --- refused arguments ---------------------------------------------------------------------------


def bad_values(param: str, default: object) -> list[object]:
    """Values every parameter refuses, chosen from its default's type. A negative deadline
    is a spent budget (CoolingTimeoutError), not a bad value; inf is no limit."""
    if param == "deadline":
        return ["soon", None, NAN, True]
    if isinstance(default, float):
        return ["0.5", None, NAN, INF, -1.0, True]
    assert isinstance(default, int), (param, default)
    return ["3", None, NAN, 1.5, -1, 2**70, True]


BAD_PARAMETERS = [
    pytest.param(name, param, value, id=f"{name}-{param}-{value!r}")
    for name, described in DETECTORS.items()
    for param, default in described["params"].items()
    for value in bad_values(param, default)
]


@pytest.mark.parametrize(("name", "param", "value"), BAD_PARAMETERS)
def test_a_bad_parameter_is_refused_naming_it(
    kernels: ModuleType, name: str, param: str, value: object
) -> None:
    columns = np.random.default_rng(0).normal(size=(3, 60))
    with pytest.raises(ValueError, match=rf"^{re.escape(param)} ") as error:
        kernels.run_detector(name, columns, params={param: value})
    assert error.type is ValueError


@pytest.mark.parametrize("name", NAMES)
def test_an_unknown_parameter_is_refused_naming_it(kernels: ModuleType, name: str) -> None:
    with pytest.raises(ValueError, match=r"^params: .*no parameter .no_such_parameter.") as error:
        kernels.run_detector(name, np.ones((2, 40)), params={"no_such_parameter": 1.0})
    assert error.type is ValueError


def test_an_unknown_detector_is_refused(kernels: ModuleType) -> None:
    with pytest.raises(ValueError, match=r"^name: no detector .clusters.") as error:
        kernels.run_detector("clusters", np.ones((2, 40)))
    assert error.type is ValueError


@pytest.mark.parametrize("infinity", [INF, -INF])
@pytest.mark.parametrize("name", NAMES)
def test_infinities_in_columns_are_refused(kernels: ModuleType, name: str, infinity: float) -> None:
    columns = np.random.default_rng(1).normal(size=(3, 60))
    columns[0, 5] = NAN
    columns[1, 7] = infinity
    with pytest.raises(ValueError, match=r"^columns contains an infinite value") as error:
        kernels.run_detector(name, columns)
    assert error.type is ValueError


@pytest.mark.parametrize("deadline", [0.0, -1.0])
@pytest.mark.parametrize("name", NAMES)
def test_a_spent_deadline_stops_every_detector(
    kernels: ModuleType, name: str, deadline: float
) -> None:
    columns = np.random.default_rng(2).normal(size=(4, 200))
    with pytest.raises(CoolingTimeoutError, match=rf"time budget exhausted during {name}"):
        kernels.run_detector(name, columns, params={"deadline": deadline})
    # a budget that is not spent changes nothing
    unlimited = run(kernels, name, columns, **SMALL_PARAMS.get(name, {}))
    timed = run(kernels, name, columns, deadline=3600.0, **SMALL_PARAMS.get(name, {}))
    for field, values in unlimited.items():
        np.testing.assert_array_equal(values, timed[field], err_msg=field)


# --- row selection -------------------------------------------------------------------------------

SELECTIONS = [[3, 0, 4], [5, 1, 2, 0], [2, 2, 0], [1], []]


@pytest.mark.parametrize("rows", SELECTIONS, ids=str)
@pytest.mark.parametrize("name", NAMES)
def test_metrics_selects_rows_as_running_on_them_does(
    kernels: ModuleType, name: str, rows: list[int]
) -> None:
    columns = planted_columns()
    metrics = np.array(rows, dtype=np.int64)
    params = SMALL_PARAMS.get(name, {})
    selected = run(kernels, name, columns, metrics, **params)
    expected = run(kernels, name, np.ascontiguousarray(columns[metrics]), **params)
    assert list(selected) == list(expected)
    for field, values in expected.items():
        assert selected[field].dtype == values.dtype, field
        np.testing.assert_array_equal(selected[field], values, err_msg=field)


@pytest.mark.parametrize("name", NAMES)
def test_strided_columns_read_as_their_contiguous_copy(kernels: ModuleType, name: str) -> None:
    wide = np.repeat(planted_columns(), 2, axis=1)  # every task twice
    params = SMALL_PARAMS.get(name, {})
    expected = run(kernels, name, planted_columns(), **params)
    for view in (wide[:, ::2], np.asfortranarray(planted_columns())):
        assert not view.flags.c_contiguous
        result = run(kernels, name, view, **params)
        for field, values in expected.items():
            np.testing.assert_array_equal(result[field], values, err_msg=field)


@pytest.mark.parametrize("rows", [[6], [-1], [0, 9]], ids=str)
def test_metrics_out_of_range_are_refused(kernels: ModuleType, rows: list[int]) -> None:
    metrics = np.array(rows, dtype=np.int64)
    for name in NAMES:
        with pytest.raises(ValueError, match=r"^metrics: row -?\d+ is out of range"):
            kernels.run_detector(name, planted_columns(), metrics)
    with pytest.raises(ValueError, match=r"^metrics"):
        kernels.column_roles(planted_columns(), metrics)


def test_rows_flagged_complete_give_the_same_result(kernels: ModuleType) -> None:
    columns = planted_columns()
    columns[2, ::7] = np.nan  # one row with gaps, flagged as such
    metrics = np.array([0, 2, 4], dtype=np.int64)
    flags = np.array([True, False, True])
    for name in NAMES:
        flagged = kernels.run_detector(name, columns, metrics, None, flags)
        plain = kernels.run_detector(name, columns, metrics)
        assert list(flagged) == list(plain)
        for field in plain:
            np.testing.assert_array_equal(flagged[field], plain[field], err_msg=name)
        with pytest.raises(ValueError, match=r"^complete must hold one flag per selected row"):
            kernels.run_detector(name, columns, metrics, None, flags[:2])
    roles = kernels.column_roles(columns, metrics, flags)
    assert roles["spearman"].tolist() == kernels.column_roles(columns, metrics)["spearman"].tolist()
    with pytest.raises(ValueError, match=r"^complete must hold one flag per selected row"):
        kernels.column_roles(columns, None, flags)


@pytest.mark.parametrize("rows", SELECTIONS, ids=str)
def test_column_roles_select_rows_too(kernels: ModuleType, rows: list[int]) -> None:
    columns = np.vstack([planted_columns(), np.arange(90.0)])  # row 6: a counter
    metrics = np.array([*rows, 6], dtype=np.int64)
    roles = kernels.column_roles(columns, metrics)
    assert list(roles) == kernels.ROLE_FIELDS
    assert roles["counter"].dtype == np.bool_
    expected = kernels.column_roles(np.ascontiguousarray(columns[metrics]))
    assert roles["counter"].tolist() == expected["counter"].tolist() == [False] * len(rows) + [True]
    assert roles["index"].tolist() == expected["index"].tolist()
    np.testing.assert_array_equal(roles["spearman"], expected["spearman"])


# --- the two backends agree ----------------------------------------------------------------------


def assert_same_result(name: str, ours: Result, theirs: Result, rtol: float, atol: float) -> None:
    """Same fields and dtypes; int and bool fields equal, float fields within tolerance
    (information quantities near zero are differences of entropies of order 1 bit, so
    they agree to an absolute 1e-12 bits, not relatively)."""
    assert list(ours) == list(theirs) == list(DETECTORS[name]["fields"])
    for field, values in ours.items():
        other = theirs[field]
        assert values.dtype == other.dtype, field
        assert values.shape == other.shape, field
        if values.dtype == np.float64:
            np.testing.assert_allclose(values, other, rtol=rtol, atol=atol, err_msg=field)
        else:
            np.testing.assert_array_equal(values, other, err_msg=field)


SEEDS = st.integers(0, MASK64)
PERMUTATIONS = st.sampled_from([1, 7, 40])


@st.composite
def differential_params(draw: st.DrawFn, name: str) -> dict[str, Any]:
    """Parameters that make each detector work on 0-80 tasks: small segments, few
    permutations, any seed, and tests thinned to a few values when ``thin``."""
    thin = draw(st.booleans())
    if name == "clustering":
        return {"threshold": draw(st.sampled_from([0.5, 1.5, 2.5, 4.0]))}
    if name == "phase_transition":
        return {"sensitivity": draw(st.sampled_from([0.0, 0.1, 0.5]))}
    if name == "conservation":
        return {"tolerance": draw(st.sampled_from([0.0, 0.1, 0.3]))}
    if name == "conservation_laws":
        return {"tolerance_eig": 1e-4, "seed": draw(SEEDS), "max_terms": 3, "sample_size": 50}
    if name == "correlation":
        return {"threshold": draw(st.sampled_from([0.5, 0.7, 1.0]))}
    if name == "outlier":
        return {"z_threshold": draw(st.sampled_from([0.5, 3.5]))}
    if name == "distribution_shift":
        alpha = draw(st.sampled_from([0.01, 0.2, 1.0]))
        return {"min_segment": draw(st.integers(2, 6)), "alpha": alpha}
    common = {"permutations": draw(PERMUTATIONS), "seed": draw(SEEDS)}
    test_n = 9 if thin else 10_000
    if name == "dependence":
        return {**common, "threshold_r": 0.6, "min_pairs": 5, "max_test_n": test_n}
    assert name == "information_flow", f"no differential parameters for {name}"
    prewhiten = draw(st.sampled_from([0, 1]))
    return {**common, "min_values": 6, "max_test_n": test_n, "max_lag": 3, "prewhiten": prewhiten}


@pytest.mark.usefixtures("python_only")
@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=50)
@given(
    columns=small_matrices(min_metrics=0, max_metrics=6, max_tasks=80),
    data=st.data(),
)
def test_numpy_and_native_detectors_agree(
    native: ModuleType,
    numpy_backend: ModuleType,
    name: str,
    columns: Columns,
    data: st.DataObject,
) -> None:
    if name == "conservation_laws":
        # Laws are compared on data where every metric takes at least 4 distinct values: on
        # two- or three-valued spike data the robust fit is not unique (the trimmed set and
        # the eigenvector hinge on rounding), and the backends may pick different fits there.
        distinct = [np.unique(row[~np.isnan(row)]).size for row in columns]
        if min(distinct, default=0) < 4:
            return
    params = data.draw(differential_params(name), label="params")
    ours = run(numpy_backend, name, columns, **params)
    theirs = run(native, name, columns, **params)
    assert_same_result(name, ours, theirs, rtol=1e-9, atol=1e-12)


@st.composite
def offset_matrices(draw: st.DrawFn) -> Columns:
    """Up to 5 metrics over up to 200 tasks: small integers (ties, exact distances) and
    floats, with about half the values absent, sometimes offset by 1e6."""
    metrics = draw(st.integers(1, 5))
    tasks = draw(st.integers(0, 200))
    elements = st.one_of(
        st.integers(-6, 6).map(float),
        st.floats(-50.0, 50.0, allow_nan=False, allow_infinity=False),
    )
    values = draw(hnp.arrays(np.float64, (metrics, tasks), elements=elements))
    absent = draw(hnp.arrays(np.bool_, (metrics, tasks)))
    values[absent] = NAN
    offset = draw(st.sampled_from([0.0, 0.0, 1e6]))
    return values + offset


SEED_DETECTORS = ["clustering", "phase_transition", "conservation", "correlation"]


@pytest.mark.usefixtures("python_only")
@pytest.mark.parametrize("name", SEED_DETECTORS)
@settings(max_examples=50)
@given(columns=offset_matrices(), data=st.data())
def test_the_seed_detectors_agree_to_1e_12(
    native: ModuleType,
    numpy_backend: ModuleType,
    name: str,
    columns: Columns,
    data: st.DataObject,
) -> None:
    """The four seed detectors have no permutations and no eigen solver: the backends agree
    to 1e-12 relative, also on data offset by 1e6."""
    params = data.draw(differential_params(name), label="params")
    ours = run(numpy_backend, name, columns, **params)
    theirs = run(native, name, columns, **params)
    assert_same_result(name, ours, theirs, rtol=1e-12, atol=1e-300)


@pytest.mark.usefixtures("python_only")
@settings(max_examples=80)
@given(columns=offset_matrices())
def test_prewhiten_agrees_to_1e_12(
    native: ModuleType, numpy_backend: ModuleType, columns: Columns
) -> None:
    """The AR residuals of both backends (SPEC §12 prewhitening; dependence and flow read
    them): the same operations in the same order, NaN at the same tasks."""
    ours = numpy_backend.prewhiten(columns)
    theirs = native.prewhiten(columns)
    assert ours.shape == theirs.shape == columns.shape
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs))
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-9)
    rows = np.arange(columns.shape[0])[::-1].copy()
    np.testing.assert_array_equal(native.prewhiten(columns, rows), theirs[rows])


# --- column roles --------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [8, 50, 5000])
def test_column_roles_spearman_matches_scipy(kernels: ModuleType, n: int) -> None:
    rng = np.random.default_rng(n)
    trend = np.arange(float(n)) + rng.normal(0.0, 0.3 * max(n, 8) ** 0.5, n)
    ties = np.round(rng.normal(size=n))  # many ties: average ranks
    stamps = np.arange(float(n)) + rng.uniform(0.0, 3.0, n)  # completion order
    columns = np.vstack([trend, ties, stamps, -stamps])
    roles = kernels.column_roles(columns)
    position = np.arange(n)
    for k in (0, 2, 3):  # ranks correlated enough for the full check at every n
        expected = scipy.stats.spearmanr(columns[k], position).statistic
        assert roles["spearman"][k] == pytest.approx(expected, rel=1e-12)
    if n <= 4096:  # the tied column's rho is over every value below the precheck size
        expected = scipy.stats.spearmanr(ties, position).statistic
        assert roles["spearman"][1] == pytest.approx(expected, rel=1e-12, abs=1e-14)
    if n < 50:  # one swap of neighbours in 8 values already gives rho = 0.976
        return
    assert roles["index"].tolist() == [abs(roles["spearman"][0]) >= 0.99, False, True, True]
    assert roles["distinct_share"][2] == 1.0
