"""The mergeable cooling state (SPEC §14): hand-worked values, reference computations over
the concatenation (numpy.cov / var), merges of any split in any tree order, native == NumPy,
and the byte form."""

from __future__ import annotations

import itertools
import math
import struct
import zlib
from collections.abc import Sequence
from types import ModuleType

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from numpy.typing import NDArray

from crackle_runtime import CoolingState, CrackleError
from crackle_runtime._numpy.state import HEADER_WIDTH, STATE_SERIES_FIELDS, flat_length

NAMES = ["a", "b", "c"]
STATISTICS = ("series", "pairs", "differences")


def _data(seed: int, n: int, offset: float = 1e9) -> np.ndarray:
    rng = np.random.default_rng(seed)
    columns = np.vstack(
        [
            rng.normal(size=n),
            offset + np.cumsum(rng.normal(size=n)),
            5.0 + 3.0 * rng.normal(size=n),
        ]
    )
    columns[0, rng.random(n) < 0.1] = np.nan
    columns[2, rng.random(n) < 0.2] = np.nan
    return columns


def _scale(values: np.ndarray) -> float:
    """The largest finite |value| (at least 1): absolute tolerances are relative to it."""
    finite = np.abs(values[np.isfinite(values)])
    return max(float(finite.max(initial=0.0)), 1.0)


def _assert_same_statistics(merged: CoolingState, whole: CoolingState) -> None:
    """Equal to 1e-12 relative (the ``range`` bounds aside: only bounds)."""
    assert merged.tasks == whole.tasks and merged.start == whole.start
    assert merged.complete_count == whole.complete_count
    for block in STATISTICS:
        for field, expected in getattr(whole, block).items():
            got = getattr(merged, block)[field]
            if field == "range":
                assert (got >= expected * (1 - 1e-12) - 1e-12).all()
                continue
            scale = _scale(expected)
            np.testing.assert_allclose(
                got, expected, rtol=1e-12, atol=1e-12 * scale, err_msg=f"{block}.{field}"
            )
    # a mean that cancels (0, 0, 0, 2, -2.00001: -2.5e-6) is exact to the values' rounding,
    # not to its own size
    values = max(_scale(whole.series["min"]), _scale(whole.series["max"]))
    np.testing.assert_allclose(
        merged.complete_mean, whole.complete_mean, rtol=1e-12, atol=1e-12 * values
    )
    scale = max(float(np.abs(whole.complete_comoment).max(initial=0.0)), 1.0)
    np.testing.assert_allclose(
        merged.complete_comoment, whole.complete_comoment, rtol=1e-12, atol=1e-12 * scale
    )
    for field in ("count", "mean_offset", "m2", "lag", "first", "last", "changes"):
        expected = whole.buckets[field]
        np.testing.assert_allclose(
            merged.buckets[field],
            expected,
            rtol=1e-12,
            atol=1e-12 * _scale(expected),
            err_msg=f"buckets.{field}",
        )


def test_hand_worked_state() -> None:
    x = np.array([1.0, 2.0, np.nan, 4.0])
    y = np.array([2.0, 4.0, 5.0, 8.0])
    state = CoolingState.of(["x", "y"], np.vstack([x, y]), bucket_size=2)
    series = state.series
    assert series["count"].tolist() == [3.0, 4.0]
    np.testing.assert_allclose(series["mean"], [7 / 3, 19 / 4], rtol=1e-15)
    # y: 2, 4, 5, 8 around 4.75: deviations -2.75, -0.75, 0.25, 3.25
    assert series["m2"][1] == pytest.approx(7.5625 + 0.5625 + 0.0625 + 10.5625, rel=1e-15)
    assert series["lag"][1] == pytest.approx(2.0625 - 0.1875 + 0.8125, rel=1e-15)
    assert series["non_decreasing"].tolist() == [1.0, 1.0]
    assert series["changes"].tolist() == [2.0, 3.0]
    pairs = state.pairs
    # over the tasks having both: x = 1, 2, 4 and y = 2x
    assert pairs["count"].tolist() == [3.0]
    assert pairs["comoment"][0] == pytest.approx(28 / 3, rel=1e-15)
    assert pairs["m2_x"][0] == pytest.approx(14 / 3, rel=1e-15)
    differences = state.differences  # (1, 2) then (2, 4)
    assert differences["count"].tolist() == [2.0]
    assert differences["mean_x"].tolist() == [1.5] and differences["mean_y"].tolist() == [3.0]
    assert state.complete_count == 3
    assert state.bucket_count == 2
    assert state.buckets["count"].tolist() == [[2.0, 2.0], [1.0, 2.0]]


