"""``VoyagerIndex``: a persistent, crash-safe multi-vector index in a folder.

Layout of an index folder (nothing in it is pickled; ids are data, never file names)::

    index.sqlite     ids, metadata (JSON), payloads, tombstones, token->document map,
                     segment list, config (incl. MUVERA parameters), format version
    vectors/*.npy    full-precision token vectors (float16 by default), append-only,
                     SHA-256 recorded in SQLite
    hnsw/*.voy       Voyager HNSW graph (derived; rebuilt if missing, stale or damaged)
    writer.lock      OS lock held by the one process that may write
    readers.lock     lets readers open the files of a committed state before they retire

Search: with at most ``exact_threshold`` (matching) documents every document is scored
exactly; above it HNSW proposes candidates (``"fde"``: one MUVERA vector per document;
``"tokens"``: every token vector), always re-scored exactly with MaxSim.

Durability: each mutation writes its new vector file durably, then commits one SQLite
transaction (the commit point). A crash leaves the last committed state; the next
writable open deletes unreferenced files and catches the HNSW graph up. Creation is
crash-safe (:mod:`.creation`). A full disk or I/O error raises ``IndexStorageError``
and stores nothing; work after a commit never fails the write (:mod:`.faults`).

Concurrency: threads search while one thread writes; one process writes while any
number of processes open the folder ``read_only=True``. Every search sees the last
committed state, whole; read-only handles move forward on each search, also across
``compact`` (:mod:`.reads`). A writable handle must not be used in a forked child.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sauerkraut_rag._checks import check_path
from sauerkraut_rag.encoders.fingerprint import EncoderFingerprint
from sauerkraut_rag.errors import (
    DimensionMismatchError,
    IndexFormatError,
    IndexStoreError,
    InvalidInputError,
)
from sauerkraut_rag.retrievers.encoder_check import bind_fingerprint
from sauerkraut_rag.retrievers.protocol import IdPage, MetadataFilter, StoredDocument
from sauerkraut_rag.retrievers.voyager import housekeeping, mutations
from sauerkraut_rag.retrievers.voyager import queries as _queries
from sauerkraut_rag.retrievers.voyager.config import (
    TUNABLE_FIELDS,
    IndexConfig,
    check_option_names,
    fixed_option_clash,
)
from sauerkraut_rag.retrievers.voyager.creation import create_folder
from sauerkraut_rag.retrievers.voyager.faults import storage_guard
from sauerkraut_rag.retrievers.voyager.handle import (
    Handle,
    check_usable,
    close_handle,
    open_read_only,
    open_writable,
    writable,
)
from sauerkraut_rag.retrievers.voyager.layout import is_index
from sauerkraut_rag.retrievers.voyager.locks import FolderLock
from sauerkraut_rag.retrievers.voyager.state import Snapshot
from sauerkraut_rag.retrievers.voyager.writes import Writer
from sauerkraut_rag.types import Hit, Metadata, MultiVector

__all__ = ["IndexConfig", "VoyagerIndex"]


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
        self._closed = True
        self._path = check_path(path, name="the index path")
        check_option_names(options)
        lock: FolderLock | None = None
        if not is_index(self._path):
            if dim is None or read_only:
                raise IndexFormatError(
                    f"No sauerkraut-rag index at {self._path}. Create one with "
                    "VoyagerIndex.create(path, dim=...) or VoyagerIndex(path, dim=...)."
                )
            config = IndexConfig(dim=dim, **options)
            with storage_guard("create", self._path, lambda: True):
                lock = create_folder(self._path, config)
            options = {}
        if read_only:
            self._h: Handle = open_read_only(self._path, verify=verify)
        else:
            self._h = open_writable(self._path, verify=verify, lock=lock)
        self._closed = False
        self._apply_open_options(dim, options)

    # ------------------------------------------------------------------ lifecycle

    @classmethod
    def create(
        cls, path: str | Path, dim: int, *, exist_ok: bool = False, **options: Any
    ) -> VoyagerIndex:
        """Create a new index at ``path`` (a new or empty folder) and open it for writing.

        With ``exist_ok=True`` an existing index there is opened instead (its stored
        settings win; tunable search settings in ``options`` are applied). A folder
        left half-built by a crashed creation is recognised and created afresh.
        """
        folder = check_path(path, name="the index path")
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
        """Open an existing index. ``verify`` checks every file's checksum (reads all data).

        ``read_only=True`` handles take no lock: open as many as you like, in any
        process, next to the one writer; each search sees the newest committed state.
        """
        folder = check_path(path, name="the index path")
        if not is_index(folder):
            raise IndexFormatError(
                f"No sauerkraut-rag index at {folder}. Create one with "
                "VoyagerIndex.create(path, dim=...)."
            )
        return cls(folder, read_only=read_only, verify=verify)

    def _apply_open_options(self, dim: int | None, options: dict[str, Any]) -> None:
        if dim is not None and dim != self.config.dim:
            self.close()
            raise DimensionMismatchError(
                f"The index at {self._path} has dim {self.config.dim}, got dim={dim}. "
                "Use a new folder for a different model."
            )
        clash = fixed_option_clash(self.config, options)
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
        with self._h.mutex:
            writer = self._check_writable()
            if self._h.indexer is not None:
                self._h.indexer.drain()  # the graph holds every document first
            with mutations.storage(self._h, "save"):
                housekeeping.save_hnsw(writer, self._h.reads.snap)

    def close(self) -> None:
        """Save the HNSW graph if it changed, then release files and the writer lock.

        Never raises for storage faults (a graph that cannot be saved is rebuilt or caught
        up on the next open); idempotent.
        """
        if self._closed:
            return
        with self._h.mutex:
            if self._closed:
                return
            self._closed = True
            close_handle(self._h)

    def __enter__(self) -> VoyagerIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        if self._closed:
            return f"VoyagerIndex({str(self._path)!r}, closed)"
        cfg = self.config
        return (
            f"VoyagerIndex({str(self._path)!r}, dim={cfg.dim}, strategy={cfg.strategy!r}, "
            f"{len(self)} docs)"
        )

    # ------------------------------------------------------------------ properties

    @property
    def dim(self) -> int:
        """Token vector dimension."""
        return self.config.dim

    @property
    def path(self) -> Path:
        return self._path

    @property
    def config(self) -> IndexConfig:
        """All settings (read-only; change search settings with :meth:`configure`)."""
        return self._h.config

    @property
    def read_only(self) -> bool:
        """Whether this handle was opened ``read_only=True``."""
        return self._h.read_only

    @property
    def _snap(self) -> Snapshot:
        """The snapshot new searches see (tests and tools inspect it)."""
        return self._h.reads.snap

    @property
    def _writer(self) -> Writer | None:
        return self._h.writer

    def _current(self) -> Snapshot:
        """The newest committed snapshot (the last one seen, once closed)."""
        if self._closed:
            return self._h.reads.snap
        self._check_open()
        return self._h.reads.current()

    def __len__(self) -> int:
        return self._current().n_live

    def __contains__(self, doc_id: object) -> bool:
        return isinstance(doc_id, str) and doc_id in self._current().id_to_pos

    @property
    def encoder_fingerprint(self) -> EncoderFingerprint | None:
        """The encoder that made the stored vectors; ``None`` when unknown (not yet
        recorded, or an index written before fingerprints existed)."""
        if not self._closed and self._h.read_only:
            self._current()  # a read-only handle learns a newly recorded encoder
        return self._h.encoder

    def bind_encoder(self, fingerprint: EncoderFingerprint) -> None:
        """Refuse an encoder other than the one that made the stored vectors.

        Raises :class:`~sauerkraut_rag.errors.EncoderMismatchError`; an empty writable
        index without a record records ``fingerprint`` (with this index's pool factor).
        See :mod:`sauerkraut_rag.retrievers.encoder_check`.
        """
        with self._h.mutex:
            snap = self._current()
            record = bind_fingerprint(
                self._h.encoder,
                fingerprint.with_pooling(self.config.pool_factor),
                where=f"the index at {self._path}",
                empty=snap.n_live == 0,
                writable=not self._h.read_only,
            )
            if record is not None:
                with mutations.storage(self._h, "bind_encoder"):
                    self._check_writable().store_meta({"encoder": record.to_dict()})
                self._h.encoder = record

    def configure(self, **settings: Any) -> None:
        """Change search settings (``exact_threshold``, ``ef_search``, ``candidates``,
        ``token_k``, ``cell_candidates``, ``cell_probes``); persisted unless the index is
        read-only. Token cells turned on are trained in the background."""
        unknown = set(settings) - set(TUNABLE_FIELDS)
        if unknown:
            raise InvalidInputError(
                f"Cannot change {sorted(unknown)} after creation; tunable: {list(TUNABLE_FIELDS)}."
            )
        with self._h.mutex:
            self._check_open()
            config = self.config.replace(**settings)
            if not self._h.read_only:
                with mutations.storage(self._h, "configure"):
                    self._check_writable().store_config(config)
            self._h.config = config
            if self._h.indexer is not None:
                self._h.indexer.notify()  # e.g. token cells turned on: train them

    def stats(self) -> dict[str, Any]:
        """Counts and on-disk bytes: documents, tokens, tombstones, segments, HNSW size."""
        return _queries.stats(self._h, self._current())

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
        with self._h.mutex, self._h.gate.write():
            mutations.write_documents(
                self._h, self._check_writable(), ids, multivectors, metadatas, payloads, replace
            )

    def delete(self, ids: Sequence[str], *, missing_ok: bool = True) -> int:
        """Delete documents by id; returns how many were deleted.

        Unknown ids are ignored (``missing_ok=True``, LangChain semantics) or, with
        ``missing_ok=False``, raise :class:`UnknownIdError` before anything is deleted.
        """
        with self._h.mutex, self._h.gate.write():
            return mutations.delete_documents(self._h, self._check_writable(), ids, missing_ok)

    def compact(self) -> None:
        """Rewrite vectors and the HNSW graph without deleted documents (reclaims space)."""
        with self._h.mutex:
            mutations.compact_index(self._h, self._check_writable())

    # ------------------------------------------------------------------ reads

    def get(self, ids: Sequence[str], *, include_vectors: bool = False) -> list[StoredDocument]:
        """Stored documents in the requested order; unknown ids are skipped.

        ``include_vectors=True`` adds each document's stored ``(n_tokens, dim)`` array.
        """
        self._check_open()
        return _queries.get_documents(self._h, ids, include_vectors=include_vectors)

    def list_ids(self, limit: int = 1000, cursor: str | None = None) -> IdPage:
        """Up to ``limit`` live ids in insertion order, after ``cursor`` (see ``IdPage``).

        The cursor is the storage row of the last id returned, so paging stays correct
        while documents are added, deleted or compacted in between.
        """
        self._check_open()
        return _queries.list_ids(self._current(), limit, cursor)

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
        return _queries.search_hits(self._h, queries, k, filter)

    # ------------------------------------------------------------------ guards

    def _check_open(self) -> None:
        check_usable(self._h if not self._closed else None, self._path)

    def _check_writable(self) -> Writer:
        self._check_open()
        return writable(self._h)
