"""Shared test helpers: random multi-vectors, a brute-force MaxSim reference, a fake encoder."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from sauerkraut_rag.types import Hit


def unit_rows(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    """``(n, dim)`` float32 rows of unit length."""
    x = rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def random_docs(
    n: int, dim: int = 16, *, seed: int = 0, lo: int = 1, hi: int = 12
) -> list[np.ndarray]:
    """``n`` documents of ``lo..hi`` unit token vectors."""
    rng = np.random.default_rng(seed)
    return [unit_rows(rng, int(rng.integers(lo, hi + 1)), dim) for _ in range(n)]


def clustered_docs(
    n: int, dim: int = 32, *, seed: int = 0, n_topics: int = 12
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Documents and 10 queries drawn around shared topic centres (meaningful neighbours)."""
    rng = np.random.default_rng(seed)
    centres = unit_rows(rng, n_topics * 6, dim)

    def sample(topic: int, n_tok: int, noise: float) -> np.ndarray:
        base = centres[topic * 6 + rng.integers(0, 6, size=n_tok)]
        x = base + noise * rng.standard_normal((n_tok, dim)).astype(np.float32) / np.sqrt(dim)
        return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)

    docs = [sample(int(rng.integers(n_topics)), int(rng.integers(4, 16)), 0.8) for _ in range(n)]
    queries = [sample(int(rng.integers(n_topics)), 6, 1.0) for _ in range(10)]
    return docs, queries


def brute_maxsim(query: np.ndarray, doc: np.ndarray) -> float:
    """Reference MaxSim in float64 with explicit loops."""
    total = 0.0
    for q in query.astype(np.float64):
        total += max(float(q @ d) for d in doc.astype(np.float64))
    return total


def brute_topk(
    query: np.ndarray, docs: dict[str, np.ndarray], k: int, *, as_float16: bool = True
) -> list[tuple[str, float]]:
    """Exact top-k ``(id, score)`` over ``docs`` (optionally rounded like the store)."""
    scored = [
        (doc_id, brute_maxsim(query, d.astype(np.float16) if as_float16 else d))
        for doc_id, d in docs.items()
    ]
    scored.sort(key=lambda item: -item[1])
    return scored[:k]


def assert_matches_brute_force(
    hits: Sequence[Hit], query: np.ndarray, docs: dict[str, np.ndarray], k: int
) -> None:
    """Hits are the exact top-k: same scores as the reference, each hit scored correctly.

    Comparing scores (not only ids) stays correct when two documents tie.
    """
    expected = brute_topk(query, docs, k)
    assert len(hits) == len(expected)
    got_scores = np.array([h.score for h in hits])
    want_scores = np.array([s for _, s in expected])
    np.testing.assert_allclose(got_scores, want_scores, rtol=1e-4, atol=1e-4)
    for hit in hits:
        own = brute_maxsim(query, docs[hit.id].astype(np.float16))
        assert abs(hit.score - own) < 1e-3, (hit.id, hit.score, own)


def check_search(
    index: Any, queries: list[np.ndarray], docs: dict[str, np.ndarray], k: int
) -> None:
    """``index.search(queries, k)`` equals the brute-force top-k for every query."""
    for query, hits in zip(queries, index.search(queries, k), strict=True):
        assert_matches_brute_force(hits, query, docs, k)


class FakeEncoder:
    """A deterministic stand-in for a text encoder: one unit vector per lower-cased word.

    Word vectors come from a SHA-256 seeded generator, so equal words match exactly
    and MaxSim counts shared words. Empty texts give 0 tokens.
    """

    modality = "text"

    def __init__(self, dim: int = 16, name: str = "fake-words") -> None:
        self.dim = dim
        self.name = name
        self.calls: list[tuple[str, int]] = []

    def _word(self, word: str) -> np.ndarray:
        seed = int.from_bytes(hashlib.sha256(word.encode()).digest()[:8], "little")
        vec = np.random.default_rng(seed).standard_normal(self.dim).astype(np.float32)
        return vec / np.linalg.norm(vec)

    def _encode(self, text: str) -> np.ndarray:
        words = text.lower().split()
        if not words:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self._word(w) for w in words])

    def encode_queries(
        self, texts: Sequence[str], *, batch_size: int = 32, show_progress: Any = None
    ) -> list[np.ndarray]:
        self.calls.append(("queries", len(texts)))
        return [self._encode(t) for t in texts]

    def encode_documents(
        self, items: Sequence[Any], *, batch_size: int = 8, show_progress: Any = None
    ) -> list[np.ndarray]:
        self.calls.append(("documents", len(items)))
        return [self._encode(str(t)) for t in items]
