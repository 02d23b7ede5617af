"""Exact MaxSim (late-interaction) scoring over ragged multi-vectors.

``score(q, d) = sum_i max_j <q_i, d_j>`` for a query ``q`` of shape ``(n_q_tokens, dim)``
and a document ``d`` of shape ``(n_d_tokens, dim)``.

How it is computed: documents are packed into one ``(n_tokens, dim)`` matrix plus an
``offsets`` array (:func:`pack`). For a batch of queries, all query tokens are stacked
into one matrix as well, so a chunk of the corpus is scored with a single float32 BLAS
product ``query_tokens @ doc_tokens.T``. A segment max over document boundaries
(``np.maximum.reduceat``) then gives, per document, the best match of every query token,
and a segment sum over query boundaries gives the scores. Nothing is padded, and the
``(doc_tokens, query_tokens)`` block never exceeds ``chunk_budget_bytes``.

Conventions:

* a document with 0 tokens scores ``0.0`` against every query (an empty max is taken
  as 0, so such documents never outrank a document with a positive match);
* a query with 0 tokens scores ``0.0`` against every document (an empty sum);
* float16 inputs are converted to float32 chunk by chunk; all arithmetic is float32;
* ties in top-k are broken by the lower document index.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from sauerkraut_rag._checks import check_int
from sauerkraut_rag.errors import InvalidInputError, InvalidInputTypeError
from sauerkraut_rag.retrievers._arrays import (
    as_multivector_list,
    check_finite_rows,
    validate_multivectors,
)

__all__ = [
    "DEFAULT_CHUNK_BUDGET",
    "maxsim",
    "maxsim_packed",
    "maxsim_topk",
    "pack",
    "topk_from_scores",
]

logger = logging.getLogger(__name__)

DEFAULT_CHUNK_BUDGET = 8 * 1024 * 1024
"""Default upper bound, in bytes, of one float32 ``(doc_tokens, query_tokens)`` score block."""

_MIN_DOC_CHUNK = 1024
"""Fewest document tokens per block before the query tokens are split into row groups."""

FloatArray = npt.NDArray[np.float32]


def pack(documents: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate ragged documents into ``tokens (N, dim)`` and ``offsets (n_docs + 1,)``.

    Document ``i`` is ``tokens[offsets[i]:offsets[i + 1]]``. The dtype is float16 when
    every document is float16, else float32. Documents may have 0 tokens. An empty list
    gives ``tokens`` of shape ``(0, 0)`` and ``offsets == [0]``.
    """
    arrays, _ = validate_multivectors(documents, what="documents")
    offsets = np.zeros(len(arrays) + 1, dtype=np.int64)
    if not arrays:
        return np.zeros((0, 0), dtype=np.float32), offsets
    np.cumsum([a.shape[0] for a in arrays], out=offsets[1:])
    all_half = all(a.dtype == np.float16 for a in arrays)
    dtype = np.float16 if all_half else np.float32
    return np.concatenate(arrays, axis=0, dtype=dtype), offsets


