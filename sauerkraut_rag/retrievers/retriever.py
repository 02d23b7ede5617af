"""``MultiVectorRetriever``: encoder + index -> candidates -> exact MaxSim -> hits."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Sequence
from typing import Any

import numpy as np

from sauerkraut_rag.errors import (
    DimensionMismatchError,
    DuplicateIdError,
    InvalidInputError,
    InvalidInputTypeError,
)
from sauerkraut_rag.retrievers._validation import (
    check_filter,
    check_ids,
    check_k,
    check_query_vectors,
)
from sauerkraut_rag.retrievers.encoder_check import bind_encoder
from sauerkraut_rag.retrievers.maxsim import maxsim, topk_from_scores
from sauerkraut_rag.retrievers.protocol import MetadataFilter, MultiVectorIndex
from sauerkraut_rag.types import Hit, Metadata, MultiVector

__all__ = ["MultiVectorRetriever"]

logger = logging.getLogger(__name__)


class MultiVectorRetriever:
    """Index documents with a late-interaction encoder and search them by MaxSim.

    ``encoder`` is a :class:`~sauerkraut_rag.encoders.base.MultiVectorEncoder` (any object
    with ``encode_queries``, ``encode_documents``, ``dim``, ``name`` and ``modality``);
    ``index`` is any :class:`~sauerkraut_rag.retrievers.protocol.MultiVectorIndex`, such
    as :class:`~sauerkraut_rag.retrievers.voyager.index.VoyagerIndex`.  An index that records
    its encoder (``bind_encoder``) refuses a different one here, before any add or search,
    with :class:`~sauerkraut_rag.errors.EncoderMismatchError`; an empty one records it.

    >>> retriever = MultiVectorRetriever(encoder, VoyagerIndex("my-index", dim=encoder.dim))
    ... # doctest: +SKIP
    >>> retriever.add_documents(["Sauerkraut is fermented cabbage."])  # doctest: +SKIP
    >>> retriever.search("What is sauerkraut?", k=3)  # doctest: +SKIP
    """

    def __init__(self, encoder: Any, index: MultiVectorIndex, *, batch_size: int = 8) -> None:
        for attr in ("encode_queries", "encode_documents", "dim"):
            if not hasattr(encoder, attr):
                raise InvalidInputTypeError(
                    f"Expected encoder to be a MultiVectorEncoder (with {attr}), got "
                    f"{type(encoder).__name__}. Build one with sauerkraut_rag.load_encoder(...)."
                )
        if not isinstance(index, MultiVectorIndex):
            raise InvalidInputTypeError(
                f"Expected index to implement MultiVectorIndex (add, upsert, delete, get, "
                f"search, __len__, dim), got {type(index).__name__}."
            )
        if encoder.dim != index.dim:
            raise DimensionMismatchError(
                f"Encoder {getattr(encoder, 'name', '?')!r} produces dim {encoder.dim}, but the "
                f"index holds dim {index.dim}. Use an index built with this model."
            )
        bind_encoder(index, encoder)  # EncoderMismatchError if the index holds other vectors
        self.encoder = encoder
        self.index = index
        self.batch_size = batch_size

    def __repr__(self) -> str:
        return (
            f"MultiVectorRetriever(encoder={getattr(self.encoder, 'name', '?')!r}, "
            f"index={self.index!r})"
        )

    # ------------------------------------------------------------------ indexing

    def add_documents(
        self,
        items: Sequence[Any],
        ids: Sequence[str] | None = None,
        metadatas: Sequence[Metadata] | None = None,
        payloads: Sequence[str | None] | None = None,
        *,
        upsert: bool = False,
        show_progress: bool | None = None,
    ) -> list[str]:
        """Encode ``items`` (texts, or page images for image encoders) and store them.

        ``ids`` default to random UUID hex strings. ``payloads`` default to the text
        itself for strings and to the file path for images given as paths (else ``None``),
        so hits can show what matched. With ``upsert=True`` stored ids are replaced;
        otherwise an existing id raises :class:`DuplicateIdError` and nothing is stored.
        Returns the ids.
        """
        if isinstance(items, (str, bytes)) or not isinstance(items, Sequence):
            raise InvalidInputTypeError(
                f"Expected items to be a list of documents, got {type(items).__name__}. "
                "Wrap a single document in a list."
            )
        doc_ids = [uuid.uuid4().hex for _ in items] if ids is None else check_ids(ids)
        if len(doc_ids) != len(items):
            raise InvalidInputError(
                f"Expected one id per document ({len(items)}), got {len(doc_ids)} ids."
            )
        if payloads is None:
            payloads = [_default_payload(item) for item in items]
        if not items:
            return []
        if not upsert:  # fail before the (slow) encoding if an id is already stored
            known = self.index.get(doc_ids)
            if known:
                raise DuplicateIdError(
                    f"Expected new ids, but {len(known)} already stored ({known[0].id!r}, ...). "
                    "Nothing was added. Pass upsert=True to replace them."
                )
        vectors = self.encoder.encode_documents(
            items, batch_size=self.batch_size, show_progress=show_progress
        )
        write = self.index.upsert if upsert else self.index.add
        write(doc_ids, vectors, metadatas, payloads)
        return doc_ids

    def delete(self, ids: Sequence[str]) -> int:
        """Delete documents by id (unknown ids are ignored); returns how many were deleted."""
        return self.index.delete(ids)

    # ------------------------------------------------------------------ search

    def search(self, query: str, k: int = 10, *, filter: MetadataFilter | None = None) -> list[Hit]:
        """The ``k`` best documents for one query string, best first.

        ``filter`` restricts the search to documents whose metadata matches it, in the
        filter language of :mod:`sauerkraut_rag.retrievers.filters` (``{"lang": "de"}``,
        ``{"year": {"$gte": 2020}}``, ``{"$or": [...]}``), evaluated inside the index.
        """
        if not isinstance(query, str):
            raise InvalidInputTypeError(
                f"Expected query to be a str, got {type(query).__name__}. "
                "Use search_batch() for a list of queries."
            )
        return self.search_batch([query], k=k, filter=filter)[0]

    def search_batch(
        self, queries: Sequence[str], k: int = 10, *, filter: MetadataFilter | None = None
    ) -> list[list[Hit]]:
        """The ``k`` best documents for each query string (queries encoded in one batch)."""
        k = check_k(k)
        check_filter(filter)  # malformed filters fail before the model runs
        if isinstance(queries, str):
            raise InvalidInputTypeError(
                "Expected a list of query strings, got one str. Use search() for one query."
            )
        if not queries:
            return []
        vectors = self.encoder.encode_queries(list(queries), show_progress=False)
        return self.index.search(vectors, k, filter=filter)

    # ------------------------------------------------------------------ rerank

    def rerank(
        self,
        query: str,
        candidates: Sequence[tuple[str, MultiVector]],
        top_n: int | None = None,
    ) -> list[Hit]:
        """Re-score ``(id, (n_tokens, dim) multi-vector)`` candidates by exact MaxSim.

        For a first stage of your own (BM25, a dense retriever, ...). Returns up to
        ``top_n`` (default: all) hits, best first, with empty metadata.
        """
        ids, vectors = _split_candidates(candidates)
        return self._ranked(query, ids, vectors, top_n, [{}] * len(ids), [None] * len(ids))

    def rerank_documents(
        self,
        query: str,
        documents: Sequence[Any],
        top_n: int | None = None,
        *,
        ids: Sequence[str] | None = None,
        metadatas: Sequence[Metadata] | None = None,
    ) -> list[Hit]:
        """Encode raw documents (texts or pages) and rank them for ``query`` by MaxSim.

        ``ids`` default to the documents' positions as strings (``"0"``, ``"1"``, ...),
        so hits map back to the input; payloads are the texts (or image paths).
        """
        if isinstance(documents, (str, bytes)) or not isinstance(documents, Sequence):
            raise InvalidInputTypeError(
                f"Expected documents to be a list, got {type(documents).__name__}."
            )
        doc_ids = [str(i) for i in range(len(documents))] if ids is None else check_ids(ids)
        metas = list(metadatas) if metadatas is not None else [{} for _ in documents]
        if len(doc_ids) != len(documents) or len(metas) != len(documents):
            raise InvalidInputError(
                f"Expected one id and one metadata dict per document ({len(documents)}), got "
                f"{len(doc_ids)} ids and {len(metas)} metadata dicts."
            )
        if not documents:
            return []
        vectors = self.encoder.encode_documents(
            documents, batch_size=self.batch_size, show_progress=False
        )
        payloads = [_default_payload(d) for d in documents]
        return self._ranked(query, doc_ids, vectors, top_n, metas, payloads)

    def _ranked(
        self,
        query: str,
        ids: list[str],
        vectors: Sequence[np.ndarray],
        top_n: int | None,
        metadatas: Sequence[Metadata],
        payloads: Sequence[str | None],
    ) -> list[Hit]:
        if not isinstance(query, str):
            raise InvalidInputTypeError(f"Expected query to be a str, got {type(query).__name__}.")
        limit = len(ids) if top_n is None else check_k(top_n)
        if not ids:
            return []
        docs = check_query_vectors(list(vectors), dim=self.encoder.dim)  # same shape rules
        query_vectors = self.encoder.encode_queries([query], show_progress=False)
        scores = maxsim(query_vectors, docs)
        order, values = topk_from_scores(scores, min(limit, len(ids)))
        return [
            Hit(id=ids[i], score=float(s), metadata=dict(metadatas[i]), payload=payloads[i])
            for i, s in zip(order[0].tolist(), values[0].tolist(), strict=True)
        ]


def _split_candidates(candidates: Any) -> tuple[list[str], list[np.ndarray]]:
    if isinstance(candidates, (str, bytes)) or not isinstance(candidates, Sequence):
        raise InvalidInputTypeError(
            f"Expected candidates to be a list of (id, multi-vector) pairs, got "
            f"{type(candidates).__name__}."
        )
    ids, vectors = [], []
    for i, pair in enumerate(candidates):
        if not (isinstance(pair, tuple) and len(pair) == 2 and isinstance(pair[0], str)):
            raise InvalidInputTypeError(
                f"Expected candidates[{i}] to be an (id: str, (n_tokens, dim) array) tuple, "
                f"got {type(pair).__name__}. To rerank raw texts use rerank_documents()."
            )
        ids.append(pair[0])
        vectors.append(pair[1])
    check_ids(ids)
    return ids, vectors


def _default_payload(item: Any) -> str | None:
    """Texts are their own payload; pages given as paths keep the path."""
    if isinstance(item, str):
        return item
    if isinstance(item, os.PathLike):
        return os.fspath(item)
    return None
