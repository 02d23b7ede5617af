"""SauerkrautEmbeddings: flat MUVERA vectors and token matrices, checked against the core."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sauerkraut_rag import MultiVectorEncoder
from sauerkraut_rag.errors import DimensionMismatchError, InvalidInputError, InvalidInputTypeError
from sauerkraut_rag.integrations.langchain import SauerkrautEmbeddings
from sauerkraut_rag.retrievers.muvera import FDEConfig, MuveraEncoder

TEXTS = ["Die Zugspitze ist 2962 m hoch.", "Berlin is the capital.", "short"]


@pytest.fixture
def embeddings(text_encoder: MultiVectorEncoder) -> SauerkrautEmbeddings:
    return SauerkrautEmbeddings(text_encoder)


def test_flat_vectors_are_the_muvera_encoding_of_the_token_vectors(
    embeddings: SauerkrautEmbeddings, text_encoder: MultiVectorEncoder
) -> None:
    reference = MuveraEncoder(dim=text_encoder.dim)
    docs = embeddings.embed_documents(TEXTS)
    expected = reference.encode_documents(text_encoder.encode_documents(TEXTS))
    np.testing.assert_allclose(np.array(docs), expected, rtol=1e-6, atol=1e-6)
    query = embeddings.embed_query("Wie hoch ist die Zugspitze?")
    expected_q = reference.encode_queries(
        text_encoder.encode_queries(["Wie hoch ist die Zugspitze?"])
    )
    np.testing.assert_allclose(np.array(query), expected_q[0], rtol=1e-6, atol=1e-6)
    assert len(query) == embeddings.dimension == reference.output_dim
    assert all(type(x) is float for x in query[:5])


def test_flat_vectors_do_not_depend_on_the_batch(embeddings: SauerkrautEmbeddings) -> None:
    together = np.array(embeddings.embed_documents(TEXTS))
    alone = np.array([embeddings.embed_documents([t])[0] for t in TEXTS])
    np.testing.assert_allclose(together, alone, atol=1e-4)


def test_multi_vectors_are_the_encoder_outputs(
    embeddings: SauerkrautEmbeddings, text_encoder: MultiVectorEncoder
) -> None:
    multi = embeddings.embed_documents_multi(TEXTS)
    for got, want in zip(multi, text_encoder.encode_documents(TEXTS), strict=True):
        assert isinstance(got, np.ndarray) and got.dtype == np.float32
        assert got.shape[1] == text_encoder.dim
        np.testing.assert_array_equal(got, want)
    query = embeddings.embed_query_multi("frage")
    np.testing.assert_array_equal(query, text_encoder.encode_queries(["frage"])[0])
    assert embeddings.embed_documents([]) == []
    assert embeddings.embed_documents_multi([]) == []


async def test_async_twins_match_sync(embeddings: SauerkrautEmbeddings) -> None:
    assert await embeddings.aembed_documents(TEXTS) == embeddings.embed_documents(TEXTS)
    assert await embeddings.aembed_query("frage") == embeddings.embed_query("frage")
    multi = await embeddings.aembed_documents_multi(TEXTS)
    for got, want in zip(multi, embeddings.embed_documents_multi(TEXTS), strict=True):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(
        await embeddings.aembed_query_multi("frage"), embeddings.embed_query_multi("frage")
    )


def test_custom_fde_settings(text_encoder: MultiVectorEncoder) -> None:
    config = FDEConfig(dim=text_encoder.dim, num_repetitions=2, projection_dim=4)
    small = SauerkrautEmbeddings(text_encoder, muvera=config)
    assert small.dimension == config.output_dim == len(small.embed_query("frage"))
    with pytest.raises(DimensionMismatchError, match="dim"):
        SauerkrautEmbeddings(text_encoder, muvera=FDEConfig(dim=text_encoder.dim + 1))
    with pytest.raises(InvalidInputTypeError, match="muvera"):
        SauerkrautEmbeddings(text_encoder, muvera={"dim": 3})  # type: ignore[arg-type]


def test_loads_from_a_folder_and_rejects_other_inputs(tiny_colbert_dir: Path) -> None:
    assert SauerkrautEmbeddings(tiny_colbert_dir).encoder.modality == "text"
    with pytest.raises(InvalidInputTypeError, match="MultiVectorEncoder"):
        SauerkrautEmbeddings(42)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputTypeError, match="batch_size"):
        SauerkrautEmbeddings(tiny_colbert_dir, batch_size="8")  # type: ignore[arg-type]


def test_page_model_embeds_images_not_texts(
    page_encoder: MultiVectorEncoder, tmp_path: Path
) -> None:
    image_path = tmp_path / "page.png"
    Image.new("RGB", (64, 48), (200, 30, 30)).save(image_path)
    embeddings = SauerkrautEmbeddings(page_encoder)
    [flat] = embeddings.embed_image([str(image_path)])
    expected = MuveraEncoder(dim=page_encoder.dim).encode_documents(
        page_encoder.encode_documents([str(image_path)])
    )
    np.testing.assert_allclose(flat, expected[0], rtol=1e-5, atol=1e-6)
    assert len(embeddings.embed_query("invoice total")) == embeddings.dimension
    with pytest.raises(InvalidInputError, match="embed_image"):
        embeddings.embed_documents(["text"])


def test_text_model_refuses_images(embeddings: SauerkrautEmbeddings) -> None:
    with pytest.raises(InvalidInputError, match="embed_documents"):
        embeddings.embed_image(["page.png"])
