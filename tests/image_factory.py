"""Small hand-made images for ingestion tests: bombs, odd colour modes, animations."""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Sequence

import numpy as np
from PIL import Image


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_header_bomb(width: int, height: int) -> bytes:
    """A ~100-byte PNG that *declares* ``width x height`` RGB pixels but holds almost none.

    Nothing is allocated to build it; a loader that decodes before checking the size would
    try to allocate ``3 * width * height`` bytes.
    """
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", idat)
        + _chunk(b"IEND", b"")
    )


def encode(image: Image.Image, format: str, **options: object) -> bytes:
    """Encode ``image`` in ``format`` (``"PNG"``, ``"TIFF"``, ...) and return the bytes."""
    buffer = io.BytesIO()
    image.save(buffer, format=format, **options)
    return buffer.getvalue()


def cmyk_swatches() -> tuple[Image.Image, list[tuple[int, int, int]]]:
    """A 4x1 CMYK image (cyan, magenta, black, white) and the RGB each pixel must become."""
    image = Image.new("CMYK", (4, 1))
    image.putdata([(255, 0, 0, 0), (0, 255, 0, 0), (0, 0, 0, 255), (0, 0, 0, 0)])
    return image, [(0, 255, 255), (255, 0, 255), (0, 0, 0), (255, 255, 255)]


def palette_with_transparency() -> Image.Image:
    """A 2x1 palette image: pixel 0 opaque red, pixel 1 the transparent (blue) index."""
    image = Image.new("P", (2, 1))
    image.putpalette([255, 0, 0, 0, 0, 255] + [0, 0, 0] * 254)
    image.putdata([0, 1])
    image.info["transparency"] = 1
    return image


def gray16(values: Sequence[int]) -> Image.Image:
    """A 1-row 16-bit greyscale image (mode ``I;16``) holding ``values``."""
    return Image.fromarray(np.asarray([values], dtype=np.uint16))


def animated(colors: Sequence[tuple[int, int, int]], format: str, size: int = 8) -> bytes:
    """An animated GIF/PNG/WebP (or multi-page TIFF) with one solid frame per colour."""
    frames = [Image.new("RGB", (size, size), color) for color in colors]
    options: dict[str, object] = {"save_all": True, "append_images": frames[1:]}
    if format != "TIFF":
        options.update(duration=100, loop=0)
    if format == "WEBP":
        options["lossless"] = True
    return encode(frames[0], format, **options)
