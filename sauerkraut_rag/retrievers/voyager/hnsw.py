"""The Voyager HNSW graph of an index: a derived structure, rebuilt from stored vectors.

Labels are document rows (``"fde"`` strategy) or global token ids (``"tokens"``). The
graph file is saved atomically under a fresh name and recorded in SQLite with its
SHA-256, the epoch, and the ``next_row``/``generation`` it reflects. On open, a
missing, stale or damaged file is rebuilt; an intact one is caught up by inserting the
documents added and marking the ones deleted since it was saved.

Determinism: Voyager inserts a batch on one thread per core, and the graph then depends
on the order in which the threads happened to insert. Graphs built or caught up on open
are therefore inserted on one thread (``threads=1``), in row order, from a fixed seed:
every process that opens the same saved index builds the same graph, whatever its
thread count. Writes of an open index insert in parallel; their graph is what gets saved.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import voyager

from sauerkraut_rag.retrievers.voyager.config import IndexConfig
from sauerkraut_rag.retrievers.voyager.locks import RWLock
from sauerkraut_rag.retrievers.voyager.state import Snapshot
from sauerkraut_rag.retrievers.voyager.storage import (
    read_nofollow,
    write_fresh,
)

logger = logging.getLogger(__name__)

_STORAGE = {
    "float32": voyager.StorageDataType.Float32,
    "float8": voyager.StorageDataType.Float8,
    "e4m3": voyager.StorageDataType.E4M3,
}
_INSERT_TOKENS = 8192
"""Token vectors converted and inserted per HNSW batch (also the write-lock granularity)."""
_INSERT_DOCS_FDE = 256


_FLOAT8_SPREAD = 4.0
"""Float8 stores fixed-point values in [-1, 1]: scaled FDE entries (~N(0, 1)) are divided by
this and clipped, i.e. cut at 4 sigma (measured: same recall as 3 and 5)."""


def _space(config: IndexConfig) -> voyager.Space:
    """Cosine, except for FDEs in 8-bit storage (normalised + scaled, then Euclidean).

    Tokens are unit length, and for FDEs cosine ranks better than inner product
    (measured). Unit-length FDEs have entries around ``1/sqrt(dim)``, below the 8-bit
    formats' resolution, so :func:`fde_for_hnsw` scales them up; on vectors of equal
    length Euclidean distance gives the same order as cosine.
    """
    if config.strategy == "fde" and config.storage != "float32":
        return voyager.Space.Euclidean
    return voyager.Space.Cosine


def fde_for_hnsw(config: IndexConfig, vectors: np.ndarray) -> np.ndarray:
    """FDE vectors ``(n, hnsw_dim)`` as inserted into / queried against the graph."""
    vectors = np.asarray(vectors, dtype=np.float32)
    if config.storage == "float32":
        return np.ascontiguousarray(vectors)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    unit = vectors / np.maximum(norms, np.finfo(np.float32).tiny)
    scaled = unit * np.float32(np.sqrt(vectors.shape[1]))  # entries ~ N(0, 1)
    if config.storage == "float8":
        scaled = np.clip(scaled / _FLOAT8_SPREAD, -1.0, 1.0)
    return np.ascontiguousarray(scaled, dtype=np.float32)


def new_hnsw(config: IndexConfig) -> voyager.Index:
    """An empty graph with the configured space, dimension, M and storage type."""
    return voyager.Index(
        _space(config),
        num_dimensions=config.hnsw_dim,
        M=config.hnsw_m,
        ef_construction=config.ef_construction,
        random_seed=config.seed,
        storage_data_type=_STORAGE[config.storage],
    )


def _batches(
    snap: Snapshot, positions: np.ndarray, config: IndexConfig, muvera: Any
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``(vectors float32, labels uint64)`` batches for the documents at ``positions``."""
    if config.strategy == "fde":
        for lo in range(0, len(positions), _INSERT_DOCS_FDE):
            part = positions[lo : lo + _INSERT_DOCS_FDE]
            docs = [np.asarray(snap.doc_tokens(int(p)), dtype=np.float32) for p in part]
            fde = fde_for_hnsw(config, muvera.encode_documents(docs))
            yield fde, snap.labels_of(part, "fde")
        return
    lo = 0
    while lo < len(positions):
        hi, total = lo + 1, int(snap.lengths[positions[lo]])
        while hi < len(positions) and total + int(snap.lengths[positions[hi]]) <= _INSERT_TOKENS:
            total += int(snap.lengths[positions[hi]])
            hi += 1
        part = positions[lo:hi]
        tokens, _ = snap.gather(part)
        yield np.asarray(tokens, dtype=np.float32), snap.labels_of(part, "tokens")
        lo = hi


