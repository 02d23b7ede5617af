"""ColLFM2: ColPali-style page retrieval on transformers' LFM2-VL (``Lfm2VlModel``).

Forward (model spec §2): ``Lfm2VlModel`` -> last hidden state (after the final
norm; equal to ``hidden_states[-1]``, which the reference reads) ->
``custom_text_proj`` (``Linear(text hidden, 128, bias=True)``) -> ``x / ||x||``
(no epsilon) -> ``* attention_mask``; padding is then stripped per item.

- **Pages**: each image (RGB) is processed on its own with the prompt
  :data:`PAGE_PROMPT`; the single-image outputs are concatenated along the batch
  axis and every tensor with two or more dimensions is right-padded with zeros on
  its last axis (the reference collation, applied to every key).
- **Queries**: the raw text, no prefix and no augmentation tokens, tokenised by the
  checkpoint's tokenizer as it is (its post-processor adds ``<|startoftext|>``),
  left-padded to the longest, called with ``max_length=2048`` but without
  truncation, like the reference (so longer queries are kept whole).
- ``min_image_tokens``/``max_image_tokens`` come from the processor config (64 and
  256 for the published model); the reference stores but never passes its own
  values, so only an explicit user option overrides the config here.
- **Processing**: the page prompt's image tokens follow the transformers version that
  wrote the checkpoint (``config.json`` ``transformers_version``): 4.x (the published
  environment) and 5.x label the tiles of non-square pages differently, see
  :mod:`sauerkraut_rag.encoders._lfm2_inputs`.  ``processing=`` overrides the choice.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from sauerkraut_rag._checks import check_options, check_positive_int
from sauerkraut_rag.encoders._checkpoint import load_state_dict_strict
from sauerkraut_rag.encoders._hf_loading import quiet_transformers
from sauerkraut_rag.encoders._lfm2_checkpoint import (
    ColLFM2Checkpoint,
    describe_load_report,
    read_collfm2_checkpoint,
)
from sauerkraut_rag.encoders._lfm2_inputs import page_inputs, resolve_processing
from sauerkraut_rag.encoders._page_geometry import lfm2_token_boxes
from sauerkraut_rag.encoders._runtime import resolve_attention, resolve_device, resolve_dtype
from sauerkraut_rag.encoders._visual import HEAD_DTYPE, PageEncoderBase
from sauerkraut_rag.errors import CheckpointError

if TYPE_CHECKING:
    from PIL import Image
    from transformers import BatchFeature, Lfm2VlModel, Lfm2VlProcessor

logger = logging.getLogger(__name__)

PAGE_PROMPT = "<|im_start|>user\n<image>Describe the image.<|im_end|>"
"""Text that accompanies every page image; ``<image>`` expands to the image tokens."""
QUERY_MAX_LENGTH = 2048
"""Passed to the tokenizer with the queries, as the reference does (no truncation)."""
OPTIONS = (
    "attn_implementation",
    "min_image_tokens",
    "max_image_tokens",
    "max_image_pixels",
    "processing",
)
MODEL_INPUTS = (
    "input_ids",
    "attention_mask",
    "pixel_values",
    "pixel_attention_mask",
    "spatial_shapes",
)
"""What ``Lfm2VlModel`` receives; page inputs also carry ``tile_grid`` for the geometry."""


def collate_right_padded(batches: Sequence[Mapping[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Join single-page processor outputs into one batch (the reference collation).

    For every key of the first output: tensors with two or more dimensions are
    right-padded with zeros on their last axis to the longest, then all are
    concatenated along axis 0 (so ``pixel_values`` of several tiles stack up).
    """
    collated: dict[str, torch.Tensor] = {}
    for key in batches[0]:
        tensors = [b[key] for b in batches]
        longest = max(t.shape[-1] if t.dim() > 1 else 1 for t in tensors)
        padded = [
            torch.nn.functional.pad(t, (0, longest - t.shape[-1]))
            if t.dim() > 1 and t.shape[-1] < longest
            else t
            for t in tensors
        ]
        collated[key] = torch.cat(padded, dim=0)
    return collated


def _positive_int_option(name: str, value: Any) -> int | None:
    return None if value is None else check_positive_int(value, name=name, hint="")


