"""The mergeable cooling state (SPEC §14): a fixed-shape summary of a run of consecutive
tasks that merges exactly with the summary of the run that follows.

The statistics are computed by the backend's kernels (``state_of_columns``,
``state_merge``: ``src-rust/state/`` and its NumPy twin ``_numpy/state.py``), which share
one flat float64 body. This module gives it names, aligns states over different metric
sets, and serialises it.

Byte layout of ``CoolingState.to_bytes()`` (version 2, every number little-endian)::

    offset  size  field
    0       8     magic b"CRKSTATE"
    8       4     u32 format version (2)
    12      4     u32 m, the number of metrics
    16      8     u64 b, the number of float64 values in the body
    24      ...   m names, each a u32 byte length then its UTF-8 bytes
    ...     8·b   the body, float64: [m, start, tasks, bucket_size, first_bucket,
                  bucket_count, complete_count], m series (SERIES_FIELDS), m(m-1)/2 pair
                  series and as many of their first differences (PAIR_FIELDS), the complete
                  tasks' m first values, m mean offsets (mean - first) and m×m co-moments
                  (row-major), bucket_count·m bucket series (bucket-major); a mean is held
                  as its offset from its run's first value
    ...     4     u32 CRC-32 (zlib) of every byte before it (version 2; version 1 has none)

No pickle: a foreign, truncated, newer, corrupted (checksum) or inconsistent input (counts
that are not counts, buckets that do not add up to their metric, negative sums of squares,
statistics that are not finite) raises CrackleError saying which.
"""

from __future__ import annotations

import math
import struct
import zlib
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from crackle_runtime import _backend
from crackle_runtime._numpy.state import (
    HEADER_WIDTH,
    STATE_PAIR_FIELDS,
    STATE_SERIES_FIELDS,
    check_counts,
    flat_length,
)
from crackle_runtime.errors import CrackleError

__all__ = ["DEFAULT_BUCKET_SIZE", "FORMAT_VERSION", "MAGIC", "CoolingState"]

MAGIC = b"CRKSTATE"
FORMAT_VERSION = 2
#: Task positions per bucket of the change-point summaries: the second pass reads at most a
#: few buckets of this many tasks per metric.
DEFAULT_BUCKET_SIZE = 4096

_SERIES_WIDTH = len(STATE_SERIES_FIELDS)
_PAIR_WIDTH = len(STATE_PAIR_FIELDS)
_EMPTY_SERIES = np.array(
    [0.0, 0.0, 0.0, 0.0, math.nan, math.nan, math.inf, -math.inf, 0.0, 1.0, 1.0, 0.0]
)
_EMPTY_PAIR = np.array([0.0] * 8 + [math.nan] * 4 + [math.inf] * 2 + [-math.inf] * 2)
# fields that are counts, sums of squares, and values (NaN or infinite when nothing counted)
_SERIES_COUNTS = [STATE_SERIES_FIELDS.index(f) for f in ("count", "changes")]
_SERIES_SQUARES = [STATE_SERIES_FIELDS.index("m2")]
_SERIES_VALUES = [STATE_SERIES_FIELDS.index(f) for f in ("first", "last", "min", "max")]
_PAIR_SQUARES = [STATE_PAIR_FIELDS.index(f) for f in ("m2_x", "m2_y")]
_PAIR_VALUES = [
    STATE_PAIR_FIELDS.index(f)
    for f in ("first_x", "first_y", "last_x", "last_y", "min_x", "min_y", "max_x", "max_y")
]
# PAIR_FIELDS with x and y exchanged (the co-moment is symmetric)
_SWAP = [0, 2, 1, 4, 3, 5, 7, 6, 9, 8, 11, 10, 13, 12, 15, 14]


