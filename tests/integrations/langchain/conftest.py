"""Shared fixtures for the LangChain adapter tests: tiny local checkpoints and a PDF."""

from __future__ import annotations

from pathlib import Path

import pytest

from sauerkraut_rag import MultiVectorEncoder, load_encoder
from tests.factories.colbert import build_tiny_colbert
from tests.factories.collfm2 import build_tiny_collfm2
from tests.pdf_factory import make_pdf

PDF_TEXTS = [
    "Quarterly revenue report",
    "Employee handbook and holidays",
    "Safety instructions for the lab",
    "Annual budget overview",
]


@pytest.fixture(scope="session")
def tiny_colbert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random PyLate-layout ColBERT checkpoint folder."""
    return build_tiny_colbert(tmp_path_factory.mktemp("langchain-colbert") / "model")


@pytest.fixture(scope="session")
def text_encoder(tiny_colbert_dir: Path) -> MultiVectorEncoder:
    """The tiny ColBERT loaded through the public entry point."""
    return load_encoder(tiny_colbert_dir)


@pytest.fixture(scope="session")
def page_encoder(tmp_path_factory: pytest.TempPathFactory) -> MultiVectorEncoder:
    """A tiny random ColLFM2 page model loaded through the public entry point."""
    folder = build_tiny_collfm2(tmp_path_factory.mktemp("langchain-collfm2") / "model")
    return load_encoder(folder)


@pytest.fixture(scope="session")
def sample_pdf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated 4-page PDF (one line of text per page)."""
    return make_pdf(tmp_path_factory.mktemp("langchain-pdf") / "report.pdf", 4, texts=PDF_TEXTS)
