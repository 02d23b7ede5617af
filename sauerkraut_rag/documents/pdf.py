"""PDF rendering with pypdfium2 (optional extra ``pdf``), one page at a time.

pypdfium2 is imported lazily so the core works without it.  PDFium is not thread-safe, not
even across different documents, so every PDFium call here holds one process-wide lock
(released while a rendered page is handed to the caller).
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from PIL import Image

from sauerkraut_rag.errors import DependencyMissingError, PdfError

logger = logging.getLogger(__name__)

POINTS_PER_INCH = 72.0

# PDFium's FPDF_ERR_* codes (stable since PDFium's first release).
_ERR_SUCCESS = 0
_ERR_FILE = 2
_ERR_PASSWORD = 4
_ERR_SECURITY = 5

_PDFIUM_LOCK = threading.RLock()


@dataclass(frozen=True)
class RenderedPage:
    """One rendered PDF page: 1-based ``number``, RGB ``image``, the DPI actually used and
    the page's text layer (``""`` for a scan without one)."""

    number: int
    image: Image.Image
    dpi: float
    text: str = ""


def import_pdfium() -> ModuleType:
    """Import pypdfium2 or raise :class:`DependencyMissingError` naming the ``pdf`` extra."""
    try:
        import pypdfium2
    except ImportError as exc:
        raise DependencyMissingError(
            "Rendering PDF pages needs the optional package pypdfium2, which is not installed. "
            'Install it with: pip install "sauerkraut-rag[pdf]"'
        ) from exc
    return pypdfium2


@contextmanager
def open_pdf(data: Path | bytes, label: str, password: str | None) -> Iterator[tuple[Any, int]]:
    """Open a PDF (path or bytes); yield ``(pypdfium2.PdfDocument, n_pages)``; close on exit.

    Raises :class:`PdfError` for encrypted (no or wrong password), corrupt or empty files.
    The raw PDFium loader is used so that "no pages" and "unreadable" stay distinguishable
    (PDFium's last-error code is not reset by a successful load).
    """
    pdfium = import_pdfium()
    raw = pdfium.raw
    secret = None if password is None else (password + "\0").encode("utf-8")
    if isinstance(data, Path) and not data.is_file():
        raise PdfError(f"Could not read PDF {label}: no such file. Check the path.")
    with _PDFIUM_LOCK:
        if isinstance(data, Path):
            encoded = (str(data) + "\0").encode("utf-8", "surrogateescape")
            handle = raw.FPDF_LoadDocument(encoded, secret)
        else:
            handle = raw.FPDF_LoadMemDocument64(data, len(data), secret)
        if not handle:
            raise _open_error(label, raw.FPDF_GetLastError(), password)
        n_pages = raw.FPDF_GetPageCount(handle)
        if n_pages < 1:
            raw.FPDF_CloseDocument(handle)
            raise _open_error(label, _ERR_SUCCESS, password)
        document = pdfium.PdfDocument(handle)
        _init_forms(document)
    try:
        yield document, n_pages
    finally:  # ``data`` (in-memory bytes) stays referenced by this frame until here
        with _PDFIUM_LOCK:
            document.close()


def _init_forms(document: Any) -> None:
    """Enable drawing of filled-in form fields; documents without forms are unaffected."""
    try:
        document.init_forms()
    except Exception as exc:  # a broken form layer must not stop page rendering
        logger.debug("Could not initialise PDF forms (%s); rendering without them", exc)


