"""How one document becomes one Qdrant point, and back.

* **Id**: Qdrant point ids are UUIDs or integers, the protocol's ids are any non-empty
  string. Each id maps to ``uuid5(ID_NAMESPACE, id)``, so every client (and any other
  tool: ``uuid.uuid5(uuid.UUID("...")``, id)``) finds the same point; the string itself
  is kept in the payload under ``doc_id`` and is what ``get``/``search`` return.
* **Payload**: ``{"doc_id": str, "metadata": {...}, "payload": str | None, "filter": {...}}``.
  ``metadata`` is the document's metadata as given (JSON); ``payload`` its text or page
  image path; ``filter`` holds derived fields that let Qdrant filters match the filter
  language's semantics exactly (see :mod:`sauerkraut_rag.retrievers.qdrant.filters`).
* **Vectors**: ``tokens`` (the ``(n_tokens, dim)`` multivector, pooled and rounded to the
  storage dtype) and ``fde`` (its MUVERA encoding).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import numpy as np

from sauerkraut_rag.types import Metadata

__all__ = ["ID_NAMESPACE", "PointData", "StoredPoint", "find_points", "point_id"]

ID_NAMESPACE = uuid.UUID("6c1d2a0e-6b43-5c3e-9a37-5ae7b1c0f113")
"""Namespace of the deterministic point ids: ``uuid5(ID_NAMESPACE, doc_id)``."""

DOC_ID_KEY = "doc_id"
METADATA_KEY = "metadata"
PAYLOAD_KEY = "payload"
FILTER_KEY = "filter"
LOOKUP_CHUNK = 1000
"""Ids per retrieve request when checking or reading many ids."""


def point_id(doc_id: str) -> str:
    """The Qdrant point id (a UUID string) of the document id ``doc_id``."""
    return str(uuid.uuid5(ID_NAMESPACE, doc_id))


@dataclass(frozen=True)
class PointData:
    """One point to write: its UUID, vectors and payload."""

    uuid: str
    doc_id: str
    tokens: np.ndarray  # (n_tokens, dim) in the storage dtype
    fde: np.ndarray  # (fde_dim,) float32
    payload: dict[str, Any]


@dataclass(frozen=True)
class StoredPoint:
    """One point read back (``tokens`` only when vectors were requested)."""

    uuid: str
    payload: dict[str, Any]
    tokens: np.ndarray | None = None
    score: float | None = None

    @property
    def doc_id(self) -> str | None:
        """The document id, or ``None`` for a point this package did not write."""
        value = self.payload.get(DOC_ID_KEY)
        return value if isinstance(value, str) else None

    @property
    def metadata(self) -> Metadata:
        value = self.payload.get(METADATA_KEY)
        return value if isinstance(value, dict) else {}

    @property
    def text(self) -> str | None:
        value = self.payload.get(PAYLOAD_KEY)
        return value if isinstance(value, str) else None


def build_payload(
    doc_id: str, metadata: Metadata, text: str | None, filter_fields: dict[str, Any]
) -> dict[str, Any]:
    """The point payload of one document."""
    return {
        DOC_ID_KEY: doc_id,
        METADATA_KEY: metadata,
        PAYLOAD_KEY: text,
        FILTER_KEY: filter_fields,
    }


def find_points(engine: Any, ids: list[str], *, with_vectors: bool) -> list[StoredPoint]:
    """Stored points of the unique ``ids`` (any order) that really hold those ids.

    A point whose payload names another id (written by another tool under the same
    UUID) does not count as the document.
    """
    wanted = {point_id(i): i for i in ids}
    uuids = list(wanted)
    found: list[StoredPoint] = []
    for start in range(0, len(uuids), LOOKUP_CHUNK):
        found += engine.retrieve(uuids[start : start + LOOKUP_CHUNK], with_vectors=with_vectors)
    return [p for p in found if p.uuid in wanted and p.doc_id == wanted[p.uuid]]


def stored_vectors(point: StoredPoint, dtype: np.dtype[Any]) -> np.ndarray:
    """The point's token vectors in the storage dtype."""
    if point.tokens is None:
        from sauerkraut_rag.errors import IndexStoreError

        raise IndexStoreError(f"Qdrant returned no token vectors for {point.doc_id!r}.")
    return np.ascontiguousarray(point.tokens, dtype=dtype)


def is_uuid(text: str) -> bool:
    """``text`` is a UUID (a point id, e.g. a ``list_ids`` cursor)."""
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True
