"""Storage faults: one truthful, typed error for a disk that refuses a write.

Disk full (``ENOSPC``, ``EDQUOT``, SQLite's "database or disk is full"), a file-size
limit (``EFBIG``), I/O errors (``EIO``, SQLite's disk I/O errors), a read-only file
system (``EROFS``) or missing permissions arrive from the operating system, SQLite or
NumPy under different types. :func:`storage_guard` turns each of them into an
:class:`~sauerkraut_rag.errors.IndexStorageError` (:class:`StorageFullError` for the
"full" kinds) naming the operation, whether it committed, and whether the index was
checked to still hold its last committed state.

Every write operation of the index either commits as a whole or not at all, and work
after the commit (merging segments, saving the graph, deleting retired files) never
raises: it is logged and retried later. So an error raised by an operation always means
"not committed"; the commit itself is confirmed by reading the stored generation back.
"""

from __future__ import annotations

import errno
import logging
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sauerkraut_rag.errors import IndexStorageError, StorageFullError

logger = logging.getLogger(__name__)

_FULL_ERRNOS = {errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC)}
_OTHER_ERRNOS = {errno.EIO, errno.EROFS, errno.EACCES, errno.EPERM, errno.ENXIO}
_SQLITE_KINDS = {13: "full", 10: "io", 8: "read-only", 14: "io", 3: "read-only"}
"""Primary SQLite result codes: FULL, IOERR, READONLY, CANTOPEN, PERM."""
_DESCRIPTIONS = {
    "full": "the disk (or a file-size limit) is full",
    "io": "the storage reported an I/O error",
    "read-only": "the storage is read-only or not writable",
}
_FIXES = {
    "full": "Free disk space (or raise the file-size limit) and retry",
    "io": "Check the disk (dmesg, SMART) and retry",
    "read-only": "Make the folder writable (remount, permissions) and retry",
}


def classify(exc: BaseException) -> tuple[str, int | None] | None:
    """``(kind, errno)`` if ``exc`` is a storage fault (kind: full, io, read-only)."""
    if isinstance(exc, IndexStorageError):
        return None
    if isinstance(exc, OSError) and exc.errno is not None:
        if exc.errno in _FULL_ERRNOS:
            return "full", exc.errno
        if exc.errno in _OTHER_ERRNOS:
            kind = "io" if exc.errno in (errno.EIO, errno.ENXIO) else "read-only"
            return kind, exc.errno
        return None
    if isinstance(exc, sqlite3.DatabaseError):
        code = getattr(exc, "sqlite_errorcode", None)
        if code is not None and (code & 0xFF) in _SQLITE_KINDS:
            return _SQLITE_KINDS[code & 0xFF], None
        text = str(exc).lower()
        if "disk is full" in text:
            return "full", None
        if "disk i/o error" in text:
            return "io", None
        if "readonly database" in text:
            return "read-only", None
    return None


def storage_error(
    operation: str, path: Path, exc: BaseException, *, intact: bool
) -> IndexStorageError | None:
    """The typed error for ``exc`` during ``operation`` (not committed), or ``None``."""
    found = classify(exc)
    if found is None:
        return None
    kind, number = found
    if kind == "io" and isinstance(exc, sqlite3.Error) and _at_file_size_limit(path):
        kind, number = "full", errno.EFBIG  # SQLite reports EFBIG as a disk I/O error
    state = (
        "The index was checked and holds its last committed state."
        if intact
        else "The index could not be checked after the fault; reopen it to verify it."
    )
    message = (
        f"{operation}() failed on the index at {path}: {_DESCRIPTIONS[kind]} ({exc}). "
        f"Nothing of this {operation}() was stored. {state} "
        f"{_FIXES[kind]} the {operation}()."
    )
    cls = StorageFullError if kind == "full" else IndexStorageError
    return cls(message, operation=operation, committed=False, data_intact=intact, errno=number)


@contextmanager
def storage_guard(operation: str, path: Path, probe: Callable[[], bool]) -> Iterator[None]:
    """Re-raise storage faults inside the block as :class:`IndexStorageError`.

    ``probe()`` says whether the index still holds its last committed state; it is
    called only after a fault and must not raise.
    """
    try:
        yield
    except Exception as exc:
        if classify(exc) is None:
            raise
        error = storage_error(operation, path, exc, intact=probe())
        if error is None:
            raise
        raise error from exc


def log_deferred(what: str, exc: BaseException) -> None:
    """Log a failure of work after a commit (retried later; the commit stands)."""
    found = classify(exc)
    reason = _DESCRIPTIONS[found[0]] if found else type(exc).__name__
    logger.warning(
        "%s failed after the commit (%s: %s); the committed data is stored and this is "
        "retried later",
        what,
        reason,
        exc,
    )


def _at_file_size_limit(path: Path) -> bool:
    """Whether the database or its WAL reached this process's file-size limit."""
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    except (ImportError, OSError, ValueError):
        return False
    if soft == resource.RLIM_INFINITY:
        return False
    sizes = []
    for name in ("index.sqlite", "index.sqlite-wal"):
        try:
            sizes.append((path / name).stat().st_size)
        except OSError:
            continue
    return any(size + _SQLITE_WRITE_SLACK >= soft for size in sizes)


_SQLITE_WRITE_SLACK = 64 * 1024
"""A write that failed near the limit: SQLite writes pages and WAL frames of a few KB."""
