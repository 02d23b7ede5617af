"""Mutations of an index folder, each ending in one SQLite commit (the commit point).

Order inside every mutation: (1) write new files durably under fresh names, (2) commit
one SQLite transaction that references them, (3) update the in-memory HNSW graph and
snapshot, (4) delete files that are no longer referenced. A crash before (2) leaves
only unreferenced files (swept on the next open); after (2) the change is complete on
disk and the HNSW graph is caught up on the next open.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sauerkraut_rag.errors import InvalidInputError
from sauerkraut_rag.retrievers.voyager import filter_sql, sql
from sauerkraut_rag.retrievers.voyager import hnsw as hnsw_ops
from sauerkraut_rag.retrievers.voyager.config import IndexConfig
from sauerkraut_rag.retrievers.voyager.locks import RWLock
from sauerkraut_rag.retrievers.voyager.state import Segment, Snapshot, with_appended
from sauerkraut_rag.retrievers.voyager.storage import (
    HNSW_DIR,
    VECTORS_DIR,
    fsync_dir,
    open_segment,
    segment_name,
    write_segment,
)
from sauerkraut_rag.types import Metadata

logger = logging.getLogger(__name__)

MAX_MERGED_SEGMENT_BYTES = 1 << 30
"""Segments are merged (binary-counter policy) only up to this size."""
AUTOSAVE_MIN_LABELS = 20_000
"""The HNSW graph is saved during writes once this many labels (and at least as many as
were saved last time) were inserted since the last save, bounding recovery work."""


class Writer:
    """Performs the writes of one open index; the caller serialises calls."""

    def __init__(
        self,
        path: Path,
        conn: sqlite3.Connection,
        config: IndexConfig,
        muvera: Any,
        lock: RWLock,
        *,
        generation: int,
        hnsw_meta: dict[str, Any] | None,
        hnsw_dirty: bool,
        saved_labels: int = 0,
    ) -> None:
        self.path = path
        self.conn = conn
        self.config = config
        self.muvera = muvera
        self.lock = lock
        self.generation = generation
        self.hnsw_meta = hnsw_meta
        self.hnsw_dirty = hnsw_dirty
        self._unsaved_labels = 0
        self._saved_labels = saved_labels

    # ------------------------------------------------------------------ add / upsert

    def _stored_form(self, array: np.ndarray, index: int) -> np.ndarray:
        """Pool (if configured) and cast one document to the storage dtype."""
        cfg = self.config
        if cfg.pool_factor > 1:
            from sauerkraut_rag.retrievers.pooling import pool_tokens

            array = pool_tokens(array, cfg.pool_factor, protected_tokens=cfg.pool_protected_tokens)
        with np.errstate(over="ignore"):
            stored = np.ascontiguousarray(array, dtype=cfg.vector_dtype)
        if not np.isfinite(stored).all():
            raise InvalidInputError(
                f"multivectors[{index}] has values outside the {cfg.vector_dtype} range. "
                "Pass L2-normalised vectors, or create the index with vector_dtype='float32'."
            )
        return stored

    def _new_segment(
        self, epoch: int, start: int, stop: int, chunks: Iterable[np.ndarray]
    ) -> Segment:
        """Write ``chunks`` durably as the segment of tokens ``[start, stop)`` and map it.

        The file is not referenced yet: the caller commits it, or removes it on failure.
        """
        name = segment_name(epoch, start, stop)
        folder = self.path / VECTORS_DIR
        dim, dtype = self.config.dim, self.config.vector_dtype
        sha, nbytes = write_segment(folder, name, chunks, n_rows=stop - start, dim=dim, dtype=dtype)
        try:
            array = open_segment(
                folder / name, n_rows=stop - start, dim=dim, dtype=dtype, sha256=None, nbytes=nbytes
            )
        except BaseException:
            (folder / name).unlink(missing_ok=True)
            raise
        return Segment(start, stop, name, sha, nbytes, array)

    def append(
        self,
        snap: Snapshot,
        ids: list[str],
        arrays: list[np.ndarray],
        metas: list[tuple[Metadata, str]],
        payloads: list[str | None],
        replaced: Sequence[int],
    ) -> Snapshot:
        """Store new document versions (tombstoning ``replaced`` positions); returns the
        committed snapshot with the documents inserted into HNSW."""
        stored = [self._stored_form(a, i) for i, a in enumerate(arrays)]
        lengths = [len(s) for s in stored]
        start, stop = snap.next_token, snap.next_token + sum(lengths)
        segment = self._new_segment(snap.epoch, start, stop, stored)
        generation = self.generation + 1
        token_starts = start + np.r_[0, np.cumsum(lengths)[:-1]]
        rows = [
            (snap.next_row + i, doc_id, int(token_starts[i]), lengths[i], metas[i][1], payloads[i])
            for i, doc_id in enumerate(ids)
        ]
        counters = {"next_row": snap.next_row + len(ids), "next_token": stop}
        try:
            with sql.transaction(self.conn):
                _insert_segment(self.conn, segment)
                sql.tombstone(self.conn, [int(snap.rows[p]) for p in replaced], generation)
                filter_sql.insert_entries(
                    self.conn, [(r[0], m) for r, (m, _) in zip(rows, metas, strict=True)]
                )
                sql.insert_docs(self.conn, rows)
                sql.set_meta(self.conn, {**counters, "generation": generation})
        except BaseException:
            (self.path / VECTORS_DIR / segment.file).unlink(missing_ok=True)
            raise
        self.generation = generation
        new = with_appended(
            snap,
            segment=segment,
            ids=ids,
            lengths=lengths,
            metadata=[m for m, _ in metas],
            replaced=replaced,
        )
        return self._insert_new(new, np.arange(snap.n_docs, new.n_docs))

    def _insert_new(self, snap: Snapshot, positions: np.ndarray) -> Snapshot:
        """Insert committed documents into HNSW; on failure fall back to exact search."""
        if snap.hnsw is None or not snap.hnsw_complete:
            return snap
        try:
            added = hnsw_ops.insert(snap.hnsw, snap, positions, self.config, self.muvera, self.lock)
        except Exception:
            logger.exception(
                "inserting into the HNSW graph failed; the documents are stored, and search "
                "uses exact scoring until the index is reopened or compacted"
            )
            return snap.replace(hnsw_complete=False)
        self._unsaved_labels += added
        self.hnsw_dirty = True
        return snap

    def hide_in_hnsw(self, snap: Snapshot, positions: Sequence[int]) -> None:
        """Mark tombstoned documents deleted in the HNSW graph (fewer wasted candidates)."""
        if snap.hnsw is None or not len(positions):
            return
        labels = snap.labels_of(np.asarray(positions, dtype=np.int64), self.config.strategy)
        hnsw_ops.mark_deleted(snap.hnsw, labels, self.lock)
        self.hnsw_dirty = True

    def maybe_merge(self, snap: Snapshot) -> Snapshot | None:
        """Merge trailing segments of similar size into one file (token ids unchanged)."""
        segs = snap.segments
        row_bytes = self.config.dim * np.dtype(self.config.vector_dtype).itemsize
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
        merged = self._new_segment(
            snap.epoch, group[0].start, group[-1].stop, (s.array for s in group)
        )
        folder = self.path / VECTORS_DIR
        try:
            with sql.transaction(self.conn):
                self.conn.executemany(
                    "DELETE FROM segments WHERE start = ?", [(s.start,) for s in group]
                )
                _insert_segment(self.conn, merged)
        except BaseException:
            (folder / merged.file).unlink(missing_ok=True)
            raise
        _unlink(folder, [s.file for s in group])
        return snap.replace(segments=(*segs[:first], merged))

    def maybe_autosave(self, snap: Snapshot) -> None:
        """Save the HNSW graph when enough was inserted since the last save."""
        if self._unsaved_labels >= max(AUTOSAVE_MIN_LABELS, self._saved_labels):
            self.save_hnsw(snap)

    # ------------------------------------------------------------------ delete

    def tombstone(self, snap: Snapshot, positions: Sequence[int]) -> None:
        """Commit tombstones for the documents at ``positions``."""
        generation = self.generation + 1
        with sql.transaction(self.conn):
            sql.tombstone(self.conn, [int(snap.rows[p]) for p in positions], generation)
            sql.set_meta(self.conn, {"generation": generation})
        self.generation = generation

    # ------------------------------------------------------------------ compact

    def compact(self, snap: Snapshot) -> Snapshot:
        """Rewrite vectors and HNSW with live documents only, under a new epoch."""
        live = np.flatnonzero(snap.live)
        epoch = snap.epoch + 1
        lengths = snap.lengths[live]
        n_tokens = int(lengths.sum())
        starts = np.r_[0, np.cumsum(lengths)[:-1]].astype(np.int64)
        folder = self.path / VECTORS_DIR
        new_files: list[tuple[Path, str]] = []
        segments: tuple[Segment, ...] = ()
        try:
            if n_tokens:
                chunks = (snap.doc_tokens(int(p)) for p in live)
                segments = (self._new_segment(epoch, 0, n_tokens, chunks),)
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
            )
            new = new.replace(
                hnsw=hnsw_ops.build(new, self.config, self.muvera), hnsw_complete=True
            )
            hnsw_file, hnsw_sha = hnsw_ops.save(new.hnsw, self.path / HNSW_DIR)
            new_files.append((self.path / HNSW_DIR, hnsw_file))
            generation = self.generation + 1
            hnsw_meta = {
                "file": hnsw_file,
                "sha256": hnsw_sha,
                "epoch": epoch,
                "next_row": new.next_row,
                "generation": generation,
            }
            with sql.transaction(self.conn):
                self.conn.execute("DELETE FROM docs WHERE deleted_at IS NOT NULL")
                filter_sql.drop_orphans(self.conn)
                self.conn.executemany(
                    "UPDATE docs SET token_start = ? WHERE row = ?",
                    [(int(s), int(r)) for s, r in zip(starts, new.rows, strict=True)],
                )
                self.conn.execute("DELETE FROM segments")
                for seg in segments:
                    _insert_segment(self.conn, seg)
                sql.set_meta(
                    self.conn,
                    {
                        "epoch": epoch,
                        "next_token": n_tokens,
                        "generation": generation,
                        "hnsw": hnsw_meta,
                    },
                )
        except BaseException:
            for dir_, file in new_files:
                (dir_ / file).unlink(missing_ok=True)
            raise
        old_hnsw = self.hnsw_meta
        self.generation, self.hnsw_meta, self.hnsw_dirty = generation, hnsw_meta, False
        self._unsaved_labels, self._saved_labels = 0, int(new.hnsw.num_elements)
        _unlink(folder, [s.file for s in snap.segments])
        if old_hnsw is not None:
            _unlink(self.path / HNSW_DIR, [str(old_hnsw["file"])])
        return new

    # ------------------------------------------------------------------ HNSW / config

    def save_hnsw(self, snap: Snapshot) -> None:
        """Save the graph under a fresh name and reference it from SQLite."""
        if snap.hnsw is None or not snap.hnsw_complete:
            return
        with self.lock.read():  # no insert may run while the graph is serialised
            name, sha = hnsw_ops.save(snap.hnsw, self.path / HNSW_DIR)
        meta = {
            "file": name,
            "sha256": sha,
            "epoch": snap.epoch,
            "next_row": snap.next_row,
            "generation": self.generation,
        }
        try:
            with sql.transaction(self.conn):
                sql.set_meta(self.conn, {"hnsw": meta})
        except BaseException:
            (self.path / HNSW_DIR / name).unlink(missing_ok=True)
            raise
        old, self.hnsw_meta = self.hnsw_meta, meta
        if old is not None:
            _unlink(self.path / HNSW_DIR, [str(old["file"])])
        self.hnsw_dirty = False
        self._saved_labels = int(snap.hnsw.num_elements)
        self._unsaved_labels = 0
        self.conn.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def store_config(self, config: IndexConfig) -> None:
        """Persist changed (search-time) settings."""
        with sql.transaction(self.conn):
            sql.set_meta(self.conn, {"config": config.to_dict()})
        self.config = config


def _insert_segment(conn: sqlite3.Connection, seg: Segment) -> None:
    sql.insert_segment(conn, seg.start, seg.stop, seg.file, seg.sha256, seg.nbytes)


def _unlink(folder: Path, names: Sequence[str]) -> None:
    """Best-effort removal of files no longer referenced (swept on open otherwise)."""
    for name in names:
        try:
            (folder / name).unlink(missing_ok=True)
        except OSError:
            logger.debug("could not remove %s; it will be swept on the next open", name)
    fsync_dir(folder)
