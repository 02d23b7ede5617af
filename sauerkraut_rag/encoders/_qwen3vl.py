"""ColQwen3 building blocks: config, backbone, weights, processor and model inputs.

Semantics follow ``sauerkrautlm-colpali`` 0.1.0 (``ColQwen3`` / ``ColQwen3Processor``),
see ``docs/model-spec.md`` section 3.  Everything here is a function of the
checkpoint folder; :class:`~sauerkraut_rag.encoders.colqwen3.ColQwen3Encoder` wires
the pieces together.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from sauerkraut_rag.encoders import _hf_loading as hf_loading
from sauerkraut_rag.encoders._checkpoint import (
    has_image_processor,
    load_safetensors,
    read_json,
)
from sauerkraut_rag.errors import CheckpointError, InvalidInputError, InvalidInputTypeError

if TYPE_CHECKING:
    from PIL import Image
    from transformers import PreTrainedTokenizerBase, Qwen2VLImageProcessor, Qwen3VLConfig

logger = logging.getLogger(__name__)

IMAGE_PAD = "<|image_pad|>"
PAGE_PROMPT = (
    "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>"
    "Describe the image.<|im_end|><|endoftext|>"
)
"""Text of every page; ``<|image_pad|>`` expands to one token per merged patch."""
QUERY_PREFIX = "Query: "
QUERY_AUGMENTATION = "<|endoftext|>" * 10
"""Queries are ``QUERY_PREFIX + text + QUERY_AUGMENTATION`` (the shared base-processor rule)."""
DEFAULT_DIM = 128
PIXELS_PER_VISUAL_TOKEN = 28 * 28
"""The reference caps pages at ``max_num_visual_tokens * 28 * 28`` pixels (kept as is)."""

_PROMPT_TOKENS = (
    "<|im_start|>",
    "<|im_end|>",
    "<|endoftext|>",
    "<|vision_start|>",
    "<|vision_end|>",
    IMAGE_PAD,
)
_KEY_PREFIXES = ("base_model.model.", "base_model.", "model.")
_IGNORED_PREFIXES = ("lm_head.",)
"""An ``lm_head`` saved by a generation model is unused by the retriever."""
MODEL_INPUTS = (
    "input_ids",
    "attention_mask",
    "mm_token_type_ids",
    "pixel_values",
    "image_grid_thw",
)


def parse_config(raw: Mapping[str, Any], source: Path) -> tuple[Qwen3VLConfig, int]:
    """Parse a ``colqwen3``/``qwen3_vl`` ``config.json`` as a Qwen3-VL config; return it and dim."""
    from transformers import Qwen3VLConfig

    data = dict(raw)
    data["model_type"] = "qwen3_vl"
    try:
        config = Qwen3VLConfig.from_dict(data)
    except Exception as exc:  # transformers raises many types for malformed configs
        raise CheckpointError(
            f"{source} cannot be read as a Qwen3-VL config ({type(exc).__name__}: {exc}). "
            "Expected the config.json of a ColQwen3 checkpoint (text_config and vision_config "
            "of Qwen3-VL); re-download the checkpoint."
        ) from exc
    dim = raw.get("dim", DEFAULT_DIM)
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
        raise CheckpointError(f"Expected 'dim' in {source} to be a positive int, got {dim!r}.")
    return config, dim


def build_backbone(
    config: Qwen3VLConfig, *, device: torch.device, dtype: torch.dtype, attn_implementation: str
) -> torch.nn.Module:
    """An uninitialised ``Qwen3VLModel`` on ``device`` in ``dtype`` (weights are loaded after).

    Random initialisation is skipped (it costs minutes for 1.7B parameters); the
    non-persistent RoPE buffers are computed in float32 as ``from_pretrained`` does.
    """
    from transformers import Qwen3VLModel
    from transformers.initialization import no_init_weights

    with torch.device(device), no_init_weights():
        model = Qwen3VLModel._from_config(
            config, attn_implementation=attn_implementation, dtype=dtype
        )
    return model.eval()


def read_weights(folder: Path) -> dict[str, torch.Tensor]:
    """Load ``model.safetensors`` (or its shards) with keys in the canonical layout.

    Canonical keys are those of ``Qwen3VLModel`` (``visual.*``, ``language_model.*``)
    plus ``custom_text_proj.*``; ``model.`` / ``base_model.model.`` prefixes are removed
    and an unused ``lm_head.*`` is dropped.
    """
    single = folder / "model.safetensors"
    index = folder / "model.safetensors.index.json"
    if single.is_file():
        files = [single]
    elif index.is_file():
        weight_map = read_json(index).get("weight_map")
        if not isinstance(weight_map, dict) or not weight_map:
            raise CheckpointError(f"{index} has no 'weight_map'; re-download the checkpoint.")
        files = [folder / name for name in sorted(set(map(str, weight_map.values())))]
    else:
        raise CheckpointError(
            f"The model folder {folder} holds no weights: expected model.safetensors (or "
            "model.safetensors.index.json with its shards). Download the complete checkpoint."
        )
    state: dict[str, torch.Tensor] = {}
    for path in files:
        state.update(load_safetensors(path))
    return canonical_keys(state, source=folder)


def canonical_keys(state: Mapping[str, torch.Tensor], *, source: Path) -> dict[str, torch.Tensor]:
    """Strip wrapper prefixes (nested ones too) and drop ``lm_head.*``; fail on collisions."""
    out: dict[str, torch.Tensor] = {}
    for key, tensor in state.items():
        name = key
        while prefix := next((p for p in _KEY_PREFIXES if name.startswith(p)), None):
            name = name[len(prefix) :]
        if name.startswith(_IGNORED_PREFIXES):
            logger.debug("Ignoring unused weight %s in %s", key, source)
            continue
        if name in out:
            raise CheckpointError(
                f"The weights in {source} hold {name!r} twice (with and without a prefix). "
                "The checkpoint mixes two layouts: re-download it."
            )
        out[name] = tensor
    return out


def load_tokenizer(folder: Path, config: Qwen3VLConfig) -> PreTrainedTokenizerBase:
    """The checkpoint's tokenizer, left-padded, checked against the prompt tokens and config."""
    has_bpe_files = all((folder / n).is_file() for n in ("vocab.json", "merges.txt"))
    if not (folder / "tokenizer.json").is_file() and not has_bpe_files:
        raise CheckpointError(
            f"The model folder {folder} is missing its tokenizer: expected tokenizer.json "
            "(or vocab.json and merges.txt). Download the complete checkpoint."
        )
    # ``config`` spares AutoTokenizer from parsing config.json (model_type "colqwen3").
    tokenizer = hf_loading.load_tokenizer(folder, trust_remote_code=False, config=config)
    tokenizer.padding_side = "left"
    missing = [
        t
        for t in _PROMPT_TOKENS
        if tokenizer.convert_tokens_to_ids(t) in (None, tokenizer.unk_token_id)
    ]
    if missing:
        raise CheckpointError(
            f"The tokenizer in {folder} lacks the Qwen special tokens {missing}, which the "
            "ColQwen3 prompts need. The tokenizer does not belong to a Qwen3-VL checkpoint."
        )
    image_id = tokenizer.convert_tokens_to_ids(IMAGE_PAD)
    if image_id != config.image_token_id:
        raise CheckpointError(
            f"config.json in {folder} says image_token_id={config.image_token_id}, but the "
            f"tokenizer maps {IMAGE_PAD} to {image_id}. Tokenizer and config come from "
            "different checkpoints."
        )
    if tokenizer.pad_token is None:
        logger.warning("Tokenizer in %s has no pad token; padding with <|endoftext|>", folder)
        tokenizer.pad_token = "<|endoftext|>"
    return tokenizer


