"""Document identity for the LlamaIndex text retriever, the way docstore-backed ingestion
does it: a reference document id plus a content hash per stored node.

- Readers that make random ids (``SimpleDirectoryReader`` without ``filename_as_id``)
  get stable ones: a document whose id is a random UUID4 and whose metadata holds
  ``file_path`` is identified as ``f"{file_path}_part_{i}"``, ``i`` counting the
  documents of that file in the call (exactly what ``filename_as_id=True`` produces).
- Each stored node records its reference document id and that document's hash (text
  plus metadata, without ``last_accessed_date``, which changes whenever the file is
  read).  Adding a document whose hash is stored already skips it; a changed one
  replaces its nodes; parts of a file that are no longer produced are deleted.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from llama_index.core.schema import BaseNode, Document

from sauerkraut_rag.integrations.llamaindex._nodes import NODE_INFO_KEY
from sauerkraut_rag.retrievers.listing import iter_documents
from sauerkraut_rag.retrievers.protocol import MultiVectorIndex

VOLATILE_KEYS = frozenset({"last_accessed_date"})
"""Metadata left out of the document hash: it changes when a file is read, not written."""

PART = "_part_"


def _is_random_id(doc_id: str) -> bool:
    try:
        return uuid.UUID(doc_id).version == 4
    except (ValueError, AttributeError, TypeError):
        return False


def with_stable_ids(documents: Sequence[Document]) -> tuple[list[Document], set[str]]:
    """Copies of ``documents`` with ids derived from ``file_path`` where the id is random;
    also the file paths whose documents got derived ids (their old parts are replaced)."""
    parts: dict[str, int] = defaultdict(int)
    out: list[Document] = []
    for doc in documents:
        path = doc.metadata.get("file_path") if isinstance(doc, BaseNode) else None
        if isinstance(doc, BaseNode) and isinstance(path, str) and _is_random_id(doc.id_):
            part = parts[path]
            parts[path] += 1
            doc = doc.model_copy(update={"id_": f"{path}{PART}{part}"})
        out.append(doc)
    return out, set(parts)


def document_hash(doc: BaseNode) -> str:
    """SHA-256 of the document's text and metadata (volatile keys left out)."""
    metadata = {k: v for k, v in doc.metadata.items() if k not in VOLATILE_KEYS}
    text = doc.get_content()
    blob = json.dumps([text, metadata], sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass
class StoredRefDoc:
    """What the index holds for one reference document: its node ids and recorded hashes."""

    node_ids: list[str] = field(default_factory=list)
    hashes: set[str | None] = field(default_factory=set)


def node_info(metadata: dict[str, Any]) -> dict[str, Any]:
    info = metadata.get(NODE_INFO_KEY)
    return info if isinstance(info, dict) else {}


def stored_ref_docs(
    index: MultiVectorIndex, ref_doc_ids: set[str], file_paths: set[str]
) -> dict[str, StoredRefDoc]:
    """Stored nodes of the given reference documents, and of every derived part
    (``<file_path>_part_<i>``) of the given files; keyed by reference document id."""
    found: dict[str, StoredRefDoc] = defaultdict(StoredRefDoc)
    if not len(index) or not (ref_doc_ids or file_paths):
        return found
    prefixes = tuple(f"{path}{PART}" for path in file_paths)
    for doc in iter_documents(index):
        info = node_info(doc.metadata)
        ref = info.get("ref_doc_id")
        if not isinstance(ref, str):
            continue
        if ref in ref_doc_ids or (prefixes and ref.startswith(prefixes)):
            entry = found[ref]
            entry.node_ids.append(doc.id)
            entry.hashes.add(info.get("ref_doc_hash"))
    return found


def node_ids_of(index: MultiVectorIndex, ref_doc_id: str) -> list[str]:
    """Ids of the stored nodes whose reference document is ``ref_doc_id``."""
    return stored_ref_docs(index, {ref_doc_id}, set()).get(ref_doc_id, StoredRefDoc()).node_ids
