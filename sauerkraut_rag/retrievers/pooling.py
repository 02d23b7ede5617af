"""Index-time token pooling: merge similar token vectors to shrink stored multi-vectors.

Tokens are clustered with Ward's hierarchical clustering on their Euclidean distances
(for unit vectors ``|a - b|**2 = 2 - 2 cos(a, b)``, so this is cosine clustering), the
tree is cut into ``max(1, n_tokens // pool_factor)`` clusters, and each cluster becomes
the L2-normalised mean of its members. Pooled rows keep the order of each cluster's
first token. Leading ``protected_tokens`` (e.g. special marker tokens) are copied as-is.

Pooling documents by 2-3x typically costs little retrieval quality, because neighbouring
image patches and repeated words produce near-duplicate vectors; queries are never pooled.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage

from sauerkraut_rag._checks import check_int
from sauerkraut_rag.retrievers._arrays import (
    as_multivector,
    as_multivector_list,
    check_finite_rows,
)

__all__ = ["pool_many", "pool_tokens"]


def pool_tokens(vectors: np.ndarray, pool_factor: int, *, protected_tokens: int = 0) -> np.ndarray:
    """Pool ``vectors (n_tokens, dim)`` to about ``n_tokens / pool_factor`` rows.

    Returns ``(n_protected + n_clusters, dim)`` in the input dtype (float32 or float16),
    with every pooled row L2-normalised. ``pool_factor == 1`` returns an unchanged copy.
    """
    pool_factor = check_int("pool_factor", pool_factor, low=1, hint=" 1 keeps every token.")
    protected_tokens = check_int("protected_tokens", protected_tokens, low=0)
    array = as_multivector(vectors, what="vectors")
    check_finite_rows(array, what="vectors")
    head, rest = array[:protected_tokens], array[protected_tokens:]
    n_clusters = max(1, rest.shape[0] // pool_factor)
    if pool_factor == 1 or rest.shape[0] <= 1 or n_clusters >= rest.shape[0]:
        return array.copy()

    data = rest.astype(np.float64)
    labels = fcluster(linkage(data, method="ward"), t=n_clusters, criterion="maxclust")
    # order clusters by their first token, so pooled rows follow the input order
    _, first = np.unique(labels, return_index=True)
    order = np.argsort(first, kind="stable")
    remap = np.empty(labels.max() + 1, dtype=np.int64)
    remap[np.unique(labels)[order]] = np.arange(order.size)
    cluster = remap[labels]
    sums = np.zeros((order.size, data.shape[1]), dtype=np.float64)
    np.add.at(sums, cluster, data)
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    pooled = np.divide(sums, norms, out=np.zeros_like(sums), where=norms > 0)
    return np.concatenate([head, pooled.astype(array.dtype)], axis=0)


def pool_many(
    multivectors: Sequence[np.ndarray], pool_factor: int, *, protected_tokens: int = 0
) -> list[np.ndarray]:
    """Apply :func:`pool_tokens` to each ``(n_tokens, dim)`` array of a list."""
    items = as_multivector_list(multivectors, what="multivectors")
    return [pool_tokens(item, pool_factor, protected_tokens=protected_tokens) for item in items]
