"""End to end: LlamaIndex query engines over our retrievers, with reranking before the LLM."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from llama_index.core.base.llms.types import ImageBlock, TextBlock
from llama_index.core.llms import ChatMessage, ChatResponse, MockLLM
from llama_index.core.llms.callbacks import llm_chat_callback
from llama_index.core.query_engine import RetrieverQueryEngine
from llama_index.core.schema import ImageNode, NodeWithScore, QueryBundle, TextNode
from pydantic import Field

from sauerkraut_rag import MultiVectorEncoder
from sauerkraut_rag.integrations.llamaindex import (
    MaxSimRerank,
    SauerkrautPageRetriever,
    SauerkrautRetriever,
)

QUERY = "What do the safety instructions say about the hydraulic press?"


class RecordingLLM(MockLLM):
    """A chat ``MockLLM`` that keeps the messages of every call (refine mode calls it per node)."""

    calls: list[list[ChatMessage]] = Field(default_factory=list, exclude=True)

    def __init__(self) -> None:
        super().__init__(is_chat_model=True)

    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        self.calls.append(list(messages))
        return super().chat(messages, **kwargs)

    @llm_chat_callback()
    async def achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        self.calls.append(list(messages))
        return await super().achat(messages, **kwargs)

    def blocks(self) -> list[Any]:
        return [block for call in self.calls for message in call for block in message.blocks]

    def images(self) -> list[bytes]:
        """Bytes of every image sent (the synthesizer inlines files as data URLs)."""
        return [
            block.resolve_image(as_base64=False).read()
            for block in self.blocks()
            if isinstance(block, ImageBlock)
        ]

    def text(self) -> str:
        return "\n".join(block.text for block in self.blocks() if isinstance(block, TextBlock))


def _file_bytes(nodes: list[NodeWithScore]) -> list[bytes]:
    return [Path(n.node.image_path).read_bytes() for n in nodes]


def test_multimodal_query_engine_over_a_3_page_pdf(
    page_retriever: SauerkrautPageRetriever, pdf_path: Path
) -> None:
    engine = RetrieverQueryEngine.from_args(
        page_retriever, llm=MockLLM(is_chat_model=True), multimodal=True
    )
    response = engine.query(QueryBundle(QUERY))
    assert isinstance(response.response, str) and response.response
    assert len(response.source_nodes) == 3
    assert sorted(n.node.metadata["page"] for n in response.source_nodes) == [1, 2, 3]
    for scored in response.source_nodes:
        assert isinstance(scored.node, ImageNode)
        assert scored.node.metadata["source"] == str(pdf_path)
        assert Path(scored.node.image_path).is_file()


def test_the_llm_receives_the_page_images(page_retriever: SauerkrautPageRetriever) -> None:
    llm = RecordingLLM()
    engine = RetrieverQueryEngine.from_args(page_retriever, llm=llm, multimodal=True)
    response = engine.query(QUERY)
    assert sorted(llm.images()) == sorted(_file_bytes(response.source_nodes))
    assert len(llm.images()) == 3
    assert "page: " in llm.text() and "source_sha256" not in llm.text()


def test_page_rerank_runs_before_the_llm(
    page_retriever: SauerkrautPageRetriever, page_encoder: MultiVectorEncoder
) -> None:
    retrieved = page_retriever.retrieve(QUERY)
    best = MaxSimRerank(page_encoder=page_encoder, top_n=1).postprocess_nodes(
        retrieved, query_str=QUERY
    )[0]
    llm = RecordingLLM()
    engine = RetrieverQueryEngine.from_args(
        page_retriever,
        llm=llm,
        multimodal=True,
        node_postprocessors=[
            MaxSimRerank(page_encoder=page_encoder, top_n=1, keep_retrieval_score=True)
        ],
    )
    response = engine.query(QUERY)
    (source,) = response.source_nodes
    assert source.node.node_id == best.node.node_id
    assert source.score == pytest.approx(best.score)
    assert "retrieval_score" in source.node.metadata
    assert llm.images() == _file_bytes([best])  # only the reranked page reached the LLM


def test_text_query_engine_with_rerank_sync_and_async(
    text_encoder: MultiVectorEncoder, text_nodes: list[TextNode], tmp_path: Path
) -> None:
    with SauerkrautRetriever.from_nodes(
        text_nodes, text_encoder, tmp_path / "text-index", similarity_top_k=5
    ) as retriever:
        reranker = MaxSimRerank(text_encoder=text_encoder, top_n=2)
        expected = reranker.postprocess_nodes(retriever.retrieve(QUERY), query_str=QUERY)
        llm = RecordingLLM()
        engine = RetrieverQueryEngine.from_args(retriever, llm=llm, node_postprocessors=[reranker])
        response = engine.query(QUERY)
        sent = llm.text()
        async_response = asyncio.run(engine.aquery(QUERY))
    ids = [n.node.node_id for n in expected]
    assert [n.node.node_id for n in response.source_nodes] == ids
    assert [n.node.node_id for n in async_response.source_nodes] == ids
    for scored in expected:
        assert scored.node.text in sent  # the reranked texts are in the prompt
    dropped = {n.node_id for n in text_nodes} - set(ids)
    by_id = {n.node_id: n for n in text_nodes}
    assert all(by_id[node_id].text not in sent for node_id in dropped)
