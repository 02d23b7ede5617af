"""ColLFM2 page inputs, prepared the way the transformers version that wrote the checkpoint did.

A page goes through LFM2-VL's image processor (resize, tiles, thumbnail, patches: the
same pixels in transformers 4.57 and 5.x) and the prompt's ``<image>`` is expanded into
the image's token layout.  For a page split into ``rows x cols`` tiles (row-major, then
a thumbnail) the expansion is::

    <|image_start|> <|img_row_1_col_1|> <image>*t ... <|img_row_R_col_C|> <image>*t
    <|img_thumbnail|> <image>*n <|image_end|>

and a page that is not split is ``<|image_start|> <image>*n <|image_end|>``.  The two
versions part ways in the tile markers of non-square grids:

- **transformers 5.x** labels the tile in grid row ``r``, column ``c`` (1-based) as
  ``<|img_row_r_col_c|>``;
- **transformers 4.57** swaps the grid's row and column counts before labelling (its
  ``resize_and_split`` unpacks ``(grid_width, grid_height)`` as ``(rows, cols)``): the
  tiles keep their row-major order, but the labels enumerate a ``cols x rows`` grid, so
  tile ``k`` is ``<|img_row_{k // rows + 1}_col_{k % rows + 1}|>``.  A letter-portrait
  page (3 rows x 2 columns) is labelled ``row_1_col_1, row_1_col_2, row_1_col_3,
  row_2_col_1, row_2_col_2, row_2_col_3``.  Square grids and unsplit pages are equal.

The published checkpoints were trained and evaluated under 4.57, so a checkpoint whose
``config.json`` records ``transformers_version`` 4.x (or none) gets the 4.57 labels; one
written by 5.x gets the 5.x labels.  (4.57 also gives an unsplit page zero image tokens
when ``use_thumbnail`` is off, which its model then rejects; both variants here count
the page's tokens instead.)
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from sauerkraut_rag.errors import InvalidInputError, InvalidInputTypeError

if TYPE_CHECKING:
    from PIL import Image
    from transformers import Lfm2VlProcessor

logger = logging.getLogger(__name__)

PROCESSING_457 = "transformers-4.57"
PROCESSING_5 = "transformers-5"
PROCESSINGS = (PROCESSING_457, PROCESSING_5)
_ALIASES = {"4.57": PROCESSING_457, "4": PROCESSING_457, "5": PROCESSING_5, "5.x": PROCESSING_5}
IMAGE_PLACEHOLDER = "<image>"


def processing_for_version(version: str | None) -> str:
    """The input preparation of the transformers version a ``config.json`` records.

    ``"4.57.1"`` (any 4.x) -> :data:`PROCESSING_457`; ``"5.0.0"`` (5.x or later) ->
    :data:`PROCESSING_5`; no or an unreadable version -> :data:`PROCESSING_457`, the
    environment the published checkpoints were trained and evaluated in.
    """
    major = str(version or "").split(".", 1)[0]
    if not major.isdigit():
        return PROCESSING_457
    return PROCESSING_457 if int(major) <= 4 else PROCESSING_5


def resolve_processing(option: Any, recorded_version: str | None) -> str:
    """The processing in force: ``option`` if given (not ``None``/``"auto"``), else the
    one of ``recorded_version`` (see :func:`processing_for_version`)."""
    if option is None or option == "auto":
        chosen = processing_for_version(recorded_version)
        logger.info(
            "ColLFM2 input preparation: %s (config.json records transformers %s)",
            chosen,
            recorded_version or "no version",
        )
        return chosen
    if not isinstance(option, str):
        raise InvalidInputTypeError(
            f"Expected processing to be a str such as {PROCESSING_457!r}, got {option!r}."
        )
    value = _ALIASES.get(option, option)
    if value not in PROCESSINGS:
        raise InvalidInputError(
            f"Unknown processing {option!r} for ColLFM2. Expected 'auto' (follow the "
            f"checkpoint's config.json), {PROCESSING_457!r} or {PROCESSING_5!r}."
        )
    return value


def tile_markers(rows: int, cols: int, processing: str) -> list[str]:
    """The ``rows * cols`` tile markers in sequence (row-major tile) order."""
    n = rows * cols
    if processing == PROCESSING_457:
        return [f"<|img_row_{k // rows + 1}_col_{k % rows + 1}|>" for k in range(n)]
    return [f"<|img_row_{k // cols + 1}_col_{k % cols + 1}|>" for k in range(n)]


@dataclass(frozen=True)
class ImageLayout:
    """How one page was cut: ``rows x cols`` tiles (``1 x 1``: not split) and the size
    ``(height, width)`` of the single image or thumbnail after resizing."""

    rows: int
    cols: int
    resized: tuple[int, int]


def expand_image_tokens(
    layout: ImageLayout, processor: Lfm2VlProcessor, settings: Mapping[str, Any], processing: str
) -> str:
    """The text that replaces one ``<image>`` for a page with ``layout`` (see module doc)."""
    patch = int(settings["encoder_patch_size"])
    factor = int(settings["downsample_factor"])
    tile_side = math.ceil((int(settings["tile_size"]) // patch) / factor)
    height, width = layout.resized
    image_tokens = math.ceil((height // patch) / factor) * math.ceil((width // patch) / factor)
    special = bool(getattr(processor, "use_image_special_tokens", True))
    token = processor.image_token
    parts = [processor.image_start_token] if special else []
    if layout.rows > 1 or layout.cols > 1:
        for marker in tile_markers(layout.rows, layout.cols, processing):
            if special:
                parts.append(marker)
            parts.append(token * (tile_side * tile_side))
        if settings["use_thumbnail"]:
            if special:
                parts.append(processor.image_thumbnail_token)
            parts.append(token * image_tokens)
    else:
        parts.append(token * image_tokens)
    if special:
        parts.append(processor.image_end_token)
    return "".join(parts)


def image_settings(processor: Lfm2VlProcessor, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The image processor's splitting settings with the user's overrides applied."""
    image_processor = processor.image_processor
    names = ("encoder_patch_size", "downsample_factor", "tile_size", "use_thumbnail")
    settings = {name: getattr(image_processor, name) for name in names}
    settings.update({k: v for k, v in overrides.items() if k in settings})
    return settings


