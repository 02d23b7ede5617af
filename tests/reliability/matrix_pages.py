"""Bad-input matrix, page ingestion: broken, locked, empty and huge PDFs; odd images."""

from __future__ import annotations

import gc
import weakref
from pathlib import Path

import numpy as np

from sauerkraut_rag.documents.pages import iter_pages
from sauerkraut_rag.errors import ImageLoadError, InvalidInputError, InvalidInputTypeError, PdfError
from tests.image_factory import (
    animated,
    cmyk_swatches,
    encode,
    gray16,
    palette_with_transparency,
    png_header_bomb,
)
from tests.pdf_factory import corrupt_pdf_bytes, make_pdf, zero_page_pdf_bytes
from tests.reliability.matrix_case import Ctx, behaves, fails
from tests.reliability.soak_loop import rss_bytes

A = "pages"
BIG_PDF_PAGES = 5_000
BIG_PDF_DPI = 100
"""5,000 one-inch pages at 100 DPI: 100x100 RGB, 30 KB each, 143 MiB if all were kept."""
BIG_PDF_RSS_LIMIT = 48 << 20


def _pages(source: object, **options: object) -> list[object]:
    return list(iter_pages(source, **options))  # type: ignore[arg-type]


@fails(A, "corrupt-pdf", PdfError, "corrupt", "repair")
def _corrupt(ctx: Ctx) -> object:
    path = ctx.tmp / "broken.pdf"
    path.write_bytes(corrupt_pdf_bytes())
    return _pages(path)


@fails(A, "encrypted-pdf-no-password", PdfError, "encrypted", "password=")
def _encrypted(ctx: Ctx) -> object:
    return _pages(make_pdf(ctx.tmp / "locked.pdf", 2, password="geheim"))


@fails(A, "encrypted-pdf-wrong-password", PdfError, "password", "wrong", "case-sensitive")
def _wrong_password(ctx: Ctx) -> object:
    return _pages(make_pdf(ctx.tmp / "locked.pdf", 2, password="geheim"), password="GEHEIM")


@fails(A, "zero-page-pdf", PdfError, "no pages", "on_error='skip'")
def _zero_pages(ctx: Ctx) -> object:
    path = ctx.tmp / "empty.pdf"
    path.write_bytes(zero_page_pdf_bytes())
    return _pages(path)


@behaves(A, "5000-page-pdf-streamed")
def _big_pdf(ctx: Ctx) -> None:
    """Documented: pages are rendered one at a time and not kept by the iterator."""
    path = make_pdf(ctx.tmp / "long.pdf", BIG_PDF_PAGES, size=(72.0, 72.0))
    pages = iter_pages(path, dpi=BIG_PDF_DPI)
    first = next(pages)
    assert first.metadata["total_pages"] == BIG_PDF_PAGES
    first_image = weakref.ref(first.image)
    del first
    next(pages)
    gc.collect()
    assert first_image() is None  # the generator keeps no page it has moved past
    baseline = peak = rss_bytes()
    count = 2
    for page in pages:
        count += 1
        assert page.page_number == count and page.image.size == (100, 100)
        if count % 250 == 0:
            peak = max(peak, rss_bytes())
    assert count == BIG_PDF_PAGES
    assert peak - baseline < BIG_PDF_RSS_LIMIT, (peak - baseline) >> 20


@fails(
    A, "30000x30000-image", ImageLoadError, "900000000 pixels", "decompression bomb", "max_pixels"
)
def _bomb(ctx: Ctx) -> object:
    path = ctx.tmp / "bomb.png"
    path.write_bytes(png_header_bomb(30_000, 30_000))
    return _pages(path)


def _one_page(data: bytes, tmp: Path, name: str) -> list[tuple[int, ...]]:
    """The RGB pixels (row-major) of the single page ``data`` (an image file) gives."""
    (tmp / name).write_bytes(data)
    pages = _pages(tmp / name)
    assert len(pages) == 1 and pages[0].image.mode == "RGB"  # type: ignore[attr-defined]
    return [tuple(p) for p in np.asarray(pages[0].image).reshape(-1, 3).tolist()]  # type: ignore[attr-defined]


@behaves(A, "cmyk-image")
def _cmyk(ctx: Ctx) -> None:
    image, expected = cmyk_swatches()
    assert _one_page(encode(image, "TIFF"), ctx.tmp, "cmyk.tif") == expected


@behaves(A, "palette-image")
def _palette(ctx: Ctx) -> None:
    pixels = _one_page(encode(palette_with_transparency(), "PNG"), ctx.tmp, "palette.png")
    assert pixels == [(255, 0, 0), (255, 255, 255)]  # transparency composited onto white


@behaves(A, "16-bit-image")
def _sixteen_bit(ctx: Ctx) -> None:
    pixels = _one_page(encode(gray16([0, 257 * 100, 65535]), "PNG"), ctx.tmp, "grey16.png")
    assert pixels == [(0, 0, 0), (100, 100, 100), (255, 255, 255)]  # scaled, not clipped


@behaves(A, "animated-gif")
def _animated(ctx: Ctx) -> None:
    data = animated([(250, 0, 0), (0, 0, 250), (0, 250, 0)], "GIF")
    pixels = _one_page(data, ctx.tmp, "anim.gif")  # one page: the first frame
    assert set(pixels) == {(250, 0, 0)}


@fails(A, "no-sources", InvalidInputError, "at least one source", "empty list")
def _no_sources(ctx: Ctx) -> object:
    return iter_pages([])


@fails(A, "none-in-sources", InvalidInputTypeError, "source 1", "NoneType")
def _none_source(ctx: Ctx) -> object:
    return iter_pages([make_pdf(ctx.tmp / "a.pdf", 1), None])  # type: ignore[list-item]


@fails(A, "empty-bytes", InvalidInputError, "empty bytes", "pdf or image data")
def _empty_bytes(ctx: Ctx) -> object:
    return iter_pages(b"")


@behaves(A, "skip-bad-files")
def _skip(ctx: Ctx) -> None:
    """Documented: with ``on_error="skip"`` broken files are logged and the rest yielded."""
    (ctx.tmp / "docs").mkdir()
    (ctx.tmp / "docs" / "a-broken.pdf").write_bytes(corrupt_pdf_bytes())
    (ctx.tmp / "docs" / "b-locked.pdf").write_bytes(
        make_pdf(ctx.tmp / "locked.pdf", 1, password="x").read_bytes()
    )
    make_pdf(ctx.tmp / "docs" / "c-good.pdf", 2)
    pages = _pages(ctx.tmp / "docs", dpi=20, on_error="skip")
    assert [(Path(p.source).name, p.page_number) for p in pages] == [  # type: ignore[attr-defined]
        ("c-good.pdf", 1),
        ("c-good.pdf", 2),
    ]


CASES = [
    _corrupt,
    _encrypted,
    _wrong_password,
    _zero_pages,
    _big_pdf,
    _bomb,
    _cmyk,
    _palette,
    _sixteen_bit,
    _animated,
    _no_sources,
    _none_source,
    _empty_bytes,
    _skip,
]
