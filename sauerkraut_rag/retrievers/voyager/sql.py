"""SQLite bookkeeping of an index: the commit point of every mutation.

Tables:

* ``meta(key, value)``: ``format_version``, ``config`` (JSON), counters ``epoch``,
  ``generation``, ``next_row``, ``next_token``, and ``hnsw`` (JSON describing the saved
  HNSW file, or absent);
* ``segments(start, stop, file, sha256, nbytes)``: vector files covering global token
  ids ``[start, stop)``;
* ``docs(row, id, token_start, n_tokens, deleted_at, metadata, payload, crc)``: one
  row per stored document version; ``deleted_at`` is the generation of its deletion
  (tombstone) or NULL. ``token_start``/``n_tokens`` map global token ids to documents.
  ``crc`` guards ``id``, ``n_tokens``, ``metadata`` and ``payload`` against bit rot.

Rows are never updated in place except to set a tombstone (and by ``compact``, which
also deletes tombstoned rows), so a reader holding an older in-memory snapshot can
still fetch a row's payload until the next ``compact``. Readers read inside one read
transaction (WAL: a consistent snapshot of the database while the writer commits).
"""

from __future__ import annotations

import json
import os
import queue
import sqlite3
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from sauerkraut_rag.errors import IndexCorruptedError, IndexStoreError

DB_NAME = "index.sqlite"
FORMAT_VERSION = 1

DELETED_INDEX = (
    "CREATE INDEX IF NOT EXISTS docs_deleted_at ON docs(deleted_at) WHERE deleted_at IS NOT NULL"
)
"""Tombstones by generation: readers catch up on deletions with it (added to older
databases on their next writable open)."""

_SCHEMA = f"""
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE segments (
    start INTEGER PRIMARY KEY, stop INTEGER NOT NULL, file TEXT NOT NULL UNIQUE,
    sha256 TEXT NOT NULL, nbytes INTEGER NOT NULL
);
CREATE TABLE docs (
    row INTEGER PRIMARY KEY, id TEXT NOT NULL, token_start INTEGER NOT NULL,
    n_tokens INTEGER NOT NULL, deleted_at INTEGER, metadata TEXT NOT NULL,
    payload TEXT, crc INTEGER NOT NULL
);
CREATE UNIQUE INDEX docs_live_id ON docs(id) WHERE deleted_at IS NULL;
{DELETED_INDEX};
"""


def row_crc(doc_id: str, n_tokens: int, metadata_json: str, payload: str | None) -> int:
    """CRC-32 over the immutable fields of a document row."""
    blob = json.dumps([doc_id, n_tokens, metadata_json, payload], ensure_ascii=False)
    return zlib.crc32(blob.encode("utf-8"))


def connect(path: Path, *, read_only: bool = False) -> sqlite3.Connection:
    """Open the database in autocommit mode (explicit BEGIN/COMMIT), WAL, full sync."""
    if read_only:
        conn = sqlite3.connect(
            f"{path.resolve().as_uri()}?mode=ro",
            uri=True,
            isolation_level=None,
            check_same_thread=False,
            timeout=30.0,
        )
    else:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30.0)
    try:
        if not read_only:
            conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
    except sqlite3.DatabaseError:
        conn.close()
        raise
    except UnicodeDecodeError as exc:  # a damaged schema: SQLite's message is not UTF-8
        conn.close()
        raise sqlite3.DatabaseError(f"malformed database schema ({exc})") from exc
    return conn


def create_database(path: Path, meta: dict[str, str]) -> None:
    """Create a fresh database with ``meta`` at ``path`` (caller renames it into place).

    The file is in WAL mode from the start, so opening it never converts it.
    """
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.executescript(_SCHEMA)
        with transaction(conn):
            conn.executemany("INSERT INTO meta(key, value) VALUES (?, ?)", meta.items())
    finally:
        conn.close()


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``; rolls back on any exception.

    SQLite may already have rolled back (e.g. on a full disk); a failing ``ROLLBACK``
    never hides the original error.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        _rollback(conn)
        raise


