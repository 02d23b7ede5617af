"""The LangChain classes on a QdrantIndex (client local mode): LangChain's standard vector
store suite, the same answers as on a VoyagerIndex, and page images in ``pages_dir``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from langchain_tests.integration_tests import VectorStoreIntegrationTests

from sauerkraut_rag import MultiVectorEncoder
from sauerkraut_rag.errors import InvalidInputError
from sauerkraut_rag.integrations.langchain import SauerkrautVectorStore, VisualPageRetriever

pytest.importorskip("qdrant_client")

from sauerkraut_rag.retrievers.qdrant import QdrantIndex

TEXTS = ["Berlin is the capital of Germany.", "Sauerkraut is fermented cabbage.", "Munich beer"]


class TestSauerkrautVectorStoreOnQdrant(VectorStoreIntegrationTests):
    @pytest.fixture
    def vectorstore(  # type: ignore[override]
        self, text_encoder: MultiVectorEncoder
    ) -> Iterator[SauerkrautVectorStore]:
        """An empty store over a fresh in-memory Qdrant collection."""
        index = QdrantIndex("store", dim=text_encoder.dim, location=":memory:")
        store = SauerkrautVectorStore(text_encoder, index)
        try:
            yield store
        finally:
            index.close()


def test_same_answers_as_on_voyager(text_encoder: MultiVectorEncoder, tmp_path: Path) -> None:
    metas = [{"i": i, "lang": "en"} for i in range(len(TEXTS))]
    ids = [f"t{i}" for i in range(len(TEXTS))]
    with QdrantIndex("store", dim=text_encoder.dim, path=tmp_path / "q") as index:
        on_qdrant = SauerkrautVectorStore(text_encoder, index)
        on_qdrant.add_texts(TEXTS, metas, ids=ids)
        with SauerkrautVectorStore(
            text_encoder, tmp_path / "v", index_options={"vector_dtype": "float32"}
        ) as on_voyager:
            on_voyager.add_texts(TEXTS, metas, ids=ids)
            for flt in (None, {"i": {"$gte": 1}}):
                got = on_qdrant.similarity_search_with_score("capital", k=2, filter=flt)
                want = on_voyager.similarity_search_with_score("capital", k=2, filter=flt)
                assert [d.id for d, _ in got] == [d.id for d, _ in want]
                assert [s for _, s in got] == pytest.approx([s for _, s in want], abs=1e-5)


def test_visual_retriever_stores_pages_in_pages_dir(
    page_encoder: MultiVectorEncoder, sample_pdf: Path, tmp_path: Path
) -> None:
    with QdrantIndex("pages", dim=page_encoder.dim, location=":memory:") as index:
        with pytest.raises(InvalidInputError, match="pages_dir"):
            VisualPageRetriever.from_sources(sample_pdf, page_encoder, index_path=index, dpi=36)
        retriever = VisualPageRetriever.from_sources(
            sample_pdf, page_encoder, index_path=index, pages_dir=tmp_path / "shared", dpi=36, k=2
        )
        docs = retriever.invoke("safety instructions", filter={"page": {"$gte": 2}})
        assert len(docs) == 2 and all(d.metadata["page"] >= 2 for d in docs)
        assert all(Path(d.metadata["image_path"]).parent == tmp_path / "shared" for d in docs)
        assert len(index) == 4
