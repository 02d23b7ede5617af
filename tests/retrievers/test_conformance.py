"""The protocol's conformance suite on every backend: VoyagerIndex, QdrantIndex in the
client's local mode (in memory and on disk) and on Qdrant Edge (the Rust engine in this
process). A multi-node Qdrant cluster is not tested here (no server in CI)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sauerkraut_rag.retrievers.conformance import MultiVectorIndexTests
from sauerkraut_rag.retrievers.voyager.index import VoyagerIndex

pytest.importorskip("qdrant_client")


class TestVoyagerIndex(MultiVectorIndexTests):
    callable_filters = True

    def make_index(self, tmp_path: Path, dim: int) -> Any:
        return VoyagerIndex.create(tmp_path / "idx", dim=dim)


class TestQdrantMemory(MultiVectorIndexTests):
    def make_index(self, tmp_path: Path, dim: int) -> Any:
        from sauerkraut_rag.retrievers.qdrant import QdrantIndex

        return QdrantIndex("docs", dim=dim, location=":memory:")


class TestQdrantLocalPath(MultiVectorIndexTests):
    def make_index(self, tmp_path: Path, dim: int) -> Any:
        from sauerkraut_rag.retrievers.qdrant import QdrantIndex

        return QdrantIndex("docs", dim=dim, path=tmp_path / "qdrant")


class TestQdrantEdge(MultiVectorIndexTests):
    def make_index(self, tmp_path: Path, dim: int) -> Any:
        pytest.importorskip("qdrant_edge")
        from sauerkraut_rag.retrievers.qdrant import QdrantIndex

        return QdrantIndex("docs", dim=dim, path=tmp_path / "edge", engine="edge")
