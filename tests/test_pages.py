"""Page ingestion: PDFs, folders, bytes, errors, streaming and saved page images."""

from __future__ import annotations

import gc
import hashlib
import io
import logging
import os
import sys
import weakref
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from PIL import Image

from sauerkraut_rag.documents.pages import iter_pages
from sauerkraut_rag.errors import (
    DependencyMissingError,
    ImageLoadError,
    InvalidInputError,
    InvalidInputTypeError,
    PdfError,
)
from tests.image_factory import animated, encode, png_header_bomb
from tests.pdf_factory import (
    corrupt_pdf_bytes,
    make_pdf,
    page_color,
    pdf_bytes,
    zero_page_pdf_bytes,
)

pdfium = pytest.importorskip("pypdfium2")


def _centre(image: Image.Image) -> tuple[int, int, int]:
    return image.getpixel((image.width // 2, image.height // 2))


def _close(actual: tuple[int, ...], expected: tuple[int, ...], tol: int = 2) -> bool:
    return all(abs(a - e) <= tol for a, e in zip(actual, expected, strict=True))


# ---------------------------------------------------------------- PDFs


@pytest.mark.parametrize(("dpi", "size"), [(72, (612, 792)), (144, (1224, 1584)), (36, (306, 396))])
def test_pdf_pages_in_order_at_requested_dpi(tmp_path: Path, dpi: int, size: tuple[int, int]):
    path = make_pdf(tmp_path / "doc.pdf", 3)
    pages = list(iter_pages(path, dpi=dpi))
    assert [p.page_number for p in pages] == [1, 2, 3]
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    for number, page in enumerate(pages, start=1):
        assert page.image.mode == "RGB"
        assert page.image.size == size
        assert _close(_centre(page.image), page_color(number))
        assert page.source == str(path)
        assert page.metadata == {
            "source": str(path),
            "page": number,
            "total_pages": 3,
            "width": size[0],
            "height": size[1],
            "kind": "pdf",
            "source_sha256": sha,
            "dpi": float(dpi),
        }


def test_rotated_pdf_page_is_rendered_upright(tmp_path: Path):
    page = next(iter_pages(make_pdf(tmp_path / "r.pdf", 1, rotate=90), dpi=72))
    assert page.image.size == (792, 612)


def test_pdf_bytes_and_stream_match_file(tmp_path: Path):
    data = pdf_bytes(2)
    from_file = list(iter_pages(make_pdf(tmp_path / "d.pdf", 2), dpi=50))
    for source in (data, bytearray(data), io.BytesIO(data)):
        pages = list(iter_pages(source, dpi=50))
        assert [p.source for p in pages] == ["<bytes>", "<bytes>"]
        assert [p.metadata["source_sha256"] for p in pages] == [
            hashlib.sha256(data).hexdigest()
        ] * 2
        for got, ref in zip(pages, from_file, strict=True):
            assert got.image.tobytes() == ref.image.tobytes()


def test_bytes_sniffing_picks_image_decoder():
    png = encode(Image.new("RGB", (5, 4), (9, 8, 7)), "PNG")
    (page,) = iter_pages([png])
    assert page.metadata["kind"] == "image"
    assert page.image.size == (5, 4)
    assert page.image.getpixel((0, 0)) == (9, 8, 7)


def test_pdf_without_pdf_extension_is_sniffed(tmp_path: Path):
    path = tmp_path / "scan.bin"
    path.write_bytes(pdf_bytes(2))
    assert [p.page_number for p in iter_pages(path, dpi=20)] == [1, 2]


def test_large_pdf_page_is_rendered_within_max_pixels(tmp_path: Path, caplog):
    path = make_pdf(tmp_path / "poster.pdf", 1)
    with caplog.at_level(logging.WARNING, logger="sauerkraut_rag"):
        (page,) = iter_pages(path, dpi=144, max_pixels=100_000)
    width, height = page.image.size
    assert width * height <= 100_000
    assert width * height > 90_000  # scaled to fit, not shrunk needlessly
    assert abs(width / height - 612 / 792) < 0.01
    assert page.metadata["dpi"] < 144
    assert "max_pixels=100000" in caplog.text


# ---------------------------------------------------------------- bad PDFs


def test_corrupt_pdf_raises_pdf_error_naming_file(tmp_path: Path):
    path = tmp_path / "broken.pdf"
    path.write_bytes(corrupt_pdf_bytes())
    pages = iter_pages(path)
    with pytest.raises(PdfError, match=r"broken\.pdf.*corrupt"):
        next(pages)


def test_zero_page_pdf_raises(tmp_path: Path):
    path = tmp_path / "empty.pdf"
    path.write_bytes(zero_page_pdf_bytes())
    with pytest.raises(PdfError, match=r"empty\.pdf.*no pages"):
        list(iter_pages(path))


def test_encrypted_pdf_needs_the_right_password(tmp_path: Path):
    path = make_pdf(tmp_path / "secret.pdf", 2, password="s3cret")
    with pytest.raises(PdfError, match=r"secret\.pdf.*encrypted.*password="):
        list(iter_pages(path))
    with pytest.raises(PdfError, match=r"password given.*secret\.pdf.*wrong"):
        list(iter_pages(path, password="nope"))
    pages = list(iter_pages(path, password="s3cret", dpi=30))
    assert [_close(_centre(p.image), page_color(p.page_number)) for p in pages] == [True, True]


def test_missing_pdfium_names_the_extra(tmp_path: Path, monkeypatch):
    path = make_pdf(tmp_path / "a.pdf", 1)
    png = tmp_path / "b.png"
    Image.new("RGB", (3, 3)).save(png)
    monkeypatch.setitem(sys.modules, "pypdfium2", None)
    with pytest.raises(DependencyMissingError, match=r'pip install "sauerkraut-rag\[pdf\]"'):
        iter_pages([png, path])  # raised before any page is produced
    assert len(list(iter_pages(png))) == 1  # images need no pypdfium2


# ---------------------------------------------------------------- folders


def _mixed_folder(root: Path) -> list[tuple[str, int]]:
    """Build a folder of mixed inputs; return the expected ``(relative source, page)`` order."""
    make_pdf(root / "b.pdf", 2)
    Image.new("RGB", (10, 10), (1, 2, 3)).save(root / "a.png")
    (root / "notes.txt").write_text("not a page")
    Image.new("RGB", (10, 10)).save(root / ".hidden.png")
    (root / "sub").mkdir()
    Image.new("RGB", (10, 10)).save(root / "sub" / "c.JPG", format="JPEG")
    (root / "sub" / "d.tiff").write_bytes(animated([(255, 0, 0), (0, 0, 255)], "TIFF"))
    (root / "c.webp").write_bytes(encode(Image.new("RGB", (4, 4)), "WEBP"))
    return [
        ("a.png", 1),
        ("b.pdf", 1),
        ("b.pdf", 2),
        ("c.webp", 1),
        ("sub/c.JPG", 1),
        ("sub/d.tiff", 1),
        ("sub/d.tiff", 2),
    ]


def test_folder_is_walked_in_sorted_order(tmp_path: Path):
    expected = _mixed_folder(tmp_path)
    got = [
        (Path(p.source).relative_to(tmp_path).as_posix(), p.page_number)
        for p in iter_pages(tmp_path, dpi=20)
    ]
    assert got == expected
    flat = [
        (Path(p.source).name, p.page_number) for p in iter_pages(tmp_path, dpi=20, recursive=False)
    ]
    assert flat == [e for e in expected if "/" not in e[0]]


def test_multipage_tiff_yields_every_frame(tmp_path: Path):
    path = tmp_path / "scan.tif"
    path.write_bytes(animated([(255, 0, 0), (0, 255, 0), (0, 0, 255)], "TIFF"))
    pages = list(iter_pages(path))
    assert [p.image.getpixel((0, 0)) for p in pages] == [(255, 0, 0), (0, 255, 0), (0, 0, 255)]
    assert [p.metadata["total_pages"] for p in pages] == [3, 3, 3]


def test_animated_gif_yields_first_frame_only(tmp_path: Path):
    path = tmp_path / "anim.gif"
    path.write_bytes(animated([(255, 0, 0), (0, 255, 0)], "GIF"))
    (page,) = iter_pages(path)
    assert page.image.getpixel((0, 0)) == (255, 0, 0)


def test_empty_or_missing_folder_is_an_error(tmp_path: Path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.md").write_text("x")
    with pytest.raises(InvalidInputError, match="holds no PDF or image files"):
        iter_pages(tmp_path / "empty")
    with pytest.raises(InvalidInputError, match="No such file or folder"):
        iter_pages(tmp_path / "nope")


def test_on_error_skip_keeps_the_good_pages(tmp_path: Path, caplog):
    make_pdf(tmp_path / "a_good.pdf", 2)
    (tmp_path / "b_corrupt.pdf").write_bytes(corrupt_pdf_bytes())
    make_pdf(tmp_path / "c_locked.pdf", 1, password="pw")
    (tmp_path / "d_zero.pdf").write_bytes(zero_page_pdf_bytes())
    png = encode(Image.new("RGB", (50, 50), (5, 5, 5)), "PNG")
    (tmp_path / "e_truncated.png").write_bytes(png[: len(png) // 2])
    (tmp_path / "f_bomb.png").write_bytes(png_header_bomb(30_000, 30_000))
    Image.new("RGB", (6, 6)).save(tmp_path / "g_good.png")
    missing = tmp_path / "missing.pdf"
    with caplog.at_level(logging.WARNING, logger="sauerkraut_rag"):
        pages = list(iter_pages([tmp_path, missing], dpi=20, on_error="skip"))
    assert [(Path(p.source).name, p.page_number) for p in pages] == [
        ("a_good.pdf", 1),
        ("a_good.pdf", 2),
        ("g_good.png", 1),
    ]
    for name in ("b_corrupt", "c_locked", "d_zero", "e_truncated", "f_bomb", "missing"):
        assert name in caplog.text
    with pytest.raises(PdfError):
        list(iter_pages(tmp_path, dpi=20))


# ---------------------------------------------------------------- arguments


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"dpi": 0}, InvalidInputError),
        ({"dpi": 5000}, InvalidInputError),
        ({"dpi": "144"}, InvalidInputTypeError),
        ({"dpi": True}, InvalidInputTypeError),
        ({"max_pixels": 0}, InvalidInputError),
        ({"max_pixels": 1.5}, InvalidInputTypeError),
        ({"on_error": "ignore"}, InvalidInputError),
        ({"password": 123}, InvalidInputTypeError),
        ({"show_progress": "yes"}, InvalidInputTypeError),
        ({"recursive": 1}, InvalidInputTypeError),
    ],
)
def test_bad_options_raise_at_call_time(tmp_path: Path, kwargs: dict, error: type):
    path = make_pdf(tmp_path / "a.pdf", 1)
    with pytest.raises(error):
        iter_pages(path, **kwargs)


def test_unusable_paths_are_typed_errors(tmp_path: Path):
    with pytest.raises(InvalidInputError, match="empty string"):
        iter_pages("")  # must not silently mean the current folder
    with pytest.raises(InvalidInputError, match="File name too long"):
        iter_pages("x" * 100_000)
    with pytest.raises(InvalidInputError, match="null byte"):
        iter_pages(str(tmp_path / "a\x00.pdf"))


@pytest.mark.parametrize("sources", [[], [None], [123], None, 4.2, {"a": 1}, [b""]])
def test_bad_sources_raise_even_when_skipping(sources: object):
    with pytest.raises((InvalidInputError, InvalidInputTypeError)):
        iter_pages(sources, on_error="raise")
    if sources not in ([b""],):
        with pytest.raises((InvalidInputError, InvalidInputTypeError)):
            iter_pages(sources, on_error="skip")


def test_pil_image_sources(tmp_path: Path):
    image = Image.new("RGBA", (7, 3), (10, 20, 30, 255))
    pages = list(iter_pages([image, image]))
    assert [p.source for p in pages] == ["<image>", "<image>"]
    assert pages[0].image.mode == "RGB"
    assert pages[0].image.getpixel((0, 0)) == (10, 20, 30)
    assert pages[0].metadata["source_sha256"] == pages[1].metadata["source_sha256"]
    other = list(iter_pages(Image.new("RGBA", (7, 3), (10, 20, 31, 255))))
    assert other[0].metadata["source_sha256"] != pages[0].metadata["source_sha256"]


# ---------------------------------------------------------------- streaming


def _rss_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="needs Linux /proc")
def test_many_page_pdf_streams_with_bounded_memory(tmp_path: Path):
    # 300 pages at 144 DPI are 300 * 5.8 MB = 1.7 GB if held at once.
    path = make_pdf(tmp_path / "long.pdf", 300)
    pages = iter_pages(path, dpi=144)
    first = next(pages)
    first_ref = weakref.ref(first.image)
    del first
    gc.collect()
    baseline = _rss_bytes()
    peak = baseline
    count = 1
    for page in pages:
        count += 1
        assert page.image.size == (1224, 1584)
        peak = max(peak, _rss_bytes())
    assert count == 300
    assert first_ref() is None  # the iterator keeps no reference to yielded pages
    assert peak - baseline < 200 * 2**20


