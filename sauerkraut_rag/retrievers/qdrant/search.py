"""Search on a collection: count the matches, then one query per search on the server.

With at most ``exact_threshold`` matching documents every match is scored exactly
(``exact=True``, no candidate stage), as ``VoyagerIndex`` does. Above it, one
``query_points`` call prefetches ``candidates`` documents by the MUVERA vector (HNSW,
filtered on the server) and re-scores them by exact MaxSim over the stored token
vectors. A query that gets fewer than ``min(k, matches)`` hits back (a filtered HNSW
search that fell short) is repeated exactly, so the protocol's count always holds.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sauerkraut_rag.retrievers.qdrant.config import QdrantConfig
from sauerkraut_rag.retrievers.qdrant.engine import Engine, QuerySpec
from sauerkraut_rag.retrievers.qdrant.points import StoredPoint

__all__ = ["query_vectors", "search_points"]


def query_vectors(queries: list[np.ndarray], config: QdrantConfig) -> list[np.ndarray]:
    """The query token vectors as sent: float16 collections round them like Qdrant does.

    Qdrant scores float16 storage against a float16 copy of the query; rounding here
    makes every engine (including local mode, which ignores the storage dtype) agree.
    """
    if config.vector_dtype == "float16":
        return [q.astype(np.float16).astype(np.float32) for q in queries]
    return [np.ascontiguousarray(q, dtype=np.float32) for q in queries]


def search_points(
    engine: Engine,
    config: QdrantConfig,
    muvera: Any,
    queries: list[np.ndarray],
    k: int,
    flt: Any,
) -> list[list[StoredPoint]]:
    """Top-``k`` points per query among those matching ``flt`` (``None``: all)."""
    n_match = engine.count(flt)
    if n_match == 0:
        return [[] for _ in queries]
    k = min(k, n_match)
    tokens = query_vectors(queries, config)
    exact = [QuerySpec(t, None, k, 0, flt, config.ef_search) for t in tokens]
    if n_match <= config.exact_threshold:
        return engine.query(exact)
    want = min(max(config.candidates, k), n_match)
    fdes = muvera.encode_queries(tokens)
    specs = [
        QuerySpec(t, fdes[i], k, want, flt, max(config.ef_search, want))
        for i, t in enumerate(tokens)
    ]
    results = engine.query(specs)
    short = [i for i, hits in enumerate(results) if len(hits) < k]
    if short:
        again = engine.query([exact[i] for i in short])
        for i, hits in zip(short, again, strict=True):
            results[i] = hits
    return results
