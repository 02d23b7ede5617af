"""The command line's list of indexed files: ``sources.sqlite`` in the index folder.

One row per indexed file content: its SHA-256, the path it was indexed from, its kind
(``page`` or ``text``) and the ids of its documents in the index.  A row is written in
one SQLite transaction after all of the file's documents are in the index, so a file
counts as indexed only when it is complete; re-running ``index`` skips files whose hash
has a row and redoes any file that was cut short (its document ids are deterministic,
so the redo replaces rather than duplicates).  A file found at a new path with known
content is a rename (its row moves); rows of files gone from the indexed folders are
deleted together with their documents (see :mod:`sauerkraut_rag.cli.sync`).
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sauerkraut_rag.errors import IndexCorruptedError

MANIFEST_FILE = "sources.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    sha256 TEXT PRIMARY KEY, source TEXT NOT NULL, kind TEXT NOT NULL,
    ids TEXT NOT NULL, indexed_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS files_source ON files(source);
"""


@dataclass(frozen=True)
class IndexedFile:
    """One indexed file content and the ids of its documents."""

    sha256: str
    source: str
    kind: str
    ids: tuple[str, ...]


class SourceManifest:
    """Read and update ``sources.sqlite``; use as a context manager or call :meth:`close`."""

    def __init__(self, folder: Path, *, read_only: bool = False) -> None:
        path = folder / MANIFEST_FILE
        try:
            if read_only and not path.is_file():  # an index built without the CLI
                self._conn = sqlite3.connect(":memory:")
                self._conn.executescript(_SCHEMA)
            elif read_only:
                self._conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
            else:
                self._conn = sqlite3.connect(path)
                self._conn.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise IndexCorruptedError(
                f"The list of indexed files {path} is unreadable ({exc}). Delete it to index "
                "every file again (documents are replaced, not duplicated)."
            ) from exc

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> SourceManifest:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def find(self, sha256: str) -> IndexedFile | None:
        """The indexed file with this content hash, if any."""
        row = self._conn.execute(
            "SELECT sha256, source, kind, ids FROM files WHERE sha256 = ?", (sha256,)
        ).fetchone()
        return None if row is None else _entry(row)

    def replaced_by(self, source: str, sha256: str) -> list[IndexedFile]:
        """Earlier contents of ``source`` (rows with the same path and another hash)."""
        rows = self._conn.execute(
            "SELECT sha256, source, kind, ids FROM files WHERE source = ? AND sha256 != ?",
            (source, sha256),
        ).fetchall()
        return [_entry(row) for row in rows]

    def record(self, entry: IndexedFile, *, drop: list[IndexedFile] | None = None) -> None:
        """Store ``entry`` and delete the rows in ``drop``, in one transaction."""
        with self._conn:
            for old in drop or []:
                self._conn.execute("DELETE FROM files WHERE sha256 = ?", (old.sha256,))
            self._conn.execute(
                "INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?)",
                (
                    entry.sha256,
                    entry.source,
                    entry.kind,
                    json.dumps(list(entry.ids)),
                    datetime.now(UTC).isoformat(timespec="seconds"),
                ),
            )

    def entries(self) -> list[IndexedFile]:
        """Every indexed file, in path order."""
        rows = self._conn.execute(
            "SELECT sha256, source, kind, ids FROM files ORDER BY source"
        ).fetchall()
        return [_entry(row) for row in rows]

    def forget(self, entries: list[IndexedFile]) -> None:
        """Delete the rows of ``entries`` (one transaction)."""
        with self._conn:
            self._conn.executemany(
                "DELETE FROM files WHERE sha256 = ?", [(entry.sha256,) for entry in entries]
            )

    def move(self, entry: IndexedFile, source: str) -> IndexedFile:
        """Record that the file content of ``entry`` now lives at ``source`` (a rename)."""
        with self._conn:
            self._conn.execute(
                "UPDATE files SET source = ? WHERE sha256 = ?", (source, entry.sha256)
            )
        return IndexedFile(entry.sha256, source, entry.kind, entry.ids)

    def counts(self) -> dict[str, int]:
        """Number of indexed files per kind."""
        rows = self._conn.execute("SELECT kind, COUNT(*) FROM files GROUP BY kind").fetchall()
        return {str(kind): int(n) for kind, n in rows}


def _entry(row: tuple[str, str, str, str]) -> IndexedFile:
    sha256, source, kind, ids = row
    return IndexedFile(sha256=sha256, source=source, kind=kind, ids=tuple(json.loads(ids)))