def load_image_processor(
    folder: Path, config: Qwen3VLConfig, *, max_num_visual_tokens: int | None
) -> Qwen2VLImageProcessor:
    """The checkpoint's Qwen2-VL image processor, optionally capped in pixels.

    ``max_num_visual_tokens`` sets ``size["longest_edge"] = n * 28 * 28`` like the
    reference processor (with patch 16 and merge 2 a visual token covers 32x32 pixels,
    so the cap yields about ``0.77 * n`` tokens).
    """
    from transformers import Qwen2VLImageProcessor

    if not has_image_processor(folder):
        raise CheckpointError(
            f"The model folder {folder} has no image processor settings: expected "
            "preprocessor_config.json (transformers 4.x) or processor_config.json with an "
            "'image_processor' entry (transformers 5.x). Download the complete checkpoint "
            "(all files of the hub repository) into it."
        )
    try:
        processor = Qwen2VLImageProcessor.from_pretrained(str(folder))
    except Exception as exc:
        raise CheckpointError(
            f"Could not read the image processor settings in {folder} as a Qwen2-VL image "
            f"processor ({type(exc).__name__}: {exc}). Re-download the checkpoint."
        ) from exc
    vision = config.vision_config
    expected = {
        "patch_size": vision.patch_size,
        "merge_size": vision.spatial_merge_size,
        "temporal_patch_size": vision.temporal_patch_size,
    }
    wrong = {k: getattr(processor, k) for k, v in expected.items() if getattr(processor, k) != v}
    if wrong:
        raise CheckpointError(
            f"The image processor settings in {folder} have {wrong}, but the vision tower in "
            f"config.json expects {expected}. The files come from different checkpoints."
        )
    if max_num_visual_tokens is not None:
        if isinstance(max_num_visual_tokens, bool) or not isinstance(max_num_visual_tokens, int):
            raise InvalidInputTypeError(
                "Expected max_num_visual_tokens to be an int or None, got "
                f"{type(max_num_visual_tokens).__name__}."
            )
        if max_num_visual_tokens < 1:
            raise InvalidInputError(
                f"Expected max_num_visual_tokens >= 1, got {max_num_visual_tokens}."
            )
        processor.size["longest_edge"] = max_num_visual_tokens * PIXELS_PER_VISUAL_TOKEN
    return processor


