"""The on-disk tier of the document cache: ``.npy`` files plus a SQLite index, in one folder.

Layout::

    <folder>/cache.sqlite        entries(id, nbytes, rows, dim, sha256, used)
    <folder>/vectors/<id>.npy    one float32 (rows, dim) array per entry

``id`` is a SHA-256 hex string computed by the cache (never a name read from the database
or given by a user), so every path stays inside the folder. Files are written to a
temporary name, fsynced and renamed, then indexed; reads use ``allow_pickle=False`` and
check shape, dtype and the SHA-256 of the data. Anything damaged (a truncated or altered
file, a symbolic link, an unreadable database) is a miss: it is removed, logged, and
encoded again. The folder holds at most ``max_bytes``; the least recently used entries go
first. Several threads and processes may share a folder (SQLite WAL, atomic renames).
"""

from __future__ import annotations

import hashlib
import logging
import re
import sqlite3
import threading
import time
from pathlib import Path

import numpy as np

from sauerkraut_rag._atomic import write_atomically
from sauerkraut_rag.errors import InvalidInputError

logger = logging.getLogger(__name__)

_ID = re.compile(r"[0-9a-f]{64}")
_ORPHAN_AGE = 3600.0
"""Unindexed files younger than this (seconds) may belong to a writer in another process."""
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS entries (id TEXT PRIMARY KEY, nbytes INTEGER NOT NULL, "
    "rows INTEGER NOT NULL, dim INTEGER NOT NULL, sha256 TEXT NOT NULL, used REAL NOT NULL)"
)