class ColLFM2Encoder(PageEncoderBase):
    """Page encoder for ``VAGOsolutions/SauerkrautLM-ColLFM2-450M-v0.1`` and same-layout folders.

    Build it with :func:`sauerkraut_rag.load_encoder` (or :meth:`from_folder`).
    ``encode_queries`` and ``encode_documents`` return one float32 ``(n_tokens, dim)``
    array per input; pages keep every attended position (text and image tokens).
    """

    family = "collfm2"

    def __init__(
        self,
        *,
        backbone: Lfm2VlModel,
        projection: torch.nn.Linear,
        processor: Lfm2VlProcessor,
        name: str,
        device: torch.device,
        dtype: torch.dtype,
        image_kwargs: Mapping[str, int] | None = None,
        max_image_pixels: int | None = None,
        processing: str = "transformers-4.57",
    ) -> None:
        self.backbone = backbone
        self.projection = projection
        self.processor = processor
        self.tokenizer = processor.tokenizer
        self.name = name
        self.device = device
        self.dtype = dtype
        self.dim = int(projection.out_features)
        self.image_kwargs = dict(image_kwargs or {})
        self.max_image_pixels = max_image_pixels
        self.processing = processing

    @classmethod
    def from_folder(
        cls,
        folder: str | Path,
        *,
        name: str | None = None,
        device: str | torch.device | None = None,
        dtype: str | torch.dtype | None = None,
        trust_remote_code: bool = False,
        revision: str | None = None,
        **opts: Any,
    ) -> ColLFM2Encoder:
        """Load a ColLFM2 checkpoint folder (already resolved from a hub id if needed).

        ``opts``: ``attn_implementation`` (``"sdpa"`` default, ``"eager"``,
        ``"flash_attention_2"``), ``min_image_tokens``/``max_image_tokens`` (override
        the processor config), ``max_image_pixels`` (size guard for loaded images),
        ``processing`` (``"auto"`` default: as the transformers version recorded in
        ``config.json``; ``"transformers-4.57"`` or ``"transformers-5"`` to force one).
        ``trust_remote_code`` and ``revision`` are accepted for the common signature;
        LFM2-VL is native to transformers, so no remote code is ever run.
        """
        check_options(opts, OPTIONS, what="ColLFM2")
        folder = Path(folder)
        torch_device = resolve_device(device)
        torch_dtype = resolve_dtype(dtype, torch_device)
        attention = resolve_attention(opts.get("attn_implementation"))
        image_kwargs = {
            key: value
            for key in ("min_image_tokens", "max_image_tokens")
            if (value := _positive_int_option(key, opts.get(key))) is not None
        }
        max_pixels = _positive_int_option("max_image_pixels", opts.get("max_image_pixels"))
        checkpoint = read_collfm2_checkpoint(folder)
        processing = resolve_processing(opts.get("processing"), checkpoint.transformers_version)
        backbone = _build_backbone(checkpoint, dtype=torch_dtype, attention=attention)
        hidden = int(backbone.config.text_config.hidden_size)
        projection = torch.nn.Linear(hidden, checkpoint.dim, bias=True)
        holder = torch.nn.Module()  # so that errors name the keys "custom_text_proj.*"
        holder.custom_text_proj = projection
        head = {f"custom_text_proj.{k}": v for k, v in checkpoint.head_state.items()}
        load_state_dict_strict(holder, head, source=checkpoint.weights_source)
        processor = _load_processor(checkpoint.processor_folder, backbone.config.image_token_id)
        logger.info("Loaded ColLFM2 from %s (%s)", folder, checkpoint.weights_source)
        encoder = cls(
            backbone=backbone.to(torch_device).eval().requires_grad_(False),
            projection=projection.to(torch_device, HEAD_DTYPE).eval().requires_grad_(False),
            processor=processor,
            name=name or str(folder),
            device=torch_device,
            dtype=torch_dtype,
            image_kwargs=image_kwargs,
            max_image_pixels=max_pixels,
            processing=processing,
        )
        encoder.checkpoint_folder = Path(folder)
        return encoder

    def _prepare_queries(self, texts: list[str]) -> BatchFeature:
        """Raw text through the tokenizer, left-padded; ``input_ids``/``attention_mask``."""
        return self.tokenizer(
            texts,
            return_tensors="pt",
            padding="longest",
            return_attention_mask=True,
            max_length=QUERY_MAX_LENGTH,
        )

    def _prepare_pages(self, images: list[Image.Image]) -> dict[str, torch.Tensor]:
        """Each page on its own with :data:`PAGE_PROMPT` (tile markers as ``processing``
        says), then the reference's right-padded collation."""
        singles = [
            page_inputs(image, PAGE_PROMPT, self.processor, self.image_kwargs, self.processing)
            for image in images
        ]
        return collate_right_padded(singles)

    def _forward(self, batch: Mapping[str, Any]) -> torch.Tensor:
        """``Lfm2VlModel`` last hidden state ``(batch, seq, hidden)`` (post final norm)."""
        inputs = {key: batch[key] for key in MODEL_INPUTS if key in batch}
        return self.backbone(**inputs, use_cache=False).last_hidden_state

    def _image_token_boxes(self, inputs: Mapping[str, Any]) -> tuple[Any, Any]:
        """Positions and page boxes of one page's image tokens: tiles, then thumbnail."""
        ids = inputs["input_ids"][0].tolist()
        return lfm2_token_boxes(
            self.tokenizer.convert_ids_to_tokens(ids),
            image_token=self.processor.image_token,
            thumbnail_token=self.processor.image_thumbnail_token,
            patch_grids=[tuple(shape) for shape in inputs["spatial_shapes"].tolist()],
            downsample_factor=int(self.backbone.config.downsample_factor),
            tile_grid=tuple(inputs["tile_grid"][0].tolist()),
        )


