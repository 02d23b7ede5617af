"""Work after a commit: merging segments, saving the HNSW graph, deleting retired files.

None of it changes what the index stores, so none of it may turn a committed write into
a reported failure: :func:`after_commit` logs a failure and tries again later (a failed
merge after :data:`MERGE_RETRY_SECONDS`, the graph at the next autosave or close,
retired files after the next commit).
"""

from __future__ import annotations

import logging
import time

import numpy as np

from sauerkraut_rag.retrievers.voyager import cells_upkeep, sql
from sauerkraut_rag.retrievers.voyager import hnsw as hnsw_ops
from sauerkraut_rag.retrievers.voyager.faults import log_deferred
from sauerkraut_rag.retrievers.voyager.state import Snapshot
from sauerkraut_rag.retrievers.voyager.storage import HNSW_DIR, VECTORS_DIR
from sauerkraut_rag.retrievers.voyager.writes import Writer, discard, insert_segment

logger = logging.getLogger(__name__)

MAX_MERGED_SEGMENT_BYTES = 1 << 30
"""Segments are merged (binary-counter policy) only up to this size."""
AUTOSAVE_MIN_LABELS = 20_000
"""The HNSW graph is saved during writes once this many labels (and at least as many as
were saved last time) were inserted since the last save, bounding recovery work."""
MERGE_RETRY_SECONDS = 5.0
"""After a failed merge (e.g. a full disk), merges pause this long."""


def after_commit(writer: Writer, snap: Snapshot) -> Snapshot:
    """Merge, autosave and delete retired files; returns the (possibly merged) snapshot.

    Never raises an ``Exception``: failures are logged and retried later.
    """
    if time.monotonic() >= writer.merge_retry_at:
        try:
            merged = maybe_merge(writer, snap)
        except Exception as exc:
            log_deferred("merging vector segments", exc)
            writer.merge_retry_at = time.monotonic() + MERGE_RETRY_SECONDS
        else:
            if merged is not None:
                snap = merged
    if writer.unsaved_labels >= max(AUTOSAVE_MIN_LABELS, writer.saved_labels):
        try:
            save_hnsw(writer, snap)
        except Exception as exc:
            log_deferred("saving the HNSW graph", exc)
    writer.retirer.flush()
    return snap


def maybe_merge(writer: Writer, snap: Snapshot) -> Snapshot | None:
    """Merge trailing segments of similar size into one file (token ids unchanged)."""
    segs = snap.segments
    row_bytes = writer.config.dim * np.dtype(writer.config.vector_dtype).itemsize
    first, total = len(segs) - 1, segs[-1].stop - segs[-1].start if segs else 0
    while first >= 1:
        size = segs[first - 1].stop - segs[first - 1].start
        if size > total or (size + total) * row_bytes > MAX_MERGED_SEGMENT_BYTES:
            break
        total += size
        first -= 1
    if first < 0 or first >= len(segs) - 1:
        return None
    group = segs[first:]
    merged = writer.new_segment(
        snap.epoch, group[0].start, group[-1].stop, (s.array for s in group)
    )
    folder = writer.path / VECTORS_DIR

    def body(conn: sql.sqlite3.Connection) -> None:
        conn.executemany("DELETE FROM segments WHERE start = ?", [(s.start,) for s in group])
        insert_segment(conn, merged)

    try:
        writer.commit(body, {})
    except BaseException:
        discard(folder, merged.file)
        raise
    writer.retirer.retire(folder, [s.file for s in group])
    return snap.replace(segments=(*segs[:first], merged), generation=writer.generation)


def save_hnsw(writer: Writer, snap: Snapshot) -> None:
    """Save the graph and the token cells under fresh names and reference them from
    SQLite."""
    cells_upkeep.save(writer, snap)
    if snap.hnsw is None or not snap.hnsw_complete:
        return
    folder = writer.path / HNSW_DIR
    folder.mkdir(exist_ok=True)
    with writer.lock.read():  # no insert may run while the graph is serialised
        name, sha = hnsw_ops.save(snap.hnsw, folder)
        cover = snap.graph_cover  # the rows the saved graph holds (the rest: caught up)
        rows = snap.next_row if cover is None else min(max(cover.rows, 0), snap.next_row)
    meta = {
        "file": name,
        "sha256": sha,
        "epoch": snap.epoch,
        "next_row": rows,
        "generation": writer.generation,
    }
    try:
        writer.store_meta({"hnsw": meta})
    except BaseException:
        discard(folder, name)
        raise
    old, writer.hnsw_meta = writer.hnsw_meta, meta
    if old is not None:
        writer.retirer.retire(folder, [str(old["file"])])
    writer.hnsw_dirty = False
    writer.saved_labels = int(snap.hnsw.num_elements)
    writer.unsaved_labels = 0
    try:
        writer.conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
    except sql.sqlite3.Error as exc:
        logger.debug("WAL checkpoint skipped: %s", exc)
