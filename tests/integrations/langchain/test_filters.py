"""The issue's filters that returned ``[]`` silently now find the matching documents.

A store is filled as a new user would: LangChain documents split with
``RecursiveCharacterTextSplitter(add_start_index=True)``, metadata ``source`` and
``lang``. Each filter is checked against the documents a plain Python scan of the stored
metadata selects, through ``similarity_search``, the retriever, async and MMR; the page
retriever gets the same checks on page metadata. Unknown operators raise ``FilterError``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.documents import Document
from langchain_text_splitters import RecursiveCharacterTextSplitter

from sauerkraut_rag import MultiVectorEncoder
from sauerkraut_rag.errors import FilterError
from sauerkraut_rag.integrations.langchain import SauerkrautVectorStore, VisualPageRetriever

QUERY = "Sauerkraut aus Kohl"
TEXTS = {
    ("a.txt", "de"): "Sauerkraut ist fermentierter Weißkohl. " * 40,
    ("b.txt", "en"): "Sauerkraut is fermented white cabbage. " * 40,
    ("c.txt", "de"): "Die Zugspitze ist 2962 Meter hoch. " * 40,
    ("d.txt", "fr"): "La choucroute est du chou fermenté. " * 40,
}
ISSUE_FILTERS: list[tuple[dict[str, Any], Callable[[dict[str, Any]], bool]]] = [
    ({"source": {"$in": ["a.txt", "b.txt"]}}, lambda m: m["source"] in ("a.txt", "b.txt")),
    ({"$or": [{"lang": "de"}, {"lang": "en"}]}, lambda m: m["lang"] in ("de", "en")),
    ({"start_index": {"$gt": 1000}}, lambda m: m["start_index"] > 1000),
]


@pytest.fixture(scope="module")
def store(text_encoder: MultiVectorEncoder) -> Iterator[SauerkrautVectorStore]:
    splitter = RecursiveCharacterTextSplitter(chunk_size=400, chunk_overlap=0, add_start_index=True)
    docs = splitter.split_documents(
        [
            Document(page_content=text, metadata={"source": source, "lang": lang})
            for (source, lang), text in TEXTS.items()
        ]
    )
    with SauerkrautVectorStore.from_documents(docs, text_encoder) as built:
        yield built


def _stored(store: SauerkrautVectorStore) -> dict[str, dict[str, Any]]:
    everything = store.similarity_search(QUERY, k=1000)
    return {doc.id: doc.metadata for doc in everything}


@pytest.mark.parametrize(("flt", "keep"), ISSUE_FILTERS, ids=["$in", "$or", "$gt"])
async def test_issue_filters_find_the_matching_documents(
    store: SauerkrautVectorStore, flt: dict[str, Any], keep: Callable[[dict[str, Any]], bool]
) -> None:
    stored = _stored(store)
    assert max(m["start_index"] for m in stored.values()) > 1000  # the splitter made offsets
    expected = {i for i, meta in stored.items() if keep(meta)}
    assert expected and expected != set(stored)
    k = len(stored)
    assert {d.id for d in store.similarity_search(QUERY, k=k, filter=flt)} == expected
    top3 = store.similarity_search(QUERY, k=3, filter=flt)  # the issue's call
    assert len(top3) == 3 and {d.id for d in top3} <= expected
    retriever = store.as_retriever(search_kwargs={"k": k, "filter": flt})
    assert {d.id for d in retriever.invoke(QUERY)} == expected
    assert {d.id for d in await store.asimilarity_search(QUERY, k=k, filter=flt)} == expected
    mmr = store.max_marginal_relevance_search(QUERY, k=3, fetch_k=k, filter=flt)
    assert len(mmr) == 3 and {d.id for d in mmr} <= expected


def test_unknown_operator_raises_even_on_an_empty_store(
    store: SauerkrautVectorStore, text_encoder: MultiVectorEncoder
) -> None:
    with pytest.raises(FilterError, match=r"'\$regex'.*\$in"):
        store.similarity_search(QUERY, k=3, filter={"source": {"$regex": "a.*"}})
    with (
        SauerkrautVectorStore(text_encoder) as empty,
        pytest.raises(FilterError, match=r"source\.name"),
    ):
        empty.similarity_search(QUERY, k=3, filter={"source": {"name": "a.txt"}})


@pytest.fixture(scope="module")
def pages(
    page_encoder: MultiVectorEncoder, sample_pdf: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[VisualPageRetriever]:
    folder = tmp_path_factory.mktemp("page-filters") / "index"
    with VisualPageRetriever.from_sources(sample_pdf, page_encoder, index_path=folder, dpi=36) as r:
        yield r


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        ({"page": {"$in": [1, 3]}}, {1, 3}),
        ({"$or": [{"page": 2}, {"page": 4}]}, {2, 4}),
        ({"page": {"$gt": 2}}, {3, 4}),
        ({"source": {"$like": "%report.pdf"}, "page": {"$lte": 2}}, {1, 2}),
    ],
)
def test_page_retriever_filters(
    pages: VisualPageRetriever, flt: dict[str, Any], expected: set[int]
) -> None:
    assert {d.metadata["page"] for d in pages.invoke("table", k=10, filter=flt)} == expected


def test_page_retriever_checks_filters_early(
    pages: VisualPageRetriever, page_encoder: MultiVectorEncoder
) -> None:
    with pytest.raises(FilterError, match=r"'\$near'"):
        pages.invoke("table", filter={"page": {"$near": 2}})
    with pytest.raises(FilterError, match="numbers only"):
        VisualPageRetriever(page_encoder, pages.index, filter={"page": {"$gt": "2"}})
    fixed = VisualPageRetriever(page_encoder, pages.index, filter={"page": {"$gte": 4}}, k=10)
    assert [d.metadata["page"] for d in fixed.invoke("table")] == [4]
