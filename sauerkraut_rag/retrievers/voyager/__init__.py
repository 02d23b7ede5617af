"""voyager: the single-machine backend. ``VoyagerIndex`` keeps one folder: SQLite for ids,
metadata and payloads, memory-mapped token-vector segments, and a Voyager HNSW graph of
candidates. Imports the retrievers' shared modules (scorer, MUVERA, pooling, protocol)."""

from __future__ import annotations

from sauerkraut_rag.retrievers.voyager.config import IndexConfig
from sauerkraut_rag.retrievers.voyager.index import VoyagerIndex

__all__ = ["IndexConfig", "VoyagerIndex"]
