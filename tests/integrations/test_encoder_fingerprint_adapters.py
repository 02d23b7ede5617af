"""Every adapter refuses an index whose vectors another encoder made (issue 15, row 3):
another checkpoint of the same dim, or a text model on a page index, raises
``EncoderMismatchError`` when the store or retriever is opened (read-only too), and an
index object passed in is checked the same way."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("langchain_core")
pytest.importorskip("llama_index.core")

from llama_index.core.schema import TextNode

from sauerkraut_rag import MultiVectorEncoder, load_encoder
from sauerkraut_rag.errors import EncoderMismatchError
from sauerkraut_rag.integrations.langchain import (
    SauerkrautVectorStore,
    VisualPageRetriever,
)
from sauerkraut_rag.integrations.llamaindex import (
    SauerkrautPageRetriever,
    SauerkrautRetriever,
)
from sauerkraut_rag.retrievers.voyager.index import VoyagerIndex
from tests.factories.colbert import build_tiny_colbert
from tests.factories.collfm2 import build_tiny_collfm2
from tests.factories.colqwen3 import build_tiny_colqwen3
from tests.pdf_factory import make_pdf


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, MultiVectorEncoder]:
    root = tmp_path_factory.mktemp("fingerprints")
    return {
        "text": load_encoder(build_tiny_colbert(root / "colbert", out_features=128)),
        "text2": load_encoder(build_tiny_colbert(root / "colbert2", out_features=128, seed=1)),
        "page": load_encoder(build_tiny_collfm2(root / "collfm2")),
        "page2": load_encoder(build_tiny_colqwen3(root / "colqwen3")),
    }


def add_text(adapter: Any) -> None:
    if isinstance(adapter, SauerkrautVectorStore):
        adapter.add_texts(["Die Zugspitze ist 2962 m hoch."])
    else:
        adapter.add_nodes([TextNode(id_="z", text="Die Zugspitze ist 2962 m hoch.")])


TEXT_ADAPTERS: list[Callable[..., Any]] = [
    lambda encoder, index, **kw: SauerkrautVectorStore(encoder, index, **kw),
    lambda encoder, index, **kw: SauerkrautRetriever(encoder, index, **kw),
]
PAGE_ADAPTERS: list[Callable[..., Any]] = [
    lambda encoder, index, **kw: VisualPageRetriever(encoder, index, **kw),
    lambda encoder, index, **kw: SauerkrautPageRetriever(encoder, index, **kw),
]


@pytest.mark.parametrize("make", TEXT_ADAPTERS, ids=["langchain", "llamaindex"])
def test_text_index_refuses_another_checkpoint_of_the_same_dim(
    make: Callable[..., Any], models: dict[str, MultiVectorEncoder], tmp_path: Path
) -> None:
    assert models["text"].dim == models["text2"].dim
    with make(models["text"], tmp_path / "idx") as adapter:
        add_text(adapter)
    for kwargs in ({}, {"read_only": True}):
        with pytest.raises(EncoderMismatchError, match="colbert2"):
            make(models["text2"], tmp_path / "idx", **kwargs)
    with make(models["text"], tmp_path / "idx", read_only=True) as adapter:  # its own model
        assert len(adapter.index) == 1
    with VoyagerIndex(tmp_path / "idx") as index, pytest.raises(EncoderMismatchError):
        make(models["text2"], index)  # an index object is checked as well


@pytest.mark.parametrize("make", TEXT_ADAPTERS, ids=["langchain", "llamaindex"])
def test_text_model_on_a_page_index_is_refused(
    make: Callable[..., Any], models: dict[str, MultiVectorEncoder], tmp_path: Path
) -> None:
    assert models["text"].dim == models["page"].dim
    pdf = make_pdf(tmp_path / "report.pdf", 1)
    with VisualPageRetriever(models["page"], tmp_path / "pages") as pages:
        pages.add_sources(pdf, dpi=36)
    with pytest.raises(EncoderMismatchError, match="family"):
        make(models["text"], tmp_path / "pages")


@pytest.mark.parametrize("make", PAGE_ADAPTERS, ids=["langchain", "llamaindex"])
def test_page_index_refuses_another_page_model(
    make: Callable[..., Any], models: dict[str, MultiVectorEncoder], tmp_path: Path
) -> None:
    pdf = make_pdf(tmp_path / "report.pdf", 1)
    with make(models["page"], tmp_path / "pages") as pages:
        pages.add_sources(pdf, dpi=36)
    with pytest.raises(EncoderMismatchError, match="colqwen3"):
        make(models["page2"], tmp_path / "pages")
    with make(models["page"], tmp_path / "pages") as pages:  # the refusal released the folder
        assert len(pages.index) == 1