def test_statistics_equal_reference_computations_over_the_whole() -> None:
    columns = _data(3, 500)
    state = CoolingState.of(NAMES, columns, bucket_size=64)
    for k in range(3):
        values = columns[k][~np.isnan(columns[k])]
        assert state.series["mean"][k] == pytest.approx(values.mean(), rel=1e-14)
        assert state.series["m2"][k] == pytest.approx(values.var() * values.size, rel=1e-12)
    complete = ~np.isnan(columns).any(axis=0)
    rows = columns[:, complete]
    np.testing.assert_allclose(
        state.complete_comoment, np.cov(rows) * (rows.shape[1] - 1), rtol=1e-10, atol=1e-9
    )
    both = ~np.isnan(columns[0]) & ~np.isnan(columns[2])
    r = np.corrcoef(columns[0][both], columns[2][both])[0, 1]
    pairs = state.pairs
    index = 1  # pairs (0, 1), (0, 2), (1, 2)
    assert (pairs["i"][index], pairs["j"][index]) == (0.0, 2.0)
    got = pairs["comoment"][index] / np.sqrt(pairs["m2_x"][index] * pairs["m2_y"][index])
    assert got == pytest.approx(r, rel=1e-12)


@pytest.mark.parametrize("seed", [0, 1])
def test_any_split_in_any_tree_order_gives_the_whole(seed: int) -> None:
    columns = _data(seed, 400)
    whole = CoolingState.of(NAMES, columns, bucket_size=32)
    cuts = [0, 1, 31, 32, 33, 200, 399, 400]
    parts = [
        CoolingState.of(NAMES, columns[:, a:b], start=a, bucket_size=32)
        for a, b in itertools.pairwise(cuts)
    ]
    left = parts[0]
    for part in parts[1:]:
        left = left.merge(part)
    right = parts[-1]
    for part in reversed(parts[:-1]):
        right = part.merge(right)
    middle = (parts[0].merge(parts[1]).merge(parts[2])).merge(
        parts[3].merge(parts[4].merge(parts[5].merge(parts[6])))
    )
    for merged in (left, right, middle):
        _assert_same_statistics(merged, whole)


@st.composite
def _splits(draw: st.DrawFn) -> tuple[np.ndarray, list[int], list[int], int]:
    n = draw(st.integers(1, 60))
    values = draw(
        st.lists(
            st.one_of(
                st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False),
                st.just(float("nan")),
                st.sampled_from([0.0, 1.0, 2.0]),
            ),
            min_size=3 * n,
            max_size=3 * n,
        )
    )
    columns = np.array(values).reshape(3, n)
    columns[1] += 1e6  # an offset metric
    cuts = sorted(set([*draw(st.lists(st.integers(0, n), max_size=6)), 0, n]))
    runs = len(cuts) - 1
    # a random binary merge tree: the order in which adjacent runs are joined
    order = draw(st.permutations(list(range(max(runs - 1, 0)))))
    bucket = draw(st.integers(1, 8))
    return columns, cuts, list(order), bucket


