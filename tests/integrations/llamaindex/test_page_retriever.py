"""SauerkrautPageRetriever specifics: ImageNode fields, stored images, sources, errors."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from llama_index.core.base.llms.types import ImageBlock, TextBlock
from llama_index.core.schema import ImageNode, MetadataMode
from llama_index.core.vector_stores.types import MetadataFilter, MetadataFilters
from PIL import Image

from sauerkraut_rag import MultiVectorEncoder
from sauerkraut_rag.errors import InvalidInputError, InvalidInputTypeError
from sauerkraut_rag.integrations.llamaindex import SauerkrautPageRetriever
from sauerkraut_rag.retrievers.voyager.index import VoyagerIndex
from tests.integrations.llamaindex.conftest import DPI

QUERY = "hydraulic press safety"


@pytest.fixture
def retriever(page_retriever: SauerkrautPageRetriever) -> SauerkrautPageRetriever:
    return page_retriever


def test_image_nodes_carry_path_mimetype_source_and_page(
    retriever: SauerkrautPageRetriever, pdf_path: Path
) -> None:
    results = retriever.retrieve(QUERY)
    assert sorted(r.node.metadata["page"] for r in results) == [1, 2, 3]
    for scored in results:
        node = scored.node
        assert isinstance(node, ImageNode)
        assert node.image is None  # not asked for
        assert node.image_mimetype == "image/png"
        assert node.metadata["source"] == str(pdf_path)
        path = Path(node.image_path)
        assert path.parent == retriever.image_folder == retriever.index.path / "pages"
        with Image.open(path) as image:
            assert image.format == "PNG"
            assert image.size == (node.metadata["width"], node.metadata["height"])


def test_stored_image_is_the_rendered_page(
    retriever: SauerkrautPageRetriever, pdf_path: Path
) -> None:
    from sauerkraut_rag.documents.pages import iter_pages

    rendered = {page.page_number: page.image for page in iter_pages(pdf_path, dpi=DPI)}
    for scored in retriever.retrieve(QUERY):
        with Image.open(scored.node.image_path) as stored:
            expected = rendered[scored.node.metadata["page"]]
            assert stored.convert("RGB").tobytes() == expected.convert("RGB").tobytes()


def test_include_image_data_fills_base64(
    page_encoder: MultiVectorEncoder, retriever: SauerkrautPageRetriever
) -> None:
    retriever.close()
    with SauerkrautPageRetriever(
        page_encoder, retriever.index.path, include_image_data=True
    ) as with_data:
        for scored in with_data.retrieve(QUERY):
            raw = Path(scored.node.image_path).read_bytes()
            assert base64.b64decode(scored.node.image) == raw


def test_llm_sees_source_page_and_image_but_no_technical_keys(
    retriever: SauerkrautPageRetriever,
) -> None:
    node = retriever.retrieve(QUERY)[0].node
    blocks = node.get_content_blocks(metadata_mode=MetadataMode.LLM)
    text = "".join(block.text for block in blocks if isinstance(block, TextBlock))
    assert "source: " in text and "page: " in text
    for hidden in ("source_sha256", "image_file", "width", "dpi"):
        assert hidden not in text
    images = [block for block in blocks if isinstance(block, ImageBlock)]
    assert len(images) == 1 and str(images[0].path) == node.image_path


def test_reindexing_the_same_pdf_does_not_duplicate(
    retriever: SauerkrautPageRetriever, pdf_path: Path
) -> None:
    first = retriever.retrieve(QUERY)
    ids = retriever.add_sources(pdf_path, dpi=DPI)
    assert len(retriever) == 3
    assert sorted(ids) == sorted(r.node.node_id for r in first)
    assert len(list(retriever.image_folder.glob("*.png"))) == 3


def test_same_pdf_twice_in_one_call(
    page_encoder: MultiVectorEncoder, pdf_path: Path, tmp_path: Path
) -> None:
    with SauerkrautPageRetriever(page_encoder, tmp_path / "idx", batch_size=8) as retriever:
        ids = retriever.add_sources([pdf_path, pdf_path], dpi=DPI)
        assert len(ids) == 6 and len(set(ids)) == 3
        assert len(retriever) == 3


def test_folder_with_pdf_and_image(
    page_encoder: MultiVectorEncoder, pdf_path: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "report.pdf").write_bytes(pdf_path.read_bytes())
    Image.new("RGB", (120, 160), (20, 200, 40)).save(folder / "scan.png")
    with SauerkrautPageRetriever.from_sources(
        folder, page_encoder, tmp_path / "idx", dpi=DPI, similarity_top_k=10
    ) as retriever:
        results = retriever.retrieve(QUERY)
    sources = sorted(
        (Path(r.node.metadata["source"]).name, r.node.metadata["page"]) for r in results
    )
    assert sources == [("report.pdf", 1), ("report.pdf", 2), ("report.pdf", 3), ("scan.png", 1)]


def test_filter_on_page_number(
    page_encoder: MultiVectorEncoder, retriever: SauerkrautPageRetriever
) -> None:
    retriever.close()
    filters = MetadataFilters(filters=[MetadataFilter(key="page", value=2)])
    with SauerkrautPageRetriever(page_encoder, retriever.index.path, filters=filters) as only_2:
        assert [r.node.metadata["page"] for r in only_2.retrieve(QUERY)] == [2]


def test_webp_storage(page_encoder: MultiVectorEncoder, pdf_path: Path, tmp_path: Path) -> None:
    with SauerkrautPageRetriever.from_sources(
        pdf_path, page_encoder, tmp_path / "idx", dpi=DPI, image_format="webp"
    ) as retriever:
        node = retriever.retrieve(QUERY)[0].node
    assert node.image_path.endswith(".webp")
    assert node.image_mimetype == "image/webp"


def test_explicit_image_folder(
    page_encoder: MultiVectorEncoder, pdf_path: Path, tmp_path: Path
) -> None:
    with VoyagerIndex(tmp_path / "idx", dim=page_encoder.dim) as index:
        retriever = SauerkrautPageRetriever.from_sources(
            pdf_path, page_encoder, index, image_folder=tmp_path / "imgs", dpi=DPI
        )
        node = retriever.retrieve(QUERY)[0].node
    assert Path(node.image_path).parent == tmp_path / "imgs"


def test_text_model_is_rejected(text_encoder: MultiVectorEncoder, tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="image model"):
        SauerkrautPageRetriever(text_encoder, tmp_path / "idx")


def test_bad_image_format_and_non_pages(
    page_encoder: MultiVectorEncoder, retriever: SauerkrautPageRetriever, tmp_path: Path
) -> None:
    with pytest.raises(InvalidInputError, match="webp"):
        SauerkrautPageRetriever(page_encoder, tmp_path / "other", image_format="jpeg")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputTypeError, match="Page objects"):
        retriever.add_pages(["page.png"])  # type: ignore[list-item]


def test_delete_pages(retriever: SauerkrautPageRetriever) -> None:
    ids = [r.node.node_id for r in retriever.retrieve(QUERY)]
    assert retriever.delete_pages(ids[:2]) == 2
    assert [r.node.node_id for r in retriever.retrieve(QUERY)] == ids[2:]


def test_temporary_index_keeps_images_until_close(
    page_encoder: MultiVectorEncoder, pdf_path: Path
) -> None:
    retriever = SauerkrautPageRetriever.from_sources(pdf_path, page_encoder, dpi=DPI)
    node = retriever.retrieve(QUERY)[0].node
    assert Path(node.image_path).is_file()
    assert Path(node.image_path).parent == Path(retriever.index.path) / "pages"
    retriever.close()
    assert not Path(node.image_path).exists()


def test_one_page_index_serves_both_frameworks(
    page_encoder: MultiVectorEncoder, pdf_path: Path, tmp_path: Path
) -> None:
    langchain = pytest.importorskip("sauerkraut_rag.integrations.langchain")
    folder = tmp_path / "shared"
    lc = langchain.VisualPageRetriever.from_sources(
        pdf_path, page_encoder, index_path=folder, dpi=DPI, k=3
    )
    lc_docs = lc.invoke(QUERY)
    lc.close()
    with SauerkrautPageRetriever(page_encoder, folder, similarity_top_k=3) as li:
        results = li.retrieve(QUERY)
        nodes = [r.node for r in results]
        assert [n.node_id for n in nodes] == [d.id for d in lc_docs]
        assert [r.score for r in results] == pytest.approx([d.metadata["score"] for d in lc_docs])
        assert [n.image_path for n in nodes] == [d.metadata["image_path"] for d in lc_docs]
        li.add_sources(pdf_path, dpi=DPI)  # same ids: replaced, not duplicated
        assert len(li) == 3
    reopened = langchain.VisualPageRetriever(page_encoder, folder, k=3)
    assert [d.id for d in reopened.invoke(QUERY)] == [n.node_id for n in nodes]
    assert all(Path(d.metadata["image_path"]).is_file() for d in reopened.invoke(QUERY))
    reopened.close()