def _check_packed(tokens: Any, offsets: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validate the output of :func:`pack` (or an index's own packed store)."""
    if not isinstance(tokens, np.ndarray) or not isinstance(offsets, np.ndarray):
        raise InvalidInputTypeError(
            "Expected tokens and offsets to be numpy arrays (see pack()), got "
            f"{type(tokens).__name__} and {type(offsets).__name__}."
        )
    if tokens.ndim != 2 or tokens.dtype not in (np.float32, np.float16):
        raise InvalidInputError(
            f"Expected tokens of shape (n_tokens, dim) and dtype float32/float16, got shape "
            f"{tokens.shape} dtype {tokens.dtype}. Build them with pack(documents)."
        )
    if offsets.ndim != 1 or offsets.size < 1 or not np.issubdtype(offsets.dtype, np.integer):
        raise InvalidInputError(
            f"Expected offsets to be a 1-D integer array of length n_docs + 1, got shape "
            f"{offsets.shape} dtype {offsets.dtype}. Build them with pack(documents)."
        )
    offsets = offsets.astype(np.int64, copy=False)
    if offsets[0] != 0 or offsets[-1] != tokens.shape[0] or np.any(np.diff(offsets) < 0):
        raise InvalidInputError(
            f"Expected offsets to rise from 0 to len(tokens) = {tokens.shape[0]}, got "
            f"first {int(offsets[0])}, last {int(offsets[-1])}. Build them with pack(documents)."
        )
    return tokens, offsets


def _prepare_queries(
    queries: Sequence[np.ndarray], dim: int | None
) -> tuple[FloatArray, list[int]]:
    """Stack queries into one float32 ``(total_tokens, dim)`` matrix plus their token counts."""
    arrays, dim = validate_multivectors(queries, what="queries", dim=dim)
    lengths = [a.shape[0] for a in arrays]
    if not arrays or sum(lengths) == 0:
        return np.zeros((0, dim or 0), dtype=np.float32), lengths
    return np.concatenate(arrays, axis=0, dtype=np.float32), lengths


def _doc_chunks(offsets: np.ndarray, max_tokens: int) -> list[tuple[int, int]]:
    """Split documents ``[0, n_docs)`` into runs holding at most ``max_tokens`` tokens each.

    A document longer than ``max_tokens`` forms a run of its own (split further later).
    """
    n_docs = offsets.size - 1
    chunks: list[tuple[int, int]] = []
    start = 0
    while start < n_docs:
        limit = offsets[start] + max_tokens
        end = int(np.searchsorted(offsets, limit, side="right")) - 1
        end = min(max(end, start + 1), n_docs)
        chunks.append((start, end))
        start = end
    return chunks


def _block_rowmax(
    query_tokens: FloatArray, tokens: np.ndarray, starts: np.ndarray, max_tokens: int
) -> FloatArray:
    """Per-document max of every query token: ``(n_query_tokens, n_segments)``.

    ``tokens`` covers whole documents; ``starts`` are the local starts of its non-empty
    documents. A single document longer than ``max_tokens`` is processed in slices.
    The block is laid out ``(query_tokens, doc_tokens)`` so the segment max runs along
    contiguous memory (``reduceat`` along axis 0 is several times slower).
    """
    if tokens.shape[0] <= max_tokens:
        block = query_tokens @ np.asarray(tokens, dtype=np.float32).T
        return np.maximum.reduceat(block, starts, axis=1)
    # one oversized document: running max over slices of its tokens
    best = np.full((query_tokens.shape[0], 1), -np.inf, dtype=np.float32)
    for lo in range(0, tokens.shape[0], max_tokens):
        block = query_tokens @ np.asarray(tokens[lo : lo + max_tokens], dtype=np.float32).T
        np.maximum(best, block.max(axis=1, keepdims=True), out=best)
    return best


def maxsim_packed(
    queries: Sequence[np.ndarray],
    tokens: np.ndarray,
    offsets: np.ndarray,
    *,
    chunk_budget_bytes: int = DEFAULT_CHUNK_BUDGET,
    check_finite: bool = True,
) -> np.ndarray:
    """MaxSim of every query against packed documents: ``(n_queries, n_docs)`` float32.

    ``tokens (N, dim)`` and ``offsets (n_docs + 1,)`` come from :func:`pack`. Every float32
    score block is at most ``chunk_budget_bytes``. ``check_finite=False`` skips the NaN/inf
    scan of ``tokens`` (for stores that were validated when written); queries are always
    checked.
    """
    tokens, offsets = _check_packed(tokens, offsets)
    budget = _check_budget(chunk_budget_bytes)
    n_docs = offsets.size - 1
    dim = tokens.shape[1] if offsets.size > 1 else None
    query_tokens, lengths = _prepare_queries(queries, dim)
    scores = np.zeros((len(lengths), n_docs), dtype=np.float32)
    if query_tokens.shape[0] == 0 or tokens.shape[0] == 0:
        return scores

    query_of_row = np.repeat(np.arange(len(lengths)), lengths)
    budget_elems = max(1, budget // 4)
    rows_per_group = max(1, min(query_tokens.shape[0], budget_elems // _MIN_DOC_CHUNK))
    max_doc_tokens = max(1, budget_elems // rows_per_group)
    chunks = _doc_chunks(offsets, max_doc_tokens)

    for r0 in range(0, query_tokens.shape[0], rows_per_group):
        rows = query_tokens[r0 : r0 + rows_per_group]
        row_query = query_of_row[r0 : r0 + rows_per_group]
        # segment starts of the queries inside this row group, and which query each is
        q_starts = np.flatnonzero(np.r_[True, row_query[1:] != row_query[:-1]])
        q_ids = row_query[q_starts]
        for d0, d1 in chunks:
            t0, t1 = int(offsets[d0]), int(offsets[d1])
            if t0 == t1:
                continue  # only empty documents: their score stays 0
            chunk = tokens[t0:t1]
            if check_finite:
                check_finite_rows(chunk, what=f"tokens (documents {d0}..{d1 - 1})")
            local = offsets[d0:d1] - t0
            nonempty = np.flatnonzero(offsets[d0 + 1 : d1 + 1] > offsets[d0:d1])
            rowmax = _block_rowmax(rows, chunk, local[nonempty], max_doc_tokens)
            per_query = np.add.reduceat(rowmax, q_starts, axis=0)  # (n_q_in_group, n_nonempty)
            scores[np.ix_(q_ids, d0 + nonempty)] += per_query
    return scores


def _check_budget(chunk_budget_bytes: Any) -> int:
    hint = f" It bounds one float32 block; the default is {DEFAULT_CHUNK_BUDGET}."
    return check_int("chunk_budget_bytes", chunk_budget_bytes, low=4, hint=hint)


def maxsim(
    queries: Sequence[np.ndarray],
    documents: Sequence[np.ndarray],
    *,
    chunk_budget_bytes: int = DEFAULT_CHUNK_BUDGET,
) -> np.ndarray:
    """MaxSim scores of ragged queries against ragged documents: ``(n_queries, n_docs)``.

    Each query is ``(n_q_tokens, dim)``, each document ``(n_d_tokens, dim)``, float32 or
    float16. A document with 0 tokens scores 0. An empty ``documents`` list gives shape
    ``(n_queries, 0)``.

    Hand-checkable example: query tokens pick the best-matching document token each.

    >>> import numpy as np
    >>> q = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=np.float32)
    >>> d = np.array([[1, 0, 0], [0, 2, 0], [0, 0, 3]], dtype=np.float32)
    >>> maxsim([q], [d])  # 1 + 2 + 3
    array([[6.]], dtype=float32)
    >>> maxsim([q], [d[:1], d[1:], np.zeros((0, 3), np.float32)])  # 1+0+0, 0+2+3, empty
    array([[1., 5., 0.]], dtype=float32)
    """
    tokens, offsets = pack(documents)
    if offsets.size == 1:
        n_queries = len(as_multivector_list(queries, what="queries"))
        _prepare_queries(queries, None)  # still validate the queries
        return np.zeros((n_queries, 0), dtype=np.float32)
    return maxsim_packed(
        queries, tokens, offsets, chunk_budget_bytes=chunk_budget_bytes, check_finite=False
    )


def _check_k(k: Any) -> int:
    return check_int("k", k, low=1, hint=" Ask for at least one result.")


def topk_from_scores(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` per row of ``scores (n_queries, n_docs)``.

    Returns ``indices`` (int64) and ``values`` (float32), both ``(n_queries, min(k, n_docs))``,
    sorted by descending score; equal scores keep the lower document index first.
    ``-inf`` entries (e.g. filtered-out documents) sort last; NaN is rejected.
    """
    k = _check_k(k)
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
            indices[row] = _topk_row(scores[row], k)
    return indices, np.take_along_axis(scores, indices, axis=1)


def _topk_row(row: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` largest values, ties to the lower index, sorted descending."""
    threshold = np.partition(row, n := row.size - k)[n]  # the k-th largest value
    above = np.flatnonzero(row > threshold)
    tied = np.flatnonzero(row == threshold)[: k - above.size]
    picked = np.concatenate([above, tied])
    order = np.lexsort((picked, -row[picked]))
    return picked[order]


def maxsim_topk(
    queries: Sequence[np.ndarray],
    documents: Sequence[np.ndarray],
    k: int,
    *,
    chunk_budget_bytes: int = DEFAULT_CHUNK_BUDGET,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` documents per query by exact MaxSim.

    Returns ``indices`` int64 and ``scores`` float32, both ``(n_queries, min(k, n_docs))``,
    sorted by descending score with ties broken by the lower document index.
    """
    k = _check_k(k)
    scores = maxsim(queries, documents, chunk_budget_bytes=chunk_budget_bytes)
    return topk_from_scores(scores, k)
