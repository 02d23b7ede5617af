"""Compatibility path: page ingestion now lives in :mod:`sauerkraut_rag.documents.pages`."""

from __future__ import annotations

from sauerkraut_rag.documents.pages import (
    DEFAULT_MAX_PIXELS,
    IMAGE_SUFFIXES,
    PDF_SUFFIXES,
    iter_pages,
    load_image,
    save_page_image,
)

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "IMAGE_SUFFIXES",
    "PDF_SUFFIXES",
    "iter_pages",
    "load_image",
    "save_page_image",
]
