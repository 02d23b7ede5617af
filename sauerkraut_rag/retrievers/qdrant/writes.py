"""Turning checked documents into points, and sending them in batches.

Everything that can fail on input (dtype range, per-point limits) fails in
:func:`build_points`, before the first request. :func:`send` writes batch by batch
(``wait=True``) with a progress bar; when a batch fails after others were written, a
:class:`~sauerkraut_rag.errors.PartialWriteError` lists which ids are stored.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from sauerkraut_rag.errors import InvalidInputError, PartialWriteError, SauerkrautError
from sauerkraut_rag.retrievers.qdrant.config import QdrantConfig
from sauerkraut_rag.retrievers.qdrant.filters import filter_fields
from sauerkraut_rag.retrievers.qdrant.limits import batches, check_point
from sauerkraut_rag.retrievers.qdrant.points import PointData, build_payload, point_id
from sauerkraut_rag.types import Metadata

__all__ = ["build_points", "send", "stored_form"]

logger = logging.getLogger(__name__)


def stored_form(array: np.ndarray, index: int, config: QdrantConfig) -> np.ndarray:
    """Pool (if configured) and round one document to the storage dtype."""
    if config.pool_factor > 1:
        from sauerkraut_rag.retrievers.pooling import pool_tokens

        array = pool_tokens(
            array, config.pool_factor, protected_tokens=config.pool_protected_tokens
        )
    with np.errstate(over="ignore"):
        stored = np.ascontiguousarray(array, dtype=config.vector_dtype)
    if not np.isfinite(stored).all():
        raise InvalidInputError(
            f"multivectors[{index}] has values outside the {config.vector_dtype} range. "
            "Pass L2-normalised vectors, or create the collection with vector_dtype='float32'."
        )
    return stored


def build_points(
    ids: list[str],
    arrays: list[np.ndarray],
    metas: list[tuple[Metadata, str]],
    texts: list[str | None],
    *,
    config: QdrantConfig,
    muvera: Any,
    max_vectors: int | None,
) -> tuple[list[PointData], list[int]]:
    """Points and their estimated request sizes; raises on the first document over a limit."""
    stored = [stored_form(a, i, config) for i, a in enumerate(arrays)]
    fdes = muvera.encode_documents([s.astype(np.float32) for s in stored])
    points, sizes = [], []
    for i, doc_id in enumerate(ids):
        metadata = metas[i][0]
        payload = build_payload(doc_id, metadata, texts[i], filter_fields(metadata))
        point = PointData(point_id(doc_id), doc_id, stored[i], fdes[i], payload)
        sizes.append(
            check_point(
                point,
                i,
                max_request_bytes=config.max_request_bytes,
                max_vectors=max_vectors,
                pool_factor=config.pool_factor,
            )
        )
        points.append(point)
    return points, sizes


def send(
    write: Callable[[list[PointData]], None],
    points: list[PointData],
    sizes: list[int],
    *,
    config: QdrantConfig,
    show_progress: bool | None,
    where: str,
) -> None:
    """Write ``points`` batch by batch; a failure after the first batch is a partial write."""
    groups = list(
        batches(
            points, sizes, batch_size=config.batch_size, max_request_bytes=config.max_request_bytes
        )
    )
    disable = (len(groups) < 2) if show_progress is None else not show_progress
    written: list[str] = []
    with tqdm(total=len(points), unit="doc", desc="Writing to Qdrant", disable=disable) as bar:
        for number, group in enumerate(groups):
            try:
                write(group)
            except (SauerkrautError, OSError) as exc:
                if not written:
                    raise  # nothing was stored: the collection is as it was
                raise _partial(exc, written, groups[number:], number, len(groups), where) from exc
            written.extend(p.doc_id for p in group)
            bar.update(len(group))


def _partial(
    exc: Exception,
    written: list[str],
    rest: list[list[PointData]],
    number: int,
    total: int,
    where: str,
) -> PartialWriteError:
    unwritten = [p.doc_id for group in rest for p in group]
    shown = ", ".join(repr(i) for i in written[:5]) + (", ..." if len(written) > 5 else "")
    logger.error(
        "batch %d/%d to %s failed after %d documents", number + 1, total, where, len(written)
    )
    return PartialWriteError(
        f"Writing to {where} failed in batch {number + 1} of {total} ({exc}). The "
        f"{len(written)} documents of the earlier batches are stored ({shown}); the other "
        f"{len(unwritten)} are not (those of the failed batch may be partly stored). The "
        "error's written_ids and unwritten_ids list them; retry the unwritten ones with "
        "upsert(), which replaces any that did arrive.",
        written_ids=written,
        unwritten_ids=unwritten,
    )
