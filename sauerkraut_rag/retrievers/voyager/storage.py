"""Writing files of an index folder durably and atomically (segments are read in
:mod:`~sauerkraut_rag.retrievers.voyager.segments`).

Token vectors live in append-only ``.npy`` segment files. Segment ``[start, stop)``
holds the vectors of global token ids ``start .. stop - 1``; consecutive segments can be
merged without changing any token id. A segment file is written to a temporary name,
fsynced, renamed into place and its directory fsynced *before* SQLite references it, so
a crash can only leave unreferenced files behind (removed on the next writable open).
Files are created with ``O_NOFOLLOW | O_EXCL``, so a planted symbolic link can never
redirect a write outside the folder.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

logger = logging.getLogger(__name__)

VECTORS_DIR = "vectors"
HNSW_DIR = "hnsw"
_HASH_CHUNK = 16 * 1024 * 1024


def fsync_dir(path: Path) -> None:
    """Make a rename/unlink inside ``path`` durable (no-op where unsupported)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # e.g. Windows cannot open directories
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def create_exclusive(path: Path) -> BinaryIO:
    """Open a new file for writing; a stale file (or planted link) of that name is removed
    first, and the open neither follows a link nor reuses an existing file."""
    path.unlink(missing_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | getattr(os, "O_BINARY", 0)
    return os.fdopen(os.open(path, flags, 0o644), "wb")


def write_fresh(folder: Path, name: str, write: Callable[[BinaryIO], None]) -> tuple[str, str]:
    """Write a new file ``name`` in ``folder`` durably through ``write(handle)``: into a
    temporary file created without following links, flushed and fsynced, then renamed and
    the folder fsynced. Returns ``(name, sha256)``; on any failure nothing is left."""
    tmp = folder / (name + ".tmp")
    try:
        with create_exclusive(tmp) as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        sha = file_sha256(tmp)
        os.replace(tmp, folder / name)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(folder)
    return name, sha


def read_nofollow(path: Path) -> bytes:
    """The bytes of a regular file inside the folder; a symbolic link raises ``OSError``."""
    fd = os.open(path, os.O_RDONLY | _NOFOLLOW)
    with os.fdopen(fd, "rb") as handle:
        return handle.read()


def fsync_file(path: Path) -> None:
    """Flush a file written by someone else (e.g. Voyager) to disk."""
    fd = os.open(path, os.O_RDONLY | _NOFOLLOW)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file, read in chunks (without following a symbolic link)."""
    digest = hashlib.sha256()
    fd = os.open(path, os.O_RDONLY | _NOFOLLOW)
    with os.fdopen(fd, "rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class HashingWriter:
    """A write-only file wrapper that hashes everything written through it."""

    def __init__(self, handle: BinaryIO) -> None:
        self._handle = handle
        self.digest = hashlib.sha256()
        self.nbytes = 0

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self.digest.update(view)
        self.nbytes += view.nbytes
        self._handle.write(view)
        return view.nbytes

    def flush(self) -> None:
        self._handle.flush()


def is_plain_name(name: object) -> bool:
    """Whether ``name`` (read from the database) is a bare file name: no folder part,
    not ``.``/``..``, no NUL. Names that are not could reach outside the index folder."""
    return (
        isinstance(name, str)
        and name not in ("", ".", "..")
        and not any(c in name for c in "/\\\0")
    )


def segment_name(epoch: int, start: int, stop: int) -> str:
    """File name of the segment holding global token ids ``[start, stop)``."""
    return f"seg-e{epoch}-{start:012d}-{stop:012d}.npy"


def write_segment(
    folder: Path, name: str, chunks: Iterable[np.ndarray], *, n_rows: int, dim: int, dtype: str
) -> tuple[str, int]:
    """Durably write ``(n_rows, dim)`` rows given as chunks to ``folder/name``.

    Returns ``(sha256, nbytes)`` of the file. The file appears under its final name only
    once complete and fsynced.
    """
    final = folder / name
    tmp = folder / (name + ".tmp")
    header = {"descr": np.dtype(dtype).str, "fortran_order": False, "shape": (n_rows, dim)}
    written = 0
    try:
        with create_exclusive(tmp) as handle:
            writer = HashingWriter(handle)
            np.lib.format.write_array_header_1_0(writer, header)
            for chunk in chunks:
                block = np.ascontiguousarray(chunk, dtype=dtype)
                if block.ndim != 2 or block.shape[1] != dim:
                    raise ValueError(f"segment chunk of shape {block.shape}, expected (*, {dim})")
                writer.write(block)
                written += block.shape[0]
            if written != n_rows:
                raise ValueError(f"segment got {written} rows, expected {n_rows}")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(folder)
    return writer.digest.hexdigest(), writer.nbytes
