"""The LlamaIndex retrievers on a QdrantIndex (client local mode): same nodes and scores as
on a VoyagerIndex; page images go to ``image_folder`` (the index has no folder)."""

from __future__ import annotations

from pathlib import Path

import pytest
from llama_index.core.schema import TextNode
from llama_index.core.vector_stores.types import (
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
)

from sauerkraut_rag import MultiVectorEncoder
from sauerkraut_rag.errors import InvalidInputError
from sauerkraut_rag.integrations.llamaindex import SauerkrautPageRetriever, SauerkrautRetriever
from tests.integrations.llamaindex.conftest import DPI

pytest.importorskip("qdrant_client")

from sauerkraut_rag.retrievers.qdrant import QdrantIndex


def test_text_retriever_on_qdrant_equals_voyager(
    text_encoder: MultiVectorEncoder, text_nodes: list[TextNode], tmp_path: Path
) -> None:
    by_position = MetadataFilters(
        filters=[MetadataFilter(key="position", value=2, operator=FilterOperator.GTE)]
    )
    for number, filters in enumerate((None, {"lang": "en"}, by_position)):
        index = QdrantIndex("nodes", dim=text_encoder.dim, location=":memory:")
        folder = tmp_path / f"v{number}"
        with SauerkrautRetriever.from_nodes(
            text_nodes, text_encoder, index, filters=filters
        ) as on_qdrant, SauerkrautRetriever.from_nodes(
            text_nodes, text_encoder, folder, filters=filters,
            index_options={"vector_dtype": "float32"},
        ) as on_voyager:  # fmt: skip
            got = on_qdrant.retrieve("highest mountain in Germany")
            want = on_voyager.retrieve("highest mountain in Germany")
            assert [n.node.node_id for n in got] == [n.node.node_id for n in want]
            assert [n.score for n in got] == pytest.approx([n.score for n in want], abs=1e-5)
            assert got[0].node.get_content() == want[0].node.get_content()
        index.close()
        if filters is by_position:
            assert all(n.node.metadata["position"] >= 2 for n in got)


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
