"""``compact``: rewrite vectors and the HNSW graph without deleted documents.

The new segment and graph are written under a new epoch's names, then one commit
switches the database to them and drops the tombstoned rows. The old files are retired,
not deleted: readers that opened them keep reading them, and a reader opening the
index meanwhile finds them until it has opened the new state (see :mod:`.retire`).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np

from sauerkraut_rag.retrievers.voyager import cells_upkeep, filter_sql
from sauerkraut_rag.retrievers.voyager import hnsw as hnsw_ops
from sauerkraut_rag.retrievers.voyager.faults import log_deferred
from sauerkraut_rag.retrievers.voyager.state import GraphCover, Segment, Snapshot
from sauerkraut_rag.retrievers.voyager.storage import HNSW_DIR, VECTORS_DIR
from sauerkraut_rag.retrievers.voyager.writes import Writer, discard, insert_segment


def compact(writer: Writer, snap: Snapshot) -> Snapshot:
    """The compacted, committed snapshot (under epoch ``snap.epoch + 1``)."""
    live = np.flatnonzero(snap.live)
    epoch = snap.epoch + 1
    lengths = snap.lengths[live]
    n_tokens = int(lengths.sum())
    starts = np.r_[0, np.cumsum(lengths)[:-1]].astype(np.int64)
    folder, graphs = writer.path / VECTORS_DIR, writer.path / HNSW_DIR
    new_files: list[tuple[Path, str]] = []
    segments: tuple[Segment, ...] = ()
    try:
        if n_tokens:
            chunks = (snap.doc_tokens(int(p)) for p in live)
            segments = (writer.new_segment(epoch, 0, n_tokens, chunks),)
            new_files.append((folder, segments[0].file))
        new = snap.replace(
            epoch=epoch,
            segments=segments,
            rows=snap.rows[live],
            starts=starts,
            lengths=lengths,
            live=np.ones(live.size, dtype=bool),
            ids=[snap.ids[p] for p in live],
            metadata=[snap.metadata[p] for p in live],
            id_to_pos={snap.ids[p]: i for i, p in enumerate(live)},
            next_token=n_tokens,
            hnsw=None,
            hnsw_complete=False,
            cells=None,
        )
        new = new.replace(
            hnsw=hnsw_ops.build(new, writer.config, writer.muvera),
            hnsw_complete=True,
            graph_cover=GraphCover(new.next_row),
        )
        graphs.mkdir(exist_ok=True)
        hnsw_file, hnsw_sha = hnsw_ops.save(new.hnsw, graphs)
        new_files.append((graphs, hnsw_file))
        hnsw_meta = {
            "file": hnsw_file,
            "sha256": hnsw_sha,
            "epoch": epoch,
            "next_row": new.next_row,
            "generation": writer.generation + 1,
        }

        def body(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM docs WHERE deleted_at IS NOT NULL")
            filter_sql.drop_orphans(conn)
            conn.executemany(
                "UPDATE docs SET token_start = ? WHERE row = ?",
                [(int(s), int(r)) for s, r in zip(starts, new.rows, strict=True)],
            )
            conn.execute("DELETE FROM segments")
            for seg in segments:
                insert_segment(conn, seg)

        writer.commit(body, {"epoch": epoch, "next_token": n_tokens, "hnsw": hnsw_meta})
    except BaseException:
        for dir_, file in new_files:
            discard(dir_, file)
        raise
    old_hnsw = writer.hnsw_meta
    writer.hnsw_meta, writer.hnsw_dirty = hnsw_meta, False
    writer.unsaved_labels, writer.saved_labels = 0, int(new.hnsw.num_elements)
    writer.retirer.retire(folder, [s.file for s in snap.segments])
    if old_hnsw is not None:
        writer.retirer.retire(graphs, [str(old_hnsw["file"])])
    new = cells_upkeep.after_compact(snap, new.replace(generation=writer.generation), writer.config)
    try:
        cells_upkeep.save(writer, new)
    except Exception as exc:  # derived data: saved with the graph later, or retrained
        log_deferred("saving the token cells", exc)
    return new
