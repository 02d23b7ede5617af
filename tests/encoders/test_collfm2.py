"""ColLFM2 page encoder: forward semantics, key layouts, batching, bad input.

The expected vectors come from an independent, straightforward forward written
here: transformers' ``Lfm2VlModel`` built from the base config with the weights
mapped by hand and loaded with ``strict=True``, run on each item alone (no batch,
no padding), ``hidden_states[-1]`` (what the reference reads) projected with the
raw ``custom_text_proj`` tensors and divided by its norm.
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from sauerkraut_rag import load_encoder
from sauerkraut_rag.encoders._visual import project_normalise_mask
from sauerkraut_rag.encoders.collfm2 import PAGE_PROMPT, ColLFM2Encoder
from sauerkraut_rag.errors import (
    CheckpointError,
    ImageLoadError,
    InvalidInputError,
    InvalidInputTypeError,
    ModelNotFoundError,
)
from tests.factories.collfm2 import (
    BASE_REPO_ID,
    HUB_ID,
    IMAGE_TOKEN_ID,
    VALID_LAYOUTS,
    build_tiny_collfm2,
)
from tests.hub_cache import install_in_hf_cache, use_offline_cache


def load_encoder_5x(*args: Any, **kwargs: Any) -> Any:
    """``load_encoder`` with transformers 5.x input preparation, like the independent
    forward below (it runs the installed 5.x processor); the 4.57 preparation is tested
    against the authors' code in ``test_published_env.py``."""
    return load_encoder(*args, processing="transformers-5", **kwargs)


SPEC_PAGE_PROMPT = "<|im_start|>user\n<image>Describe the image.<|im_end|>"
QUERIES = ["Umsatz 2023?", "What does the revenue chart on page three show?", "x"]


