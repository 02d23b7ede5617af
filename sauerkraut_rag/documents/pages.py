"""Page ingestion: PDFs, image files, folders, bytes and PIL images become :class:`Page` objects.

``iter_pages`` streams: it renders one page, yields it and keeps no reference to it, so a
1,000-page PDF never sits in memory at once.  PDFs are rendered with pypdfium2 (extra
``pdf``), so no poppler install is needed.  ``save_page_image`` stores a page image under a
content-derived file name inside an index folder.

Every page's ``metadata`` holds: ``source`` (path as given, ``"<bytes>"`` or ``"<image>"``),
``page`` (1-based), ``total_pages``, ``width``, ``height``, ``kind`` (``"pdf"`` or
``"image"``), ``source_sha256`` (SHA-256 of the source file or bytes, for resumable
indexing) and, for PDFs, ``dpi`` (the DPI actually rendered at).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from PIL import Image, features
from tqdm.auto import tqdm

from sauerkraut_rag._atomic import write_atomically
from sauerkraut_rag.documents.images import (
    DEFAULT_MAX_PIXELS,
    check_max_pixels,
    decode_rgb,
    describe,
    load_image,
    open_image,
    seek_frame,
    to_rgb,
)
from sauerkraut_rag.documents.pdf import import_pdfium, open_pdf, render_pages
from sauerkraut_rag.documents.sources import (
    IMAGE_SUFFIXES,
    PDF_SUFFIXES,
    OnError,
    Source,
    Sources,
    check_page_options,
    is_pdf,
    resolve_sources,
    sha256_of,
)
from sauerkraut_rag.errors import (
    DependencyMissingError,
    ImageLoadError,
    InvalidInputError,
    InvalidInputTypeError,
    PdfError,
)
from sauerkraut_rag.types import Metadata, Page

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "IMAGE_SUFFIXES",
    "PDF_SUFFIXES",
    "image_sha256",
    "iter_pages",
    "load_image",
    "save_page_image",
    "source_sha256",
]

logger = logging.getLogger(__name__)

PROGRESS_DELAY_SECONDS = 1.0
"""With ``show_progress=None`` the bar appears only after this much work (and on a tty)."""

_SKIPPABLE = (PdfError, ImageLoadError)
_HEX_NAME = re.compile(r"[0-9a-f]{8,64}")


def iter_pages(
    sources: Sources,
    *,
    dpi: int = 144,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    recursive: bool = True,
    password: str | None = None,
    show_progress: bool | None = None,
    on_error: OnError = "raise",
) -> Iterator[Page]:
    """Yield one RGB :class:`Page` per PDF page or image, in a deterministic order.

    ``sources`` is a path (PDF, image or folder), bytes (PDF or image, sniffed), a binary
    stream, a PIL image, or a list of these.  Folders are walked in sorted order (into
    sub-folders when ``recursive``) and contribute files ending in ``PDF_SUFFIXES`` or
    ``IMAGE_SUFFIXES``.  Multi-page TIFFs give one page per frame; animated GIF/PNG/WebP give
    their first frame.  PDF pages larger than ``max_pixels`` at ``dpi`` are rendered at a
    lower DPI; images larger than ``max_pixels`` are refused before decoding.

    Arguments are checked and folders listed when this function is called; pages are
    produced lazily.  Corrupt, encrypted (no or wrong ``password``) or empty PDFs raise
    :class:`PdfError`, bad images :class:`ImageLoadError`; with ``on_error="skip"`` these are
    logged as warnings and the remaining sources are still yielded.

    ``show_progress=None`` shows a tqdm bar over pages only when stderr is a terminal and
    the work lasts longer than ``PROGRESS_DELAY_SECONDS``; ``True``/``False`` force it.
    """
    check_page_options(dpi, recursive, password, show_progress, on_error)
    check_max_pixels(max_pixels)
    resolved = resolve_sources(sources, recursive=recursive, on_error=on_error)
    if any(_looks_like_pdf(source) for source in resolved):
        import_pdfium()  # fail now, not after the images before the first PDF
    return _generate(
        resolved,
        dpi=dpi,
        max_pixels=max_pixels,
        password=password,
        show_progress=show_progress,
        on_error=on_error,
    )


def _generate(
    sources: list[Source],
    *,
    dpi: float,
    max_pixels: int,
    password: str | None,
    show_progress: bool | None,
    on_error: OnError,
) -> Iterator[Page]:
    bar = _progress_bar(show_progress)
    try:
        for source in sources:
            try:
                for page in _pages_of(source, dpi, max_pixels, password, bar, on_error):
                    bar.update(1)
                    yield page
            except _SKIPPABLE as exc:
                if on_error == "raise":
                    raise
                logger.warning("Skipping %s: %s", source.label, exc)
    finally:
        bar.close()


def _progress_bar(show_progress: bool | None) -> tqdm:
    """tqdm over pages; ``None`` lets tqdm disable itself when stderr is not a terminal."""
    if show_progress is None:
        return tqdm(total=0, unit="page", desc="pages", disable=None, delay=PROGRESS_DELAY_SECONDS)
    return tqdm(total=0, unit="page", desc="pages", disable=not show_progress)


def _grow_total(bar: tqdm, n: int) -> None:
    bar.total = (bar.total or 0) + n
    bar.refresh()


def _pages_of(
    source: Source,
    dpi: float,
    max_pixels: int,
    password: str | None,
    bar: tqdm,
    on_error: OnError,
) -> Iterator[Page]:
    if source.image is not None:
        image = load_image(source.image, max_pixels=max_pixels)
        _grow_total(bar, 1)
        base = {"kind": "image", "source_sha256": image_sha256(source.image)}
        yield _make_page(source.label, 1, 1, image, base)
        return
    digest = sha256_of(source)
    if is_pdf(source):
        data: Path | bytes = source.path if source.path is not None else source.data or b""
        label = describe(data)
        with open_pdf(data, label, password) as (document, total):
            _grow_total(bar, total)
            for rendered in render_pages(
                document, total, label, dpi, max_pixels, skip_bad_pages=on_error == "skip"
            ):
                base = {"kind": "pdf", "source_sha256": digest, "dpi": round(rendered.dpi, 3)}
                page = _make_page(source.label, rendered.number, total, rendered.image, base)
                page.text = rendered.text or None
                yield page
        return
    item = source.path if source.path is not None else source.data or b""
    label = describe(item)
    with open_image(item, max_pixels) as opened:
        total = getattr(opened, "n_frames", 1) if opened.format == "TIFF" else 1
        _grow_total(bar, total)
        for index in range(total):
            if index:
                seek_frame(opened, index, label, max_pixels)
            image = decode_rgb(opened, label, from_file=True)
            base = {"kind": "image", "source_sha256": digest}
            yield _make_page(source.label, index + 1, total, image, base)


def _looks_like_pdf(source: Source) -> bool:
    """Cheap PDF guess without file I/O: ``.pdf`` paths and bytes starting like a PDF."""
    if source.path is not None:
        return source.path.suffix.lower() in PDF_SUFFIXES
    return source.data is not None and b"%PDF-" in source.data[:1024]


def _make_page(label: str, number: int, total: int, image: Image.Image, extra: Metadata) -> Page:
    metadata: Metadata = {
        "source": label,
        "page": number,
        "total_pages": total,
        "width": image.width,
        "height": image.height,
        **extra,
    }
    return Page(source=label, page_number=number, image=image, metadata=metadata)


def source_sha256(source: Source) -> str:
    """The ``source_sha256`` its pages get: file or bytes hash, or a PIL image's pixel hash."""
    return image_sha256(source.image) if source.image is not None else sha256_of(source)


