"""LangChain's standard embeddings suites on the tiny ColBERT checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from langchain_tests.integration_tests import EmbeddingsIntegrationTests
from langchain_tests.unit_tests import EmbeddingsUnitTests

from sauerkraut_rag.integrations.langchain import SauerkrautEmbeddings


class _TinyColBERTParams:
    checkpoint: Path

    @pytest.fixture(autouse=True)
    def _checkpoint(self, tiny_colbert_dir: Path) -> None:
        self.checkpoint = tiny_colbert_dir

    @property
    def embeddings_class(self) -> type[SauerkrautEmbeddings]:
        return SauerkrautEmbeddings

    @property
    def embedding_model_params(self) -> dict[str, Any]:
        return {"model": str(self.checkpoint)}


class TestSauerkrautEmbeddingsUnit(_TinyColBERTParams, EmbeddingsUnitTests):
    """Construction checks."""


class TestSauerkrautEmbeddingsIntegration(_TinyColBERTParams, EmbeddingsIntegrationTests):
    """Flat vectors of a fixed size, sync and async."""
