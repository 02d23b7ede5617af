"""Compatibility path: ``VoyagerIndex`` now lives in :mod:`sauerkraut_rag.retrievers.voyager`."""

from __future__ import annotations

from sauerkraut_rag.retrievers.voyager.config import IndexConfig
from sauerkraut_rag.retrievers.voyager.index import VoyagerIndex

__all__ = ["IndexConfig", "VoyagerIndex"]
