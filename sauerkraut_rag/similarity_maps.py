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

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt
from PIL import Image

from sauerkraut_rag._atomic import write_atomically
from sauerkraut_rag._map_figure import draw_figure, paint
from sauerkraut_rag.encoders._page_geometry import PatchGrid
from sauerkraut_rag.errors import DimensionMismatchError, InvalidInputError, InvalidInputTypeError
from sauerkraut_rag.types import MultiVector

if TYPE_CHECKING:
    from sauerkraut_rag.encoders._visual import PageEncoderBase

__all__ = [
    "PageExplanation",
    "PatchGrid",
    "explain_page",
    "explain_page_figure",
    "overlay_heat_map",
    "patch_scores",
    "similarity_map",
]

Reduce = Literal["max", "sum"]
REDUCTIONS: tuple[str, ...] = ("max", "sum")
DEFAULT_ALPHA = 0.6
"""Opacity of the heat colour at the map's maximum (the minimum leaves the page grey)."""


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
    image: Image.Image, heat: npt.NDArray[np.floating[Any]], *, alpha: float = DEFAULT_ALPHA
) -> Image.Image:
    """The page in grey with the heat map ``(height, width)`` painted over it (RGB, page size).

    Scores are scaled to the map's own minimum and maximum.  The colour's opacity grows
    with the score, from ``0`` at the minimum (the page shows in plain grey) to ``alpha``
    at the maximum (the brightest colour of the ramp), so the strongest match stands out
    and weak regions stay readable; a constant map leaves the page grey.
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
    grey = np.asarray(image.convert("L"), dtype=np.float64)[..., None]
    return Image.fromarray(paint(grey, scaled, alpha))


def explain_page(
    encoder: PageEncoderBase, query: str, page: Any, *, reduce: Reduce = "max"
) -> tuple[npt.NDArray[np.float32], Image.Image]:
    """Heat map ``(height, width)`` and overlay image for ``query`` on one ``page``.

    ``encoder`` is a page encoder (ColLFM2 or ColQwen3); ``page`` a PIL image, an image
    path or image bytes.  The map and the overlay (grey page, heat colours) have the page
    image's size; :func:`explain_page_figure` adds a title and a colour bar.
    """
    explained = _explain(encoder, query, page, reduce)
    return explained.heat, explained.overlay


@dataclass(frozen=True)
class PageExplanation:
    """A similarity map of one query over one page, ready to look at.

    ``heat`` is ``(height, width)`` (page pixels); ``overlay`` the page in grey with the
    heat colours (page size); ``figure`` the overlay with a title band (query, page label,
    score) and a colour bar labelled with the score scale; ``score`` the page's MaxSim for
    the query divided by the number of query tokens (as search results show it).
    """

    heat: npt.NDArray[np.float32]
    overlay: Image.Image
    figure: Image.Image
    score: float
    title: str
    reduce: str

    def save(self, path: str | Path) -> Path:
        """Write :attr:`figure` as PNG (atomically), with the title and the score scale
        in the file's ``Title`` and ``Description`` text fields."""
        from PIL.PngImagePlugin import PngInfo

        info = PngInfo()
        info.add_text("Title", self.title)
        info.add_text(
            "Description",
            f"patch scores ({self.reduce} over query tokens) from "
            f"{float(self.heat.min()):.6f} to {float(self.heat.max()):.6f}",
        )
        return write_atomically(
            Path(path), lambda stream: self.figure.save(stream, format="PNG", pnginfo=info)
        )


def explain_page_figure(
    encoder: PageEncoderBase,
    query: str,
    page: Any,
    *,
    label: str | None = None,
    reduce: Reduce = "max",
) -> PageExplanation:
    """Like :func:`explain_page`, plus a readable figure: title and colour bar.

    The title reads ``"query" · label · score 0.412``; ``label`` names the page (for
    example ``"report.pdf, page 4"``; default: the path when ``page`` is one).
    """
    if label is None and isinstance(page, (str, Path)):
        label = str(page)
    return _explain(encoder, query, page, reduce, label=label)


def _explain(
    encoder: PageEncoderBase, query: str, page: Any, reduce: Reduce, *, label: str | None = None
) -> PageExplanation:
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
    overlay = overlay_heat_map(image, heat)
    sims = np.asarray(vectors, dtype=np.float32) @ np.asarray(query_vectors, dtype=np.float32).T
    score = float(sims.max(axis=0).sum()) / max(len(query_vectors), 1)
    parts = [f'"{" ".join(query.split())}"', *([label] if label else []), f"score {score:.3f}"]
    title = " · ".join(parts)
    figure = draw_figure(overlay, DEFAULT_ALPHA, float(heat.min()), float(heat.max()), title=title)
    return PageExplanation(heat, overlay, figure, score, title, reduce)


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
