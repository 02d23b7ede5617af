"""load_image: input kinds, colour-mode conversion, size guard and unreadable files."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sauerkraut_rag.documents.pages import DEFAULT_MAX_PIXELS, load_image
from sauerkraut_rag.errors import ImageLoadError, InvalidInputError, InvalidInputTypeError
from tests.image_factory import (
    animated,
    cmyk_swatches,
    encode,
    gray16,
    palette_with_transparency,
    png_header_bomb,
)
from tests.pdf_factory import make_pdf


def _pixels(image: Image.Image) -> list[tuple[int, int, int]]:
    assert image.mode == "RGB"
    return [tuple(p) for p in np.asarray(image).reshape(-1, 3).tolist()]


# ---------------------------------------------------------------- input kinds


def test_every_input_kind_gives_the_same_rgb(tmp_path: Path):
    reference = Image.new("RGB", (6, 4), (12, 34, 56))
    reference.putpixel((1, 2), (200, 100, 0))
    data = encode(reference, "PNG")
    path = tmp_path / "x.png"
    path.write_bytes(data)
    for item in (path, str(path), data, bytearray(data), io.BytesIO(data)):
        out = load_image(item)
        assert out.mode == "RGB"
        assert out.tobytes() == reference.tobytes(), type(item)
    assert load_image(reference) is reference  # RGB PIL images pass through untouched


def test_file_handle_is_read_but_not_closed(tmp_path: Path):
    path = tmp_path / "x.png"
    Image.new("RGB", (3, 3), (1, 2, 3)).save(path)
    with path.open("rb") as handle:
        assert load_image(handle).getpixel((0, 0)) == (1, 2, 3)
        assert not handle.closed


@pytest.mark.parametrize("item", [123, None, ["a.png"], 1.5, io.StringIO("abc"), {"p": 1}])
def test_unsupported_types(item: object):
    with pytest.raises(InvalidInputTypeError, match="Expected a PIL image"):
        load_image(item)


@pytest.mark.parametrize("max_pixels", [0, -5])
def test_max_pixels_must_be_positive(max_pixels: int):
    with pytest.raises(InvalidInputError):
        load_image(Image.new("RGB", (2, 2)), max_pixels=max_pixels)


# ---------------------------------------------------------------- colour modes


@pytest.mark.parametrize("format", ["TIFF", None])
def test_cmyk_is_converted(format: str | None):
    image, expected = cmyk_swatches()
    item = encode(image, format) if format else image
    assert _pixels(load_image(item)) == expected


def test_cmyk_jpeg_is_converted():
    image, expected = cmyk_swatches()
    big = image.resize((64, 16), Image.Resampling.NEAREST)
    out = load_image(encode(big, "JPEG", quality=95))
    got = [out.getpixel((8 + 16 * i, 8)) for i in range(4)]
    for g, e in zip(got, expected, strict=True):
        assert max(abs(a - b) for a, b in zip(g, e, strict=True)) <= 12, (got, expected)


def test_cmyk_with_unusable_icc_profile_falls_back():
    image, expected = cmyk_swatches()
    image.info["icc_profile"] = b"not an icc profile"
    assert _pixels(load_image(image)) == expected


@pytest.mark.parametrize("format", ["PNG", "GIF", None])
def test_palette_transparency_becomes_white(format: str | None):
    image = palette_with_transparency()
    item = encode(image, format, transparency=1) if format else image
    assert _pixels(load_image(item)) == [(255, 0, 0), (255, 255, 255)]


def test_palette_without_transparency_keeps_colours():
    image = palette_with_transparency()
    del image.info["transparency"]
    assert _pixels(load_image(encode(image, "PNG"))) == [(255, 0, 0), (0, 0, 255)]


@pytest.mark.parametrize(
    ("mode", "values", "expected"),
    [
        ("RGBA", [(0, 0, 0, 255), (0, 0, 0, 0), (0, 0, 0, 128)], [0, 255, 127]),
        ("LA", [(0, 255), (0, 0), (0, 128)], [0, 255, 127]),
        ("PA", [(0, 255), (0, 0), (0, 128)], [0, 255, 127]),
    ],
)
def test_alpha_is_composited_on_white(mode: str, values: list, expected: list[int]):
    image = Image.new(mode, (3, 1))
    if mode == "PA":
        image.putpalette([0, 0, 0] * 256)
    image.putdata(values)
    got = [p[0] for p in _pixels(load_image(image))]
    assert all(abs(g - e) <= 1 for g, e in zip(got, expected, strict=True)), got


@pytest.mark.parametrize(
    ("mode", "values"),
    [("La", [(0, 0), (0, 255)]), ("RGBa", [(0, 0, 0, 0), (0, 0, 0, 255)])],
)
def test_premultiplied_alpha_is_composited(mode: str, values: list):
    image = Image.new(mode, (2, 1))
    image.putdata(values)
    assert _pixels(load_image(image)) == [(255, 255, 255), (0, 0, 0)]


def test_unconvertible_mode_is_a_clear_error(monkeypatch):
    image = Image.new("HSV", (2, 1))

    def refuse(self, mode=None, *args, **kwargs):
        raise ValueError(f"conversion from {self.mode} to {mode} not supported")

    monkeypatch.setattr(Image.Image, "convert", refuse)
    with pytest.raises(ImageLoadError, match=r"Pillow mode 'HSV'.*Convert it to RGB yourself"):
        load_image(image)


def test_one_bit_image():
    image = Image.new("1", (2, 1))
    image.putpixel((1, 0), 1)
    assert _pixels(load_image(image)) == [(0, 0, 0), (255, 255, 255)]


_SIXTEEN = [0, 257 * 100, 32768, 65535]
_EIGHT = [0, 100, 128, 255]  # scaled, not clipped at 255


@pytest.mark.parametrize("format", ["PNG", "TIFF", None])
def test_sixteen_bit_grey_is_scaled(format: str | None):
    image = gray16(_SIXTEEN)
    item = encode(image, format) if format else image
    assert [p[0] for p in _pixels(load_image(item))] == _EIGHT


def test_sixteen_bit_big_endian_and_mode_i():
    big = Image.frombytes("I;16B", (4, 1), np.asarray(_SIXTEEN, dtype=">u2").tobytes())
    assert [p[0] for p in _pixels(load_image(big))] == _EIGHT
    as_i = Image.fromarray(np.asarray([_SIXTEEN], dtype=np.int32), mode="I")
    assert [p[0] for p in _pixels(load_image(as_i))] == _EIGHT


def test_out_of_range_int_and_float_are_stretched():
    wide = Image.fromarray(np.asarray([[-100, 0, 99_900]], dtype=np.int32), mode="I")
    assert [p[0] for p in _pixels(load_image(wide))] == [0, 0, 255]
    unit = Image.fromarray(np.asarray([[0.0, 0.5, 1.0]], dtype=np.float32), mode="F")
    assert [p[0] for p in _pixels(load_image(unit))] == [0, 128, 255]


@pytest.mark.parametrize("format", ["GIF", "PNG", "WEBP", "TIFF"])
def test_animated_images_give_first_frame(format: str):
    data = animated([(255, 0, 0), (0, 255, 0), (0, 0, 255)], format)
    assert load_image(data).getpixel((3, 3)) == (255, 0, 0)
    with Image.open(io.BytesIO(data)) as opened:
        opened.seek(2)
        assert load_image(opened).getpixel((3, 3)) == (255, 0, 0)


def test_exif_orientation_of_files_is_applied():
    image = Image.new("RGB", (40, 20), (255, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise for display
    out = load_image(encode(image, "JPEG", exif=exif.tobytes()))
    assert out.size == (20, 40)


# ---------------------------------------------------------------- size guard


def test_thirty_thousand_square_header_is_refused(tmp_path: Path):
    path = tmp_path / "bomb.png"
    path.write_bytes(png_header_bomb(30_000, 30_000))
    with pytest.raises(ImageLoadError, match=r"bomb\.png.*MAX_IMAGE_PIXELS") as info:
        load_image(path)
    assert "max_pixels" in str(info.value)


def test_own_limit_is_checked_before_decoding():
    # The IDAT holds only 64 bytes: decoding would fail as truncated, so a size message
    # proves the check ran on the header alone.
    bomb = png_header_bomb(5_000, 5_000)
    with pytest.raises(
        ImageLoadError,
        match=r"5000x5000 = 25,000,000 pixels.*max_pixels=1,000,000",
    ):
        load_image(bomb, max_pixels=1_000_000)
    with pytest.raises(ImageLoadError, match="truncated"):
        load_image(bomb, max_pixels=25_000_000)


def test_pillow_bomb_warning_as_error_is_converted():
    bomb = png_header_bomb(10_000, 10_000)  # above Pillow's warning threshold
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ImageLoadError, match="decompression bomb"):
            load_image(bomb, max_pixels=200_000_000)


def test_default_limit_admits_a_600_dpi_a3_scan():
    assert DEFAULT_MAX_PIXELS >= 7016 * 9921
    with pytest.raises(ImageLoadError, match="max_pixels"):
        load_image(Image.new("RGB", (100, 100)), max_pixels=9_999)
    assert load_image(Image.new("RGB", (100, 100)), max_pixels=10_000).size == (100, 100)


# ---------------------------------------------------------------- unreadable input


def test_truncated_file_names_the_file(tmp_path: Path):
    rng = np.random.default_rng(0)
    noisy = Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
    data = encode(noisy, "PNG")
    path = tmp_path / "cut.png"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageLoadError, match=r"cut\.png.*truncated or corrupt"):
        load_image(path)


def test_garbage_bytes_and_missing_paths(tmp_path: Path):
    with pytest.raises(ImageLoadError, match="Could not identify"):
        load_image(b"definitely not an image")
    with pytest.raises(ImageLoadError, match="missing"):
        load_image(tmp_path / "nope.png")
    with pytest.raises(ImageLoadError, match="folder"):
        load_image(tmp_path)
    with pytest.raises(ImageLoadError, match="empty string"):
        load_image("")


def test_pdf_given_as_image_points_to_iter_pages(tmp_path: Path):
    path = make_pdf(tmp_path / "doc.pdf", 1)
    with pytest.raises(ImageLoadError, match=r"doc\.pdf.*is a PDF.*iter_pages"):
        load_image(path)
    with pytest.raises(ImageLoadError, match="is a PDF"):
        load_image(path.read_bytes())
