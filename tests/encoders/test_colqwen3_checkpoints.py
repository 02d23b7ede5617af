"""ColQwen3 checkpoints: hub-id loading, key layouts, shards, config fields, broken folders.

Every checkpoint is built by :mod:`tests.factories.colqwen3` with the same seed, so
all valid layouts must give bit-identical vectors.
"""

from __future__ import annotations

from pathlib import Path
from typing import get_args

import numpy as np
import pytest
from safetensors.torch import load_file, save_file

from sauerkraut_rag import load_encoder
from sauerkraut_rag.encoders.colqwen3 import ColQwen3Encoder
from sauerkraut_rag.errors import CheckpointError, InvalidInputError
from tests.encoders.colqwen3_inputs import HUB_ID, PAGES
from tests.factories.colqwen3 import (
    BrokenKind,
    break_checkpoint,
    build_tiny_colqwen3,
    shard_checkpoint,
)
from tests.hub_cache import install_in_hf_cache, use_offline_cache


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_colqwen3(tmp_path_factory.mktemp("colqwen3"))


@pytest.fixture(scope="module")
def encoder(folder: Path) -> ColQwen3Encoder:
    enc = load_encoder(folder, device="cpu")
    assert isinstance(enc, ColQwen3Encoder)
    return enc


def test_loads_by_hub_id_from_offline_cache(
    folder: Path, encoder: ColQwen3Encoder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "hub"
    install_in_hf_cache(folder, HUB_ID, cache)
    use_offline_cache(monkeypatch, cache)
    by_id = load_encoder(HUB_ID, device="cpu")
    assert by_id.name == HUB_ID
    page = PAGES[0]
    np.testing.assert_array_equal(by_id.encode_document(page), encoder.encode_document(page))
    np.testing.assert_array_equal(by_id.encode_query("x"), encoder.encode_query("x"))


@pytest.mark.parametrize("prefix", ["model.", "base_model.model.", "base_model.model.model."])
def test_key_prefix_layouts_give_identical_vectors(
    prefix: str, encoder: ColQwen3Encoder, tmp_path: Path
) -> None:
    other = load_encoder(build_tiny_colqwen3(tmp_path, key_prefix=prefix), device="cpu")
    page = PAGES[1]
    np.testing.assert_array_equal(other.encode_document(page), encoder.encode_document(page))
    np.testing.assert_array_equal(other.encode_query("q"), encoder.encode_query("q"))


def test_keys_under_two_prefixes_are_rejected(tmp_path: Path) -> None:
    folder = build_tiny_colqwen3(tmp_path)
    weights = load_file(folder / "model.safetensors")
    weights["model.custom_text_proj.bias"] = weights["custom_text_proj.bias"].clone()
    save_file(weights, str(folder / "model.safetensors"))
    with pytest.raises(CheckpointError, match="twice"):
        load_encoder(folder, device="cpu")


def test_unused_lm_head_is_ignored(encoder: ColQwen3Encoder, tmp_path: Path) -> None:
    folder = build_tiny_colqwen3(tmp_path, key_prefix="model.")
    weights = load_file(folder / "model.safetensors")
    weights["lm_head.weight"] = weights["model.language_model.embed_tokens.weight"].clone()
    save_file(weights, str(folder / "model.safetensors"))
    page = PAGES[1]
    np.testing.assert_array_equal(
        load_encoder(folder, device="cpu").encode_document(page), encoder.encode_document(page)
    )


def test_sharded_weights_load(encoder: ColQwen3Encoder, tmp_path: Path) -> None:
    folder = shard_checkpoint(build_tiny_colqwen3(tmp_path))
    assert not (folder / "model.safetensors").exists()
    sharded = load_encoder(folder, device="cpu")
    page = PAGES[1]
    np.testing.assert_array_equal(sharded.encode_document(page), encoder.encode_document(page))


@pytest.mark.parametrize(("dim", "expected"), [(None, 128), (64, 64)])
def test_dim_comes_from_config(dim: int | None, expected: int, tmp_path: Path) -> None:
    enc = load_encoder(build_tiny_colqwen3(tmp_path, dim=dim), device="cpu")
    assert enc.dim == expected
    assert enc.encode_query("q").shape[1] == expected


def test_qwen3_vl_model_type_is_accepted(tmp_path: Path) -> None:
    enc = load_encoder(build_tiny_colqwen3(tmp_path, model_type="qwen3_vl"), device="cpu")
    assert isinstance(enc, ColQwen3Encoder)


# --- bad checkpoints and options ----------------------------------------------------------


BROKEN_MESSAGES: dict[str, str] = {
    "missing_config": "config.json",
    "missing_weights": "model.safetensors",
    "missing_tokenizer": "tokenizer.json",
    "missing_preprocessor": "preprocessor_config.json",
    "missing_key": "missing keys",
    "extra_key": "unexpected keys",
    "shape_mismatch": "shapes",
}


@pytest.mark.parametrize("how", get_args(BrokenKind))
def test_broken_checkpoints_raise_checkpoint_error(how: BrokenKind, tmp_path: Path) -> None:
    folder = break_checkpoint(build_tiny_colqwen3(tmp_path), how)
    with pytest.raises(CheckpointError) as info:
        load_encoder(folder, device="cpu")
    message = str(info.value)
    assert str(folder) in message
    assert BROKEN_MESSAGES[how] in message


def test_missing_key_error_names_the_key(tmp_path: Path) -> None:
    folder = break_checkpoint(build_tiny_colqwen3(tmp_path), "missing_key")
    with pytest.raises(CheckpointError, match=r"missing keys: language_model\.norm\.weight"):
        load_encoder(folder, device="cpu")


def test_unknown_option_is_rejected(folder: Path) -> None:
    with pytest.raises(InvalidInputError, match="max_num_visual_tokens"):
        load_encoder(folder, device="cpu", query_length=32)


@pytest.mark.parametrize("value", [0, -5])
def test_bad_max_num_visual_tokens(folder: Path, value: int) -> None:
    with pytest.raises(InvalidInputError):
        load_encoder(folder, device="cpu", max_num_visual_tokens=value)
