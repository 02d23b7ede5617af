"""MaxSimReranker: scores against brute-force MaxSim, top_n, copies, and the classic wrapper."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from langchain_classic.retrievers import ContextualCompressionRetriever
from langchain_core.documents import Document
from langchain_core.vectorstores import InMemoryVectorStore

from sauerkraut_rag import MultiVectorEncoder
from sauerkraut_rag.errors import InvalidInputError, InvalidInputTypeError
from sauerkraut_rag.integrations.langchain import MaxSimReranker, SauerkrautEmbeddings
from sauerkraut_rag.retrievers.maxsim import maxsim

TEXTS = [
    "The cat sat on the mat.",
    "Quantum chromodynamics describes quarks.",
    "Die Katze schläft auf der Matte.",
    "Stock markets fell sharply today.",
    "A recipe for apple pie.",
]
QUERY = "Where did the cat sit?"


@pytest.fixture
def docs() -> list[Document]:
    return [Document(page_content=t, metadata={"n": i}, id=f"d{i}") for i, t in enumerate(TEXTS)]


def _reference(encoder: MultiVectorEncoder) -> np.ndarray:
    q = encoder.encode_queries([QUERY])
    return maxsim(q, encoder.encode_documents(TEXTS))[0] / q[0].shape[0]


def test_scores_and_order_match_brute_force_maxsim(
    text_encoder: MultiVectorEncoder, docs: list[Document]
) -> None:
    reranker = MaxSimReranker(model=text_encoder, top_n=None)
    out = reranker.compress_documents(docs, QUERY)
    expected = _reference(text_encoder)
    order = np.argsort(-expected, kind="stable")
    assert [d.id for d in out] == [f"d{i}" for i in order]
    got = [d.metadata["relevance_score"] for d in out]
    np.testing.assert_allclose(got, expected[order], rtol=1e-5, atol=1e-6)
    assert all(-1.0 <= s <= 1.0 for s in got)
    assert [d.metadata["n"] for d in out] == [int(i) for i in order]


def test_top_n_and_inputs_untouched(text_encoder: MultiVectorEncoder, docs: list[Document]) -> None:
    reranker = MaxSimReranker(model=text_encoder, top_n=2)
    out = reranker.compress_documents(docs, QUERY)
    assert len(out) == 2
    assert all("relevance_score" not in d.metadata for d in docs)
    assert reranker.compress_documents([], QUERY) == []
    assert len(MaxSimReranker(model=text_encoder, top_n=10).compress_documents(docs, QUERY)) == 5


async def test_async_matches_sync(text_encoder: MultiVectorEncoder, docs: list[Document]) -> None:
    reranker = MaxSimReranker(model=text_encoder, top_n=3)
    assert await reranker.acompress_documents(docs, QUERY) == reranker.compress_documents(
        docs, QUERY
    )


def test_inside_contextual_compression_retriever(
    text_encoder: MultiVectorEncoder, docs: list[Document]
) -> None:
    store = InMemoryVectorStore(SauerkrautEmbeddings(text_encoder))
    store.add_documents(docs)
    retriever = ContextualCompressionRetriever(
        base_compressor=MaxSimReranker(model=text_encoder, top_n=2),
        base_retriever=store.as_retriever(search_kwargs={"k": 5}),
    )
    out = retriever.invoke(QUERY)
    expected = _reference(text_encoder)
    assert [d.id for d in out] == [f"d{i}" for i in np.argsort(-expected, kind="stable")[:2]]
    assert all("relevance_score" in d.metadata for d in out)


def test_bad_arguments(text_encoder: MultiVectorEncoder, page_encoder: MultiVectorEncoder) -> None:
    with pytest.raises(InvalidInputError, match="top_n"):
        MaxSimReranker(model=text_encoder, top_n=0)
    with pytest.raises(InvalidInputError, match="text model"):
        MaxSimReranker(model=page_encoder)
    with pytest.raises(InvalidInputTypeError, match="documents\\[1\\]"):
        MaxSimReranker(model=text_encoder).compress_documents(
            [Document(page_content="a"), "b"],  # type: ignore[list-item]
            QUERY,
        )


def test_loads_from_folder(tiny_colbert_dir: Path, docs: list[Document]) -> None:
    reranker = MaxSimReranker(model=str(tiny_colbert_dir), top_n=1)
    assert len(reranker.compress_documents(docs, QUERY)) == 1
