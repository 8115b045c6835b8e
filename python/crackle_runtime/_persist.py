"""``Kiln.save`` / ``Kiln.load``: one binary file, written atomically, no pickle.

Layout (all numbers little-endian)::

    magic        10 bytes  b"\\x89CRACKLE\\r\\n"
    version      u32       FORMAT_VERSION
    header size  u64
    header CRC   u32       CRC-32 of the header bytes
    header       JSON (UTF-8): tasks, metric names, label bytes, the profile, the library
                 version, the CRC-32 of the body
    body         values   float64 (metrics, tasks), one metric after another (NaN = absent)
                 fired_at float64 (tasks,), ms since the epoch
                 duration float64 (tasks,), s
                 ends     int64 (tasks,), the end of each label in the label bytes
                 labels   UTF-8 ("surrogatepass": every str round-trips)

Floats are written as their bytes, so a round trip is bit-identical. What is saved is what
was recorded: labels, metric names and values, firing times and durations, and the profile.
Cool hooks, the metrics they returned, the cooled state and ``kiln.failures`` are not saved;
a loaded kiln is open for recording, and cooling it gives the report the original gave when
no cool hooks were involved.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import struct
import tempfile
import time
import zlib
from dataclasses import dataclass
from io import BufferedReader
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: stale temporaries are recognised by their age
    fcntl = None  # type: ignore[assignment]
from typing import Any

import numpy as np
from numpy.typing import NDArray

from crackle_runtime.errors import CrackleError, InvalidProfileError
from crackle_runtime.profile import ThermalProfile

__all__ = ["FORMAT_VERSION", "Saved", "read", "write"]

MAGIC = b"\x89CRACKLE\r\n"
FORMAT_VERSION = 1
_PREFIX = struct.Struct("<IQI")
_MAX_HEADER = 1 << 30


@dataclass(frozen=True, slots=True)
class Saved:
    """What a kiln file holds; ``values`` is ``(metrics, tasks)``."""

    profile: ThermalProfile
    names: list[str]
    labels: list[str]
    values: NDArray[np.float64]
    fired_at: NDArray[np.float64]
    duration: NDArray[np.float64]


def _little(array: NDArray[Any]) -> NDArray[Any]:
    """A C-contiguous little-endian view (a copy only on big-endian machines)."""
    return np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))


def _view(piece: NDArray[Any] | bytes) -> memoryview:
    """The bytes of a contiguous array (or of bytes), without a copy."""
    if isinstance(piece, bytes):
        return memoryview(piece)
    return piece.data.cast("B") if piece.size else memoryview(b"")


def write(path: str | os.PathLike[str], saved: Saved, library_version: str) -> None:
    """Write ``saved`` to ``path`` atomically (a temporary file in the same folder, then a
    rename): ``path`` holds either the old content or the whole new file."""
    target = Path(path)
    encoded = [label.encode("utf-8", "surrogatepass") for label in saved.labels]
    ends = np.cumsum([len(label) for label in encoded], dtype=np.int64)
    label_bytes = b"".join(encoded)
    # metric rows of the (metrics, tasks) matrix are written one by one: no full copy
    pieces: list[NDArray[Any] | bytes] = [_little(row) for row in saved.values]
    pieces += [_little(saved.fired_at), _little(saved.duration), _little(ends), label_bytes]
    crc = 0
    for piece in pieces:
        crc = zlib.crc32(_view(piece), crc)
    header = json.dumps(
        {
            "tasks": len(saved.labels),
            "names": saved.names,
            "label_bytes": len(label_bytes),
            "profile": saved.profile.to_dict(),
            "library": library_version,
            "crc32": crc,
        }
    ).encode("utf-8")
    prefix = _PREFIX.pack(FORMAT_VERSION, len(header), zlib.crc32(header))
    mode = _file_mode(target)
    directory = target.parent
    _remove_stale_temporaries(target)
    descriptor, temporary = tempfile.mkstemp(
        prefix=temporary_prefix(target), suffix=".tmp", dir=directory
    )
    try:
        with os.fdopen(descriptor, "wb") as handle:
            _lock(handle)  # held while this save is alive (see _remove_stale_temporaries)
            handle.write(MAGIC + prefix + header)
            for piece in pieces:
                handle.write(_view(piece))
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    _sync_directory(directory)


_TEMPORARY_PREFIX = ".crackle-"
# Without advisory locks (Windows), a temporary older than this is taken as stale.
_STALE_AFTER_SECONDS = 3600.0


def temporary_prefix(target: Path) -> str:
    """The name prefix of ``target``'s temporaries: a hash of its name, so that any name
    length fits and the temporaries of one file are told from another's."""
    name = target.name.encode("utf-8", "surrogatepass")
    return f"{_TEMPORARY_PREFIX}{hashlib.blake2b(name, digest_size=8).hexdigest()}."


def _lock(handle: Any) -> bool:
    """Take an exclusive advisory lock on an open file without waiting; False when another
    process holds it. A killed process's locks are released by the system, so the
    temporary of a live save is locked and the one of a killed save is not."""
    if fcntl is None:
        return True
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def _remove_stale_temporaries(target: Path) -> None:
    """Delete the temporaries that killed saves of ``target`` left behind (best effort)."""
    pattern = f"{glob.escape(temporary_prefix(target))}*.tmp"
    try:
        candidates = list(target.parent.glob(pattern))
    except OSError:
        return
    for candidate in candidates:
        try:
            with open(candidate, "rb") as handle:
                stale = _lock(handle) and (
                    fcntl is not None
                    or time.time() - os.fstat(handle.fileno()).st_mtime > _STALE_AFTER_SECONDS
                )
            if stale:
                candidate.unlink()
        except OSError:
            continue