def test_pages_are_rendered_lazily(tmp_path: Path, monkeypatch):
    path = make_pdf(tmp_path / "lazy.pdf", 50)
    calls: list[int] = []
    original = pdfium.PdfPage.render

    def counting_render(self, *args, **kwargs):
        calls.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(pdfium.PdfPage, "render", counting_render)
    pages = iter_pages(path, dpi=20)
    assert calls == []
    for _ in range(3):
        next(pages)
    assert len(calls) == 3
    pages.close()


@pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="needs Linux /proc")
def test_abandoned_iteration_closes_files(tmp_path: Path):
    make_pdf(tmp_path / "a.pdf", 5)
    (tmp_path / "b.tif").write_bytes(animated([(1, 1, 1), (2, 2, 2)], "TIFF"))
    before = len(os.listdir("/proc/self/fd"))
    for name in ("a.pdf", "b.tif"):
        pages = iter_pages(tmp_path / name, dpi=20)
        next(pages)
        pages.close()
    assert len(os.listdir("/proc/self/fd")) == before


def test_concurrent_iteration_matches_sequential(tmp_path: Path):
    paths = [make_pdf(tmp_path / f"{i}.pdf", 15, texts=[f"doc {i}"] * 15) for i in range(4)]

    def render(path: Path) -> list[bytes]:
        return [hashlib.sha256(p.image.tobytes()).digest() for p in iter_pages(path, dpi=40)]

    expected = [render(path) for path in paths]
    with ThreadPoolExecutor(max_workers=4) as pool:
        assert list(pool.map(render, paths * 2)) == expected * 2


def test_progress_bar_toggle(tmp_path: Path, capsys):
    path = make_pdf(tmp_path / "a.pdf", 2)
    list(iter_pages(path, dpi=20, show_progress=True))
    assert "2/2" in capsys.readouterr().err
    list(iter_pages(path, dpi=20, show_progress=False))
    list(iter_pages(path, dpi=20))  # auto: stderr is not a terminal under pytest
    assert capsys.readouterr().err == ""


def test_bomb_image_is_refused_without_decoding(tmp_path: Path):
    path = tmp_path / "bomb.png"
    path.write_bytes(png_header_bomb(30_000, 30_000))
    with pytest.raises(ImageLoadError, match=r"bomb\.png.*max_pixels"):
        list(iter_pages(path))
