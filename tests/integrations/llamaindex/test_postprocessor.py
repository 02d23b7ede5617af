"""MaxSimRerank: exact MaxSim order, counts, retrieval scores, events, images, async."""

from __future__ import annotations

import asyncio
import base64
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from llama_index.core.instrumentation.events import BaseEvent
from llama_index.core.instrumentation.events.rerank import ReRankEndEvent, ReRankStartEvent
from llama_index.core.schema import ImageNode, MetadataMode, NodeWithScore, QueryBundle, TextNode

from sauerkraut_rag import MultiVectorEncoder
from sauerkraut_rag.documents.pages import iter_pages, save_page_image
from sauerkraut_rag.errors import InvalidInputError, InvalidInputTypeError
from sauerkraut_rag.integrations.llamaindex import MaxSimRerank
from sauerkraut_rag.retrievers.maxsim import maxsim
from tests.integrations.llamaindex.conftest import DPI, TEXTS

QUERY = "fermented cabbage"


@pytest.fixture(scope="module")
def page_files(pdf_path: Path, tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    folder = tmp_path_factory.mktemp("li-rerank-pages")
    return [str(save_page_image(page, folder)) for page in iter_pages(pdf_path, dpi=DPI)]


def _scored_text_nodes() -> list[NodeWithScore]:
    return [
        NodeWithScore(node=TextNode(id_=f"t{i}", text=text, metadata={"i": i}), score=i / 10)
        for i, text in enumerate(TEXTS)
    ]


def _reference(encoder: MultiVectorEncoder, query: str, documents: list[Any]) -> np.ndarray:
    q = encoder.encode_queries([query])[0]
    return maxsim([q], encoder.encode_documents(documents))[0] / q.shape[0]


def _ranking(results: list[NodeWithScore]) -> list[tuple[str, float]]:
    return [(r.node.node_id, round(float(r.score), 5)) for r in results]


@pytest.mark.parametrize("top_n", [1, 3, 7, 20])
def test_text_rerank_matches_brute_force_and_counts(
    text_encoder: MultiVectorEncoder, top_n: int
) -> None:
    nodes = _scored_text_nodes()
    reranker = MaxSimRerank(text_encoder=text_encoder, top_n=top_n)
    results = reranker.postprocess_nodes(nodes, query_str=QUERY)
    assert len(results) == min(top_n, len(nodes))
    texts = [n.node.get_content(metadata_mode=MetadataMode.EMBED) for n in nodes]
    reference = _reference(text_encoder, QUERY, texts)
    want = sorted(reference.tolist(), reverse=True)[: len(results)]
    np.testing.assert_allclose([r.score for r in results], want, rtol=1e-4, atol=1e-4)
    for scored in results:
        position = int(scored.node.node_id[1:])
        assert scored.score == pytest.approx(reference[position], rel=1e-4, abs=1e-4)


def test_keep_retrieval_score_copies_nodes(text_encoder: MultiVectorEncoder) -> None:
    nodes = _scored_text_nodes()
    results = MaxSimRerank(text_encoder, top_n=7, keep_retrieval_score=True).postprocess_nodes(
        nodes, query_str=QUERY
    )
    for scored in results:
        position = int(scored.node.node_id[1:])
        assert scored.node.metadata == {"i": position, "retrieval_score": position / 10}
        assert "retrieval_score" not in scored.node.get_content(MetadataMode.EMBED)
        assert "retrieval_score" not in scored.node.get_content(MetadataMode.LLM)
    assert all("retrieval_score" not in n.node.metadata for n in nodes)  # inputs untouched
    again = MaxSimRerank(text_encoder, top_n=7).postprocess_nodes(results, query_str=QUERY)
    assert _ranking(again) == _ranking(results)  # the stored score does not change the text


def test_without_keep_retrieval_score_metadata_is_unchanged(
    text_encoder: MultiVectorEncoder,
) -> None:
    results = MaxSimRerank(text_encoder, top_n=2).postprocess_nodes(
        _scored_text_nodes(), query_str=QUERY
    )
    assert all(set(r.node.metadata) == {"i"} for r in results)


def test_events_are_emitted(
    text_encoder: MultiVectorEncoder, recorded_events: list[BaseEvent]
) -> None:
    nodes = _scored_text_nodes()
    bundle = QueryBundle(QUERY)
    results = MaxSimRerank(text_encoder, top_n=2).postprocess_nodes(nodes, query_bundle=bundle)
    starts = [e for e in recorded_events if isinstance(e, ReRankStartEvent)]
    ends = [e for e in recorded_events if isinstance(e, ReRankEndEvent)]
    assert len(starts) == len(ends) == 1
    assert starts[0].top_n == 2 and starts[0].model_name == text_encoder.name
    assert starts[0].query == bundle and len(starts[0].nodes) == len(nodes)
    assert _ranking(ends[0].nodes) == _ranking(results)
    assert recorded_events.index(starts[0]) < recorded_events.index(ends[0])


def test_async_parity_and_runs_off_the_loop(
    text_encoder: MultiVectorEncoder,
    monkeypatch: pytest.MonkeyPatch,
    recorded_events: list[BaseEvent],
) -> None:
    reranker = MaxSimRerank(text_encoder, top_n=4)
    sync = _ranking(reranker.postprocess_nodes(_scored_text_nodes(), query_str=QUERY))
    threads: list[int] = []

    def spy_on(name: str) -> None:
        original = getattr(text_encoder, name)

        def spy(*args: Any, **kwargs: Any) -> Any:
            threads.append(threading.get_ident())
            return original(*args, **kwargs)

        monkeypatch.setattr(text_encoder, name, spy)

    # documents come from the reranker's cache by now; the query is encoded on every call
    spy_on("encode_queries")
    spy_on("encode_documents")

    async def main() -> tuple[list[list[NodeWithScore]], int]:
        runs = await asyncio.gather(
            *(reranker.apostprocess_nodes(_scored_text_nodes(), query_str=QUERY) for _ in range(2))
        )
        return runs, threading.get_ident()

    runs, loop_thread = asyncio.run(main())
    assert all(_ranking(run) == sync for run in runs)
    assert threads and loop_thread not in threads
    assert sum(isinstance(e, ReRankEndEvent) for e in recorded_events) == 3


def test_image_nodes_use_the_page_model(
    page_encoder: MultiVectorEncoder, page_files: list[str]
) -> None:
    raw = Path(page_files[1]).read_bytes()
    nodes = [
        NodeWithScore(node=ImageNode(id_="by-path", image_path=page_files[0]), score=0.0),
        NodeWithScore(
            node=ImageNode(id_="by-data", image=base64.b64encode(raw).decode()), score=0.0
        ),
        NodeWithScore(
            node=TextNode(id_="by-meta", metadata={"file_path": page_files[2]}), score=0.0
        ),
    ]
    results = MaxSimRerank(page_encoder=page_encoder, top_n=3).postprocess_nodes(
        nodes, query_str=QUERY
    )
    reference = dict(
        zip(
            ["by-path", "by-data", "by-meta"],
            _reference(page_encoder, QUERY, page_files),
            strict=True,
        )
    )
    assert len(results) == 3
    for scored in results:
        assert scored.score == pytest.approx(reference[scored.node.node_id], rel=1e-4, abs=1e-4)


def test_mixed_text_and_image_nodes(
    text_encoder: MultiVectorEncoder, page_encoder: MultiVectorEncoder, page_files: list[str]
) -> None:
    nodes = _scored_text_nodes()[:3] + [
        NodeWithScore(node=ImageNode(id_=f"p{i}", image_path=path), score=None)
        for i, path in enumerate(page_files)
    ]
    reranker = MaxSimRerank(text_encoder, page_encoder, top_n=6)
    assert reranker.model == f"{text_encoder.name} + {page_encoder.name}"
    results = reranker.postprocess_nodes(nodes, query_str=QUERY)
    text_ref = _reference(
        text_encoder, QUERY, [n.node.get_content(MetadataMode.EMBED) for n in nodes[:3]]
    )
    page_ref = _reference(page_encoder, QUERY, page_files)
    expected = {f"t{i}": s for i, s in enumerate(text_ref)} | {
        f"p{i}": s for i, s in enumerate(page_ref)
    }
    assert {r.node.node_id for r in results} == set(expected)
    for scored in results:
        assert scored.score == pytest.approx(expected[scored.node.node_id], rel=1e-4, abs=1e-4)
    # the two models' scores are not on one scale: each modality is sorted on its own and
    # the rankings interleave (issue 15; test_mixed_rerank.py checks the merge rule)
    for kind in ("t", "p"):
        own = [r.score for r in results if r.node.node_id.startswith(kind)]
        assert own == sorted(own, reverse=True)


def test_text_file_path_metadata_stays_text(text_encoder: MultiVectorEncoder) -> None:
    node = TextNode(id_="pdf-text", text="Sauerkraut facts", metadata={"file_path": "notes.pdf"})
    (result,) = MaxSimRerank(text_encoder).postprocess_nodes(
        [NodeWithScore(node=node, score=1.0)], query_str=QUERY
    )
    expected = _reference(text_encoder, QUERY, [node.get_content(MetadataMode.EMBED)])[0]
    assert result.score == pytest.approx(expected, rel=1e-4, abs=1e-4)


def test_empty_input_gives_empty_output(text_encoder: MultiVectorEncoder) -> None:
    assert MaxSimRerank(text_encoder).postprocess_nodes([], query_str=QUERY) == []


def test_errors_are_typed_and_helpful(
    text_encoder: MultiVectorEncoder, page_encoder: MultiVectorEncoder, page_files: list[str]
) -> None:
    with pytest.raises(InvalidInputError, match="neither"):
        MaxSimRerank()
    with pytest.raises(InvalidInputError, match="image model"):
        MaxSimRerank(page_encoder=text_encoder)
    with pytest.raises(InvalidInputError, match="text model"):
        MaxSimRerank(text_encoder=page_encoder)
    with pytest.raises(InvalidInputError, match="top_n"):
        MaxSimRerank(text_encoder, top_n=0)
    reranker = MaxSimRerank(text_encoder)
    image = NodeWithScore(node=ImageNode(image_path=page_files[0]))
    with pytest.raises(InvalidInputError, match="page_encoder"):
        reranker.postprocess_nodes([image], query_str=QUERY)
    with pytest.raises(InvalidInputError, match="query"):
        reranker.postprocess_nodes(_scored_text_nodes())
    with pytest.raises(InvalidInputTypeError, match="NodeWithScore"):
        reranker.postprocess_nodes([TextNode(text="x")], query_str=QUERY)  # type: ignore[list-item]
    url_only = NodeWithScore(node=ImageNode(image_url="https://example.com/p.png"))
    with pytest.raises(InvalidInputError, match="never fetched"):
        MaxSimRerank(page_encoder=page_encoder).postprocess_nodes([url_only], query_str=QUERY)
