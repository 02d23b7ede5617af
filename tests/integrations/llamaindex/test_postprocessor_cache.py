"""MaxSimRerank's document cache: text and image nodes seen before are not encoded again
(an image by path or by the same bytes), scores stay identical; ``cache=False`` encodes."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
from llama_index.core.schema import ImageNode, NodeWithScore, TextNode

from sauerkraut_rag import MultiVectorEncoder
from sauerkraut_rag.documents.pages import iter_pages, save_page_image
from sauerkraut_rag.encoders.document_cache import DocumentCache
from sauerkraut_rag.integrations.llamaindex import MaxSimRerank
from tests.integrations.llamaindex.conftest import DPI, TEXTS


def _spy(encoder: MultiVectorEncoder, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    seen: list[Any] = []
    original = encoder.encode_documents

    def spy(items: Any, **kwargs: Any) -> Any:
        seen.extend(items)
        return original(items, **kwargs)

    monkeypatch.setattr(encoder, "encode_documents", spy)
    return seen


@pytest.fixture
def page_files(pdf_path: Path, tmp_path: Path) -> list[str]:
    return [str(save_page_image(page, tmp_path)) for page in iter_pages(pdf_path, dpi=DPI)][:2]


def _scores(results: list[NodeWithScore]) -> dict[str, float]:
    return {r.node.node_id: r.score for r in results}


def test_text_nodes_are_encoded_once(
    text_encoder: MultiVectorEncoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = _spy(text_encoder, monkeypatch)
    reranker = MaxSimRerank(text_encoder, top_n=10, cache=DocumentCache())
    nodes = [NodeWithScore(node=TextNode(id_=f"t{i}", text=t)) for i, t in enumerate(TEXTS)]
    first = _scores(reranker.postprocess_nodes(nodes, query_str="cabbage"))
    n = len(seen)
    assert n == len(TEXTS)
    second = _scores(reranker.postprocess_nodes(nodes[::-1], query_str="cabbage"))
    assert len(seen) == n and second == first
    plain = MaxSimRerank(text_encoder, top_n=10, cache=False)
    assert _scores(plain.postprocess_nodes(nodes, query_str="cabbage")) == first
    assert len(seen) == 2 * n


def test_image_nodes_hit_by_path_and_by_bytes(
    page_encoder: MultiVectorEncoder, page_files: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = _spy(page_encoder, monkeypatch)
    reranker = MaxSimRerank(page_encoder=page_encoder, top_n=5, cache=DocumentCache())
    by_path = [
        NodeWithScore(node=ImageNode(id_=f"p{i}", image_path=f)) for i, f in enumerate(page_files)
    ]
    first = _scores(reranker.postprocess_nodes(by_path, query_str="report"))
    assert len(seen) == 2
    raw = base64.b64encode(Path(page_files[0]).read_bytes()).decode()
    by_data = [NodeWithScore(node=ImageNode(id_="p0", image=raw))]
    again = _scores(reranker.postprocess_nodes(by_data, query_str="report"))
    assert len(seen) == 2  # the same bytes: no page encoding
    assert again["p0"] == first["p0"]
