"""Reading a ColLFM2 checkpoint: config, processor folder, backbone and head weights.

Accepted layouts (see ``docs``/the model spec):

- ``config.json`` with ``model_type: "collfm2"`` and ``base_model`` (an LFM2-VL hub id
  or local folder): the LFM2-VL config comes from the base, nothing else does unless
  the checkpoint lacks it (processor files; backbone weights in the old layout);
- ``config.json`` that is a complete LFM2-VL config (``model_type: "lfm2_vl"``).

Weights: ``model.safetensors`` with backbone keys ``model.<inner>`` or
``base_model.model.<inner>`` and head keys ``custom_text_proj.*``,
``model.custom_text_proj.*`` or ``base_model.model.custom_text_proj.*``
(``lm_head.*`` is ignored: unused and tied).  The old layout ships only
``collfm2_projection.pt`` (``{"custom_text_proj": {...}}``) for the head; the
backbone then comes from the base model's ``model.safetensors``, exactly as the
reference loader does (it loads the base weights, then the head).  When
``model.safetensors`` has no head but ``collfm2_projection.pt`` exists (what the
reference's ``save_pretrained`` writes), the head is read from the ``.pt`` file.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from sauerkraut_rag.encoders._checkpoint import (
    HUB_FILE_PATTERNS,
    has_image_processor,
    load_safetensors,
    read_json,
    resolve_checkpoint,
)
from sauerkraut_rag.errors import CheckpointError, ModelNotFoundError

logger = logging.getLogger(__name__)

DEFAULT_BASE_MODEL = "LiquidAI/LFM2-VL-450M"
"""What the reference loader assumes when a ``collfm2`` config names no ``base_model``."""
WEIGHTS_FILE = "model.safetensors"
PROJECTION_FILE = "collfm2_projection.pt"
HEAD_KEYS = ("weight", "bias")
_CONFIG_ONLY_PATTERNS = ("*.json", "*.jinja", "*.txt", "*.model", "*.tiktoken")
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")


@dataclass
class ColLFM2Checkpoint:
    """Everything needed to build the encoder, read from the checkpoint's files."""

    folder: Path
    config_folder: Path
    processor_folder: Path
    dim: int
    backbone_state: dict[str, torch.Tensor]
    """``Lfm2VlModel`` weights, keys without the ``model.`` prefix."""
    head_state: dict[str, torch.Tensor]
    """``custom_text_proj`` weights: ``weight (dim, hidden)`` and ``bias (dim,)``."""
    weights_source: str
    transformers_version: str | None = None
    """``transformers_version`` recorded in ``config.json`` (else in the base's), if any."""


def split_state(
    state: Mapping[str, torch.Tensor],
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], list[str]]:
    """Split checkpoint keys into (backbone, head, unknown keys).

    Backbone keys lose their ``model.``/``base_model.model.`` prefix; head keys keep
    only ``weight``/``bias``; ``lm_head.*`` is dropped.
    """
    backbone: dict[str, torch.Tensor] = {}
    head: dict[str, torch.Tensor] = {}
    unknown: list[str] = []
    for key, tensor in state.items():
        name = key.removeprefix("base_model.")
        if name.startswith(("custom_text_proj.", "model.custom_text_proj.")):
            target, short = head, name.rsplit("custom_text_proj.", 1)[1]
        elif name.startswith("lm_head."):
            continue
        elif name.startswith("model."):
            target, short = backbone, name.removeprefix("model.")
        else:
            unknown.append(key)
            continue
        if short in target:
            raise CheckpointError(
                f"The weights hold {key!r} twice (with and without a prefix): the file mixes "
                "two layouts. Re-download the checkpoint."
            )
        target[short] = tensor
    return backbone, head, unknown


def _has_processor(folder: Path) -> bool:
    return has_image_processor(folder) and any((folder / f).is_file() for f in _TOKENIZER_FILES)


def _resolve_base(folder: Path, base_id: str, *, need_weights: bool) -> Path:
    patterns = HUB_FILE_PATTERNS if need_weights else _CONFIG_ONLY_PATTERNS
    try:
        return resolve_checkpoint(base_id, allow_patterns=patterns)
    except ModelNotFoundError as exc:
        needed = "config, processor and backbone weights" if need_weights else "config"
        raise ModelNotFoundError(
            f"The ColLFM2 checkpoint {folder} names base_model {base_id!r} in config.json, "
            f"whose {needed} it needs, but that base could not be found: {exc}"
        ) from exc


def load_projection_pt(path: Path) -> dict[str, torch.Tensor]:
    """Read the head from ``collfm2_projection.pt`` (tensors only: ``weights_only=True``)."""
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle errors, truncation, non-tensor payloads
        raise CheckpointError(
            f"Could not read {path} as a weights-only torch file ({type(exc).__name__}: {exc}). "
            "Re-download the checkpoint; files that need arbitrary pickled objects are refused."
        ) from exc
    head = data.get("custom_text_proj", data) if isinstance(data, dict) else None
    if not isinstance(head, Mapping) or not all(
        isinstance(head.get(k), torch.Tensor) for k in HEAD_KEYS
    ):
        found = sorted(head) if isinstance(head, Mapping) else type(data).__name__
        raise CheckpointError(
            f"Expected {path.name} to hold {{'custom_text_proj': {{'weight', 'bias'}}}}, "
            f"found {found}. The file is not a ColLFM2 projection head."
        )
    return dict(head)