def page_inputs(
    image: Image.Image,
    prompt: str,
    processor: Lfm2VlProcessor,
    image_kwargs: Mapping[str, Any],
    processing: str,
) -> dict[str, torch.Tensor]:
    """Model inputs for one RGB page: ``input_ids``/``attention_mask`` ``(1, seq)``, the
    image processor's ``pixel_values``/``pixel_attention_mask``/``spatial_shapes`` (one row
    per tile and thumbnail) and ``tile_grid`` ``(1, 2)`` = ``(rows, cols)``."""
    vision = processor.image_processor(
        images=[image], return_tensors="pt", return_row_col_info=True, **image_kwargs
    )
    layout = ImageLayout(
        rows=int(vision.pop("image_rows")[0]),
        cols=int(vision.pop("image_cols")[0]),
        resized=tuple(int(v) for v in vision.pop("image_sizes")[0]),  # type: ignore[arg-type]
    )
    settings = image_settings(processor, image_kwargs)
    expansion = expand_image_tokens(layout, processor, settings, processing)
    if prompt.count(IMAGE_PLACEHOLDER) != 1:
        raise InvalidInputError(f"Expected one {IMAGE_PLACEHOLDER} in the page prompt {prompt!r}.")
    text = prompt.replace(IMAGE_PLACEHOLDER, expansion)
    encoded = processor.tokenizer(text, add_special_tokens=False, return_tensors="pt")
    inputs = {
        "input_ids": encoded["input_ids"],
        "attention_mask": encoded["attention_mask"],
        **{key: vision[key] for key in ("pixel_values", "pixel_attention_mask", "spatial_shapes")},
        "tile_grid": torch.tensor([[layout.rows, layout.cols]], dtype=torch.long),
    }
    n_tokens = int((inputs["input_ids"] == processor.image_token_id).sum())
    if n_tokens != _expected_image_tokens(inputs["spatial_shapes"], settings):
        raise InvalidInputError(
            f"The page prompt holds {n_tokens} image tokens, but the image processor made "
            f"patches for {_expected_image_tokens(inputs['spatial_shapes'], settings)}. "
            "The processor settings are inconsistent; re-download the checkpoint."
        )
    return inputs


def _expected_image_tokens(spatial_shapes: torch.Tensor, settings: Mapping[str, Any]) -> int:
    factor = int(settings["downsample_factor"])
    return sum(
        math.ceil(int(h) / factor) * math.ceil(int(w) / factor) for h, w in spatial_shapes.tolist()
    )
