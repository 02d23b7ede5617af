"""Maximal marginal relevance (MMR) over multi-vector documents (pure functions)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sauerkraut_rag.retrievers.maxsim import maxsim
from sauerkraut_rag.types import MultiVector


def pairwise_similarity(documents: Sequence[MultiVector]) -> np.ndarray:
    """Symmetric normalised MaxSim between documents: ``(n, n)``, values in ``[-1, 1]``.

    ``S[i, j] = (MaxSim(d_i, d_j) / len(d_i) + MaxSim(d_j, d_i) / len(d_j)) / 2``, each
    document taking the query role in turn; ``S[i, i] == 1`` for unit token vectors.
    """
    raw = maxsim(list(documents), list(documents))
    lengths = np.array([max(doc.shape[0], 1) for doc in documents], dtype=np.float32)
    directed = raw / lengths[:, None]
    return (directed + directed.T) / 2


def mmr_select(
    relevance: np.ndarray, similarity: np.ndarray, k: int, lambda_mult: float
) -> list[int]:
    """Greedy MMR: indices of up to ``k`` candidates, in selection order.

    Each step picks ``argmax lambda * relevance[i] - (1 - lambda) * max_{j chosen}
    similarity[i, j]`` (ties: the lower index).  ``relevance`` is ``(n,)``,
    ``similarity`` ``(n, n)``.
    """
    n = relevance.shape[0]
    chosen: list[int] = []
    redundancy = np.full(n, -np.inf, dtype=np.float64)
    available = np.ones(n, dtype=bool)
    while available.any() and len(chosen) < k:
        penalty = np.where(np.isfinite(redundancy), redundancy, 0.0)
        score = lambda_mult * relevance - (1.0 - lambda_mult) * penalty
        score = np.where(available, score, -np.inf)
        best = int(np.argmax(score))
        chosen.append(best)
        available[best] = False
        redundancy = np.maximum(redundancy, similarity[:, best])
    return chosen
