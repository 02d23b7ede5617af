"""Private base of the two LlamaIndex retrievers: encoder + index + MaxSim search."""

from __future__ import annotations

from typing import Any

from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.callbacks import CallbackManager
from llama_index.core.schema import NodeWithScore, QueryBundle
from llama_index.core.vector_stores.types import MetadataFilters

from sauerkraut_rag._checks import check_positive_int
from sauerkraut_rag.encoders.base import Modality, MultiVectorEncoder
from sauerkraut_rag.integrations._common import (
    ClosesIndex,
    EncoderLike,
    IndexHandle,
    normalise,
    resolve_encoder,
    resolve_index,
    run_off_loop,
)
from sauerkraut_rag.integrations.llamaindex._filters import resolve_filters
from sauerkraut_rag.integrations.llamaindex._support import IndexLike, query_text
from sauerkraut_rag.retrievers.protocol import MetadataFilter, MultiVectorIndex
from sauerkraut_rag.types import Hit


class IndexRetrieverBase(ClosesIndex, BaseRetriever):
    """Shared plumbing: resolve the encoder, open/own the index, search, close.

    ``close()`` (or ``with``) closes an index the retriever opened and deletes a
    temporary one; an index object passed in stays open.

    Subclasses set :attr:`modality` and implement :meth:`_to_node`.
    """

    modality: Modality = "text"

    def __init__(
        self,
        encoder: EncoderLike,
        index: IndexLike = None,
        *,
        similarity_top_k: int = 4,
        filters: MetadataFilters | MetadataFilter | None = None,
        batch_size: int = 32,
        callback_manager: CallbackManager | None = None,
        load_kwargs: dict[str, Any] | None = None,
        read_only: bool = False,
        index_options: dict[str, Any] | None = None,
        verbose: bool = False,
    ) -> None:
        """Wrap an ``encoder`` (instance, hub id or folder) and an index (folder, object, None).

        ``load_kwargs`` go to ``load_encoder`` for ids/folders; ``read_only`` and
        ``index_options`` (``VoyagerIndex`` creation options) apply to index folders.
        """
        self.similarity_top_k = check_positive_int(similarity_top_k, name="similarity_top_k")
        self._batch_size = check_positive_int(batch_size, name="batch_size")
        self._filter = resolve_filters(filters)
        self._encoder: MultiVectorEncoder = resolve_encoder(
            encoder, modality=self.modality, role="encoder", load_kwargs=load_kwargs
        )
        self._handle: IndexHandle = resolve_index(
            index,
            encoder=self._encoder,
            role="index",
            read_only=read_only,
            **(index_options or {}),
        )
        self._index: MultiVectorIndex = self._handle.index
        super().__init__(callback_manager=callback_manager, verbose=verbose)

    @property
    def encoder(self) -> MultiVectorEncoder:
        """The model that encodes queries and documents."""
        return self._encoder

    @property
    def index(self) -> MultiVectorIndex:
        """The underlying multi-vector index."""
        return self._index

    def __len__(self) -> int:
        return len(self._index)

    def _to_node(self, hit: Hit) -> Any:
        """Turn one index hit into the node type this retriever returns."""
        raise NotImplementedError

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        query = self._encoder.encode_queries([query_text(query_bundle)], show_progress=False)[0]
        hits = self._index.search([query], self.similarity_top_k, filter=self._filter)[0]
        return [
            NodeWithScore(node=self._to_node(hit), score=normalise(hit.score, query.shape[0]))
            for hit in hits
        ]

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return await run_off_loop(self._retrieve, query_bundle)
