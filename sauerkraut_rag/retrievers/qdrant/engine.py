"""What :class:`~sauerkraut_rag.retrievers.qdrant.index.QdrantIndex` needs from a Qdrant engine.

Two engines implement :class:`Engine`: :class:`~sauerkraut_rag.retrievers.qdrant.client.
ClientEngine` (``qdrant_client``: a server or cluster, or the client's local mode) and
:class:`~sauerkraut_rag.retrievers.qdrant.edge.EdgeEngine` (``qdrant_edge``: Qdrant's
Rust engine in-process). Filters arrive as ``qdrant_client.models.Filter``; the edge
engine converts them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from sauerkraut_rag.retrievers.qdrant.config import QdrantConfig
from sauerkraut_rag.retrievers.qdrant.points import PointData, StoredPoint

__all__ = ["CollectionInfo", "Engine", "QuerySpec", "VectorInfo"]


@dataclass(frozen=True)
class VectorInfo:
    """One named vector of an existing collection, as the engine reports it."""

    size: int
    distance: str  # "dot", "cosine", "euclid", "manhattan"
    multivector: bool
    datatype: str | None = None  # "float32", "float16", "uint8" or None (default)


@dataclass(frozen=True)
class CollectionInfo:
    """An existing collection: its named vectors and its metadata."""

    vectors: dict[str, VectorInfo]
    metadata: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class QuerySpec:
    """One search: exact MaxSim over ``tokens``, on candidates from ``fde`` when given.

    ``fde is None`` scores every document matching ``filter`` exactly.
    """

    tokens: np.ndarray  # (n_query_tokens, dim) float32
    fde: np.ndarray | None
    limit: int
    prefetch_limit: int
    filter: Any  # qdrant_client.models.Filter | None
    ef: int


class Engine(Protocol):
    """The operations on one collection; every call raises the package's typed errors."""

    location: str
    """Where the collection lives, for messages (a URL, a folder or ``:memory:``)."""
    in_process: bool
    """``True`` when the engine runs in this process (calls are serialised by a lock)."""

    def read_collection(self) -> CollectionInfo | None:
        """The collection's vectors and metadata, ``None`` if it does not exist."""
        ...

    def create_collection(
        self, config: QdrantConfig, metadata: dict[str, Any], cluster: dict[str, Any]
    ) -> None:
        """Create the collection with the schema of ``config``."""
        ...

    def write_metadata(self, metadata: dict[str, Any]) -> None:
        """Replace the top-level keys of the collection metadata given in ``metadata``."""
        ...

    def upsert(self, points: list[PointData]) -> None:
        """Write points and wait until they are applied."""
        ...

    def create_payload_index(self, field: str, kind: str) -> None:
        """Index a payload field: ``kind`` is ``"keyword"``, ``"prefix"`` (keyword with
        prefix matching) or ``"float"``."""
        ...

    def delete(self, uuids: list[str]) -> None:
        """Delete points (unknown ones are ignored) and wait until applied."""
        ...

    def retrieve(self, uuids: list[str], *, with_vectors: bool) -> list[StoredPoint]:
        """Stored points among ``uuids`` (any order; unknown ones are missing)."""
        ...

    def count(self, flt: Any) -> int:
        """Exact number of points matching ``flt`` (``None``: all)."""
        ...

    def scroll(
        self, limit: int, offset: str | None, *, flt: Any = None, with_metadata: bool = False
    ) -> tuple[list[StoredPoint], str | None]:
        """Up to ``limit`` points matching ``flt`` in id order from ``offset`` (payload:
        ``doc_id``, and ``metadata`` if asked), and the next offset (``None``: done)."""
        ...

    def query(self, specs: list[QuerySpec]) -> list[list[StoredPoint]]:
        """One result list per spec, best first, with scores and payloads."""
        ...

    def close(self) -> None:
        """Release the engine (only when the index created it)."""
        ...
