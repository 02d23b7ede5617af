"""Creating an index folder so that a crash at any moment leaves a usable folder.

The database is built under a temporary name, fsynced and renamed into place: until
that rename the folder holds no ``index.sqlite`` and is not an index; after it, the
index is complete. Creation holds the writer lock from the start, so two processes
never create the same folder at once. What a killed creation leaves behind (the lock
files, the temporary database and its journal, empty ``vectors/`` and ``hnsw/``) is
recognised by the next create and cleared; any other content makes the folder "not
empty" and is never touched.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import stat
from pathlib import Path

from sauerkraut_rag.errors import IndexStoreError
from sauerkraut_rag.retrievers.voyager import sql
from sauerkraut_rag.retrievers.voyager.config import IndexConfig
from sauerkraut_rag.retrievers.voyager.layout import DB_COMPANIONS, check_layout, is_index
from sauerkraut_rag.retrievers.voyager.locks import FILES_LOCK_NAME, LOCK_NAME, FolderLock
from sauerkraut_rag.retrievers.voyager.storage import HNSW_DIR, VECTORS_DIR, fsync_dir

logger = logging.getLogger(__name__)

TMP_DB = sql.DB_NAME + ".tmp"
_LEFTOVER_FILES = {LOCK_NAME, FILES_LOCK_NAME, TMP_DB, *(TMP_DB + s for s in DB_COMPANIONS)}
_LEFTOVER_FOLDERS = {VECTORS_DIR, HNSW_DIR}


def _leftovers(path: Path) -> list[str]:
    """Entries a killed creation may leave; raises if the folder holds anything else."""
    found, foreign = [], []
    for entry in os.scandir(path):
        mode = entry.stat(follow_symlinks=False).st_mode
        stale_file = entry.name in _LEFTOVER_FILES and stat.S_ISREG(mode)
        empty_folder = entry.name in _LEFTOVER_FOLDERS and stat.S_ISDIR(mode)
        if empty_folder:
            with os.scandir(entry.path) as inside:
                empty_folder = next(inside, None) is None
        (found if stale_file or empty_folder else foreign).append(entry.name)
    if foreign:
        shown = ", ".join(sorted(foreign)[:5])
        raise IndexStoreError(
            f"Cannot create an index in {path}: the folder is not empty ({shown}). Pick a "
            "new or empty folder, or open an existing index with VoyagerIndex.open(path)."
        )
    return found


def _clear(path: Path, names: list[str]) -> None:
    stale = [n for n in names if n not in (LOCK_NAME, FILES_LOCK_NAME)]
    if stale:
        logger.info("clearing a half-built index in %s (%s)", path, ", ".join(sorted(stale)))
    for name in stale:
        target = path / name
        if name in _LEFTOVER_FOLDERS:
            shutil.rmtree(target)
        else:
            target.unlink(missing_ok=True)


def create_folder(path: Path, config: IndexConfig) -> FolderLock:
    """Create the folder layout and database; returns the writer lock, still held."""
    if path.exists() and not path.is_dir():
        raise IndexStoreError(
            f"Cannot create an index at {path}: it is a file. Pick a folder path."
        )
    path.mkdir(parents=True, exist_ok=True)
    check_layout(path)  # the lock files must not be links either
    lock = FolderLock(path)
    try:
        if is_index(path):  # another process finished creating it meanwhile
            raise IndexStoreError(
                f"An index already exists at {path}. Open it with VoyagerIndex.open(path)."
            )
        _clear(path, _leftovers(path))
        _build(path, config)
    except BaseException:
        lock.release()
        raise
    return lock


def _build(path: Path, config: IndexConfig) -> None:
    (path / VECTORS_DIR).mkdir(exist_ok=True)
    (path / HNSW_DIR).mkdir(exist_ok=True)
    tmp = path / TMP_DB
    meta = {
        "format_version": str(sql.FORMAT_VERSION),
        "config": json.dumps(config.to_dict()),
        "epoch": "0",
        "generation": "0",
        "next_row": "0",
        "next_token": "0",
    }
    try:
        sql.create_database(tmp, meta)
        fd = os.open(tmp, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path / sql.DB_NAME)
    except BaseException:
        for name in (TMP_DB, *(TMP_DB + s for s in DB_COMPANIONS)):
            with contextlib.suppress(OSError):  # else recognised and cleared next time
                (path / name).unlink(missing_ok=True)
        raise
    fsync_dir(path)
