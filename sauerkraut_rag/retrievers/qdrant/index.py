"""``QdrantIndex``: a ``MultiVectorIndex`` on a Qdrant collection (server, cluster, local mode
or Qdrant Edge in-process).

Schema: a named multivector ``tokens`` (``MAX_SIM`` over dot products, HNSW off with
``m=0``: it only re-scores) and a named single vector ``fde`` (the document's MUVERA
encoding, cosine, HNSW; optionally int8-quantized) that proposes candidates. The
MUVERA settings, the storage dtype and the pooling are stored in the collection's
metadata, so every client encodes the same way. See :mod:`.points` for ids and
payloads, :mod:`.filters` for filters, :mod:`.search` for the search plan.

Concurrency: ``add`` checks ids and then writes; two clients adding the same new id at
the same moment both pass the check and the later write wins on the server. Writes
use ``wait=True``. In-process engines (local mode, Qdrant Edge) serialise calls with a
lock; a server takes concurrent requests.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sauerkraut_rag.errors import (
    DuplicateIdError,
    IndexStoreError,
    InvalidInputError,
    UnknownIdError,
)
from sauerkraut_rag.retrievers import _validation as check
from sauerkraut_rag.retrievers.protocol import IdPage, MetadataFilter, StoredDocument
from sauerkraut_rag.retrievers.qdrant.callables import callable_error
from sauerkraut_rag.retrievers.qdrant.collection import open_engine, prepare
from sauerkraut_rag.retrievers.qdrant.config import TUNABLE_FIELDS, QdrantConfig
from sauerkraut_rag.retrievers.qdrant.engine import Engine
from sauerkraut_rag.retrievers.qdrant.points import (
    StoredPoint,
    find_points,
    is_uuid,
    stored_vectors,
)
from sauerkraut_rag.retrievers.qdrant.record import RecordMixin
from sauerkraut_rag.retrievers.qdrant.residual import resolve_filter
from sauerkraut_rag.retrievers.qdrant.search import search_points
from sauerkraut_rag.retrievers.qdrant.writes import build_points, send
from sauerkraut_rag.types import Hit, Metadata, MultiVector

__all__ = ["QdrantIndex"]

logger = logging.getLogger(__name__)


class QdrantIndex(RecordMixin):
    """A multi-vector index in a Qdrant collection (implements ``MultiVectorIndex``).

    Give exactly one of ``client`` (a ``QdrantClient`` you manage), ``url`` (a server or
    cluster; ``api_key`` for secured ones), ``path`` (local mode on disk, or with
    ``engine="edge"`` Qdrant's Rust engine in this process) or ``location=":memory:"``.
    The collection is created when missing (``dim`` required) with the options below,
    else checked against them.

    Options (see :class:`~sauerkraut_rag.retrievers.qdrant.config.QdrantConfig`): schema
    ``vector_dtype`` (``"float32"``/``"float16"``), ``quantization`` (``None``/``"int8"``),
    ``fde``, ``hnsw_m``, ``ef_construct``, ``pool_factor``, ``pool_protected_tokens``;
    per-client ``exact_threshold``, ``candidates``, ``ef_search``, ``batch_size``,
    ``max_request_bytes``; at creation ``shard_number``, ``replication_factor``,
    ``write_consistency_factor``, ``on_disk``.

    >>> with QdrantIndex("pages", dim=128, url="http://localhost:6333") as index:  # doctest: +SKIP
    ...     index.add(["a"], [doc_a], [{"lang": "de"}])
    ...     hits = index.search([query], k=5, filter={"lang": "de"})[0]
    """

    def __init__(
        self,
        collection: str,
        dim: int | None = None,
        *,
        client: Any = None,
        url: str | None = None,
        api_key: str | None = None,
        path: str | Path | None = None,
        location: str | None = None,
        engine: str = "client",
        prefer_grpc: bool | None = None,
        timeout: int | None = None,
        check_compatibility: bool | None = None,
        show_progress: bool | None = None,
        **options: Any,
    ) -> None:
        self._closed = True
        passed = {
            "prefer_grpc": prefer_grpc,
            "timeout": timeout,
            "check_compatibility": check_compatibility,
        }
        client_options = {k: v for k, v in passed.items() if v is not None}
        self._engine: Engine = open_engine(
            collection,
            client=client,
            url=url,
            api_key=api_key,
            path=path,
            location=location,
            engine=engine,
            client_options=client_options,
        )
        self._lock = threading.RLock()
        try:
            self._config, self._record, self._max_vectors = prepare(
                self._engine, collection, dim, options
            )
        except BaseException:
            self._engine.close()
            raise
        from sauerkraut_rag.retrievers.muvera import MuveraEncoder

        self._collection = collection
        self._muvera = MuveraEncoder(self._config.fde_config())
        self._show_progress = show_progress
        self._closed = False

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Release the client or shard if this index opened it (idempotent)."""
        if self._closed:
            return
        with self._lock:
            self._closed = True
            self._engine.close()

    def __enter__(self) -> QdrantIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"dim={self._config.dim}"
        return f"QdrantIndex({self._collection!r} at {self._engine.location}, {state})"

    @contextlib.contextmanager
    def _guard(self) -> Iterator[None]:
        if self._closed:
            raise IndexStoreError(
                f"The QdrantIndex for collection {self._collection!r} is closed. Create a "
                "new QdrantIndex to use it again."
            )
        if self._engine.in_process:
            with self._lock:
                yield
        else:
            yield

    # ------------------------------------------------------------------ properties

    @property
    def dim(self) -> int:
        """Token vector dimension."""
        return self._config.dim

    @property
    def collection(self) -> str:
        return self._collection

    @property
    def location(self) -> str:
        """Where the collection lives: a URL, a local folder or ``:memory:``."""
        return self._engine.location

    @property
    def config(self) -> QdrantConfig:
        """The collection's settings with this client's tunable overrides."""
        return self._config

    def configure(self, **settings: Any) -> None:
        """Change this client's search/write settings (``exact_threshold``, ``candidates``,
        ``ef_search``, ``batch_size``, ``max_request_bytes``); other clients keep theirs."""
        unknown = set(settings) - set(TUNABLE_FIELDS)
        if unknown:
            raise InvalidInputError(
                f"Cannot change {sorted(unknown)} on an existing collection; tunable: "
                f"{list(TUNABLE_FIELDS)}."
            )
        self._config = self._config.replace(**settings)

    def __len__(self) -> int:
        with self._guard():
            return self._engine.count(None)

    def __contains__(self, doc_id: object) -> bool:
        return isinstance(doc_id, str) and bool(doc_id) and bool(self._points([doc_id]))

    def count(self, filter: MetadataFilter | None = None) -> int:
        """Number of stored documents matching ``filter`` (all without one)."""
        with self._guard():
            return self._engine.count(self._filter(filter))

    def _filter(self, filter: Any) -> Any:
        node = check.check_filter(filter)
        if callable(node):
            raise callable_error(node)
        return resolve_filter(self._engine, node)

    # ------------------------------------------------------------------ writes

    def add(
        self,
        ids: Sequence[str],
        multivectors: Sequence[MultiVector],
        metadatas: Sequence[Metadata] | None = None,
        payloads: Sequence[str | None] | None = None,
        *,
        show_progress: bool | None = None,
        pooled: bool = False,
    ) -> None:
        """Add new documents; raises :class:`DuplicateIdError` (writing nothing) if an id exists.

        ``pooled=True`` stores vectors that were already pooled with this collection's
        ``pool_factor`` as they are (``copy_index`` uses it).
        """
        self._write(
            ids,
            multivectors,
            metadatas,
            payloads,
            replace=False,
            progress=show_progress,
            pooled=pooled,
        )

    def upsert(
        self,
        ids: Sequence[str],
        multivectors: Sequence[MultiVector],
        metadatas: Sequence[Metadata] | None = None,
        payloads: Sequence[str | None] | None = None,
        *,
        show_progress: bool | None = None,
        pooled: bool = False,
    ) -> None:
        """Insert documents, replacing stored ones with the same id (``pooled``: as in add)."""
        self._write(
            ids,
            multivectors,
            metadatas,
            payloads,
            replace=True,
            progress=show_progress,
            pooled=pooled,
        )

    def _write(
        self,
        ids: Any,
        multivectors: Any,
        metadatas: Any,
        payloads: Any,
        *,
        replace: bool,
        progress: bool | None,
        pooled: bool,
    ) -> None:
        id_list = check.check_ids(ids)
        n = len(id_list)
        arrays = check.check_document_vectors(multivectors, dim=self._config.dim, n=n)
        metas = check.check_metadatas(metadatas, n=n)
        texts = check.check_payloads(payloads, n=n)
        if not n:
            return
        points, sizes = build_points(
            id_list,
            arrays,
            metas,
            texts,
            config=self._config.replace(pool_factor=1) if pooled else self._config,
            muvera=self._muvera,
            max_vectors=self._max_vectors,
        )
        with self._guard():
            if not replace:
                existing = [p.doc_id or p.uuid for p in self._points(id_list)]
                if existing:
                    shown = ", ".join(repr(i) for i in existing[:5])
                    raise DuplicateIdError(
                        f"Expected new ids, but {len(existing)} already stored ({shown}). "
                        "Nothing was written. Use upsert() to replace documents, or delete "
                        "them first."
                    )
            send(
                self._engine.upsert,
                points,
                sizes,
                config=self._config,
                show_progress=self._show_progress if progress is None else progress,
                where=f"collection {self._collection!r} at {self._engine.location}",
            )

    def delete(self, ids: Sequence[str], *, missing_ok: bool = True) -> int:
        """Delete documents by id; returns how many were deleted (unknown ids are ignored,
        or with ``missing_ok=False`` raise :class:`UnknownIdError` before any delete)."""
        id_list = list(dict.fromkeys(check.check_lookup_ids(ids)))
        with self._guard():
            found = self._points(id_list)
            if not missing_ok and len(found) < len(id_list):
                known = {p.doc_id for p in found}
                unknown = [i for i in id_list if i not in known]
                raise UnknownIdError(
                    f"{len(unknown)} id(s) are not stored ({', '.join(map(repr, unknown[:5]))}); "
                    "nothing was deleted. Pass missing_ok=True to ignore unknown ids."
                )
            if found:
                self._engine.delete([p.uuid for p in found])
            return len(found)

    # ------------------------------------------------------------------ reads

    def _points(self, ids: list[str], *, with_vectors: bool = False) -> list[StoredPoint]:
        with self._guard():
            return find_points(self._engine, ids, with_vectors=with_vectors)

    def get(self, ids: Sequence[str], *, include_vectors: bool = False) -> list[StoredDocument]:
        """Stored documents in the requested order (repeats kept); unknown ids are skipped.

        ``include_vectors=True`` adds each document's stored ``(n_tokens, dim)`` array in
        the storage dtype.
        """
        id_list = check.check_lookup_ids(ids)
        by_id = {
            p.doc_id: p
            for p in self._points(list(dict.fromkeys(id_list)), with_vectors=include_vectors)
        }
        dtype = np.dtype(self._config.vector_dtype)
        return [
            StoredDocument(
                id=doc_id,
                metadata=by_id[doc_id].metadata,
                payload=by_id[doc_id].text,
                multivector=stored_vectors(by_id[doc_id], dtype) if include_vectors else None,
            )
            for doc_id in id_list
            if doc_id in by_id
        ]

    def list_ids(self, limit: int = 1000, cursor: str | None = None) -> IdPage:
        """Up to ``limit`` stored ids in point-id order, after ``cursor`` (see ``IdPage``)."""
        limit = check.check_page_size(limit)
        offset = check.check_cursor(cursor)
        if offset is not None and not is_uuid(offset):
            raise InvalidInputError(
                f"Expected a cursor returned by QdrantIndex.list_ids, got {offset!r}. Start "
                "with cursor=None and pass each page's next_cursor."
            )
        with self._guard():
            points, following = self._engine.scroll(limit, offset)
        return IdPage([p.doc_id for p in points if p.doc_id is not None], following)

    def search(
        self,
        queries: Sequence[MultiVector],
        k: int = 10,
        *,
        filter: MetadataFilter | None = None,
    ) -> list[list[Hit]]:
        """Top-``k`` hits per query ``(n_query_tokens, dim)``, best MaxSim score first.

        ``filter`` is evaluated by Qdrant; a Python callable cannot be, and raises
        :class:`~sauerkraut_rag.errors.UnsupportedFilterError` naming the equivalent filter.
        """
        k = check.check_k(k)
        node = check.check_filter(filter)
        if callable(node):
            raise callable_error(node)
        arrays = check.check_query_vectors(queries, dim=self._config.dim)
        if not arrays:
            return []
        with self._guard():
            flt = resolve_filter(self._engine, node)
            found = search_points(self._engine, self._config, self._muvera, arrays, k, flt)
        return [
            [
                Hit(id=p.doc_id, score=float(p.score or 0.0), metadata=p.metadata, payload=p.text)
                for p in points
                if p.doc_id is not None
            ]
            for points in found
        ]
