"""``MaxSimRerank`` on a mixed list of text and image nodes (issue 15, row 8): each modality
is ranked on its own model's scale and the two rankings are interleaved, or the reranker
refuses with the reason (``mix="refuse"``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from llama_index.core.schema import ImageNode, MetadataMode, NodeWithScore, TextNode
from PIL import Image

from sauerkraut_rag import MultiVectorEncoder
from sauerkraut_rag.errors import InvalidInputError
from sauerkraut_rag.integrations.llamaindex import MaxSimRerank
from sauerkraut_rag.retrievers.maxsim import maxsim

QUERY = "Umsatz im Jahr 2023"
TEXTS = ["Der Umsatz 2023 stieg.", "Berlin ist groß.", "Die Bilanz war gut.", "Ein Apfel."]


@pytest.fixture
def mixed(tmp_path: Path) -> list[NodeWithScore]:
    nodes: list[NodeWithScore] = []
    for i, text in enumerate(TEXTS):
        nodes.append(NodeWithScore(node=TextNode(id_=f"t{i}", text=text), score=0.0))
        path = tmp_path / f"p{i}.png"
        Image.new("RGB", (64 + 16 * i, 96), (40 * i, 200 - 30 * i, 90)).save(path)
        nodes.append(NodeWithScore(node=ImageNode(id_=f"i{i}", image_path=str(path)), score=0.0))
    return nodes


def own_scores(encoder: MultiVectorEncoder, items: list[object]) -> np.ndarray:
    q = encoder.encode_queries([QUERY])
    return maxsim(q, encoder.encode_documents(items))[0] / q[0].shape[0]


def test_mixed_lists_are_ranked_per_modality_and_interleaved(
    text_encoder: MultiVectorEncoder,
    page_encoder: MultiVectorEncoder,
    mixed: list[NodeWithScore],
) -> None:
    rerank = MaxSimRerank(text_encoder, page_encoder, top_n=8, cache=False)
    out = rerank.postprocess_nodes(mixed, query_str=QUERY)
    texts = [n for n in mixed if not isinstance(n.node, ImageNode)]
    pages = [n for n in mixed if isinstance(n.node, ImageNode)]
    t_scores = own_scores(text_encoder, [n.node.get_content(MetadataMode.EMBED) for n in texts])
    p_scores = own_scores(page_encoder, [n.node.image_path for n in pages])
    t_order = [texts[i].node.node_id for i in np.argsort(-t_scores, kind="stable")]
    p_order = [pages[i].node.node_id for i in np.argsort(-p_scores, kind="stable")]
    position = {n.node.node_id: i for i, n in enumerate(mixed)}
    expected = []
    for pair in zip(t_order, p_order, strict=True):
        expected.extend(sorted(pair, key=position.__getitem__))  # earlier input first
    assert [n.node.node_id for n in out] == expected
    kinds = ["image" if isinstance(n.node, ImageNode) else "text" for n in out]
    assert all(kinds[i] != kinds[i + 1] for i in range(0, len(kinds), 2))
    by_id = {n.node.node_id: n.score for n in out}  # each keeps its own model's score
    np.testing.assert_allclose(
        [by_id[i] for i in t_order], sorted(t_scores, reverse=True), atol=1e-5
    )
    np.testing.assert_allclose(
        [by_id[i] for i in p_order], sorted(p_scores, reverse=True), atol=1e-5
    )
    top3 = rerank.postprocess_nodes(mixed, query_str=QUERY)[:3]
    assert {isinstance(n.node, ImageNode) for n in top3} == {True, False}  # both modalities


def test_refuse_names_the_reason(
    text_encoder: MultiVectorEncoder,
    page_encoder: MultiVectorEncoder,
    mixed: list[NodeWithScore],
) -> None:
    rerank = MaxSimRerank(text_encoder, page_encoder, top_n=3, mix="refuse", cache=False)
    with pytest.raises(InvalidInputError, match="not on one scale"):
        rerank.postprocess_nodes(mixed, query_str=QUERY)
    texts_only = [n for n in mixed if not isinstance(n.node, ImageNode)]
    assert len(rerank.postprocess_nodes(texts_only, query_str=QUERY)) == 3  # one modality: fine
    with pytest.raises(InvalidInputError, match="mix="):
        MaxSimRerank(text_encoder, mix="raw")  # type: ignore[arg-type]
