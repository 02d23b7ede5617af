"""save_page_image: content-derived names, atomic writes, no path escapes."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sauerkraut_rag.documents.pages import iter_pages, save_page_image
from sauerkraut_rag.errors import InvalidInputError, InvalidInputTypeError
from sauerkraut_rag.types import Page
from tests.pdf_factory import make_pdf

_NAME = re.compile(r"^[0-9a-f]{32}\.(png|webp)$")


def _page(source: str = "doc.pdf", number: int = 1, sha: str | None = "ab" * 32) -> Page:
    rng = np.random.default_rng(number)
    image = Image.fromarray(rng.integers(0, 255, (30, 40, 3), dtype=np.uint8))
    metadata = {} if sha is None else {"source_sha256": sha}
    return Page(source=source, page_number=number, image=image, metadata=metadata)


def test_png_round_trip_and_stable_name(tmp_path: Path):
    page = _page()
    path = save_page_image(page, tmp_path / "images")
    assert path.parent == tmp_path / "images"
    assert _NAME.match(path.name)
    with Image.open(path) as saved:
        assert saved.mode == "RGB"
        assert saved.tobytes() == page.image.tobytes()
    assert save_page_image(page, tmp_path / "images") == path
    assert sorted(p.name for p in (tmp_path / "images").iterdir()) == [path.name]


def test_webp_is_written(tmp_path: Path):
    page = _page()
    path = save_page_image(page, tmp_path, format="webp")
    assert path.suffix == ".webp"
    with Image.open(path) as saved:
        assert saved.format == "WEBP"
        assert saved.size == page.image.size


def test_names_depend_on_source_hash_and_page_only(tmp_path: Path):
    a1 = save_page_image(_page(number=1), tmp_path)
    a2 = save_page_image(_page(number=2), tmp_path)
    b1 = save_page_image(_page(number=1, sha="cd" * 32), tmp_path)
    renamed = save_page_image(_page(source="other/name.pdf", number=1), tmp_path)
    assert len({a1, a2, b1}) == 3
    assert renamed == a1


@pytest.mark.parametrize(
    "hostile",
    ["../../escape", "/etc/passwd", "..\\..\\x", "a/b/../../../c", "\x00nul", "CON"],
)
def test_hostile_sources_and_hashes_never_reach_the_file_name(tmp_path: Path, hostile: str):
    folder = tmp_path / "images"
    path = save_page_image(_page(source=hostile, sha=hostile), folder)
    assert path.parent == folder
    assert _NAME.match(path.name)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["images"]


def test_page_without_source_hash_uses_pixels(tmp_path: Path):
    first = save_page_image(_page(number=1, sha=None), tmp_path)
    same = save_page_image(_page(number=1, sha=None), tmp_path)
    different = Page(source="x", page_number=1, image=Image.new("RGB", (3, 3)), metadata={})
    assert first == same
    assert save_page_image(different, tmp_path) != first


def test_failed_write_leaves_old_file_and_no_temp(tmp_path: Path, monkeypatch):
    page = _page()
    path = save_page_image(page, tmp_path)
    before = path.read_bytes()

    def broken_save(self, fp, *args, **kwargs):
        fp.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_page_image(page, tmp_path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


def test_pdf_pages_get_distinct_files(tmp_path: Path):
    pdf = make_pdf(tmp_path / "a.pdf", 3)
    paths = [save_page_image(p, tmp_path / "img") for p in iter_pages(pdf, dpi=20)]
    assert len(set(paths)) == 3
    for path, page in zip(paths, iter_pages(pdf, dpi=20), strict=True):
        with Image.open(path) as saved:
            assert saved.tobytes() == page.image.tobytes()


def test_non_rgb_page_images_are_saved_as_rgb(tmp_path: Path):
    page = Page(source="x", page_number=1, image=Image.new("RGBA", (2, 2), (0, 0, 0, 0)))
    with Image.open(save_page_image(page, tmp_path)) as saved:
        assert saved.mode == "RGB"
        assert saved.getpixel((0, 0)) == (255, 255, 255)


def test_bad_arguments(tmp_path: Path):
    with pytest.raises(InvalidInputTypeError, match="Page"):
        save_page_image(Image.new("RGB", (2, 2)), tmp_path)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="'png' or 'webp'"):
        save_page_image(_page(), tmp_path, format="jpg")  # type: ignore[arg-type]
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(InvalidInputError, match="is a file"):
        save_page_image(_page(), blocker)
