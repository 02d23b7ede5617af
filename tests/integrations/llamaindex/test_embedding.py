"""SauerkrautEmbedding: flat MUVERA vectors, multi-vector methods, async, interoperability."""

from __future__ import annotations

import asyncio
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest
from llama_index.core import VectorStoreIndex
from llama_index.core.indices.multi_modal import MultiModalVectorStoreIndex
from llama_index.core.schema import ImageNode, TextNode

from sauerkraut_rag import MultiVectorEncoder
from sauerkraut_rag.documents.pages import iter_pages, save_page_image
from sauerkraut_rag.errors import (
    DimensionMismatchError,
    InvalidInputError,
    InvalidInputTypeError,
)
from sauerkraut_rag.integrations.llamaindex import SauerkrautEmbedding
from sauerkraut_rag.retrievers.muvera import FDEConfig, MuveraEncoder
from tests.integrations.llamaindex.conftest import DPI, TEXTS

QUERY = "Which mountain is the highest in Germany?"


@pytest.fixture(scope="module")
def text_embed(text_encoder: MultiVectorEncoder) -> SauerkrautEmbedding:
    return SauerkrautEmbedding(text_encoder, embed_batch_size=3)


@pytest.fixture(scope="module")
def page_embed(page_encoder: MultiVectorEncoder) -> SauerkrautEmbedding:
    return SauerkrautEmbedding(page_encoder)