@given(_splits())
@example(
    (
        np.array(
            [
                [0.0, 0.0, 0.0, 2.0, -2.00001],
                [1e6, 1e6, 1e6, 1e6, 1e6],
                [np.nan, 0.0, 0.0, 0.0, 0.0],
            ]
        ),
        [0, 3, 5],
        [0],
        1,
    )
)  # a complete mean that cancels to -2.5e-6
def test_merge_is_associative_on_any_split_and_tree(
    case: tuple[np.ndarray, list[int], list[int], int],
) -> None:
    columns, cuts, order, bucket = case
    whole = CoolingState.of(NAMES, columns, bucket_size=bucket)
    runs = [
        CoolingState.of(NAMES, columns[:, a:b], start=a, bucket_size=bucket)
        for a, b in itertools.pairwise(cuts)
    ]
    for step in order:
        # join the adjacent pair the tree names next (indices shift as runs join)
        at = step % (len(runs) - 1)
        runs[at : at + 2] = [runs[at].merge(runs[at + 1])]
    assert len(runs) == 1
    _assert_same_statistics(runs[0], whole)


@given(_splits())
def test_native_and_numpy_states_agree(
    native: ModuleType,
    numpy_backend: ModuleType,
    case: tuple[np.ndarray, list[int], list[int], int],
) -> None:
    columns, cuts, _, bucket = case
    # with gaps, and complete (the native core's path without filtering)
    for data in (columns, np.nan_to_num(columns, nan=0.5)):
        flats = []
        for kernels in (native, numpy_backend):
            state = kernels.state_of_columns(data[:, : cuts[1]], 0, bucket)
            rest = kernels.state_of_columns(data[:, cuts[1] :], cuts[1], bucket)
            flats.append(kernels.state_merge(state, rest))
        np.testing.assert_allclose(flats[0], flats[1], rtol=1e-12, atol=1e-9, equal_nan=True)


def test_states_over_different_metrics_align() -> None:
    columns = _data(5, 60)
    first = CoolingState.of(["a", "b"], columns[:2, :30])
    # the second run has c, and its metrics in another order
    second = CoolingState.of(["c", "b", "a"], columns[[2, 1, 0], 30:], start=30)
    merged = first.merge(second)
    assert merged.names == ("a", "b", "c")
    whole_columns = columns.copy()
    whole_columns[2, :30] = np.nan  # c is absent from the first run
    _assert_same_statistics(merged, CoolingState.of(NAMES, whole_columns))


def test_bytes_round_trip_and_bad_bytes() -> None:
    state = CoolingState.of(["é", "b", "c"], _data(2, 100), bucket_size=16)
    data = state.to_bytes()
    assert data[:8] == b"CRKSTATE"
    assert struct.unpack_from("<IIQ", data, 8) == (2, 3, flat_length(3, state.bucket_count))
    (checksum,) = struct.unpack_from("<I", data, len(data) - 4)
    assert checksum == zlib.crc32(data[:-4])
    assert CoolingState.from_bytes(data) == state
    with pytest.raises(CrackleError, match="bad magic"):
        CoolingState.from_bytes(b"PK\x03\x04" + data[4:])
    with pytest.raises(CrackleError, match="bytes of body"):
        CoolingState.from_bytes(_version_1(state.names, state.flat)[:-8])
    with pytest.raises(CrackleError, match="checksum"):
        CoolingState.from_bytes(data[:-8])
    newer = data[:8] + struct.pack("<I", 3) + data[12:]
    with pytest.raises(CrackleError, match="format version 3"):
        CoolingState.from_bytes(newer)
    with pytest.raises(CrackleError, match="truncated"):
        CoolingState.from_bytes(data[:20])
    data = _version_1(state.names, state.flat)  # no checksum: the body's own checks
    assert CoolingState.from_bytes(data) == state
    header_at = len(data) - 8 * flat_length(3, state.bucket_count)
    broken = bytearray(data)
    broken[header_at + 8 * 5 : header_at + 8 * 6] = struct.pack("<d", 99.0)  # bucket_count
    with pytest.raises(CrackleError, match="do not cover"):
        CoolingState.from_bytes(bytes(broken))


