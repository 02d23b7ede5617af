"""qdrant: the scale-out backend. ``QdrantIndex`` keeps one Qdrant collection (a server or
cluster, the client's local mode, or Qdrant Edge in this process): token vectors as a
MAX_SIM multivector, a MUVERA vector for candidates, metadata in the payload. Imports the
retrievers' shared modules (scorer, MUVERA, pooling, protocol, checks) and
``qdrant_client`` / ``qdrant_edge`` (the ``[qdrant]`` extra), lazily."""

from __future__ import annotations

from sauerkraut_rag.retrievers.qdrant.config import QdrantConfig
from sauerkraut_rag.retrievers.qdrant.index import QdrantIndex

__all__ = ["QdrantConfig", "QdrantIndex"]
