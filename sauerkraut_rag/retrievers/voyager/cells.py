"""Token cells: a second candidate source that works at the level of single tokens.

Why: MUVERA FDEs compress a document into one vector, and their similarity to a query
is a noisy estimate of MaxSim. When many documents score close to each other (short or
keyword queries, paraphrases, few topics, a large vocabulary of concepts), the true
top-10 can rank in the thousands by FDE similarity, so no affordable candidate count
finds them (measured with ``benchmarks/recall_family.py``). MaxSim is a sum of
per-token maxima; token cells estimate exactly that, as PLAID (Santhanam et al., 2022)
does with its centroids.

What: every stored token vector is assigned to the most similar of ``C`` unit centroids
("cells", ``C = 2**floor(log2(8 * sqrt(N)))`` for ``N`` live tokens, 256 to 65,536),
trained by spherical k-means on a sample of the live tokens (top level, then leaves per
top cell, which keeps training cheap). Inverted lists map each cell to its token ids.

Search (``cells_search.py``): each query token probes its ``probes`` most similar cells
(plus those nearly as similar, see ``PROBE_MARGIN``) and is compared exactly with every
stored token in them; per document, the best of those similarities stands in for the
token's MaxSim term, and a document with no token in the probed cells is credited with
the weakest similarity found for that query token. The sum over query tokens estimates
MaxSim; the best ``want`` documents are re-scored exactly. Comparing the tokens
themselves (not just their cells) matters when many documents share the query's cells:
with few topics or keyword queries, cell-level credit ties across hundreds of documents.

Everything here is deterministic: sampling and k-means start from a seeded generator,
ties resolve by index, and float32 BLAS products do not depend on the thread count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from sauerkraut_rag.retrievers import _half

MIN_TOKENS = 4096
"""Cells are trained once the live documents hold this many tokens."""
CELLS_FACTOR = 8
MIN_CELLS, MAX_CELLS = 256, 65536
LEAVES_PER_TOP = 64
"""Training clusters the sample into ``C / 64`` top cells, then each into 64 leaves."""
SAMPLE_PER_CELL = 32
"""Training sample: this many tokens per cell (at most all live tokens)."""
KMEANS_ITERATIONS = 10
PROBE_MARGIN = 0.05
PROBE_MOST = 32
"""Besides its ``probes`` most similar cells, a query token searches every cell within
``PROBE_MARGIN`` (cosine) of its most similar one, up to ``PROBE_MOST`` cells: a frequent
concept's tokens fill many neighbouring cells, and all of them must be searched (with 4
cells, recall@10 on a few-topics corpus was 0.89; with the margin 1.0)."""
GATHER_SHARE = 0.04
"""A query whose probed cells hold more than this share of the stored tokens is not
compared with those tokens: they are read at random, and beyond a few percent of them
that touches most pages of the store, costing more than the sequential full scan
(measured: 380,000 of 2,000,000 tokens read in 0.55-8 s against a 0.44 s full scan).
Each token then counts with its cell's similarity (see ``cells_search.py``)."""
CENTROID_WIDEN = 4
"""Cell-level credit ties more often than token-level credit, so that estimate passes on
this many times the wanted candidates."""
_ASSIGN_FLOATS = 1 << 22
"""Size of the temporary ``(tokens, C)`` similarity block while coding tokens."""
_SUM_BATCH = 32768
_FIT_SAMPLE = 20000
_FIT_QUANTILE = 0.1
PROBE_WIDE = 64
"""Cells searched by a query token that is poorly covered (its most similar cell is less
similar than ``Codebook.fit``): its match can then sit in any of many cells (measured on
a keyword corpus: within the first 4 cells 84%, 32 cells 95%, 64 cells 98%; for covered
tokens always within the first 4)."""


def n_cells_for(n_tokens: int) -> int:
    """``2**floor(log2(8 * sqrt(n_tokens)))`` clipped to ``[MIN_CELLS, MAX_CELLS]``."""
    exponent = math.floor(math.log2(CELLS_FACTOR * math.sqrt(max(n_tokens, 1))))
    return int(min(MAX_CELLS, max(MIN_CELLS, 2**exponent)))


def _unit(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.maximum(norms, np.finfo(np.float32).tiny)).astype(np.float32)


