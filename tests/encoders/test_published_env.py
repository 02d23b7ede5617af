"""Faithful to the published environment (transformers 4.57.1) and to both on-disk layouts.

``tests/fixtures/tf457`` (made by ``tests/fixtures/make_tf457_goldens.py``) holds the same
tiny ColLFM2 and ColQwen3 saved by the authors' ``save_pretrained`` under transformers
4.57.1 (``*_457``) and under 5.x (``*_5x``), six page shapes, and the authors' vectors
under transformers 4.57.1 + torch 2.7.1, one item at a time.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sauerkraut_rag import load_encoder
from sauerkraut_rag.encoders._lfm2_inputs import (
    PROCESSING_5,
    PROCESSING_457,
    page_inputs,
    processing_for_version,
    resolve_processing,
    tile_markers,
)
from sauerkraut_rag.encoders.base import MultiVectorEncoder
from sauerkraut_rag.encoders.collfm2 import PAGE_PROMPT
from sauerkraut_rag.errors import CheckpointError, InvalidInputError

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "tf457"
VERSIONS = json.loads((FIXTURE / "versions.json").read_text(encoding="utf-8"))
PAGE_NAMES: list[str] = VERSIONS["pages"]
QUERIES: list[str] = VERSIONS["queries"]
PAGES = [FIXTURE / "pages" / f"{name}.png" for name in PAGE_NAMES]


@pytest.fixture(scope="module")
def golden() -> dict[str, np.ndarray]:
    with np.load(FIXTURE / "golden.npz", allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


def want(golden: dict[str, np.ndarray], family: str, kind: str) -> list[np.ndarray]:
    n = len(PAGES) if kind == "pages" else len(QUERIES)
    return [golden[f"{family}/{kind}/{i}"] for i in range(n)]


def assert_close(got: list[np.ndarray], expected: list[np.ndarray], what: str) -> None:
    assert len(got) == len(expected)
    for name, g, w in zip(PAGE_NAMES if what == "pages" else QUERIES, got, expected, strict=True):
        assert g.shape == w.shape, f"{name}: {g.shape} vs reference {w.shape}"
        np.testing.assert_allclose(g, w, atol=1e-5, rtol=0, err_msg=name)


@pytest.fixture(scope="module")
def collfm2_457() -> MultiVectorEncoder:
    return load_encoder(FIXTURE / "collfm2_457", device="cpu", dtype="float32")


def test_reference_was_made_in_the_published_environment() -> None:
    assert VERSIONS["tf457"]["transformers"] == "4.57.1"
    assert VERSIONS["tf457"]["torch"].startswith("2.7")
    assert VERSIONS["tf5"]["transformers"].startswith("5.")


# ---- ColLFM2 -------------------------------------------------------------------------------


def test_collfm2_checkpoint_of_4_57_gets_4_57_processing(collfm2_457: MultiVectorEncoder) -> None:
    assert collfm2_457.processing == PROCESSING_457
    assert f"processing={PROCESSING_457!r}" in repr(collfm2_457)
    assert collfm2_457.fingerprint.processing == PROCESSING_457


def test_collfm2_page_inputs_equal_the_4_57_processor(
    collfm2_457: MultiVectorEncoder, golden: dict[str, np.ndarray]
) -> None:
    for i, path in enumerate(PAGES):
        inputs = page_inputs(
            Image.open(path).convert("RGB"),
            PAGE_PROMPT,
            collfm2_457.processor,  # type: ignore[attr-defined]
            {},
            PROCESSING_457,
        )
        ids = inputs["input_ids"][0].numpy()
        np.testing.assert_array_equal(ids, golden[f"collfm2/page_ids/{i}"], err_msg=PAGE_NAMES[i])


def test_collfm2_pages_equal_the_authors_code_under_4_57(
    collfm2_457: MultiVectorEncoder, golden: dict[str, np.ndarray]
) -> None:
    expected = want(golden, "collfm2", "pages")
    assert expected[0].shape[0] > 6 * 256  # letter portrait: 3 x 2 tiles + thumbnail
    assert_close(collfm2_457.encode_documents(PAGES, batch_size=3), expected, "pages")


def test_collfm2_queries_equal_the_authors_code_under_4_57(
    collfm2_457: MultiVectorEncoder, golden: dict[str, np.ndarray]
) -> None:
    got = collfm2_457.encode_queries(QUERIES, batch_size=3)  # batched, left-padded
    assert_close(got, want(golden, "collfm2", "queries"), "queries")


def test_collfm2_5x_layout_loads_with_5x_processing_and_equal_vectors_under_4_57(
    collfm2_457: MultiVectorEncoder, golden: dict[str, np.ndarray]
) -> None:
    assert not (FIXTURE / "collfm2_5x" / "preprocessor_config.json").exists()
    default = load_encoder(FIXTURE / "collfm2_5x", device="cpu", dtype="float32")
    assert default.processing == PROCESSING_5
    forced = load_encoder(
        FIXTURE / "collfm2_5x", device="cpu", dtype="float32", processing="transformers-4.57"
    )
    assert_close(
        forced.encode_documents(PAGES, batch_size=6), want(golden, "collfm2", "pages"), "pages"
    )
    # 5.x semantics differ from 4.57 only on non-square multi-tile pages
    square, portrait = PAGES[PAGE_NAMES.index("square")], PAGES[0]
    np.testing.assert_allclose(
        default.encode_document(square), collfm2_457.encode_document(square), atol=1e-6
    )
    assert (
        np.abs(default.encode_document(portrait) - collfm2_457.encode_document(portrait)).max()
        > 1e-2
    )


def test_collfm2_5x_processing_equals_the_installed_transformers_processor() -> None:
    encoder = load_encoder(FIXTURE / "collfm2_5x", device="cpu", dtype="float32")
    processor = encoder.processor  # type: ignore[attr-defined]
    for path in PAGES:
        image = Image.open(path).convert("RGB")
        theirs = processor(text=PAGE_PROMPT, images=image, return_tensors="pt")
        ours = page_inputs(image, PAGE_PROMPT, processor, {}, PROCESSING_5)
        for key in ("input_ids", "attention_mask", "pixel_values", "spatial_shapes"):
            np.testing.assert_array_equal(ours[key].numpy(), theirs[key].numpy(), err_msg=key)


# ---- ColQwen3 ------------------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["colqwen3_457", "colqwen3_5x"])
def test_colqwen3_both_layouts_equal_the_authors_code_under_4_57(
    layout: str, golden: dict[str, np.ndarray]
) -> None:
    encoder = load_encoder(FIXTURE / layout, device="cpu", dtype="float32")
    assert_close(
        encoder.encode_documents(PAGES, batch_size=3), want(golden, "colqwen3", "pages"), "pages"
    )
    got = encoder.encode_queries(QUERIES, batch_size=3)
    assert_close(got, want(golden, "colqwen3", "queries"), "queries")


def test_colqwen3_5x_layout_has_no_preprocessor_config() -> None:
    folder = FIXTURE / "colqwen3_5x"
    assert not (folder / "preprocessor_config.json").exists()
    assert "image_processor" in json.loads((folder / "processor_config.json").read_text())
    assert "rope_parameters" in (folder / "config.json").read_text()


# ---- mixed layouts, missing processor ------------------------------------------------------


@pytest.mark.parametrize("family", ["collfm2", "colqwen3"])
def test_mixed_layouts_load_with_equal_vectors(family: str, tmp_path: Path) -> None:
    """5.x config and weights with 4.57 processor files, and the other way round."""
    old, new = FIXTURE / f"{family}_457", FIXTURE / f"{family}_5x"
    page = PAGES[PAGE_NAMES.index("square")]
    reference = load_encoder(old, device="cpu", dtype="float32").encode_document(page)
    weights = (
        "config.json",
        "model.safetensors",
        "collfm2_projection.pt",
        "generation_config.json",
    )
    for name, (model_from, files_from) in {
        "new-weights": (new, old),
        "old-weights": (old, new),
    }.items():
        mixed = tmp_path / name
        shutil.copytree(files_from, mixed)
        for file in weights:
            (mixed / file).unlink(missing_ok=True)
            if (model_from / file).exists():
                shutil.copy(model_from / file, mixed / file)
        got = load_encoder(mixed, device="cpu", dtype="float32").encode_document(page)
        np.testing.assert_allclose(got, reference, atol=1e-6, err_msg=name)


@pytest.mark.parametrize(
    ("layout", "remove"),
    [
        ("collfm2_457", "preprocessor_config.json"),
        ("collfm2_5x", "processor_config.json"),
        ("colqwen3_457", "preprocessor_config.json"),
        ("colqwen3_5x", "processor_config.json"),
    ],
)
def test_folder_without_image_processor_asks_for_the_complete_checkpoint(
    layout: str, remove: str, tmp_path: Path
) -> None:
    folder = shutil.copytree(FIXTURE / layout, tmp_path / layout)
    (folder / remove).unlink()
    with pytest.raises(CheckpointError, match="complete checkpoint"):
        load_encoder(folder, device="cpu")


# ---- choosing the processing ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("4.57.1", PROCESSING_457),
        ("4.55.0", PROCESSING_457),
        (None, PROCESSING_457),
        ("garbage", PROCESSING_457),
        ("5.0.0.dev0", PROCESSING_5),
        ("5.25.0", PROCESSING_5),
        ("6.1.0", PROCESSING_5),
    ],
)
def test_processing_follows_the_recorded_version(version: str | None, expected: str) -> None:
    assert processing_for_version(version) == expected
    assert resolve_processing("auto", version) == expected
    assert resolve_processing(None, version) == expected


def test_explicit_processing_overrides_the_checkpoint() -> None:
    assert resolve_processing("transformers-5", "4.57.1") == PROCESSING_5
    assert resolve_processing("4.57", "5.0.0") == PROCESSING_457
    with pytest.raises(InvalidInputError, match=r"transformers-4\.57"):
        resolve_processing("4.56", None)


def test_tile_markers_of_both_versions() -> None:
    """3 rows x 2 columns (letter portrait): 4.57 labels a 2 x 3 grid."""
    assert tile_markers(3, 2, PROCESSING_5) == [
        f"<|img_row_{r}_col_{c}|>" for r in (1, 2, 3) for c in (1, 2)
    ]
    assert tile_markers(3, 2, PROCESSING_457) == [
        f"<|img_row_{r}_col_{c}|>" for r in (1, 2) for c in (1, 2, 3)
    ]
    assert tile_markers(2, 2, PROCESSING_457) == tile_markers(2, 2, PROCESSING_5)


def test_similarity_geometry_uses_the_real_tile_grid(collfm2_457: MultiVectorEncoder) -> None:
    """Under 4.57 labels the portrait page's tiles still cover 3 rows x 2 columns."""
    ((vectors, grid),) = collfm2_457.encode_pages_with_geometry([PAGES[0]])  # type: ignore[attr-defined]
    tiles = grid.boxes[: 6 * 256].reshape(6, 256, 4)
    right_edges = [float(tile[:, 2].max()) for tile in tiles]
    bottom_edges = [float(tile[:, 3].max()) for tile in tiles]
    np.testing.assert_allclose(right_edges, [0.5, 1.0] * 3)
    np.testing.assert_allclose(bottom_edges, [1 / 3, 1 / 3, 2 / 3, 2 / 3, 1.0, 1.0])
    assert len(grid) <= vectors.shape[0]
