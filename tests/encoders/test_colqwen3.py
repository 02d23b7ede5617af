"""ColQwen3 encoder: prompts, padding, forward semantics, layouts, invariance, bad input.

The tiny checkpoints come from :mod:`tests.factories.colqwen3` (published layout,
random weights).  The expected vectors are computed here by a straightforward
per-item forward that calls transformers' ``Qwen3VLModel`` and ``Qwen2VLProcessor``
(the classes the reference ``ColQwen3``/``ColQwen3Processor`` build on) directly.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from sauerkraut_rag import load_encoder
from sauerkraut_rag.encoders._qwen3vl import PAGE_PROMPT
from sauerkraut_rag.encoders.colqwen3 import ColQwen3Encoder
from sauerkraut_rag.errors import (
    ImageLoadError,
    InvalidInputError,
    InvalidInputTypeError,
)
from tests.encoders.colqwen3_inputs import PAGES, QUERIES, noise_image
from tests.factories.colqwen3 import (
    IMAGE_TOKEN_ID,
    TOKEN_IDS,
    build_tiny_colqwen3,
)

ENDOFTEXT = TOKEN_IDS["<|endoftext|>"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_colqwen3(tmp_path_factory.mktemp("colqwen3"))


@pytest.fixture(scope="module")
def encoder(folder: Path) -> ColQwen3Encoder:
    enc = load_encoder(folder, device="cpu", dtype="float32")
    assert isinstance(enc, ColQwen3Encoder)
    return enc


def reference_forward(folder: Path, text: str, image: Image.Image | None = None) -> np.ndarray:
    """One item through Qwen3VLModel -> hidden_states[-1] -> proj -> /norm -> *mask."""
    from transformers import Qwen2VLProcessor, Qwen3VLConfig, Qwen3VLModel

    raw = json.loads((folder / "config.json").read_text())
    config = Qwen3VLConfig.from_dict({**raw, "model_type": "qwen3_vl"})
    stored = load_file(folder / "model.safetensors")
    weights = {k.removeprefix("model."): v for k, v in stored.items()}
    proj = torch.nn.Linear(config.text_config.hidden_size, raw.get("dim", 128))
    head = {name: weights.pop(f"custom_text_proj.{name}") for name in ("weight", "bias")}
    proj.load_state_dict(head)
    model = Qwen3VLModel(config).eval()
    model.load_state_dict(weights, strict=True)
    processor = Qwen2VLProcessor.from_pretrained(folder)
    inputs = processor(text=[text], images=None if image is None else [image], return_tensors="pt")
    with torch.inference_mode():
        hidden = model(**inputs, use_cache=False, output_hidden_states=True).hidden_states[-1]
        vectors = proj(hidden)
        vectors = vectors / vectors.norm(dim=-1, keepdim=True)
        vectors = vectors * inputs["attention_mask"].unsqueeze(-1)
    return vectors[0][inputs["attention_mask"][0].bool()].numpy()


def query_text(text: str) -> str:
    return "Query: " + text + "<|endoftext|>" * 10


# --- loading -------------------------------------------------------------------------


def test_encoder_attributes(encoder: ColQwen3Encoder) -> None:
    assert (encoder.modality, encoder.dim, encoder.dtype) == ("image", 128, torch.float32)


# --- prompts, padding, model inputs ---------------------------------------------------


def test_page_inputs_match_transformers_qwen2vl_processor(
    folder: Path, encoder: ColQwen3Encoder
) -> None:
    """Same ids, mask, mm_token_type_ids and pixels as the processor class the reference uses."""
    from transformers import Qwen2VLProcessor

    processor = Qwen2VLProcessor.from_pretrained(folder)
    processor.tokenizer.padding_side = "left"
    expected = processor(
        text=[PAGE_PROMPT] * 2, images=PAGES[:2], padding="longest", return_tensors="pt"
    )
    ours = encoder._prepare_pages(PAGES[:2])
    assert (
        set(ours)
        == set(expected)
        == {
            "input_ids",
            "attention_mask",
            "mm_token_type_ids",
            "pixel_values",
            "image_grid_thw",
        }
    )
    for key in ours:
        torch.testing.assert_close(ours[key], expected[key], rtol=0, atol=0)


def test_page_prompt_tokens_and_left_padding(encoder: ColQwen3Encoder) -> None:
    batch = encoder._prepare_pages(PAGES[:2])
    grid = batch["image_grid_thw"]
    n_image = (grid.prod(-1) // 4).tolist()
    assert n_image[0] != n_image[1]
    tok = encoder.tokenizer
    for row, n in enumerate(n_image):
        ids = batch["input_ids"][row][batch["attention_mask"][row].bool()].tolist()
        head = tok.convert_tokens_to_ids(["<|im_start|>"]) + tok.encode("user\n")
        head += tok.convert_tokens_to_ids(["<|vision_start|>"])
        tail = tok.convert_tokens_to_ids(["<|vision_end|>"]) + tok.encode("Describe the image.")
        tail += tok.convert_tokens_to_ids(["<|im_end|>", "<|endoftext|>"])
        assert ids == head + [IMAGE_TOKEN_ID] * n + tail
    short = int(np.argmin(n_image))
    pad = batch["attention_mask"].shape[1] - int(batch["attention_mask"][short].sum())
    assert pad > 0
    assert batch["attention_mask"][short][:pad].sum() == 0  # padding on the left
    assert batch["attention_mask"][short][pad:].all()


def test_mm_token_type_ids_mark_image_tokens(encoder: ColQwen3Encoder) -> None:
    pages = encoder._prepare_pages(PAGES[:2])
    torch.testing.assert_close(
        pages["mm_token_type_ids"], (pages["input_ids"] == IMAGE_TOKEN_ID).long(), rtol=0, atol=0
    )
    assert int(pages["mm_token_type_ids"].sum()) == int(pages["image_grid_thw"].prod(-1).sum() // 4)
    queries = encoder._prepare_queries(QUERIES)
    assert int(queries["mm_token_type_ids"].abs().sum()) == 0
    assert "token_type_ids" not in pages and "token_type_ids" not in queries


def test_query_format_and_left_padding(encoder: ColQwen3Encoder) -> None:
    batch = encoder._prepare_queries(QUERIES[:2])
    tok = encoder.tokenizer
    for row, text in enumerate(QUERIES[:2]):
        ids = batch["input_ids"][row][batch["attention_mask"][row].bool()].tolist()
        assert ids == tok.encode("Query: " + text) + [ENDOFTEXT] * 10
        assert tok.decode(ids) == query_text(text)
    n_real = batch["attention_mask"][0].sum()
    assert batch["attention_mask"][0][: batch["input_ids"].shape[1] - n_real].sum() == 0
    vectors = encoder.encode_query(QUERIES[0])
    assert vectors.shape == (len(tok.encode("Query: " + QUERIES[0])) + 10, 128)


# --- forward semantics ----------------------------------------------------------------


@pytest.mark.parametrize("index", [0, 1])
def test_page_vectors_match_straightforward_forward(
    index: int, folder: Path, encoder: ColQwen3Encoder
) -> None:
    expected = reference_forward(folder, PAGE_PROMPT, PAGES[index])
    ours = encoder.encode_document(PAGES[index])
    assert ours.shape == expected.shape
    np.testing.assert_allclose(ours, expected, atol=1e-5, rtol=0)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)


def test_query_vectors_match_straightforward_forward(
    folder: Path, encoder: ColQwen3Encoder
) -> None:
    expected = reference_forward(folder, query_text(QUERIES[1]))
    np.testing.assert_allclose(encoder.encode_query(QUERIES[1]), expected, atol=1e-5, rtol=0)


def test_projection_comes_before_normalisation(encoder: ColQwen3Encoder) -> None:
    """The check above can fail: normalising the hidden state first gives other vectors."""
    batch = encoder._prepare_queries([QUERIES[0]])
    with torch.inference_mode():
        hidden = encoder._forward(batch)
        other = encoder.projection(hidden / hidden.norm(dim=-1, keepdim=True))
        other = other / other.norm(dim=-1, keepdim=True)
    assert np.abs(other[0].numpy() - encoder.encode_query(QUERIES[0])).max() > 1e-3


def test_hidden_states_last_is_last_hidden_state(encoder: ColQwen3Encoder) -> None:
    """The reference reads ``hidden_states[-1]``; in transformers 5 it is the normed output."""
    batch = encoder._prepare_pages([PAGES[1]])
    with torch.inference_mode():
        out = encoder.model(**batch, use_cache=False, output_hidden_states=True)
    torch.testing.assert_close(out.hidden_states[-1], out.last_hidden_state, rtol=0, atol=0)


def test_untied_last_hidden_state_follows_reference(folder: Path, tmp_path: Path) -> None:
    """A text config with ``tie_last_hidden_states: false`` makes ``hidden_states[-1]``
    the pre-norm state; the reference reads that entry, so we must too."""
    import shutil

    untied = Path(shutil.copytree(folder, tmp_path / "untied"))
    raw = json.loads((untied / "config.json").read_text())
    raw["text_config"]["tie_last_hidden_states"] = False
    (untied / "config.json").write_text(json.dumps(raw))
    expected = reference_forward(untied, PAGE_PROMPT, PAGES[1])
    ours = load_encoder(untied, device="cpu").encode_document(PAGES[1])
    np.testing.assert_allclose(ours, expected, atol=1e-5, rtol=0)
    tied = reference_forward(folder, PAGE_PROMPT, PAGES[1])
    assert np.abs(tied - expected).max() > 1e-3  # the two readings really differ


def test_bfloat16_runs_and_returns_float32(folder: Path, encoder: ColQwen3Encoder) -> None:
    half = load_encoder(folder, device="cpu", dtype="bfloat16")
    assert half.dtype == torch.bfloat16
    page, exact = half.encode_document(PAGES[1]), encoder.encode_document(PAGES[1])
    assert page.dtype == np.float32 and page.shape == exact.shape
    cosine = (page * exact).sum(axis=1)
    assert cosine.min() > 0.95


def test_image_token_only_option(folder: Path, encoder: ColQwen3Encoder) -> None:
    masked = load_encoder(folder, device="cpu", mask_non_image_embeddings=True)
    full = encoder.encode_document(PAGES[0])
    batch = encoder._prepare_pages([PAGES[0]])
    is_image = (batch["input_ids"][0] == IMAGE_TOKEN_ID).numpy()
    only = masked.encode_document(PAGES[0])
    assert only.shape[0] == int(is_image.sum()) < full.shape[0]
    np.testing.assert_allclose(only, full[is_image], atol=1e-6, rtol=0)
    np.testing.assert_array_equal(masked.encode_query("q"), encoder.encode_query("q"))


def test_max_num_visual_tokens_caps_page_resolution(folder: Path, encoder: ColQwen3Encoder) -> None:
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize

    big = noise_image(640, 480, 4)
    capped = load_encoder(folder, device="cpu", max_num_visual_tokens=100)
    height, width = smart_resize(640, 480, factor=32, min_pixels=65536, max_pixels=100 * 28 * 28)
    n_image = (height // 32) * (width // 32)
    batch = capped._prepare_pages([big])
    assert int((batch["input_ids"] == IMAGE_TOKEN_ID).sum()) == n_image
    full = encoder._prepare_pages([big])
    assert int((full["input_ids"] == IMAGE_TOKEN_ID).sum()) > n_image


# --- batching ---------------------------------------------------------------------------


def test_pages_batch_invariance(encoder: ColQwen3Encoder) -> None:
    mixed = encoder.encode_documents(PAGES, batch_size=8)
    for page, vectors in zip(PAGES, mixed, strict=True):
        np.testing.assert_allclose(encoder.encode_document(page), vectors, atol=1e-4, rtol=0)


def test_queries_batch_invariance(encoder: ColQwen3Encoder) -> None:
    mixed = encoder.encode_queries(QUERIES, batch_size=8)
    for text, vectors in zip(QUERIES, mixed, strict=True):
        np.testing.assert_allclose(encoder.encode_query(text), vectors, atol=1e-4, rtol=0)


def test_outputs_keep_input_order_across_batches(encoder: ColQwen3Encoder) -> None:
    pages = [PAGES[1], PAGES[0], PAGES[2], PAGES[1]]
    out = encoder.encode_documents(pages, batch_size=2)
    assert [o.shape[0] for o in out] == [encoder.encode_document(p).shape[0] for p in pages]
    assert all(o.dtype == np.float32 for o in out)


# --- inputs -------------------------------------------------------------------------


def test_pil_path_and_bytes_inputs_agree(encoder: ColQwen3Encoder, tmp_path: Path) -> None:
    path = tmp_path / "page.png"
    PAGES[0].save(path)
    buffer = io.BytesIO()
    PAGES[0].save(buffer, format="PNG")
    from_pil, from_path, from_str, from_bytes = encoder.encode_documents(
        [PAGES[0], path, str(path), buffer.getvalue()]
    )
    for other in (from_path, from_str, from_bytes):
        np.testing.assert_array_equal(other, from_pil)


def test_non_rgb_image_is_converted(encoder: ColQwen3Encoder) -> None:
    rgba = PAGES[1].convert("RGBA")
    assert encoder.encode_document(rgba).shape == encoder.encode_document(PAGES[1]).shape


@pytest.mark.parametrize("item", [b"not an image", "/nonexistent/page.png"])
def test_unreadable_image_raises(encoder: ColQwen3Encoder, item: object) -> None:
    with pytest.raises(ImageLoadError):
        encoder.encode_documents([PAGES[0], item])


def test_bad_query_and_page_lists(encoder: ColQwen3Encoder) -> None:
    with pytest.raises(InvalidInputError):
        encoder.encode_queries([])
    with pytest.raises(InvalidInputTypeError):
        encoder.encode_queries(["ok", None])  # type: ignore[list-item]
    with pytest.raises(InvalidInputError):
        encoder.encode_documents([])
    with pytest.raises(InvalidInputTypeError):
        encoder.encode_documents([42])
