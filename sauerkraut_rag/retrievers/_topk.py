"""Top-``k`` selection over score matrices, ties to the lower document index."""

from __future__ import annotations

from typing import Any

import numpy as np

from sauerkraut_rag._checks import check_int
from sauerkraut_rag.errors import InvalidInputError


def check_k(k: Any) -> int:
    return check_int("k", k, low=1, hint=" Ask for at least one result.")


def topk_from_scores(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` per row of ``scores (n_queries, n_docs)``.

    Returns ``indices`` (int64) and ``values`` (float32), both ``(n_queries, min(k, n_docs))``,
    sorted by descending score; equal scores keep the lower document index first.
    ``-inf`` entries (e.g. filtered-out documents) sort last; NaN is rejected.
    """
    k = check_k(k)
    if not isinstance(scores, np.ndarray) or scores.ndim != 2:
        raise InvalidInputError(
            "Expected scores to be a 2-D array (n_queries, n_docs), got "
            f"{getattr(scores, 'shape', type(scores).__name__)}."
        )
    scores = np.asarray(scores, dtype=np.float32)
    if np.isnan(scores).any():
        raise InvalidInputError("Expected scores without NaN; check the vectors that were scored.")
    n_queries, n_docs = scores.shape
    k = min(k, n_docs)
    indices = np.empty((n_queries, k), dtype=np.int64)
    if k == n_docs:
        indices[:] = np.argsort(-scores, axis=1, kind="stable")
    else:
        for row in range(n_queries):
            indices[row] = topk_row(scores[row], k)
    return indices, np.take_along_axis(scores, indices, axis=1)


def topk_row(row: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` largest values, ties to the lower index, sorted descending."""
    threshold = np.partition(row, n := row.size - k)[n]  # the k-th largest value
    above = np.flatnonzero(row > threshold)
    tied = np.flatnonzero(row == threshold)[: k - above.size]
    picked = np.concatenate([above, tied])
    order = np.lexsort((picked, -row[picked]))
    return picked[order]


def kth_largest(values: np.ndarray, k: int) -> np.ndarray:
    """The ``k``-th largest value of every row of ``values (n_rows, n)`` (``k <= n``)."""
    n = values.shape[1]
    return np.partition(values, n - k, axis=1)[:, n - k]
