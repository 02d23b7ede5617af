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

Rows are never updated in place except to set a tombstone (and by ``compact``), so a
reader holding an older in-memory snapshot can still fetch a row's payload.
"""

from __future__ import annotations

import json
import queue
import sqlite3
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sauerkraut_rag.errors import IndexCorruptedError, IndexStoreError

DB_NAME = "index.sqlite"
FORMAT_VERSION = 1

_SCHEMA = """
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
    return conn


def create_database(path: Path, meta: dict[str, str]) -> None:
    """Create a fresh database with ``meta`` at ``path`` (caller renames it into place)."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.executescript(_SCHEMA)
        with transaction(conn):
            conn.executemany("INSERT INTO meta(key, value) VALUES (?, ?)", meta.items())
    finally:
        conn.close()


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``; rolls back on any exception."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


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


class ReaderPool:
    """Reusable read connections so concurrent searches never share one connection."""

    def __init__(self, path: Path, *, read_only: bool) -> None:
        self._path = path
        self._read_only = read_only
        self._idle: queue.SimpleQueue[sqlite3.Connection] = queue.SimpleQueue()
        self._closed = False

    @contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        """Borrow a connection for the duration of the block."""
        if self._closed:
            raise IndexStoreError(
                "The index is closed. Open it again with VoyagerIndex.open(path)."
            )
        try:
            conn = self._idle.get_nowait()
        except queue.Empty:
            conn = connect(self._path, read_only=self._read_only)
        try:
            yield conn
        finally:
            if self._closed:
                conn.close()
            else:
                self._idle.put(conn)

    def payloads(self, rows: Sequence[int]) -> dict[int, str | None] | None:
        """``row -> payload``; ``None`` if a row vanished (a concurrent ``compact``)."""
        if not len(rows):
            return {}
        with self.connection() as conn:
            found = fetch_payloads(conn, rows)
        return found if len(found) == len({int(r) for r in rows}) else None

    def close(self) -> None:
        """Close every connection (borrowed ones are closed when returned)."""
        self._closed = True
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                break


def fetch_payloads(conn: sqlite3.Connection, rows: Sequence[int]) -> dict[int, Any]:
    """``row -> (id, n_tokens, metadata_json, payload, crc)`` for the requested rows."""
    out: dict[int, Any] = {}
    unique = sorted({int(r) for r in rows})
    for lo in range(0, len(unique), 500):
        part = unique[lo : lo + 500]
        marks = ",".join("?" * len(part))
        for row, doc_id, n_tokens, meta, payload, crc in conn.execute(
            f"SELECT row, id, n_tokens, metadata, payload, crc FROM docs WHERE row IN ({marks})",
            part,
        ):
            if row_crc(doc_id, n_tokens, meta, payload) != crc:
                raise IndexCorruptedError(
                    f"Document row {row} (id {doc_id!r}) fails its checksum: the index "
                    "database is damaged. Restore the index folder from a backup."
                )
            out[row] = payload
    return out