def insert(
    hnsw: voyager.Index,
    snap: Snapshot,
    positions: np.ndarray,
    config: IndexConfig,
    muvera: Any,
    lock: RWLock | None,
    *,
    threads: int = -1,
) -> int:
    """Insert the documents at ``positions``; returns the number of labels added.

    With a ``lock``, each batch is inserted under its write side, so concurrent searches
    (which query under the read side) interleave with a long insert. ``threads=1``
    inserts in order (a deterministic graph); ``-1`` uses one thread per core.
    """
    added = 0
    for vectors, labels in _batches(snap, np.asarray(positions, dtype=np.int64), config, muvera):
        if lock is None:
            hnsw.add_items(vectors, ids=labels, num_threads=threads)
        else:
            with lock.write():
                hnsw.add_items(vectors, ids=labels, num_threads=threads)
        added += len(labels)
    return added


def mark_deleted(hnsw: voyager.Index, labels: np.ndarray, lock: RWLock | None) -> None:
    """Hide labels from HNSW results (ignores labels that are absent or already hidden)."""
    if lock is None:
        _mark(hnsw, labels)
    else:
        with lock.write():
            _mark(hnsw, labels)


def _mark(hnsw: voyager.Index, labels: np.ndarray) -> None:
    for label in labels.tolist():
        with contextlib.suppress(RuntimeError):
            hnsw.mark_deleted(int(label))


def build(snap: Snapshot, config: IndexConfig, muvera: Any, *, threads: int = -1) -> voyager.Index:
    """A fresh graph holding every live document of ``snap`` (``threads``: see insert)."""
    hnsw = new_hnsw(config)
    live = np.flatnonzero(snap.live)
    if live.size:
        logger.info(
            "building the HNSW graph for %d documents (%s strategy)", live.size, config.strategy
        )
        insert(hnsw, snap, live, config, muvera, None, threads=threads)
    return hnsw


def save(hnsw: voyager.Index, folder: Path) -> tuple[str, str]:
    """Write the graph durably under a fresh name; returns ``(file name, sha256)``.

    Voyager writes through a Python file object, so a full disk raises ``OSError`` with
    its errno, and the file is created without following links.
    """
    return write_fresh(folder, f"hnsw-{uuid.uuid4().hex}.voy", hnsw.save)


def load(path: Path, sha256: str, config: IndexConfig) -> voyager.Index | None:
    """The saved graph, or ``None`` (with a warning) if missing, damaged or mismatched.

    The file is read without following links and checked before Voyager parses it.
    """
    try:
        data = read_nofollow(path)
    except FileNotFoundError:
        logger.warning("HNSW file %s is missing; rebuilding it from the stored vectors", path)
        return None
    except OSError as exc:
        logger.warning("HNSW file %s cannot be read (%s); rebuilding it", path, exc)
        return None
    if hashlib.sha256(data).hexdigest() != sha256:
        logger.warning(
            "HNSW file %s fails its checksum; rebuilding it from the stored vectors", path
        )
        return None
    try:
        hnsw = voyager.Index.load(io.BytesIO(data))
    except Exception as exc:  # voyager raises RuntimeError/ValueError on bad files
        logger.warning("HNSW file %s cannot be loaded (%s); rebuilding it", path, exc)
        return None
    expected = (config.hnsw_dim, _space(config), _STORAGE[config.storage])
    if (hnsw.num_dimensions, hnsw.space, hnsw.storage_data_type) != expected:
        logger.warning("HNSW file %s does not match the index settings; rebuilding it", path)
        return None
    return hnsw