@contextmanager
def read_transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A read transaction: every query inside sees one committed state of the database
    (fixed at the first read), whatever the writer commits meanwhile."""
    conn.execute("BEGIN")
    try:
        yield conn
    finally:
        _rollback(conn)  # nothing was written: ending the transaction is all it does


def _rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        with suppress(sqlite3.Error):
            conn.execute("ROLLBACK")


def stored_generation(conn: sqlite3.Connection) -> int:
    """The committed ``generation`` counter."""
    row = conn.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
    try:
        return int(row[0])
    except (TypeError, ValueError) as exc:
        raise IndexCorruptedError(
            "The index database has no valid generation counter. Restore the index folder "
            "from a backup."
        ) from exc


def read_meta(conn: sqlite3.Connection) -> dict[str, str]:
    """All ``meta`` entries."""
    return dict(conn.execute("SELECT key, value FROM meta").fetchall())


def set_meta(conn: sqlite3.Connection, values: dict[str, Any]) -> None:
    """Upsert ``meta`` entries (values are stored as text; dicts as JSON)."""
    rows = [
        (key, json.dumps(value) if isinstance(value, dict) else str(value))
        for key, value in values.items()
    ]
    conn.executemany(
        "INSERT INTO meta(key, value) VALUES (?, ?) "
        "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        rows,
    )


def quick_check(conn: sqlite3.Connection, path: Path) -> None:
    """Run ``PRAGMA quick_check``; raise :class:`IndexCorruptedError` if it fails."""
    result = [r[0] for r in conn.execute("PRAGMA quick_check").fetchall()]
    if result != ["ok"]:
        raise IndexCorruptedError(
            f"The index database {path} fails SQLite's integrity check: {result[:3]}. "
            "Restore the index folder from a backup."
        )


def insert_docs(conn: sqlite3.Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    """Insert ``(row, id, token_start, n_tokens, metadata_json, payload)`` tuples."""
    conn.executemany(
        "INSERT INTO docs(row, id, token_start, n_tokens, deleted_at, metadata, payload, crc) "
        "VALUES (?, ?, ?, ?, NULL, ?, ?, ?)",
        [(*r, row_crc(r[1], r[3], r[4], r[5])) for r in rows],
    )


def insert_segment(
    conn: sqlite3.Connection, start: int, stop: int, file: str, sha: str, nbytes: int
) -> None:
    """Reference a durable vector file covering tokens ``[start, stop)``."""
    conn.execute(
        "INSERT INTO segments(start, stop, file, sha256, nbytes) VALUES (?, ?, ?, ?, ?)",
        (start, stop, file, sha, nbytes),
    )


def tombstone(conn: sqlite3.Connection, rows: Sequence[int], generation: int) -> None:
    """Mark document rows deleted at ``generation``."""
    conn.executemany(
        "UPDATE docs SET deleted_at = ? WHERE row = ? AND deleted_at IS NULL",
        [(generation, int(r)) for r in rows],
    )


_INHERITED: list[sqlite3.Connection] = []
"""Connections inherited through ``fork()``: never used nor closed in the child (SQLite
forbids both), only kept alive so garbage collection does not close them."""


def abandon(conn: sqlite3.Connection) -> None:
    """Drop a connection inherited from a parent process without touching it."""
    _INHERITED.append(conn)


class ReaderPool:
    """Reusable read-only connections, so concurrent searches never share one.

    After ``fork()`` the child starts a fresh pool (inherited connections are abandoned).
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._pid = os.getpid()
        self._idle: queue.SimpleQueue[sqlite3.Connection] = queue.SimpleQueue()
        self._closed = False

    def _take(self) -> sqlite3.Connection:
        if self._closed:
            raise IndexStoreError(
                "The index is closed. Open it again with VoyagerIndex.open(path)."
            )
        if os.getpid() != self._pid:  # forked: never touch the parent's connections
            while True:
                try:
                    abandon(self._idle.get_nowait())
                except queue.Empty:
                    break
            self._pid = os.getpid()
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            return connect(self._path, read_only=True)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Borrow a connection inside one read transaction for the block."""
        conn = self._take()
        try:
            with read_transaction(conn):
                yield conn
        except sqlite3.Error:
            conn.close()  # a connection that failed is not reused
            raise
        except BaseException:
            self._give_back(conn)
            raise
        self._give_back(conn)

    def _give_back(self, conn: sqlite3.Connection) -> None:
        if self._closed or os.getpid() != self._pid:
            conn.close()
        else:
            self._idle.put(conn)

    def close(self) -> None:
        """Close every idle connection (borrowed ones are closed when returned)."""
        self._closed = True
        forked = os.getpid() != self._pid
        while True:
            try:
                conn = self._idle.get_nowait()
            except queue.Empty:
                break
            if forked:
                abandon(conn)
            else:
                conn.close()


def fetch_payloads(conn: sqlite3.Connection, rows: Sequence[int]) -> dict[int, Any]:
    """``row -> payload`` for the requested rows that are stored (rows are checksummed)."""
    out: dict[int, Any] = {}
    unique = sorted({int(r) for r in rows})
    for lo in range(0, len(unique), 500):
        part = unique[lo : lo + 500]
        marks = ",".join("?" * len(part))
        try:
            found = conn.execute(
                f"SELECT row, id, n_tokens, metadata, payload, crc FROM docs "
                f"WHERE row IN ({marks})",
                part,
            ).fetchall()
        except sqlite3.DatabaseError as exc:
            if not is_damage(exc):
                raise
            raise IndexCorruptedError(
                f"Stored documents cannot be read ({exc}): the index database is damaged. "
                "Restore the index folder from a backup."
            ) from exc
        for row, doc_id, n_tokens, meta, payload, crc in found:
            if row_crc(doc_id, n_tokens, meta, payload) != crc:
                raise IndexCorruptedError(
                    f"Document row {row} (id {doc_id!r}) fails its checksum: the index "
                    "database is damaged. Restore the index folder from a backup."
                )
            out[row] = payload
    return out


def is_damage(exc: sqlite3.DatabaseError) -> bool:
    """Whether a read error means damaged data (not a busy or full database)."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return (code & 0xFF) in (11, 26)  # SQLITE_CORRUPT, SQLITE_NOTADB
    return "could not decode" in str(exc).lower() or "malformed" in str(exc).lower()
