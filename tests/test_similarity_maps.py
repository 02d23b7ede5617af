"""Similarity maps: page geometry of the two page encoders, scores, painting, overlay.

The geometry is checked against the processors' own pixels: for every image token, the
mean colour of the pixels the processor fed into that token (read back from
``pixel_values``) must match the mean colour of the page region its box names.  A page of
large uniform colour blocks makes a wrong row/column order, tile order or scale fail.
"""

from __future__ import annotations

import doctest
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

import sauerkraut_rag.similarity_maps as similarity_maps
from sauerkraut_rag import load_encoder
from sauerkraut_rag.encoders._page_geometry import (
    PatchGrid,
    lfm2_token_boxes,
    patch_grid,
    qwen_token_boxes,
)
from sauerkraut_rag.errors import DimensionMismatchError, InvalidInputError, InvalidInputTypeError
from sauerkraut_rag.similarity_maps import (
    explain_page,
    overlay_heat_map,
    patch_scores,
    similarity_map,
)
from tests.factories.colbert import build_tiny_colbert
from tests.factories.collfm2 import build_tiny_collfm2
from tests.factories.colqwen3 import build_tiny_colqwen3

COLOURS = np.array(
    [[230, 30, 30], [30, 200, 40], [30, 60, 230], [240, 220, 20], [160, 30, 170], [20, 200, 200]],
    dtype=np.uint8,
)


