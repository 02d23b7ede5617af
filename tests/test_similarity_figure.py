"""A similarity map a person can read (issue 15, row 10): grey page, heat colours,
title with query, page and score, and a colour bar labelled with the score scale."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from sauerkraut_rag import load_encoder
from sauerkraut_rag._map_figure import INK, layout, paint
from sauerkraut_rag.retrievers.maxsim import maxsim
from sauerkraut_rag.similarity_maps import (
    DEFAULT_ALPHA,
    explain_page_figure,
    overlay_heat_map,
)
from tests.factories.collfm2 import build_tiny_collfm2
from tests.test_similarity_maps import block_page


@pytest.fixture(scope="module")
def lfm2(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return load_encoder(build_tiny_collfm2(tmp_path_factory.mktemp("fig-lfm2") / "ck"))


def test_low_scores_leave_the_page_grey() -> None:
    page = block_page(40, 20, rows=2, cols=2)
    heat = np.zeros((20, 40))
    heat[:, 30:] = 1.0  # only the right quarter matches
    overlay = np.asarray(overlay_heat_map(page, heat), dtype=np.int64)
    grey = np.asarray(page.convert("L"), dtype=np.int64)
    left = overlay[:, :30]
    assert (left[..., 0] == left[..., 1]).all() and (left[..., 1] == left[..., 2]).all()
    np.testing.assert_array_equal(left[..., 0], grey[:, :30])  # the page itself, in grey
    right = overlay[:, 30:]
    assert (np.abs(right[..., 0] - right[..., 2]) > 20).all()  # coloured where it matched


def _dark(region: np.ndarray) -> int:
    return int((region.sum(axis=-1) < 3 * 100).sum())


def test_figure_has_title_grey_page_and_colour_bar(lfm2: Any, tmp_path: Path) -> None:
    page = block_page(300, 420)
    query = "red block"
    explained = explain_page_figure(lfm2, query, page, label="scan.png, page 1")
    sizes = layout(*page.size)
    w, h = page.size
    figure = np.asarray(explained.figure.convert("RGB"), dtype=np.int64)
    assert figure.shape == (
        h + sizes["title"],
        w + sizes["gap"] + sizes["bar"] + sizes["labels"],
        3,
    )
    # the page region is the overlay: grey wherever the map is at its minimum
    region = figure[sizes["title"] :, :w]
    np.testing.assert_array_equal(region, np.asarray(explained.overlay))
    low = explained.heat == explained.heat.min()
    assert low.any()
    pixels = region[low]
    assert (pixels[:, 0] == pixels[:, 1]).all() and (pixels[:, 1] == pixels[:, 2]).all()
    # the title band holds text
    assert _dark(figure[: sizes["title"]]) > 20
    # the colour bar: max score colour at the top, the plain page (white) at the bottom
    x0 = w + sizes["gap"]
    column = figure[sizes["title"] + 1 : -1, x0 + sizes["bar"] // 2]
    expected = paint(
        np.full((len(column) + 2, 1, 1), 255.0),
        np.linspace(1.0, 0.0, len(column) + 2)[:, None],
        DEFAULT_ALPHA,
    )[1:-1, 0]
    np.testing.assert_array_equal(column, expected)
    assert tuple(column[-1]) == (255, 255, 255) or column[-1].min() >= 250
    # five tick labels beside the bar, from the top to the bottom of the page
    labels = figure[sizes["title"] :, x0 + sizes["bar"] + 2 :]
    rows_with_ink = np.flatnonzero((labels.sum(axis=-1) < 3 * 100).any(axis=1))
    assert rows_with_ink.min() < sizes["font"] * 2
    assert rows_with_ink.max() > h - sizes["font"] * 2
    assert len(np.unique(rows_with_ink // (sizes["font"] * 2))) >= 5
    assert tuple(INK) == (20, 20, 20)
    # the score is the page's normalised MaxSim, and the title says so
    q = lfm2.encode_queries([query])[0]
    expected_score = float(maxsim([q], lfm2.encode_documents([page]))[0, 0]) / q.shape[0]
    assert explained.score == pytest.approx(expected_score, abs=1e-4)
    assert explained.title == f'"{query}" · scan.png, page 1 · score {expected_score:.3f}'
    saved = explained.save(tmp_path / "map.png")
    with Image.open(saved) as image:
        assert image.text["Title"] == explained.title
        low_text, high_text = f"{explained.heat.min():.6f}", f"{explained.heat.max():.6f}"
        assert low_text in image.text["Description"] and high_text in image.text["Description"]
