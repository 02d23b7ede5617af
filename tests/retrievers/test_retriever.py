"""MultiVectorRetriever with a deterministic fake encoder over a real VoyagerIndex."""

from __future__ import annotations

import numpy as np
import pytest

from sauerkraut_rag.errors import (
    DimensionMismatchError,
    DuplicateIdError,
    InvalidInputError,
    InvalidInputTypeError,
)
from sauerkraut_rag.retrievers.retriever import MultiVectorRetriever
from sauerkraut_rag.retrievers.voyager.index import VoyagerIndex
from tests.retrievers.helpers import FakeEncoder, brute_maxsim

TEXTS = [
    "sauerkraut is fermented cabbage",
    "kimchi is fermented cabbage with chili",
    "pretzels are baked bread",
    "beer is brewed from barley",
    "cabbage soup with potatoes",
]


@pytest.fixture
def retriever(tmp_path):
    encoder = FakeEncoder(dim=16)
    with VoyagerIndex.create(tmp_path / "idx", dim=16) as index:
        yield MultiVectorRetriever(encoder, index)


def test_add_and_search_rank_by_maxsim(retriever):
    ids = retriever.add_documents(
        TEXTS, ids=[f"t{i}" for i in range(5)], metadatas=[{"i": i} for i in range(5)]
    )
    assert ids == [f"t{i}" for i in range(5)]
    hits = retriever.search("fermented cabbage", k=3)
    encoder = retriever.encoder
    query = encoder._encode("fermented cabbage")
    expected = sorted(
        (
            (f"t{i}", brute_maxsim(query, encoder._encode(t).astype(np.float16)))
            for i, t in enumerate(TEXTS)
        ),
        key=lambda item: -item[1],
    )[:3]
    np.testing.assert_allclose([h.score for h in hits], [s for _, s in expected], atol=1e-3)
    assert {h.id for h in hits[:2]} == {"t0", "t1"}  # both share both query words
    assert hits[0].payload in TEXTS[:2] and hits[0].metadata["i"] in (0, 1)


def test_default_ids_payloads_and_batch_search(retriever):
    ids = retriever.add_documents(TEXTS)
    assert len(set(ids)) == 5 and all(len(i) == 32 for i in ids)
    batch = retriever.search_batch(["beer barley", "baked bread"], k=1)
    assert [hits[0].payload for hits in batch] == [TEXTS[3], TEXTS[2]]
    assert retriever.search_batch([], k=2) == []


def test_filter_and_upsert_and_delete(retriever):
    retriever.add_documents(
        TEXTS, ids=list("abcde"), metadatas=[{"food": i != 3} for i in range(5)]
    )
    hits = retriever.search("beer brewed from barley", k=5, filter={"food": True})
    assert len(hits) == 4 and "d" not in {h.id for h in hits}
    encoded = [c for c in retriever.encoder.calls if c[0] == "documents"]
    with pytest.raises(DuplicateIdError, match="upsert=True"):
        retriever.add_documents(["new text"], ids=["a"])
    # rejected before the (slow) encoding
    assert [c for c in retriever.encoder.calls if c[0] == "documents"] == encoded
    retriever.add_documents(["beer again"], ids=["a"], upsert=True)
    assert retriever.search("beer again", k=1)[0].id == "a"
    assert retriever.delete(["a", "zzz"]) == 1
    assert len(retriever.index) == 4


def test_rerank_with_own_candidates(retriever):
    encoder = retriever.encoder
    candidates = [(f"c{i}", encoder._encode(t)) for i, t in enumerate(TEXTS)]
    hits = retriever.rerank("brewed barley", candidates, top_n=2)
    assert hits[0].id == "c3"  # shares both words
    query = encoder._encode("brewed barley")
    for hit in hits:
        idx = int(hit.id[1:])
        assert abs(hit.score - brute_maxsim(query, encoder._encode(TEXTS[idx]))) < 1e-4
    assert len(retriever.rerank("brewed barley", candidates)) == 5
    assert retriever.rerank("x", []) == []


def test_rerank_documents_maps_back_to_input(retriever):
    hits = retriever.rerank_documents(
        "potatoes soup", TEXTS, top_n=2, metadatas=[{"i": i} for i in range(5)]
    )
    assert hits[0].id == "4" and hits[0].payload == TEXTS[4] and hits[0].metadata == {"i": 4}
    assert len(hits) == 2


def test_errors(retriever, tmp_path):
    with pytest.raises(InvalidInputTypeError, match="search_batch"):
        retriever.search(["a list"])  # type: ignore[arg-type]
    with pytest.raises(InvalidInputTypeError, match="search\\(\\)"):
        retriever.search_batch("one string")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="k >= 1"):
        retriever.search("x", k=0)
    with pytest.raises(InvalidInputError, match="one id per document"):
        retriever.add_documents(TEXTS, ids=["a"])
    with pytest.raises(InvalidInputError, match="at least one token"):
        retriever.add_documents(["   "])
    assert len(retriever.index) == 0
    with pytest.raises(InvalidInputTypeError, match="rerank_documents"):
        retriever.rerank("x", ["just text"])  # type: ignore[list-item]
    with pytest.raises(DimensionMismatchError, match="dim 8"):
        MultiVectorRetriever(FakeEncoder(dim=8), retriever.index)
    with pytest.raises(InvalidInputTypeError, match="MultiVectorIndex"):
        MultiVectorRetriever(FakeEncoder(dim=16), object())  # type: ignore[arg-type]
    with pytest.raises(InvalidInputTypeError, match="MultiVectorEncoder"):
        MultiVectorRetriever(object(), retriever.index)
