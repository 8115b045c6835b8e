"""``Kiln.save`` / ``Kiln.load`` (SPEC §8): exact round trip, atomic writes, clear errors."""

from __future__ import annotations

import json
import math
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from crackle_runtime import CrackleError, Kiln, PatternKind, TaskOutput, ThermalProfile, _persist


def _kiln_state(kiln: Kiln) -> tuple[list[str], list[str], bytes, list[float], list[float]]:
    labels, names, values = kiln.metric_matrix()
    entries = kiln.entries
    return (
        labels,
        names,
        values.tobytes(),
        [entry.metadata.fired_at.as_millis() for entry in entries],
        [entry.metadata.fire_duration for entry in entries],
    )


def test_round_trip_is_exact(tmp_path: Path) -> None:
    profile = ThermalProfile.slow_cooling().without(PatternKind.OUTLIER).with_thresholds(fdr=0.05)
    kiln = Kiln(profile)
    kiln.fire_all(
        [lambda i=i: TaskOutput(i, {"x": 0.1 * i, "y": -0.0 if i else 5e-324}) for i in range(50)]
    )
    kiln.add_entry("ünïcödé ✓ \ud800 label", {"z": 1e308, "x": math.pi})
    kiln.add_entry("", {})
    path = tmp_path / "run.kiln"
    kiln.save(path)
    loaded = Kiln.load(path)
    assert _kiln_state(loaded) == _kiln_state(kiln)
    assert loaded.profile == profile
    assert not loaded.is_cooled
    # the loaded kiln records on and cools like the original
    assert [p.to_dict() for p in loaded.cool()] == [p.to_dict() for p in kiln.cool()]
    loaded.reset()
    loaded.add_entry("new", {"w": 1.0})
    assert loaded.metric_names == ["w"]


def test_loaded_kiln_keeps_recording_and_a_given_profile_wins(tmp_path: Path) -> None:
    kiln = Kiln()
    kiln.add_matrix(np.arange(12.0).reshape(4, 3), ["a", "b", "c"])
    kiln.save(str(tmp_path / "k"))
    loaded = Kiln.load(str(tmp_path / "k"), profile=ThermalProfile.fast_cooling())
    assert loaded.profile == ThermalProfile.fast_cooling()
    loaded.add_entry("more", {"c": 1.0, "d": 2.0})
    for i in range(2000):  # grows the restored buffers
        loaded.add_entry(f"t{i}", {"a": float(i)})
    _, names, values = loaded.metric_matrix()
    assert names == ["a", "b", "c", "d"] and values.shape == (2005, 4)
    np.testing.assert_array_equal(values[:4, :3], np.arange(12.0).reshape(4, 3))
    np.testing.assert_array_equal(values[4], [np.nan, np.nan, 1.0, 2.0])
    assert values[-1, 0] == 1999.0


def test_empty_kiln_round_trips(tmp_path: Path) -> None:
    Kiln().save(tmp_path / "empty")
    loaded = Kiln.load(tmp_path / "empty")
    assert loaded.task_count == 0 and loaded.metric_names == []


_LABELS = st.text(st.characters(codec=None, exclude_categories=()), max_size=6)
_VALUE = st.floats(allow_infinity=False, allow_nan=False) | st.just(math.nan)


@given(rows=st.lists(st.tuples(_LABELS, st.lists(_VALUE, min_size=3, max_size=3)), max_size=20))
def test_round_trip_property(
    rows: list[tuple[str, list[float]]], tmp_path_factory: pytest.TempPathFactory
) -> None:
    kiln = Kiln()
    if rows:
        kiln.add_matrix(
            [values for _, values in rows], ["a", "b", "c"], [label for label, _ in rows]
        )
    path = tmp_path_factory.mktemp("prop") / "k"
    kiln.save(path)
    assert _kiln_state(Kiln.load(path)) == _kiln_state(kiln)


# --- errors --------------------------------------------------------------------------------
@pytest.fixture
def saved(tmp_path: Path) -> Path:
    kiln = Kiln()
    kiln.add_matrix(np.arange(20.0).reshape(10, 2), ["a", "b"])
    path = tmp_path / "good.kiln"
    kiln.save(path)
    return path


