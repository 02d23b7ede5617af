"""VisualPageRetriever: page ingestion, exact scores, metadata, k/filter, persistence, errors."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sauerkraut_rag import MultiVectorEncoder
from sauerkraut_rag.documents.pages import iter_pages
from sauerkraut_rag.errors import InvalidInputError, InvalidInputTypeError
from sauerkraut_rag.integrations.langchain import VisualPageRetriever
from sauerkraut_rag.retrievers.maxsim import maxsim
from sauerkraut_rag.types import Page
from tests.integrations.langchain.conftest import PDF_TEXTS

QUERY = "Where are the safety instructions?"
DPI = 36


@pytest.fixture
def retriever(
    page_encoder: MultiVectorEncoder, sample_pdf: Path, tmp_path: Path
) -> Iterator[VisualPageRetriever]:
    with VisualPageRetriever.from_sources(
        sample_pdf, page_encoder, index_path=tmp_path / "index", dpi=DPI, k=2
    ) as built:
        yield built


def _reference(encoder: MultiVectorEncoder, pdf: Path) -> np.ndarray:
    images = [page.image for page in iter_pages(pdf, dpi=DPI)]
    q = encoder.encode_queries([QUERY])
    return maxsim(q, encoder.encode_documents(images))[0] / q[0].shape[0]


def test_scores_order_and_metadata(
    retriever: VisualPageRetriever,
    page_encoder: MultiVectorEncoder,
    sample_pdf: Path,
    tmp_path: Path,
) -> None:
    docs = retriever.invoke(QUERY, k=4)
    expected = _reference(page_encoder, sample_pdf)
    order = np.argsort(-expected, kind="stable")
    assert [d.metadata["page"] for d in docs] == [int(i) + 1 for i in order]
    # the index stores float16 token vectors: scores agree to ~1e-3
    np.testing.assert_allclose([d.metadata["score"] for d in docs], expected[order], atol=2e-3)
    for doc in docs:
        # the PDF's text layer (issue 15: a page in a text chain is never empty)
        assert (
            doc.page_content
            == f"Page {doc.metadata['page']}\n{PDF_TEXTS[doc.metadata['page'] - 1]}"
        )
        assert doc.metadata["source"] == str(sample_pdf)
        assert doc.metadata["total_pages"] == 4 and doc.metadata["kind"] == "pdf"
        image_path = Path(doc.metadata["image_path"])
        assert image_path.is_file() and image_path.parent == (tmp_path / "index" / "pages")
        assert "image_base64" not in doc.metadata
        with Image.open(image_path) as image:
            assert image.size == (doc.metadata["width"], doc.metadata["height"])
    assert len({d.id for d in docs}) == 4


def test_k_in_constructor_and_per_call(retriever: VisualPageRetriever) -> None:
    assert len(retriever.invoke(QUERY)) == 2
    assert len(retriever.invoke(QUERY, k=1)) == 1
    assert len(retriever.invoke(QUERY, k=10)) == 4
    with pytest.raises(InvalidInputError, match="k >= 1"):
        retriever.invoke(QUERY, k=0)


def test_filter_per_call_and_in_constructor(
    retriever: VisualPageRetriever, page_encoder: MultiVectorEncoder
) -> None:
    assert [d.metadata["page"] for d in retriever.invoke(QUERY, filter={"page": 3})] == [3]
    only_two = VisualPageRetriever(page_encoder, retriever.index, filter={"page": 2}, k=4)
    assert [d.metadata["page"] for d in only_two.invoke(QUERY)] == [2]
    assert retriever.invoke(QUERY, filter={"source": "other.pdf"}) == []


async def test_async_matches_sync(retriever: VisualPageRetriever) -> None:
    assert await retriever.ainvoke(QUERY, k=3) == retriever.invoke(QUERY, k=3)


def test_base64_images_on_request(
    page_encoder: MultiVectorEncoder, retriever: VisualPageRetriever
) -> None:
    with_images = VisualPageRetriever(page_encoder, retriever.index, include_image_base64=True)
    for doc in with_images.invoke(QUERY, k=2):
        raw = base64.b64decode(doc.metadata["image_base64"])
        assert raw == Path(doc.metadata["image_path"]).read_bytes()
        assert doc.metadata["image_mime_type"] == "image/png"


def test_readding_a_source_replaces_its_pages(
    retriever: VisualPageRetriever, sample_pdf: Path
) -> None:
    before = sorted(d.id for d in retriever.invoke(QUERY, k=4))
    ids = retriever.add_sources(sample_pdf, dpi=DPI)
    assert sorted(ids) == before
    assert len(retriever.index) == 4


def test_reopen_persisted_index_read_only(
    page_encoder: MultiVectorEncoder, sample_pdf: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "persist"
    built = VisualPageRetriever.from_sources(sample_pdf, page_encoder, index_path=folder, dpi=DPI)
    expected = built.invoke(QUERY, k=3)
    built.close()
    with VisualPageRetriever(page_encoder, folder, read_only=True) as reopened:
        assert reopened.invoke(QUERY, k=3) == expected


def test_page_text_hook_and_webp(
    page_encoder: MultiVectorEncoder, sample_pdf: Path, tmp_path: Path
) -> None:
    def text_of(page: Page) -> str:
        return f"page {page.page_number} of {Path(page.source).name}"

    with VisualPageRetriever.from_sources(
        sample_pdf,
        page_encoder,
        index_path=tmp_path / "idx",
        dpi=DPI,
        page_text=text_of,
        image_format="webp",
    ) as built:
        for doc in built.invoke(QUERY, k=4):
            assert doc.page_content == f"page {doc.metadata['page']} of report.pdf"
            assert doc.metadata["image_path"].endswith(".webp")


def test_folder_of_images_and_temporary_index(
    page_encoder: MultiVectorEncoder, tmp_path: Path
) -> None:
    scans = tmp_path / "scans"
    scans.mkdir()
    for i, color in enumerate([(250, 10, 10), (10, 250, 10), (10, 10, 250)]):
        Image.new("RGB", (80, 100), color).save(scans / f"scan{i}.png")
    built = VisualPageRetriever.from_sources(scans, page_encoder, k=3)
    docs = built.invoke(QUERY)
    assert sorted(Path(d.metadata["source"]).name for d in docs) == [
        "scan0.png",
        "scan1.png",
        "scan2.png",
    ]
    pages_dir = Path(docs[0].metadata["image_path"]).parent
    assert pages_dir.is_dir()
    built.close()
    assert not pages_dir.exists()


def test_bad_arguments(
    page_encoder: MultiVectorEncoder, text_encoder: MultiVectorEncoder, tmp_path: Path
) -> None:
    with pytest.raises(InvalidInputError, match="image model"):
        VisualPageRetriever(text_encoder)
    with pytest.raises(InvalidInputError, match="k >= 1"):
        VisualPageRetriever(page_encoder, k=0)
    with VisualPageRetriever(page_encoder, tmp_path / "empty") as empty:
        assert empty.invoke(QUERY) == []
        with pytest.raises(InvalidInputTypeError, match="str"):
            empty.search(42)  # type: ignore[arg-type]
