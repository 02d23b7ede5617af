"""Opening and closing an index folder: locks, connections, state, writer and readers.

A writable handle holds the folder's writer lock, one SQLite connection for its
commits, the :class:`Writer` and a :class:`Retirer`; a read-only handle holds no lock
and catches up with the writer on each read (see :mod:`.reads`). Both read through a
pool of read-only connections. Closing never raises: a graph that cannot be saved is
derived data (rebuilt or caught up on the next open) and is only logged.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sauerkraut_rag.encoders.fingerprint import EncoderFingerprint
from sauerkraut_rag.errors import ForkedWriterError, IndexCorruptedError, IndexStoreError
from sauerkraut_rag.retrievers.encoder_check import fingerprint_from_json
from sauerkraut_rag.retrievers.voyager import filter_sql, sql
from sauerkraut_rag.retrievers.voyager.cells_upkeep import enabled as cells_enabled
from sauerkraut_rag.retrievers.voyager.config import IndexConfig
from sauerkraut_rag.retrievers.voyager.faults import classify, log_deferred, storage_guard
from sauerkraut_rag.retrievers.voyager.gate import Gate
from sauerkraut_rag.retrievers.voyager.housekeeping import save_hnsw
from sauerkraut_rag.retrievers.voyager.indexer import Indexer
from sauerkraut_rag.retrievers.voyager.layout import check_layout
from sauerkraut_rag.retrievers.voyager.loading import RESTORE, Loaded, load_state
from sauerkraut_rag.retrievers.voyager.locks import FilesLock, FolderLock, RWLock
from sauerkraut_rag.retrievers.voyager.reads import ReadSide
from sauerkraut_rag.retrievers.voyager.refresh import catch_up
from sauerkraut_rag.retrievers.voyager.retire import Retirer
from sauerkraut_rag.retrievers.voyager.state import Snapshot
from sauerkraut_rag.retrievers.voyager.storage import HNSW_DIR, VECTORS_DIR
from sauerkraut_rag.retrievers.voyager.writes import Writer

logger = logging.getLogger(__name__)


@dataclass
class Handle:
    """Everything one open index holds."""

    path: Path
    read_only: bool
    pid: int
    config: IndexConfig
    muvera: Any
    encoder: EncoderFingerprint | None
    reads: ReadSide
    hnsw_lock: RWLock
    mutex: threading.RLock
    writer: Writer | None = None
    conn: sqlite3.Connection | None = None
    lock: FolderLock | None = None
    files_lock: FilesLock | None = None
    indexer: Indexer | None = None
    gate: Gate = field(default_factory=Gate)

    def start_indexer(self, *, threads: int) -> None:
        """Insert published documents into the graph in the background (:mod:`.indexer`)."""
        writer = self.writer
        self.indexer = Indexer(
            lambda: self.reads.snap,
            self.config,
            self.muvera,
            self.hnsw_lock,
            threads=threads,
            on_added=writer.graph_grew if writer is not None else None,
            gate=self.gate,
            cells_training=lambda: cells_enabled(self.config),
            on_cells=writer.cells_changed if writer is not None else None,
        )
        self.reads.on_publish = self.indexer.notify

    @property
    def forked(self) -> bool:
        """Whether this process is a fork of the one that opened the handle."""
        return os.getpid() != self.pid


def muvera_for(config: IndexConfig) -> Any:
    """The FDE encoder of ``"fde"`` indexes (``None`` for ``"tokens"``)."""
    if config.strategy != "fde":
        return None
    from sauerkraut_rag.retrievers.muvera import MuveraEncoder

    return MuveraEncoder(config.fde_config())


def _connect(path: Path, *, read_only: bool) -> sqlite3.Connection:
    try:
        return sql.connect(path / sql.DB_NAME, read_only=read_only)
    except sqlite3.DatabaseError as exc:
        if classify(exc) is not None:
            raise  # a storage fault, reported as such by the caller
        raise IndexCorruptedError(
            f"The index database in {path} cannot be opened: {exc}. {RESTORE}"
        ) from exc


def _encoder(meta: dict[str, str], path: Path) -> EncoderFingerprint | None:
    return fingerprint_from_json(meta.get("encoder"), where=f"the index at {path}")


def open_read_only(path: Path, *, verify: bool) -> Handle:
    """Open for searching: one consistent state, read while holding the files lock."""
    check_layout(path)
    files_lock = FilesLock(path, create=False)
    conn = _connect(path, read_only=True)
    try:
        with files_lock.shared(), sql.read_transaction(conn):
            loaded = load_state(conn, path, verify=verify, muvera_for=muvera_for)
            encoder = _encoder(loaded.meta, path)
    except sqlite3.DatabaseError as exc:
        raise IndexCorruptedError(
            f"The index database in {path} is unreadable: {exc}. {RESTORE}"
        ) from exc
    finally:
        conn.close()
    hnsw_lock = RWLock()
    config, muvera = loaded.config, loaded.muvera
    # The refresher reaches its handle through a weak reference, and keeps neither the
    # handle nor the first snapshot alive: a dropped handle is freed at once, and the
    # snapshots it replaced are freed as soon as no search holds them.
    opened: list[weakref.ref[Handle]] = []

    def refresher(conn: sqlite3.Connection, snap: Snapshot) -> Snapshot:
        new = catch_up(conn, path, snap, config, muvera, hnsw_lock)
        if new is None:  # a new epoch (compact): load it whole
            new = load_state(conn, path, verify=False, muvera_for=lambda _: muvera).snapshot
        handle = opened[0]()
        if handle is not None:
            handle.encoder = _encoder(sql.read_meta(conn), path)
        return new

    handle = Handle(
        path=path,
        read_only=True,
        pid=os.getpid(),
        config=config,
        muvera=muvera,
        encoder=encoder,
        reads=ReadSide(path, loaded.snapshot, refresher=refresher, files_lock=files_lock),
        hnsw_lock=hnsw_lock,
        mutex=threading.RLock(),
        files_lock=files_lock,
    )
    opened.append(weakref.ref(handle))
    handle.start_indexer(threads=1)  # a reader's graph: inserted in row order
    return handle


def open_writable(path: Path, *, verify: bool, lock: FolderLock | None) -> Handle:
    """Open for writing: take the writer lock, load, sweep orphans, build the writer."""
    conn = None
    files_lock = None
    try:
        with storage_guard("open", path, lambda: True):
            check_layout(path)
            lock = lock or FolderLock(path)
            files_lock = FilesLock(path, create=True)
            conn = _connect(path, read_only=False)
            with sql.read_transaction(conn):
                loaded = load_state(conn, path, verify=verify, muvera_for=muvera_for)
            try:
                with sql.transaction(conn):  # older databases lack it
                    conn.execute(sql.DELETED_INDEX)
                filter_sql.ensure_table(conn)  # migrates indexes written before the table
            except sqlite3.DatabaseError as exc:
                if not sql.is_damage(exc):
                    raise
                raise IndexCorruptedError(
                    f"The index database in {path} is damaged: {exc}. {RESTORE}"
                ) from exc
            encoder = _encoder(loaded.meta, path)
    except BaseException:
        if conn is not None:
            conn.close()
        if files_lock is not None:
            files_lock.release()
        if lock is not None:
            lock.release()
        raise
    retirer = _sweep(path, loaded, Retirer(files_lock))
    hnsw_lock = RWLock()
    snap = loaded.snapshot
    writer = Writer(
        path,
        conn,
        loaded.config,
        loaded.muvera,
        hnsw_lock,
        retirer,
        generation=snap.generation,
        hnsw_meta=loaded.hnsw_meta,
        hnsw_dirty=loaded.hnsw_dirty,
        saved_labels=0 if snap.hnsw is None else int(snap.hnsw.num_elements),
    )
    handle = Handle(
        path=path,
        read_only=False,
        pid=os.getpid(),
        config=loaded.config,
        muvera=loaded.muvera,
        encoder=encoder,
        reads=ReadSide(path, snap, refresher=None, files_lock=None),
        hnsw_lock=hnsw_lock,
        mutex=threading.RLock(),
        writer=writer,
        conn=conn,
        lock=lock,
        files_lock=files_lock,
    )
    handle.start_indexer(threads=-1)
    return handle


def _sweep(path: Path, loaded: Loaded, retirer: Retirer) -> Retirer:
    """Retire files no committed state names (crash leftovers, unfinished retirements)."""
    retirer.sweep(path / VECTORS_DIR, {s.file for s in loaded.snapshot.segments})
    derived = [m["file"] for m in (loaded.hnsw_meta, loaded.cells_meta) if m]
    retirer.sweep(path / HNSW_DIR, set(derived))
    if retirer.pending:
        logger.info("removing %d unreferenced file(s) from %s", retirer.pending, path)
    retirer.flush()
    return retirer


def close_handle(handle: Handle) -> None:
    """Save the graph if it changed, delete retired files, release everything.

    Never raises an ``Exception``; in a forked child nothing of the parent's is touched.
    """
    forked = handle.forked
    writer = handle.writer
    if handle.indexer is not None:
        if writer is not None and not forked:
            handle.indexer.drain()  # the saved graph then holds every document
        handle.indexer.stop()
    if writer is not None and not forked:
        if writer.hnsw_dirty:
            try:
                save_hnsw(writer, handle.reads.snap)
            except Exception as exc:
                log_deferred("saving the HNSW graph at close", exc)
        writer.retirer.flush()
    for release in (handle.reads.close, lambda: _close_conn(handle.conn, forked)):
        try:
            release()
        except Exception as exc:
            logger.warning("closing the index at %s: %s", handle.path, exc)
    if handle.files_lock is not None:
        handle.files_lock.release()
    if handle.lock is not None:
        handle.lock.release()  # closing our descriptor; a parent's lock stays with it
    # The indexer's callbacks refer back to the handle: without these two edges the
    # graph and the segments of a dropped index wait for a full garbage collection.
    handle.reads.on_publish = None
    handle.indexer = None


def _close_conn(conn: sqlite3.Connection | None, forked: bool) -> None:
    if conn is None:
        return
    if forked:
        sql.abandon(conn)
    else:
        conn.close()


def check_usable(handle: Handle | None, path: Path) -> None:
    """Raise unless the handle is open (``None``: closed) and usable in this process."""
    if handle is None:
        raise IndexStoreError(
            f"The index at {path} is closed. Open it again with VoyagerIndex.open(path)."
        )
    if handle.forked and not handle.read_only:
        raise ForkedWriterError(
            f"The index at {path} was opened for writing in process {handle.pid}; this "
            "process is a fork of it and must not use that handle (both would write). Open "
            "the index here with VoyagerIndex.open(path, read_only=True), or open it after "
            "the fork."
        )


def writable(handle: Handle) -> Writer:
    """The handle's writer; read-only handles raise."""
    if handle.writer is None:
        raise IndexStoreError(
            f"The index at {handle.path} was opened read_only=True; open it without "
            "read_only to change it."
        )
    return handle.writer
