"""Keeping the token cells of an open index current, and saving them.

The cells of one epoch live in a :class:`CellsHolder` shared by its snapshots (like the
HNSW graph and its cover): the background indexer (:mod:`.indexer`) codes the tokens of
new documents a batch at a time and swaps the extended cells in; a search reads the
holder once. Documents whose tokens are not coded yet are part of the snapshot's tail,
scored exactly by every approximate search. A writer retrains the cells when the index
outgrew them; cells are derived data, so failures are logged and the index searches
with the HNSW graph alone until the next open.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from sauerkraut_rag.retrievers.voyager import cells_store
from sauerkraut_rag.retrievers.voyager.cells import TokenCells
from sauerkraut_rag.retrievers.voyager.config import IndexConfig
from sauerkraut_rag.retrievers.voyager.state import Snapshot
from sauerkraut_rag.retrievers.voyager.storage import HNSW_DIR

logger = logging.getLogger(__name__)

STEP_TOKENS = 65_536
"""Tokens coded per background step (a step holds one search slot of the gate)."""


def enabled(config: IndexConfig) -> bool:
    """Whether searches use token cells (and writers therefore train them)."""
    return config.strategy == "fde" and config.cell_candidates > 0


class CellsHolder:
    """The current cells of one epoch (``None`` until trained), and what is saved."""

    __slots__ = ("cells", "dirty", "failed", "saved")

    def __init__(self, cells: TokenCells | None, saved: Any = None, *, dirty: bool) -> None:
        self.cells = cells
        self.saved: dict[str, Any] | None = saved  # the SQLite ``cells`` entry
        self.dirty = dirty  # changed since saved
        self.failed = False  # an update failed: no more updates until reopened


def covered(snap: Snapshot, cells: TokenCells) -> int:
    """Position of the first document with tokens the cells do not list yet."""
    ends = snap.starts + snap.lengths
    return int(np.searchsorted(ends, cells.n_tokens, side="right"))


def pending(snap: Snapshot, *, may_train: bool) -> bool:
    """Whether :func:`advance` has work for ``snap``."""
    holder = snap.cells
    if holder is None or holder.failed:
        return False
    if holder.cells is None:
        return may_train and cells_store.needs_training(None, snap)
    if holder.cells.n_tokens < snap.next_token:
        return True
    return may_train and cells_store.needs_training(holder.cells, snap)


def behind(snap: Snapshot, *, may_train: bool) -> int:
    """Documents of ``snap`` whose tokens the cells do not list yet: all of them while the
    first training is due (0: nothing to do)."""
    holder = snap.cells
    if holder is None or holder.failed:
        return 0
    if holder.cells is None:
        return snap.n_docs if pending(snap, may_train=may_train) else 0
    return snap.n_docs - covered(snap, holder.cells)


def advance(snap: Snapshot, *, may_train: bool, seed: int) -> bool:
    """One background step: (re)train, or code the next ``STEP_TOKENS`` tokens. Returns
    whether the cells changed."""
    holder = snap.cells
    if holder is None or holder.failed:
        return False
    cells = holder.cells
    try:
        if may_train and cells_store.needs_training(cells, snap):
            new = cells_store.train(snap, seed)
        elif cells is not None and cells.n_tokens < snap.next_token:
            stop = min(snap.next_token, cells.n_tokens + STEP_TOKENS)
            codes = cells_store.code_tokens(snap, cells.codebook, cells.n_tokens, stop)
            new = cells.with_tokens(codes)
        else:
            return False
    except Exception:
        logger.exception(
            "updating the token cells failed; search uses the HNSW graph alone until the "
            "index is reopened"
        )
        holder.failed = True
        holder.cells = None
        return True
    holder.cells, holder.dirty = new, True
    return True


def attach(snap: Snapshot, folder: Any, meta: Any, config: IndexConfig) -> Snapshot:
    """``snap`` with the cells of the saved file (caught up) or newly trained ones."""
    cells, changed = cells_store.attach(
        folder, meta, snap, config.dim, config.seed, enabled=enabled(config)
    )
    return snap.replace(cells=CellsHolder(cells, meta, dirty=changed))


def after_compact(old: Snapshot, new: Snapshot, config: IndexConfig) -> Snapshot:
    """Cells of a compacted snapshot: codes kept, renumbered (or trained when missing)."""
    holder = old.cells
    saved = holder.saved if holder is not None else None
    try:
        if holder is not None and holder.cells is not None:
            cells = cells_store.after_compact(holder.cells, old, new, config.seed)
        else:
            cells = cells_store.train(new, config.seed) if enabled(config) else None
    except Exception:
        logger.exception("renumbering the token cells failed; they are retrained on open")
        cells = None
    return new.replace(cells=CellsHolder(cells, saved, dirty=cells is not None))


def save(writer: Any, snap: Snapshot) -> None:
    """Save changed cells that list every token of ``snap``; reference them in SQLite and
    retire the file saved before."""
    holder = snap.cells
    if holder is None or not holder.dirty:
        return
    cells = holder.cells
    if cells is None or cells.n_tokens < snap.next_token:
        return  # nothing complete to save yet (or failed): open catches up or retrains
    folder = writer.path / HNSW_DIR
    folder.mkdir(exist_ok=True)
    name, sha = cells_store.save(cells, folder)
    meta = cells_store.entry(name, sha, cells, snap.epoch)
    try:
        writer.store_meta({"cells": meta})
    except BaseException:
        (folder / name).unlink(missing_ok=True)
        raise
    old, holder.saved, holder.dirty = holder.saved, meta, holder.cells is not cells
    if old is not None and old.get("file") != name:
        writer.retirer.retire(folder, [str(old["file"])])
