"""Locks of an index: a readers-writer lock for the HNSW graph, the per-folder writer lock,
and the files lock that keeps retired files in place while a reader opens them."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sauerkraut_rag.errors import IndexStoreError

try:  # POSIX
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = "writer.lock"
FILES_LOCK_NAME = "readers.lock"
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


class RWLock:
    """Many readers or one writer; a waiting writer blocks new readers (no starvation).

    Voyager (hnswlib) allows concurrent queries but not a query concurrent with an
    insert, so searches hold the read side and inserts/deletes the write side.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False
        self._waiting_writers = 0

    @contextmanager
    def read(self) -> Iterator[None]:
        with self._cond:
            while self._writer or self._waiting_writers:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    @contextmanager
    def write(self) -> Iterator[None]:
        with self._cond:
            self._waiting_writers += 1
            while self._writer or self._readers:
                self._cond.wait()
            self._waiting_writers -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()


class FolderLock:
    """An exclusive, non-blocking OS lock on ``folder/writer.lock`` held while writable.

    The lock is released by the OS when the process dies, so a crashed writer never
    blocks the next open.
    """

    def __init__(self, folder: Path) -> None:
        self._fd: int | None = None
        self._fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT | _NOFOLLOW, 0o644)
        if fcntl is None:  # pragma: no cover - Windows: no inter-process protection
            return
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(self._fd)
            self._fd = None
            raise IndexStoreError(
                f"The index at {folder} is already open for writing (in this or another "
                "process). Close the other VoyagerIndex first (index.close() or a `with` "
                "block), or open this one with read_only=True."
            ) from exc

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None

    def __del__(self) -> None:  # an index dropped without close() must not keep the lock
        self.release()


class FilesLock:
    """``readers.lock``: the handshake that lets readers open files of a committed state.

    A reader holds it shared from before it reads the state from SQLite until it has
    opened (mapped or copied) every file that state names. The writer deletes files
    retired by a commit only while it holds the lock exclusively, and never waits for
    it: when a reader is busy the files stay until the next attempt. So a reader that
    got the lock first finds every file of the state it reads, and one that waited
    reads a state committed before the deletion, which no longer names those files.
    """

    def __init__(self, folder: Path, *, create: bool) -> None:
        self._path = folder / FILES_LOCK_NAME
        self._fd: int | None = None
        if create:
            self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT | _NOFOLLOW, 0o644)

    @contextmanager
    def shared(self) -> Iterator[None]:
        """Hold the lock shared (blocking; writers hold it only for a few unlinks).

        Each holder opens its own descriptor, so threads never release each other's
        lock. Without the file (a read-only copy of a folder) nothing is locked.
        """
        try:
            fd = os.open(self._path, os.O_RDONLY | _NOFOLLOW)
        except OSError:
            yield
            return
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_SH)
            yield
        finally:
            os.close(fd)

    @contextmanager
    def try_exclusive(self) -> Iterator[bool]:
        """Yield whether the exclusive lock was obtained (never waits)."""
        if self._fd is None or fcntl is None:
            yield self._fd is not None
            return
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __del__(self) -> None:
        self.release()
