"""``SauerkrautRetriever``: a LlamaIndex text retriever over a multi-vector (Voyager) index."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from typing import Any

from llama_index.core.ingestion import run_transformations
from llama_index.core.schema import BaseNode, Document, TextNode, TransformComponent
from llama_index.core.settings import Settings

from sauerkraut_rag.errors import DuplicateIdError, InvalidInputTypeError
from sauerkraut_rag.integrations._common import EncoderLike
from sauerkraut_rag.integrations.llamaindex._base import IndexRetrieverBase
from sauerkraut_rag.integrations.llamaindex._documents import (
    StoredRefDoc,
    document_hash,
    node_ids_of,
    stored_ref_docs,
    with_stable_ids,
)
from sauerkraut_rag.integrations.llamaindex._nodes import (
    NODE_INFO_KEY,
    hit_to_text_node,
    node_record,
)
from sauerkraut_rag.integrations.llamaindex._support import IndexLike
from sauerkraut_rag.types import Hit

logger = logging.getLogger(__name__)

_CHUNK = 1024
"""Nodes encoded and written per step: bounds memory (1,024 x up to ~300 tokens x 128
float32 ~ 150 MB) while keeping few index segments (each add writes one)."""


class SauerkrautRetriever(IndexRetrieverBase):
    """Text retrieval by exact MaxSim over nodes stored in a multi-vector index.

    Nodes keep their ``id_``, text and metadata (plus ``ref_doc_id`` and the excluded
    metadata keys); retrieval returns them as ``TextNode``s in ``NodeWithScore`` with
    score = MaxSim / number of query tokens.  ``index`` is a folder for a persistent
    :class:`~sauerkraut_rag.retrievers.voyager.index.VoyagerIndex` (opened, or created with
    ``index_options``), any :class:`~sauerkraut_rag.retrievers.protocol.MultiVectorIndex`
    object, or ``None`` for a temporary index deleted by :meth:`close`.  ``filters``
    (LlamaIndex ``MetadataFilters``, every operator and condition translated into the
    filter language and evaluated by the index; a filter dict such as
    ``{"year": {"$gte": 2020}}``; or, on ``VoyagerIndex``, a predicate on metadata)
    restricts every search.  ``aretrieve`` encodes and searches in a worker
    thread, so the event loop stays free.
    """

    modality = "text"

    # ---- construction ------------------------------------------------------------------

    @classmethod
    def from_nodes(
        cls,
        nodes: Sequence[BaseNode],
        encoder: EncoderLike,
        index: IndexLike = None,
        *,
        show_progress: bool = False,
        **kwargs: Any,
    ) -> SauerkrautRetriever:
        """Build a retriever and index ``nodes`` (ids kept); ``kwargs`` go to ``__init__``."""
        retriever = cls(encoder, index, **kwargs)
        retriever.add_nodes(nodes, show_progress=show_progress)
        return retriever

    @classmethod
    def from_documents(
        cls,
        documents: Sequence[Document],
        encoder: EncoderLike,
        index: IndexLike = None,
        *,
        transformations: list[TransformComponent] | None = None,
        show_progress: bool = False,
        **kwargs: Any,
    ) -> SauerkrautRetriever:
        """Build a retriever and index ``documents`` split by ``transformations``.

        ``transformations=None`` uses ``Settings.transformations`` (a ``SentenceSplitter``
        by default), like ``VectorStoreIndex.from_documents``; ``[]`` stores each
        document as one node under its own id.
        """
        retriever = cls(encoder, index, **kwargs)
        retriever.add_documents(
            documents, transformations=transformations, show_progress=show_progress
        )
        return retriever

    # ---- writing -----------------------------------------------------------------------

    def add_documents(
        self,
        documents: Sequence[Document],
        *,
        transformations: list[TransformComponent] | None = None,
        show_progress: bool = False,
    ) -> list[str]:
        """Split ``documents`` into nodes (see :meth:`from_documents`) and index them.

        Documents are matched to what is stored, as LlamaIndex's docstore-backed
        ingestion does: an unchanged document (same reference id and content hash) is
        skipped, a changed one replaces its nodes.  Readers that give documents random
        ids get stable ones from ``metadata["file_path"]`` (``<file_path>_part_<i>``,
        as with ``SimpleDirectoryReader(filename_as_id=True)``), so loading a folder
        again does not duplicate it; parts of such a file that are no longer produced
        are deleted.  Returns the ids of the stored nodes of all ``documents``.
        """
        return self._ingest(documents, transformations, show_progress)[0]

    def refresh_ref_docs(
        self,
        documents: Sequence[Document],
        *,
        transformations: list[TransformComponent] | None = None,
        show_progress: bool = False,
    ) -> list[bool]:
        """Like :meth:`add_documents`; returns, per document, whether it was (re)indexed."""
        return self._ingest(documents, transformations, show_progress)[1]

    def insert(self, document: Document, **kwargs: Any) -> None:
        """Index one document (``VectorStoreIndex.insert`` style); see :meth:`add_documents`."""
        self.add_documents([document], **kwargs)

    def delete_ref_doc(self, ref_doc_id: str, **kwargs: Any) -> int:
        """Remove every node of the reference document ``ref_doc_id``; returns how many.

        ``kwargs`` (such as ``delete_from_docstore``) are accepted for compatibility
        with LlamaIndex indexes and ignored: the index is the only store.
        """
        if not isinstance(ref_doc_id, str) or not ref_doc_id:
            raise InvalidInputTypeError(
                f"Expected ref_doc_id to be a non-empty str, got {ref_doc_id!r}."
            )
        return self._index.delete(node_ids_of(self._index, ref_doc_id))

    def _ingest(
        self,
        documents: Sequence[Document],
        transformations: list[TransformComponent] | None,
        show_progress: bool,
    ) -> tuple[list[str], list[bool]]:
        docs, derived_files = with_stable_ids(list(documents))
        hashes = {doc.node_id: document_hash(doc) for doc in docs}
        stored = stored_ref_docs(self._index, set(hashes), derived_files)
        todo = [
            doc
            for doc in docs
            if doc.node_id not in stored or stored[doc.node_id].hashes != {hashes[doc.node_id]}
        ]
        steps = Settings.transformations if transformations is None else transformations
        nodes = run_transformations(todo, steps, show_progress=show_progress) if todo else []
        records = [
            node_record(node, position=i, ref_doc_hash=hashes.get(node.ref_doc_id or node.node_id))
            for i, node in enumerate(nodes)
        ]
        self._write(records, replace=True, show_progress=show_progress)
        new_ids = {record[0] for record in records}
        redo = {doc.node_id for doc in todo} | (set(stored) - set(hashes))
        stale = [i for ref in redo for i in stored.get(ref, StoredRefDoc()).node_ids]
        self._index.delete([i for i in stale if i not in new_ids])
        by_ref: dict[str, list[str]] = {}
        for record in records:
            by_ref.setdefault(record[3][NODE_INFO_KEY]["ref_doc_id"], []).append(record[0])
        ids = [
            node_id
            for doc in docs
            for node_id in by_ref.get(doc.node_id, stored.get(doc.node_id, StoredRefDoc()).node_ids)
        ]
        logger.debug("Documents: %d indexed, %d unchanged", len(todo), len(docs) - len(todo))
        return ids, [doc in todo for doc in docs]

    def add_nodes(
        self,
        nodes: Sequence[BaseNode],
        *,
        replace: bool = False,
        show_progress: bool = False,
    ) -> list[str]:
        """Encode and store text nodes; returns their ids in order.

        An id stored already (or repeated in ``nodes``) raises
        :class:`~sauerkraut_rag.errors.DuplicateIdError` before anything is encoded,
        unless ``replace=True``.  Work proceeds in chunks of 1,024 nodes; if encoding fails
        part-way, the chunks before it stay stored.
        """
        records = [node_record(node, position=i) for i, node in enumerate(nodes)]
        ids = [record[0] for record in records]
        if not replace:
            self._check_new(ids)
        self._write(records, replace=replace, show_progress=show_progress)
        logger.debug("Indexed %d nodes", len(records))
        return ids

    def _write(
        self,
        records: list[tuple[str, str, str, dict[str, Any]]],
        *,
        replace: bool,
        show_progress: bool,
    ) -> None:
        write = self._index.upsert if replace else self._index.add
        for start in range(0, len(records), _CHUNK):
            chunk = records[start : start + _CHUNK]
            multivectors = self._encoder.encode_documents(
                [record[1] for record in chunk],
                batch_size=self._batch_size,
                show_progress=show_progress,
            )
            write(
                [record[0] for record in chunk],
                multivectors,
                [record[3] for record in chunk],
                [record[2] for record in chunk],
            )

    def _check_new(self, ids: list[str]) -> None:
        repeated = sorted(node_id for node_id, n in Counter(ids).items() if n > 1)
        stored = [doc.id for doc in self._index.get(ids)] if ids else []
        if repeated or stored:
            raise DuplicateIdError(
                f"Expected new node ids, but {len(stored)} are stored already and "
                f"{len(repeated)} repeat within the call (e.g. {(stored + repeated)[0]!r}). "
                "Nothing was added. Pass add_nodes(..., replace=True) to replace them."
            )

    def delete_nodes(self, node_ids: Sequence[str]) -> int:
        """Remove nodes by id (unknown ids ignored); returns how many were removed."""
        return self._index.delete(list(node_ids))

    def _to_node(self, hit: Hit) -> TextNode:
        return hit_to_text_node(hit)
