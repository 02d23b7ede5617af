"""Immutable in-memory snapshots of an index (copy-on-write).

A search reads one :class:`Snapshot` from start to end, so a concurrent writer can never
show it a half-applied change: the writer builds a new snapshot and swaps a single
attribute. Documents are kept in ``row`` order, which is also global-token order
within an epoch; segments tile the token ids ``[0, next_token)`` without gaps.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sauerkraut_rag.retrievers.filters import matches
from sauerkraut_rag.retrievers.maxsim import token_norms
from sauerkraut_rag.retrievers.voyager.segments import SegmentData
from sauerkraut_rag.types import Metadata


@dataclass(frozen=True)
class Segment:
    """A memory-mapped vector file holding global token ids ``[start, stop)``."""

    start: int
    stop: int
    file: str
    sha256: str
    nbytes: int
    data: SegmentData  # (stop - start, dim) vectors: in memory, or mapped with checked access
    _cache: dict[str, np.ndarray] = field(default_factory=dict, compare=False, repr=False)

    @property
    def array(self) -> np.ndarray:
        """All vectors ``(stop - start, dim)``, read-only (size-checked if mapped)."""
        return self.data.view()

    def as_float32(self) -> np.ndarray:
        """The vectors as an in-memory float32 array (converted once, then cached).

        Exact full scans of small indexes use this: converting float16 on every query
        costs more than the matrix product itself.
        """
        cached = self._cache.get("float32")
        if cached is None:
            cached = np.array(self.array, dtype=np.float32)
            cached.flags.writeable = False
            self._cache["float32"] = cached
        return cached

    def token_norms(self) -> np.ndarray:
        """L2 norm of every stored vector, float32 (computed once, then cached).

        The float16 fast path of the scorer bounds its error with them.
        """
        cached = self._cache.get("norms")
        if cached is None:
            cached = token_norms(self.array)
            cached.flags.writeable = False
            self._cache["norms"] = cached
        return cached


class GraphCover:
    """How far the HNSW graph of one epoch reaches: every document whose row is below
    :attr:`rows` is in it. Shared, like the graph, by the snapshots of an epoch; only
    grows, and only after the documents were inserted, so a search that reads it never
    misses a document (documents at or above it are scored exactly)."""

    __slots__ = ("rows",)

    def __init__(self, rows: int) -> None:
        self.rows = rows


@dataclass(frozen=True)
class Snapshot:
    """Everything a search needs, frozen at one committed generation.

    Per-document arrays are indexed by *position* (0..n_docs-1, rows ascending) and
    include tombstoned documents (``live[pos] == False``) until ``compact``.
    """

    epoch: int
    segments: tuple[Segment, ...]
    rows: np.ndarray  # (n_docs,) int64, ascending
    starts: np.ndarray  # (n_docs,) int64 global token id of the first token
    lengths: np.ndarray  # (n_docs,) int64 token counts
    live: np.ndarray  # (n_docs,) bool
    ids: list[str]
    metadata: list[Metadata]
    id_to_pos: dict[str, int]  # live documents only
    next_row: int
    next_token: int
    generation: int = 0  # the committed generation this snapshot shows
    hnsw: Any = None  # voyager.Index for this epoch, or None
    hnsw_complete: bool = False  # False: the graph is unusable -> exact search only
    graph_cover: GraphCover | None = None  # rows below cover.rows are in ``hnsw``
    cells: Any = None  # CellsHolder (cells_upkeep.py) of this epoch: the token cells

    @property
    def n_docs(self) -> int:
        return int(self.rows.shape[0])

    @property
    def n_live(self) -> int:
        return len(self.id_to_pos)

    def replace(self, **changes: Any) -> Snapshot:
        return dataclasses.replace(self, **changes)

    # ------------------------------------------------------------- lookups

    def segment_bounds(self) -> list[tuple[Segment, int, int]]:
        """``(segment, first_pos, stop_pos)`` for every segment (documents it holds)."""
        bounds = np.searchsorted(self.starts, [s.start for s in self.segments] + [self.next_token])
        return [(seg, int(bounds[i]), int(bounds[i + 1])) for i, seg in enumerate(self.segments)]

    def tail_start(self) -> int:
        """Position of the first document not yet in the HNSW graph (``n_docs``: none).

        Documents from there on (the "tail", recently written ones that the background
        indexer has not inserted yet) are scored exactly by every approximate search.
        """
        if self.graph_cover is None:
            return self.n_docs
        return int(np.searchsorted(self.rows, self.graph_cover.rows))

    def _segment_of(self, tokens: np.ndarray) -> np.ndarray:
        """Index into ``segments`` of the segment holding each global token id."""
        seg_starts = np.fromiter((s.start for s in self.segments), np.int64, len(self.segments))
        return np.searchsorted(seg_starts, tokens, side="right") - 1

    def doc_tokens(self, pos: int) -> np.ndarray:
        """Stored vectors of the document at ``pos``: ``(n_tokens, dim)``, read-only."""
        start, length = int(self.starts[pos]), int(self.lengths[pos])
        seg = self.segments[int(self._segment_of(np.asarray([start]))[0])]
        return seg.data.rows(start - seg.start, start - seg.start + length)

    def gather(self, positions: Sequence[int] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pack the documents at ``positions``: tokens ``(N, dim)`` and offsets ``(n + 1,)``.

        Each segment involved is size-checked once; the result is a copy.
        """
        positions = np.asarray(positions, dtype=np.int64)
        starts, lengths = self.starts[positions], self.lengths[positions]
        which = self._segment_of(starts)
        views = {int(i): self.segments[int(i)].array for i in np.unique(which)}
        parts = [
            views[int(i)][s - self.segments[int(i)].start : s - self.segments[int(i)].start + n]
            for i, s, n in zip(which.tolist(), starts.tolist(), lengths.tolist(), strict=True)
        ]
        offsets = np.zeros(len(parts) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        if not parts:
            dim = self.segments[0].data.view().shape[1] if self.segments else 0
            return np.zeros((0, dim), dtype=np.float32), offsets
        return np.concatenate(parts, axis=0), offsets

    def gather_norms(self, positions: Sequence[int] | np.ndarray) -> np.ndarray:
        """Token norms (:meth:`Segment.token_norms`) aligned with :meth:`gather`'s tokens."""
        seg_starts = [s.start for s in self.segments]
        parts = []
        for p in positions:
            start, length = int(self.starts[p]), int(self.lengths[p])
            seg = self.segments[int(np.searchsorted(seg_starts, start, side="right")) - 1]
            parts.append(seg.token_norms()[start - seg.start : start - seg.start + length])
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)

    def positions_of_rows(self, rows: np.ndarray) -> np.ndarray:
        """Positions of document rows; ``-1`` where the row is not in this snapshot."""
        rows = np.asarray(rows, dtype=np.int64)
        pos = np.searchsorted(self.rows, rows)
        pos_clipped = np.minimum(pos, max(self.n_docs - 1, 0))
        found = (pos < self.n_docs) & (self.rows[pos_clipped] == rows) if self.n_docs else pos < 0
        return np.where(found, pos, -1)

    def positions_of_tokens(self, tokens: np.ndarray) -> np.ndarray:
        """Positions of the documents owning global token ids; ``-1`` if unknown."""
        tokens = np.asarray(tokens, dtype=np.int64)
        if not self.n_docs:
            return np.full(tokens.shape, -1, dtype=np.int64)
        pos = np.searchsorted(self.starts, tokens, side="right") - 1
        pos_clipped = np.maximum(pos, 0)
        inside = (pos >= 0) & (tokens < self.starts[pos_clipped] + self.lengths[pos_clipped])
        return np.where(inside & (tokens < self.next_token), pos, -1)

    def labels_of(self, positions: np.ndarray, strategy: str) -> np.ndarray:
        """HNSW labels of documents: their rows (fde) or all their token ids (tokens)."""
        positions = np.asarray(positions, dtype=np.int64)
        if strategy == "fde":
            return self.rows[positions].astype(np.uint64)
        if not positions.size:
            return np.zeros(0, dtype=np.uint64)
        starts, lengths = self.starts[positions], self.lengths[positions]
        first = np.repeat(starts - np.r_[0, np.cumsum(lengths)[:-1]], lengths)
        return (first + np.arange(int(lengths.sum()))).astype(np.uint64)


