"""Reading vector segment files so that no damage can take the process down.

A segment is a ``.npy`` file of ``(n_rows, dim)`` float16/float32 vectors. It is opened
without following symbolic links, its size and header are checked before anything is
mapped, and then:

* small segments (up to :data:`COPY_BYTES`) are read into memory: nothing that happens
  to the file afterwards can affect them;
* larger ones are memory-mapped, and every access goes through :meth:`SegmentData.view`
  or :meth:`SegmentData.rows`, which first compare the file's current size with the
  mapped size. A file truncated behind our back (the index itself never truncates or
  rewrites a segment) raises :class:`IndexCorruptedError` instead of a ``SIGBUS``.
"""

from __future__ import annotations

import hashlib
import io
import mmap
import os
import stat
from pathlib import Path

import numpy as np

from sauerkraut_rag.errors import IndexCorruptedError

COPY_BYTES = 8 << 20
"""Segments up to this size are copied into memory instead of memory-mapped."""
_HEADER_BYTES = 64 * 1024
_CHUNK = 16 << 20
ADVICE = (
    "Vector segments are primary data: restore the index folder from a backup, or "
    "rebuild the index from the source documents."
)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


class SegmentData:
    """The vectors of one segment file: in memory, or memory-mapped with checked access."""

    def __init__(self, path: Path, array: np.ndarray, mapped: mmap.mmap | None, end: int) -> None:
        self._path = path
        self._array = array
        self._mapped = mapped
        self._end = end

    @property
    def mapped(self) -> bool:
        """Whether the vectors are memory-mapped (``False``: copied into memory)."""
        return self._mapped is not None

    def check(self) -> None:
        """Raise :class:`IndexCorruptedError` if the mapped file was truncated."""
        if self._mapped is None:
            return
        try:
            size = self._mapped.size()  # fstat of the mapped file
        except (OSError, ValueError) as exc:
            raise IndexCorruptedError(
                f"Vector segment {self._path} can no longer be read ({exc}). {ADVICE}"
            ) from exc
        if size < self._end:
            raise IndexCorruptedError(
                f"Vector segment {self._path} was truncated to {size} bytes while in use "
                f"(expected {self._end}). {ADVICE}"
            )

    def view(self) -> np.ndarray:
        """All rows ``(n_rows, dim)``, read-only, after a size check (no copy)."""
        self.check()
        return self._array

    def rows(self, lo: int, hi: int) -> np.ndarray:
        """Rows ``[lo, hi)`` as a view (in memory) or a checked copy (mapped)."""
        if self._mapped is None:
            return self._array[lo:hi]
        self.check()
        return np.array(self._array[lo:hi])


def _corrupt(path: Path, what: str) -> IndexCorruptedError:
    return IndexCorruptedError(f"Vector segment {path} {what}. {ADVICE}")


def _open_nofollow(path: Path) -> int:
    try:
        return os.open(path, os.O_RDONLY | _NOFOLLOW)
    except FileNotFoundError as exc:
        raise _corrupt(path, "referenced by the index is missing") from exc
    except OSError as exc:
        if os.path.islink(path):
            raise _corrupt(
                path, "is a symbolic link; an index reads only files inside its folder"
            ) from exc
        raise _corrupt(path, f"cannot be opened ({exc})") from exc


def _read_all(fd: int, size: int) -> bytes:
    out = bytearray(size)
    view, done = memoryview(out), 0
    while done < size:
        n = os.preadv(fd, [view[done : done + _CHUNK]], done)
        if n <= 0:
            break
        done += n
    if done != size:
        raise OSError(f"short read: {done} of {size} bytes")
    return bytes(out)


def _parse_header(head: bytes, path: Path) -> tuple[tuple[int, ...], np.dtype, int]:
    """``(shape, dtype, data offset)`` of a ``.npy`` header; never unpickles anything."""
    stream = io.BytesIO(head)
    try:
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(stream)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(stream)
        else:
            raise ValueError(f"unsupported .npy version {version}")
    except (ValueError, OSError, SyntaxError) as exc:
        raise _corrupt(path, f"cannot be read: {exc}") from exc
    if dtype.hasobject:
        raise _corrupt(path, "cannot be read: its header declares Python objects")
    if fortran:
        raise _corrupt(path, "cannot be read: Fortran order is not a segment layout")
    return shape, dtype, stream.tell()


def open_segment_data(
    path: Path, *, n_rows: int, dim: int, dtype: str, sha256: str | None, nbytes: int
) -> SegmentData:
    """Open a segment after checking size, header and (with ``sha256``) its checksum.

    Raises :class:`IndexCorruptedError` if the file is missing, a symbolic link, not a
    regular file, truncated, altered or has an unexpected header.
    """
    fd = _open_nofollow(path)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise _corrupt(path, "is not a regular file")
        if info.st_size != nbytes:
            raise _corrupt(
                path,
                f"has {info.st_size} bytes, expected {nbytes} (truncated or overwritten)",
            )
        small = nbytes <= COPY_BYTES
        try:
            data = _read_all(fd, nbytes) if small else None
            head = data[:_HEADER_BYTES] if data is not None else os.pread(fd, _HEADER_BYTES, 0)
        except OSError as exc:
            raise _corrupt(path, f"cannot be read: {exc}") from exc
        shape, found, offset = _parse_header(head, path)
        want = np.dtype(dtype)
        if shape != (n_rows, dim) or found != want:
            raise _corrupt(path, f"holds {shape} {found}, expected ({n_rows}, {dim}) {want}")
        end = offset + n_rows * dim * want.itemsize
        if end != nbytes:
            raise _corrupt(path, f"has {nbytes} bytes, its header implies {end}")
        if sha256 is not None:
            digest = hashlib.sha256(data) if data is not None else _hash_fd(fd)
            if digest.hexdigest() != sha256:
                raise _corrupt(path, "fails its SHA-256 check (bit rot or tampering)")
        if data is not None:
            array = np.frombuffer(data, dtype=want, count=n_rows * dim, offset=offset)
            return SegmentData(path, array.reshape(n_rows, dim), None, end)
        try:
            mapped = mmap.mmap(fd, nbytes, access=mmap.ACCESS_READ)
        except (OSError, ValueError) as exc:
            raise _corrupt(path, f"cannot be mapped: {exc}") from exc
        array = np.frombuffer(mapped, dtype=want, count=n_rows * dim, offset=offset)
        return SegmentData(path, array.reshape(n_rows, dim), mapped, end)
    finally:
        os.close(fd)


def _hash_fd(fd: int) -> hashlib._Hash:
    digest = hashlib.sha256()
    offset = 0
    while chunk := os.pread(fd, _CHUNK, offset):
        digest.update(chunk)
        offset += len(chunk)
    return digest
