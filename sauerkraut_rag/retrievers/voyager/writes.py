"""Mutations of an index folder, each ending in one SQLite commit (the commit point).

Order inside every mutation: (1) write new files durably under fresh names, (2) commit
one SQLite transaction that references them and advances the ``generation`` counter,
(3) publish the new snapshot (new documents reach the HNSW graph in the background,
see :mod:`.indexer`; deleted ones are hidden in it at once), (4) housekeeping: merge segments,
save the graph now and then, delete retired files once no reader needs them. A crash
before (2) leaves only unreferenced files (swept on the next writable open); after (2)
the change is complete on disk and the HNSW graph is caught up on the next open.

Failures before the commit propagate (nothing was stored); housekeeping failures after
it are logged and retried later, never reported as a failed write. When the commit
itself reports an error, the stored generation is read back to learn the truth.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sauerkraut_rag.errors import InvalidInputError
from sauerkraut_rag.retrievers.voyager import filter_sql, sql
from sauerkraut_rag.retrievers.voyager import hnsw as hnsw_ops
from sauerkraut_rag.retrievers.voyager.config import IndexConfig
from sauerkraut_rag.retrievers.voyager.locks import RWLock
from sauerkraut_rag.retrievers.voyager.retire import Retirer
from sauerkraut_rag.retrievers.voyager.segments import open_segment_data
from sauerkraut_rag.retrievers.voyager.state import Segment, Snapshot, with_appended
from sauerkraut_rag.retrievers.voyager.storage import VECTORS_DIR, segment_name, write_segment
from sauerkraut_rag.types import Metadata

logger = logging.getLogger(__name__)


class Writer:
    """Performs the writes of one open index; the caller serialises calls."""

    def __init__(
        self,
        path: Path,
        conn: sqlite3.Connection,
        config: IndexConfig,
        muvera: Any,
        lock: RWLock,
        retirer: Retirer,
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
        self.retirer = retirer
        self.generation = generation
        self.hnsw_meta = hnsw_meta
        self.hnsw_dirty = hnsw_dirty
        self.unsaved_labels = 0
        self.saved_labels = saved_labels
        self.merge_retry_at = 0.0
        self.pending_interrupt: BaseException | None = None

    # ------------------------------------------------------------------ commit point

    def commit(self, body: Callable[[sqlite3.Connection], None], meta: dict[str, Any]) -> int:
        """Run ``body`` and store ``meta`` in one transaction that also advances the
        generation; returns the new generation.

        If the transaction reports an error, the stored generation says whether it
        committed after all (then this returns normally; an interrupt such as Ctrl-C is
        kept in :attr:`pending_interrupt` to be raised once the caller has published).
        """
        target = self.generation + 1
        try:
            with sql.transaction(self.conn):
                body(self.conn)
                sql.set_meta(self.conn, {**meta, "generation": target})
        except BaseException as exc:
            if not self.stored_generation_is(target):
                raise
            logger.warning("the commit reported %r, but it is stored; continuing", exc)
            if not isinstance(exc, Exception):
                self.pending_interrupt = exc
        self.generation = target
        return target

    def stored_generation_is(self, generation: int) -> bool:
        """Whether the database's committed generation is ``generation`` (never raises)."""
        try:
            return sql.stored_generation(self.conn) == generation
        except Exception:
            return False

    def intact(self) -> bool:
        """Whether the database still holds this writer's last committed generation."""
        return self.stored_generation_is(self.generation)

    def raise_pending_interrupt(self) -> None:
        """Re-raise an interrupt that arrived while a commit finished."""
        exc, self.pending_interrupt = self.pending_interrupt, None
        if exc is not None:
            raise exc

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

    def new_segment(
        self, epoch: int, start: int, stop: int, chunks: Iterable[np.ndarray]
    ) -> Segment:
        """Write ``chunks`` durably as the segment of tokens ``[start, stop)`` and open it.

        The file is not referenced yet: the caller commits it, or removes it on failure.
        """
        name = segment_name(epoch, start, stop)
        folder = self.path / VECTORS_DIR
        dim, dtype = self.config.dim, self.config.vector_dtype
        sha, nbytes = write_segment(folder, name, chunks, n_rows=stop - start, dim=dim, dtype=dtype)
        try:
            data = open_segment_data(
                folder / name, n_rows=stop - start, dim=dim, dtype=dtype, sha256=None, nbytes=nbytes
            )
        except BaseException:
            discard(folder, name)
            raise
        return Segment(start, stop, name, sha, nbytes, data)

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
        segment = self.new_segment(snap.epoch, start, stop, stored)
        token_starts = start + np.r_[0, np.cumsum(lengths)[:-1]]
        rows = [
            (snap.next_row + i, doc_id, int(token_starts[i]), lengths[i], metas[i][1], payloads[i])
            for i, doc_id in enumerate(ids)
        ]
        generation = self.generation + 1

        def body(conn: sqlite3.Connection) -> None:
            insert_segment(conn, segment)
            sql.tombstone(conn, [int(snap.rows[p]) for p in replaced], generation)
            filter_sql.insert_entries(
                conn, [(r[0], m) for r, (m, _) in zip(rows, metas, strict=True)]
            )
            sql.insert_docs(conn, rows)

        try:
            self.commit(body, {"next_row": snap.next_row + len(ids), "next_token": stop})
        except BaseException:
            discard(self.path / VECTORS_DIR, segment.file)
            raise
        new = with_appended(
            snap,
            segment=segment,
            ids=ids,
            lengths=lengths,
            metadata=[m for m, _ in metas],
            replaced=replaced,
        ).replace(generation=self.generation)
        return new  # the background indexer inserts the new documents into the graph

    def graph_grew(self, labels: int) -> None:
        """The background indexer inserted ``labels`` labels into the graph."""
        self.unsaved_labels += labels
        self.hnsw_dirty = True

    def cells_changed(self) -> None:
        """The background indexer extended or retrained the token cells (saved with the
        graph)."""
        self.hnsw_dirty = True

    def hide_in_hnsw(self, snap: Snapshot, positions: Sequence[int]) -> None:
        """Mark tombstoned documents deleted in the HNSW graph (fewer wasted candidates)."""
        if snap.hnsw is None or not len(positions):
            return
        labels = snap.labels_of(np.asarray(positions, dtype=np.int64), self.config.strategy)
        hnsw_ops.mark_deleted(snap.hnsw, labels, self.lock)
        self.hnsw_dirty = True

    # ------------------------------------------------------------------ delete / settings

    def tombstone(self, snap: Snapshot, positions: Sequence[int]) -> int:
        """Commit tombstones for the documents at ``positions``; returns the generation."""
        generation = self.generation + 1
        rows = [int(snap.rows[p]) for p in positions]
        return self.commit(lambda conn: sql.tombstone(conn, rows, generation), {})

    def store_meta(self, values: dict[str, Any]) -> None:
        """Persist meta entries (settings, the encoder record) in one commit."""
        self.commit(lambda conn: None, values)

    def store_config(self, config: IndexConfig) -> None:
        """Persist changed (search-time) settings."""
        self.store_meta({"config": config.to_dict()})
        self.config = config


def insert_segment(conn: sqlite3.Connection, seg: Segment) -> None:
    """Reference a durable segment file in the ``segments`` table."""
    sql.insert_segment(conn, seg.start, seg.stop, seg.file, seg.sha256, seg.nbytes)


def discard(folder: Path, name: str) -> None:
    """Remove a file that no commit references (best effort: swept on open otherwise)."""
    try:
        (folder / name).unlink(missing_ok=True)
    except OSError:
        logger.debug("could not remove %s; it will be swept on the next open", folder / name)
