"""Tiny random ColQwen3 checkpoints in the on-disk layout of the published model.

``VAGOsolutions/SauerkrautLM-ColQwen3-1.7b-Turbo-v0.1`` is a ``ColQwen3`` (a
``Qwen3VLModel`` plus a ``custom_text_proj`` head) saved with its processor.
:func:`build_tiny_colqwen3` writes the same files with the same names, config
keys, weight key names and tokenizer special tokens, at toy sizes:

- ``config.json``: ``model_type: colqwen3``, ``architectures: [ColQwen3]``, ``dim``,
  a Qwen3-VL ``text_config`` (legacy ``rope_scaling`` with interleaved
  ``mrope_section``, as 4.57-era checkpoints store it) and ``vision_config``
  (``deepstack_visual_indexes``, patch 16, merge 2, temporal patch 2);
- ``model.safetensors``: ``visual.*``, ``language_model.*``, ``custom_text_proj.*``
  (optionally all under ``model.``);
- ``preprocessor_config.json`` / ``video_preprocessor_config.json``: the Qwen2-VL
  image processor with Qwen3-VL's sizes (``shortest_edge`` 256*256,
  ``longest_edge`` 4096*4096, mean/std 0.5);
- a byte-level BPE tokenizer built locally with ``tokenizers`` (Qwen2 pre-tokeniser
  regex, NFC, no BOS), saved as ``tokenizer.json`` + ``vocab.json`` + ``merges.txt`` +
  ``tokenizer_config.json``, with Qwen's special tokens in Qwen's order;
- ``chat_template.jinja``.

**Special-token ids.** The real tokenizer has 151,643 ordinary tokens, so its
special tokens sit at 151643.. (``<|image_pad|>`` = 151655).  Keeping those ids
would force a 151,936-row embedding (20 MB even at width 32) into every tiny
checkpoint.  Instead the tiny vocabulary has 320 ordinary tokens and the same
special tokens *in the same order* right after them (``<|endoftext|>`` = 320, ...,
``<|image_pad|>`` = 332), and ``config.json`` carries the matching ids
(``image_token_id``, ``video_token_id``, ``vision_start_token_id``, ...), exactly as
the published config carries the ids of its own tokenizer.  File names, keys and
token strings are identical to the published layout; only the numbers differ, and
they are consistent between tokenizer and config.  This also proves the encoder
reads the ids from the checkpoint instead of hard-coding 151655.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

import torch
from safetensors.torch import load_file, save_file

from tests.factories.qwen3_processor import (
    TOKEN_IDS,
    build_tokenizer,
    write_json,
    write_processor_configs,
)

IMAGE_TOKEN_ID = TOKEN_IDS["<|image_pad|>"]
CONFIG_VOCAB_SIZE = 384
"""Embedding rows; padded beyond the tokenizer like the real 151,936 > 151,669."""

BrokenKind = Literal[
    "missing_config",
    "missing_weights",
    "missing_tokenizer",
    "missing_preprocessor",
    "missing_key",
    "extra_key",
    "shape_mismatch",
]


def tiny_config(*, dim: int | None = 128, model_type: str = "colqwen3") -> dict[str, Any]:
    """The ``config.json`` of the tiny checkpoint (published key set, toy sizes)."""
    config: dict[str, Any] = {
        "architectures": ["ColQwen3"],
        "model_type": model_type,
        "image_token_id": IMAGE_TOKEN_ID,
        "video_token_id": TOKEN_IDS["<|video_pad|>"],
        "vision_start_token_id": TOKEN_IDS["<|vision_start|>"],
        "vision_end_token_id": TOKEN_IDS["<|vision_end|>"],
        "tie_word_embeddings": True,
        "dtype": "float32",
        "transformers_version": "4.57.1",
        "text_config": {
            "model_type": "qwen3_vl_text",
            "vocab_size": CONFIG_VOCAB_SIZE,
            "hidden_size": 32,
            "intermediate_size": 48,
            "num_hidden_layers": 4,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "head_dim": 8,
            "hidden_act": "silu",
            "max_position_embeddings": 262144,
            "rms_norm_eps": 1e-06,
            "rope_scaling": {
                "mrope_interleaved": True,
                "mrope_section": [2, 1, 1],
                "rope_type": "default",
            },
            "rope_theta": 5000000,
            "attention_bias": False,
            "attention_dropout": 0.0,
            "bos_token_id": TOKEN_IDS["<|endoftext|>"],
            "eos_token_id": TOKEN_IDS["<|im_end|>"],
            "initializer_range": 0.02,
            "tie_word_embeddings": True,
            "use_cache": True,
            "dtype": "float32",
        },
        "vision_config": {
            "model_type": "qwen3_vl",
            "depth": 4,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_heads": 2,
            "in_channels": 3,
            "patch_size": 16,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "out_hidden_size": 32,
            "num_position_embeddings": 16,
            "deepstack_visual_indexes": [0, 1, 2],
            "hidden_act": "gelu_pytorch_tanh",
            "initializer_range": 0.02,
        },
    }
    if dim is not None:
        config["dim"] = dim
    return config


def checkpoint_shapes(config: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    """Every weight key of a ColQwen3 checkpoint with its shape, for a ``config.json`` dict."""
    from transformers import Qwen3VLConfig, Qwen3VLModel

    parsed = Qwen3VLConfig.from_dict({**config, "model_type": "qwen3_vl"})
    with torch.device("meta"):
        shapes = {k: tuple(v.shape) for k, v in Qwen3VLModel(parsed).state_dict().items()}
    dim = config.get("dim", 128)
    shapes["custom_text_proj.weight"] = (dim, config["text_config"]["hidden_size"])
    shapes["custom_text_proj.bias"] = (dim,)
    return shapes


def tiny_state_dict(config: dict[str, Any], *, seed: int = 0) -> dict[str, torch.Tensor]:
    """Seeded random weights with the ``Qwen3VLModel`` key names plus ``custom_text_proj.*``.

    Linear/conv weights are scaled by ``1/sqrt(fan_in)`` so activations stay O(1)
    and token vectors differ visibly between positions (a test on them can fail).
    """
    shapes = checkpoint_shapes(config)
    generator = torch.Generator().manual_seed(seed)
    weights: dict[str, torch.Tensor] = {}
    for key in sorted(shapes):
        shape = shapes[key]
        noise = torch.randn(shape, generator=generator, dtype=torch.float32)
        if "norm" in key and key.endswith(".weight"):
            value = 1.0 + 0.1 * noise
        elif len(shape) >= 2 and "embed" not in key:
            value = noise / math.sqrt(math.prod(shape[1:]))
        elif key.endswith(".bias"):
            value = 0.1 * noise
        else:  # embeddings (token, position)
            value = 0.5 * noise
        weights[key] = value.contiguous()
    return weights


def build_tiny_colqwen3(
    folder: Path,
    *,
    key_prefix: str = "",
    dim: int | None = 128,
    model_type: str = "colqwen3",
    seed: int = 0,
) -> Path:
    """Write a tiny random ColQwen3 checkpoint into ``folder`` and return it.

    ``key_prefix="model."`` stores every weight under ``model.`` (a layout the
    loader must accept too).  ``dim=None`` leaves ``dim`` out of ``config.json``
    (the model then uses 128).  The same ``seed`` always gives the same weights.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config = tiny_config(dim=dim, model_type=model_type)
    write_json(folder / "config.json", config)
    weights = tiny_state_dict(config, seed=seed)
    save_file(
        {f"{key_prefix}{k}": v for k, v in weights.items()},
        str(folder / "model.safetensors"),
        metadata={"format": "pt"},
    )
    write_processor_files(folder)
    return folder


