"""Creating and loading index folders: checked reads of SQLite, segments and HNSW."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sauerkraut_rag.errors import IndexCorruptedError, IndexFormatError, IndexStoreError
from sauerkraut_rag.retrievers.voyager import hnsw as hnsw_ops
from sauerkraut_rag.retrievers.voyager import sql
from sauerkraut_rag.retrievers.voyager.config import IndexConfig
from sauerkraut_rag.retrievers.voyager.state import Segment, Snapshot, empty_snapshot
from sauerkraut_rag.retrievers.voyager.storage import (
    HNSW_DIR,
    VECTORS_DIR,
    fsync_dir,
    is_plain_name,
    open_segment,
    sweep_orphans,
)

logger = logging.getLogger(__name__)

_RESTORE = "Restore the index folder from a backup, or rebuild it from the source documents."


@dataclass
class Loaded:
    """What :func:`load_state` read from a folder."""

    config: IndexConfig
    muvera: Any
    snapshot: Snapshot
    generation: int
    hnsw_meta: dict[str, Any] | None
    hnsw_dirty: bool


def is_index(path: Path) -> bool:
    """Whether ``path`` holds an index database."""
    return (path / sql.DB_NAME).is_file()


def create_folder(path: Path, config: IndexConfig) -> None:
    """Create the folder layout and database atomically (temp db renamed into place)."""
    if path.exists() and not path.is_dir():
        raise IndexStoreError(
            f"Cannot create an index at {path}: it is a file. Pick a folder path."
        )
    if path.is_dir() and any(path.iterdir()):
        raise IndexStoreError(
            f"Cannot create an index in {path}: the folder is not empty. Pick a new or empty "
            "folder, or open an existing index with VoyagerIndex.open(path)."
        )
    path.mkdir(parents=True, exist_ok=True)
    (path / VECTORS_DIR).mkdir(exist_ok=True)
    (path / HNSW_DIR).mkdir(exist_ok=True)
    tmp = path / (sql.DB_NAME + ".tmp")
    tmp.unlink(missing_ok=True)
    meta = {
        "format_version": str(sql.FORMAT_VERSION),
        "config": json.dumps(config.to_dict()),
        "epoch": "0",
        "generation": "0",
        "next_row": "0",
        "next_token": "0",
    }
    sql.create_database(tmp, meta)
    with open(tmp, "rb+") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, path / sql.DB_NAME)
    fsync_dir(path)


def _int(meta: dict[str, str], key: str, path: Path) -> int:
    try:
        return int(meta[key])
    except (KeyError, ValueError) as exc:
        raise IndexCorruptedError(
            f"Index database {path} lacks a valid {key!r}. {_RESTORE}"
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
    version = _int(meta, "format_version", path)
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
            f"Index config in {path} is unreadable: {exc}. {_RESTORE}"
        ) from exc
    return meta, config


def _load_segments(
    conn: sqlite3.Connection, path: Path, config: IndexConfig, next_token: int, verify: bool
) -> tuple[Segment, ...]:
    segments: list[Segment] = []
    expected_start = 0
    itemsize = np.dtype(config.vector_dtype).itemsize
    rows = conn.execute("SELECT start, stop, file, sha256, nbytes FROM segments ORDER BY start")
    for start, stop, file, sha, nbytes in rows.fetchall():
        if start != expected_start or stop <= start or not is_plain_name(file):
            raise IndexCorruptedError(
                f"Segment table of {path} is inconsistent at token {start}. {_RESTORE}"
            )
        array = open_segment(
            path / VECTORS_DIR / file,
            n_rows=stop - start,
            dim=config.dim,
            dtype=config.vector_dtype,
            sha256=sha if verify else None,
            nbytes=nbytes,
        )
        if nbytes < (stop - start) * config.dim * itemsize:
            raise IndexCorruptedError(f"Segment {file} in {path} is too small. {_RESTORE}")
        segments.append(Segment(start, stop, file, sha, nbytes, array))
        expected_start = stop
    if expected_start != next_token:
        raise IndexCorruptedError(
            f"Vector segments of {path} cover tokens [0, {expected_start}), the database "
            f"expects [0, {next_token}). {_RESTORE}"
        )
    return tuple(segments)


def _load_docs(conn: sqlite3.Connection, path: Path, snap: Snapshot, verify: bool) -> Snapshot:
    """Fill the document arrays; checks row order, token tiling, unique ids and CRCs."""
    cursor = conn.execute(
        "SELECT row, id, token_start, n_tokens, deleted_at, metadata, payload, crc "
        "FROM docs ORDER BY row"
    )
    rows, starts, lengths, live, ids, metas = [], [], [], [], [], []
    id_to_pos: dict[str, int] = {}
    expected_token = 0
    for pos, (row, doc_id, start, n_tok, deleted, meta, payload, crc) in enumerate(cursor):
        if start != expected_token or n_tok < 1 or row >= snap.next_row:
            raise IndexCorruptedError(
                f"Document row {row} of {path} does not fit the token layout. {_RESTORE}"
            )
        if verify and sql.row_crc(doc_id, n_tok, meta, payload) != crc:
            raise IndexCorruptedError(
                f"Document row {row} of {path} fails its checksum. {_RESTORE}"
            )
        expected_token = start + n_tok
        rows.append(row)
        starts.append(start)
        lengths.append(n_tok)
        live.append(deleted is None)
        ids.append(doc_id)
        try:
            metas.append(json.loads(meta) if deleted is None else {})
        except ValueError as exc:
            raise IndexCorruptedError(
                f"Metadata of row {row} in {path} is not JSON. {_RESTORE}"
            ) from exc
        if deleted is None:
            if doc_id in id_to_pos:
                raise IndexCorruptedError(f"Id {doc_id!r} is stored twice in {path}. {_RESTORE}")
            id_to_pos[doc_id] = pos
    if expected_token != snap.next_token:
        raise IndexCorruptedError(
            f"Documents of {path} cover tokens [0, {expected_token}), expected "
            f"[0, {snap.next_token}). {_RESTORE}"
        )
    return snap.replace(
        rows=np.asarray(rows, dtype=np.int64),
        starts=np.asarray(starts, dtype=np.int64),
        lengths=np.asarray(lengths, dtype=np.int64),
        live=np.asarray(live, dtype=bool),
        ids=ids,
        metadata=metas,
        id_to_pos=id_to_pos,
    )


def open_connection(path: Path, *, read_only: bool) -> sqlite3.Connection:
    """Connect to the index database; an unreadable file raises IndexCorruptedError."""
    try:
        return sql.connect(path / sql.DB_NAME, read_only=read_only)
    except sqlite3.DatabaseError as exc:
        raise IndexCorruptedError(
            f"The index database in {path} cannot be opened: {exc}. {_RESTORE}"
        ) from exc


def load_state(
    conn: sqlite3.Connection,
    path: Path,
    *,
    verify: bool,
    writable: bool,
    muvera_for: Callable[[IndexConfig], Any],
) -> Loaded:
    """Read and check everything; sweep orphans (writable only); load or rebuild HNSW.

    ``muvera_for(config)`` builds the FDE encoder (or ``None``) once the config is known.
    """
    try:
        if verify:
            sql.quick_check(conn, path)
        meta, config = read_config(conn, path)
        epoch = _int(meta, "epoch", path)
        snap = empty_snapshot(epoch).replace(
            next_row=_int(meta, "next_row", path), next_token=_int(meta, "next_token", path)
        )
        segments = _load_segments(conn, path, config, snap.next_token, verify)
        snap = _load_docs(conn, path, snap.replace(segments=segments), verify)
        generation = _int(meta, "generation", path)
        hnsw_meta = _hnsw_reference(meta, path)
    except sqlite3.DatabaseError as exc:
        raise IndexCorruptedError(
            f"The index database in {path} is unreadable: {exc}. {_RESTORE}"
        ) from exc
    except (ValueError, TypeError) as exc:
        if isinstance(exc, IndexStoreError):
            raise
        raise IndexCorruptedError(
            f"The index database in {path} is inconsistent: {exc}. {_RESTORE}"
        ) from exc
    if writable:
        sweep_orphans(path / VECTORS_DIR, {s.file for s in snap.segments})
        sweep_orphans(path / HNSW_DIR, {hnsw_meta["file"]} if hnsw_meta else set())
    muvera = muvera_for(config)
    snap, dirty = _attach_hnsw(conn, path, config, snap, hnsw_meta, muvera)
    return Loaded(config, muvera, snap, generation, hnsw_meta, dirty)


def _hnsw_reference(meta: dict[str, str], path: Path) -> dict[str, Any] | None:
    """The saved-graph entry of ``meta``, or ``None`` (graph rebuilt) when it is absent or
    unusable, e.g. names a file outside ``hnsw/`` (the graph is derived data)."""
    if "hnsw" not in meta:
        return None
    try:
        entry = json.loads(meta["hnsw"])
    except ValueError:
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
        return snap.replace(hnsw=graph, hnsw_complete=True), bool(
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
    return snap.replace(hnsw=graph, hnsw_complete=True), bool(new.size or gone)
