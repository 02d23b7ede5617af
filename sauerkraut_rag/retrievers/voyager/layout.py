"""The files of an index folder, and the check that none of them leads outside it.

An index reads and writes only inside its folder. A symbolic link in place of
``index.sqlite`` (or its ``-wal``/``-shm`` companions), ``vectors/``, ``hnsw/`` or a lock
file would make it read or write elsewhere, so an index folder holding one is refused
(segment and graph files are opened with ``O_NOFOLLOW``). The folder itself may be a
link: that is the user's choice of where the index lives.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from sauerkraut_rag.errors import IndexCorruptedError
from sauerkraut_rag.retrievers.voyager.locks import FILES_LOCK_NAME, LOCK_NAME
from sauerkraut_rag.retrievers.voyager.sql import DB_NAME
from sauerkraut_rag.retrievers.voyager.storage import HNSW_DIR, VECTORS_DIR

DB_COMPANIONS = ("-wal", "-shm", "-journal")
"""Files SQLite keeps next to a database."""
_EXPECTED: dict[str, str] = {
    DB_NAME: "file",
    **{DB_NAME + suffix: "file" for suffix in DB_COMPANIONS},
    VECTORS_DIR: "folder",
    HNSW_DIR: "folder",
    LOCK_NAME: "file",
    FILES_LOCK_NAME: "file",
}


def is_index(path: Path) -> bool:
    """Whether ``path`` holds an index database (a link to one counts, and is refused
    when opened)."""
    try:
        return os.path.lexists(path / DB_NAME)
    except (OSError, ValueError):
        return False


def check_layout(path: Path) -> None:
    """Raise :class:`IndexCorruptedError` if an index file is a link or of the wrong kind."""
    for name, kind in _EXPECTED.items():
        try:
            mode = os.lstat(path / name).st_mode
        except FileNotFoundError:
            continue
        if stat.S_ISLNK(mode):
            raise IndexCorruptedError(
                f"{path / name} is a symbolic link. An index keeps every file inside its "
                "own folder and never follows links out of it: replace the link with the "
                "real file or folder (copy it in), or restore the index from a backup."
            )
        ok = stat.S_ISDIR(mode) if kind == "folder" else stat.S_ISREG(mode)
        if not ok:
            raise IndexCorruptedError(
                f"{path / name} should be a {kind} of the index, but is not. Restore the "
                "index folder from a backup."
            )
