"""Token cells of an index: trained from a snapshot, kept current, saved and loaded.

Cells are derived data, like the HNSW graph: a ``cells-<uuid>.npz`` file in ``hnsw/``
(centroids and the cell of every token id; no pickles) recorded in SQLite under the
``cells`` meta key with its SHA-256, the epoch and the number of tokens it codes. On
open, an intact file is caught up by coding the tokens added since it was saved; a
missing, stale or damaged one is retrained. Training and coding are deterministic
(seeded sampling, fixed iteration counts), so every process that opens the same index
gets the same cells.
"""

from __future__ import annotations

import json
import logging
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from sauerkraut_rag.retrievers.voyager.cells import (
    MIN_TOKENS,
    SAMPLE_PER_CELL,
    Codebook,
    TokenCells,
    n_cells_for,
)
from sauerkraut_rag.retrievers.voyager.state import Snapshot
from sauerkraut_rag.retrievers.voyager.storage import file_sha256, is_plain_name, write_fresh

logger = logging.getLogger(__name__)

_SEED_OFFSET = 7919
"""Added to the index seed, so cells and the HNSW graph draw different random streams."""


def live_tokens(snap: Snapshot) -> int:
    return int(snap.lengths[snap.live].sum())


def needs_training(cells: TokenCells | None, snap: Snapshot) -> bool:
    """No cells yet and enough tokens, or the index grew enough to need more cells."""
    n = live_tokens(snap)
    if cells is None:
        return n >= MIN_TOKENS
    return n_cells_for(n) > cells.codebook.n_cells


def train(snap: Snapshot, seed: int) -> TokenCells | None:
    """Cells for every document of ``snap`` (``None`` below ``MIN_TOKENS`` live tokens)."""
    n_live = live_tokens(snap)
    if n_live < MIN_TOKENS:
        return None
    n_cells = n_cells_for(n_live)
    logger.info("training %d token cells on %d live tokens", n_cells, n_live)
    rng = np.random.default_rng(seed + _SEED_OFFSET)
    sample = read_tokens(snap, _sample_live_tokens(snap, SAMPLE_PER_CELL * n_cells, rng))
    codebook = Codebook.train(sample, n_cells, seed + _SEED_OFFSET)
    return TokenCells.from_codes(codebook, code_tokens(snap, codebook, 0), n_live)


def catch_up(cells: TokenCells, snap: Snapshot) -> TokenCells:
    """Code and list the tokens appended to ``snap`` since ``cells`` were current."""
    if cells.n_tokens >= snap.next_token:
        return cells
    return cells.with_tokens(code_tokens(snap, cells.codebook, cells.n_tokens))


def current(cells: TokenCells | None, snap: Snapshot, seed: int) -> TokenCells | None:
    """``cells`` caught up with ``snap``, or retrained when the index outgrew them."""
    if needs_training(cells, snap):
        return train(snap, seed)
    return None if cells is None else catch_up(cells, snap)


def after_compact(cells: TokenCells, old: Snapshot, new: Snapshot, seed: int) -> Any:
    """Cells of the compacted snapshot ``new`` (live documents of ``old``, renumbered)."""
    live = np.flatnonzero(old.live)
    if cells.n_tokens < old.next_token or not live.size:
        return current(None, new, seed)
    codes = cells.codes[old.labels_of(live, "tokens").astype(np.int64)]
    return TokenCells.from_codes(cells.codebook, codes, cells.trained_tokens)


