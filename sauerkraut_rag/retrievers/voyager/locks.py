"""Locks of an index: a readers-writer lock for the HNSW graph and a per-folder writer lock."""

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
        self._fd: int | None = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
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
