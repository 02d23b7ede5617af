"""Similarity maps: which parts of a page matched a query, as a heat map over the page.

A page model scores a page by MaxSim: every query token picks its best-matching page
token.  For a picture of *where* the page matched, each image token of the page gets one
score from its similarities to the query tokens, and that score is painted over the page
region the token covers (geometry: :class:`~sauerkraut_rag.encoders._page_geometry.PatchGrid`).

Per image token ``j`` with similarities ``s_ij = <q_i, d_j>`` to query tokens ``i``:

- ``reduce="max"`` (default): ``max_i s_ij``, how well the patch matches its best query
  token.  Robust: a patch lights up if it matches any part of the query.
- ``reduce="sum"``: ``sum_i s_ij``, how well the patch matches the query as a whole.

Where regions of several tokens overlap (LFM2-VL adds a coarse thumbnail of the whole page
to its tiles) a pixel gets the mean of their scores.  The query tokens are the model's own
(including any prefix and expansion tokens it adds), exactly as MaxSim uses them.

>>> import numpy as np
>>> from sauerkraut_rag.encoders._page_geometry import PatchGrid
>>> q = np.array([[1.0, 0.0]], dtype=np.float32)                  # one query token
>>> d = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)      # two page tokens
>>> grid = PatchGrid(rows=np.array([0, 1]), boxes=np.array([[0, 0, .5, 1], [.5, 0, 1, 1]]))
>>> similarity_map(q, d, grid, (4, 1)).tolist()                    # left half matches
[[1.0, 1.0, 0.0, 0.0]]
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt
from PIL import Image

from sauerkraut_rag.encoders._page_geometry import PatchGrid
from sauerkraut_rag.errors import DimensionMismatchError, InvalidInputError, InvalidInputTypeError
from sauerkraut_rag.types import MultiVector

if TYPE_CHECKING:
    from sauerkraut_rag.encoders._visual import PageEncoderBase

__all__ = ["PatchGrid", "explain_page", "overlay_heat_map", "patch_scores", "similarity_map"]

Reduce = Literal["max", "sum"]
REDUCTIONS: tuple[str, ...] = ("max", "sum")

# Colour ramp for the heat map: low scores dark blue, high scores pale yellow.
_RAMP_POSITIONS = np.array([0.0, 0.3, 0.6, 0.85, 1.0])
_RAMP_COLOURS = np.array(
    [[25, 20, 70], [110, 30, 140], [215, 60, 80], [250, 150, 40], [255, 245, 150]],
    dtype=np.float64,
)


def patch_scores(
    query: MultiVector, page: MultiVector, grid: PatchGrid, *, reduce: Reduce = "max"
) -> npt.NDArray[np.float32]:
    """One score per image token ``(n_patches,)`` from query ``(q, dim)`` and page ``(n, dim)``."""
    if reduce not in REDUCTIONS:
        raise InvalidInputError(f"Expected reduce to be 'max' or 'sum', got {reduce!r}.")
    q = _matrix(query, "query")
    d = _matrix(page, "page")
    if q.shape[1] != d.shape[1]:
        raise DimensionMismatchError(
            f"Expected query and page vectors of the same dim, got {q.shape[1]} and "
            f"{d.shape[1]}. Encode both with the same model."
        )
    if len(grid) and (grid.rows.min() < 0 or grid.rows.max() >= d.shape[0]):
        raise InvalidInputError(
            f"The patch grid points at rows up to {int(grid.rows.max())}, but the page has "
            f"{d.shape[0]} token vectors. Pass the vectors the grid was computed with."
        )
    sims = d[grid.rows] @ q.T  # (n_patches, q)
    reduced = sims.max(axis=1) if reduce == "max" else sims.sum(axis=1)
    return reduced.astype(np.float32)


def similarity_map(
    query: MultiVector,
    page: MultiVector,
    grid: PatchGrid,
    size: tuple[int, int],
    *,
    reduce: Reduce = "max",
) -> npt.NDArray[np.float32]:
    """Heat map ``(height, width)`` for an image of ``size = (width, height)`` pixels.

    Each image token's score (see :func:`patch_scores`) fills the pixels of its box;
    overlapping boxes average; pixels no box covers get the lowest score.
    """
    width, height = _size(size)
    scores = patch_scores(query, page, grid, reduce=reduce)
    total = np.zeros((height, width), dtype=np.float64)
    count = np.zeros((height, width), dtype=np.int32)
    xs = np.rint(grid.boxes[:, [0, 2]] * width).astype(np.int64)
    ys = np.rint(grid.boxes[:, [1, 3]] * height).astype(np.int64)
    for score, (x0, x1), (y0, y1) in zip(scores.tolist(), xs, ys, strict=True):
        x1, y1 = max(x1, x0 + 1), max(y1, y0 + 1)  # every box covers at least one pixel
        total[y0:y1, x0:x1] += score
        count[y0:y1, x0:x1] += 1
    floor = float(scores.min()) if scores.size else 0.0
    heat = np.where(count > 0, total / np.maximum(count, 1), floor)
    return heat.astype(np.float32)


def overlay_heat_map(
    image: Image.Image, heat: npt.NDArray[np.floating[Any]], *, alpha: float = 0.55
) -> Image.Image:
    """The page in grey with the heat map ``(height, width)`` blended over it (RGB, page size).

    Scores are scaled to the map's own minimum and maximum, so the strongest match is
    always the brightest colour; a constant map gives a uniform tint.
    """
    if not isinstance(image, Image.Image):
        raise InvalidInputTypeError(f"Expected a PIL image, got {type(image).__name__}.")
    values = np.asarray(heat, dtype=np.float64)
    if values.shape != (image.height, image.width):
        raise InvalidInputError(
            f"Expected a heat map of shape (height, width) = {(image.height, image.width)}, "
            f"got {values.shape}. Compute it with similarity_map(..., size=image.size)."
        )
    if not 0.0 <= alpha <= 1.0:
        raise InvalidInputError(f"Expected alpha between 0 and 1, got {alpha}.")
    low, high = float(values.min()), float(values.max())
    scaled = (values - low) / (high - low) if high > low else np.zeros_like(values)
    colours = np.stack(
        [np.interp(scaled, _RAMP_POSITIONS, _RAMP_COLOURS[:, c]) for c in range(3)], axis=-1
    )
    grey = np.asarray(image.convert("L"), dtype=np.float64)[..., None]
    blended = (1.0 - alpha) * grey + alpha * colours
    return Image.fromarray(np.clip(np.rint(blended), 0, 255).astype(np.uint8))


def explain_page(
    encoder: PageEncoderBase, query: str, page: Any, *, reduce: Reduce = "max"
) -> tuple[npt.NDArray[np.float32], Image.Image]:
    """Heat map ``(height, width)`` and overlay image for ``query`` on one ``page``.

    ``encoder`` is a page encoder (ColLFM2 or ColQwen3); ``page`` a PIL image, an image
    path or image bytes.  The map has the page image's size.
    """
    from sauerkraut_rag.documents.pages import load_image

    if not callable(getattr(encoder, "encode_pages_with_geometry", None)):
        raise InvalidInputTypeError(
            f"Expected a page encoder (ColLFM2 or ColQwen3), got {type(encoder).__name__}. "
            "Similarity maps need a model that reads page images."
        )
    if not isinstance(query, str) or not query.strip():
        raise InvalidInputError(f"Expected a non-empty query string, got {query!r:.80}.")
    image = load_image(page)
    [(vectors, grid)] = encoder.encode_pages_with_geometry([image])
    query_vectors = encoder.encode_queries([query], show_progress=False)[0]
    heat = similarity_map(query_vectors, vectors, grid, image.size, reduce=reduce)
    return heat, overlay_heat_map(image, heat)


def _matrix(vectors: Any, what: str) -> npt.NDArray[np.float32]:
    array = np.asarray(vectors, dtype=np.float32)
    if array.ndim != 2 or array.shape[0] == 0:
        raise InvalidInputError(
            f"Expected the {what} vectors as a (n_tokens, dim) array with n_tokens >= 1, got "
            f"shape {array.shape}."
        )
    return array


def _size(size: Any) -> tuple[int, int]:
    valid = (
        isinstance(size, (tuple, list))
        and len(size) == 2
        and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in size)
    )
    if not valid or min(size) < 1:
        raise InvalidInputError(
            f"Expected size as (width, height) positive ints, got {size!r}. Use image.size."
        )
    return int(size[0]), int(size[1])
