"""``SauerkrautRetriever``: a LlamaIndex text retriever over a multi-vector (Voyager) index."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from typing import Any

from llama_index.core.ingestion import run_transformations
from llama_index.core.schema import BaseNode, Document, TextNode, TransformComponent
from llama_index.core.settings import Settings

from sauerkraut_rag.errors import DuplicateIdError
from sauerkraut_rag.integrations._common import EncoderLike
from sauerkraut_rag.integrations.llamaindex._base import IndexRetrieverBase
from sauerkraut_rag.integrations.llamaindex._nodes import hit_to_text_node, node_record
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
    (LlamaIndex ``MetadataFilters``, a dict of required values, or a predicate on
    metadata) restricts every search.  ``aretrieve`` encodes and searches in a worker
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
        """Split ``documents`` into nodes (see :meth:`from_documents`) and index them."""
        steps = Settings.transformations if transformations is None else transformations
        nodes = run_transformations(list(documents), steps, show_progress=show_progress)
        return self.add_nodes(nodes, show_progress=show_progress)

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
        logger.debug("Indexed %d nodes", len(records))
        return ids

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
