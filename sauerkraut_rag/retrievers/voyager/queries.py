"""The read operations of an index handle: ``get`` and ``search`` over one state.

Both run through :meth:`ReadSide.run`, so the documents found and the payloads
returned come from the same committed state (see :mod:`.reads`).
"""

from __future__ import annotations

import copy
import sqlite3
from collections.abc import Sequence
from typing import Any

import numpy as np

from sauerkraut_rag.errors import InvalidInputError
from sauerkraut_rag.retrievers import _validation as check
from sauerkraut_rag.retrievers.protocol import IdPage, StoredDocument
from sauerkraut_rag.retrievers.voyager import filter_sql
from sauerkraut_rag.retrievers.voyager.handle import Handle
from sauerkraut_rag.retrievers.voyager.search import search_snapshot
from sauerkraut_rag.retrievers.voyager.state import Snapshot
from sauerkraut_rag.types import Hit

Ranked = list[list[tuple[int, float]]]


def get_documents(handle: Handle, ids: Any, *, include_vectors: bool) -> list[StoredDocument]:
    """Stored documents in the requested order; unknown ids are skipped."""
    id_list = check.check_lookup_ids(ids)

    def find(_: sqlite3.Connection, snap: Snapshot) -> list[int]:
        return [snap.id_to_pos[i] for i in id_list if i in snap.id_to_pos]

    with handle.gate.search():
        snap, positions, payloads = handle.reads.run(find, lambda s, ps: s.rows[ps].tolist())
    return [
        StoredDocument(
            id=snap.ids[p],
            metadata=copy.deepcopy(snap.metadata[p]),
            payload=payloads[int(snap.rows[p])],
            multivector=np.array(snap.doc_tokens(p)) if include_vectors else None,
        )
        for p in positions
    ]


def search_hits(handle: Handle, queries: Sequence[Any], k: Any, filter: Any) -> list[list[Hit]]:
    """Top-``k`` hits per query, best exact MaxSim score first."""
    k = check.check_k(k)
    flt = check.check_filter(filter)
    config = handle.config
    arrays = check.check_query_vectors(queries, dim=config.dim)
    if not arrays:
        return []

    def rank(conn: sqlite3.Connection, snap: Snapshot) -> Ranked:
        mask = None if flt is None else filter_sql.search_mask(conn, snap, flt)
        return search_snapshot(snap, config, arrays, k, mask, handle.muvera, handle.hnsw_lock)

    def rows(snap: Snapshot, ranked: Ranked) -> list[int]:
        return snap.rows[[p for hits in ranked for p, _ in hits]].tolist()

    with handle.gate.search():
        snap, ranked, payloads = handle.reads.run(rank, rows)
    return [
        [
            Hit(
                id=snap.ids[p],
                score=float(score),
                metadata=copy.deepcopy(snap.metadata[p]),
                payload=payloads[int(snap.rows[p])],
            )
            for p, score in hits
        ]
        for hits in ranked
    ]


def list_ids(snap: Snapshot, limit: Any, cursor: Any) -> IdPage:
    """Up to ``limit`` live ids in insertion order, after ``cursor`` (see ``IdPage``)."""
    limit = check.check_page_size(limit)
    after = _row_cursor(check.check_cursor(cursor))
    start = int(np.searchsorted(snap.rows, after, side="right"))
    live = np.flatnonzero(snap.live[start:])[: limit + 1] + start
    page = live[:limit]
    more = len(live) > limit
    return IdPage(
        ids=[snap.ids[p] for p in page],
        next_cursor=str(int(snap.rows[page[-1]])) if more else None,
    )


def _row_cursor(cursor: str | None) -> int:
    """The storage row a ``list_ids`` cursor names (``-1`` before the first)."""
    if cursor is None:
        return -1
    if not cursor.isdigit():
        raise InvalidInputError(
            f"Expected a cursor returned by VoyagerIndex.list_ids, got {cursor!r}. "
            "Start with cursor=None and pass each page's next_cursor."
        )
    return int(cursor)


def stats(handle: Handle, snap: Snapshot) -> dict[str, Any]:
    """Counts and on-disk bytes: documents, tokens, tombstones, segments, HNSW size."""
    disk = sum(f.stat().st_size for f in handle.path.rglob("*") if f.is_file())
    with handle.hnsw_lock.read():
        elements = 0 if snap.hnsw is None else int(snap.hnsw.num_elements)
    return {
        "documents": snap.n_live,
        "tombstones": snap.n_docs - snap.n_live,
        "tokens": int(snap.lengths[snap.live].sum()),
        "segments": len(snap.segments),
        "hnsw_elements": elements,
        "disk_bytes": disk,
    }