def empty_snapshot(epoch: int = 0) -> Snapshot:
    """A snapshot with no documents."""
    zeros = np.zeros(0, dtype=np.int64)
    return Snapshot(
        epoch=epoch,
        segments=(),
        rows=zeros,
        starts=zeros,
        lengths=zeros,
        live=np.zeros(0, dtype=bool),
        ids=[],
        metadata=[],
        id_to_pos={},
        next_row=0,
        next_token=0,
    )


def with_appended(
    snap: Snapshot,
    *,
    segment: Segment,
    ids: Sequence[str],
    lengths: Sequence[int],
    metadata: Sequence[Metadata],
    replaced: Sequence[int] = (),
) -> Snapshot:
    """New documents stored in ``segment`` (rows from ``snap.next_row``); ``replaced``
    positions are tombstoned in the same step (upsert)."""
    n = len(ids)
    rows = np.arange(snap.next_row, snap.next_row + n, dtype=np.int64)
    lens = np.asarray(lengths, dtype=np.int64)
    starts = segment.start + np.r_[0, np.cumsum(lens)[:-1]].astype(np.int64)
    live = np.concatenate([snap.live, np.ones(n, dtype=bool)])
    id_to_pos = dict(snap.id_to_pos)
    for pos in replaced:
        live[pos] = False
        del id_to_pos[snap.ids[pos]]
    for i, doc_id in enumerate(ids):
        id_to_pos[doc_id] = snap.n_docs + i
    return snap.replace(
        segments=(*snap.segments, segment),
        rows=np.concatenate([snap.rows, rows]),
        starts=np.concatenate([snap.starts, starts]),
        lengths=np.concatenate([snap.lengths, lens]),
        live=live,
        ids=[*snap.ids, *ids],
        metadata=[*snap.metadata, *metadata],
        id_to_pos=id_to_pos,
        next_row=snap.next_row + n,
        next_token=segment.stop,
    )


def with_deleted(snap: Snapshot, positions: Sequence[int]) -> Snapshot:
    """Tombstone the documents at ``positions``."""
    live = snap.live.copy()
    id_to_pos = dict(snap.id_to_pos)
    for pos in positions:
        live[pos] = False
        id_to_pos.pop(snap.ids[pos], None)
    return snap.replace(live=live, id_to_pos=id_to_pos)


def filter_mask(snap: Snapshot, flt: Any) -> np.ndarray:
    """Live documents matching ``flt`` (``None``, a parsed filter tree, or a predicate),
    evaluated in Python over the snapshot's metadata."""
    mask = snap.live.copy()
    if flt is None:
        return mask
    for pos in np.flatnonzero(mask):
        meta = snap.metadata[pos]
        mask[pos] = bool(flt(dict(meta))) if callable(flt) else matches(flt, meta)
    return mask
