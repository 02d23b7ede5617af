"""Async methods run the model in a worker thread (the event loop never encodes)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.documents import Document

from sauerkraut_rag import MultiVectorEncoder
from sauerkraut_rag.integrations.langchain import (
    MaxSimReranker,
    SauerkrautEmbeddings,
    SauerkrautVectorStore,
    VisualPageRetriever,
)

TEXTS = ["Berlin ist die Hauptstadt.", "Die Zugspitze ist hoch.", "Paris is in France."]


@pytest.fixture
def encoding_threads(
    monkeypatch: pytest.MonkeyPatch, text_encoder: MultiVectorEncoder, page_encoder: Any
) -> Iterator[list[threading.Thread]]:
    """Records the thread of every encoder call (text and page model)."""
    seen: list[threading.Thread] = []
    for encoder in (text_encoder, page_encoder):
        for name in ("encode_queries", "encode_documents"):
            original = getattr(encoder, name)

            def spy(*args: Any, _original: Any = original, **kwargs: Any) -> Any:
                seen.append(threading.current_thread())
                return _original(*args, **kwargs)

            monkeypatch.setattr(encoder, name, spy)
    yield seen


async def test_model_never_runs_on_the_event_loop_thread(
    encoding_threads: list[threading.Thread],
    text_encoder: MultiVectorEncoder,
    page_encoder: MultiVectorEncoder,
    sample_pdf: Path,
    tmp_path: Path,
) -> None:
    loop_thread = threading.current_thread()
    pages = VisualPageRetriever.from_sources(sample_pdf, page_encoder, dpi=36)
    encoding_threads.clear()  # ingestion above ran synchronously on purpose
    store = await SauerkrautVectorStore.afrom_texts(TEXTS, text_encoder, ids=["a", "b", "c"])
    await store.aadd_documents([Document(page_content="Neu", id="d")])
    await store.asimilarity_search("Hauptstadt", k=2)
    await store.asimilarity_search_with_relevance_scores("Hauptstadt", k=2)
    await store.amax_marginal_relevance_search("Hauptstadt", k=2)
    await store.as_retriever().ainvoke("Hauptstadt")
    embeddings = SauerkrautEmbeddings(text_encoder)
    await embeddings.aembed_query("frage")
    await embeddings.aembed_documents(TEXTS)
    await MaxSimReranker(text_encoder).acompress_documents(
        [Document(page_content=t) for t in TEXTS], "frage"
    )
    await pages.ainvoke("budget")
    assert len(encoding_threads) >= 10, "an async method did not call the model"
    store.close()
    pages.close()
    assert all(thread is not loop_thread for thread in encoding_threads)


async def test_concurrent_async_searches_match_sync(text_encoder: MultiVectorEncoder) -> None:
    with SauerkrautVectorStore.from_texts(TEXTS, text_encoder, ids=["a", "b", "c"]) as store:
        queries = ["Hauptstadt", "Berg", "Frankreich", "Berlin"] * 3
        results = await asyncio.gather(
            *(store.asimilarity_search_with_score(q, k=2) for q in queries)
        )
        assert results == [store.similarity_search_with_score(q, k=2) for q in queries]


async def test_afrom_documents_keeps_ids(text_encoder: MultiVectorEncoder) -> None:
    docs = [Document(page_content=t, id=f"x{i}") for i, t in enumerate(TEXTS)]
    with await SauerkrautVectorStore.afrom_documents(docs, text_encoder) as store:
        assert sorted(d.id for d in await store.aget_by_ids(["x0", "x2"])) == ["x0", "x2"]
