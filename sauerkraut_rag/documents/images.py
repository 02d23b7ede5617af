"""Image loading for page encoders and page ingestion: size guard, colour modes, frames.

Everything here turns "a PIL image, an image path or image bytes" into an 8-bit RGB
``PIL.Image.Image`` of shape ``(height, width, 3)`` with predictable colours:

* the pixel count is checked from the header, *before* any pixel is decoded;
* transparent areas are composited onto white (the colour of paper);
* CMYK is converted through its embedded ICC profile when there is one;
* 16-bit and 32-bit greyscale are scaled (not clipped) to 8 bits;
* EXIF orientation of files and bytes is applied (phone scans come out upright);
* animated images (GIF, APNG, WebP) give their first frame.
"""

from __future__ import annotations

import io
import logging
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, TypeAlias, cast

import numpy as np
from PIL import Image, UnidentifiedImageError

from sauerkraut_rag._checks import check_positive_int
from sauerkraut_rag.errors import ImageLoadError, InvalidInputError, InvalidInputTypeError

logger = logging.getLogger(__name__)

DEFAULT_MAX_PIXELS = 80_000_000
"""Largest accepted ``width * height``: an A3 page scanned at 600 DPI (70 MP) fits."""

ImageInput: TypeAlias = "Image.Image | str | os.PathLike[str] | bytes | bytearray | IO[bytes]"

_WHITE = (255, 255, 255)
_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})
_INT16_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N"})
_ORIENTATION_TAG = 0x0112
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def check_max_pixels(max_pixels: object) -> int:
    """Require ``max_pixels`` to be a positive int and return it."""
    return check_positive_int(max_pixels, name="max_pixels", hint="")


def describe(item: object) -> str:
    """Short human-readable name of an image source for error messages."""
    if isinstance(item, (str, os.PathLike)):
        text = repr(os.fspath(item))
        return text if len(text) <= 300 else f"{text[:150]}...{text[-150:]}"
    if isinstance(item, (bytes, bytearray)):
        return f"<{len(item)} bytes>"
    if isinstance(item, Image.Image):
        return f"<PIL image {item.mode} {item.width}x{item.height}>"
    return f"<{type(item).__name__}>"


def check_size(size: tuple[int, int], max_pixels: int, label: str) -> None:
    """Raise :class:`ImageLoadError` when ``width * height`` exceeds ``max_pixels``."""
    width, height = size
    if width * height > max_pixels:
        raise ImageLoadError(
            f"Image {label} is {width}x{height} = {width * height:,} pixels, above the limit "
            f"max_pixels={max_pixels:,} (a guard against decompression bombs). If you trust "
            f"this file, pass a larger max_pixels (>= {width * height}) or downscale it first."
        )


def path_kind(path: str | os.PathLike[str]) -> str:
    """``"file"``, ``"folder"`` or ``"missing"``; unusable paths (empty, too long, NUL) raise.

    Raises :class:`InvalidInputError`.
    """
    text = os.fspath(path)
    if text in ("", b""):
        raise InvalidInputError(
            "Expected a file or folder path, got an empty string. Pass a real path "
            "(use '.' explicitly for the current folder)."
        )
    try:
        info = os.stat(text)
    except (FileNotFoundError, NotADirectoryError):
        return "missing"
    except (OSError, ValueError) as exc:
        raise InvalidInputError(
            f"Cannot use {describe(path)} as a path: {getattr(exc, 'strerror', None) or exc}. "
            "Pass a valid file or folder path."
        ) from exc
    if stat.S_ISDIR(info.st_mode):
        return "folder"
    return "file" if stat.S_ISREG(info.st_mode) else "missing"