def _open_error(label: str, code: int, password: str | None) -> PdfError:
    """Translate a PDFium load error code into a :class:`PdfError` with a fix."""
    if code == _ERR_PASSWORD and password is None:
        return PdfError(
            f"PDF {label} is encrypted and needs a password. Pass password='...' "
            "(all PDFs in one call share it), or decrypt the file first."
        )
    if code == _ERR_PASSWORD:
        return PdfError(
            f"The password given for the encrypted PDF {label} is wrong. "
            "Check the password (it is case-sensitive)."
        )
    if code == _ERR_SECURITY:
        return PdfError(
            f"PDF {label} uses an unsupported security handler. Decrypt it with the tool "
            "that created it and try again."
        )
    if code == _ERR_SUCCESS:
        return PdfError(
            f"PDF {label} has no pages (zero-page file). Expected at least one page; "
            "remove the file or pass on_error='skip'."
        )
    if code == _ERR_FILE:
        return PdfError(f"Could not open PDF {label} (file access error). Check the path.")
    return PdfError(
        f"PDF {label} is corrupt or not a PDF (PDFium error code {code}). Re-export it, "
        "repair it (for example `qpdf in.pdf out.pdf`), or pass on_error='skip'."
    )


def render_scale(width_pt: float, height_pt: float, dpi: float, max_pixels: int) -> float:
    """Scale (pixels per point) for ``dpi``, reduced so the bitmap has <= ``max_pixels``."""
    scale = dpi / POINTS_PER_INCH
    area = max(width_pt, 1e-6) * max(height_pt, 1e-6)
    if math.ceil(width_pt * scale) * math.ceil(height_pt * scale) <= max_pixels:
        return scale
    scale = math.sqrt(max_pixels / area)
    while scale > 0 and math.ceil(width_pt * scale) * math.ceil(height_pt * scale) > max_pixels:
        scale *= 0.999
    return scale


def render_pages(
    document: Any,
    n_pages: int,
    label: str,
    dpi: float,
    max_pixels: int,
    *,
    skip_bad_pages: bool,
) -> Iterator[RenderedPage]:
    """Render each page in order, closing its PDFium objects before the next page.

    A page larger than ``max_pixels`` at ``dpi`` is rendered at a lower DPI (logged).  A page
    that fails to render raises :class:`PdfError`, or is logged and skipped with
    ``skip_bad_pages``.
    """
    pdfium = import_pdfium()
    for index in range(n_pages):
        try:
            with _PDFIUM_LOCK:
                rendered = _render_one(document, index, label, dpi, max_pixels)
        except (pdfium.PdfiumError, ValueError) as exc:
            error = PdfError(
                f"Could not render page {index + 1} of PDF {label}: {exc}. The page is "
                "probably damaged; repair the file or pass on_error='skip'."
            )
            if not skip_bad_pages:
                raise error from exc
            logger.warning("Skipping: %s", error)
            continue
        yield rendered


def _render_one(document: Any, index: int, label: str, dpi: float, max_pixels: int) -> RenderedPage:
    page = document[index]
    try:
        width_pt, height_pt = page.get_size()
        scale = render_scale(width_pt, height_pt, dpi, max_pixels)
        reduced = scale < dpi / POINTS_PER_INCH
        used_dpi = scale * POINTS_PER_INCH if reduced else float(dpi)
        if reduced:
            logger.warning(
                "Page %d of %s is %.0fx%.0f pt; rendering at %.1f DPI instead of %g DPI to "
                "stay within max_pixels=%d.",
                index + 1,
                label,
                width_pt,
                height_pt,
                used_dpi,
                dpi,
                max_pixels,
            )
        text = _text_layer(page)
        bitmap = page.render(scale=scale, rev_byteorder=True)
        try:
            image = bitmap.to_pil()  # Pillow copies 3-channel buffers
            if image.mode != "RGB":
                image = image.convert("RGB")
        finally:
            bitmap.close()
    finally:
        page.close()
    return RenderedPage(number=index + 1, image=image, dpi=used_dpi, text=text)


def _text_layer(page: Any) -> str:
    """The page's embedded text (what PDFium extracts), whitespace-normalised per line."""
    textpage = page.get_textpage()
    try:
        raw = textpage.get_text_range()
    finally:
        textpage.close()
    lines = (" ".join(line.split()) for line in raw.replace("\r\n", "\n").split("\n"))
    return "\n".join(line for line in lines if line)
