"""``SauerkrautVectorStore``: a LangChain ``VectorStore`` scored by exact MaxSim."""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Self

import numpy as np
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import VectorStore

from sauerkraut_rag._checks import check_positive_int
from sauerkraut_rag.encoders.base import MultiVectorEncoder
from sauerkraut_rag.errors import InvalidInputError, InvalidInputTypeError
from sauerkraut_rag.integrations._common import (
    ClosesIndex,
    IndexHandle,
    normalise,
    resolve_encoder,
    resolve_index,
    run_off_loop,
)
from sauerkraut_rag.integrations.langchain._inputs import (
    check_ids,
    check_metadatas,
    check_query,
    check_texts,
)
from sauerkraut_rag.integrations.langchain._mmr import mmr_select, pairwise_similarity
from sauerkraut_rag.integrations.langchain.embeddings import SauerkrautEmbeddings
from sauerkraut_rag.retrievers._validation import check_filter
from sauerkraut_rag.retrievers.protocol import MetadataFilter, MultiVectorIndex
from sauerkraut_rag.types import MultiVector

ModelLike = SauerkrautEmbeddings | MultiVectorEncoder | str | Path


class SauerkrautVectorStore(ClosesIndex, VectorStore):
    """Text documents in a multi-vector index, searched by exact MaxSim.

    Each document is encoded into token vectors by a text model and stored with its
    text and metadata in a :class:`~sauerkraut_rag.retrievers.voyager.index.VoyagerIndex` (or any
    :class:`~sauerkraut_rag.retrievers.protocol.MultiVectorIndex`).  Scores returned by
    :meth:`similarity_search_with_score` are normalised: MaxSim divided by the number of
    query tokens, i.e. the mean best-match cosine in ``[-1, 1]`` (higher is better).
    Relevance scores (``similarity_score_threshold``) are that value clipped to
    ``[0, 1]``.  Metadata must be JSON-serialisable.  ``filter`` takes the dict filter
    language LangChain users write for Chroma, PGVector or Pinecone (``{"lang": "de"}``,
    ``{"source": {"$in": [...]}}``, ``{"$or": [...]}``, ``{"start_index": {"$gt": 1000}}``;
    see :mod:`sauerkraut_rag.retrievers.filters`), evaluated inside the index; an unknown
    operator raises :class:`~sauerkraut_rag.errors.FilterError`.  On a ``VoyagerIndex`` a
    predicate on the metadata dict works too.

    Args:
        model: a :class:`SauerkrautEmbeddings`, a loaded text encoder, a hub id or folder.
        index: a ``MultiVectorIndex``, a folder for a persistent ``VoyagerIndex`` (opened
            if it exists, else created), or ``None`` for a temporary folder deleted with
            the store.  A folder opened here is closed by :meth:`close` (or ``with``).
        batch_size: documents encoded per forward pass.
        read_only: open the index folder read-only (searches only; no writer lock).
        load_kwargs: options for :func:`sauerkraut_rag.load_encoder` (``device``, ...).
        index_options: ``VoyagerIndex`` creation options (``strategy``, ...).
    """

    def __init__(
        self,
        model: ModelLike,
        index: MultiVectorIndex | str | Path | None = None,
        *,
        batch_size: int = 16,
        read_only: bool = False,
        load_kwargs: dict[str, Any] | None = None,
        index_options: dict[str, Any] | None = None,
    ) -> None:
        if isinstance(model, SauerkrautEmbeddings):
            if load_kwargs:
                raise InvalidInputError(
                    "load_kwargs cannot be used with an already built SauerkrautEmbeddings; "
                    "pass them to SauerkrautEmbeddings(...) instead."
                )
            self._embeddings: SauerkrautEmbeddings | None = model
            model = model.encoder
        else:
            self._embeddings = None
        self.encoder: MultiVectorEncoder = resolve_encoder(
            model, modality="text", role="model", load_kwargs=load_kwargs
        )
        self.batch_size = check_positive_int(batch_size, name="batch_size")
        handle = resolve_index(
            index, encoder=self.encoder, role="index", read_only=read_only, **(index_options or {})
        )
        self._handle: IndexHandle | None = handle
        self.index: MultiVectorIndex = handle.index
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self.encoder.name!r}, documents={len(self)})"

    def __len__(self) -> int:
        with self._lock:
            return len(self.index)

    @property
    def embeddings(self) -> SauerkrautEmbeddings:
        """The model as LangChain ``Embeddings`` (flat MUVERA vectors; ``*_multi`` tokens)."""
        if self._embeddings is None:
            self._embeddings = SauerkrautEmbeddings(self.encoder, batch_size=self.batch_size)
        return self._embeddings

    # ---- writing ---------------------------------------------------------------------

    def add_texts(
        self,
        texts: Iterable[str],
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> list[str]:
        """Encode and store texts; existing ids are replaced.  Returns the ids used.

        Missing ids (``None`` or no ``ids``) get a random UUID4.
        """
        items = check_texts(texts)
        metas = check_metadatas(metadatas, len(items))
        doc_ids = check_ids(ids, len(items))
        if not items:
            return []
        vectors = self.encoder.encode_documents(
            items, batch_size=self.batch_size, show_progress=kwargs.get("show_progress")
        )
        with self._lock:
            self.index.upsert(doc_ids, vectors, metadatas=metas, payloads=items)
        return doc_ids

    async def aadd_texts(
        self,
        texts: Iterable[str],
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> list[str]:
        """Async :meth:`add_texts`; encoding runs in a worker thread."""
        return await run_off_loop(self.add_texts, list(texts), metadatas, ids=ids, **kwargs)

    def delete(self, ids: list[str] | None = None, **kwargs: Any) -> bool | None:
        """Delete documents by id (unknown ids are ignored).  ``ids=None`` is refused."""
        if ids is None:
            raise InvalidInputError(
                "delete() needs the ids to delete, got None. Pass a list of ids; to drop "
                "everything, delete the index folder or build a new store."
            )
        doc_ids = check_ids(list(ids), len(ids), generate=False)
        with self._lock:
            self.index.delete(doc_ids)
        return True

    async def adelete(self, ids: list[str] | None = None, **kwargs: Any) -> bool | None:
        """Async :meth:`delete` (runs in a worker thread)."""
        return await run_off_loop(self.delete, ids, **kwargs)

    # ---- reading ---------------------------------------------------------------------

    def get_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        """Stored documents for ``ids`` (input order; unknown ids skipped)."""
        doc_ids = check_ids(list(ids), len(ids), generate=False)
        with self._lock:
            stored = self.index.get(doc_ids)
        return [
            Document(id=item.id, page_content=item.payload or "", metadata=dict(item.metadata))
            for item in stored
        ]

    async def aget_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        """Async :meth:`get_by_ids` (runs in a worker thread)."""
        return await run_off_loop(self.get_by_ids, ids)

    def similarity_search_with_score(
        self,
        query: str,
        k: int = 4,
        filter: MetadataFilter | None = None,
        **kwargs: Any,
    ) -> list[tuple[Document, float]]:
        """Top ``k`` documents with normalised MaxSim scores in ``[-1, 1]``, best first."""
        k = check_positive_int(k, name="k")
        check_query(query)
        check_filter(filter)  # a malformed filter raises even on an empty store
        if len(self) == 0:
            return []
        tokens = self.encoder.encode_queries([query], batch_size=1, show_progress=False)[0]
        with self._lock:
            hits = self.index.search([tokens], k, filter=filter)[0]
        return [
            (
                Document(id=hit.id, page_content=hit.payload or "", metadata=dict(hit.metadata)),
                float(normalise(hit.score, tokens.shape[0])),
            )
            for hit in hits
        ]

    async def asimilarity_search_with_score(
        self,
        query: str,
        k: int = 4,
        filter: MetadataFilter | None = None,
        **kwargs: Any,
    ) -> list[tuple[Document, float]]:
        """Async :meth:`similarity_search_with_score`; the model runs in a worker thread."""
        return await run_off_loop(
            self.similarity_search_with_score, query, k, filter=filter, **kwargs
        )

    def similarity_search(
        self,
        query: str,
        k: int = 4,
        filter: MetadataFilter | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        """Top ``k`` documents by MaxSim, best first."""
        pairs = self.similarity_search_with_score(query, k, filter=filter, **kwargs)
        return [doc for doc, _ in pairs]

    async def asimilarity_search(
        self,
        query: str,
        k: int = 4,
        filter: MetadataFilter | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        """Async :meth:`similarity_search`; the model runs in a worker thread."""
        pairs = await self.asimilarity_search_with_score(query, k, filter=filter, **kwargs)
        return [doc for doc, _ in pairs]

    def max_marginal_relevance_search(
        self,
        query: str,
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        filter: MetadataFilter | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        """``k`` relevant but diverse documents chosen by MMR among the ``fetch_k`` best.

        Relevance is the normalised MaxSim to the query; redundancy between candidates is
        their symmetric normalised MaxSim over the stored token vectors.  ``lambda_mult``
        ``1`` gives plain similarity order, ``0`` maximal diversity.
        """
        k = check_positive_int(k, name="k")
        fetch_k = check_positive_int(fetch_k, name="fetch_k")
        if isinstance(lambda_mult, bool) or not 0.0 <= float(lambda_mult) <= 1.0:
            raise InvalidInputError(f"Expected 0 <= lambda_mult <= 1, got {lambda_mult!r}.")
        pairs = self.similarity_search_with_score(query, max(k, fetch_k), filter=filter)
        if not pairs:
            return []
        vectors = self._stored_vectors([doc for doc, _ in pairs])
        relevance = np.array([score for _, score in pairs], dtype=np.float64)
        chosen = mmr_select(relevance, pairwise_similarity(vectors), k, float(lambda_mult))
        return [pairs[i][0] for i in chosen]

    def _stored_vectors(self, docs: list[Document]) -> list[MultiVector]:
        """Token vectors of stored documents: from the index when it can return them
        (``VoyagerIndex.get(..., include_vectors=True)``), else re-encoded."""
        if "include_vectors" in inspect.signature(self.index.get).parameters:
            with self._lock:
                stored = self.index.get([doc.id for doc in docs], include_vectors=True)  # type: ignore[call-arg]
            vectors = [item.multivector for item in stored]
            if len(vectors) == len(docs) and all(v is not None for v in vectors):
                return vectors  # type: ignore[return-value]
        return self.encoder.encode_documents(
            [doc.page_content for doc in docs], batch_size=self.batch_size, show_progress=False
        )

    def _select_relevance_score_fn(self) -> Callable[[float], float]:
        """Normalised MaxSim (mean best-match cosine) clipped to ``[0, 1]``."""
        return _clip_unit

    # ---- construction ----------------------------------------------------------------

    @classmethod
    def from_texts(
        cls,
        texts: list[str],
        embedding: Embeddings | ModelLike,
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        index: MultiVectorIndex | str | Path | None = None,
        batch_size: int = 16,
        load_kwargs: dict[str, Any] | None = None,
        index_options: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> Self:
        """Build a store (``index``: folder, index object or ``None`` = temporary) and add texts.

        ``embedding`` is a :class:`SauerkrautEmbeddings`, a text encoder, a hub id or a
        folder; other LangChain embeddings cannot give token vectors and are refused.
        """
        store = cls(
            _as_model(embedding),
            index,
            batch_size=batch_size,
            load_kwargs=load_kwargs,
            index_options=index_options,
        )
        store.add_texts(texts, metadatas, ids=ids, **kwargs)
        return store

    @classmethod
    async def afrom_texts(
        cls,
        texts: list[str],
        embedding: Embeddings | ModelLike,
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> Self:
        """Async :meth:`from_texts`; loading and encoding run in a worker thread."""
        return await run_off_loop(cls.from_texts, texts, embedding, metadatas, ids=ids, **kwargs)


def _as_model(embedding: Any) -> ModelLike:
    if isinstance(embedding, (SauerkrautEmbeddings, MultiVectorEncoder, str, Path)):
        return embedding
    raise InvalidInputTypeError(
        "Expected embedding to be a SauerkrautEmbeddings, a text encoder, a hub id or a "
        f"checkpoint folder, got {type(embedding).__name__}. MaxSim needs token vectors, "
        "which other Embeddings classes do not provide."
    )


def _clip_unit(score: float) -> float:
    return min(1.0, max(0.0, score))
