"""Exact top-``k`` over packed stores, float16 stores through the float16 GEMM.

A float16 store on a CPU with native float16 arithmetic is scored once with the float16
GEMM, which gives every document an approximate score and a certified bound of its
distance to the float32 MaxSim (:mod:`sauerkraut_rag.retrievers._half`). With ``L`` the
``k``-th largest lower bound of a query, every document of the exact top ``k`` (ties
included) has an upper bound of at least ``L``; exactly these candidates are rescored on
the exact path, so ids and scores are those of the exact path. Other stores are scored
exactly at once (their bound is 0).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sauerkraut_rag.errors import InvalidInputError
from sauerkraut_rag.retrievers import _half
from sauerkraut_rag.retrievers._exact import (
    DEFAULT_CHUNK_BUDGET,
    FloatArray,
    check_budget,
    check_packed,
    exact_scores,
    prepare_queries,
)
from sauerkraut_rag.retrievers._topk import check_k, kth_largest, topk_from_scores

_CALL_COST = 50_000
"""Fixed cost of one exact scoring call, in query-row x document-token products."""


@dataclass(frozen=True)
class PackedStore:
    """Packed documents (see :func:`pack`) and, optionally, the L2 norm of every token.

    ``norms`` (float32 ``(n_tokens,)``, from :func:`token_norms`) lets a float16 store skip
    one pass over its vectors per search; keep them with the store.
    """

    tokens: np.ndarray
    offsets: np.ndarray
    norms: np.ndarray | None = None


def topk_stores(
    queries: Sequence[np.ndarray],
    stores: Sequence[PackedStore],
    k: int,
    *,
    mask: np.ndarray | None = None,
    chunk_budget_bytes: int = DEFAULT_CHUNK_BUDGET,
    check_finite: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`maxsim_topk_packed` over several stores whose documents are numbered in turn."""
    k, budget = check_k(k), check_budget(chunk_budget_bytes)
    checked = [(*check_packed(s.tokens, s.offsets), s.norms) for s in stores]
    sizes = [off.size - 1 for _, off, _ in checked]
    dims = {tok.shape[1] for tok, off, _ in checked if off.size > 1}
    if len(dims) > 1:
        raise InvalidInputError(f"Expected stores of one dim, got dims {sorted(dims)}.")
    query_tokens, lengths = prepare_queries(queries, dims.pop() if dims else None)
    keep = _check_mask(mask, sum(sizes))
    approx, spread = [], []
    for tokens, offsets, norms in checked:
        a, r = _bounded_scores(query_tokens, lengths, tokens, offsets, norms, budget, check_finite)
        approx.append(a)
        spread.append(r)
    scores = np.concatenate(approx, axis=1) if approx else np.zeros((len(lengths), 0), np.float32)
    if keep is not None:
        scores[:, ~keep] = -np.inf
    limit = min(k, scores.shape[1] if keep is None else int(keep.sum()))
    if limit == 0:
        return _no_hits(len(lengths))
    if all(r is None for r in spread):
        return topk_from_scores(scores, limit)
    bound = np.concatenate(
        [np.zeros(a.shape) if r is None else r for a, r in zip(approx, spread, strict=True)],
        axis=1,
    )
    lower = kth_largest(scores - bound, limit)  # the k-th exact score is at least this
    candidates = (scores + bound >= lower[:, None]) & np.isfinite(scores)
    rescore = candidates & (bound > 0)  # bound 0: the score is already exact
    final = np.where(candidates, scores, np.float32(-np.inf))
    _rescore(final, rescore, query_tokens, lengths, checked, sizes, budget)
    return topk_from_scores(final, limit)


