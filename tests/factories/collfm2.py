"""Tiny random ColLFM2 checkpoints in the on-disk layout of the published model.

``VAGOsolutions/SauerkrautLM-ColLFM2-450M-v0.1`` is a ``ColLFM2`` (the
``Lfm2VlModel`` of ``LiquidAI/LFM2-VL-450M`` plus a ``custom_text_proj`` head)
saved with its processor.  :func:`build_tiny_collfm2` writes the same files with
the same names, config keys, weight key names and tokenizer special tokens, at toy
sizes, next to a tiny LFM2-VL *base* folder that ``config.json`` names in
``base_model`` (as the real one names ``LiquidAI/LFM2-VL-450M``):

- ``config.json``: ``model_type: collfm2``, ``architectures: [ColLFM2]``,
  ``base_model``, ``dim``;
- ``model.safetensors``: ``model.<inner>`` keys named as transformers 4.57 saved
  them (``model.vision_tower.vision_model.*``, ``model.multi_modal_projector.*``,
  ``model.language_model.*``) plus ``custom_text_proj.{weight,bias}``; no
  ``lm_head`` (tied to the embeddings, unused);
- ``processor_config.json`` (``Lfm2VlProcessor``), ``preprocessor_config.json``
  (``Lfm2VlImageProcessor``: tile 512, patch 16, downsample 2, 64..256 image
  tokens, tiles 2..10 with thumbnail), ``tokenizer.json``, ``tokenizer_config.json``
  (``PreTrainedTokenizerFast``, image tokens as extra special tokens),
  ``special_tokens_map.json``, ``chat_template.jinja``, all as transformers 4.57
  wrote them;
- the base folder: a complete LFM2-VL ``config.json`` (``model_type: lfm2_vl``,
  ``image_token_id: 396``), its processor files and its own ``model.safetensors``
  (different random weights: the fine-tuned checkpoint must not read them).

The tokenizer is a byte-level BPE built locally with ``tokenizers``: LFM2's special
tokens at their real ids (``<|pad|>`` 0, ``<|startoftext|>`` 1, ``<|endoftext|>``
2, ``<|im_start|>`` 6, ``<|im_end|>`` 7, ...), the 256 byte tokens, reserved fillers,
then the LFM2-VL image tokens from id 396 (``<image>``, ``<|img_row_R_col_C|>`` for
R, C <= 10, ``<|img_thumbnail|>``, ``<|image_start|>``, ``<|image_end|>``).  Its
post-processor prepends ``<|startoftext|>`` like LFM2's does.

Layouts (``layout=``):

- ``"collfm2"``: the published layout above;
- ``"base_model_prefix"``: keys ``base_model.model.<inner>`` and
  ``base_model.model.custom_text_proj.*`` plus an (ignored) ``base_model.lm_head.weight``;
- ``"model_head"``: keys ``model.<inner>`` and ``model.custom_text_proj.*``;
- ``"full_config"``: ``config.json`` is the complete LFM2-VL config (no ``base_model``);
  keys in the transformers 5 naming (``model.vision_tower.*``);
- ``"projection_pt"``: the older layout: ``collfm2_projection.pt`` holds the head
  (``{"custom_text_proj": state_dict, "config": {...}}``) and the backbone weights
  are the base folder's ``model.safetensors``;
- broken: ``"no_weights"`` (neither weight file), ``"missing_key"`` (one backbone key
  dropped), ``"extra_key"`` (an unknown key added), ``"missing_head"`` (no
  ``custom_text_proj``), ``"wrong_shape"`` (head of the wrong width).

Every layout built with the same ``seed`` holds the same ColLFM2 weights.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Literal

import torch
from safetensors.torch import save_file

from tests.factories.lfm2_processor import (
    IMAGE_TOKEN_ID,
    VOCAB_SIZE,
    save_processor,
)

Layout = Literal[
    "collfm2",
    "base_model_prefix",
    "model_head",
    "full_config",
    "projection_pt",
    "no_weights",
    "missing_key",
    "extra_key",
    "missing_head",
    "wrong_shape",
]
LAYOUTS: tuple[str, ...] = Layout.__args__  # type: ignore[attr-defined]
VALID_LAYOUTS = ("collfm2", "base_model_prefix", "model_head", "full_config", "projection_pt")

DIM = 128
BASE_REPO_ID = "LiquidAI/LFM2-VL-450M"
HUB_ID = "VAGOsolutions/SauerkrautLM-ColLFM2-450M-v0.1"


def tiny_lfm2_vl_config_dict() -> dict[str, Any]:
    """A complete LFM2-VL ``config.json`` at toy sizes (4.57-style keys)."""
    return {
        "architectures": ["Lfm2VlForConditionalGeneration"],
        "model_type": "lfm2_vl",
        "downsample_factor": 2,
        "image_token_id": IMAGE_TOKEN_ID,
        "projector_bias": True,
        "projector_hidden_act": "gelu",
        "projector_hidden_size": 48,
        "projector_use_layernorm": True,
        "torch_dtype": "bfloat16",
        "text_config": {
            "model_type": "lfm2",
            "vocab_size": VOCAB_SIZE,
            "hidden_size": 32,
            "intermediate_size": 64,
            "block_multiple_of": 16,
            "block_ffn_dim_multiplier": 1.0,
            "block_auto_adjust_ff_dim": True,
            "num_hidden_layers": 3,
            "num_attention_heads": 2,
            "num_key_value_heads": 1,
            "layer_types": ["conv", "full_attention", "conv"],
            "full_attn_idxs": [1],
            "conv_L_cache": 3,
            "conv_bias": False,
            "max_position_embeddings": 128000,
            "norm_eps": 1e-05,
            "rope_theta": 1000000.0,
            "pad_token_id": 0,
            "bos_token_id": 1,
            "eos_token_id": 7,
            "tie_embedding": True,
        },
        "vision_config": {
            "model_type": "siglip2_vision_model",
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "num_channels": 3,
            "num_patches": 256,
            "patch_size": 16,
            "hidden_act": "gelu_pytorch_tanh",
            "layer_norm_eps": 1e-06,
            "vision_use_head": False,
        },
    }


def random_backbone_state(seed: int) -> dict[str, torch.Tensor]:
    """Random ``Lfm2VlModel`` weights with transformers 5 key names (no prefix)."""
    from transformers import Lfm2VlConfig, Lfm2VlModel

    config = Lfm2VlConfig(**_config_kwargs())
    torch.manual_seed(seed)
    model = Lfm2VlModel(config)
    with torch.no_grad():
        for param in model.parameters():  # non-trivial norms/biases too
            param.add_(0.02 * torch.randn_like(param))
    return {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}


def _config_kwargs() -> dict[str, Any]:
    data = tiny_lfm2_vl_config_dict()
    data.pop("architectures")
    data.pop("model_type")
    data.pop("torch_dtype")
    return data


def legacy_names(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """transformers 4.57 names: the SigLIP2 tower had an extra ``vision_model.`` level."""
    return {
        (
            k.replace("vision_tower.", "vision_tower.vision_model.", 1)
            if k.startswith("vision_tower.")
            else k
        ): v
        for k, v in state.items()
    }


def random_head(seed: int, hidden: int = 32, dim: int = DIM) -> dict[str, torch.Tensor]:
    """``custom_text_proj`` weights ``{"weight": (dim, hidden), "bias": (dim,)}`` (float32).

    The values are exactly representable in bfloat16, like the published head: the
    reference casts its head to bfloat16, which then changes nothing.
    """
    gen = torch.Generator().manual_seed(seed + 1000)
    return {
        "weight": (0.2 * torch.randn(dim, hidden, generator=gen)).bfloat16().float(),
        "bias": (0.05 * torch.randn(dim, generator=gen)).bfloat16().float(),
    }


def write_base(folder: Path, *, seed: int, weights: bool = True) -> Path:
    """A tiny ``LiquidAI/LFM2-VL-450M``-like folder: config, processor files, weights."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(tiny_lfm2_vl_config_dict(), indent=2), "utf-8")
    save_processor(folder)
    if not weights:
        return folder
    state = {f"model.{k}": v for k, v in legacy_names(random_backbone_state(seed)).items()}
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    return folder