class CoolingState:
    """The summary of the tasks ``start .. start + tasks`` over the metrics ``names``.

    Make one with :meth:`of`; combine the state of a run with the state of the run that
    follows it with :meth:`merge` (in any tree order: the statistics are the same up to
    rounding); store it with :meth:`to_bytes` / :meth:`from_bytes`. The statistics are
    read-only NumPy arrays: :attr:`series` (per metric), :attr:`pairs` and
    :attr:`differences` (per metric pair i < j), :attr:`complete_mean` /
    :attr:`complete_comoment` (over the tasks having every metric) and :attr:`buckets`
    (per bucket of ``bucket_size`` task positions and metric).
    """

    __slots__ = ("_flat", "_names")

    def __init__(self, names: Sequence[str], flat: NDArray[np.float64]) -> None:
        self._names = tuple(names)
        if len(set(self._names)) != len(self._names):
            raise CrackleError(f"state: metric names must be distinct, got {list(self._names)}")
        self._flat = np.asarray(flat, dtype=np.float64)
        self._flat.setflags(write=False)
        if int(self._flat[0]) != len(self._names):
            raise CrackleError(
                f"state: the body holds {int(self._flat[0])} metrics, "
                f"{len(self._names)} names given"
            )

    @classmethod
    def of(
        cls,
        names: Sequence[str],
        columns: NDArray[np.float64],
        start: int = 0,
        bucket_size: int | None = None,
    ) -> CoolingState:
        """The state of the tasks in ``columns`` (float64 (metrics, tasks), NaN where a task
        lacks a metric) over the metrics ``names``, the first task at position ``start`` of
        the whole series; buckets of ``bucket_size`` task positions (default
        DEFAULT_BUCKET_SIZE)."""
        if bucket_size is None:
            bucket_size = DEFAULT_BUCKET_SIZE
        names = [str(name) for name in names]
        if len(set(names)) != len(names):
            raise ValueError("names: metric names must be distinct")
        values = np.ascontiguousarray(columns, dtype=np.float64)
        if values.ndim != 2 or values.shape[0] != len(names):
            raise ValueError(
                f"columns: expected a ({len(names)}, tasks) array, got shape {values.shape}"
            )
        if int(start) < 0:
            raise ValueError(f"start must be >= 0, got {start}")
        if not 1 <= int(bucket_size) < 2**53:
            raise ValueError(f"bucket_size must be >= 1 and < 2**53, got {bucket_size}")
        flat = _backend.kernels().state_of_columns(values, int(start), int(bucket_size))
        return cls(names, flat)

    # --- shape ------------------------------------------------------------------------------
    @property
    def names(self) -> tuple[str, ...]:
        return self._names

    def _header(self, index: int) -> int:
        return int(self._flat[index])

    @property
    def start(self) -> int:
        return self._header(1)

    @property
    def tasks(self) -> int:
        return self._header(2)

    @property
    def bucket_size(self) -> int:
        return self._header(3)

    @property
    def first_bucket(self) -> int:
        return self._header(4)

    @property
    def bucket_count(self) -> int:
        return self._header(5)

    @property
    def complete_count(self) -> int:
        return self._header(6)

    @property
    def flat(self) -> NDArray[np.float64]:
        """The float64 body (read-only)."""
        return self._flat

    # --- statistics -------------------------------------------------------------------------
    def _blocks(self) -> dict[str, NDArray[np.float64]]:
        m = len(self._names)
        p = m * (m - 1) // 2
        at = HEADER_WIDTH
        blocks: dict[str, NDArray[np.float64]] = {}
        for name, size in (
            ("series", m * _SERIES_WIDTH),
            ("pairs", p * _PAIR_WIDTH),
            ("differences", p * _PAIR_WIDTH),
            ("complete_first", m),
            ("complete_mean_offset", m),
            ("complete_comoment", m * m),
        ):
            blocks[name] = self._flat[at : at + size]
            at += size
        blocks["buckets"] = self._flat[at:]
        return blocks

    @property
    def series(self) -> dict[str, NDArray[np.float64]]:
        """Per metric (in ``names`` order) over its present values in task order:
        ``count``, ``mean_offset`` (mean - first), ``m2`` (Σ (x - mean)²), ``lag`` (Σ (x_t -
        mean)(x_{t+1} - mean)), ``first``, ``last``, ``min``, ``max``, ``changes`` (adjacent
        values that differ), ``non_decreasing``/``non_increasing`` (1/0), ``range`` (a bound
        on the largest |partial sum of x - mean|), and ``mean`` (first + mean_offset)."""
        rows = self._blocks()["series"].reshape(-1, _SERIES_WIDTH)
        fields = {field: rows[:, k] for k, field in enumerate(STATE_SERIES_FIELDS)}
        fields["mean"] = fields["first"] + fields["mean_offset"]
        return fields

    def _pair_block(self, block: str) -> dict[str, NDArray[np.float64]]:
        rows = self._blocks()[block].reshape(-1, _PAIR_WIDTH)
        fields = {field: rows[:, k] for k, field in enumerate(STATE_PAIR_FIELDS)}
        fields["mean_x"] = fields["first_x"] + fields["mean_offset_x"]
        fields["mean_y"] = fields["first_y"] + fields["mean_offset_y"]
        m = len(self._names)
        pairs = [(i, j) for i in range(m) for j in range(i + 1, m)]
        fields["i"] = np.array([i for i, _ in pairs], dtype=np.float64)
        fields["j"] = np.array([j for _, j in pairs], dtype=np.float64)
        return fields

    @property
    def pairs(self) -> dict[str, NDArray[np.float64]]:
        """Per metric pair (i, j), i < j, over the tasks having both: PAIR_FIELDS
        (``comoment`` = Σ (x - mean_x)(y - mean_y)), ``mean_x``, ``mean_y`` and the pair's
        ``i``, ``j``."""
        return self._pair_block("pairs")

    @property
    def differences(self) -> dict[str, NDArray[np.float64]]:
        """As :attr:`pairs`, of the first differences of each pair's values (consecutive
        among the tasks having both)."""
        return self._pair_block("differences")

    @property
    def complete_mean(self) -> NDArray[np.float64]:
        """Per metric, the mean over the complete tasks."""
        blocks = self._blocks()
        return blocks["complete_first"] + blocks["complete_mean_offset"]

    @property
    def complete_comoment(self) -> NDArray[np.float64]:
        """m×m Σ (x_i - mean_i)(x_j - mean_j) over the complete tasks (the centred Gram
        matrix of ``[x, 1]``)."""
        m = len(self._names)
        return self._blocks()["complete_comoment"].reshape(m, m)

    @property
    def buckets(self) -> dict[str, NDArray[np.float64]]:
        """SERIES_FIELDS per bucket and metric, each an array (bucket_count, metrics);
        bucket ``first_bucket + b`` holds task positions ``[(first_bucket + b) ·
        bucket_size, ...)``."""
        m = len(self._names)
        rows = self._blocks()["buckets"].reshape(-1, m, _SERIES_WIDTH)
        return {field: rows[:, :, k] for k, field in enumerate(STATE_SERIES_FIELDS)}

    # --- merging ----------------------------------------------------------------------------
    def aligned(self, names: Sequence[str]) -> CoolingState:
        """The same tasks over ``names`` (which must include every name of this state): a
        metric this state lacks is absent from every one of its tasks."""
        names = [str(name) for name in names]
        where = {name: k for k, name in enumerate(self._names)}
        missing = [name for name in self._names if name not in set(names)]
        if missing:
            raise ValueError(f"names: {missing} of the state are not in names")
        if list(names) == list(self._names):
            return self
        blocks = self._blocks()
        old_m = len(self._names)
        m = len(names)
        series_old = blocks["series"].reshape(-1, _SERIES_WIDTH)
        series = np.array(
            [series_old[where[n]] if n in where else _EMPTY_SERIES for n in names]
        ).reshape(-1, _SERIES_WIDTH)

        def pair_rows(block: NDArray[np.float64]) -> NDArray[np.float64]:
            rows = block.reshape(-1, _PAIR_WIDTH)
            index: dict[tuple[int, int], int] = {}
            position = 0
            for i in range(old_m):
                for j in range(i + 1, old_m):
                    index[(i, j)] = position
                    position += 1
            out: list[NDArray[np.float64]] = []
            for a in range(m):
                for b in range(a + 1, m):
                    if names[a] not in where or names[b] not in where:
                        out.append(_EMPTY_PAIR)
                        continue
                    i, j = where[names[a]], where[names[b]]
                    if i < j:
                        out.append(rows[index[(i, j)]])
                    else:
                        out.append(rows[index[(j, i)]][_SWAP])
            return np.array(out).reshape(-1, _PAIR_WIDTH)

        pairs = pair_rows(blocks["pairs"])
        differences = pair_rows(blocks["differences"])
        complete_count = self.complete_count
        if complete_count and all(n in where for n in names):
            order = [where[n] for n in names]
            origin = blocks["complete_first"][order]
            means = blocks["complete_mean_offset"][order]
            comoment = blocks["complete_comoment"].reshape(old_m, old_m)[np.ix_(order, order)]
        else:
            # a metric no task of this run has: no task of it is complete
            complete_count = 0
            origin, means, comoment = np.zeros(m), np.zeros(m), np.zeros((m, m))
        tasks = self.tasks
        bucket_count = self.bucket_count
        if old_m:
            bucket_rows = blocks["buckets"].reshape(-1, old_m, _SERIES_WIDTH)
            buckets = np.array(
                [
                    [bucket[where[n]] if n in where else _EMPTY_SERIES for n in names]
                    for bucket in bucket_rows
                ]
            ).reshape(-1)
        elif tasks:
            # a run without metrics has no buckets yet: every metric absent in each
            last = (self.start + tasks - 1) // self.bucket_size
            bucket_count = last - self.first_bucket + 1
            buckets = np.tile(_EMPTY_SERIES, bucket_count * m)
        else:
            buckets = np.zeros(0)
        header = [
            m,
            self.start,
            tasks,
            self.bucket_size,
            self.first_bucket,
            bucket_count,
            complete_count,
        ]
        flat = np.concatenate(
            [
                np.array(header, dtype=np.float64),
                series.reshape(-1),
                pairs.reshape(-1),
                differences.reshape(-1),
                np.asarray(origin, dtype=np.float64).reshape(-1),
                np.asarray(means, dtype=np.float64).reshape(-1),
                np.asarray(comoment, dtype=np.float64).reshape(-1),
                buckets,
            ]
        )
        return CoolingState(names, flat)

    def merge(self, other: CoolingState) -> CoolingState:
        """The state of this run followed by the run of ``other`` (which must start where
        this one ends, with the same ``bucket_size``); metrics of either that the other lacks
        are absent from its tasks."""
        if not isinstance(other, CoolingState):
            raise TypeError(f"other must be a CoolingState, got {type(other).__name__}")
        names = list(self._names) + [n for n in other.names if n not in set(self._names)]
        first, second = self.aligned(names), other.aligned(names)
        flat = _backend.kernels().state_merge(first.flat, second.flat)
        return CoolingState(names, flat)

    # --- bytes ------------------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        """The versioned binary form (see the module's documentation); no pickle."""
        encoded = [name.encode("utf-8") for name in self._names]
        parts = [MAGIC, struct.pack("<IIQ", FORMAT_VERSION, len(encoded), self._flat.size)]
        for name in encoded:
            parts.append(struct.pack("<I", len(name)))
            parts.append(name)
        parts.append(self._flat.astype("<f8").tobytes())
        data = b"".join(parts)
        return data + struct.pack("<I", zlib.crc32(data))

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview) -> CoolingState:
        """The state whose :meth:`to_bytes` is ``data``; CrackleError naming the problem
        when ``data`` is not one (foreign, truncated, newer version, inconsistent)."""
        raw = bytes(data)
        if raw[: len(MAGIC)] != MAGIC:
            raise CrackleError("state bytes: not a crackle_runtime state (bad magic)")
        if len(raw) < 24:
            raise CrackleError(f"state bytes: truncated header ({len(raw)} bytes)")
        version, count, length = struct.unpack_from("<IIQ", raw, 8)
        if version > FORMAT_VERSION or version < 1:
            raise CrackleError(
                f"state bytes: format version {version}, this library reads 1 to {FORMAT_VERSION}"
            )
        if version >= 2:
            if len(raw) < 28:
                raise CrackleError(f"state bytes: truncated ({len(raw)} bytes)")
            (checksum,) = struct.unpack_from("<I", raw, len(raw) - 4)
            raw = raw[:-4]
            if zlib.crc32(raw) != checksum:
                raise CrackleError(
                    "state bytes: checksum mismatch (the bytes were changed or truncated)"
                )
        at = 24
        names: list[str] = []
        for _ in range(count):
            if at + 4 > len(raw):
                raise CrackleError("state bytes: truncated in the metric names")
            (size,) = struct.unpack_from("<I", raw, at)
            at += 4
            if at + size > len(raw):
                raise CrackleError("state bytes: truncated in the metric names")
            try:
                names.append(raw[at : at + size].decode("utf-8"))
            except UnicodeDecodeError as exc:
                raise CrackleError("state bytes: a metric name is not UTF-8") from exc
            at += size
        if len(raw) - at != 8 * length:
            raise CrackleError(
                f"state bytes: {len(raw) - at} bytes of body where the header says {8 * length}"
            )
        flat = np.frombuffer(raw, dtype="<f8", count=length, offset=at).astype(np.float64)
        _check_body(flat, len(names))
        return cls(names, flat)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CoolingState):
            return NotImplemented
        return self._names == other._names and bool(
            np.array_equal(self._flat, other._flat, equal_nan=True)
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"CoolingState({len(self._names)} metrics, tasks {self.start}.."
            f"{self.start + self.tasks}, {self.bucket_count} buckets of {self.bucket_size})"
        )


