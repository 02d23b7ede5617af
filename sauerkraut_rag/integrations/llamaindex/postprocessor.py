"""``MaxSimRerank``: a LlamaIndex node postprocessor scoring nodes by exact MaxSim."""

from __future__ import annotations

import logging
from typing import Any, Literal

import numpy as np
from llama_index.core.bridge.pydantic import Field, PrivateAttr
from llama_index.core.callbacks import CallbackManager, CBEventType, EventPayload
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.events.rerank import ReRankEndEvent, ReRankStartEvent
from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.schema import BaseNode, MetadataMode, NodeWithScore, QueryBundle

from sauerkraut_rag._checks import check_positive_int
from sauerkraut_rag.encoders.base import MultiVectorEncoder
from sauerkraut_rag.encoders.document_cache import (
    DocumentCache,
    encode_documents_cached,
    resolve_document_cache,
)
from sauerkraut_rag.errors import InvalidInputError, InvalidInputTypeError
from sauerkraut_rag.integrations._common import (
    EncoderLike,
    normalise,
    resolve_encoder,
    run_off_loop,
)
from sauerkraut_rag.integrations.llamaindex._nodes import image_source
from sauerkraut_rag.integrations.llamaindex._support import query_text
from sauerkraut_rag.retrievers.maxsim import maxsim

logger = logging.getLogger(__name__)
dispatcher = get_dispatcher(__name__)