def _sample_live_tokens(snap: Snapshot, size: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted global ids of ``size`` distinct tokens of live documents (all if fewer)."""
    live = np.flatnonzero(snap.live)
    lengths = snap.lengths[live]
    total = int(lengths.sum())
    picks = np.sort(rng.choice(total, size=min(size, total), replace=False))
    ends = np.cumsum(lengths)
    doc = np.searchsorted(ends, picks, side="right")
    return snap.starts[live][doc] + picks - (ends[doc] - lengths[doc])


def read_tokens(snap: Snapshot, token_ids: np.ndarray) -> np.ndarray:
    """Stored vectors of sorted global ``token_ids`` as float32 ``(n, dim)``."""
    parts = []
    for seg in snap.segments:
        lo, hi = np.searchsorted(token_ids, [seg.start, seg.stop])
        if hi > lo:
            parts.append(np.asarray(seg.array[token_ids[lo:hi] - seg.start], dtype=np.float32))
    return np.concatenate(parts)


def code_tokens(
    snap: Snapshot, codebook: Codebook, start: int, stop: int | None = None
) -> np.ndarray:
    """Cells of the token ids ``[start, stop)`` (``stop``: ``snap.next_token``)."""
    stop = snap.next_token if stop is None else stop
    parts = [np.zeros(0, dtype=np.uint16)]
    for seg in snap.segments:
        lo, hi = max(start, seg.start), min(stop, seg.stop)
        if hi > lo:
            parts.append(codebook.assign(seg.array[lo - seg.start : hi - seg.start]))
    return np.concatenate(parts)


# ---------------------------------------------------------------------------- files


def save(cells: TokenCells, folder: Path) -> tuple[str, str]:
    """Write centroids and codes durably under a fresh name; returns ``(name, sha256)``."""
    folder.mkdir(exist_ok=True)
    arrays = {
        "top": cells.codebook.top,
        "leaves": cells.codebook.leaves,
        "codes": cells.codes,
        "trained_tokens": np.int64(cells.trained_tokens),
        "fit": np.float64(cells.codebook.fit),
    }
    return write_fresh(folder, f"cells-{uuid.uuid4().hex}.npz", lambda h: np.savez(h, **arrays))


def entry(name: str, sha: str, cells: TokenCells, epoch: int) -> dict[str, Any]:
    """The SQLite ``cells`` meta entry of a saved file."""
    return {"file": name, "sha256": sha, "epoch": epoch, "tokens": len(cells.codes)}


def _load(path: Path, sha256: str, dim: int) -> tuple[Codebook, np.ndarray, int] | None:
    """The saved codebook, codes and trained-token count, or ``None`` (with a warning)."""
    if not path.is_file() or file_sha256(path) != sha256:
        logger.warning("token cells file %s is missing or damaged; retraining the cells", path)
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            top, leaves = data["top"], data["leaves"]
            codes, trained = data["codes"], int(data["trained_tokens"])
            fit = float(data["fit"])
    except Exception as exc:  # zip or array errors of a damaged file
        logger.warning("token cells file %s cannot be read (%s); retraining the cells", path, exc)
        return None
    shapes_ok = top.ndim == leaves.ndim == 2 and top.shape[1] == leaves.shape[1] == dim
    if not shapes_ok or codes.dtype != np.uint16 or leaves.shape[0] % max(len(top), 1):
        logger.warning("token cells file %s does not match the index; retraining the cells", path)
        return None
    return Codebook(top.astype(np.float32), leaves.astype(np.float32), fit), codes, trained


def attach(
    folder: Path, meta: Any, snap: Snapshot, dim: int, seed: int, *, enabled: bool
) -> tuple[TokenCells | None, bool]:
    """Cells for ``snap`` from the saved file named by ``meta`` (caught up), or trained
    (when ``enabled``); returns ``(cells, changed since saved)``."""
    loaded = None
    if _valid(meta) and meta["epoch"] == snap.epoch and meta["tokens"] <= snap.next_token:
        loaded = _load(folder / meta["file"], meta["sha256"], dim)
    if loaded is None:
        cells = train(snap, seed) if enabled else None
        return cells, cells is not None
    codebook, codes, trained = loaded
    if len(codes) != meta["tokens"] or np.any(codes >= codebook.n_cells):
        logger.warning("token cells file %s is inconsistent; retraining the cells", meta["file"])
        cells = train(snap, seed) if enabled else None
        return cells, cells is not None
    cells = TokenCells.from_codes(codebook, codes, trained)
    updated = current(cells, snap, seed) if enabled else catch_up(cells, snap)
    return updated, updated is not cells


def _valid(meta: Any) -> bool:
    types = {"file": str, "sha256": str, "epoch": int, "tokens": int}
    return (
        isinstance(meta, dict)
        and all(isinstance(meta.get(k), t) for k, t in types.items())
        and is_plain_name(meta["file"])
    )


def reference(text: str | None) -> dict[str, Any] | None:
    """The ``cells`` meta entry (JSON text), or ``None`` if absent or unusable (the
    cells are then retrained: derived data)."""
    if text is None:
        return None
    try:
        meta = json.loads(text)
    except ValueError:
        meta = None
    if not _valid(meta):
        logger.warning("ignoring an unusable token cells entry; retraining the cells")
        return None
    return dict(meta)