def block_page(width: int, height: int, rows: int = 4, cols: int = 3) -> Image.Image:
    """``rows x cols`` blocks of distinct colours (cycled): any geometry error shows."""
    yy, xx = np.mgrid[0:height, 0:width]
    index = (yy * rows // height) * cols + (xx * cols // width)
    return Image.fromarray(COLOURS[index % len(COLOURS)], "RGB")


def box_colour(image: Image.Image, box: np.ndarray) -> np.ndarray:
    """Mean RGB in ``[0, 1]`` of the page region ``box`` (fractions of width/height)."""
    pixels = np.asarray(image, dtype=np.float64) / 255.0
    h, w = pixels.shape[:2]
    top, bottom = round(box[1] * h), round(box[3] * h)
    left, right = round(box[0] * w), round(box[2] * w)
    region = pixels[top : max(bottom, top + 1), left : max(right, left + 1)]
    return region.reshape(-1, 3).mean(axis=0)


def assert_colours_match(processor_colours: np.ndarray, box_colours: np.ndarray) -> None:
    """Per token, processor pixels and page box agree (resampling blurs only block edges)."""
    error = np.abs(processor_colours - box_colours).max(axis=1)
    assert np.median(error) < 0.02
    assert np.mean(error < 0.1) > 0.85


@pytest.fixture(scope="module")
def lfm2(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return load_encoder(build_tiny_collfm2(tmp_path_factory.mktemp("sm-lfm2") / "ck"))


@pytest.fixture(scope="module")
def qwen(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return load_encoder(build_tiny_colqwen3(tmp_path_factory.mktemp("sm-qwen") / "ck"))


# ---------------------------------------------------------------------- pure geometry


def test_lfm2_boxes_tiles_then_thumbnail() -> None:
    tokens = ["<|im_start|>", "<|image_start|>"]
    for r in (1, 2):
        for c in (1, 2):
            tokens += [f"<|img_row_{r}_col_{c}|>"] + ["<image>"] * 4  # 4x4 patches, f=2
    tokens += ["<|img_thumbnail|>"] + ["<image>"] * 2 + ["<|image_end|>", "x"]
    positions, boxes = lfm2_token_boxes(
        tokens,
        image_token="<image>",
        thumbnail_token="<|img_thumbnail|>",
        patch_grids=[(4, 4)] * 4 + [(2, 4)],
        downsample_factor=2,
    )
    assert positions.tolist() == [i for i, t in enumerate(tokens) if t == "<image>"]
    # tile (1, 2): top-right quarter, its 2x2 tokens row-major
    np.testing.assert_allclose(
        boxes[4:8],
        [[0.5, 0, 0.75, 0.25], [0.75, 0, 1, 0.25], [0.5, 0.25, 0.75, 0.5], [0.75, 0.25, 1, 0.5]],
    )
    # tile (2, 1): bottom-left quarter
    np.testing.assert_allclose(boxes[8], [0, 0.5, 0.25, 0.75])
    # thumbnail: 1x2 tokens over the whole page
    np.testing.assert_allclose(boxes[16:], [[0, 0, 0.5, 1], [0.5, 0, 1, 1]])


def test_lfm2_boxes_single_block_without_markers() -> None:
    tokens = ["a", *["<image>"] * 6, "b"]
    positions, boxes = lfm2_token_boxes(
        tokens,
        image_token="<image>",
        thumbnail_token="<|img_thumbnail|>",
        patch_grids=[(4, 6)],
        downsample_factor=2,
    )
    assert positions.tolist() == list(range(1, 7))
    np.testing.assert_allclose(boxes[4], [1 / 3, 0.5, 2 / 3, 1.0])


def test_lfm2_boxes_reject_mismatched_counts() -> None:
    with pytest.raises(InvalidInputError, match="image tokens"):
        lfm2_token_boxes(
            ["<image>"] * 5,
            image_token="<image>",
            thumbnail_token="t",
            patch_grids=[(4, 4)],
            downsample_factor=2,
        )
    with pytest.raises(InvalidInputError, match="patch grid"):
        lfm2_token_boxes(
            ["<image>"] * 4,
            image_token="<image>",
            thumbnail_token="t",
            patch_grids=[(4, 4), (2, 2)],
            downsample_factor=2,
        )


def test_qwen_boxes_row_major() -> None:
    ids = [5, 9, 9, 9, 9, 9, 9, 7]
    positions, boxes = qwen_token_boxes(ids, image_token_id=9, grid_thw=(1, 4, 6), merge_size=2)
    assert positions.tolist() == [1, 2, 3, 4, 5, 6]
    np.testing.assert_allclose(boxes[3], [0, 0.5, 1 / 3, 1])
    with pytest.raises(InvalidInputError):
        qwen_token_boxes(ids, image_token_id=9, grid_thw=(1, 4, 4), merge_size=2)
    with pytest.raises(InvalidInputError):
        qwen_token_boxes(ids, image_token_id=9, grid_thw=(2, 4, 6), merge_size=2)


def test_patch_grid_maps_positions_to_kept_rows() -> None:
    keep = np.array([True, False, True, True, False, True])
    grid = patch_grid(np.array([2, 4, 5]), np.arange(12.0).reshape(3, 4), keep)
    assert grid.rows.tolist() == [1, 3]  # position 4 was dropped; 5 is the 4th kept row
    np.testing.assert_array_equal(grid.boxes, [[0, 1, 2, 3], [8, 9, 10, 11]])


# ---------------------------------------------------------------------- scores and maps


def test_doctest() -> None:
    assert doctest.testmod(similarity_maps).failed == 0


def test_patch_scores_match_brute_force() -> None:
    rng = np.random.default_rng(0)
    query = rng.normal(size=(3, 8)).astype(np.float32)
    page = rng.normal(size=(10, 8)).astype(np.float32)
    grid = PatchGrid(rows=np.array([9, 2, 4]), boxes=np.zeros((3, 4)))
    expected = np.array([[float(page[r] @ q) for q in query] for r in (9, 2, 4)])
    np.testing.assert_allclose(patch_scores(query, page, grid), expected.max(1), rtol=1e-5)
    np.testing.assert_allclose(
        patch_scores(query, page, grid, reduce="sum"), expected.sum(1), rtol=1e-5
    )
    with pytest.raises(InvalidInputError, match="reduce"):
        patch_scores(query, page, grid, reduce="mean")  # type: ignore[arg-type]
    with pytest.raises(DimensionMismatchError):
        patch_scores(query[:, :4], page, grid)
    with pytest.raises(InvalidInputError, match="rows up to"):
        patch_scores(query, page[:5], grid)


def test_similarity_map_averages_overlaps_and_fills_gaps() -> None:
    query = np.array([[1.0, 0.0]], dtype=np.float32)
    page = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]], dtype=np.float32)
    boxes = np.array([[0, 0, 0.5, 1], [0.25, 0, 0.5, 1], [0.75, 0, 1, 1]])
    heat = similarity_map(query, page, PatchGrid(np.array([0, 1, 2]), boxes), (8, 2))
    # columns 0-1: token 0 (1.0); 2-3: mean of tokens 0 and 1 (0.5); 4-5: uncovered, get
    # the lowest score (0.0); 6-7: token 2 (0.6)
    np.testing.assert_allclose(heat[0], [1, 1, 0.5, 0.5, 0, 0, 0.6, 0.6], atol=1e-6)
    np.testing.assert_array_equal(heat[0], heat[1])
    with pytest.raises(InvalidInputError, match="size"):
        similarity_map(query, page, PatchGrid(np.array([0]), boxes[:1]), (0, 2))


def test_overlay_heat_map_colours_by_score() -> None:
    page = Image.new("RGB", (4, 2), "white")
    heat = np.array([[0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 1.0]])
    overlay = np.asarray(overlay_heat_map(page, heat), dtype=np.int64)
    assert overlay.shape == (2, 4, 3)
    # strongest match is the most coloured; the weakest shows the page in plain grey
    # (issue 15: the page is grey under the heat map, not tinted)
    assert np.ptp(overlay[0, 3]) > 40
    assert np.ptp(overlay[0, 0]) == 0 and overlay[0, 0, 0] == 255
    flat = np.asarray(overlay_heat_map(page, np.zeros((2, 4))))
    assert (flat == flat[0, 0]).all()
    with pytest.raises(InvalidInputError, match="shape"):
        overlay_heat_map(page, np.zeros((4, 2)))