def _tokenize(
    texts: list[str], tokenizer: PreTrainedTokenizerBase, config: Qwen3VLConfig
) -> dict[str, torch.Tensor]:
    """Left-padded ids and mask plus ``mm_token_type_ids`` (1 image, 2 video, 0 text)."""
    encoded = tokenizer(texts, padding="longest", return_tensors="pt")
    ids = encoded["input_ids"]
    types = torch.zeros_like(ids)
    types[ids == config.image_token_id] = 1
    types[ids == config.video_token_id] = 2
    return {
        "input_ids": ids,
        "attention_mask": encoded["attention_mask"],
        "mm_token_type_ids": types,
    }


def query_inputs(
    texts: list[str], tokenizer: PreTrainedTokenizerBase, config: Qwen3VLConfig
) -> dict[str, torch.Tensor]:
    """``"Query: " + text + "<|endoftext|>" * 10``, left-padded: ``(batch, seq)`` tensors."""
    return _tokenize([QUERY_PREFIX + t + QUERY_AUGMENTATION for t in texts], tokenizer, config)


def page_inputs(
    images: list[Image.Image],
    tokenizer: PreTrainedTokenizerBase,
    image_processor: Qwen2VLImageProcessor,
    config: Qwen3VLConfig,
) -> dict[str, torch.Tensor]:
    """The page prompt per RGB image with ``<|image_pad|>`` expanded, plus pixel patches.

    ``pixel_values`` is ``(sum of patches, channels * temporal * patch**2)``: the
    patches of all images concatenated, which is what the reference model sees after
    unpadding its per-image padded copy.  ``image_grid_thw`` is ``(n_images, 3)``.
    """
    vision = image_processor(images=images, return_tensors="pt")
    grid = vision["image_grid_thw"]
    counts = (grid.prod(dim=-1) // image_processor.merge_size**2).tolist()
    texts = [PAGE_PROMPT.replace(IMAGE_PAD, IMAGE_PAD * int(n), 1) for n in counts]
    inputs = _tokenize(texts, tokenizer, config)
    inputs["pixel_values"] = vision["pixel_values"]
    inputs["image_grid_thw"] = grid
    return inputs