class FolderStore:
    """Document vectors kept on disk under ``folder`` (see the module docstring)."""

    def __init__(self, folder: str | Path, max_bytes: int) -> None:
        self.folder = Path(folder)
        self.max_bytes = max_bytes
        self.vectors = self.folder / "vectors"
        self.folder.mkdir(parents=True, exist_ok=True)
        if self.vectors.is_symlink() or (self.vectors.exists() and not self.vectors.is_dir()):
            raise InvalidInputError(
                f"Expected {self.vectors} to be a folder of the document cache, found a link "
                "or a file. Point the cache at an empty or cache-owned folder."
            )
        self.vectors.mkdir(exist_ok=True)
        self._lock = threading.Lock()
        self._conn = self._connect()
        self._sweep()

    # ------------------------------------------------------------------ database

    def _connect(self) -> sqlite3.Connection:
        path = self.folder / "cache.sqlite"
        try:
            conn = self._open(path)
            conn.execute("SELECT COUNT(*) FROM entries").fetchone()
            return conn
        except sqlite3.DatabaseError as exc:
            logger.warning("document cache index %s is damaged (%s); starting it afresh", path, exc)
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
            return self._open(path)

    @staticmethod
    def _open(path: Path) -> sqlite3.Connection:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30.0)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(_SCHEMA)
        return conn

    def _sql(self, query: str, params: tuple = ()) -> list[tuple]:
        """Run one statement under the lock; a damaged database is rebuilt (an empty result)."""
        with self._lock:
            try:
                return self._conn.execute(query, params).fetchall()
            except sqlite3.DatabaseError as exc:
                logger.warning("document cache index damaged (%s); starting it afresh", exc)
                self._conn.close()
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{self.folder / 'cache.sqlite'}{suffix}").unlink(missing_ok=True)
                self._conn = self._open(self.folder / "cache.sqlite")
                return []

    # ------------------------------------------------------------------ reads and writes

    def get(self, ids: list[str]) -> dict[str, np.ndarray]:
        """The stored vectors of those ``ids`` that are present and intact."""
        found: dict[str, np.ndarray] = {}
        for start in range(0, len(ids), 500):
            batch = [i for i in ids[start : start + 500] if _ID.fullmatch(i)]
            marks = ",".join("?" * len(batch))
            rows = self._sql(
                f"SELECT id, rows, dim, sha256 FROM entries WHERE id IN ({marks})",
                tuple(batch),
            )
            for entry_id, n_rows, dim, digest in rows:
                array = self._load(entry_id, (n_rows, dim), digest)
                if array is None:
                    self._forget(entry_id)
                else:
                    found[entry_id] = array
        if found:
            marks = ",".join("?" * len(found))
            self._sql(
                f"UPDATE entries SET used = ? WHERE id IN ({marks})",
                (time.time(), *found),
            )
        return found

    def _load(self, entry_id: str, shape: tuple[int, int], digest: str) -> np.ndarray | None:
        path = self.vectors / f"{entry_id}.npy"
        if path.is_symlink():
            logger.warning("document cache file %s is a symbolic link; ignored", path)
            return None
        try:
            array = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            logger.warning("document cache file %s is unreadable (%s); re-encoding", path, exc)
            return None
        if array.dtype != np.float32 or array.shape != shape:
            logger.warning("document cache file %s holds %s %s, expected %s float32", path,
                           array.shape, array.dtype, shape)  # fmt: skip
            return None
        if hashlib.sha256(array.tobytes()).hexdigest() != digest:
            logger.warning("document cache file %s fails its checksum; re-encoding", path)
            return None
        array.flags.writeable = False
        return array

    def put(self, entries: dict[str, np.ndarray]) -> None:
        """Store arrays (float32, 2-D) under their ids, then evict down to ``max_bytes``."""
        for entry_id, array in entries.items():
            if not _ID.fullmatch(entry_id):
                continue
            data = np.ascontiguousarray(array, dtype=np.float32)
            path = self.vectors / f"{entry_id}.npy"
            try:
                write_atomically(
                    path, lambda f, a=data: np.lib.format.write_array(f, a, allow_pickle=False)
                )
                nbytes = path.stat().st_size
            except OSError as exc:
                logger.warning(
                    "document cache could not write %s (%s); not kept on disk", path, exc
                )
                continue
            self._sql(
                "INSERT OR REPLACE INTO entries VALUES (?, ?, ?, ?, ?, ?)",
                (entry_id, nbytes, data.shape[0], data.shape[1],
                 hashlib.sha256(data.tobytes()).hexdigest(), time.time()),
            )  # fmt: skip
        self._evict()

    def _evict(self) -> None:
        total = self._sql("SELECT COALESCE(SUM(nbytes), 0) FROM entries")
        excess = (total[0][0] if total else 0) - self.max_bytes
        if excess <= 0:
            return
        for entry_id, nbytes in self._sql("SELECT id, nbytes FROM entries ORDER BY used, id"):
            if excess <= 0:
                break
            self._forget(entry_id)
            excess -= nbytes

    def _forget(self, entry_id: str) -> None:
        self._sql("DELETE FROM entries WHERE id = ?", (entry_id,))
        if _ID.fullmatch(entry_id):
            (self.vectors / f"{entry_id}.npy").unlink(missing_ok=True)

    def _sweep(self) -> None:
        """Remove old files that no entry references (a crash between write and index)."""
        known = {row[0] for row in self._sql("SELECT id FROM entries")}
        now = time.time()
        for path in self.vectors.iterdir():
            stem = path.name.removesuffix(".npy")
            owned = _ID.fullmatch(stem) or path.name.startswith(".tmp-")
            if not owned or stem in known or path.is_dir():
                continue
            try:
                if now - path.lstat().st_mtime > _ORPHAN_AGE:
                    path.unlink()
            except OSError:
                continue

    # ------------------------------------------------------------------ housekeeping

    def stats(self) -> tuple[int, int]:
        """``(entries, bytes)`` on disk."""
        row = self._sql("SELECT COUNT(*), COALESCE(SUM(nbytes), 0) FROM entries")
        return (int(row[0][0]), int(row[0][1])) if row else (0, 0)

    def clear(self) -> None:
        for (entry_id,) in self._sql("SELECT id FROM entries"):
            self._forget(entry_id)

    def close(self) -> None:
        with self._lock:
            self._conn.close()
