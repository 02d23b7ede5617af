"""``copy_index``: stream every document from one ``MultiVectorIndex`` into another.

Moves an index between backends (a ``VoyagerIndex`` folder into a Qdrant collection, a
collection into another cluster, or back) without re-encoding: ids, stored token
vectors, metadata and payloads are copied page by page (``list_ids``), so memory stays
bounded by ``batch_size``. It is resumable: ids already in the target are skipped, so
an interrupted copy continues where it stopped when run again.

The copied vectors are the source's stored ones (already pooled and rounded). A target
that pools at write time must accept them as they are (``QdrantIndex`` does, with its
``pooled=True`` write option) or have ``pool_factor`` 1; pooling them twice is refused.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tqdm.auto import tqdm

from sauerkraut_rag._checks import check_positive_int
from sauerkraut_rag.errors import DimensionMismatchError, IndexSchemaError, InvalidInputTypeError
from sauerkraut_rag.retrievers.protocol import MultiVectorIndex, StoredDocument

__all__ = ["CopyReport", "copy_index"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CopyReport:
    """What :func:`copy_index` did: documents written, and ones already in the target."""

    copied: int
    skipped: int


def copy_index(
    source: MultiVectorIndex,
    target: MultiVectorIndex,
    *,
    batch_size: int = 256,
    show_progress: bool | None = None,
    map_document: Callable[[StoredDocument], StoredDocument] | None = None,
) -> CopyReport:
    """Copy every document of ``source`` that ``target`` lacks; returns the counts.

    ``target`` documents with the same ids are left as they are (resume semantics):
    delete them first to copy them again. ``map_document`` may change a document on its
    way (e.g. point its page image at a new folder); its id and vectors must stay.
    """
    for name, index in (("source", source), ("target", target)):
        if not isinstance(index, MultiVectorIndex):
            raise InvalidInputTypeError(
                f"Expected {name} to implement MultiVectorIndex (with list_ids), got "
                f"{type(index).__name__}."
            )
    batch_size = check_positive_int(batch_size, name="batch_size")
    if source.dim != target.dim:
        raise DimensionMismatchError(
            f"The source holds {source.dim}-d vectors, the target {target.dim}-d ones. Copy "
            "into an index made for the same model."
        )
    if "include_vectors" not in inspect.signature(source.get).parameters:
        raise InvalidInputTypeError(
            f"{type(source).__name__}.get() cannot return stored vectors (no include_vectors "
            "option), so its documents cannot be copied without re-encoding them."
        )
    write = _writer(source, target)
    _copy_encoder(source, target)  # before writing: a mismatched target fails untouched
    copied = skipped = 0
    cursor: str | None = None
    with tqdm(
        total=len(source), unit="doc", desc="Copying", disable=_disabled(show_progress)
    ) as bar:
        while True:
            page = source.list_ids(limit=batch_size, cursor=cursor)
            present = {doc.id for doc in target.get(page.ids)}
            missing = [i for i in page.ids if i not in present]
            docs = source.get(missing, include_vectors=True) if missing else []  # type: ignore[call-arg]
            if map_document is not None:
                docs = [map_document(doc) for doc in docs]
            if docs:
                write(
                    [d.id for d in docs],
                    [d.multivector for d in docs],
                    [d.metadata for d in docs],
                    [d.payload for d in docs],
                )
            copied += len(docs)
            skipped += len(page.ids) - len(docs)
            bar.update(len(page.ids))
            cursor = page.next_cursor
            if cursor is None:
                break
    logger.info("copied %d documents, %d already in the target", copied, skipped)
    return CopyReport(copied=copied, skipped=skipped)


def _disabled(show_progress: bool | None) -> bool | None:
    return None if show_progress is None else not show_progress


def _pool_factor(index: Any) -> int | None:
    config = getattr(index, "config", None)
    value = getattr(config, "pool_factor", None)
    return value if isinstance(value, int) else None


def _writer(source: Any, target: Any) -> Any:
    """``target.upsert`` storing the vectors as given (never pooling them a second time)."""
    source_pool, target_pool = _pool_factor(source), _pool_factor(target)
    if source_pool is not None and target_pool is not None and source_pool != target_pool:
        raise IndexSchemaError(
            f"The source stores vectors pooled with pool_factor={source_pool}, the target "
            f"pools with {target_pool}. Create the target with pool_factor={source_pool} so "
            "copied and newly added documents match."
        )
    if "pooled" in inspect.signature(target.upsert).parameters:
        return lambda *args: target.upsert(*args, pooled=True, show_progress=False)
    if target_pool not in (None, 1):
        raise IndexSchemaError(
            f"{type(target).__name__} would pool the copied (already stored) vectors again "
            f"(pool_factor={target_pool}). Copy into a target created with pool_factor=1."
        )
    return target.upsert


def _copy_encoder(source: Any, target: Any) -> None:
    """Record the source's encoder on the target, when both keep such a record."""
    fingerprint = getattr(source, "encoder_fingerprint", None)
    bind = getattr(target, "bind_encoder", None)
    if fingerprint is not None and callable(bind):
        bind(fingerprint)
