"""File plumbing for the store: streamed hashing, joining parts, the voices .npz, sidecars.

Nothing here knows where bytes come from; the fetchers hand it open streams.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

import numpy as np

from framecast.exceptions import ModelFetchError

__all__ = [
    "Reader",
    "Writer",
    "VOICE_SHAPE",
    "append_stream",
    "file_sha256",
    "read_sidecar",
    "replace_tree",
    "voice_from_bin",
    "write_sidecar",
    "write_voices_npz",
]


class Reader(Protocol):
    """A binary stream to read from (a file, a zip or tar member)."""

    def read(self, size: int = -1, /) -> bytes: ...


class Writer(Protocol):
    """A binary stream to write to."""

    def write(self, data: bytes, /) -> int: ...


_CHUNK = 1 << 20
VOICE_SHAPE = (510, 1, 256)
"""Kokoro style vectors: one (1, 256) row per token count up to 510."""

_SIDECAR_SUFFIX = ".sha256"
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def append_stream(source: Reader, out: Writer, digest: hashlib._Hash) -> int:
    """Copy ``source`` to ``out`` in 1 MiB chunks, feeding ``digest``; return the byte count.

    Chunked so a 500 MB GGUF part never sits in memory.
    """
    total = 0
    while chunk := source.read(_CHUNK):
        out.write(chunk)
        digest.update(chunk)
        total += len(chunk)
    return total


def file_sha256(path: Path) -> str:
    """Hash a file in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while chunk := source.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def voice_from_bin(name: str, raw: bytes) -> np.ndarray:
    """Decode one Kokoro voice ``.bin`` (raw little-endian float32) into (510, 1, 256).

    Raises:
        ModelFetchError: the size does not match the shape.
    """
    expected = int(np.prod(VOICE_SHAPE)) * 4
    if len(raw) != expected:
        raise ModelFetchError(f"voice {name!r} has {len(raw)} bytes, expected {expected}")
    return np.frombuffer(raw, dtype="<f4").reshape(VOICE_SHAPE)


def write_voices_npz(target: Path, voices: Iterable[tuple[str, np.ndarray]]) -> str:
    """Write voices as an ``np.load``-compatible .npz and return its sha256.

    Unlike ``np.savez`` the archive is byte-reproducible (sorted keys, fixed zip
    timestamps, .npy format 1.0), so the catalogue can pin its hash.
    """
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, array in sorted(voices, key=lambda item: item[0]):
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_EPOCH)
            info.external_attr = 0o644 << 16
            with archive.open(info, "w") as member:
                np.lib.format.write_array(member, array, version=(1, 0), allow_pickle=False)
    return file_sha256(target)


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + _SIDECAR_SUFFIX)


def write_sidecar(path: Path, sha256: str) -> None:
    """Remember that ``path`` (as it is now: size and mtime) hashes to ``sha256``."""
    stat = path.stat()
    _sidecar(path).write_text(f"{sha256} {stat.st_size} {stat.st_mtime_ns}\n", encoding="ascii")


def read_sidecar(path: Path) -> str | None:
    """The remembered sha256 of ``path`` if the file is unchanged since, else None."""
    try:
        sha256, size, mtime_ns = _sidecar(path).read_text(encoding="ascii").split()
        stat = path.stat()
    except (OSError, ValueError):
        return None
    if int(size) != stat.st_size or int(mtime_ns) != stat.st_mtime_ns:
        return None
    return sha256


def replace_tree(staged: Path, final: Path) -> None:
    """Move a staged file or directory onto ``final``, replacing what is there.

    A file moves with one atomic ``os.replace``. A directory cannot replace a non-empty
    one atomically, so the old one is first renamed aside and removed afterwards.
    """
    if staged.is_dir() and final.exists():
        aside = final.with_name(f".{final.name}.old-{os.getpid()}")
        os.replace(final, aside)
        os.replace(staged, final)
        shutil.rmtree(aside, ignore_errors=True)
    else:
        os.replace(staged, final)
