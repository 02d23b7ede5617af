"""LangChain's standard vector store suite on the tiny ColBERT checkpoint (all tests run)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from langchain_tests.integration_tests import VectorStoreIntegrationTests

from sauerkraut_rag import MultiVectorEncoder
from sauerkraut_rag.integrations.langchain import SauerkrautVectorStore


class TestSauerkrautVectorStoreStandard(VectorStoreIntegrationTests):
    @pytest.fixture
    def vectorstore(  # type: ignore[override]
        self, text_encoder: MultiVectorEncoder, tmp_path: Path
    ) -> Iterator[SauerkrautVectorStore]:
        """An empty store over a fresh VoyagerIndex folder."""
        store = SauerkrautVectorStore(text_encoder, tmp_path / "index")
        try:
            yield store
        finally:
            store.close()