def test_truncated_file(saved: Path) -> None:
    data = saved.read_bytes()
    for size in (0, 5, len(_persist.MAGIC) + 4, 40, len(data) // 2, len(data) - 1):
        saved.write_bytes(data[:size])
        with pytest.raises(CrackleError, match=r"not a crackle_runtime kiln file|truncated"):
            Kiln.load(saved)


def test_foreign_corrupted_and_extended_files(saved: Path, tmp_path: Path) -> None:
    data = saved.read_bytes()
    foreign = tmp_path / "foreign.csv"
    foreign.write_text("a,b\n1,2\n")
    with pytest.raises(CrackleError, match="not a crackle_runtime kiln file"):
        Kiln.load(foreign)
    flipped = bytearray(data)
    flipped[-30] ^= 0x01  # a bit of a value
    saved.write_bytes(bytes(flipped))
    with pytest.raises(CrackleError, match="checksum"):
        Kiln.load(saved)
    saved.write_bytes(data + b"\x00")
    with pytest.raises(CrackleError, match="unexpected data after the end"):
        Kiln.load(saved)
    header_at = len(_persist.MAGIC) + struct.calcsize("<IQI")
    saved.write_bytes(data[:header_at] + b"X" + data[header_at + 1 :])
    with pytest.raises(CrackleError, match="header is corrupted"):
        Kiln.load(saved)


def test_newer_format_version(saved: Path) -> None:
    data = bytearray(saved.read_bytes())
    struct.pack_into("<I", data, len(_persist.MAGIC), _persist.FORMAT_VERSION + 1)
    saved.write_bytes(bytes(data))
    with pytest.raises(CrackleError, match=r"format 2; .* reads format 1 and older"):
        Kiln.load(saved)


def test_bad_profile_in_header(saved: Path) -> None:
    data = saved.read_bytes()
    start = len(_persist.MAGIC) + struct.calcsize("<IQI")
    (size,) = struct.unpack_from("<Q", data, len(_persist.MAGIC) + 4)
    header = json.loads(data[start : start + size])
    header["profile"]["fdr"] = 7.0
    encoded = json.dumps(header).encode()
    prefix = struct.pack("<IQI", _persist.FORMAT_VERSION, len(encoded), zlib.crc32(encoded))
    saved.write_bytes(_persist.MAGIC + prefix + encoded + data[start + size :])
    with pytest.raises(CrackleError, match="invalid profile: fdr must be in"):
        Kiln.load(saved)


def test_save_is_atomic(saved: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = saved.read_bytes()
    kiln = Kiln()
    kiln.add_entry("x", {"a": 1.0})

    def broken_fsync(descriptor: int) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="disk full"):
        kiln.save(saved)
    assert saved.read_bytes() == before  # the old file is intact
    assert sorted(p.name for p in saved.parent.iterdir()) == [saved.name]  # no temp file left


def test_profile_dict_round_trip_and_unknown_fields() -> None:
    profile = ThermalProfile.fast_cooling().only("outlier", "dependence")
    assert ThermalProfile.from_dict(profile.to_dict()) == profile
    assert ThermalProfile.from_dict({}) == ThermalProfile.default()
    with pytest.raises(CrackleError, match="unknown profile fields: colour"):
        ThermalProfile.from_dict({"colour": "red"})


def _rewrite_header(path: Path, header: bytes) -> None:
    data = path.read_bytes()
    start = len(_persist.MAGIC) + struct.calcsize("<IQI")
    (size,) = struct.unpack_from("<Q", data, len(_persist.MAGIC) + 4)
    prefix = struct.pack("<IQI", _persist.FORMAT_VERSION, len(header), zlib.crc32(header))
    path.write_bytes(_persist.MAGIC + prefix + header + data[start + size :])


def test_every_header_byte_is_checked(saved: Path) -> None:
    data = saved.read_bytes()
    start = len(_persist.MAGIC) + struct.calcsize("<IQI")
    (size,) = struct.unpack_from("<Q", data, len(_persist.MAGIC) + 4)
    for at in range(start, start + size, max(1, size // 40)):
        flipped = bytearray(data)
        flipped[at] ^= 0x04
        saved.write_bytes(bytes(flipped))
        with pytest.raises(CrackleError, match="header is corrupted"):
            Kiln.load(saved)
    _rewrite_header(saved, b"[" * 100_000 + b"]" * 100_000)
    with pytest.raises(CrackleError, match="header is corrupted"):
        Kiln.load(saved)


def test_saved_files_get_the_usual_permissions_and_long_names_work(tmp_path: Path) -> None:
    kiln = Kiln()
    kiln.add_entry("t", {"x": 1.0})
    fresh = tmp_path / "fresh.kiln"
    kiln.save(fresh)
    umask = os.umask(0o022)
    os.umask(umask)
    assert fresh.stat().st_mode & 0o777 == 0o666 & ~umask
    fresh.chmod(0o640)
    kiln.save(fresh)  # replacing keeps the file's permissions
    assert fresh.stat().st_mode & 0o777 == 0o640
    long_name = tmp_path / ("k" * 250)
    kiln.save(long_name)
    assert Kiln.load(long_name).labels == ["t"]
