"""Moving a read-only handle forward to the newest committed generation.

Within one epoch (between compactions) the database only grows: new rows, tombstones
on old rows (their ``deleted_at`` generation) and a changed segment list (merges). A
reader catches up by reading just those, reusing the segments it already opened, and
handing the new documents to its own background indexer (they are scored exactly
until they are in its copy of the HNSW graph). A new epoch (after a
``compact``) means a full reload. Both happen inside the reader's read transaction and
while it holds the files lock, so what it reads is one committed state whose files all
exist.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np

from sauerkraut_rag.errors import IndexCorruptedError
from sauerkraut_rag.retrievers.voyager import hnsw as hnsw_ops
from sauerkraut_rag.retrievers.voyager import sql
from sauerkraut_rag.retrievers.voyager.config import IndexConfig
from sauerkraut_rag.retrievers.voyager.loading import RESTORE, meta_int, open_segments, read_docs
from sauerkraut_rag.retrievers.voyager.locks import RWLock
from sauerkraut_rag.retrievers.voyager.state import Snapshot

logger = logging.getLogger(__name__)


def catch_up(
    conn: sqlite3.Connection,
    path: Path,
    snap: Snapshot,
    config: IndexConfig,
    muvera: Any,
    lock: RWLock,
) -> Snapshot | None:
    """``snap`` advanced to the state of ``conn``'s read transaction, or ``None`` when
    only a full reload can get there (a new epoch)."""
    meta = sql.read_meta(conn)
    epoch = meta_int(meta, "epoch", path)
    next_row, next_token = meta_int(meta, "next_row", path), meta_int(meta, "next_token", path)
    if epoch != snap.epoch or next_row < snap.next_row or next_token < snap.next_token:
        return None
    segments = open_segments(
        conn, path, config, next_token, verify=False, reuse={s.file: s for s in snap.segments}
    )
    docs = read_docs(
        conn,
        path,
        from_row=snap.next_row,
        first_token=snap.next_token,
        next_row=next_row,
        verify=False,
    )
    if docs.next_token != next_token:
        raise IndexCorruptedError(
            f"Documents of {path} end at token {docs.next_token}, expected {next_token}. {RESTORE}"
        )
    gone_rows = np.asarray(
        [
            r
            for (r,) in conn.execute(
                "SELECT row FROM docs WHERE deleted_at > ? AND row < ?",
                (snap.generation, snap.next_row),
            )
        ],
        dtype=np.int64,
    )
    gone = snap.positions_of_rows(gone_rows)
    gone = gone[gone >= 0]
    gone = gone[snap.live[gone]]
    live = np.concatenate([snap.live, np.asarray(docs.live, dtype=bool)])
    live[gone] = False
    id_to_pos = dict(snap.id_to_pos)
    for pos in gone.tolist():
        id_to_pos.pop(snap.ids[pos], None)
    for i, (doc_id, alive) in enumerate(zip(docs.ids, docs.live, strict=True)):
        if alive:
            if doc_id in id_to_pos:
                raise IndexCorruptedError(f"Id {doc_id!r} is stored twice in {path}. {RESTORE}")
            id_to_pos[doc_id] = snap.n_docs + i
    new = snap.replace(
        segments=segments,
        rows=np.concatenate([snap.rows, np.asarray(docs.rows, dtype=np.int64)]),
        starts=np.concatenate([snap.starts, np.asarray(docs.starts, dtype=np.int64)]),
        lengths=np.concatenate([snap.lengths, np.asarray(docs.lengths, dtype=np.int64)]),
        live=live,
        ids=[*snap.ids, *docs.ids],
        metadata=[*snap.metadata, *docs.metadata],
        id_to_pos=id_to_pos,
        next_row=next_row,
        next_token=next_token,
        generation=meta_int(meta, "generation", path),
    )
    return _update_graph(new, snap.n_docs, gone, config, muvera, lock)


def _update_graph(
    snap: Snapshot, first_new: int, gone: np.ndarray, config: IndexConfig, muvera: Any, lock: RWLock
) -> Snapshot:
    """Hide the deleted documents in the reader's graph; new ones are inserted by its
    background indexer and searched exactly until then."""
    if snap.hnsw is None or not snap.hnsw_complete or not gone.size:
        return snap
    try:
        hnsw_ops.mark_deleted(snap.hnsw, snap.labels_of(gone, config.strategy), lock)
    except Exception:
        logger.exception("updating this reader's HNSW graph failed; it searches exactly")
        return snap.replace(hnsw_complete=False)
    return snap