@contextmanager
def open_image(item: ImageInput, max_pixels: int) -> Iterator[Image.Image]:
    """Open a path, bytes or binary stream lazily (header only) and check its size.

    The file is closed when the block exits; pixels are decoded only by the caller.
    """
    label = describe(item)
    if isinstance(item, (str, os.PathLike)):
        try:
            kind = path_kind(item)
        except InvalidInputError as exc:
            raise ImageLoadError(str(exc)) from exc
        if kind != "file":
            what = "a folder" if kind == "folder" else "missing (or not a regular file)"
            raise ImageLoadError(
                f"Expected an image file, but {label} is {what}. Pass the path of an existing "
                "PNG/JPEG/WebP/TIFF/BMP/GIF file."
            )
        source: str | IO[bytes] = os.fspath(item)
    elif isinstance(item, (bytes, bytearray)):
        source = io.BytesIO(bytes(item))
    else:
        source = cast("IO[bytes]", item)
    try:
        image = Image.open(source)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise _bomb_error(label, exc, max_pixels) from exc
    except UnidentifiedImageError as exc:
        if _starts_like_pdf(source):
            raise ImageLoadError(
                f"{label} is a PDF, not an image. Render its pages with "
                "sauerkraut_rag.documents.pages.iter_pages() and pass the page images."
            ) from exc
        raise ImageLoadError(
            f"Could not identify {label} as an image. Expected a PNG, JPEG, WebP, TIFF, BMP or "
            "GIF file; check that the file is complete and is not a PDF or another format."
        ) from exc
    except OSError as exc:
        raise ImageLoadError(f"Could not read image {label}: {exc}. Check the file.") from exc
    with image:
        check_size(image.size, max_pixels, label)
        yield image


def _bomb_error(label: str, exc: Exception, max_pixels: int | None) -> ImageLoadError:
    """Pillow's own decompression-bomb refusal as an :class:`ImageLoadError` with the fix."""
    ours = f" sauerkraut-rag's own limit is max_pixels={max_pixels:,}." if max_pixels else ""
    return ImageLoadError(
        f"Image {label} was refused by Pillow as a possible decompression bomb ({exc}).{ours} "
        "If you trust this file, raise both max_pixels and PIL.Image.MAX_IMAGE_PIXELS, or "
        "downscale it first."
    )


def seek_frame(image: Image.Image, index: int, label: str, max_pixels: int) -> None:
    """Move a multi-frame image to frame ``index`` (0-based) and check that frame's size."""
    frame_label = f"{label} (frame {index + 1})"
    try:
        image.seek(index)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise _bomb_error(frame_label, exc, max_pixels) from exc
    except (OSError, ValueError, EOFError) as exc:
        raise ImageLoadError(
            f"Could not read {frame_label}: {exc}. The file is probably truncated or corrupt."
        ) from exc
    check_size(image.size, max_pixels, frame_label)


