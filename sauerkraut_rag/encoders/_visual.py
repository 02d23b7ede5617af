"""Shared machinery of the two page (vision-language) encoders, ColLFM2 and ColQwen3.

Both models end the same way: a backbone's last hidden state goes through a
``custom_text_proj`` linear head, each token vector is divided by its L2 norm
(no epsilon) and multiplied by the attention mask; padding is then stripped per
item.  :class:`PageEncoderBase` holds that tail plus the batching skeleton, so a
concrete page encoder only says how to turn texts and images into model inputs
(``_prepare_queries`` / ``_prepare_pages``) and how to run its backbone
(``_forward``).
"""

from __future__ import annotations

import io
import logging
import os
from abc import abstractmethod
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from sauerkraut_rag.encoders._batching import run_length_sorted
from sauerkraut_rag.encoders._page_geometry import PatchGrid, patch_grid
from sauerkraut_rag.encoders._validation import check_items
from sauerkraut_rag.encoders.base import Modality, MultiVectorEncoder
from sauerkraut_rag.errors import InvalidInputError
from sauerkraut_rag.types import MultiVector

if TYPE_CHECKING:
    from PIL import Image
    from transformers import BatchFeature

logger = logging.getLogger(__name__)


HEAD_DTYPE = torch.float32
"""dtype of the ``custom_text_proj`` head of both page models, whatever the backbone's.

The head is a ``hidden x 128`` linear layer (a fraction of a percent of the compute), so
float32 costs nothing and keeps a bfloat16 backbone's output from being rounded twice."""


def project_normalise_mask(
    hidden: torch.Tensor, projection: torch.nn.Module, attention_mask: torch.Tensor
) -> torch.Tensor:
    """``(batch, seq, hidden)`` -> ``(batch, seq, dim)``: project, L2-normalise, zero padding.

    The order and the missing epsilon follow the reference models exactly:
    ``x = proj(h); x = x / ||x||; x = x * mask``.  The head runs in its own dtype
    (float32, see :data:`HEAD_DTYPE`) whatever the backbone's: a bfloat16 hidden state
    is widened first, so the projection, the norm and the output are float32 and every
    vector has unit length to float32 precision.
    """
    weight = getattr(projection, "weight", None)
    head_dtype = weight.dtype if isinstance(weight, torch.Tensor) else hidden.dtype
    projected = projection(hidden.to(head_dtype))
    projected = projected / projected.norm(dim=-1, keepdim=True)
    return projected * attention_mask.unsqueeze(-1).to(projected.dtype)


def strip_padding(embeddings: torch.Tensor, keep: torch.Tensor) -> list[MultiVector]:
    """Split ``(batch, seq, dim)`` into per-item float32 arrays ``(n_kept_i, dim)``.

    ``keep`` is ``(batch, seq)``; a position is kept where it is non-zero.
    """
    host = embeddings.float().cpu()
    mask = keep.bool().cpu()
    return [
        np.ascontiguousarray(row[kept].numpy(), dtype=np.float32)
        for row, kept in zip(host, mask, strict=True)
    ]


def move_batch(
    batch: Mapping[str, Any], device: torch.device, dtype: torch.dtype
) -> dict[str, Any]:
    """Move every tensor to ``device``; cast floating tensors (pixels) to ``dtype``."""
    moved: dict[str, Any] = {}
    for key, value in batch.items():
        if isinstance(value, torch.Tensor):
            if torch.is_floating_point(value):
                value = value.to(device=device, dtype=dtype)
            else:
                value = value.to(device=device)
        moved[key] = value
    return moved


def load_page(item: Any, *, max_pixels: int | None = None) -> Image.Image:
    """Turn a PIL image, an image path or image bytes into an RGB PIL image.

    Raises :class:`~sauerkraut_rag.errors.ImageLoadError` for unreadable input.
    """
    from sauerkraut_rag.documents.pages import load_image

    image = load_image(item) if max_pixels is None else load_image(item, max_pixels=max_pixels)
    return image if image.mode == "RGB" else image.convert("RGB")


def page_area(item: Any, *, max_pixels: int | None = None) -> int:
    """Pixel count of a page, read cheaply (image header only) to sort pages by size.

    Accepts PIL images, paths and bytes.  Falls back to a full :func:`load_page` when
    the header cannot be read, so an unreadable item raises its
    :class:`~sauerkraut_rag.errors.ImageLoadError` here, before any model work.
    """
    from PIL import Image as PILImage

    if isinstance(item, PILImage.Image):
        return int(item.width * item.height)
    source: Any = io.BytesIO(bytes(item)) if isinstance(item, (bytes, bytearray)) else item
    try:
        with PILImage.open(source) as probe:
            return int(probe.width * probe.height)
    except Exception:  # anything unreadable: let load_page raise the typed error
        image = load_page(item, max_pixels=max_pixels)
        return int(image.width * image.height)


