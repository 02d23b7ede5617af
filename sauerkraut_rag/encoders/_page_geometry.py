"""Where each image token of a page sits on the page: the geometry behind similarity maps.

A page model turns a page into a sequence of tokens, some of which stand for image
patches.  :class:`PatchGrid` says, for those tokens, which row of the page's multi-vector
they are and which rectangle of the page image they cover, as fractions of the image
width and height (``x0, y0, x1, y1`` in ``[0, 1]``).  The two functions here read that
geometry off each processor's own output, so it follows the processor's settings:

- LFM2-VL (ColLFM2): a large page is resized to ``rows x cols`` tiles of equal size,
  in row-major order, each tile's tokens preceded by a ``<|img_row_R_col_C|>`` marker,
  followed by a thumbnail of the whole page after ``<|img_thumbnail|>``; a small page is
  one block.  (transformers 4.57 labels the markers of non-square grids with rows and
  columns swapped, so the grid is taken from the processor, not from the labels.)
  Each block's tokens form a row-major grid of ``ceil(h / f) x ceil(w / f)`` cells,
  where ``(h, w)`` is the block's patch grid (``spatial_shapes``) and ``f`` the
  downsample factor.
- Qwen3-VL (ColQwen3): the whole page is resized to ``image_grid_thw = (1, h, w)``
  patches; each image token is one ``merge x merge`` group, row-major over
  ``(h / merge) x (w / merge)``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from sauerkraut_rag.errors import InvalidInputError

_TILE_MARKER = re.compile(r"<\|img_row_(\d+)_col_(\d+)\|>")
_WHOLE = (0.0, 0.0, 1.0, 1.0)


@dataclass(frozen=True)
class PatchGrid:
    """Image tokens of one encoded page and the page regions they cover.

    ``rows``: ``(n_patches,)`` int64, rows of the page's ``(n_tokens, dim)`` multi-vector;
    ``boxes``: ``(n_patches, 4)`` float64, ``x0, y0, x1, y1`` as fractions of the page
    image's width and height.  Boxes of different blocks may overlap (LFM2-VL's thumbnail
    covers the whole page again at a coarser scale).
    """

    rows: npt.NDArray[np.int64]
    boxes: npt.NDArray[np.float64]

    def __len__(self) -> int:
        return int(self.rows.shape[0])


def _grid_boxes(
    n_rows: int, n_cols: int, region: tuple[float, float, float, float]
) -> npt.NDArray[np.float64]:
    """``(n_rows * n_cols, 4)`` row-major cell boxes that tile ``region``."""
    x0, y0, x1, y1 = region
    ys = np.linspace(y0, y1, n_rows + 1)
    xs = np.linspace(x0, x1, n_cols + 1)
    r, c = np.meshgrid(np.arange(n_rows), np.arange(n_cols), indexing="ij")
    r, c = r.ravel(), c.ravel()
    return np.stack([xs[c], ys[r], xs[c + 1], ys[r + 1]], axis=1)


def lfm2_token_boxes(
    tokens: Sequence[str],
    *,
    image_token: str,
    thumbnail_token: str,
    patch_grids: Sequence[tuple[int, int]],
    downsample_factor: int,
    tile_grid: tuple[int, int] | None = None,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Sequence positions ``(n,)`` and boxes ``(n, 4)`` of one LFM2-VL page's image tokens.

    ``tokens`` is the page's token strings in sequence order; ``patch_grids`` holds one
    ``(h, w)`` patch grid per image block (the processor's ``spatial_shapes``), in the
    order of the blocks in the sequence (tiles row by row, then the thumbnail).
    ``tile_grid`` is the page's ``(rows, cols)`` tile grid; when ``None`` it is read
    from the marker labels (right for transformers 5.x labels only).
    """
    blocks: list[tuple[tuple[int, int] | None, list[int]]] = []
    current: tuple[int, int] | None = None
    started = False
    for position, token in enumerate(tokens):
        marker = _TILE_MARKER.fullmatch(token)
        if marker is not None or token == thumbnail_token:
            current = (int(marker[1]), int(marker[2])) if marker is not None else None
            blocks.append((current, []))
            started = True
        elif token == image_token:
            if not started:  # a single-block page has no markers
                blocks.append((None, []))
                started = True
            blocks[-1][1].append(position)
    if len(blocks) != len(patch_grids):
        raise InvalidInputError(
            f"Expected one patch grid per LFM2-VL image block, got {len(patch_grids)} grids "
            f"for {len(blocks)} blocks. The page inputs do not come from one processor call."
        )
    tiles = [tile for tile, _ in blocks if tile is not None]
    if tile_grid is None:
        n_tile_rows = max((r for r, _ in tiles), default=1)
        n_tile_cols = max((c for _, c in tiles), default=1)
    else:
        n_tile_rows, n_tile_cols = (int(v) for v in tile_grid)
        if tiles and len(tiles) != n_tile_rows * n_tile_cols:
            raise InvalidInputError(
                f"Expected {n_tile_rows * n_tile_cols} tiles for a {n_tile_rows}x{n_tile_cols} "
                f"grid, got {len(tiles)} tile markers."
            )
        relabelled: list[tuple[tuple[int, int] | None, list[int]]] = []
        k = 0  # tiles come row-major, whatever their labels say
        for tile, block_positions in blocks:
            if tile is not None:
                tile, k = (k // n_tile_cols + 1, k % n_tile_cols + 1), k + 1
            relabelled.append((tile, block_positions))
        blocks = relabelled
    positions: list[int] = []
    boxes: list[npt.NDArray[np.float64]] = []
    for (tile, block_positions), (height, width) in zip(blocks, patch_grids, strict=True):
        grid_rows = math.ceil(height / downsample_factor)
        grid_cols = math.ceil(width / downsample_factor)
        if grid_rows * grid_cols != len(block_positions):
            raise InvalidInputError(
                f"Expected {grid_rows * grid_cols} image tokens for a {height}x{width} patch "
                f"block (downsample {downsample_factor}), got {len(block_positions)}."
            )
        region = _WHOLE
        if tile is not None:
            r, c = tile
            region = (
                (c - 1) / n_tile_cols,
                (r - 1) / n_tile_rows,
                c / n_tile_cols,
                r / n_tile_rows,
            )
        positions.extend(block_positions)
        boxes.append(_grid_boxes(grid_rows, grid_cols, region))
    return np.asarray(positions, dtype=np.int64), _stack(boxes)


def qwen_token_boxes(
    input_ids: Sequence[int],
    *,
    image_token_id: int,
    grid_thw: tuple[int, int, int],
    merge_size: int,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Sequence positions ``(n,)`` and boxes ``(n, 4)`` of one Qwen3-VL page's image tokens."""
    t, h, w = (int(v) for v in grid_thw)
    if t != 1 or h % merge_size or w % merge_size:
        raise InvalidInputError(
            f"Expected an image grid (1, h, w) with h and w divisible by {merge_size}, got "
            f"{(t, h, w)}. Similarity maps need a single still image per page."
        )
    ids = np.asarray(input_ids)
    positions = np.flatnonzero(ids == image_token_id).astype(np.int64)
    rows, cols = h // merge_size, w // merge_size
    if positions.shape[0] != rows * cols:
        raise InvalidInputError(
            f"Expected {rows * cols} image tokens for image_grid_thw {(t, h, w)}, got "
            f"{positions.shape[0]}."
        )
    return positions, _grid_boxes(rows, cols, _WHOLE)


def _stack(boxes: list[npt.NDArray[np.float64]]) -> npt.NDArray[np.float64]:
    return np.concatenate(boxes, axis=0) if boxes else np.zeros((0, 4), dtype=np.float64)


def patch_grid(
    positions: npt.NDArray[np.int64], boxes: npt.NDArray[np.float64], keep: npt.NDArray[np.bool_]
) -> PatchGrid:
    """Map sequence ``positions`` to rows of the padding-stripped multi-vector.

    ``keep`` is the ``(seq,)`` mask of positions the encoder returned; image tokens it
    dropped are left out of the grid.
    """
    row_of = np.cumsum(keep) - 1
    kept = keep[positions]
    return PatchGrid(rows=row_of[positions[kept]].astype(np.int64), boxes=boxes[kept])