def image_sha256(image: Image.Image) -> str:
    """SHA-256 of a PIL image's mode, size and pixel bytes."""
    digest = hashlib.sha256(f"{image.mode}:{image.width}x{image.height}:".encode())
    digest.update(image.tobytes())
    return digest.hexdigest()


def save_page_image(
    page: Page,
    folder: str | os.PathLike[str],
    *,
    format: Literal["png", "webp"] = "png",
    name: str | None = None,
) -> Path:
    """Write ``page.image`` into ``folder`` atomically and return the file's path.

    The file name is a hash of the page's ``source_sha256`` metadata (or of its pixels when
    absent) and its page number, so it never contains user-supplied text and saving the same
    page twice gives the same path.  ``name`` (8-64 lowercase hex digits, e.g. a page id)
    replaces that hash, for stores that name images after their documents.  The image is
    written to a temporary file in ``folder`` and moved into place with ``os.replace``.
    PNG is lossless; WebP uses quality 90.
    """
    if not isinstance(page, Page) or not isinstance(page.image, Image.Image):
        raise InvalidInputTypeError(
            f"Expected a Page with a PIL image, got {type(page).__name__}. Build pages with "
            "iter_pages()."
        )
    if format not in ("png", "webp"):
        raise InvalidInputError(f"Expected format 'png' or 'webp', got {format!r}.")
    if format == "webp" and not features.check("webp"):
        raise DependencyMissingError(
            "This Pillow build cannot write WebP. Use format='png' or install a Pillow wheel "
            "with WebP support (pip install --force-reinstall pillow)."
        )
    target_dir = Path(os.fspath(folder))
    if target_dir.exists() and not target_dir.is_dir():
        raise InvalidInputError(
            f"Expected a folder to save page images in, but {str(target_dir)!r} is a file. "
            "Pass a folder path (it is created when missing)."
        )
    target_dir.mkdir(parents=True, exist_ok=True)
    if name is not None and not _HEX_NAME.fullmatch(str(name)):
        raise InvalidInputError(
            f"Expected name to be 8-64 lowercase hex digits (a page id), got {name!r:.80}."
        )
    if name is None:
        source_key = page.metadata.get("source_sha256")
        if not isinstance(source_key, str) or not source_key:
            source_key = image_sha256(page.image)
        name = hashlib.sha256(f"{source_key}:{page.page_number}".encode()).hexdigest()[:32]
    target = target_dir / f"{name}.{format}"
    image = to_rgb(page.image)
    options: dict[str, Any] = {"quality": 90} if format == "webp" else {}
    return write_atomically(
        target, lambda stream: image.save(stream, format=format.upper(), **options)
    )
