"""The write operations of an index handle: validate, commit, publish, housekeeping.

Each runs under the handle's mutex (the caller's). A storage fault before the commit
raises :class:`~sauerkraut_rag.errors.IndexStorageError` and stores nothing; once the
commit is made the operation succeeds, and housekeeping after it never fails it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sauerkraut_rag.errors import DuplicateIdError, UnknownIdError
from sauerkraut_rag.retrievers import _validation as check
from sauerkraut_rag.retrievers.voyager import housekeeping
from sauerkraut_rag.retrievers.voyager.compaction import compact
from sauerkraut_rag.retrievers.voyager.faults import storage_guard
from sauerkraut_rag.retrievers.voyager.handle import Handle
from sauerkraut_rag.retrievers.voyager.indexer import MAX_TAIL
from sauerkraut_rag.retrievers.voyager.state import Snapshot, with_deleted
from sauerkraut_rag.retrievers.voyager.writes import Writer


@contextmanager
def storage(handle: Handle, operation: str) -> Iterator[None]:
    """Report storage faults inside the block as ``IndexStorageError`` of ``operation``."""
    writer = handle.writer
    probe = writer.intact if writer is not None else (lambda: True)
    with storage_guard(operation, handle.path, probe):
        yield


def write_documents(
    handle: Handle,
    writer: Writer,
    ids: Any,
    multivectors: Any,
    metadatas: Any,
    payloads: Any,
    replace: bool,
) -> None:
    """``add`` (``replace=False``) or ``upsert``."""
    id_list = check.check_ids(ids)
    n = len(id_list)
    arrays = check.check_document_vectors(multivectors, dim=handle.config.dim, n=n)
    metas = check.check_metadatas(metadatas, n=n)
    texts = check.check_payloads(payloads, n=n)
    if not n:
        return
    snap = handle.reads.snap
    existing = [doc_id for doc_id in id_list if doc_id in snap.id_to_pos]
    if existing and not replace:
        shown = ", ".join(repr(i) for i in existing[:5])
        raise DuplicateIdError(
            f"Expected new ids, but {len(existing)} already stored ({shown}). Nothing "
            "was written. Use upsert() to replace documents, or delete them first."
        )
    replaced = [snap.id_to_pos[doc_id] for doc_id in existing]
    with storage(handle, "upsert" if replace else "add"):
        new = writer.append(snap, id_list, arrays, metas, texts, replaced)
    committed(handle, writer, new, hide=replaced)


def delete_documents(handle: Handle, writer: Writer, ids: Any, missing_ok: bool) -> int:
    """Tombstone documents by id; returns how many were deleted."""
    id_list = check.check_lookup_ids(ids)
    snap = handle.reads.snap
    unknown = [doc_id for doc_id in id_list if doc_id not in snap.id_to_pos]
    if unknown and not missing_ok:
        raise UnknownIdError(
            f"{len(unknown)} id(s) are not stored ({', '.join(map(repr, unknown[:5]))}); "
            "nothing was deleted. Pass missing_ok=True to ignore unknown ids."
        )
    positions = sorted({snap.id_to_pos[i] for i in id_list if i in snap.id_to_pos})
    if not positions:
        return 0
    with storage(handle, "delete"):
        generation = writer.tombstone(snap, positions)
    new = with_deleted(snap, positions).replace(generation=generation)
    committed(handle, writer, new, hide=positions)
    return len(positions)


def compact_index(handle: Handle, writer: Writer) -> None:
    """Rewrite vectors and graph without deleted documents."""
    with storage(handle, "compact"):
        new = compact(writer, handle.reads.snap)
    committed(handle, writer, new, hide=())


def committed(handle: Handle, writer: Writer, new: Snapshot, hide: Sequence[int]) -> None:
    """Publish a committed snapshot, then do the housekeeping (which never fails it)."""
    handle.reads.publish(new)  # searches see the committed change from here on
    writer.hide_in_hnsw(new, hide)
    if handle.indexer is not None and new.n_docs - new.tail_start() > MAX_TAIL:
        handle.indexer.drain(tail=MAX_TAIL // 2)  # back-pressure: let the graph catch up
    merged = housekeeping.after_commit(writer, new)
    if merged is not new:
        handle.reads.publish(merged)
    writer.raise_pending_interrupt()
