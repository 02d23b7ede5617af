"""Candidates from the token cells of a snapshot (see ``cells.py`` for the design).

Each query token is compared exactly with the stored tokens of its probed cells
(``TokenCells.probe``). Per
document and query token the best such similarity estimates the MaxSim term; a document
without a token in the probed cells gets the weakest similarity found for that query
token (tokens outside the probed cells are less similar, as their cells are). The
estimates are summed per document and the best ``want`` documents returned.
"""

from __future__ import annotations

import numpy as np

from sauerkraut_rag.retrievers import _half
from sauerkraut_rag.retrievers.voyager.cells import CENTROID_WIDEN, GATHER_SHARE, TokenCells
from sauerkraut_rag.retrievers.voyager.cells_store import read_tokens
from sauerkraut_rag.retrievers.voyager.state import Snapshot


def cell_candidates(
    snap: Snapshot,
    cells: TokenCells,
    query: np.ndarray,
    mask: np.ndarray,
    probes: int,
    want: int,
) -> np.ndarray:
    """Ascending positions of up to ``want`` documents in ``mask`` with the best estimated
    MaxSim for ``query (n_tokens, dim)``, from ``cells`` (of ``snap``'s epoch).

    When the probed cells hold more than ``GATHER_SHARE`` of the stored tokens, reading
    them would cost more than an exact scan: each token is then credited with its cell's
    similarity to the query token instead (PLAID's centroid interaction, no vector read),
    and ``CENTROID_WIDEN`` times ``want`` documents are returned."""
    q = np.asarray(query, dtype=np.float32)
    lists = [cells.tokens_in(row) for row in cells.probe(q, probes)]
    counts = np.array([len(t) for t in lists])
    if not counts.sum():
        return np.zeros(0, dtype=np.int64)
    tokens = np.concatenate(lists)
    which = np.repeat(np.arange(len(q)), counts)  # the query token of every pair
    if counts.sum() > GATHER_SHARE * snap.next_token:
        centroid_sims = _half.matmul(q, cells.codebook.leaves.T)  # (n_q, C)
        sims = centroid_sims[which, cells.codes[tokens]]
        docs = snap.positions_of_tokens(tokens)
        want *= CENTROID_WIDEN
    else:
        unique, inverse = np.unique(tokens, return_inverse=True)
        sims = _half.matmul(read_tokens(snap, unique), q.T)[inverse, which]
        docs = snap.positions_of_tokens(unique)[inverse]
    floor = np.zeros(len(q), dtype=np.float32)
    starts = np.r_[0, np.cumsum(counts)[:-1]]
    nonempty = counts > 0
    floor[nonempty] = np.minimum.reduceat(sims, starts[nonempty])
    keep = docs >= 0
    keep[keep] = mask[docs[keep]]
    if not keep.any():
        return np.zeros(0, dtype=np.int64)
    found, slot = np.unique(docs[keep], return_inverse=True)
    best = np.full((len(found), len(q)), -np.inf, dtype=np.float32)
    np.maximum.at(best, (slot, which[keep]), sims[keep])
    estimate = np.where(np.isfinite(best), best, floor).sum(axis=1)
    if len(found) > want:
        found = np.sort(found[np.argpartition(-estimate, want - 1)[:want]])
    return found
