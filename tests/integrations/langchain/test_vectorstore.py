"""SauerkrautVectorStore beyond the standard suite: exact scores, filters, persistence, errors."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from langchain_core.documents import Document

from sauerkraut_rag import MultiVectorEncoder
from sauerkraut_rag.errors import InvalidInputError, InvalidInputTypeError
from sauerkraut_rag.integrations.langchain import SauerkrautEmbeddings, SauerkrautVectorStore
from sauerkraut_rag.retrievers.maxsim import maxsim

TEXTS = [
    "Die Zugspitze ist mit 2962 Metern der höchste Berg Deutschlands.",
    "Berlin is the capital of Germany.",
    "The Rhine flows through Basel, Strasbourg and Cologne.",
    "Sauerkraut is fermented cabbage.",
    "Munich hosts the Oktoberfest every year.",
    "Hamburg has a large harbour.",
]
LANGS = ["de", "en", "en", "en", "en", "en"]
QUERY = "Which city is the German capital?"


@pytest.fixture
def store(text_encoder: MultiVectorEncoder, tmp_path: Path) -> Iterator[SauerkrautVectorStore]:
    with SauerkrautVectorStore(text_encoder, tmp_path / "index") as vs:
        vs.add_texts(
            TEXTS,
            [{"lang": lang, "i": i} for i, lang in enumerate(LANGS)],
            ids=[f"t{i}" for i in range(len(TEXTS))],
        )
        yield vs


def _reference(encoder: MultiVectorEncoder, query: str, texts: list[str]) -> np.ndarray:
    q = encoder.encode_queries([query])
    return maxsim(q, encoder.encode_documents(texts))[0] / q[0].shape[0]


def test_scores_are_exact_normalised_maxsim(
    store: SauerkrautVectorStore, text_encoder: MultiVectorEncoder
) -> None:
    pairs = store.similarity_search_with_score(QUERY, k=len(TEXTS))
    expected = _reference(text_encoder, QUERY, TEXTS)
    order = np.argsort(-expected, kind="stable")
    assert [int(doc.metadata["i"]) for doc, _ in pairs] == [int(i) for i in order]
    # float16 token storage in the index: scores agree to ~1e-3
    np.testing.assert_allclose([s for _, s in pairs], expected[order], atol=2e-3)
    assert all(-1.0 <= s <= 1.0 for _, s in pairs)
    doc, _ = pairs[0]
    assert doc.id == f"t{doc.metadata['i']}" and doc.page_content == TEXTS[doc.metadata["i"]]


def test_relevance_scores_and_threshold(store: SauerkrautVectorStore) -> None:
    scored = store.similarity_search_with_score(QUERY, k=len(TEXTS))
    relevance = store.similarity_search_with_relevance_scores(QUERY, k=len(TEXTS))
    assert [d.id for d, _ in relevance] == [d.id for d, _ in scored]
    assert [r for _, r in relevance] == [min(1.0, max(0.0, s)) for _, s in scored]
    cut = scored[2][1]
    retriever = store.as_retriever(
        search_type="similarity_score_threshold",
        search_kwargs={"score_threshold": cut, "k": len(TEXTS)},
    )
    kept = retriever.invoke(QUERY)
    assert [d.id for d in kept] == [d.id for d, s in scored if s >= cut]
    assert len(kept) >= 3


def test_metadata_filter(store: SauerkrautVectorStore) -> None:
    hits = store.similarity_search(QUERY, k=5, filter={"lang": "de"})
    assert [d.id for d in hits] == ["t0"]
    hits = store.as_retriever(search_kwargs={"k": 10, "filter": {"lang": "en"}}).invoke(QUERY)
    assert sorted(d.id for d in hits) == ["t1", "t2", "t3", "t4", "t5"]
    assert store.similarity_search(QUERY, k=3, filter={"lang": "fr"}) == []
    odd = store.similarity_search(QUERY, k=10, filter=lambda meta: meta["i"] % 2 == 1)
    assert sorted(d.id for d in odd) == ["t1", "t3", "t5"]


def test_persistence_reopen(text_encoder: MultiVectorEncoder, tmp_path: Path) -> None:
    folder = tmp_path / "persisted"
    first = SauerkrautVectorStore.from_texts(TEXTS, text_encoder, index=folder)
    expected = first.similarity_search_with_score(QUERY, k=3)
    with SauerkrautVectorStore(text_encoder, folder, read_only=True) as reader:
        assert reader.similarity_search_with_score(QUERY, k=3) == expected
    first.close()
    with SauerkrautVectorStore(text_encoder, folder) as reopened:
        assert len(reopened) == len(TEXTS)
        assert reopened.similarity_search_with_score(QUERY, k=3) == expected
        reopened.add_texts(["Neu"], ids=["new"])
        assert len(reopened) == len(TEXTS) + 1


def test_from_texts_temporary_index_and_generated_ids(text_encoder: MultiVectorEncoder) -> None:
    store = SauerkrautVectorStore.from_texts(TEXTS[:2], SauerkrautEmbeddings(text_encoder))
    ids = [d.id for d in store.similarity_search(QUERY, k=2)]
    assert len(ids) == 2 and all(uuid.UUID(i).version == 4 for i in ids if i)


def test_from_documents_keeps_ids(text_encoder: MultiVectorEncoder) -> None:
    docs = [Document(page_content=t, id=f"x{i}") for i, t in enumerate(TEXTS[:3])]
    store = SauerkrautVectorStore.from_documents(docs, text_encoder)
    assert [d.id for d in store.get_by_ids(["x2", "missing", "x0"])] == ["x2", "x0"]


def test_embeddings_property(
    store: SauerkrautVectorStore, text_encoder: MultiVectorEncoder
) -> None:
    emb = store.embeddings
    assert isinstance(emb, SauerkrautEmbeddings) and emb.encoder is text_encoder
    np.testing.assert_array_equal(
        emb.embed_query_multi(QUERY), text_encoder.encode_queries([QUERY])[0]
    )


async def test_async_matches_sync(store: SauerkrautVectorStore) -> None:
    sync = store.similarity_search_with_score(QUERY, k=3, filter={"lang": "en"})
    assert await store.asimilarity_search_with_score(QUERY, k=3, filter={"lang": "en"}) == sync
    assert await store.asimilarity_search(QUERY, k=3, filter={"lang": "en"}) == [d for d, _ in sync]
    ids = await store.aadd_texts(["Neuschwanstein is a castle."], ids=["n"])
    assert ids == ["n"] and len(store) == len(TEXTS) + 1
    assert [d.id for d in await store.aget_by_ids(["n"])] == ["n"]
    await store.adelete(["n"])
    assert len(store) == len(TEXTS)


def test_bad_inputs(store: SauerkrautVectorStore, page_encoder: MultiVectorEncoder) -> None:
    with pytest.raises(InvalidInputError, match="metadata"):
        store.add_texts(["a", "b"], [{}])
    with pytest.raises(InvalidInputError, match="more than once"):
        store.add_texts(["a", "b"], ids=["same", "same"])
    with pytest.raises(InvalidInputTypeError, match="JSON"):
        store.add_texts(["a"], [{"bad": object()}])
    with pytest.raises(InvalidInputTypeError, match="single str"):
        store.add_texts("abc")
    with pytest.raises(InvalidInputError, match="k >= 1"):
        store.similarity_search(QUERY, k=0)
    with pytest.raises(InvalidInputError, match="ids"):
        store.delete(None)
    with pytest.raises(InvalidInputError, match="text model"):
        SauerkrautVectorStore(page_encoder)
    with pytest.raises(InvalidInputTypeError, match="token vectors"):
        SauerkrautVectorStore.from_texts(["a"], embedding=object())  # type: ignore[arg-type]
    assert len(store) == len(TEXTS)


def _reference_mmr(
    encoder: MultiVectorEncoder, query: str, texts: list[str], k: int, lam: float
) -> list[int]:
    """Textbook MMR with plain loops over brute-force MaxSim (independent of the store)."""
    q = encoder.encode_queries([query])
    docs = encoder.encode_documents(texts)
    rel = maxsim(q, docs)[0] / q[0].shape[0]
    raw = maxsim(docs, docs)
    sim = [
        [(raw[i, j] / len(docs[i]) + raw[j, i] / len(docs[j])) / 2 for j in range(len(docs))]
        for i in range(len(docs))
    ]
    picked: list[int] = []
    by_relevance = [int(i) for i in np.argsort(-rel, kind="stable")]  # ties: most relevant
    while len(picked) < min(k, len(texts)):
        best, best_score = -1, -np.inf
        for i in by_relevance:
            if i in picked:
                continue
            penalty = max((sim[i][j] for j in picked), default=0.0)
            score = lam * rel[i] - (1 - lam) * penalty
            if score > best_score + 1e-6:
                best, best_score = i, score
        picked.append(best)
    return picked


@pytest.mark.parametrize("lam", [0.0, 0.3, 0.7, 1.0])
def test_mmr_matches_reference(
    store: SauerkrautVectorStore, text_encoder: MultiVectorEncoder, lam: float
) -> None:
    got = store.max_marginal_relevance_search(QUERY, k=4, fetch_k=6, lambda_mult=lam)
    expected = _reference_mmr(text_encoder, QUERY, TEXTS, 4, lam)
    assert [int(d.metadata["i"]) for d in got] == expected
    if lam == 1.0:
        assert got == store.similarity_search(QUERY, k=4)


def test_mmr_skips_an_exact_duplicate(text_encoder: MultiVectorEncoder) -> None:
    copy = "Berlin is the capital of Germany."
    texts = [copy, copy, *TEXTS[2:]]
    with SauerkrautVectorStore.from_texts(
        texts, text_encoder, ids=["a", "b", "c", "d", "e", "f"]
    ) as vs:
        top = vs.similarity_search_with_score(copy, k=2)
        assert sorted(d.id for d, _ in top) == ["a", "b"]  # the copies rank first...
        assert top[0][1] == pytest.approx(top[1][1])  # ...with equal scores
        diverse = vs.max_marginal_relevance_search(copy, k=2, fetch_k=6, lambda_mult=0.5)
        assert diverse[0].id == top[0][0].id and diverse[1].id not in ("a", "b")
        search = {"k": 2, "fetch_k": 6, "lambda_mult": 0.5}
        assert vs.as_retriever(search_type="mmr", search_kwargs=search).invoke(copy) == diverse
        with pytest.raises(InvalidInputError, match="lambda_mult"):
            vs.max_marginal_relevance_search(copy, lambda_mult=1.5)
