"""Admission of searches beside the one writer, so that the writer is not starved.

Searches and writes of one process share the GIL. With many search threads the GIL is
always wanted, and CPython hands it to any waiting thread: the writer, which gives up
the GIL at every ``fsync`` and SQLite call, waited for it behind 16 searchers and
finished about 3 writes per second. The gate keeps the number of searches *running* at
once to the number of cores (more cannot run in parallel anyway; the rest wait without
competing for the GIL), and while a write is in progress it admits at most one search
beside it. Searches still see committed snapshots only; the gate orders who computes,
not what anyone sees.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

BESIDE_WRITER = 1
"""Searches admitted to run while a write is in progress."""


class Gate:
    """Counts running searches and writes; see the module docstring."""

    def __init__(self, slots: int | None = None) -> None:
        self.slots = max(1, slots if slots is not None else (os.cpu_count() or 1))
        self._cond = threading.Condition()
        self._searches = 0
        self._writes = 0
        self._inside = threading.local()

    def _limit(self) -> int:
        return BESIDE_WRITER if self._writes else self.slots

    @contextmanager
    def search(self) -> Iterator[None]:
        """Run a search (or other read work) once admitted (re-entrant per thread)."""
        if getattr(self._inside, "depth", 0):
            yield  # already admitted (a callable filter that searches, a write that reads)
            return
        with self._cond:
            while self._searches >= self._limit():
                self._cond.wait()
            self._searches += 1
        self._inside.depth = 1
        try:
            yield
        finally:
            self._inside.depth = 0
            with self._cond:
                self._searches -= 1
                self._cond.notify_all()

    @contextmanager
    def write(self) -> Iterator[None]:
        """Run a write: from now on at most ``BESIDE_WRITER`` searches start beside it."""
        depth = getattr(self._inside, "depth", 0)
        with self._cond:
            self._writes += 1
        self._inside.depth = depth + 1
        try:
            yield
        finally:
            self._inside.depth = depth
            with self._cond:
                self._writes -= 1
                self._cond.notify_all()
