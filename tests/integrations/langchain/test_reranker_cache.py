"""MaxSimReranker's document cache: repeated candidates are not encoded again, scores stay
identical, changed texts are encoded, ``cache=False`` encodes every time."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.documents import Document

from sauerkraut_rag import MultiVectorEncoder
from sauerkraut_rag.encoders.document_cache import DocumentCache, default_document_cache
from sauerkraut_rag.errors import InvalidInputTypeError
from sauerkraut_rag.integrations.langchain import MaxSimReranker

TEXTS = ["Sauerkraut is fermented cabbage.", "The Zugspitze is 2962 m high.", "Berlin."]


@pytest.fixture
def encoded(text_encoder: MultiVectorEncoder, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every document the encoder is asked to encode."""
    seen: list[Any] = []
    original = text_encoder.encode_documents

    def spy(items: Any, **kwargs: Any) -> Any:
        seen.extend(items)
        return original(items, **kwargs)

    monkeypatch.setattr(text_encoder, "encode_documents", spy)
    return seen


def _docs(texts: list[str]) -> list[Document]:
    return [Document(page_content=t, id=f"d{i}") for i, t in enumerate(texts)]


def _scores(out: list[Document]) -> dict[str, float]:
    return {d.page_content: d.metadata["relevance_score"] for d in out}


def test_repeated_candidates_come_from_the_cache(
    text_encoder: MultiVectorEncoder, encoded: list[Any]
) -> None:
    reranker = MaxSimReranker(text_encoder, top_n=None, cache=DocumentCache())
    first = _scores(reranker.compress_documents(_docs(TEXTS), "cabbage"))
    assert encoded == TEXTS
    again = _scores(reranker.compress_documents(_docs(TEXTS[::-1]), "mountain"))
    assert encoded == TEXTS  # nothing encoded again, another query
    same = _scores(reranker.compress_documents(_docs(TEXTS), "cabbage"))
    assert same == first  # identical scores from cached vectors
    assert set(again) == set(TEXTS)
    reranker.compress_documents(_docs([*TEXTS, "A new chunk."]), "cabbage")
    assert encoded == [*TEXTS, "A new chunk."]  # only the new text
    stats = reranker.cache.stats()
    assert stats.misses == 4 and stats.hits == 9


def test_uncached_reranker_encodes_every_time(
    text_encoder: MultiVectorEncoder, encoded: list[Any]
) -> None:
    reranker = MaxSimReranker(text_encoder, top_n=2, cache=False)
    assert reranker.cache is None
    uncached = _scores(reranker.compress_documents(_docs(TEXTS), "cabbage"))
    reranker.compress_documents(_docs(TEXTS), "cabbage")
    assert encoded == TEXTS + TEXTS
    cached = MaxSimReranker(text_encoder, top_n=2, cache=DocumentCache())
    assert _scores(cached.compress_documents(_docs(TEXTS), "cabbage")) == uncached


def test_default_is_the_shared_cache(text_encoder: MultiVectorEncoder) -> None:
    assert MaxSimReranker(text_encoder).cache is default_document_cache()
    with pytest.raises(InvalidInputTypeError, match="DocumentCache"):
        MaxSimReranker(text_encoder, cache="memory")
