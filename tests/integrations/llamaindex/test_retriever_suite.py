"""Parametrised conformance suite for both LlamaIndex retrievers (LlamaIndex has none).

Every check runs on the text retriever (tiny ColBERT, 7 nodes) and the page retriever
(tiny ColLFM2, a generated 3-page PDF), against a brute-force MaxSim reference.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from llama_index.core.instrumentation.events import BaseEvent
from llama_index.core.instrumentation.events.retrieval import (
    RetrievalEndEvent,
    RetrievalStartEvent,
)
from llama_index.core.schema import ImageNode, MetadataMode, NodeWithScore, QueryBundle, TextNode

from sauerkraut_rag.documents.pages import iter_pages
from sauerkraut_rag.errors import InvalidInputError
from sauerkraut_rag.integrations.llamaindex import SauerkrautPageRetriever, SauerkrautRetriever
from sauerkraut_rag.retrievers.maxsim import maxsim
from tests.integrations.llamaindex.conftest import DPI


@dataclass
class Case:
    """A populated retriever plus a brute-force reference ranking."""

    retriever: SauerkrautRetriever | SauerkrautPageRetriever
    size: int
    query: str
    node_type: type
    key: Callable[[NodeWithScore], Any]
    reference: dict[Any, float]  # key -> MaxSim / n_query_tokens
    rebuild: Callable[[], Any]  # a fresh retriever on the same index folder


def _reference(encoder: Any, query: str, documents: list[Any], keys: list[Any]) -> dict:
    q = encoder.encode_queries([query])[0]
    scores = maxsim([q], encoder.encode_documents(documents))[0] / q.shape[0]
    return dict(zip(keys, scores.tolist(), strict=True))


def _text_case(request: pytest.FixtureRequest, folder: Path) -> Case:
    encoder = request.getfixturevalue("text_encoder")
    nodes = request.getfixturevalue("text_nodes")
    retriever = SauerkrautRetriever.from_nodes(nodes, encoder, folder, similarity_top_k=2)
    query = "Which mountain is the highest in Germany?"
    texts = [node.get_content(metadata_mode=MetadataMode.EMBED) for node in nodes]
    return Case(
        retriever=retriever,
        size=len(nodes),
        query=query,
        node_type=TextNode,
        key=lambda scored: scored.node.node_id,
        reference=_reference(encoder, query, texts, [node.node_id for node in nodes]),
        rebuild=lambda: SauerkrautRetriever(encoder, folder, similarity_top_k=2),
    )


def _page_case(request: pytest.FixtureRequest, folder: Path) -> Case:
    encoder = request.getfixturevalue("page_encoder")
    pdf = request.getfixturevalue("pdf_path")
    retriever = SauerkrautPageRetriever.from_sources(
        pdf, encoder, folder, dpi=DPI, similarity_top_k=2
    )
    query = "hydraulic press safety"
    pages = list(iter_pages(pdf, dpi=DPI))
    return Case(
        retriever=retriever,
        size=len(pages),
        query=query,
        node_type=ImageNode,
        key=lambda scored: scored.node.metadata["page"],
        reference=_reference(
            encoder, query, [page.image for page in pages], [page.page_number for page in pages]
        ),
        rebuild=lambda: SauerkrautPageRetriever(encoder, folder, similarity_top_k=2),
    )


@pytest.fixture(params=["text", "pages"])
def case(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Case]:
    build = _text_case if request.param == "text" else _page_case
    built = build(request, tmp_path / "index")
    yield built
    built.retriever.close()


def _summary(results: list[NodeWithScore], case: Case) -> list[tuple[Any, float]]:
    return [(case.key(scored), round(float(scored.score), 5)) for scored in results]


@pytest.mark.parametrize("k_offset", [-100, -1, 0, 3], ids=["k1", "size-1", "size", "size+3"])
def test_exact_count_sync_and_async(case: Case, k_offset: int) -> None:
    k = max(1, case.size + k_offset)
    case.retriever.similarity_top_k = k
    expected = min(k, case.size)
    assert len(case.retriever.retrieve(case.query)) == expected
    assert len(asyncio.run(case.retriever.aretrieve(case.query))) == expected


def test_default_top_k_is_respected(case: Case) -> None:
    assert len(case.retriever.retrieve(case.query)) == 2


def test_scores_match_brute_force_maxsim(case: Case) -> None:
    case.retriever.similarity_top_k = case.size
    results = case.retriever.retrieve(case.query)
    assert sorted(case.key(r) for r in results) == sorted(case.reference)
    got = np.array([r.score for r in results])
    assert np.all(np.diff(got) <= 1e-6), "results must be sorted best first"
    want = np.array([case.reference[case.key(r)] for r in results])
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(got, sorted(case.reference.values(), reverse=True), atol=1e-4)


def test_sync_async_parity(case: Case) -> None:
    sync = _summary(case.retriever.retrieve(case.query), case)

    async def run_three() -> list[list[NodeWithScore]]:
        return await asyncio.gather(*(case.retriever.aretrieve(case.query) for _ in range(3)))

    for result in asyncio.run(run_three()):
        assert _summary(result, case) == sync


def test_aretrieve_runs_model_off_the_event_loop(
    case: Case, monkeypatch: pytest.MonkeyPatch
) -> None:
    encoder = case.retriever.encoder
    original = encoder.encode_queries
    threads: list[int] = []

    def spy(*args: Any, **kwargs: Any) -> Any:
        threads.append(threading.get_ident())
        return original(*args, **kwargs)

    monkeypatch.setattr(encoder, "encode_queries", spy)

    async def main() -> int:
        await case.retriever.aretrieve(case.query)
        return threading.get_ident()

    loop_thread = asyncio.run(main())
    assert threads and all(t != loop_thread for t in threads)


def test_query_bundle_and_string_agree(case: Case) -> None:
    by_bundle = case.retriever.retrieve(QueryBundle(case.query))
    assert _summary(by_bundle, case) == _summary(case.retriever.retrieve(case.query), case)


def test_node_type_and_ids(case: Case) -> None:
    results = case.retriever.retrieve(case.query)
    assert all(type(r.node) is case.node_type for r in results)
    assert len({r.node.node_id for r in results}) == len(results)


def test_reopened_index_gives_same_results(case: Case) -> None:
    before = _summary(case.retriever.retrieve(case.query), case)
    case.retriever.close()
    with case.rebuild() as reopened:
        assert len(reopened) == case.size
        assert _summary(reopened.retrieve(case.query), case) == before


@pytest.mark.parametrize("query", ["", "   "])
def test_empty_query_is_rejected(case: Case, query: str) -> None:
    with pytest.raises(InvalidInputError, match="query_str"):
        case.retriever.retrieve(QueryBundle(query))


@pytest.mark.parametrize("k", [0, -1])
def test_bad_top_k_is_rejected(case: Case, k: int) -> None:
    cls = type(case.retriever)
    with pytest.raises(InvalidInputError, match="similarity_top_k"):
        cls(case.retriever.encoder, case.retriever.index, similarity_top_k=k)


def test_retrieval_events_sync_and_async(case: Case, recorded_events: list[BaseEvent]) -> None:
    sync = case.retriever.retrieve(case.query)
    asynchronous = asyncio.run(case.retriever.aretrieve(case.query))
    starts = [e for e in recorded_events if isinstance(e, RetrievalStartEvent)]
    ends = [e for e in recorded_events if isinstance(e, RetrievalEndEvent)]
    assert [e.str_or_query_bundle for e in starts] == [case.query, case.query]
    assert [_summary(e.nodes, case) for e in ends] == [
        _summary(sync, case),
        _summary(asynchronous, case),
    ]