def _check_body(flat: NDArray[np.float64], metrics: int) -> None:
    """CrackleError unless ``flat`` is the body of a state over ``metrics`` metrics."""
    if flat.size < HEADER_WIDTH:
        raise CrackleError(f"state bytes: a body of {flat.size} values has no header")
    header = flat[:HEADER_WIDTH]
    if not _counts(header).all():
        raise CrackleError(f"state bytes: header values {header.tolist()} are not counts")
    m, start, tasks, size, first, buckets, complete = (int(v) for v in header)
    if m != metrics:
        raise CrackleError(f"state bytes: the body holds {m} metrics, the names {metrics}")
    if size < 1:
        raise CrackleError("state bytes: bucket_size is 0")
    expected_buckets = (
        0 if tasks == 0 or m == 0 else (start + tasks - 1) // size - start // size + 1
    )
    if first != start // size or buckets != expected_buckets:
        raise CrackleError(
            f"state bytes: buckets {first} + {buckets} do not cover tasks {start}..{start + tasks}"
        )
    if complete > tasks:
        raise CrackleError(f"state bytes: {complete} complete tasks of {tasks}")
    if flat.size != flat_length(m, buckets):
        raise CrackleError(
            f"state bytes: {flat.size} values where {m} metrics and {buckets} buckets take "
            f"{flat_length(m, buckets)}"
        )
    _check_statistics(flat, m, buckets)
    try:
        check_counts(flat, [m, start, tasks, size, first, buckets, complete], "state bytes")
    except ValueError as exc:
        raise CrackleError(str(exc)) from None


