"""The read path of an open index: which snapshot a search sees, consistent with SQLite.

Every search and ``get`` runs inside one SQLite read transaction (a WAL snapshot) with
an in-memory :class:`Snapshot` of the same committed state, so the payloads it fetches
belong to the documents it found:

* a **writable** handle publishes each snapshot right after its commit; its snapshot is
  never newer than the transaction, and rows it names stay in the database until a
  ``compact``. If a compaction removed a row meanwhile, the search waits for the
  compacted snapshot and runs again.
* a **read-only** handle (in any process) compares the transaction's generation with its
  snapshot and catches up first (:mod:`.refresh`), taking the files lock so that the
  files of the state it reads cannot be deleted before it has opened them. Its searches
  therefore always see the newest committed state, whole, and never need a retry.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any, TypeVar

from sauerkraut_rag.errors import IndexCorruptedError
from sauerkraut_rag.retrievers.voyager import sql
from sauerkraut_rag.retrievers.voyager.locks import FilesLock
from sauerkraut_rag.retrievers.voyager.state import Snapshot

R = TypeVar("R")
Refresher = Callable[[sqlite3.Connection, Snapshot], Snapshot]
"""Advance a snapshot to the state of the connection's read transaction."""
_STALE_WAIT = 1.0
"""Seconds a writable handle's search waits for the writer to publish a compaction."""


class _Restart(Exception):
    """The snapshot moved past the transaction; start a new transaction."""


class ReadSide:
    """The current snapshot of one handle, and consistent reads against SQLite."""

    def __init__(
        self,
        path: Path,
        snap: Snapshot,
        *,
        refresher: Refresher | None,
        files_lock: FilesLock | None,
    ) -> None:
        self._path = path
        self._pool = sql.ReaderPool(path / sql.DB_NAME)
        self._refresher = refresher
        self._files_lock = files_lock
        self._cond = threading.Condition()
        self._refresh_lock = threading.Lock()
        self.snap = snap
        self.on_publish: Callable[[], None] | None = None

    def publish(self, snap: Snapshot) -> None:
        """Make ``snap`` the snapshot new searches see."""
        with self._cond:
            self.snap = snap
            self._cond.notify_all()
        if self.on_publish is not None:
            self.on_publish()

    def close(self) -> None:
        self._pool.close()

    # ------------------------------------------------------------------ pinning

    @contextmanager
    def pinned(self) -> Iterator[tuple[sqlite3.Connection, Snapshot]]:
        """A connection in a read transaction and the snapshot of the same state.

        A read that finds damaged database pages (in the block or while pinning) raises
        :class:`IndexCorruptedError`, not SQLite's own error.
        """
        try:
            with self._pinned() as pair:
                yield pair
        except sqlite3.DatabaseError as exc:
            if not sql.is_damage(exc):
                raise
            raise IndexCorruptedError(
                f"The index database at {self._path} cannot be read ({exc}): it is "
                "damaged. Restore the index folder from a backup."
            ) from exc

    @contextmanager
    def _pinned(self) -> Iterator[tuple[sqlite3.Connection, Snapshot]]:
        locked = False
        while True:
            lock: AbstractContextManager[Any] = (
                self._files_lock.shared()
                if locked and self._files_lock is not None
                else nullcontext()
            )
            restart = False
            with self._pool.transaction() as conn:
                with lock:
                    snap = self.snap  # read first: never newer than the transaction
                    generation = sql.stored_generation(conn)  # fixes the transaction's state
                    if self._refresher is not None and snap.generation != generation:
                        if not locked or snap.generation > generation:
                            restart = True
                        else:
                            try:
                                snap = self._catch_up(conn, generation)
                            except _Restart:
                                restart = True
                if not restart:
                    yield conn, snap
                    return
            locked = True

    @contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        """A connection in a read transaction of the current state (for tools and tests)."""
        with self.pinned() as (conn, _):
            yield conn

    def _catch_up(self, conn: sqlite3.Connection, generation: int) -> Snapshot:
        with self._refresh_lock:
            current = self.snap
            if current.generation == generation:
                return current
            if current.generation > generation or self._refresher is None:
                raise _Restart
            new = self._refresher(conn, current)
            self.publish(new)
            return new

    def current(self) -> Snapshot:
        """The newest committed snapshot (a read-only handle catches up first)."""
        if self._refresher is None:
            return self.snap
        with self.pinned() as (_, snap):
            return snap

    # ------------------------------------------------------------------ reads

    def run(
        self,
        fn: Callable[[sqlite3.Connection, Snapshot], R],
        rows_of: Callable[[Snapshot, R], Sequence[int]],
    ) -> tuple[Snapshot, R, dict[int, Any]]:
        """``fn(conn, snapshot)`` and the payloads of the rows it names, from one state
        (``conn`` is in the read transaction of that state)."""
        unchanged = 0
        while True:
            with self.pinned() as (conn, snap):
                result = fn(conn, snap)
                wanted = rows_of(snap, result)
                payloads = sql.fetch_payloads(conn, wanted)
            if len(payloads) == len({int(r) for r in wanted}):
                return snap, result, payloads
            if self._refresher is not None or unchanged >= 2:
                raise IndexCorruptedError(
                    f"Documents of the index at {self._path} are missing from its database. "
                    "Restore the index folder from a backup."
                )
            with self._cond:  # a compaction removed rows this snapshot names: wait for it
                changed = self._cond.wait_for(lambda: self.snap is not snap, _STALE_WAIT)
            unchanged = 0 if changed else unchanged + 1