def _file_mode(target: Path) -> int:
    """The permissions of the file being replaced, else those a new file gets (0o666 less
    the umask)."""
    try:
        return target.stat().st_mode & 0o7777
    except OSError:
        pass
    try:  # Linux reports the umask without changing it
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


def _sync_directory(directory: Path) -> None:
    """Make the rename durable (POSIX); a no-op where directories cannot be opened."""
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def _fail(path: Path, reason: str) -> CrackleError:
    return CrackleError(f"cannot load {str(path)!r}: {reason}")


def _read_exact(handle: BufferedReader, count: int, path: Path, what: str) -> bytes:
    data = handle.read(count)
    if len(data) != count:
        raise _fail(path, f"the file is truncated (in the {what})")
    return data


def _read_array(
    handle: BufferedReader, shape: tuple[int, ...], dtype: str, path: Path, what: str
) -> NDArray[Any]:
    array = np.empty(shape, dtype=dtype)
    if array.size and handle.readinto(_view(array)) != array.nbytes:
        raise _fail(path, f"the file is truncated (in the {what})")
    return array


def read(path: str | os.PathLike[str]) -> Saved:
    """Read a kiln file; raise CrackleError when it is truncated, corrupted, not a kiln
    file or written by a newer format version."""
    source = Path(path)
    with source.open("rb") as handle:
        magic = handle.read(len(MAGIC))
        if magic != MAGIC:
            raise _fail(source, "not a crackle_runtime kiln file")
        version, header_size, header_crc = _PREFIX.unpack(
            _read_exact(handle, _PREFIX.size, source, "prefix")
        )
        if version > FORMAT_VERSION:
            raise _fail(
                source,
                f"written in kiln file format {version}; this version of crackle_runtime "
                f"reads format {FORMAT_VERSION} and older (upgrade crackle_runtime)",
            )
        if version < 1 or header_size > _MAX_HEADER:
            raise _fail(source, "the file header is corrupted")
        header_bytes = _read_exact(handle, header_size, source, "header")
        if zlib.crc32(header_bytes) != header_crc:
            raise _fail(source, "the file header is corrupted (its checksum does not match)")
        try:
            header = json.loads(header_bytes)
            tasks, names = int(header["tasks"]), [str(name) for name in header["names"]]
            label_bytes, crc = int(header["label_bytes"]), int(header["crc32"])
            profile = _profile(header["profile"])
        except (
            ValueError,
            KeyError,
            TypeError,
            AttributeError,
            RecursionError,
            OverflowError,  # int(1e999)
        ) as exc:
            raise _fail(source, f"the file header is corrupted ({exc})") from None
        if tasks < 0 or label_bytes < 0 or len(set(names)) != len(names) or "" in names:
            raise _fail(source, "the file header is corrupted")
        body = 8 * (len(names) * tasks + 3 * tasks) + label_bytes
        remaining = os.fstat(handle.fileno()).st_size - handle.tell()
        if remaining < body:
            raise _fail(source, "the file is truncated")
        if remaining > body:
            raise _fail(source, "unexpected data after the end of the kiln")
        values = _read_array(handle, (len(names), tasks), "<f8", source, "metric values")
        fired_at = _read_array(handle, (tasks,), "<f8", source, "firing times")
        duration = _read_array(handle, (tasks,), "<f8", source, "durations")
        ends = _read_array(handle, (tasks,), "<i8", source, "labels")
        text = _read_exact(handle, label_bytes, source, "labels")
    check = 0
    for piece in (values, fired_at, duration, ends):
        check = zlib.crc32(_view(piece), check)
    if zlib.crc32(text, check) != crc:
        raise _fail(source, "the checksum does not match (the file is corrupted)")
    labels = _labels(text, ends, label_bytes, source)
    # the checksum guards against damage, not against a crafted file: check what recording
    # guarantees (finite values or NaN for absent ones, finite times), so a bad file fails
    # here and not later in cool()
    if np.isinf(values).any():
        raise _fail(source, "a metric value is infinite (a kiln records finite values only)")
    if not (np.isfinite(fired_at).all() and np.isfinite(duration).all()):
        raise _fail(source, "a firing time or duration is not finite")
    native = "=f8"
    return Saved(
        profile,
        names,
        labels,
        values.astype(native, copy=False),
        fired_at.astype(native, copy=False),
        duration.astype(native, copy=False),
    )


def _labels(text: bytes, ends: NDArray[np.int64], label_bytes: int, source: Path) -> list[str]:
    """The labels of the label table (each label's end offset in ``text``)."""
    starts = np.concatenate((np.zeros(1, dtype=np.int64), ends))[:-1]
    if len(ends) and (starts[0] != 0 or ends[-1] != label_bytes or bool(np.any(ends < starts))):
        raise _fail(source, "the label table is corrupted")
    try:
        return [
            text[start:end].decode("utf-8", "surrogatepass")
            for start, end in zip(starts.tolist(), ends.tolist(), strict=True)
        ]
    except UnicodeDecodeError as exc:
        raise _fail(source, f"a label is not valid UTF-8 ({exc})") from None


def _profile(fields: dict[str, Any]) -> ThermalProfile:
    try:
        return ThermalProfile.from_dict(fields)
    except InvalidProfileError as exc:
        raise ValueError(f"invalid profile: {exc}") from None
