"""The index's exact scan and its candidate rerank go through the float16-GEMM top-k on a
float16 store, and still return the brute-force top-k."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sauerkraut_rag.retrievers import _half
from sauerkraut_rag.retrievers.voyager.index import VoyagerIndex
from tests.retrievers.helpers import check_search, clustered_docs

pytestmark = pytest.mark.skipif(
    not _half._probe(32), reason="torch's float16 GEMM here does not accumulate in float32"
)


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    seen: list[int] = []
    original = _half.approximate_maxsim

    def spy(*args, **kwargs):
        seen.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(_half, "approximate_maxsim", spy)
    monkeypatch.setattr(_half, "MIN_WORK", 0)  # test-sized inputs take the fast path too
    monkeypatch.setattr(_half, "_native_half", lambda: True)  # and CPUs without native float16
    return seen


@pytest.mark.parametrize("exact_threshold", [10_000, 50])
def test_float16_store_uses_the_fast_path(
    tmp_path: Path, calls: list[int], exact_threshold: int
) -> None:
    docs, queries = clustered_docs(400, 32, seed=3)
    ids = [f"d{i}" for i in range(len(docs))]
    with VoyagerIndex.create(tmp_path / "idx", dim=32, exact_threshold=exact_threshold) as index:
        index.add(ids[:250], docs[:250])
        index.add(ids[250:], docs[250:])  # a second segment
        index.delete(["d3", "d260"])
        live = {i: d for i, d in zip(ids, docs, strict=True) if i not in ("d3", "d260")}
        check_search(index, queries, live, 10)
        assert calls  # exact scan (10_000) or rerank of HNSW candidates (50)
        calls.clear()
        hits = index.search(queries[:2], 5, filter=lambda meta: True)
        assert [len(h) for h in hits] == [5, 5] and calls


def test_float32_store_scores_exactly_without_the_fast_path(
    tmp_path: Path, calls: list[int]
) -> None:
    docs, queries = clustered_docs(120, 32, seed=4)
    ids = [f"d{i}" for i in range(len(docs))]
    with VoyagerIndex.create(tmp_path / "idx", dim=32, vector_dtype="float32") as index:
        index.add(ids, docs)
        hits = index.search(queries, 3)
    assert not calls
    assert all(len(h) == 3 for h in hits)
    assert np.isfinite([h.score for row in hits for h in row]).all()
