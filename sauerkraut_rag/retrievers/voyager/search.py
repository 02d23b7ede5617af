"""Search over one :class:`Snapshot`: exact full scan, or candidates + exact rerank.

Every result is scored exactly (MaxSim over the stored full-precision vectors); the
candidate sources only choose which documents get scored: the HNSW graph (FDE or token
vectors) and, for ``"fde"``, the token cells (``cells.py``); their candidates are
united. Results are ``(position, score)`` pairs.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import voyager

from sauerkraut_rag.retrievers._half import pays_off
from sauerkraut_rag.retrievers.maxsim import PackedStore, maxsim_topk_packed, maxsim_topk_stores
from sauerkraut_rag.retrievers.voyager.cells import TokenCells
from sauerkraut_rag.retrievers.voyager.cells_search import cell_candidates
from sauerkraut_rag.retrievers.voyager.cells_upkeep import covered
from sauerkraut_rag.retrievers.voyager.config import IndexConfig
from sauerkraut_rag.retrievers.voyager.hnsw import fde_for_hnsw
from sauerkraut_rag.retrievers.voyager.locks import RWLock
from sauerkraut_rag.retrievers.voyager.state import Snapshot

Ranked = list[tuple[int, float]]

_WIDEN = 4
"""Largest growth factor of the HNSW request when too few candidates pass the filter."""
_MARGIN_SIGMAS = 1.0
"""Margin of a filtered HNSW request, in binomial standard deviations of the matches."""
_ENOUGH = 0.9
"""A filtered HNSW request that found this share of the wanted candidates is not
repeated (repeating costs a second, larger HNSW query for a few more candidates)."""
_GATHER_FRACTION = 0.5
"""Exact search over a subset copies its vectors when it is below this share of docs."""
_NEIGHBOUR_TOKENS = 128
"""Cost of one requested ``fde`` HNSW neighbour, in stored tokens scored exactly (measured
at 20,000 documents: ~0.1 ms per neighbour at 128-1,400 neighbours, ~0.75 us per token
scored, gathered or scanned)."""
_PREFER_EXACT = 1.25
"""At or below ``exact_threshold`` matching documents a filtered search stays exact unless
that costs more than this many times the approximate path."""
EXACT_CACHE_BYTES = 128 << 20
"""Full scans keep float32 copies of the segments while they fit in this many bytes."""


def search_snapshot(
    snap: Snapshot,
    config: IndexConfig,
    queries: list[np.ndarray],
    k: int,
    mask: np.ndarray | None,
    muvera: Any,
    lock: RWLock,
) -> list[Ranked]:
    """Top-``k`` ``(position, score)`` per query over the documents in ``mask`` (or live)."""
    mask = snap.live if mask is None else mask
    n_match = int(mask.sum())
    if n_match == 0:
        return [[] for _ in queries]
    k = min(k, n_match)
    fde = config.strategy == "fde"
    graph = snap.hnsw is not None and snap.hnsw_complete
    cells = _usable_cells(snap, config)
    approximate = (graph or cells is not None) and n_match > config.exact_threshold
    if graph and fde and n_match < snap.n_live:
        approximate = _filtered_path_is_approximate(snap, config, mask, n_match, k, approximate)
    if not approximate:
        return exact_topk(snap, queries, k, mask)
    head, tail = _split_tail(snap, mask, graph, cells)
    if tail.size and (2 * tail.size >= n_match or int(head.sum()) < k):
        return exact_topk(snap, queries, k, mask)  # mostly not in the graph yet
    pools: list[np.ndarray | None] = [None] * len(queries)
    if graph and fde and config.candidates > 0:
        pools = _fde_candidates(snap, config, queries, k, head, muvera, lock)
    elif graph and not fde:
        pools = _token_candidates(snap, config, queries, k, head, lock)
    if cells is not None:  # the second source (see cells.py); both are re-scored exactly
        want = max(config.cell_candidates, k)
        probes = config.cell_probes
        found = [cell_candidates(snap, cells, q, head, probes, want) for q in queries]
        pools = [f if p is None else np.union1d(p, f) for p, f in zip(pools, found, strict=True)]
    out: list[Ranked] = []
    for query, pool in zip(queries, pools, strict=True):
        if pool is None or len(pool) < k:  # the sources could not supply enough: exact
            out.extend(exact_topk(snap, [query], k, mask))
        else:
            out.append(rerank(snap, query, np.union1d(pool, tail) if tail.size else pool, k))
    return out


def _usable_cells(snap: Snapshot, config: IndexConfig) -> TokenCells | None:
    """The token cells a search of ``snap`` uses (``None``: off, untrained or failed)."""
    holder = snap.cells
    if config.strategy != "fde" or config.cell_candidates <= 0 or holder is None:
        return None
    return holder.cells  # read once: the background indexer may swap in newer cells


def _split_tail(
    snap: Snapshot, mask: np.ndarray, graph: bool, cells: TokenCells | None
) -> tuple[np.ndarray, np.ndarray]:
    """``(head mask, tail positions)``: matching documents already in the HNSW graph (and
    the token cells), and those written since that the background indexer has not
    inserted yet (scored exactly next to the candidates, see :mod:`.indexer`)."""
    start = snap.tail_start() if graph else snap.n_docs
    if cells is not None:
        start = min(start, covered(snap, cells))
    if start >= snap.n_docs:
        return mask, np.zeros(0, dtype=np.int64)
    tail = np.flatnonzero(mask[start:]) + start
    head = mask.copy()
    head[start:] = False
    return head, tail


def _filtered_path_is_approximate(
    snap: Snapshot, config: IndexConfig, mask: np.ndarray, n_match: int, k: int, default: bool
) -> bool:
    """For a filtered ``fde`` search, the cheaper path by estimated cost (in tokens scored).

    ``exact_threshold`` counts documents, which fits an unfiltered index; a filter changes
    both sides: the exact path scores only the matching documents, while the HNSW path
    must request about ``candidates / share`` neighbours to find ``candidates`` matching
    ones. Above the threshold the exact path is taken when it is cheaper (it is exact
    too); at or below it, exactness is kept unless it costs over ``_PREFER_EXACT`` times
    the approximate path.
    """
    lengths = snap.lengths[mask]
    exact = float(lengths.sum())
    if n_match >= _GATHER_FRACTION * snap.n_docs:  # full scan with a mask
        exact = float(snap.lengths[snap.live].sum())
    want = min(max(config.candidates, k), n_match)
    kk = _request_size(want, n_match, snap.n_live, _live_labels(snap, "fde"))
    approximate = kk * _NEIGHBOUR_TOKENS + want * float(lengths.mean())
    return exact > approximate if default else exact > _PREFER_EXACT * approximate


def exact_topk(snap: Snapshot, queries: list[np.ndarray], k: int, mask: np.ndarray) -> list[Ranked]:
    """Exact MaxSim of every query against every document in ``mask``."""
    selected = np.flatnonzero(mask)
    if selected.size < _GATHER_FRACTION * snap.n_docs:
        tokens, offsets = snap.gather(selected)
        norms = snap.gather_norms(selected) if tokens.dtype == np.float16 else None
        idx, vals = maxsim_topk_packed(queries, tokens, offsets, k, norms=norms, check_finite=False)
        return _ranked(selected[idx], vals)
    stores = []
    cache = _use_float32_cache(snap, queries)
    for seg, lo, hi in snap.segment_bounds():
        offsets = np.append(snap.starts[lo:hi], seg.stop) - seg.start
        tokens = seg.as_float32() if cache else seg.array
        norms = seg.token_norms() if tokens.dtype == np.float16 else None
        stores.append(PackedStore(tokens, offsets, norms))
    idx, vals = maxsim_topk_stores(queries, stores, k, mask=mask, check_finite=False)
    return _ranked(idx, vals)


def _use_float32_cache(snap: Snapshot, queries: list[np.ndarray]) -> bool:
    """Small float16 indexes scan float32 copies, unless the float16 GEMM is faster here."""
    dim, rows = queries[0].shape[1], sum(len(q) for q in queries)
    half = bool(snap.segments) and snap.segments[0].array.dtype == np.float16
    if half and pays_off(rows, snap.next_token, dim):
        return False  # the float16 GEMM beats a float32 copy (and needs no memory)
    return snap.next_token * dim * 4 <= EXACT_CACHE_BYTES


def _ranked(positions: np.ndarray, scores: np.ndarray) -> list[Ranked]:
    """Rows of ``(n_queries, k)`` positions and scores as lists of pairs."""
    return [
        list(zip(p.tolist(), s.tolist(), strict=True))
        for p, s in zip(positions, scores, strict=True)
    ]


def rerank(snap: Snapshot, query: np.ndarray, positions: np.ndarray, k: int) -> Ranked:
    """Exact top-``k`` of one query among the documents at ``positions``.

    Positions are scored in ascending order, so equal scores go to the lower position,
    as in the exact path, whatever order the candidate source produced.
    """
    positions = np.sort(positions)
    tokens, offsets = snap.gather(positions)
    norms = snap.gather_norms(positions) if tokens.dtype == np.float16 else None
    idx, vals = maxsim_topk_packed([query], tokens, offsets, k, norms=norms, check_finite=False)
    return _ranked(positions[idx], vals)[0]


def _live_labels(snap: Snapshot, strategy: str) -> int:
    """Number of HNSW labels of live documents in ``snap`` that are in the graph."""
    in_graph = snap.tail_start()
    live = snap.live[:in_graph]
    return int(live.sum()) if strategy == "fde" else int(snap.lengths[:in_graph][live].sum())


def _query_hnsw(
    hnsw: voyager.Index, vectors: np.ndarray, kk: int, ef: int, lock: RWLock
) -> tuple[np.ndarray, np.ndarray] | None:
    """``(labels, similarities)`` of shape ``(n, kk)``, or ``None`` if HNSW cannot recall."""
    try:
        with lock.read():
            labels, distances = hnsw.query(vectors, k=kk, query_ef=max(ef, kk))
    except voyager.RecallError:
        return None
    return labels.reshape(len(vectors), kk).astype(np.int64), 1.0 - distances.reshape(
        len(vectors), kk
    )


def _request_size(base: int, n_match: int, n_live: int, available: int) -> int:
    """Neighbours to request so that about ``base`` of them pass a filter matching
    ``n_match`` of ``n_live`` documents, plus a margin of ``_MARGIN_SIGMAS`` binomial
    standard deviations (without it, half of all filtered searches fell short and
    repeated the HNSW query at 4x the size)."""
    share = min(1.0, n_match / max(n_live, 1))
    need = base + _MARGIN_SIGMAS * math.sqrt(base * (1.0 - share))
    return min(available, max(1, math.ceil(need / share)))


def _widened(kk: int, want: int, got: int, available: int) -> int:
    """A larger request after ``got < want`` matches: in proportion, at most ``_WIDEN``x."""
    grown = math.ceil(kk * want / max(got, 1) * 1.2)
    return min(available, max(kk + 1, min(grown, kk * _WIDEN)))


def _fde_candidates(
    snap: Snapshot,
    config: IndexConfig,
    queries: list[np.ndarray],
    k: int,
    mask: np.ndarray,
    muvera: Any,
    lock: RWLock,
) -> list[np.ndarray | None]:
    """Per query, positions of the best documents by FDE similarity (``None``: give up)."""
    want = min(max(config.candidates, k), int(mask.sum()))
    available = _live_labels(snap, "fde")
    kk = _request_size(want, int(mask.sum()), snap.n_live, available)
    enough = min(want, max(k, math.ceil(_ENOUGH * want)))
    vectors = fde_for_hnsw(config, muvera.encode_queries(queries))
    while True:
        found = _query_hnsw(snap.hnsw, vectors, kk, config.ef_search, lock)
        if found is None:
            return [None] * len(queries)
        pools = []
        for labels in found[0]:
            pos = snap.positions_of_rows(labels)
            pos = pos[pos >= 0]
            pools.append(pos[mask[pos]][:want])
        if all(len(p) >= enough for p in pools) or kk >= available:
            return pools
        kk = _widened(kk, want, min(len(p) for p in pools), available)
        if kk > snap.n_live // 2:  # scanning this much of HNSW costs more than exact
            return [p if len(p) >= enough else None for p in pools]


def _token_candidates(
    snap: Snapshot,
    config: IndexConfig,
    queries: list[np.ndarray],
    k: int,
    mask: np.ndarray,
    lock: RWLock,
) -> list[np.ndarray | None]:
    """Per query, the documents with the best approximate MaxSim from token neighbours.

    Each query token's HNSW neighbours give, per document, that token's best match; a
    document missing from a token's list is credited with the token's weakest returned
    similarity (an upper bound). Up to ``candidates`` best documents go to exact rerank;
    the request widens only while fewer than ``k`` documents pass the filter.
    """
    n_match = int(mask.sum())
    want = min(max(config.candidates, k), n_match)
    available = _live_labels(snap, "tokens")
    kk = _request_size(config.token_k, n_match, snap.n_live, available)
    stacked = np.concatenate(queries, axis=0)
    bounds = np.r_[0, np.cumsum([len(q) for q in queries])]
    pools: list[np.ndarray | None] = [None] * len(queries)
    todo = list(range(len(queries)))
    while todo:
        rows = np.concatenate([np.arange(bounds[i], bounds[i + 1]) for i in todo])
        found = _query_hnsw(snap.hnsw, stacked[rows], kk, config.ef_search, lock)
        if found is None:
            return pools
        labels, sims = found
        offset, retry = 0, []
        for i in todo:
            n_tok = int(bounds[i + 1] - bounds[i])
            pool = _approximate_pool(
                snap, labels[offset : offset + n_tok], sims[offset : offset + n_tok], mask, want
            )
            offset += n_tok
            if len(pool) >= k or kk >= available:
                pools[i] = pool
            else:
                retry.append(i)
        todo = retry
        kk = min(available, kk * _WIDEN)
        if todo and kk * len(todo) > available // 2:  # cheaper to score exactly
            break
    return pools


def _approximate_pool(
    snap: Snapshot, labels: np.ndarray, sims: np.ndarray, mask: np.ndarray, want: int
) -> np.ndarray:
    """Top ``want`` document positions by imputed approximate MaxSim for one query."""
    pos = snap.positions_of_tokens(labels)  # (n_tok, kk)
    valid = pos >= 0
    valid[valid] = mask[pos[valid]]
    if not valid.any():
        return np.zeros(0, dtype=np.int64)
    token_idx = np.nonzero(valid)[0]
    docs, inverse = np.unique(pos[valid], return_inverse=True)
    best = np.full((labels.shape[0], docs.size), -np.inf, dtype=np.float32)
    np.maximum.at(best, (token_idx, inverse), sims[valid])
    floor = sims.min(axis=1, keepdims=True).astype(np.float32)  # weakest returned match
    approx = np.where(np.isfinite(best), best, floor).sum(axis=0)
    order = np.argsort(-approx, kind="stable")[:want]
    return docs[order]
