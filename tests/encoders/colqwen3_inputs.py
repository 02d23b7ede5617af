"""Inputs shared by the ColQwen3 test modules: reproducible pages, queries, the hub id."""

from __future__ import annotations

import numpy as np
from PIL import Image

HUB_ID = "VAGOsolutions/SauerkrautLM-ColQwen3-1.7b-Turbo-v0.1"
QUERIES = ["hello", "Wie hoch war der Umsatz im letzten Geschäftsjahr 2023?", "chart"]


def noise_image(height: int, width: int, seed: int) -> Image.Image:
    """A reproducible RGB noise image of ``(height, width)``."""
    rng = np.random.default_rng(seed)
    return Image.fromarray((rng.random((height, width, 3)) * 255).astype("uint8"), "RGB")


PAGES = [noise_image(300, 200, 1), noise_image(100, 100, 2), noise_image(280, 420, 3)]
"""Below the 256*256 minimum (upscaled), portrait and landscape: three token counts."""
