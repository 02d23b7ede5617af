"""Reference data and scores for the conformance suite: random unit multi-vectors and an
explicit-loop MaxSim in float64 (independent of :mod:`sauerkraut_rag.retrievers.maxsim`)."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

import numpy as np

from sauerkraut_rag.types import Hit

__all__ = ["brute_maxsim", "brute_topk", "check_hits", "random_docs", "unit_rows"]


def unit_rows(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    """``(n, dim)`` float32 rows of unit length."""
    x = rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def random_docs(n: int, dim: int, *, seed: int = 0, lo: int = 1, hi: int = 12) -> list[np.ndarray]:
    """``n`` documents of ``lo..hi`` unit token vectors."""
    rng = np.random.default_rng(seed)
    return [unit_rows(rng, int(rng.integers(lo, hi + 1)), dim) for _ in range(n)]


def brute_maxsim(query: np.ndarray, doc: np.ndarray) -> float:
    """``sum_i max_j <q_i, d_j>`` in float64 with explicit loops."""
    total = 0.0
    for q in query.astype(np.float64):
        total += max(float(q @ d) for d in doc.astype(np.float64))
    return total


def brute_topk(
    query: np.ndarray, docs: Mapping[str, np.ndarray], k: int
) -> list[tuple[str, float]]:
    """Exact top-``k`` ``(id, score)`` of ``query`` over ``docs``."""
    scored = sorted(((i, brute_maxsim(query, d)) for i, d in docs.items()), key=lambda s: -s[1])
    return scored[:k]


def check_hits(
    hits: Sequence[Hit],
    query: np.ndarray,
    docs: Mapping[str, np.ndarray],
    k: int,
    *,
    tolerance: float,
) -> None:
    """``hits`` are the exact top-``k``: same scores as the reference (ties may swap ids),
    each hit scored as its own document, best first."""
    expected = brute_topk(query, docs, k)
    assert len(hits) == len(expected), (len(hits), len(expected))
    got = np.array([h.score for h in hits])
    want = np.array([s for _, s in expected])
    np.testing.assert_allclose(got, want, rtol=tolerance, atol=tolerance)
    assert all(a >= b - tolerance for a, b in itertools.pairwise(got)), "not sorted"
    for hit in hits:
        own = brute_maxsim(query, docs[hit.id])
        assert abs(hit.score - own) <= tolerance * max(1.0, abs(own)), (hit.id, hit.score, own)