@pytest.fixture(scope="module")
def page_files(pdf_path: Path, tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    folder = tmp_path_factory.mktemp("li-page-files")
    return [str(save_page_image(page, folder)) for page in iter_pages(pdf_path, dpi=DPI)]


def _assert_flat(vector: object, dim: int) -> None:
    assert isinstance(vector, list) and len(vector) == dim
    assert all(type(x) is float for x in vector)


@pytest.mark.parametrize("which", ["text", "page"])
def test_query_embedding_is_flat_and_equals_muvera_of_tokens(
    which: str, request: pytest.FixtureRequest
) -> None:
    embed: SauerkrautEmbedding = request.getfixturevalue(f"{which}_embed")
    vector = embed.get_query_embedding(QUERY)
    _assert_flat(vector, embed.dimension)
    reference = MuveraEncoder(dim=embed.encoder.dim).encode_queries(
        embed.encoder.encode_queries([QUERY])
    )[0]
    np.testing.assert_allclose(vector, reference, rtol=1e-5, atol=1e-6)
    assert embed.dimension == MuveraEncoder(dim=embed.encoder.dim).output_dim


def test_text_batch_matches_single_calls_and_reference(text_embed: SauerkrautEmbedding) -> None:
    batch = text_embed.get_text_embedding_batch(TEXTS)  # 7 texts, batches of 3
    assert len(batch) == len(TEXTS)
    for vector in batch:
        _assert_flat(vector, text_embed.dimension)
    single = [text_embed.get_text_embedding(text) for text in TEXTS]
    np.testing.assert_allclose(batch, single, rtol=1e-5, atol=1e-6)
    reference = text_embed.muvera.encode_documents(text_embed.encoder.encode_documents(TEXTS))
    np.testing.assert_allclose(batch, reference, rtol=1e-5, atol=1e-6)


def test_query_and_document_views_differ(text_embed: SauerkrautEmbedding) -> None:
    """Queries use MUVERA sums, documents means: the two vectors must not coincide."""
    assert not np.allclose(
        text_embed.get_query_embedding(TEXTS[0]), text_embed.get_text_embedding(TEXTS[0])
    )


def test_image_embedding_from_path_and_bytesio(
    page_embed: SauerkrautEmbedding, page_files: list[str]
) -> None:
    by_path = page_embed.get_image_embedding(page_files[0])
    _assert_flat(by_path, page_embed.dimension)
    by_bytes = page_embed.get_image_embedding(BytesIO(Path(page_files[0]).read_bytes()))
    np.testing.assert_allclose(by_path, by_bytes, rtol=1e-5, atol=1e-6)
    reference = page_embed.muvera.encode_documents(
        page_embed.encoder.encode_documents([page_files[0]])
    )[0]
    np.testing.assert_allclose(by_path, reference, rtol=1e-5, atol=1e-6)
    batch = page_embed.get_image_embedding_batch(page_files)
    assert len(batch) == 3
    np.testing.assert_allclose(batch[0], by_path, rtol=1e-5, atol=1e-6)


def test_async_twins_match_sync(
    text_embed: SauerkrautEmbedding, page_embed: SauerkrautEmbedding, page_files: list[str]
) -> None:
    async def run() -> tuple:
        return await asyncio.gather(
            text_embed.aget_query_embedding(QUERY),
            text_embed.aget_text_embedding(TEXTS[1]),
            text_embed.aget_text_embedding_batch(TEXTS),
            page_embed.aget_image_embedding(page_files[1]),
            page_embed.aget_query_multivectors([QUERY]),
        )

    query, text, batch, image, multi = asyncio.run(run())
    np.testing.assert_allclose(query, text_embed.get_query_embedding(QUERY), atol=1e-6)
    np.testing.assert_allclose(text, text_embed.get_text_embedding(TEXTS[1]), atol=1e-6)
    np.testing.assert_allclose(batch, text_embed.get_text_embedding_batch(TEXTS), atol=1e-6)
    np.testing.assert_allclose(image, page_embed.get_image_embedding(page_files[1]), atol=1e-6)
    np.testing.assert_allclose(multi[0], page_embed.get_query_multivector(QUERY), atol=1e-6)


def test_multivector_methods_return_token_matrices(
    text_embed: SauerkrautEmbedding, page_embed: SauerkrautEmbedding, page_files: list[str]
) -> None:
    query = text_embed.get_query_multivector(QUERY)
    assert (
        query.dtype == np.float32 and query.ndim == 2 and query.shape[1] == text_embed.encoder.dim
    )
    np.testing.assert_allclose(query, text_embed.encoder.encode_queries([QUERY])[0], atol=1e-6)
    docs = text_embed.get_text_multivectors(TEXTS[:2])
    assert [d.shape[1] for d in docs] == [text_embed.encoder.dim] * 2
    np.testing.assert_allclose(
        norms := np.linalg.norm(docs[0], axis=1), np.ones_like(norms), atol=1e-4
    )
    pages = page_embed.get_image_multivectors(
        [page_files[0], BytesIO(Path(page_files[0]).read_bytes())]
    )
    np.testing.assert_allclose(pages[0], pages[1], atol=1e-5)
    assert pages[0].shape[1] == page_embed.encoder.dim


def test_modality_mismatches_are_clear_errors(
    text_embed: SauerkrautEmbedding, page_embed: SauerkrautEmbedding, page_files: list[str]
) -> None:
    with pytest.raises(InvalidInputError, match="page model"):
        text_embed.get_image_embedding(page_files[0])
    with pytest.raises(InvalidInputError, match="text model"):
        page_embed.get_text_embedding("some text")
    with pytest.raises(InvalidInputTypeError, match="BytesIO"):
        page_embed.get_image_embedding(12)  # type: ignore[arg-type]


def test_custom_fde_config_and_dim_check(text_encoder: MultiVectorEncoder) -> None:
    config = FDEConfig(dim=text_encoder.dim, num_repetitions=2, projection_dim=4)
    small = SauerkrautEmbedding(text_encoder, muvera=config)
    assert small.dimension == config.output_dim == len(small.get_query_embedding(QUERY))
    with pytest.raises(DimensionMismatchError, match="dim"):
        SauerkrautEmbedding(text_encoder, muvera=FDEConfig(dim=text_encoder.dim + 1))


def test_serialisable_description(text_embed: SauerkrautEmbedding) -> None:
    data = text_embed.to_dict()
    assert data["class_name"] == "SauerkrautEmbedding"
    assert data["model_name"] == text_embed.encoder.name
    assert data["dimension"] == text_embed.dimension and data["modality"] == "text"


def test_drop_in_for_vector_store_index(text_embed: SauerkrautEmbedding) -> None:
    nodes = [TextNode(id_=f"n{i}", text=text) for i, text in enumerate(TEXTS)]
    index = VectorStoreIndex(nodes, embed_model=text_embed)
    results = index.as_retriever(similarity_top_k=3).retrieve(QUERY)
    assert len(results) == 3 and {r.node.node_id for r in results} <= {n.node_id for n in nodes}
    stored = index.vector_store.get("n2")
    np.testing.assert_allclose(stored, text_embed.get_text_embedding(TEXTS[2]), atol=1e-6)


def test_drop_in_for_multimodal_index(
    text_embed: SauerkrautEmbedding, page_embed: SauerkrautEmbedding, page_files: list[str]
) -> None:
    nodes = [TextNode(text=text) for text in TEXTS[:3]]
    nodes += [
        ImageNode(image_path=path, metadata={"page": i + 1}) for i, path in enumerate(page_files)
    ]
    index = MultiModalVectorStoreIndex(nodes, embed_model=text_embed, image_embed_model=page_embed)
    retriever = index.as_retriever(similarity_top_k=2, image_similarity_top_k=2)
    results = retriever.retrieve(QUERY)
    assert sum(isinstance(r.node, ImageNode) for r in results) == 2
    assert sum(not isinstance(r.node, ImageNode) for r in results) == 2
