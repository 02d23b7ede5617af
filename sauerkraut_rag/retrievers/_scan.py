"""The block loop shared by every MaxSim path (exact float32, float16 GEMM).

Documents are packed (``tokens`` plus ``offsets``) and walked in chunks of whole documents;
query tokens are stacked into rows and walked in row groups. For every chunk, ``prepare``
turns its tokens into a GEMM operand once (e.g. a float32 copy), and ``product`` gives the
``(rows, chunk_tokens)`` float32 similarity block of one row group. A segment max over
document boundaries (``np.maximum.reduceat``) gives every row's best match per document,
and a segment sum over query boundaries the per-query scores. A document longer than a
chunk is walked in slices with a running max. Empty documents are skipped (score 0).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

Prepare = Callable[[np.ndarray, int, int], Any]
"""``prepare(chunk_tokens, first_doc, stop_doc)`` -> GEMM operand."""
Product = Callable[[int, int, Any], np.ndarray]


def doc_chunks(offsets: np.ndarray, max_tokens: int) -> list[tuple[int, int]]:
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


class RowGroups:
    """Query rows split into groups; where each query starts inside each group."""

    def __init__(self, lengths: list[int], rows_per_group: int, row_scale: np.ndarray | None):
        query_of_row = np.repeat(np.arange(len(lengths)), lengths)
        self.bounds: list[tuple[int, int]] = []
        self.starts: list[np.ndarray] = []
        self.queries: list[np.ndarray] = []
        for r0 in range(0, query_of_row.size, rows_per_group):
            group = query_of_row[r0 : r0 + rows_per_group]
            starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
            self.bounds.append((r0, r0 + group.size))
            self.starts.append(starts)
            self.queries.append(group[starts])
        self.row_scale = row_scale
        self.n_rows = int(query_of_row.size)

    def add(self, scores: np.ndarray, g: int, rowmax: np.ndarray, docs: np.ndarray) -> None:
        """Add group ``g``'s per-row maxima ``(rows, len(docs))`` to ``scores[:, docs]``."""
        if self.row_scale is not None:
            r0, r1 = self.bounds[g]
            rowmax = rowmax * self.row_scale[r0:r1, None]
        per_query = np.add.reduceat(rowmax, self.starts[g], axis=0)
        scores[np.ix_(self.queries[g], docs)] += per_query


def scan(
    groups: RowGroups,
    n_queries: int,
    tokens: np.ndarray,
    offsets: np.ndarray,
    *,
    prepare: Prepare,
    product: Product,
    max_doc_tokens: int,
) -> np.ndarray:
    """Per-query sums of per-row document maxima: ``(n_queries, n_docs)`` float32."""
    n_docs = offsets.size - 1
    scores = np.zeros((n_queries, n_docs), dtype=np.float32)
    if groups.n_rows == 0 or tokens.shape[0] == 0:
        return scores
    lengths = np.diff(offsets)
    for d0, d1 in doc_chunks(offsets, max_doc_tokens):
        t0, t1 = int(offsets[d0]), int(offsets[d1])
        if t0 == t1:
            continue  # only empty documents: their score stays 0
        if t1 - t0 > max_doc_tokens:  # one oversized document
            _long_document(scores, groups, tokens[t0:t1], d0, prepare, product, max_doc_tokens)
            continue
        nonempty = np.flatnonzero(lengths[d0:d1] > 0)
        starts = (offsets[d0:d1] - t0)[nonempty]
        operand = prepare(tokens[t0:t1], d0, d1)
        for g, (r0, r1) in enumerate(groups.bounds):
            rowmax = np.maximum.reduceat(product(r0, r1, operand), starts, axis=1)
            groups.add(scores, g, rowmax, d0 + nonempty)
    return scores


def _long_document(
    scores: np.ndarray,
    groups: RowGroups,
    doc: np.ndarray,
    index: int,
    prepare: Prepare,
    product: Product,
    max_doc_tokens: int,
) -> None:
    """Score one document longer than a chunk: running max over slices of its tokens."""
    best = np.full((groups.n_rows, 1), -np.inf, dtype=np.float32)
    for lo in range(0, doc.shape[0], max_doc_tokens):
        operand = prepare(doc[lo : lo + max_doc_tokens], index, index + 1)
        for r0, r1 in groups.bounds:
            block = product(r0, r1, operand)
            np.maximum(best[r0:r1], block.max(axis=1, keepdims=True), out=best[r0:r1])
    docs = np.array([index])
    for g, (r0, r1) in enumerate(groups.bounds):
        groups.add(scores, g, best[r0:r1], docs)