def _is_reusable_source(item: Any) -> bool:
    """PIL images, paths and bytes can be read twice (probe, then load); streams cannot."""
    from PIL import Image as PILImage

    return isinstance(item, (PILImage.Image, bytes, bytearray, str, os.PathLike))


class PageEncoderBase(MultiVectorEncoder):
    """Skeleton of a page encoder: batching, projection head, normalisation, stripping.

    Subclasses set ``projection`` (the ``custom_text_proj`` linear layer), ``device``,
    ``dtype``, ``dim`` and ``name``, and implement:

    - ``_prepare_queries(texts)`` -> model inputs (with ``attention_mask``) for queries;
    - ``_prepare_pages(images)`` -> model inputs for RGB page images;
    - ``_forward(batch)`` -> last hidden state ``(batch, seq, hidden)``.

    ``_output_mask`` chooses which positions are returned (default: every attended
    position; ColQwen3 may restrict pages to image tokens).
    """

    modality: Modality = "image"
    projection: torch.nn.Module
    max_image_pixels: int | None = None
    """Passed to :func:`sauerkraut_rag.documents.pages.load_image` as ``max_pixels`` when set."""

    @abstractmethod
    def _prepare_queries(self, texts: list[str]) -> BatchFeature | dict[str, Any]:
        """Tokenise a batch of query strings (CPU tensors)."""

    @abstractmethod
    def _prepare_pages(self, images: list[Image.Image]) -> BatchFeature | dict[str, Any]:
        """Turn a batch of RGB images into model inputs (CPU tensors)."""

    @abstractmethod
    def _forward(self, batch: Mapping[str, Any]) -> torch.Tensor:
        """Run the backbone on moved inputs; return the last hidden state ``(b, seq, hidden)``."""

    def _output_mask(self, batch: Mapping[str, Any], *, pages: bool) -> torch.Tensor:
        """``(batch, seq)`` positions to return; default: the attention mask."""
        return batch["attention_mask"]

    def _embed_batch(
        self, inputs: BatchFeature | Mapping[str, Any], *, pages: bool
    ) -> list[MultiVector]:
        """Forward one prepared batch; return one ``(n_tokens_i, dim)`` array per item."""
        batch = move_batch(inputs, self.device, self.dtype)
        hidden = self._forward(batch)
        embeddings = project_normalise_mask(hidden, self.projection, batch["attention_mask"])
        return strip_padding(embeddings, self._output_mask(batch, pages=pages))

    def _encode_queries(
        self, texts: list[str], *, batch_size: int, show_progress: bool | None
    ) -> list[MultiVector]:
        return run_length_sorted(
            texts,
            [len(t) for t in texts],
            lambda chunk: self._embed_batch(self._prepare_queries(chunk), pages=False),
            batch_size=batch_size,
            show_progress=show_progress,
            desc="Encoding queries",
        )

    def _encode_documents(
        self, items: Sequence[Any], *, batch_size: int, show_progress: bool | None
    ) -> list[MultiVector]:
        pages = [
            item if _is_reusable_source(item) else load_page(item, max_pixels=self.max_image_pixels)
            for item in check_items(items, what="pages")
        ]
        areas = [page_area(item, max_pixels=self.max_image_pixels) for item in pages]

        def encode_batch(chunk: list[Any]) -> list[MultiVector]:
            images = [load_page(item, max_pixels=self.max_image_pixels) for item in chunk]
            return self._embed_batch(self._prepare_pages(images), pages=True)

        return run_length_sorted(
            pages,
            areas,
            encode_batch,
            batch_size=batch_size,
            show_progress=show_progress,
            desc="Encoding pages",
        )

    # ---- page geometry (for similarity maps) -------------------------------------------

    def encode_pages_with_geometry(
        self, items: Sequence[Any]
    ) -> list[tuple[MultiVector, PatchGrid]]:
        """Encode pages one by one; return each page's ``(n_tokens, dim)`` vectors (as
        :meth:`encode_documents` does) with the :class:`PatchGrid` of its image tokens."""
        results = []
        for item in check_items(items, what="pages"):
            inputs = self._prepare_pages([load_page(item, max_pixels=self.max_image_pixels)])
            positions, boxes = self._image_token_boxes(inputs)
            with torch.inference_mode():
                vectors = self._embed_batch(inputs, pages=True)[0]
            keep = self._output_mask(inputs, pages=True)[0].bool().cpu().numpy()
            results.append((vectors, patch_grid(positions, boxes, keep)))
        return results

    def _image_token_boxes(
        self, inputs: BatchFeature | Mapping[str, Any]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Sequence positions ``(n,)`` and page boxes ``(n, 4)`` of the image tokens of the
        single page in ``inputs`` (see :mod:`sauerkraut_rag.encoders._page_geometry`)."""
        raise InvalidInputError(
            f"{type(self).__name__} does not report page geometry, so it cannot draw "
            "similarity maps. Use ColLFM2 or ColQwen3."
        )