def _rescore(
    final: np.ndarray,
    rescore: np.ndarray,
    query_tokens: FloatArray,
    lengths: list[int],
    stores: list[tuple[np.ndarray, np.ndarray, Any]],
    sizes: list[int],
    budget: int,
) -> None:
    """Exact scores into ``final`` where ``rescore``: per query, or all queries at once
    against the union of the candidates, whichever multiplies fewer rows by tokens."""
    doc_lengths = np.concatenate([np.diff(offsets) for _, offsets, _ in stores])
    union = np.flatnonzero(rescore.any(axis=0))
    if not union.size:
        return
    per_query = int((rescore.astype(np.int64) @ doc_lengths * np.asarray(lengths)).sum())
    per_query += _CALL_COST * int(rescore.any(axis=1).sum())
    if query_tokens.shape[0] * int(doc_lengths[union].sum()) <= per_query:
        tokens, offsets = _gather(stores, sizes, union)
        exact = exact_scores(query_tokens, lengths, tokens, offsets, budget, check_finite=False)
        final[:, union] = np.where(rescore[:, union], exact, final[:, union])
        return
    first_row = np.r_[0, np.cumsum(lengths)]
    for q in np.flatnonzero(rescore.any(axis=1)).tolist():
        docs = np.flatnonzero(rescore[q])
        tokens, offsets = _gather(stores, sizes, docs)
        rows = query_tokens[first_row[q] : first_row[q + 1]]
        final[q, docs] = exact_scores(rows, [lengths[q]], tokens, offsets, budget, False)[0]


def _no_hits(n_queries: int) -> tuple[np.ndarray, np.ndarray]:
    return np.zeros((n_queries, 0), np.int64), np.zeros((n_queries, 0), np.float32)


def _check_mask(mask: Any, n_docs: int) -> np.ndarray | None:
    if mask is None:
        return None
    if not isinstance(mask, np.ndarray) or mask.dtype != np.bool_ or mask.shape != (n_docs,):
        raise InvalidInputError(
            f"Expected mask to be a bool array of shape ({n_docs},), one flag per document, "
            f"got {getattr(mask, 'dtype', type(mask).__name__)} {getattr(mask, 'shape', '')}."
        )
    return mask


def _bounded_scores(
    query_tokens: FloatArray,
    lengths: list[int],
    tokens: np.ndarray,
    offsets: np.ndarray,
    norms: np.ndarray | None,
    budget: int,
    check_finite: bool,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Scores of one store and their error bound (``None``: the scores are exact)."""
    dim = tokens.shape[1]
    half = tokens.dtype == np.float16
    if half and _half.pays_off(query_tokens.shape[0], tokens.shape[0], dim):
        if norms is None or norms.shape != (tokens.shape[0],):
            norms = _half.token_norms(tokens)
        g_doc = _half.doc_norm_bounds(norms, offsets, dim)
        if _half.in_range(query_tokens, g_doc):
            approx, kappa_q, eta_q = _half.approximate_maxsim(
                query_tokens, lengths, tokens, offsets, float(g_doc.max()), budget_bytes=budget
            )
            return approx, _half.radius(kappa_q, eta_q, g_doc)
    return exact_scores(query_tokens, lengths, tokens, offsets, budget, check_finite), None


def _gather(
    stores: list[tuple[np.ndarray, np.ndarray, Any]], sizes: list[int], docs: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Pack documents ``docs`` (global, ascending) of ``stores``: tokens and offsets."""
    first = np.r_[0, np.cumsum(sizes)]
    which = np.searchsorted(first, docs, side="right") - 1
    parts = []
    for doc, s in zip(docs.tolist(), which.tolist(), strict=True):
        tokens, offsets, _ = stores[s]
        local = doc - first[s]
        parts.append(tokens[offsets[local] : offsets[local + 1]])
    out = np.zeros(len(parts) + 1, dtype=np.int64)
    np.cumsum([p.shape[0] for p in parts], out=out[1:])
    dim = stores[which[0]][0].shape[1] if len(parts) else 0
    dtype = np.result_type(*[p.dtype for p in parts]) if parts else np.float32
    packed = np.concatenate(parts, axis=0).astype(dtype, copy=False) if parts else None
    return (packed if packed is not None else np.zeros((0, dim), np.float32)), out