def write_processor_files(folder: Path) -> None:
    """Write the tokenizer, image/video processor configs and chat template into ``folder``."""
    write_processor_configs(folder)
    build_tokenizer(folder)


def break_checkpoint(folder: Path, how: BrokenKind) -> Path:
    """Damage a built checkpoint in one specific way; return ``folder``."""
    folder = Path(folder)
    removals = {
        "missing_config": "config.json",
        "missing_weights": "model.safetensors",
        "missing_tokenizer": "tokenizer.json",
        "missing_preprocessor": "preprocessor_config.json",
    }
    if how in removals:
        (folder / removals[how]).unlink()
        if how == "missing_tokenizer":
            for name in ("vocab.json", "merges.txt"):
                (folder / name).unlink()
        return folder
    path = folder / "model.safetensors"
    weights = load_file(str(path))
    victim = next(k for k in sorted(weights) if k.endswith("language_model.norm.weight"))
    if how == "missing_key":
        del weights[victim]
    elif how == "extra_key":
        weights[victim.replace("norm.weight", "extra_norm.weight")] = weights[victim].clone()
    elif how == "shape_mismatch":
        weights[victim] = torch.ones(weights[victim].shape[0] + 1)
    else:
        raise ValueError(f"unknown damage {how!r}")
    save_file(weights, str(path), metadata={"format": "pt"})
    return folder


def shard_checkpoint(folder: Path, n_shards: int = 2) -> Path:
    """Split ``model.safetensors`` into ``model-0000i-of-0000n.safetensors`` plus an index."""
    folder = Path(folder)
    weights = load_file(str(folder / "model.safetensors"))
    keys = sorted(weights)
    weight_map: dict[str, str] = {}
    for i in range(n_shards):
        name = f"model-{i + 1:05d}-of-{n_shards:05d}.safetensors"
        part = {k: weights[k] for k in keys[i::n_shards]}
        save_file(part, str(folder / name), metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(part, name))
    total = sum(v.numel() * v.element_size() for v in weights.values())
    write_json(
        folder / "model.safetensors.index.json",
        {"metadata": {"total_size": total}, "weight_map": weight_map},
    )
    (folder / "model.safetensors").unlink()
    return folder
