"""Loading an index folder: checked reads of SQLite, segments and the HNSW graph.

Everything is read inside one read transaction of the caller, so the state is one
committed generation even while a writer commits; readers also hold the files lock
(see :class:`~sauerkraut_rag.retrievers.voyager.locks.FilesLock`) while they open the
files that state names. :func:`read_docs` and :func:`open_segments` are shared with the
incremental refresh of read-only handles (:mod:`.refresh`).
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sauerkraut_rag.errors import IndexCorruptedError, IndexFormatError, IndexStoreError
from sauerkraut_rag.retrievers.voyager import cells_store, cells_upkeep, sql
from sauerkraut_rag.retrievers.voyager import hnsw as hnsw_ops
from sauerkraut_rag.retrievers.voyager.config import IndexConfig
from sauerkraut_rag.retrievers.voyager.layout import is_index
from sauerkraut_rag.retrievers.voyager.segments import open_segment_data
from sauerkraut_rag.retrievers.voyager.state import GraphCover, Segment, Snapshot, empty_snapshot
from sauerkraut_rag.retrievers.voyager.storage import HNSW_DIR, VECTORS_DIR, is_plain_name

__all__ = ["Loaded", "is_index", "load_state", "open_segments", "read_config", "read_docs"]

logger = logging.getLogger(__name__)

RESTORE = "Restore the index folder from a backup, or rebuild it from the source documents."


@dataclass
class Loaded:
    """What :func:`load_state` read from a folder."""

    meta: dict[str, str]
    config: IndexConfig
    muvera: Any
    snapshot: Snapshot
    hnsw_meta: dict[str, Any] | None
    hnsw_dirty: bool
    cells_meta: dict[str, Any] | None = None


@dataclass
class DocRows:
    """Document rows read from SQLite, in row order (one entry per stored version)."""

    rows: list[int]
    starts: list[int]
    lengths: list[int]
    live: list[bool]
    ids: list[str]
    metadata: list[Any]
    next_token: int  # token after the last row read


def meta_int(meta: Mapping[str, str], key: str, path: Path) -> int:
    """An integer counter from ``meta``; a missing or bad one means a damaged database."""
    try:
        return int(meta[key])
    except (KeyError, ValueError, TypeError) as exc:
        raise IndexCorruptedError(
            f"Index database {path} lacks a valid {key!r}. {RESTORE}"
        ) from exc


def read_config(conn: sqlite3.Connection, path: Path) -> tuple[dict[str, str], IndexConfig]:
    """Meta entries and config; checks that this is an index of a supported version."""
    try:
        meta = sql.read_meta(conn)
    except sqlite3.OperationalError as exc:
        raise IndexFormatError(
            f"{path} is not a sauerkraut-rag index ({exc}). Create one with "
            "VoyagerIndex.create(path, dim=...)."
        ) from exc
    if "format_version" not in meta:
        raise IndexFormatError(f"{path} is not a sauerkraut-rag index (no format version).")
    version = meta_int(meta, "format_version", path)
    if version > sql.FORMAT_VERSION:
        raise IndexFormatError(
            f"The index at {path} has format version {version}, newer than this "
            f"sauerkraut-rag supports ({sql.FORMAT_VERSION}). Upgrade sauerkraut-rag."
        )
    if version < 1:
        raise IndexFormatError(f"The index at {path} has an unknown format version {version}.")
    try:
        config = IndexConfig.from_dict(json.loads(meta["config"]))
    except Exception as exc:
        raise IndexCorruptedError(
            f"Index config in {path} is unreadable: {exc}. {RESTORE}"
        ) from exc
    return meta, config


def open_segments(
    conn: sqlite3.Connection,
    path: Path,
    config: IndexConfig,
    next_token: int,
    *,
    verify: bool,
    reuse: Mapping[str, Segment] | None = None,
) -> tuple[Segment, ...]:
    """The committed segment list, opened (``reuse``: already open segments by file)."""
    segments: list[Segment] = []
    expected_start = 0
    itemsize = np.dtype(config.vector_dtype).itemsize
    rows = conn.execute("SELECT start, stop, file, sha256, nbytes FROM segments ORDER BY start")
    for start, stop, file, sha, nbytes in rows.fetchall():
        if start != expected_start or stop <= start or not is_plain_name(file):
            raise IndexCorruptedError(
                f"Segment table of {path} is inconsistent at token {start}. {RESTORE}"
            )
        known = (reuse or {}).get(file)
        if known is not None and (known.start, known.stop, known.nbytes) == (start, stop, nbytes):
            segments.append(known)
            expected_start = stop
            continue
        if not isinstance(nbytes, int) or nbytes < (stop - start) * config.dim * itemsize:
            raise IndexCorruptedError(f"Segment {file} in {path} is too small. {RESTORE}")
        data = open_segment_data(
            path / VECTORS_DIR / file,
            n_rows=stop - start,
            dim=config.dim,
            dtype=config.vector_dtype,
            sha256=sha if verify else None,
            nbytes=nbytes,
        )
        segments.append(Segment(start, stop, file, sha, nbytes, data))
        expected_start = stop
    if expected_start != next_token:
        raise IndexCorruptedError(
            f"Vector segments of {path} cover tokens [0, {expected_start}), the database "
            f"expects [0, {next_token}). {RESTORE}"
        )
    return tuple(segments)


def read_docs(
    conn: sqlite3.Connection,
    path: Path,
    *,
    from_row: int,
    first_token: int,
    next_row: int,
    verify: bool,
) -> DocRows:
    """Rows ``>= from_row``; checks row order, token tiling (from ``first_token``) and CRCs."""
    cursor = conn.execute(
        "SELECT row, id, token_start, n_tokens, deleted_at, metadata, payload, crc "
        "FROM docs WHERE row >= ? ORDER BY row",
        (from_row,),
    )
    out = DocRows([], [], [], [], [], [], first_token)
    for row, doc_id, start, n_tok, deleted, meta, payload, crc in cursor:
        if start != out.next_token or n_tok < 1 or row >= next_row:
            raise IndexCorruptedError(
                f"Document row {row} of {path} does not fit the token layout. {RESTORE}"
            )
        if verify and sql.row_crc(doc_id, n_tok, meta, payload) != crc:
            raise IndexCorruptedError(f"Document row {row} of {path} fails its checksum. {RESTORE}")
        out.next_token = start + n_tok
        out.rows.append(row)
        out.starts.append(start)
        out.lengths.append(n_tok)
        out.live.append(deleted is None)
        out.ids.append(doc_id)
        try:
            out.metadata.append(json.loads(meta) if deleted is None else {})
        except (ValueError, RecursionError) as exc:
            raise IndexCorruptedError(
                f"Metadata of row {row} in {path} is not JSON. {RESTORE}"
            ) from exc
    return out


def _snapshot_from(base: Snapshot, docs: DocRows, path: Path) -> Snapshot:
    id_to_pos: dict[str, int] = {}
    for pos, (doc_id, alive) in enumerate(zip(docs.ids, docs.live, strict=True)):
        if alive:
            if doc_id in id_to_pos:
                raise IndexCorruptedError(f"Id {doc_id!r} is stored twice in {path}. {RESTORE}")
            id_to_pos[doc_id] = pos
    if docs.next_token != base.next_token:
        raise IndexCorruptedError(
            f"Documents of {path} cover tokens [0, {docs.next_token}), expected "
            f"[0, {base.next_token}). {RESTORE}"
        )
    return base.replace(
        rows=np.asarray(docs.rows, dtype=np.int64),
        starts=np.asarray(docs.starts, dtype=np.int64),
        lengths=np.asarray(docs.lengths, dtype=np.int64),
        live=np.asarray(docs.live, dtype=bool),
        ids=docs.ids,
        metadata=docs.metadata,
        id_to_pos=id_to_pos,
    )


def load_state(
    conn: sqlite3.Connection,
    path: Path,
    *,
    verify: bool,
    muvera_for: Callable[[IndexConfig], Any],
) -> Loaded:
    """Read and check everything, then load (and catch up) or rebuild the HNSW graph.

    ``muvera_for(config)`` builds the FDE encoder (or ``None``) once the config is known.
    Call inside a read transaction (and, for readers, holding the files lock).
    """
    try:
        if verify:
            sql.quick_check(conn, path)
        meta, config = read_config(conn, path)
        base = empty_snapshot(meta_int(meta, "epoch", path)).replace(
            next_row=meta_int(meta, "next_row", path),
            next_token=meta_int(meta, "next_token", path),
            generation=meta_int(meta, "generation", path),
        )
        segments = open_segments(conn, path, config, base.next_token, verify=verify)
        docs = read_docs(
            conn, path, from_row=0, first_token=0, next_row=base.next_row, verify=verify
        )
        snap = _snapshot_from(base.replace(segments=segments), docs, path)
        hnsw_meta = _hnsw_reference(meta, path)
        muvera = muvera_for(config)
        snap, dirty = _attach_hnsw(conn, path, config, snap, hnsw_meta, muvera)
        cells_meta = cells_store.reference(meta.get("cells"))
        snap = cells_upkeep.attach(snap, path / HNSW_DIR, cells_meta, config)
    except sqlite3.DatabaseError as exc:
        raise IndexCorruptedError(
            f"The index database in {path} is unreadable: {exc}. {RESTORE}"
        ) from exc
    except (ValueError, TypeError, OverflowError, UnicodeError) as exc:
        if isinstance(exc, IndexStoreError):
            raise
        raise IndexCorruptedError(
            f"The index database in {path} is inconsistent: {exc}. {RESTORE}"
        ) from exc
    return Loaded(meta, config, muvera, snap, hnsw_meta, dirty, cells_meta)


def _hnsw_reference(meta: dict[str, str], path: Path) -> dict[str, Any] | None:
    """The saved-graph entry of ``meta``, or ``None`` (graph rebuilt) when it is absent or
    unusable, e.g. names a file outside ``hnsw/`` (the graph is derived data)."""
    if "hnsw" not in meta:
        return None
    try:
        entry = json.loads(meta["hnsw"])
    except (ValueError, RecursionError):
        entry = None
    types = {"file": str, "sha256": str, "epoch": int, "next_row": int, "generation": int}
    if not isinstance(entry, dict) or not all(
        isinstance(entry.get(k), t) for k, t in types.items()
    ):
        logger.warning("ignoring an incomplete HNSW entry in %s; rebuilding the graph", path)
        return None
    if not is_plain_name(entry["file"]):
        logger.warning(
            "ignoring the HNSW entry of %s: %r is not a file name inside hnsw/; rebuilding "
            "the graph",
            path,
            entry["file"],
        )
        return None
    return entry


def _attach_hnsw(
    conn: sqlite3.Connection,
    path: Path,
    config: IndexConfig,
    snap: Snapshot,
    hnsw_meta: dict[str, Any] | None,
    muvera: Any,
) -> tuple[Snapshot, bool]:
    """Load the saved graph and catch it up, or rebuild it; returns (snapshot, dirty)."""
    graph = None
    if hnsw_meta is not None and hnsw_meta.get("epoch") == snap.epoch:
        graph = hnsw_ops.load(
            path / HNSW_DIR / str(hnsw_meta["file"]), str(hnsw_meta["sha256"]), config
        )
    if graph is None:
        if snap.n_live:
            logger.warning("rebuilding the HNSW graph of %s from the stored vectors", path)
        graph = hnsw_ops.build(snap, config, muvera, threads=1)  # deterministic
        cover = GraphCover(snap.next_row)
        return snap.replace(hnsw=graph, hnsw_complete=True, graph_cover=cover), bool(
            snap.n_live
        ) or hnsw_meta is not None
    saved_rows, saved_gen = int(hnsw_meta["next_row"]), int(hnsw_meta["generation"])
    new = np.flatnonzero(snap.live & (snap.rows >= saved_rows))
    gone = [
        r
        for (r,) in conn.execute(
            "SELECT row FROM docs WHERE row < ? AND deleted_at > ?", (saved_rows, saved_gen)
        )
    ]
    if new.size:
        hnsw_ops.insert(graph, snap, new, config, muvera, None, threads=1)  # deterministic
    if gone:
        positions = snap.positions_of_rows(np.asarray(gone, dtype=np.int64))
        hnsw_ops.mark_deleted(
            graph, snap.labels_of(positions[positions >= 0], config.strategy), None
        )
    cover = GraphCover(snap.next_row)
    return snap.replace(hnsw=graph, hnsw_complete=True, graph_cover=cover), bool(new.size or gone)