# ---------------------------------------------------------------------- page encoders


def _lfm2_token_colours(encoder: Any, image: Image.Image) -> tuple[np.ndarray, np.ndarray]:
    """Per image token: the processor's mean pixel colour and the geometry's box."""
    inputs = encoder._prepare_pages([image])
    positions, boxes = encoder._image_token_boxes(inputs)
    ip = encoder.processor.image_processor
    factor = ip.downsample_factor
    mean, std = np.array(ip.image_mean), np.array(ip.image_std)
    colours = []
    for block, (h, w) in enumerate(inputs["spatial_shapes"].tolist()):
        side = ip.encoder_patch_size
        patches = inputs["pixel_values"][block, : h * w].numpy().reshape(h, w, side, side, 3)
        pixels = patches * std + mean
        for i in range(-(-h // factor)):
            for j in range(-(-w // factor)):
                cell = pixels[i * factor : (i + 1) * factor, j * factor : (j + 1) * factor]
                colours.append(cell.reshape(-1, 3).mean(axis=0))
    assert len(colours) == len(positions)
    return np.array(colours), boxes


@pytest.mark.parametrize("size", [(850, 1100), (300, 200)], ids=["tiled", "single"])
def test_lfm2_geometry_matches_processor_pixels(lfm2: Any, size: tuple[int, int]) -> None:
    image = block_page(*size)
    colours, boxes = _lfm2_token_colours(lfm2, image)
    inputs = lfm2._prepare_pages([image])
    assert (inputs["spatial_shapes"].shape[0] > 1) == (size == (850, 1100))
    assert_colours_match(colours, np.array([box_colour(image, b) for b in boxes]))


def test_qwen_geometry_matches_processor_pixels(qwen: Any) -> None:
    image = block_page(420, 560)
    inputs = qwen._prepare_pages([image])
    positions, boxes = qwen._image_token_boxes(inputs)
    ip = qwen.image_processor
    merge, temporal = ip.merge_size, ip.temporal_patch_size
    mean, std = np.array(ip.image_mean), np.array(ip.image_std)
    # rows of pixel_values: merge*merge consecutive patches per token, each (C, T, P, P)
    values = inputs["pixel_values"].numpy().reshape(len(positions), merge * merge, 3, temporal, -1)
    colours = values.transpose(0, 1, 3, 4, 2).reshape(len(positions), -1, 3) * std + mean
    assert_colours_match(colours.mean(axis=1), np.array([box_colour(image, b) for b in boxes]))


@pytest.mark.parametrize("name", ["lfm2", "qwen"])
def test_encode_pages_with_geometry_matches_encode_documents(
    name: str, request: pytest.FixtureRequest
) -> None:
    encoder = request.getfixturevalue(name)
    pages = [block_page(850, 1100), block_page(300, 200, rows=2, cols=2)]
    reference = encoder.encode_documents(pages)
    results = encoder.encode_pages_with_geometry(pages)
    for (vectors, grid), expected, page in zip(results, reference, pages, strict=True):
        np.testing.assert_allclose(vectors, expected, atol=1e-5)
        inputs = encoder._prepare_pages([page])
        ids = inputs["input_ids"][0].numpy()
        n_image = (
            int((ids == encoder.config.image_token_id).sum())
            if name == "qwen"
            else int((ids == encoder.processor.image_token_id).sum())
        )
        assert len(grid) == n_image
        assert len(set(grid.rows.tolist())) == n_image
        assert grid.rows.max() < vectors.shape[0]
        assert grid.boxes.min() >= 0 and grid.boxes.max() <= 1


def test_qwen_geometry_with_image_tokens_only(tmp_path: Path) -> None:
    encoder = load_encoder(build_tiny_colqwen3(tmp_path / "ck"), mask_non_image_embeddings=True)
    [(vectors, grid)] = encoder.encode_pages_with_geometry([block_page(300, 200)])
    assert vectors.shape[0] == len(grid)  # only image tokens are returned
    assert grid.rows.tolist() == list(range(len(grid)))


def test_explain_page_has_page_size(lfm2: Any) -> None:
    page = block_page(300, 420)
    heat, overlay = explain_page(lfm2, "red block", page)
    assert heat.shape == (420, 300)
    assert overlay.size == page.size
    assert np.ptp(heat) > 0
    assert np.asarray(overlay).std() > 0


def test_explain_page_rejects_text_models_and_empty_queries(lfm2: Any, tmp_path: Path) -> None:
    text = load_encoder(build_tiny_colbert(tmp_path / "colbert"))
    with pytest.raises(InvalidInputTypeError, match="page encoder"):
        explain_page(text, "query", block_page(100, 100))  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="non-empty query"):
        explain_page(lfm2, "  ", block_page(100, 100))