def make_image(height: int, width: int, seed: int) -> Image.Image:
    """A deterministic page-like RGB image: gradient plus noise."""
    rs = np.random.RandomState(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.stack([(xx * 255 // max(width - 1, 1)), (yy * 255 // max(height - 1, 1)), xx * 0], -1)
    noise = rs.randint(0, 60, (height, width, 3))
    return Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8), "RGB")


PAGES = [make_image(60, 90, 1), make_image(300, 200, 2), make_image(1100, 560, 3)]
"""Single tile upscaled, single tile, and a 2x1 grid plus thumbnail (3 tiles)."""


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_collfm2(tmp_path_factory.mktemp("collfm2") / "ck")


@pytest.fixture(scope="module")
def encoder(checkpoint: Path) -> ColLFM2Encoder:
    enc = load_encoder_5x(checkpoint, device="cpu", dtype="float32")
    assert isinstance(enc, ColLFM2Encoder)
    return enc


class IndependentColLFM2:
    """Straightforward single-item forward, sharing no code with the encoder."""

    def __init__(self, folder: Path) -> None:
        from transformers import Lfm2VlConfig, Lfm2VlModel, Lfm2VlProcessor

        base = Path(__import__("json").loads((folder / "config.json").read_text())["base_model"])
        config = Lfm2VlConfig.from_pretrained(str(base), attn_implementation="eager")
        self.model = Lfm2VlModel(config).eval()
        state = load_file(str(folder / "model.safetensors"))
        inner = {
            k.removeprefix("model.").replace("vision_tower.vision_model.", "vision_tower."): v
            for k, v in state.items()
            if k.startswith("model.")
        }
        self.model.load_state_dict(inner, strict=True)
        self.weight = state["custom_text_proj.weight"]
        self.bias = state["custom_text_proj.bias"]
        self.processor = Lfm2VlProcessor.from_pretrained(str(folder))

    def _embed(self, inputs: dict[str, Any]) -> np.ndarray:
        with torch.no_grad():
            out = self.model(**inputs, output_hidden_states=True)
        hidden = out.hidden_states[-1][0]
        proj = hidden @ self.weight.T + self.bias
        return (proj / proj.norm(dim=-1, keepdim=True)).numpy()

    def query(self, text: str) -> np.ndarray:
        return self._embed(dict(self.processor.tokenizer(text, return_tensors="pt")))

    def page(self, image: Image.Image) -> np.ndarray:
        rgb = image.convert("RGB")
        inputs = self.processor(text=SPEC_PAGE_PROMPT, images=rgb, return_tensors="pt")
        return self._embed(dict(inputs))


@pytest.fixture(scope="module")
def independent(checkpoint: Path) -> IndependentColLFM2:
    return IndependentColLFM2(checkpoint)


def assert_same(got: list[np.ndarray], want: list[np.ndarray], atol: float) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert g.dtype == np.float32
        assert g.shape == w.shape
        np.testing.assert_allclose(g, w, atol=atol, rtol=0)


# --- forward semantics --------------------------------------------------------------------


def test_page_prompt_is_the_spec_string() -> None:
    assert PAGE_PROMPT == SPEC_PAGE_PROMPT


def test_pages_match_independent_forward(
    encoder: ColLFM2Encoder, independent: IndependentColLFM2
) -> None:
    got = encoder.encode_documents(PAGES, batch_size=3)
    assert_same(got, [independent.page(p) for p in PAGES], atol=1e-5)
    for emb in got:
        np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)


def test_queries_match_independent_forward(
    encoder: ColLFM2Encoder, independent: IndependentColLFM2
) -> None:
    got = encoder.encode_queries(QUERIES, batch_size=3)
    assert_same(got, [independent.query(q) for q in QUERIES], atol=1e-5)


def test_last_hidden_state_is_the_references_hidden_states_last(
    encoder: ColLFM2Encoder,
) -> None:
    """The reference reads ``hidden_states[-1]``; we read ``last_hidden_state`` (post-norm)."""
    batch = dict(encoder._prepare_pages([PAGES[0]]))
    with torch.no_grad():
        out = encoder.backbone(**batch, output_hidden_states=True)
    assert torch.equal(out.hidden_states[-1], out.last_hidden_state)
    assert not torch.allclose(out.hidden_states[-2], out.last_hidden_state)


def test_queries_are_raw_text_left_padded(encoder: ColLFM2Encoder, checkpoint: Path) -> None:
    from tokenizers import Tokenizer

    raw = Tokenizer.from_file(str(checkpoint / "tokenizer.json"))
    batch = encoder._prepare_queries(["ab", "a longer query"])
    ids, mask = batch["input_ids"], batch["attention_mask"]
    for row, text in enumerate(["ab", "a longer query"]):
        want = raw.encode(text).ids
        assert want[0] == raw.token_to_id("<|startoftext|>")  # the tokenizer's own BOS
        kept = ids[row][mask[row].bool()].tolist()
        assert kept == want  # no "Query: " prefix, no <|endoftext|> augmentation
    short = ids[0].tolist()
    n_pad = len(short) - len(raw.encode("ab").ids)
    assert short[:n_pad] == [raw.token_to_id("<|pad|>")] * n_pad  # padding on the left
    assert mask[0].tolist() == [0] * n_pad + [1] * (len(short) - n_pad)
    assert raw.token_to_id("<|endoftext|>") not in ids.tolist()[1]


def test_long_query_is_not_truncated(encoder: ColLFM2Encoder) -> None:
    """The reference passes max_length=2048 without truncation: nothing is cut."""
    text = "a" * 2500
    (emb,) = encoder.encode_queries([text])
    assert emb.shape == (2501, 128)


def test_pages_are_prompted_one_at_a_time_and_right_padded_with_zeros(
    encoder: ColLFM2Encoder, independent: IndependentColLFM2
) -> None:
    small, big = PAGES[0], PAGES[2]
    batch = encoder._prepare_pages([small, big])
    singles = [
        independent.processor(text=SPEC_PAGE_PROMPT, images=im, return_tensors="pt")
        for im in (small, big)
    ]
    n_small = singles[0]["input_ids"].shape[1]
    n_big = singles[1]["input_ids"].shape[1]
    assert batch["input_ids"].shape == (2, n_big) and n_small < n_big
    assert torch.equal(batch["input_ids"][0, :n_small], singles[0]["input_ids"][0])
    assert batch["input_ids"][0, n_small:].eq(0).all()  # zeros, on the right
    assert batch["attention_mask"][0].tolist() == [1] * n_small + [0] * (n_big - n_small)
    assert torch.equal(batch["input_ids"][1], singles[1]["input_ids"][0])
    # pixel tensors of all tiles are stacked: 1 tile + 3 tiles (2x1 grid + thumbnail)
    assert batch["pixel_values"].shape[0] == 1 + 3
    assert torch.equal(batch["pixel_values"][1:], singles[1]["pixel_values"])
    assert torch.equal(batch["spatial_shapes"][:1], singles[0]["spatial_shapes"])
    # every page token sequence holds the prompt and image tokens, no BOS
    first = batch["input_ids"][0, :n_small].tolist()
    assert first[0] == independent.processor.tokenizer.convert_tokens_to_ids("<|im_start|>")
    assert first.count(IMAGE_TOKEN_ID) == 70


def test_projection_then_normalisation_then_mask() -> None:
    torch.manual_seed(0)
    hidden = torch.randn(2, 4, 8)
    proj = torch.nn.Linear(8, 5)
    mask = torch.tensor([[1, 1, 1, 0], [0, 1, 1, 1]])
    out = project_normalise_mask(hidden, proj, mask)
    with torch.no_grad():
        raw = proj(hidden)
    want = raw / raw.norm(dim=-1, keepdim=True) * mask[..., None]
    torch.testing.assert_close(out, want, atol=0, rtol=0)
    assert out[0, 3].eq(0).all() and out[1, 0].eq(0).all()
    # normalising before projecting would give something else
    wrong = proj(hidden / hidden.norm(dim=-1, keepdim=True)) * mask[..., None]
    assert not torch.allclose(out, wrong, atol=1e-3)


# --- layouts and loading ------------------------------------------------------------------


@pytest.mark.parametrize("layout", [lay for lay in VALID_LAYOUTS if lay != "collfm2"])
def test_key_layouts_give_identical_embeddings(
    layout: str, encoder: ColLFM2Encoder, tmp_path: Path
) -> None:
    other = load_encoder_5x(build_tiny_collfm2(tmp_path / "ck", layout=layout), device="cpu")
    assert_same(other.encode_queries(QUERIES[:2]), encoder.encode_queries(QUERIES[:2]), atol=1e-6)
    assert_same(other.encode_documents(PAGES[:2]), encoder.encode_documents(PAGES[:2]), atol=1e-6)


def test_processor_falls_back_to_base_model(encoder: ColLFM2Encoder, tmp_path: Path) -> None:
    folder = build_tiny_collfm2(tmp_path / "ck", with_processor=False)
    assert not (folder / "tokenizer.json").exists()
    other = load_encoder_5x(folder, device="cpu")
    assert_same(other.encode_documents(PAGES[:1]), encoder.encode_documents(PAGES[:1]), atol=1e-6)


def test_loads_by_hub_id_from_offline_cache(
    encoder: ColLFM2Encoder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = build_tiny_collfm2(tmp_path / "ck", base_model=BASE_REPO_ID)
    cache = tmp_path / "hub"
    install_in_hf_cache(folder, HUB_ID, cache)
    install_in_hf_cache(tmp_path / "ck-base", BASE_REPO_ID, cache)
    use_offline_cache(monkeypatch, cache)
    enc = load_encoder_5x(HUB_ID, device="cpu")
    assert enc.name == HUB_ID and enc.modality == "image" and enc.dim == 128
    assert_same(enc.encode_queries(QUERIES[:1]), encoder.encode_queries(QUERIES[:1]), atol=1e-6)
    assert_same(enc.encode_documents(PAGES[:1]), encoder.encode_documents(PAGES[:1]), atol=1e-6)


def test_missing_base_model_names_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = build_tiny_collfm2(tmp_path / "ck", base_model=BASE_REPO_ID)
    use_offline_cache(monkeypatch, tmp_path / "empty-hub")
    with pytest.raises(ModelNotFoundError, match="LiquidAI/LFM2-VL-450M"):
        load_encoder_5x(folder, device="cpu")


@pytest.mark.parametrize(
    ("layout", "needles"),
    [
        ("no_weights", ["model.safetensors", "collfm2_projection.pt"]),
        ("missing_key", ["missing keys", "language_model.layers.1.self_attn.q_proj.weight"]),
        ("extra_key", ["unexpected keys", "language_model.surprise.weight"]),
        ("missing_head", ["missing keys", "custom_text_proj.weight", "custom_text_proj.bias"]),
        ("wrong_shape", ["custom_text_proj.weight", "(128, 16)", "(128, 32)"]),
    ],
)
def test_broken_checkpoints_raise_checkpoint_error(
    layout: str, needles: list[str], tmp_path: Path
) -> None:
    folder = build_tiny_collfm2(tmp_path / "ck", layout=layout)  # type: ignore[arg-type]
    with pytest.raises(CheckpointError) as info:
        load_encoder_5x(folder, device="cpu")
    for needle in needles:
        assert needle in str(info.value)


def test_missing_processor_files_raise(tmp_path: Path) -> None:
    folder = build_tiny_collfm2(tmp_path / "ck", with_processor=False)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (tmp_path / "ck-base" / name).unlink()
    with pytest.raises(CheckpointError, match="tokenizer"):
        load_encoder_5x(folder, device="cpu")


def test_missing_config_raises(tmp_path: Path) -> None:
    folder = build_tiny_collfm2(tmp_path / "ck")
    shutil.copytree(folder, tmp_path / "copy")
    (tmp_path / "copy" / "config.json").unlink()
    with pytest.raises(CheckpointError, match=r"config\.json"):
        ColLFM2Encoder.from_folder(tmp_path / "copy", device="cpu")


def test_unknown_option_is_rejected(checkpoint: Path) -> None:
    with pytest.raises(InvalidInputError, match="max_image_tokens"):
        load_encoder_5x(checkpoint, device="cpu", max_image_token=64)


def test_image_token_budget_can_be_overridden(checkpoint: Path, encoder: ColLFM2Encoder) -> None:
    capped = load_encoder_5x(checkpoint, device="cpu", max_image_tokens=64, min_image_tokens=16)
    (big,) = capped.encode_documents([PAGES[1]])
    (default,) = encoder.encode_documents([PAGES[1]])
    assert big.shape[0] < default.shape[0]


def test_bfloat16_returns_float32_arrays(checkpoint: Path, encoder: ColLFM2Encoder) -> None:
    enc = load_encoder_5x(checkpoint, device="cpu", dtype="bfloat16")
    (q,) = enc.encode_queries(QUERIES[:1])
    (ref,) = encoder.encode_queries(QUERIES[:1])
    assert q.dtype == np.float32 and q.shape == ref.shape
    assert np.abs(q - ref).max() < 0.1


# --- batching and inputs ------------------------------------------------------------------


def test_batch_invariance(encoder: ColLFM2Encoder) -> None:
    alone_pages = [encoder.encode_documents([p])[0] for p in PAGES]
    mixed_pages = encoder.encode_documents([PAGES[2], PAGES[0], PAGES[1], PAGES[0]], batch_size=4)
    assert_same(mixed_pages, [alone_pages[i] for i in (2, 0, 1, 0)], atol=1e-4)
    alone_q = [encoder.encode_queries([q])[0] for q in QUERIES]
    mixed_q = encoder.encode_queries([QUERIES[2], QUERIES[1], QUERIES[0]], batch_size=3)
    assert_same(mixed_q, [alone_q[i] for i in (2, 1, 0)], atol=1e-4)


def test_pil_path_and_bytes_inputs_agree(encoder: ColLFM2Encoder, tmp_path: Path) -> None:
    image = PAGES[1]
    path = tmp_path / "page.png"
    image.save(path)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    data = buffer.getvalue()
    got = encoder.encode_documents([image, path, str(path), data, io.BytesIO(data)])
    for emb in got[1:]:
        np.testing.assert_allclose(emb, got[0], atol=1e-6, rtol=0)


def test_unreadable_images_raise_image_load_error(encoder: ColLFM2Encoder, tmp_path: Path) -> None:
    with pytest.raises(ImageLoadError):
        encoder.encode_documents([PAGES[0], b"definitely not an image"])
    with pytest.raises(ImageLoadError):
        encoder.encode_documents([tmp_path / "missing.png"])
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    with pytest.raises(ImageLoadError):
        encoder.encode_documents([broken])


def test_bad_query_input(encoder: ColLFM2Encoder) -> None:
    with pytest.raises(InvalidInputTypeError, match="item 1"):
        encoder.encode_queries(["ok", 3])  # type: ignore[list-item]
    with pytest.raises(InvalidInputError):
        encoder.encode_queries([])
    with pytest.raises(InvalidInputTypeError):
        encoder.encode_documents([123])


def test_split_state_follows_the_reference_key_mapping() -> None:
    from sauerkraut_rag.encoders._lfm2_checkpoint import split_state

    t = torch.zeros(1)
    backbone, head, unknown = split_state(
        {
            "model.language_model.a": t,
            "base_model.model.vision_tower.b": t,
            "custom_text_proj.weight": t,
            "base_model.model.custom_text_proj.bias": t,
            "lm_head.weight": t,
            "base_model.lm_head.weight": t,
            "vision_tower.c": t,
        }
    )
    assert sorted(backbone) == ["language_model.a", "vision_tower.b"]
    assert sorted(head) == ["bias", "weight"]
    assert unknown == ["vision_tower.c"]
    with pytest.raises(CheckpointError, match="twice"):
        split_state({"model.x": t, "base_model.model.x": t})
