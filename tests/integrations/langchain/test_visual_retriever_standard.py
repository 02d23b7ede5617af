"""LangChain's standard retriever suite on a tiny page model and a generated 4-page PDF."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from langchain_tests.integration_tests import RetrieversIntegrationTests

from sauerkraut_rag import MultiVectorEncoder
from sauerkraut_rag.integrations.langchain import VisualPageRetriever


@pytest.fixture(scope="module")
def page_index(
    page_encoder: MultiVectorEncoder, sample_pdf: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A persisted page index folder holding the 4 pages (built once, then reopened)."""
    folder = tmp_path_factory.mktemp("langchain-standard") / "index"
    retriever = VisualPageRetriever.from_sources(
        sample_pdf, page_encoder, index_path=folder, dpi=36
    )
    retriever.close()
    return folder


class TestVisualPageRetrieverStandard(RetrieversIntegrationTests):
    params: dict[str, Any]

    @pytest.fixture(autouse=True)
    def _params(self, page_encoder: MultiVectorEncoder, page_index: Path) -> Any:
        self.params = {"model": page_encoder, "index": page_index, "read_only": True}
        yield

    @property
    def retriever_constructor(self) -> type[VisualPageRetriever]:
        return VisualPageRetriever

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        return self.params

    @property
    def retriever_query_example(self) -> str:
        return "What does the annual budget say?"