def _counts(values: NDArray[np.float64]) -> NDArray[np.bool_]:
    """Which values are counts: whole numbers in 0 .. 2**53 (exact in a float64)."""
    with np.errstate(invalid="ignore"):
        return np.asarray(
            (values >= 0) & (values < 2.0**53) & (values == np.floor(values)), dtype=np.bool_
        )


def _check_statistics(flat: NDArray[np.float64], m: int, buckets: int) -> None:
    """CrackleError unless every summary of the body is one: counts are counts, sums of
    squares are >= 0, the other statistics finite (a summary of no value holds the empty
    summary's NaN and infinite first, last, min and max)."""
    pairs = m * (m - 1) // 2
    series_at = HEADER_WIDTH
    pairs_at = series_at + m * _SERIES_WIDTH
    complete_at = pairs_at + 2 * pairs * _PAIR_WIDTH
    buckets_at = complete_at + 2 * m + m * m
    series = np.concatenate(
        [flat[series_at:pairs_at], flat[buckets_at : buckets_at + buckets * m * _SERIES_WIDTH]]
    ).reshape(-1, _SERIES_WIDTH)
    pair_rows = flat[pairs_at:complete_at].reshape(-1, _PAIR_WIDTH)
    checks = [
        ("series", series, _SERIES_COUNTS, _SERIES_SQUARES, _SERIES_VALUES),
        ("pair series", pair_rows, [0], _PAIR_SQUARES, _PAIR_VALUES),
    ]
    for what, rows, counts, squares, values in checks:
        finite = np.isfinite(rows)
        finite[:, values] |= (rows[:, 0] == 0)[:, None]  # the empty summary's NaN, infinities
        problems = [
            (~_counts(rows[:, counts]), "are not counts"),
            (~finite, "are not finite"),
            (np.isfinite(rows[:, squares]) & (rows[:, squares] < 0), "are negative"),
        ]
        for bad, problem in problems:
            if bad.any():
                row = int(np.argwhere(bad)[0][0])
                raise CrackleError(f"state bytes: {what} {row} has values that {problem}")
    if not np.isfinite(flat[complete_at:buckets_at]).all():
        raise CrackleError("state bytes: the complete tasks' statistics are not finite")
