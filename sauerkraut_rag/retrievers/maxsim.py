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
* float16 inputs are converted to float32 chunk by chunk (vectorised, in cache-sized
  blocks); all arithmetic is float32;
* ties in top-k are broken by the lower document index.

Top-``k`` over a float16 store (:func:`maxsim_topk_packed`) takes a faster route where the
CPU has native float16 arithmetic (AVX512-FP16, AMX-FP16): one float16 GEMM over the
stored vectors as they are gives approximate scores with a certified error bound
(:mod:`sauerkraut_rag.retrievers._half`), and every document that could still be in the
top ``k`` is rescored exactly. Returned ids and scores equal the exact path's (scores to
float32 rounding, about 1e-6). It is used where it pays: up to 128 query token rows per
call (one query: about 1.6x the float32 store's speed; a batch of many queries is as fast
through the float32 GEMM) and from 2**19 rows x stored tokens up. Elsewhere, and on CPUs
without native float16, it runs the exact path.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sauerkraut_rag.retrievers._arrays import as_multivector_list, validate_multivectors
from sauerkraut_rag.retrievers._bounded import PackedStore, topk_stores
from sauerkraut_rag.retrievers._exact import (
    DEFAULT_CHUNK_BUDGET,
    check_budget,
    check_packed,
    exact_scores,
    prepare_queries,
)
from sauerkraut_rag.retrievers._half import token_norms
from sauerkraut_rag.retrievers._topk import check_k, topk_from_scores

__all__ = [
    "DEFAULT_CHUNK_BUDGET",
    "PackedStore",
    "maxsim",
    "maxsim_packed",
    "maxsim_topk",
    "maxsim_topk_packed",
    "maxsim_topk_stores",
    "pack",
    "token_norms",
    "topk_from_scores",
]


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
    tokens, offsets = check_packed(tokens, offsets)
    budget = check_budget(chunk_budget_bytes)
    dim = tokens.shape[1] if offsets.size > 1 else None
    query_tokens, lengths = prepare_queries(queries, dim)
    return exact_scores(query_tokens, lengths, tokens, offsets, budget, check_finite)


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
        prepare_queries(queries, None)  # still validate the queries
        return np.zeros((n_queries, 0), dtype=np.float32)
    return maxsim_packed(
        queries, tokens, offsets, chunk_budget_bytes=chunk_budget_bytes, check_finite=False
    )


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
    k = check_k(k)
    tokens, offsets = pack(documents)
    if offsets.size == 1:
        return topk_from_scores(maxsim(queries, documents), k)
    return maxsim_topk_packed(
        queries, tokens, offsets, k, chunk_budget_bytes=chunk_budget_bytes, check_finite=False
    )


def maxsim_topk_packed(
    queries: Sequence[np.ndarray],
    tokens: np.ndarray,
    offsets: np.ndarray,
    k: int,
    *,
    mask: np.ndarray | None = None,
    norms: np.ndarray | None = None,
    chunk_budget_bytes: int = DEFAULT_CHUNK_BUDGET,
    check_finite: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-``k`` documents per query over packed documents (:func:`pack`).

    Returns ``indices`` int64 and ``scores`` float32, ``(n_queries, min(k, n_docs))``,
    by descending score, ties to the lower document index; equal to
    ``topk_from_scores(maxsim_packed(...), k)``. ``mask`` (bool, ``(n_docs,)``) keeps only
    the documents where it is true (then at most ``mask.sum()`` results). Float16 stores
    use the float16 GEMM where the CPU supports it (see the module docstring); ``norms``
    are the stored tokens' norms (:func:`token_norms`), computed here when omitted.
    """
    store = PackedStore(tokens, offsets, norms)
    return topk_stores(
        queries,
        [store],
        k,
        mask=mask,
        chunk_budget_bytes=chunk_budget_bytes,
        check_finite=check_finite,
    )


def maxsim_topk_stores(
    queries: Sequence[np.ndarray],
    stores: Sequence[PackedStore],
    k: int,
    *,
    mask: np.ndarray | None = None,
    chunk_budget_bytes: int = DEFAULT_CHUNK_BUDGET,
    check_finite: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`maxsim_topk_packed` over several :class:`PackedStore` s, documents numbered
    across them in turn (e.g. the segments of an index); ``mask`` covers all of them."""
    return topk_stores(
        queries,
        stores,
        k,
        mask=mask,
        chunk_budget_bytes=chunk_budget_bytes,
        check_finite=check_finite,
    )