def _build_backbone(
    checkpoint: ColLFM2Checkpoint, *, dtype: torch.dtype, attention: str
) -> Lfm2VlModel:
    """Build ``Lfm2VlModel`` from config on the meta device and load the weights once.

    transformers' loader renames legacy keys (4.57's ``vision_tower.vision_model.*``);
    every missing, unexpected or mis-shaped key is a :class:`CheckpointError`.
    """
    from transformers import Lfm2VlConfig, Lfm2VlModel

    config_path = checkpoint.config_folder / "config.json"
    try:
        with quiet_transformers():
            config = Lfm2VlConfig.from_pretrained(str(checkpoint.config_folder))
    except Exception as exc:  # strict config validation raises several types
        raise CheckpointError(
            f"{config_path} is not a usable LFM2-VL config ({type(exc).__name__}: {exc}). "
            "Point base_model at an LFM2-VL checkpoint such as 'LiquidAI/LFM2-VL-450M'."
        ) from exc
    try:
        with quiet_transformers():
            backbone, info = Lfm2VlModel.from_pretrained(
                None,
                config=config,
                state_dict=checkpoint.backbone_state,
                dtype=dtype,
                attn_implementation=attention,
                ignore_mismatched_sizes=True,
                output_loading_info=True,
            )
    except (RuntimeError, ValueError) as exc:
        raise CheckpointError(
            f"Could not load the LFM2-VL weights from {checkpoint.weights_source} into the "
            f"architecture of {config_path}: {exc}"
        ) from exc
    problems = describe_load_report(info)
    if problems:
        raise CheckpointError(
            f"The weights in {checkpoint.weights_source} do not match the LFM2-VL architecture "
            f"built from {config_path} ({'; '.join(problems)}; names are relative to the "
            "backbone, i.e. after the 'model.' prefix). config.json and the weights come from "
            "different checkpoints, or the file is incomplete: download it again."
        )
    checkpoint.backbone_state.clear()
    return backbone


def _load_processor(folder: Path, image_token_id: int) -> Lfm2VlProcessor:
    """The LFM2-VL processor with a left-padding tokenizer; checks the image token id."""
    from transformers import Lfm2VlProcessor

    try:
        with quiet_transformers():
            processor = Lfm2VlProcessor.from_pretrained(str(folder))
    except Exception as exc:  # missing/corrupt tokenizer or processor files
        raise CheckpointError(
            f"Could not load the LFM2-VL processor from {folder} ({type(exc).__name__}: {exc}). "
            "Expected processor_config.json/preprocessor_config.json and tokenizer files."
        ) from exc
    tokenizer = processor.tokenizer
    tokenizer.padding_side = "left"
    if tokenizer.pad_token_id is None:
        raise CheckpointError(
            f"The tokenizer in {folder} has no pad token, so queries cannot be batched. "
            "Expected '<|pad|>' as pad_token in tokenizer_config.json."
        )
    if processor.image_token_id != image_token_id:
        raise CheckpointError(
            f"The tokenizer in {folder} maps '<image>' to id {processor.image_token_id}, but the "
            f"model config expects image_token_id={image_token_id}. Tokenizer and config come "
            "from different checkpoints."
        )
    return processor