def _nearest(x: np.ndarray, centroids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index and similarity of each row's most similar centroid (ties: lower index)."""
    sims = x @ centroids.T
    best = np.argmax(sims, axis=1)
    return best, sims[np.arange(len(x)), best]


def _cell_sums(x: np.ndarray, assign: np.ndarray, k: int) -> np.ndarray:
    """Sum of the rows of ``x`` per cell ``(k, dim)``, as one-hot matrix products (much
    faster than ``reduceat`` or ``add.at`` over rows)."""
    sums = np.zeros((k, x.shape[1]), dtype=np.float32)
    for lo in range(0, len(x), _SUM_BATCH):
        cells = assign[lo : lo + _SUM_BATCH]
        onehot = np.zeros((len(cells), k), dtype=np.float32)
        onehot[np.arange(len(cells)), cells] = 1.0
        sums += onehot.T @ x[lo : lo + _SUM_BATCH]
    return sums


def spherical_kmeans(
    x: np.ndarray, k: int, rng: np.random.Generator, iterations: int = KMEANS_ITERATIONS
) -> np.ndarray:
    """``k`` unit centroids of the rows of ``x (n, dim)``; with ``n <= k`` the rows
    themselves, padded by repeating the first (a repeated centroid never wins a token)."""
    if len(x) <= k:
        pad = np.repeat(x[:1], k - len(x), axis=0)
        return _unit(np.concatenate([x, pad]))
    centroids = _unit(x[np.sort(rng.choice(len(x), size=k, replace=False))])
    for _ in range(iterations):
        assign, sims = _nearest(x, centroids)
        sums = _cell_sums(x, assign, k)
        empty = np.flatnonzero(np.bincount(assign, minlength=k) == 0)
        if empty.size:  # restart empty cells at the worst-fitted rows
            worst = np.argsort(sims, kind="stable")[: empty.size]
            sums[empty] = x[worst]
        centroids = _unit(sums)
    return centroids


@dataclass(frozen=True)
class Codebook:
    """Two-level centroids: ``top (C1, dim)`` and ``leaves (C1 * C2, dim)`` (the cells;
    leaf ``j * C2 + l`` refines top centroid ``j``), and ``fit``: the similarity to its
    cell that 90% of the stored tokens exceed (query tokens below it are poorly covered)."""

    top: np.ndarray
    leaves: np.ndarray
    fit: float

    @property
    def n_cells(self) -> int:
        return int(self.leaves.shape[0])

    @classmethod
    def train(cls, sample: np.ndarray, n_cells: int, seed: int) -> Codebook:
        """Spherical k-means on ``sample (n, dim)``: top level, then leaves per top cell."""
        rng = np.random.default_rng(seed)
        sample = _unit(np.asarray(sample, dtype=np.float32))
        per_top = min(LEAVES_PER_TOP, n_cells)
        n_top = n_cells // per_top
        top = spherical_kmeans(sample, n_top, rng)
        assign, _ = _nearest(sample, top)
        leaves = []
        for j in range(n_top):
            members = sample[assign == j]
            members = members if len(members) else top[j : j + 1]
            leaves.append(spherical_kmeans(members, per_top, rng))
        book = cls(top=top, leaves=np.concatenate(leaves), fit=0.0)
        probe = sample[:: max(1, len(sample) // _FIT_SAMPLE)]
        sims = np.concatenate(
            [book.best_similarity(probe[lo : lo + 1024]) for lo in range(0, len(probe), 1024)]
        )
        return cls(top=book.top, leaves=book.leaves, fit=float(np.quantile(sims, _FIT_QUANTILE)))

    def best_similarity(self, tokens: np.ndarray) -> np.ndarray:
        """Similarity of every token to its most similar cell."""
        return np.max(np.asarray(tokens, dtype=np.float32) @ self.leaves.T, axis=1)

    def assign(self, tokens: np.ndarray) -> np.ndarray:
        """Most similar leaf of every token ``(n, dim)`` (float16 or float32): ``(n,)``
        uint16, ties to the lower leaf.

        Every leaf is compared (one matrix product per batch). Descending the tree
        instead was cheaper but put 8-18% of the tokens of a keyword corpus in another
        leaf than the most similar one, which lost those tokens to queries (recall@10 of
        the cells fell from 1.0 to 0.90).
        """
        codes = np.empty(len(tokens), dtype=np.uint16)
        rows = max(64, _ASSIGN_FLOATS // self.n_cells)
        for lo in range(0, len(tokens), rows):
            batch = np.asarray(tokens[lo : lo + rows], dtype=np.float32)
            codes[lo : lo + len(batch)] = np.argmax(batch @ self.leaves.T, axis=1)
        return codes


@dataclass(frozen=True)
class TokenLists:
    """Inverted lists of the token ids ``[first, stop)``: the tokens of cell ``c`` are
    ``tokens[ptr[c]:ptr[c + 1]]`` (ascending global token ids)."""

    first: int
    stop: int
    ptr: np.ndarray  # (n_cells + 1,) int64
    tokens: np.ndarray  # (stop - first,) int64

    @classmethod
    def build(cls, codes: np.ndarray, first: int, n_cells: int) -> TokenLists:
        """Lists of the tokens ``first, first + 1, ...`` whose cells are ``codes``."""
        order = np.argsort(codes, kind="stable").astype(np.int64)
        ptr = np.zeros(n_cells + 1, dtype=np.int64)
        np.cumsum(np.bincount(codes, minlength=n_cells), out=ptr[1:])
        return cls(first, first + len(codes), ptr, order + first)

    def merged(self, later: TokenLists) -> TokenLists:
        """One block holding this block's tokens and those of the ``later`` block."""
        n_cells = len(self.ptr) - 1
        cells = np.concatenate(
            [np.repeat(np.arange(n_cells), np.diff(b.ptr)) for b in (self, later)]
        )
        order = np.argsort(cells, kind="stable")  # within a cell: this block first
        tokens = np.concatenate([self.tokens, later.tokens])[order]
        return TokenLists(self.first, later.stop, self.ptr + later.ptr, tokens)


@dataclass(frozen=True)
class TokenCells:
    """The cells of one snapshot: codebook, the cell of every token id
    ``[0, len(codes))`` and inverted lists of those tokens."""

    codebook: Codebook
    codes: np.ndarray  # (n_tokens,) uint16
    trained_tokens: int
    blocks: tuple[TokenLists, ...]

    @classmethod
    def from_codes(cls, codebook: Codebook, codes: np.ndarray, trained: int) -> TokenCells:
        blocks = (TokenLists.build(codes, 0, codebook.n_cells),) if len(codes) else ()
        return cls(codebook, codes, trained, blocks)

    @property
    def n_tokens(self) -> int:
        """Token ids ``[0, n_tokens)`` are coded and listed."""
        return len(self.codes)

    def with_tokens(self, codes: np.ndarray) -> TokenCells:
        """Append the next token ids, whose cells are ``codes``."""
        block = TokenLists.build(codes, self.n_tokens, self.codebook.n_cells)
        blocks = [*self.blocks, block]
        while len(blocks) >= 2 and _size(blocks[-2]) <= 2 * _size(blocks[-1]):
            blocks[-2:] = [blocks[-2].merged(blocks[-1])]
        return TokenCells(
            self.codebook, np.concatenate([self.codes, codes]), self.trained_tokens, tuple(blocks)
        )

    def probe(
        self, query: np.ndarray, probes: int, margin: float = PROBE_MARGIN, most: int = PROBE_MOST
    ) -> Any:
        """Cells to search for every query token (a list of ``n_q`` arrays): its
        ``probes`` most similar cells and up to ``most`` in all within ``margin`` of the
        most similar one; ``PROBE_WIDE`` cells for poorly covered tokens."""
        sims = _half.matmul(query, self.codebook.leaves.T)  # (n_q, C)
        wide = max(probes, most, PROBE_WIDE)
        wide = max(1, min(wide, self.codebook.n_cells))
        best = np.argpartition(-sims, wide - 1, axis=1)[:, :wide]
        best_sims = np.take_along_axis(sims, best, axis=1)
        order = np.argsort(-best_sims, axis=1, kind="stable")
        best = np.take_along_axis(best, order, axis=1)
        best_sims = np.take_along_axis(best_sims, order, axis=1)
        keep = best_sims >= best_sims[:, :1] - margin
        keep[:, max(probes, most) :] = False
        keep[:, :probes] = True
        keep[best_sims[:, 0] < self.codebook.fit] = True  # poorly covered: search widely
        return [row[k] for row, k in zip(best, keep, strict=True)]

    def tokens_in(self, cells: np.ndarray) -> np.ndarray:
        """Global ids of the tokens in ``cells``."""
        unique = np.unique(cells).tolist()
        parts = [b.tokens[b.ptr[c] : b.ptr[c + 1]] for c in unique for b in self.blocks]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def _size(block: TokenLists) -> int:
    return int(block.tokens.size)