class MaxSimRerank(BaseNodePostprocessor):
    """Rerank retrieved nodes by exact MaxSim against the query; keep the best ``top_n``.

    Text nodes are scored with ``text_encoder`` on ``node.get_content(MetadataMode.EMBED)``;
    image nodes (``ImageNode.image``/``image_path``, or ``metadata["file_path"]`` naming
    an image) with ``page_encoder``.  Pass whichever the nodes need.  The new score is
    MaxSim divided by the number of query tokens (mean best-match cosine, ``[-1, 1]``);
    with ``keep_retrieval_score=True`` the returned nodes are copies whose
    ``metadata["retrieval_score"]`` holds the previous score (hidden from the LLM and the
    embed text).  Emits ``ReRankStartEvent``/``ReRankEndEvent``.

    Mixed lists (text and image nodes): the two models' scores are not on one scale (a
    page model's MaxSim is not comparable with a text model's), so each modality is
    ranked on its own and the two rankings are interleaved: the best text node and the
    best image node, then the second of each, and so on; at each rank the node that came
    earlier in the input (the first stage's order) goes first.  Each node keeps its own
    model's score, so scores compare only within a modality.  ``mix="refuse"`` raises
    instead, for pipelines that must not combine them.
    """

    top_n: int = Field(default=5, description="Number of nodes to keep, best first.")
    keep_retrieval_score: bool = Field(
        default=False, description='Copy the incoming score to metadata["retrieval_score"].'
    )
    model: str = Field(default="", description="Names of the text and page models.")
    batch_size: int = Field(default=8, description="Documents per encoder forward pass.")
    mix: Literal["interleave", "refuse"] = Field(
        default="interleave", description="How text and image nodes of one list are merged."
    )
    _text_encoder: MultiVectorEncoder | None = PrivateAttr(default=None)
    _page_encoder: MultiVectorEncoder | None = PrivateAttr(default=None)
    _cache: DocumentCache | None = PrivateAttr(default=None)

    def __init__(
        self,
        text_encoder: EncoderLike | None = None,
        page_encoder: EncoderLike | None = None,
        *,
        top_n: int = 5,
        keep_retrieval_score: bool = False,
        batch_size: int = 8,
        callback_manager: CallbackManager | None = None,
        load_kwargs: dict[str, Any] | None = None,
        cache: DocumentCache | bool | None = True,
        mix: Literal["interleave", "refuse"] = "interleave",
    ) -> None:
        """Give a text model, a page model, or both (instances, hub ids or folders).

        ``cache``: ``True`` (default) keeps node vectors in the process-wide
        :class:`DocumentCache` (256 MiB, shared with ``MaxSimReranker``), keyed by model
        and content (text, or image bytes); a ``DocumentCache`` of your own (size,
        folder); ``False`` encodes every time.
        """
        document_cache = resolve_document_cache(cache)
        if mix not in ("interleave", "refuse"):
            raise InvalidInputError(f"Expected mix='interleave' or 'refuse', got {mix!r}.")
        if text_encoder is None and page_encoder is None:
            raise InvalidInputError(
                "MaxSimRerank needs a model, got neither text_encoder nor page_encoder. "
                "Pass text_encoder=... for text nodes and/or page_encoder=... for pages."
            )
        text = (
            None
            if text_encoder is None
            else resolve_encoder(
                text_encoder, modality="text", role="text_encoder", load_kwargs=load_kwargs
            )
        )
        page = (
            None
            if page_encoder is None
            else resolve_encoder(
                page_encoder, modality="image", role="page_encoder", load_kwargs=load_kwargs
            )
        )
        names = [enc.name for enc in (text, page) if enc is not None]
        super().__init__(
            top_n=check_positive_int(top_n, name="top_n"),
            keep_retrieval_score=keep_retrieval_score,
            model=" + ".join(names),
            batch_size=check_positive_int(batch_size, name="batch_size"),
            callback_manager=callback_manager or CallbackManager(),
            mix=mix,
        )
        self._text_encoder = text
        self._page_encoder = page
        self._cache = document_cache

    @classmethod
    def class_name(cls) -> str:
        return "MaxSimRerank"

    def _postprocess_nodes(
        self,
        nodes: list[NodeWithScore],
        query_bundle: QueryBundle | None = None,
    ) -> list[NodeWithScore]:
        """Score every node, sort best first and keep ``top_n``."""
        if query_bundle is None:
            raise InvalidInputError(
                "MaxSimRerank needs the query, got query_bundle=None. Call "
                "postprocess_nodes(nodes, query_str='...') or pass a QueryBundle."
            )
        query = query_text(query_bundle)
        nodes = list(nodes)
        text_items, image_items = self._partition(nodes)  # input errors before any event
        start = ReRankStartEvent(
            query=query_bundle, nodes=nodes, top_n=self.top_n, model_name=self.model
        )
        dispatcher.event(start)
        with self.callback_manager.event(
            CBEventType.RERANKING,
            payload={
                EventPayload.NODES: nodes,
                EventPayload.MODEL_NAME: self.model,
                EventPayload.QUERY_STR: query,
                EventPayload.TOP_K: self.top_n,
            },
        ) as event:
            scores = np.zeros(len(nodes), dtype=np.float64)
            self._score(self._text_encoder, query, text_items, scores)
            self._score(self._page_encoder, query, image_items, scores)
            order = _merge(scores, [i for i, _ in text_items], [i for i, _ in image_items])
            order = order[: self.top_n]
            reranked = [
                NodeWithScore(node=self._output_node(nodes[i]), score=float(scores[i]))
                for i in order
            ]
            event.on_end(payload={EventPayload.NODES: reranked})
        dispatcher.event(ReRankEndEvent(nodes=reranked))
        return reranked

    async def _apostprocess_nodes(
        self,
        nodes: list[NodeWithScore],
        query_bundle: QueryBundle | None = None,
    ) -> list[NodeWithScore]:
        """Async :meth:`_postprocess_nodes`: the models run in a worker thread."""
        return await run_off_loop(self._postprocess_nodes, nodes, query_bundle)

    def _partition(
        self, nodes: list[NodeWithScore]
    ) -> tuple[list[tuple[int, str]], list[tuple[int, str | bytes]]]:
        """Split nodes into ``(position, text)`` and ``(position, image)`` work items."""
        text_items: list[tuple[int, str]] = []
        image_items: list[tuple[int, str | bytes]] = []
        for i, scored in enumerate(nodes):
            if not isinstance(scored, NodeWithScore):
                raise InvalidInputTypeError(
                    f"Expected nodes[{i}] to be a NodeWithScore, got {type(scored).__name__}. "
                    "Wrap nodes as NodeWithScore(node=node)."
                )
            source = image_source(scored.node)
            if source is None:
                text_items.append((i, scored.node.get_content(metadata_mode=MetadataMode.EMBED)))
            else:
                image_items.append((i, source))
        for items, encoder, kind, role in (
            (text_items, self._text_encoder, "text", "text_encoder"),
            (image_items, self._page_encoder, "image", "page_encoder"),
        ):
            if items and encoder is None:
                raise InvalidInputError(
                    f"Got {len(items)} {kind} node(s) but MaxSimRerank has no {role}. "
                    f"Pass MaxSimRerank({role}=...) or filter those nodes out first."
                )
        if text_items and image_items and self.mix == "refuse":
            raise InvalidInputError(
                f"Got {len(text_items)} text and {len(image_items)} image node(s) with "
                "mix='refuse': a text model's and a page model's MaxSim scores are not on one "
                "scale, so one ranking of both would be arbitrary. Rerank each modality "
                "separately, or use mix='interleave' (ranks each modality on its own and "
                "alternates them)."
            )
        return text_items, image_items

    def _output_node(self, scored: NodeWithScore) -> BaseNode:
        """The node to return: a copy carrying ``retrieval_score`` when asked (inputs untouched).

        The key is hidden from the embed text (a second rerank scores the same content)
        and from the LLM prompt.
        """
        if not self.keep_retrieval_score:
            return scored.node
        node = scored.node
        return node.model_copy(
            update={
                "metadata": {**node.metadata, "retrieval_score": scored.score},
                "excluded_embed_metadata_keys": _with(node.excluded_embed_metadata_keys),
                "excluded_llm_metadata_keys": _with(node.excluded_llm_metadata_keys),
            }
        )

    def _score(
        self,
        encoder: MultiVectorEncoder | None,
        query: str,
        items: list[tuple[int, Any]],
        out: np.ndarray,
    ) -> None:
        """Write normalised MaxSim scores of ``items`` into ``out`` at their positions."""
        if not items or encoder is None:
            return
        q = encoder.encode_queries([query], show_progress=False)[0]
        docs = encode_documents_cached(
            encoder, [item for _, item in items], batch_size=self.batch_size, cache=self._cache
        )
        scores = normalise(maxsim([q], docs)[0], q.shape[0])
        for (position, _), score in zip(items, scores, strict=True):
            out[position] = score


def _with(keys: list[str], key: str = "retrieval_score") -> list[str]:
    return list(keys) if key in keys else [*keys, key]


def _merge(scores: np.ndarray, text: list[int], image: list[int]) -> list[int]:
    """Positions best first: one modality sorts by score; two are ranked apart and
    interleaved, the node earlier in the input first at each rank."""
    ranked = [sorted(group, key=lambda i: (-scores[i], i)) for group in (text, image) if group]
    if len(ranked) < 2:
        return ranked[0] if ranked else []
    order: list[int] = []
    for rank in range(max(len(group) for group in ranked)):
        order.extend(sorted(group[rank] for group in ranked if rank < len(group)))
    return order
