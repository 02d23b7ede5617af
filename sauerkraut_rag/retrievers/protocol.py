"""The small multi-vector index protocol that retrievers and framework adapters depend on.

Anything that implements :class:`MultiVectorIndex` (the local
:class:`~sauerkraut_rag.retrievers.voyager.index.VoyagerIndex`, the Qdrant multivector
backend :class:`~sauerkraut_rag.retrievers.qdrant.index.QdrantIndex`) can be plugged into
:class:`~sauerkraut_rag.retrievers.retriever.MultiVectorRetriever` and the LangChain /
LlamaIndex adapters without touching them. :mod:`sauerkraut_rag.retrievers.conformance`
is the test suite that checks an implementation keeps these semantics.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeAlias, runtime_checkable

from sauerkraut_rag.retrievers.filters import FilterNode
from sauerkraut_rag.types import Hit, Metadata, MultiVector

__all__ = ["IdPage", "MetadataFilter", "MultiVectorIndex", "StoredDocument"]

MetadataFilter: TypeAlias = Metadata | FilterNode | Callable[[Metadata], bool]
"""A pre-filter: a dict in the filter language (:mod:`sauerkraut_rag.retrievers.filters`:
``{"lang": "de"}``, ``{"year": {"$gte": 2020}}``, ``{"$or": [...]}``), its parsed tree,
or (``VoyagerIndex`` only) a predicate on the metadata."""


@dataclass(frozen=True)
class StoredDocument:
    """One stored document as returned by :meth:`MultiVectorIndex.get`.

    ``multivector`` is the stored ``(n_tokens, dim)`` array (after any index-time pooling,
    in the index's storage dtype) when it was requested, else ``None``.
    """

    id: str
    metadata: Metadata = field(default_factory=dict)
    payload: str | None = None
    multivector: MultiVector | None = None


@dataclass(frozen=True)
class IdPage:
    """One page of stored ids from :meth:`MultiVectorIndex.list_ids`.

    ``next_cursor`` is an opaque string to pass back for the following page, ``None``
    after the last page.
    """

    ids: list[str]
    next_cursor: str | None = None


@runtime_checkable
class MultiVectorIndex(Protocol):
    """A store of string-keyed multi-vectors searchable by MaxSim.

    Semantics every implementation keeps:

    * ``add`` raises :class:`~sauerkraut_rag.errors.DuplicateIdError` when any id is
      already stored (or repeated in the call) and then writes nothing;
    * ``upsert`` replaces stored ids and adds new ones, atomically;
    * ``delete`` ignores unknown ids and returns how many documents it removed;
    * ``get`` returns documents in the requested order and skips unknown ids
      (LangChain ``get_by_ids`` semantics);
    * ``list_ids`` pages through every stored id exactly once, in a stable order; ids
      added while paging may or may not appear, deleted ones may still appear;
    * ``search`` returns, per query, up to ``k`` hits sorted by descending MaxSim score;
      with a ``filter`` it returns ``min(k, number of matching documents)`` hits, with
      exactly the semantics of :mod:`sauerkraut_rag.retrievers.filters` (a malformed
      filter raises :class:`~sauerkraut_rag.errors.FilterError`, one the backend cannot
      evaluate :class:`~sauerkraut_rag.errors.UnsupportedFilterError`);
      an empty index gives empty lists; ``k <= 0`` raises
      :class:`~sauerkraut_rag.errors.InvalidInputError`.

    Optional: ``bind_encoder(fingerprint)`` (and ``encoder_fingerprint``) to record the
    encoder that made the vectors and refuse another, via
    :func:`sauerkraut_rag.retrievers.encoder_check.bind_fingerprint`; callers use
    :func:`~sauerkraut_rag.retrievers.encoder_check.bind_encoder`, a no-op for backends
    without it.
    """

    @property
    def dim(self) -> int:
        """Token vector dimension of the index."""
        ...

    def add(
        self,
        ids: Sequence[str],
        multivectors: Sequence[MultiVector],
        metadatas: Sequence[Metadata] | None = None,
        payloads: Sequence[str | None] | None = None,
    ) -> None:
        """Add new documents; ``multivectors[i]`` is ``(n_tokens_i, dim)``."""
        ...

    def upsert(
        self,
        ids: Sequence[str],
        multivectors: Sequence[MultiVector],
        metadatas: Sequence[Metadata] | None = None,
        payloads: Sequence[str | None] | None = None,
    ) -> None:
        """Insert or replace documents by id."""
        ...

    def delete(self, ids: Sequence[str]) -> int:
        """Delete documents by id; unknown ids are ignored. Returns the number removed."""
        ...

    def get(self, ids: Sequence[str]) -> list[StoredDocument]:
        """Stored documents for ``ids`` in the requested order; unknown ids are skipped."""
        ...

    def list_ids(self, limit: int = 1000, cursor: str | None = None) -> IdPage:
        """Up to ``limit`` stored ids after ``cursor`` (``None``: from the start)."""
        ...

    def search(
        self,
        queries: Sequence[MultiVector],
        k: int,
        *,
        filter: MetadataFilter | None = None,
    ) -> list[list[Hit]]:
        """Top-``k`` hits per query ``(n_query_tokens, dim)``, best first."""
        ...

    def __len__(self) -> int:
        """Number of stored (live) documents."""
        ...
