"""``VoyagerIndex``: a persistent, crash-safe multi-vector index in a folder.

Layout of an index folder (nothing in it is pickled; ids are data, never file names)::

    index.sqlite     ids, metadata (JSON), payloads, tombstones, token->document map,
                     segment list, config (incl. MUVERA parameters), format version
    vectors/*.npy    full-precision token vectors (float16 by default), append-only,
                     memory-mapped, SHA-256 recorded in SQLite
    hnsw/*.voy       Voyager HNSW graph (derived; rebuilt if missing, stale or damaged)
    writer.lock      OS lock held by the one process that may write

Search: with at most ``exact_threshold`` (matching) documents every document is scored
exactly; above it HNSW proposes candidates (``"fde"``: one MUVERA vector per document;
``"tokens"``: every token vector) and the candidates are always re-scored exactly
with MaxSim over the stored vectors.

Durability: each mutation writes its new vector file durably first and then commits
one SQLite transaction; that commit is the commit point. A crash at any moment leaves
the last committed state, and the next writable open deletes unreferenced files and
catches the HNSW graph up.

Concurrency: any number of threads may search while one thread writes. Searches read an
immutable snapshot; writers are serialised by a mutex. One process may hold an index
open for writing; others may open it ``read_only=True`` (they see the state at open).
"""

from __future__ import annotations

import copy
import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sauerkraut_rag.encoders.fingerprint import EncoderFingerprint
from sauerkraut_rag.errors import (
    DimensionMismatchError,
    DuplicateIdError,
    IndexFormatError,
    IndexStoreError,
    InvalidInputError,
    UnknownIdError,
)
from sauerkraut_rag.retrievers import _validation as check
from sauerkraut_rag.retrievers.encoder_check import bind_fingerprint, fingerprint_from_json
from sauerkraut_rag.retrievers.protocol import IdPage, MetadataFilter, StoredDocument
from sauerkraut_rag.retrievers.voyager import filter_sql, sql
from sauerkraut_rag.retrievers.voyager.config import (
    TUNABLE_FIELDS,
    IndexConfig,
    check_option_names,
    fixed_option_clash,
)
from sauerkraut_rag.retrievers.voyager.loading import (
    create_folder,
    is_index,
    load_state,
    open_connection,
)
from sauerkraut_rag.retrievers.voyager.locks import FolderLock, RWLock
from sauerkraut_rag.retrievers.voyager.search import search_snapshot
from sauerkraut_rag.retrievers.voyager.state import Snapshot, with_deleted
from sauerkraut_rag.retrievers.voyager.writes import Writer
from sauerkraut_rag.types import Hit, Metadata, MultiVector

__all__ = ["IndexConfig", "VoyagerIndex"]

logger = logging.getLogger(__name__)


