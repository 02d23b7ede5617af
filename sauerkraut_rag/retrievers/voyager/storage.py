"""Files of an index folder: durable atomic writes and checked, memory-mapped segments.

Token vectors live in append-only ``.npy`` segment files. Segment ``[start, stop)``
holds the vectors of global token ids ``start .. stop - 1``; consecutive segments can be
merged without changing any token id. A segment file is written to a temporary name,
fsynced, renamed into place and its directory fsynced *before* SQLite references it, so
a crash can only leave unreferenced files behind (removed on the next writable open).
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from sauerkraut_rag.errors import IndexCorruptedError

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


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class _HashingWriter:
    """A write-only file wrapper that hashes everything written through it."""

    def __init__(self, handle: BinaryIO) -> None:
        self._handle = handle
        self.digest = hashlib.sha256()
        self.nbytes = 0

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self.digest.update(view)
        self.nbytes += view.nbytes
        return self._handle.write(view)


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
        with open(tmp, "wb") as handle:
            writer = _HashingWriter(handle)
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


def open_segment(
    path: Path, *, n_rows: int, dim: int, dtype: str, sha256: str | None, nbytes: int
) -> np.ndarray:
    """Memory-map a segment read-only after checking size (and hash when ``sha256``).

    Raises :class:`IndexCorruptedError` if the file is missing, truncated, altered or has
    an unexpected header.
    """
    advice = (
        "Vector segments are primary data: restore the index folder from a backup, or "
        "rebuild the index from the source documents."
    )
    if not path.is_file():
        raise IndexCorruptedError(
            f"Vector segment {path} referenced by the index is missing. {advice}"
        )
    size = path.stat().st_size
    if size != nbytes:
        raise IndexCorruptedError(
            f"Vector segment {path} has {size} bytes, expected {nbytes} (truncated or "
            f"overwritten). {advice}"
        )
    if sha256 is not None and file_sha256(path) != sha256:
        raise IndexCorruptedError(
            f"Vector segment {path} fails its SHA-256 check (bit rot or tampering). {advice}"
        )
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise IndexCorruptedError(f"Vector segment {path} cannot be read: {exc}. {advice}") from exc
    if array.shape != (n_rows, dim) or array.dtype != np.dtype(dtype):
        raise IndexCorruptedError(
            f"Vector segment {path} holds {array.shape} {array.dtype}, expected "
            f"({n_rows}, {dim}) {dtype}. {advice}"
        )
    return array


def sweep_orphans(folder: Path, keep: set[str]) -> list[str]:
    """Delete files in ``folder`` whose names are not in ``keep``; return their names.

    Only index-owned folders (``vectors/``, ``hnsw/``) are swept, and only by the
    process holding the writer lock.
    """
    removed: list[str] = []
    if folder.is_symlink():  # a crafted folder must not make us delete files elsewhere
        logger.warning("not sweeping %s: it is a symbolic link, not a folder of the index", folder)
        return removed
    if not folder.is_dir():
        return removed
    for entry in folder.iterdir():
        if entry.is_file() and entry.name not in keep:
            entry.unlink(missing_ok=True)
            removed.append(entry.name)
    if removed:
        fsync_dir(folder)
        logger.info("removed %d unreferenced file(s) from %s", len(removed), folder)
    return removed