def build_tiny_collfm2(
    folder: Path,
    *,
    layout: Layout = "collfm2",
    seed: int = 0,
    base_model: str | None = None,
    base_folder: Path | None = None,
    with_processor: bool = True,
    legacy_vision_keys: bool = True,
    base_weights: bool = True,
) -> Path:
    """Write a tiny ColLFM2 checkpoint into ``folder`` (and its base into ``base_folder``).

    ``base_folder`` defaults to ``folder.parent / (folder.name + "-base")``;
    ``base_model`` (the value written into ``config.json``) defaults to its absolute
    path; pass a hub id such as ``"LiquidAI/LFM2-VL-450M"`` when the base is
    installed into a fake hub cache.  ``with_processor=False`` leaves the processor
    files out of the ColLFM2 folder (they then come from the base).
    ``legacy_vision_keys=False`` writes the vision tower under transformers 5 names
    (``model.vision_tower.*``); ``base_weights=False`` leaves the base without weights
    (all a full-weights checkpoint needs from it is config and processor).
    """
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; expected one of {LAYOUTS}")
    folder = Path(folder)
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    base_folder = Path(base_folder) if base_folder else folder.parent / f"{folder.name}-base"
    if base_folder.exists():
        shutil.rmtree(base_folder)
    # The base ships the fine-tuned backbone only in the old .pt layout; otherwise it
    # holds other (pre-training) weights that a correct loader never reads.
    write_base(
        base_folder,
        seed=seed if layout == "projection_pt" else seed + 1,
        weights=base_weights or layout == "projection_pt",
    )

    backbone = random_backbone_state(seed)
    head = random_head(seed)
    if with_processor:
        save_processor(folder)

    if layout == "full_config":
        config: dict[str, Any] = tiny_lfm2_vl_config_dict()
    else:
        config = {
            "architectures": ["ColLFM2"],
            "model_type": "collfm2",
            "base_model": base_model or str(base_folder.resolve()),
            "dim": DIM,
            "mask_non_image_embeddings": False,
            "torch_dtype": "bfloat16",
        }
    (folder / "config.json").write_text(json.dumps(config, indent=2), "utf-8")

    if layout == "projection_pt":
        torch.save(
            {"custom_text_proj": head, "config": {"dim": DIM, "mask_non_image_embeddings": False}},
            folder / "collfm2_projection.pt",
        )
        return folder
    if layout == "no_weights":
        return folder

    state = _weights_for_layout(layout, backbone, head, legacy=legacy_vision_keys)
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    return folder


def _weights_for_layout(
    layout: str,
    backbone: dict[str, torch.Tensor],
    head: dict[str, torch.Tensor],
    *,
    legacy: bool,
) -> dict[str, torch.Tensor]:
    inner = legacy_names(backbone) if legacy and layout != "full_config" else backbone
    state = {f"model.{k}": v for k, v in inner.items()}
    head_prefix = "custom_text_proj."
    if layout == "base_model_prefix":
        state = {f"base_model.{k}": v for k, v in state.items()}
        state["base_model.lm_head.weight"] = backbone["language_model.embed_tokens.weight"].clone()
        head_prefix = "base_model.model.custom_text_proj."
    elif layout == "model_head":
        head_prefix = "model.custom_text_proj."
    if layout != "missing_head":
        state.update({head_prefix + k: v for k, v in head.items()})
    if layout == "missing_key":
        state.pop("model.language_model.layers.1.self_attn.q_proj.weight")
    elif layout == "extra_key":
        state["model.language_model.surprise.weight"] = torch.zeros(3)
    elif layout == "wrong_shape":
        state["custom_text_proj.weight"] = torch.zeros(DIM, 16)
    return state