def _version_1(names: Sequence[str], flat: NDArray[np.float64]) -> bytes:
    """The version-1 bytes of a state (the layout of version 2 without the checksum)."""
    parts = [b"CRKSTATE", struct.pack("<IIQ", 1, len(names), len(flat))]
    for name in names:
        parts += [struct.pack("<I", len(name.encode())), name.encode()]
    return b"".join([*parts, np.asarray(flat, "<f8").tobytes()])


def test_every_changed_bit_of_the_bytes_is_refused() -> None:
    columns = _data(2, 120)
    columns[1, ::7] = np.nan
    state = CoolingState.of(["a", "b", "c"], columns, bucket_size=32)
    data = state.to_bytes()
    for position in range(len(data)):
        changed = bytearray(data)
        changed[position] ^= 1 << (position % 8)
        with pytest.raises(CrackleError):
            CoolingState.from_bytes(bytes(changed))


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("count", math.inf, "series 0 has values that are not counts"),
        ("count", math.nan, "series 0 has values that are not counts"),
        ("count", 2.5, "series 0 has values that are not counts"),
        ("m2", -1.0, "series 0 has values that are negative"),
        ("mean_offset", math.inf, "series 0 has values that are not finite"),
        ("lag", math.nan, "series 0 has values that are not finite"),
        ("bucket_size", 1e18, "are not counts"),
        ("start", 2.0**70, "are not counts"),
    ],
)
def test_bytes_of_impossible_statistics_are_refused(field: str, value: float, message: str) -> None:
    state = CoolingState.of(["a", "b", "c"], _data(1, 20), bucket_size=8)
    flat = state.flat.copy()
    header = ["metrics", "start", "tasks", "bucket_size", "first_bucket"]
    if field in header:
        flat[header.index(field)] = value
    else:
        flat[HEADER_WIDTH + STATE_SERIES_FIELDS.index(field)] = value
    with pytest.raises(CrackleError, match=message):
        CoolingState.from_bytes(_version_1(state.names, flat))
    with pytest.raises(CrackleError, match="distinct"):
        CoolingState.from_bytes(_version_1(["a", "b", "a"], state.flat))
    with pytest.raises(CrackleError, match="distinct"):
        CoolingState(["a", "b", "a"], state.flat)


def test_a_state_without_metrics_counts_its_tasks() -> None:
    state = CoolingState.of([], np.zeros((0, 30)), start=5, bucket_size=8)
    assert (state.start, state.tasks, state.bucket_count) == (5, 30, 0)
    later = CoolingState.of(NAMES, _data(0, 10), start=35, bucket_size=8)
    merged = state.merge(later)
    assert (merged.names, merged.start, merged.tasks) == (tuple(NAMES), 5, 40)
    whole = np.concatenate([np.full((3, 30), np.nan), _data(0, 10)], axis=1)
    _assert_same_statistics(merged, CoolingState.of(NAMES, whole, start=5, bucket_size=8))
    assert CoolingState.of([], np.zeros((0, 0))).aligned(["a"]).tasks == 0


def test_bad_arguments_name_themselves() -> None:
    columns = _data(1, 20)
    with pytest.raises(ValueError, match="bucket_size"):
        CoolingState.of(NAMES, columns, bucket_size=0)
    with pytest.raises(ValueError, match="columns"):
        CoolingState.of(["a"], columns)
    bad = columns.copy()
    bad[0, 3] = np.inf
    with pytest.raises(ValueError, match="columns: values must be finite"):
        CoolingState.of(NAMES, bad)
    with pytest.raises(ValueError, match="start: tasks"):
        CoolingState.of(NAMES, columns, start=2**53)
    first = CoolingState.of(NAMES, columns[:, :10])
    with pytest.raises(ValueError, match="not consecutive"):
        first.merge(CoolingState.of(NAMES, columns[:, 11:], start=11))
    with pytest.raises(ValueError, match="bucket sizes"):
        first.merge(CoolingState.of(NAMES, columns[:, 10:], start=10, bucket_size=7))