def _load_weights(
    folder: Path, base_folder: Path | None
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], str]:
    weights = folder / WEIGHTS_FILE
    projection = folder / PROJECTION_FILE
    if weights.is_file():
        backbone, head, unknown = split_state(load_safetensors(weights))
        source = str(weights)
        if not head and projection.is_file():
            head = load_projection_pt(projection)
            source += f" + {projection.name}"
    elif projection.is_file():
        if base_folder is None:
            raise CheckpointError(
                f"{folder} has only {PROJECTION_FILE} (the head) and config.json names no "
                "base_model to take the backbone weights from. Add model.safetensors or a "
                "'base_model' entry to config.json."
            )
        backbone, _base_head, unknown = split_state(load_safetensors(base_folder / WEIGHTS_FILE))
        head = load_projection_pt(projection)
        source = f"{base_folder / WEIGHTS_FILE} (backbone) + {projection} (head)"
    else:
        raise CheckpointError(
            f"The model folder {folder} has no weights: expected {WEIGHTS_FILE} (full model) "
            f"or {PROJECTION_FILE} (head; backbone from base_model). Download the complete "
            "checkpoint."
        )
    if unknown:
        shown = ", ".join(sorted(unknown)[:8])
        raise CheckpointError(
            f"The weights in {source} have keys that belong to no part of ColLFM2 "
            f"(unexpected keys: {shown}{' ...' if len(unknown) > 8 else ''}). Expected "
            "'model.<LFM2-VL key>' or 'base_model.model.<LFM2-VL key>' and "
            "'custom_text_proj.*'. The file belongs to another model."
        )
    missing_head = [f"custom_text_proj.{k}" for k in HEAD_KEYS if k not in head]
    extra_head = [f"custom_text_proj.{k}" for k in head if k not in HEAD_KEYS]
    if missing_head or extra_head:
        raise CheckpointError(
            f"The projection head in {source} does not match Linear(hidden, dim, bias=True) "
            f"(missing keys: {missing_head or 'none'}; unexpected keys: {extra_head or 'none'}). "
            "The checkpoint is incomplete: download it again."
        )
    return backbone, head, source


def read_collfm2_checkpoint(folder: Path) -> ColLFM2Checkpoint:
    """Locate config, processor and weights of a ColLFM2 checkpoint folder."""
    raw = read_json(folder / "config.json")
    model_type = str(raw.get("model_type", "")).lower()
    is_wrapper = model_type == "collfm2" or "base_model" in raw
    base_folder: Path | None = None
    if is_wrapper:
        base_id = str(raw.get("base_model") or DEFAULT_BASE_MODEL)
        need_base_weights = not (folder / WEIGHTS_FILE).is_file()
        base_folder = _resolve_base(folder, base_id, need_weights=need_base_weights)
        config_folder = base_folder
    else:
        config_folder = folder
    if _has_processor(folder):
        processor_folder = folder
    elif base_folder is not None and _has_processor(base_folder):
        processor_folder = base_folder
    else:
        raise CheckpointError(
            f"No LFM2-VL processor files in {folder}"
            f"{f' or its base {base_folder}' if base_folder else ''}: expected "
            "preprocessor_config.json (or processor_config.json with a nested "
            f"image_processor) and {' or '.join(_TOKENIZER_FILES)}. "
            "Download the complete checkpoint (including tokenizer and processor files)."
        )
    backbone, head, source = _load_weights(folder, base_folder)
    dim = int(raw.get("dim", 128)) if is_wrapper else 128
    version = raw.get("transformers_version")
    if version is None and base_folder is not None:
        version = read_json(base_folder / "config.json", required=False).get("transformers_version")
    return ColLFM2Checkpoint(
        folder=folder,
        config_folder=config_folder,
        processor_folder=processor_folder,
        dim=dim,
        backbone_state=backbone,
        head_state=head,
        weights_source=source,
        transformers_version=str(version) if version is not None else None,
    )


def describe_load_report(info: Mapping[str, Any]) -> list[str]:
    """Problems in a transformers loading-info dict, as readable fragments."""
    parts = []
    for label, key in (
        ("missing keys", "missing_keys"),
        ("unexpected keys", "unexpected_keys"),
        ("keys with mismatched shapes", "mismatched_keys"),
    ):
        entries = sorted(str(k if isinstance(k, str) else k[0]) for k in info.get(key) or ())
        if entries:
            extra = f" ... ({len(entries)} in all)" if len(entries) > 8 else ""
            parts.append(f"{label}: {', '.join(entries[:8])}{extra}")
    errors = [str(e) for e in info.get("error_msgs") or ()]
    if errors:
        parts.append(f"errors: {'; '.join(errors[:3])}")
    return parts
