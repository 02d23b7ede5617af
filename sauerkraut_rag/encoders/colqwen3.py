"""ColQwen3: page retrieval on Qwen3-VL (``SauerkrautLM-ColQwen3-1.7b-Turbo-v0.1``).

Forward (``docs/model-spec.md`` section 3, matching ``sauerkrautlm-colpali`` 0.1.0):
``Qwen3VLModel`` (vision tower with DeepStack + text model) -> last hidden state
``(batch, seq, hidden)`` -> ``custom_text_proj`` ``(batch, seq, dim)`` -> divide by the
L2 norm (no epsilon) -> multiply by the attention mask -> strip padding.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from sauerkraut_rag._checks import check_options
from sauerkraut_rag.encoders import _qwen3vl as q3
from sauerkraut_rag.encoders._checkpoint import load_state_dict_strict, read_json
from sauerkraut_rag.encoders._page_geometry import qwen_token_boxes
from sauerkraut_rag.encoders._patch_embed import use_linear_patch_embedding
from sauerkraut_rag.encoders._runtime import resolve_attention, resolve_device, resolve_dtype
from sauerkraut_rag.encoders._visual import HEAD_DTYPE, PageEncoderBase
from sauerkraut_rag.encoders.registry import detect_family
from sauerkraut_rag.errors import CheckpointError

if TYPE_CHECKING:
    from PIL import Image
    from transformers import PreTrainedTokenizerBase, Qwen2VLImageProcessor, Qwen3VLConfig

logger = logging.getLogger(__name__)


class ColQwen3Encoder(PageEncoderBase):
    """Multi-vector encoder for ColQwen3 checkpoints (pages: images; queries: text).

    Build it with :func:`sauerkraut_rag.load_encoder` or :meth:`from_folder`.
    ``encode_documents`` takes PIL images, image paths or bytes; each page gives
    ``(n_tokens, dim)`` vectors for all its prompt and image tokens (only the image
    tokens with ``mask_non_image_embeddings=True``).  Queries give one vector per
    token of ``"Query: " + text + "<|endoftext|>" * 10``.
    """

    modality = "image"
    family = "colqwen3"

    def __init__(
        self,
        *,
        model: torch.nn.Module,
        projection: torch.nn.Linear,
        tokenizer: PreTrainedTokenizerBase,
        image_processor: Qwen2VLImageProcessor,
        config: Qwen3VLConfig,
        name: str,
        device: torch.device,
        dtype: torch.dtype,
        mask_non_image_embeddings: bool = False,
    ) -> None:
        self.model = model
        self.projection = projection
        self.tokenizer = tokenizer
        self.image_processor = image_processor
        self.config = config
        self.name = name
        self.device = device
        self.dtype = dtype
        self.dim = int(projection.out_features)
        self.mask_non_image_embeddings = bool(mask_non_image_embeddings)
        # The reference reads ``hidden_states[-1]``; transformers ties it to the final
        # (normed) ``last_hidden_state`` unless the text config unties them explicitly.
        self._hidden_from_list = (
            getattr(config.text_config, "tie_last_hidden_states", None) is False
        )

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
        max_num_visual_tokens: int | None = None,
        mask_non_image_embeddings: bool = False,
        attn_implementation: str | None = None,
        **unknown: Any,
    ) -> ColQwen3Encoder:
        """Load a ColQwen3 checkpoint folder (built from config, weights loaded once).

        ``max_num_visual_tokens`` caps page resolution at ``n * 28 * 28`` pixels like the
        reference processor; ``mask_non_image_embeddings`` returns only image-token
        vectors for pages; ``attn_implementation`` is ``"sdpa"`` (default), ``"eager"``
        or ``"flash_attention_2"``.  ``trust_remote_code`` is accepted for interface
        symmetry: ColQwen3 runs on transformers' own ``Qwen3VLModel`` and never needs it.
        """
        check_options(
            unknown,
            ("max_num_visual_tokens", "mask_non_image_embeddings", "attn_implementation"),
            what="ColQwen3",
        )
        folder = Path(folder)
        family = detect_family(folder)
        if family != "colqwen3":
            raise CheckpointError(
                f"{folder} holds a {family!r} checkpoint, not ColQwen3. Load it with "
                "sauerkraut_rag.load_encoder, which picks the right family."
            )
        torch_device = resolve_device(device)
        torch_dtype = resolve_dtype(dtype, torch_device)
        attention = resolve_attention(attn_implementation)
        del trust_remote_code, revision  # the folder is already resolved; no remote code runs

        config, dim = q3.parse_config(read_json(folder / "config.json"), folder / "config.json")
        tokenizer = q3.load_tokenizer(folder, config)
        image_processor = q3.load_image_processor(
            folder, config, max_num_visual_tokens=max_num_visual_tokens
        )
        weights = q3.read_weights(folder)

        model = q3.build_backbone(
            config, device=torch_device, dtype=torch_dtype, attn_implementation=attention
        )
        projection = torch.nn.Linear(
            config.text_config.hidden_size, dim, device=torch_device, dtype=HEAD_DTYPE
        )
        # One module whose state-dict keys are exactly the canonical checkpoint keys.
        layout = torch.nn.ModuleDict(
            {
                "visual": model.visual,
                "language_model": model.language_model,
                "custom_text_proj": projection,
            }
        )
        load_state_dict_strict(layout, weights, source=str(folder))
        del weights
        use_linear_patch_embedding(model.visual)
        projection.eval()
        logger.info(
            "Loaded ColQwen3 from %s: %d text layers, hidden %d, dim %d, %s on %s",
            folder,
            config.text_config.num_hidden_layers,
            config.text_config.hidden_size,
            dim,
            torch_dtype,
            torch_device,
        )
        encoder = cls(
            model=model,
            projection=projection,
            tokenizer=tokenizer,
            image_processor=image_processor,
            config=config,
            name=name if name is not None else str(folder),
            device=torch_device,
            dtype=torch_dtype,
            mask_non_image_embeddings=mask_non_image_embeddings,
        )
        encoder.checkpoint_folder = Path(folder)
        return encoder

    def _prepare_queries(self, texts: list[str]) -> dict[str, torch.Tensor]:
        """``(batch, seq)`` left-padded query tokens with ``mm_token_type_ids``."""
        return q3.query_inputs(texts, self.tokenizer, self.config)

    def _prepare_pages(self, images: list[Image.Image]) -> dict[str, torch.Tensor]:
        """Page prompts, expanded image tokens and concatenated pixel patches."""
        return q3.page_inputs(images, self.tokenizer, self.image_processor, self.config)

    def _forward(self, batch: Mapping[str, Any]) -> torch.Tensor:
        """Run ``Qwen3VLModel``; return the last hidden state ``(batch, seq, hidden)``."""
        inputs = {k: batch[k] for k in q3.MODEL_INPUTS if k in batch}
        output = self.model(**inputs, use_cache=False, output_hidden_states=self._hidden_from_list)
        if self._hidden_from_list:
            return output.hidden_states[-1]
        return output.last_hidden_state

    def _output_mask(self, batch: Mapping[str, Any], *, pages: bool) -> torch.Tensor:
        """Attended positions; for pages with ``mask_non_image_embeddings`` image tokens only."""
        mask = batch["attention_mask"]
        if pages and self.mask_non_image_embeddings:
            mask = mask * (batch["input_ids"] == self.config.image_token_id).to(mask.dtype)
        return mask

    def _image_token_boxes(self, inputs: Mapping[str, Any]) -> tuple[Any, Any]:
        """Positions and page boxes of one page's image tokens (``image_grid_thw``)."""
        return qwen_token_boxes(
            inputs["input_ids"][0].tolist(),
            image_token_id=int(self.config.image_token_id),
            grid_thw=tuple(inputs["image_grid_thw"][0].tolist()),
            merge_size=int(self.image_processor.merge_size),
        )