def decode_rgb(image: Image.Image, label: str, *, from_file: bool) -> Image.Image:
    """Decode the current frame of an opened image into RGB.

    With ``from_file`` the result is always a new image (the file may be closed afterwards)
    and the EXIF orientation is applied.
    """
    try:
        image.load()
        orientation = image.getexif().get(_ORIENTATION_TAG, 1) if from_file else 1
        rgb = to_rgb(image)
        if from_file and rgb is image:
            rgb = image.copy()
    except ImageLoadError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise _bomb_error(label, exc, None) from exc
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise ImageLoadError(
            f"Could not decode image {label}: {exc}. The file is probably truncated or "
            "corrupt; re-export or re-download it."
        ) from exc
    transpose = _TRANSPOSE.get(orientation) if isinstance(orientation, int) else None
    return rgb.transpose(transpose) if transpose is not None else rgb


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB; returns a new image unless already RGB."""
    mode = image.mode
    if mode == "RGB":
        return image
    if mode in _INT16_MODES or mode in ("I", "F"):
        return _scale_to_uint8(image).convert("RGB")
    if mode == "P":
        if "transparency" not in image.info:
            return image.convert("RGB")
        image = image.convert("RGBA")
    if mode == "CMYK":
        return _cmyk_to_rgb(image)
    if image.mode in _ALPHA_MODES:
        return _flatten_on_white(image)
    try:
        return image.convert("RGB")
    except ValueError as exc:
        raise ImageLoadError(
            f"Cannot convert an image in Pillow mode {mode!r} to RGB ({exc}). "
            "Convert it to RGB yourself before passing it."
        ) from exc


def _flatten_on_white(image: Image.Image) -> Image.Image:
    """Composite an image with alpha onto a white background."""
    if image.mode == "La":  # Pillow converts premultiplied La only to LA
        image = image.convert("LA")
    rgba = image.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (*_WHITE, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def _scale_to_uint8(image: Image.Image) -> Image.Image:
    """Map 16-bit, 32-bit int or float greyscale to mode ``L`` by scaling, never clipping.

    ``I;16*`` and ``I`` with values in ``[0, 65535]`` are divided by 257 (65535 -> 255);
    ``F`` in ``[0, 1]`` is multiplied by 255; anything else is stretched from its min to max.
    """
    try:
        values = np.asarray(image)
    except (TypeError, ValueError):
        values = np.asarray(image.convert("I"))
    values = np.nan_to_num(values.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    low = float(values.min()) if values.size else 0.0
    high = float(values.max()) if values.size else 0.0
    if image.mode == "F" and low >= 0.0 and high <= 1.0:
        scaled = values * 255.0
    elif image.mode != "F" and low >= 0.0 and high <= 65535.0:
        scaled = values / 257.0
    elif high > low:
        logger.debug("Stretching %s image from [%g, %g] to 8 bits", image.mode, low, high)
        scaled = (values - low) * (255.0 / (high - low))
    else:
        scaled = np.zeros_like(values)
    return Image.fromarray(np.clip(np.rint(scaled), 0, 255).astype(np.uint8), mode="L")


def _cmyk_to_rgb(image: Image.Image) -> Image.Image:
    """Convert CMYK via its embedded ICC profile when possible, else Pillow's formula."""
    icc = image.info.get("icc_profile")
    if icc:
        try:
            from PIL import ImageCms

            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            converted = ImageCms.profileToProfile(
                image, source, ImageCms.createProfile("sRGB"), outputMode="RGB"
            )
            if converted is not None:
                return converted
        except (ImportError, OSError, ValueError, TypeError) as exc:
            logger.debug("ICC conversion of CMYK image failed (%s); using plain formula", exc)
    return image.convert("RGB")


def load_image(item: ImageInput, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Turn a PIL image, image path, bytes or binary stream into an RGB image.

    Returns an 8-bit RGB ``PIL.Image.Image`` (``(height, width, 3)`` pixels).  An RGB PIL
    image passed in is returned as is; everything else is a new image.  Animated images give
    their first frame.  Raises :class:`ImageLoadError` for unreadable, truncated or
    too-large images (more than ``max_pixels`` pixels, checked before decoding) and
    :class:`InvalidInputTypeError` for unsupported types.
    """
    check_max_pixels(max_pixels)
    label = describe(item)
    if isinstance(item, Image.Image):
        check_size(item.size, max_pixels, label)
        if getattr(item, "is_animated", False):
            item.seek(0)
        return decode_rgb(item, label, from_file=False)
    if not isinstance(item, (str, os.PathLike, bytes, bytearray)) and not _is_binary_stream(item):
        raise InvalidInputTypeError(
            f"Expected a PIL image, an image path (str or os.PathLike), bytes or a binary "
            f"stream such as io.BytesIO, got {type(item).__name__}. Load the image with "
            "PIL.Image.open() or pass its path."
        )
    with open_image(item, max_pixels) as image:
        return decode_rgb(image, label, from_file=True)


def _starts_like_pdf(source: str | IO[bytes]) -> bool:
    """True when the first kilobyte of a file or stream holds the ``%PDF-`` marker."""
    try:
        if isinstance(source, str):
            with open(source, "rb") as handle:
                head = handle.read(1024)
        else:
            source.seek(0)
            head = source.read(1024)
    except (OSError, ValueError):
        return False
    return isinstance(head, bytes) and b"%PDF-" in head


def _is_binary_stream(item: object) -> bool:
    """True for readable, seekable binary file objects (``io.BytesIO``, ``open(p, 'rb')``)."""
    if isinstance(item, io.TextIOBase):
        return False
    return callable(getattr(item, "read", None)) and callable(getattr(item, "seek", None))