class VoyagerIndex:
    """A multi-vector index stored in a folder (implements ``MultiVectorIndex``).

    ``VoyagerIndex(path, dim=128)`` opens the index at ``path`` or creates one there;
    :meth:`create` and :meth:`open` are the explicit forms. Creation options (see
    :class:`IndexConfig`) include ``strategy`` (``"fde"`` or ``"tokens"``),
    ``exact_threshold``, ``hnsw_m``, ``ef_construction``, ``ef_search``, ``storage``
    (``"float32"``, ``"float8"``, ``"e4m3"``), ``vector_dtype`` and ``pool_factor``.
    Use it as a context manager or call :meth:`close` to persist the HNSW graph.

    >>> with VoyagerIndex("my-index", dim=128) as index:  # doctest: +SKIP
    ...     index.add(["a", "b"], [doc_a, doc_b], [{"lang": "de"}, {"lang": "en"}])
    ...     hits = index.search([query], k=5, filter={"lang": "de"})[0]
    """

    def __init__(
        self,
        path: str | Path,
        dim: int | None = None,
        *,
        read_only: bool = False,
        verify: bool = True,
        **options: Any,
    ) -> None:
        self._path = Path(path)
        self._closed = True
        check_option_names(options)
        if not is_index(self._path):
            if dim is None or read_only:
                raise IndexFormatError(
                    f"No sauerkraut-rag index at {self._path}. Create one with "
                    "VoyagerIndex.create(path, dim=...) or VoyagerIndex(path, dim=...)."
                )
            create_folder(self._path, IndexConfig(dim=dim, **options))
            options = {}
        self._open(read_only=read_only, verify=verify)
        self._apply_open_options(dim, options)

    # ------------------------------------------------------------------ lifecycle

    @classmethod
    def create(
        cls, path: str | Path, dim: int, *, exist_ok: bool = False, **options: Any
    ) -> VoyagerIndex:
        """Create a new index at ``path`` (a new or empty folder) and open it for writing.

        With ``exist_ok=True`` an existing index there is opened instead (its stored
        settings win; tunable search settings in ``options`` are applied).
        """
        folder = Path(path)
        if is_index(folder) and not exist_ok:
            raise IndexStoreError(
                f"An index already exists at {folder}. Open it with VoyagerIndex.open(path), "
                "pass exist_ok=True, or choose another folder."
            )
        return cls(folder, dim, **options)

    @classmethod
    def open(
        cls, path: str | Path, *, read_only: bool = False, verify: bool = True
    ) -> VoyagerIndex:
        """Open an existing index. ``verify`` checks every file's checksum (reads all data)."""
        if not is_index(Path(path)):
            raise IndexFormatError(
                f"No sauerkraut-rag index at {path}. Create one with "
                "VoyagerIndex.create(path, dim=...)."
            )
        return cls(path, read_only=read_only, verify=verify)

    def _open(self, *, read_only: bool, verify: bool) -> None:
        self._read_only = read_only
        self._lock = None if read_only else FolderLock(self._path)
        conn = None
        try:
            conn = open_connection(self._path, read_only=read_only)
            loaded = load_state(
                conn, self._path, verify=verify, writable=not read_only, muvera_for=_muvera_for
            )
            if not read_only:
                filter_sql.ensure_table(conn)  # migrates indexes written before the table
            encoder = fingerprint_from_json(
                sql.read_meta(conn).get("encoder"), where=f"the index at {self._path}"
            )
        except BaseException:
            if conn is not None:
                conn.close()
            if self._lock is not None:
                self._lock.release()
            raise
        self._conn = conn
        self._encoder = encoder
        self._config: IndexConfig = loaded.config
        self._muvera = loaded.muvera
        self._snap: Snapshot = loaded.snapshot
        self._hnsw_lock = RWLock()
        self._mutex = threading.RLock()
        self._readers = sql.ReaderPool(self._path / sql.DB_NAME, read_only=read_only)
        self._writer = Writer(
            self._path,
            self._conn,
            self._config,
            self._muvera,
            self._hnsw_lock,
            generation=loaded.generation,
            hnsw_meta=loaded.hnsw_meta,
            hnsw_dirty=loaded.hnsw_dirty,
            saved_labels=0 if self._snap.hnsw is None else int(self._snap.hnsw.num_elements),
        )
        self._closed = False

    def _apply_open_options(self, dim: int | None, options: dict[str, Any]) -> None:
        if dim is not None and dim != self._config.dim:
            self.close()
            raise DimensionMismatchError(
                f"The index at {self._path} has dim {self._config.dim}, got dim={dim}. "
                "Use a new folder for a different model."
            )
        clash = fixed_option_clash(self._config, options)
        if clash:
            self.close()
            raise InvalidInputError(
                f"The index at {self._path} was created with other settings: {clash}"
            )
        tunable = {k: v for k, v in options.items() if k in TUNABLE_FIELDS}
        if tunable:
            self.configure(**tunable)

    def save(self) -> None:
        """Persist the HNSW graph now (documents are always persisted by each mutation)."""
        with self._mutex:
            self._check_writable()
            self._writer.save_hnsw(self._snap)

    def close(self) -> None:
        """Save the HNSW graph if it changed, then release files and the writer lock."""
        if self._closed:
            return
        with self._mutex:
            try:
                if not self._read_only and self._writer.hnsw_dirty:
                    self._writer.save_hnsw(self._snap)
            finally:
                self._closed = True
                self._readers.close()
                self._conn.close()
                if self._lock is not None:
                    self._lock.release()

    def __enter__(self) -> VoyagerIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        if self._closed:
            return f"VoyagerIndex({str(self._path)!r}, closed)"
        cfg = self._config
        return (
            f"VoyagerIndex({str(self._path)!r}, dim={cfg.dim}, strategy={cfg.strategy!r}, "
            f"{len(self)} docs)"
        )

    # ------------------------------------------------------------------ properties

    @property
    def dim(self) -> int:
        """Token vector dimension."""
        return self._config.dim

    @property
    def path(self) -> Path:
        return self._path

    @property
    def config(self) -> IndexConfig:
        """All settings (read-only; change search settings with :meth:`configure`)."""
        return self._config

    def __len__(self) -> int:
        return self._snap.n_live

    @property
    def encoder_fingerprint(self) -> EncoderFingerprint | None:
        """The encoder that made the stored vectors; ``None`` when unknown (not yet
        recorded, or an index written before fingerprints existed)."""
        return self._encoder

    def bind_encoder(self, fingerprint: EncoderFingerprint) -> None:
        """Refuse an encoder other than the one that made the stored vectors.

        Raises :class:`~sauerkraut_rag.errors.EncoderMismatchError`; an empty writable
        index without a record records ``fingerprint`` (with this index's pool factor).
        See :mod:`sauerkraut_rag.retrievers.encoder_check`.
        """
        with self._mutex:
            self._check_open()
            record = bind_fingerprint(
                self._encoder,
                fingerprint.with_pooling(self._config.pool_factor),
                where=f"the index at {self._path}",
                empty=self._snap.n_live == 0,
                writable=not self._read_only,
            )
            if record is not None:
                with sql.transaction(self._conn):
                    sql.set_meta(self._conn, {"encoder": record.to_dict()})
                self._encoder = record

    def __contains__(self, doc_id: object) -> bool:
        return isinstance(doc_id, str) and doc_id in self._snap.id_to_pos

    def configure(self, **settings: Any) -> None:
        """Change search settings (``exact_threshold``, ``ef_search``, ``candidates``,
        ``token_k``); persisted unless the index is read-only."""
        unknown = set(settings) - set(TUNABLE_FIELDS)
        if unknown:
            raise InvalidInputError(
                f"Cannot change {sorted(unknown)} after creation; tunable: {list(TUNABLE_FIELDS)}."
            )
        with self._mutex:
            self._check_open()
            config = self._config.replace(**settings)
            if not self._read_only:
                self._writer.store_config(config)
            else:
                self._writer.config = config
            self._config = config

    def stats(self) -> dict[str, Any]:
        """Counts and on-disk bytes: documents, tokens, tombstones, segments, HNSW size."""
        snap = self._snap
        disk = sum(f.stat().st_size for f in self._path.rglob("*") if f.is_file())
        with self._hnsw_lock.read():
            elements = 0 if snap.hnsw is None else int(snap.hnsw.num_elements)
        return {
            "documents": snap.n_live,
            "tombstones": snap.n_docs - snap.n_live,
            "tokens": int(snap.lengths[snap.live].sum()),
            "segments": len(snap.segments),
            "hnsw_elements": elements,
            "disk_bytes": disk,
        }

    # ------------------------------------------------------------------ writes

    def add(
        self,
        ids: Sequence[str],
        multivectors: Sequence[MultiVector],
        metadatas: Sequence[Metadata] | None = None,
        payloads: Sequence[str | None] | None = None,
    ) -> None:
        """Add new documents; raises :class:`DuplicateIdError` (writing nothing) if an id exists."""
        self._write(ids, multivectors, metadatas, payloads, replace=False)

    def upsert(
        self,
        ids: Sequence[str],
        multivectors: Sequence[MultiVector],
        metadatas: Sequence[Metadata] | None = None,
        payloads: Sequence[str | None] | None = None,
    ) -> None:
        """Insert documents, replacing stored ones with the same id, in one atomic step."""
        self._write(ids, multivectors, metadatas, payloads, replace=True)

    def _write(
        self, ids: Any, multivectors: Any, metadatas: Any, payloads: Any, *, replace: bool
    ) -> None:
        with self._mutex:
            self._check_writable()
            id_list = check.check_ids(ids)
            n = len(id_list)
            arrays = check.check_document_vectors(multivectors, dim=self._config.dim, n=n)
            metas = check.check_metadatas(metadatas, n=n)
            texts = check.check_payloads(payloads, n=n)
            if not n:
                return
            snap = self._snap
            existing = [doc_id for doc_id in id_list if doc_id in snap.id_to_pos]
            if existing and not replace:
                shown = ", ".join(repr(i) for i in existing[:5])
                raise DuplicateIdError(
                    f"Expected new ids, but {len(existing)} already stored ({shown}). Nothing "
                    "was written. Use upsert() to replace documents, or delete them first."
                )
            replaced = [snap.id_to_pos[doc_id] for doc_id in existing]
            new = self._writer.append(snap, id_list, arrays, metas, texts, replaced)
            self._snap = new  # publish: searches see all new documents from here on
            self._writer.hide_in_hnsw(new, replaced)
            merged = self._writer.maybe_merge(new)
            if merged is not None:
                self._snap = merged
            self._writer.maybe_autosave(self._snap)

    def delete(self, ids: Sequence[str], *, missing_ok: bool = True) -> int:
        """Delete documents by id; returns how many were deleted.

        Unknown ids are ignored (``missing_ok=True``, LangChain semantics) or, with
        ``missing_ok=False``, raise :class:`UnknownIdError` before anything is deleted.
        """
        with self._mutex:
            self._check_writable()
            id_list = check.check_lookup_ids(ids)
            snap = self._snap
            unknown = [doc_id for doc_id in id_list if doc_id not in snap.id_to_pos]
            if unknown and not missing_ok:
                raise UnknownIdError(
                    f"{len(unknown)} id(s) are not stored ({', '.join(map(repr, unknown[:5]))}); "
                    "nothing was deleted. Pass missing_ok=True to ignore unknown ids."
                )
            positions = sorted({snap.id_to_pos[i] for i in id_list if i in snap.id_to_pos})
            if not positions:
                return 0
            self._writer.tombstone(snap, positions)
            new = with_deleted(snap, positions)
            self._snap = new
            self._writer.hide_in_hnsw(new, positions)
            return len(positions)

    def compact(self) -> None:
        """Rewrite vectors and the HNSW graph without deleted documents (reclaims space)."""
        with self._mutex:
            self._check_writable()
            self._snap = self._writer.compact(self._snap)

    # ------------------------------------------------------------------ reads

    def get(self, ids: Sequence[str], *, include_vectors: bool = False) -> list[StoredDocument]:
        """Stored documents in the requested order; unknown ids are skipped.

        ``include_vectors=True`` adds each document's stored ``(n_tokens, dim)`` array.
        """
        self._check_open()
        id_list = check.check_lookup_ids(ids)
        for _ in range(3):
            snap = self._snap
            positions = [snap.id_to_pos[i] for i in id_list if i in snap.id_to_pos]
            payloads = self._readers.payloads(snap.rows[positions])
            if payloads is None:
                continue  # a concurrent compact removed a row: retry on the new snapshot
            return [
                StoredDocument(
                    id=snap.ids[p],
                    metadata=copy.deepcopy(snap.metadata[p]),
                    payload=payloads[int(snap.rows[p])],
                    multivector=np.array(snap.doc_tokens(p)) if include_vectors else None,
                )
                for p in positions
            ]
        raise IndexStoreError("The index changed during get(); retry.")

    def list_ids(self, limit: int = 1000, cursor: str | None = None) -> IdPage:
        """Up to ``limit`` live ids in insertion order, after ``cursor`` (see ``IdPage``).

        The cursor is the storage row of the last id returned, so paging stays correct
        while documents are added, deleted or compacted in between.
        """
        self._check_open()
        limit = check.check_page_size(limit)
        after = _row_cursor(check.check_cursor(cursor))
        snap = self._snap
        start = int(np.searchsorted(snap.rows, after, side="right"))
        live = np.flatnonzero(snap.live[start:])[: limit + 1] + start
        page = live[:limit]
        more = len(live) > limit
        return IdPage(
            ids=[snap.ids[p] for p in page],
            next_cursor=str(int(snap.rows[page[-1]])) if more else None,
        )

    def search(
        self,
        queries: Sequence[MultiVector],
        k: int = 10,
        *,
        filter: MetadataFilter | None = None,
    ) -> list[list[Hit]]:
        """Top-``k`` hits per query ``(n_query_tokens, dim)``, best MaxSim score first.

        ``filter`` is a pre-filter in the filter language (:mod:`~sauerkraut_rag.
        retrievers.filters`: ``{"lang": "de"}``, ``{"year": {"$gte": 2020}}``, ...) or a
        callable ``metadata -> bool``. ``min(k, matching documents)`` hits come back per
        query; an empty index gives empty lists.
        """
        self._check_open()
        k = check.check_k(k)
        flt = check.check_filter(filter)
        arrays = check.check_query_vectors(queries, dim=self._config.dim)
        if not arrays:
            return []
        for _ in range(3):
            snap = self._snap
            mask = None if flt is None else filter_sql.search_mask(self._readers, snap, flt)
            ranked = search_snapshot(
                snap, self._config, arrays, k, mask, self._muvera, self._hnsw_lock
            )
            payloads = self._readers.payloads(snap.rows[[p for hits in ranked for p, _ in hits]])
            if payloads is None:
                continue
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
        raise IndexStoreError("The index changed during search(); retry.")

    # ------------------------------------------------------------------ guards

    def _check_open(self) -> None:
        if self._closed:
            raise IndexStoreError(
                f"The index at {self._path} is closed. Open it again with VoyagerIndex.open(path)."
            )

    def _check_writable(self) -> None:
        self._check_open()
        if self._read_only:
            raise IndexStoreError(
                f"The index at {self._path} was opened read_only=True; open it without "
                "read_only to change it."
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


def _muvera_for(config: IndexConfig) -> Any:
    if config.strategy != "fde":
        return None
    from sauerkraut_rag.retrievers.muvera import MuveraEncoder

    return MuveraEncoder(config.fde_config())
