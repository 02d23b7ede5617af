"""Retrieval quality on real semantics through the LlamaIndex classes (issue 4, item 5).

The MiniLM-based PyLate-layout checkpoint must find the one relevant document for at
least 80% of 36 hand-written queries, both through ``SauerkrautRetriever`` and through
MUVERA single vectors in a stock ``VectorStoreIndex`` followed by ``MaxSimRerank``.
Topics are kept out of the embedded text so only the document text can match.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from llama_index.core import VectorStoreIndex
from llama_index.core.schema import TextNode

from sauerkraut_rag import MultiVectorEncoder
from sauerkraut_rag.integrations.llamaindex import (
    MaxSimRerank,
    SauerkrautEmbedding,
    SauerkrautRetriever,
)

CORPUS = Path(__file__).resolve().parents[2] / "data" / "quality_corpus.json"
MIN_RECALL_AT_1 = 0.8


@pytest.fixture(scope="module")
def corpus() -> dict[str, Any]:
    data = json.loads(CORPUS.read_text(encoding="utf-8"))
    assert len(data["documents"]) >= 30 and len(data["queries"]) >= 30
    return data


def _nodes(corpus: dict[str, Any]) -> list[TextNode]:
    return [
        TextNode(
            id_=doc["id"],
            text=doc["text"],
            metadata=doc["metadata"],
            excluded_embed_metadata_keys=list(doc["metadata"]),
        )
        for doc in corpus["documents"]
    ]


def _recall_at_1(corpus: dict[str, Any], top_ids: list[str | None]) -> float:
    relevant = [q["relevant"] for q in corpus["queries"]]
    return sum(got == want for got, want in zip(top_ids, relevant, strict=True)) / len(relevant)


def test_retriever_recall_at_1(
    minilm_encoder: MultiVectorEncoder, corpus: dict[str, Any], tmp_path: Path
) -> None:
    with SauerkrautRetriever.from_nodes(
        _nodes(corpus), minilm_encoder, tmp_path / "index", similarity_top_k=1
    ) as retriever:
        top = [retriever.retrieve(q["query"])[0].node.node_id for q in corpus["queries"]]
    recall = _recall_at_1(corpus, top)
    assert recall >= MIN_RECALL_AT_1, f"recall@1 {recall:.3f}"


def test_muvera_vector_index_then_maxsim_rerank_recall_at_1(
    minilm_encoder: MultiVectorEncoder, corpus: dict[str, Any]
) -> None:
    index = VectorStoreIndex(_nodes(corpus), embed_model=SauerkrautEmbedding(minilm_encoder))
    engine_retriever = index.as_retriever(similarity_top_k=8)
    reranker = MaxSimRerank(text_encoder=minilm_encoder, top_n=1)
    top: list[str | None] = []
    for q in corpus["queries"]:
        best = reranker.postprocess_nodes(
            engine_retriever.retrieve(q["query"]), query_str=q["query"]
        )
        top.append(best[0].node.node_id if best else None)
    recall = _recall_at_1(corpus, top)
    assert recall >= MIN_RECALL_AT_1, f"recall@1 {recall:.3f}"
