"""Drawing a similarity map a person can read: grey page, heat colours, title, colour bar.

Pure drawing (numpy + Pillow), shared by :mod:`sauerkraut_rag.similarity_maps` and the
command line.  :func:`paint` blends the colour ramp over a grey page with an opacity that
grows with the score, so low-scoring regions keep the page's plain grey;
:func:`draw_figure` adds a title band above the page and a colour bar with the score scale
on its right.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFont

RAMP_POSITIONS = np.array([0.0, 0.3, 0.6, 0.85, 1.0])
"""Colour ramp of the heat map: low scores dark blue, high scores pale yellow."""
RAMP_COLOURS = np.array(
    [[25, 20, 70], [110, 30, 140], [215, 60, 80], [250, 150, 40], [255, 245, 150]],
    dtype=np.float64,
)
BACKGROUND = (255, 255, 255)
INK = (20, 20, 20)
TICKS = 5
"""Labelled values on the colour bar: minimum, maximum and evenly spaced ones between."""


def paint(grey: npt.NDArray[Any], scaled: npt.NDArray[Any], alpha: float) -> npt.NDArray[np.uint8]:
    """Blend ramp colours of ``scaled`` (``(h, w)`` in ``[0, 1]``) over ``grey`` ``(h, w, 1)``.

    The colour's opacity is ``alpha * scaled``: ``0`` leaves the grey page untouched.
    """
    colours = np.stack(
        [np.interp(scaled, RAMP_POSITIONS, RAMP_COLOURS[:, c]) for c in range(3)], axis=-1
    )
    opacity = (alpha * scaled)[..., None]
    blended = (1.0 - opacity) * grey + opacity * colours
    return np.clip(np.rint(blended), 0, 255).astype(np.uint8)


def font_for(height: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """Pillow's built-in font at about ``height`` pixels (bitmap font without FreeType)."""
    try:
        return ImageFont.load_default(size=max(8, height))
    except (TypeError, ValueError, OSError):  # Pillow without FreeType: fixed-size bitmap font
        return ImageFont.load_default()


def fit_text(text: str, font: Any, width: float) -> str:
    """``text`` shortened with an ellipsis so that it is at most ``width`` pixels wide."""
    if font.getlength(text) <= width:
        return text
    while text and font.getlength(text + "…") > width:
        text = text[:-1]
    return text + "…"


def layout(width: int, height: int) -> dict[str, int]:
    """Sizes of the title band, the colour bar and its labels for a page of this size."""
    unit = max(10, min(width, height) // 32)  # font height
    return {
        "font": unit,
        "title": 2 * unit,  # band above the page
        "gap": unit,  # between the page and the bar
        "bar": max(12, unit),  # bar width
        "labels": 6 * unit,  # room for the tick labels right of the bar
    }


def draw_figure(
    page: Image.Image,
    alpha: float,
    low: float,
    high: float,
    *,
    title: str,
) -> Image.Image:
    """``page`` (the painted overlay) with ``title`` above and a colour bar ``low..high``.

    The bar shows exactly the colours the overlay uses over a white page: its top is the
    map's maximum score, its bottom the minimum; ``TICKS`` values are printed beside it.
    """
    sizes = layout(page.width, page.height)
    font = font_for(sizes["font"])
    width = page.width + sizes["gap"] + sizes["bar"] + sizes["labels"]
    height = page.height + sizes["title"]
    figure = Image.new("RGB", (width, height), BACKGROUND)
    figure.paste(page.convert("RGB"), (0, sizes["title"]))
    draw = ImageDraw.Draw(figure)
    _text(
        draw,
        (sizes["font"] // 2, sizes["title"] // 2),
        fit_text(title, font, width - sizes["font"]),
        font,
        "lm",
    )
    x0 = page.width + sizes["gap"]
    top, bottom = sizes["title"], height - 1
    gradient = np.linspace(1.0, 0.0, bottom - top + 1)[:, None].repeat(sizes["bar"], axis=1)
    white = np.full((*gradient.shape, 1), 255.0)
    figure.paste(Image.fromarray(paint(white, gradient, alpha)), (x0, top))
    draw.rectangle((x0, top, x0 + sizes["bar"] - 1, bottom), outline=INK)
    for i in range(TICKS):
        fraction = i / (TICKS - 1)
        y = round(bottom - fraction * (bottom - top))
        value = low + fraction * (high - low)
        anchor = "ld" if i == 0 else ("la" if i == TICKS - 1 else "lm")
        draw.line((x0 + sizes["bar"], y, x0 + sizes["bar"] + sizes["font"] // 3, y), fill=INK)
        _text(draw, (x0 + sizes["bar"] + sizes["font"] // 2, y), f"{value:.3f}", font, anchor)
    return figure


def _text(
    draw: ImageDraw.ImageDraw, xy: tuple[int, int], text: str, font: Any, anchor: str
) -> None:
    """Draw ``text``; anchors need a FreeType font (the bitmap fallback draws top-left)."""
    if isinstance(font, ImageFont.FreeTypeFont):
        draw.text(xy, text, fill=INK, font=font, anchor=anchor)
    else:
        draw.text(xy, text, fill=INK, font=font)
