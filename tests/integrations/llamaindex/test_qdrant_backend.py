"""The LlamaIndex retrievers on a QdrantIndex (client local mode): same nodes and scores as
on a VoyagerIndex; page images go to ``image_folder`` (the index has no folder)."""

from __future__ import annotations

from pathlib import Path

import pytest
from llama_index.core.schema import TextNode

from sauerkraut_rag import MultiVectorEncoder
from sauerkraut_rag.errors import InvalidInputError
from sauerkraut_rag.integrations.llamaindex import SauerkrautPageRetriever, SauerkrautRetriever
from tests.integrations.llamaindex.conftest import DPI

pytest.importorskip("qdrant_client")

from sauerkraut_rag.retrievers.qdrant import QdrantIndex


def test_text_retriever_on_qdrant_equals_voyager(
    text_encoder: MultiVectorEncoder, text_nodes: list[TextNode], tmp_path: Path
) -> None:
    with QdrantIndex("nodes", dim=text_encoder.dim, location=":memory:") as index:
        on_qdrant = SauerkrautRetriever.from_nodes(text_nodes, text_encoder, index)
        with SauerkrautRetriever.from_nodes(
            text_nodes, text_encoder, tmp_path / "v", index_options={"vector_dtype": "float32"}
        ) as on_voyager:
            for filters in (None, {"lang": "en"}):
                on_qdrant._filter = on_voyager._filter = filters
                got = on_qdrant.retrieve("highest mountain in Germany")
                want = on_voyager.retrieve("highest mountain in Germany")
                assert [n.node.node_id for n in got] == [n.node.node_id for n in want]
                assert [n.score for n in got] == pytest.approx([n.score for n in want], abs=1e-5)
                assert got[0].node.get_content() == want[0].node.get_content()


def test_page_retriever_needs_an_image_folder(
    page_encoder: MultiVectorEncoder, pdf_path: Path, tmp_path: Path
) -> None:
    with QdrantIndex("pages", dim=page_encoder.dim, location=":memory:") as index:
        with pytest.raises(InvalidInputError, match="image_folder"):
            SauerkrautPageRetriever(page_encoder, index)
        retriever = SauerkrautPageRetriever.from_sources(
            pdf_path, page_encoder, index, image_folder=tmp_path / "shared", dpi=DPI
        )
        found = retriever.retrieve("safety instructions")
        assert len(found) == 3 and len(index) == 3
        assert all(Path(n.node.image_path).parent == tmp_path / "shared" for n in found)
