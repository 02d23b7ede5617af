"""Qdrant's per-point limits, checked before anything is sent, and request-sized batches.

* A multivector may hold at most ``MAX_MULTIVECTOR_FLOATS`` floats in total (Qdrant's
  ``MAX_MULTIVECTOR_FLATTENED_LEN``, 1,048,576: 8,192 token vectors of 128 floats);
  a collection in strict mode may set a lower ``multivector_config.max_vectors``.
* A request may not exceed the server's ``max_request_size_mb`` (32 MB by default); one
  point must fit in one request, and batches are cut to stay below it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence

from sauerkraut_rag.errors import DocumentTooLargeError
from sauerkraut_rag.retrievers.qdrant.points import PointData

__all__ = ["MAX_MULTIVECTOR_FLOATS", "batches", "check_point", "point_bytes"]

MAX_MULTIVECTOR_FLOATS = 1024 * 1024
"""Qdrant's limit on the total floats of one multivector (``n_tokens * dim``)."""
_BYTES_PER_FLOAT = 20
"""A float in a JSON request (``-0.123456789012345,``); gRPC needs 4 (conservative)."""
_BATCH_FILL = 0.5
"""Share of ``max_request_bytes`` a batch may fill (headroom for the estimate)."""


def point_bytes(point: PointData) -> int:
    """An upper estimate of ``point``'s size in a REST request."""
    floats = point.tokens.size + point.fde.size
    payload = json.dumps(point.payload, ensure_ascii=False).encode("utf-8")
    return floats * _BYTES_PER_FLOAT + len(payload) + 64


def check_point(
    point: PointData,
    index: int,
    *,
    max_request_bytes: int,
    max_vectors: int | None,
    pool_factor: int,
) -> int:
    """Raise :class:`DocumentTooLargeError` if ``point`` breaks a limit; returns its size."""
    n_tokens, dim = point.tokens.shape
    fix = (
        f"Pool its tokens (QdrantIndex(..., pool_factor={max(2, pool_factor * 2)}) when "
        "creating the collection, or sauerkraut_rag.retrievers.pooling.pool_tokens), or "
        "split the document into smaller ones."
    )
    if n_tokens * dim > MAX_MULTIVECTOR_FLOATS:
        raise DocumentTooLargeError(
            f"multivectors[{index}] ({point.doc_id!r}) has {n_tokens} token vectors of {dim} "
            f"floats = {n_tokens * dim:,} floats; Qdrant stores at most "
            f"{MAX_MULTIVECTOR_FLOATS:,} per multivector ({MAX_MULTIVECTOR_FLOATS // dim:,} "
            f"tokens at dim {dim}). Nothing was written. {fix}"
        )
    if max_vectors is not None and n_tokens > max_vectors:
        raise DocumentTooLargeError(
            f"multivectors[{index}] ({point.doc_id!r}) has {n_tokens} token vectors; the "
            f"collection's strict mode allows {max_vectors} (multivector_config.max_vectors). "
            f"Nothing was written. {fix}"
        )
    size = point_bytes(point)
    if size > max_request_bytes:
        raise DocumentTooLargeError(
            f"Document {index} ({point.doc_id!r}) needs about {size:,} bytes in a request, "
            f"over the {max_request_bytes:,} bytes a Qdrant request may carry "
            "(max_request_bytes; the server's service.max_request_size_mb). Nothing was "
            "written. Store less text or metadata with it (keep large text elsewhere and its "
            f"reference in the payload), raise both limits, or: {fix}"
        )
    return size


def batches(
    points: Sequence[PointData], sizes: Sequence[int], *, batch_size: int, max_request_bytes: int
) -> Iterator[list[PointData]]:
    """Consecutive runs of at most ``batch_size`` points and about half the request limit."""
    budget = max_request_bytes * _BATCH_FILL
    batch: list[PointData] = []
    used = 0
    for point, size in zip(points, sizes, strict=True):
        if batch and (len(batch) >= batch_size or used + size > budget):
            yield batch
            batch, used = [], 0
        batch.append(point)
        used += size
    if batch:
        yield batch
