"""Checks run after a writer was SIGKILLed: whole-state match, exact search, no orphans.

Shared by ``tests/retrievers/test_index_crash.py`` and
``tests/reliability/test_crash_safety.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from sauerkraut_rag.retrievers.voyager.index import VoyagerIndex
from tests.retrievers.helpers import assert_matches_brute_force, unit_rows

Model = Mapping[str, tuple[np.ndarray, dict[str, Any]]]
"""Expected documents: id -> (float32 vectors ``(n_tokens, dim)``, metadata)."""


def holds_exactly(index: VoyagerIndex, model: Model) -> bool:
    """Whether ``index`` stores exactly ``model``'s ids, metadata and (float16) vectors."""
    if set(index._snap.id_to_pos) != set(model):
        return False
    for doc in index.get(sorted(model), include_vectors=True):
        vec, meta = model[doc.id]
        if doc.metadata != meta or not np.array_equal(doc.multivector, vec.astype(np.float16)):
            return False
    return True


def assert_search_is_exact(index: VoyagerIndex, model: Model, seed: int) -> None:
    """Search agrees with brute-force MaxSim on the full-scan and on the HNSW path."""
    docs = {doc_id: vec for doc_id, (vec, _) in model.items()}
    k = min(5, len(docs))
    if not k:
        assert index.search([unit_rows(np.random.default_rng(seed), 2, index.dim)], 3) == [[]]
        return
    rng = np.random.default_rng(seed)
    queries = [unit_rows(rng, int(rng.integers(1, 5)), index.dim) for _ in range(2)]
    stored = index.config.exact_threshold
    for threshold in (10**6, 0):  # exact full scan, then HNSW candidates + exact rerank
        index.configure(exact_threshold=threshold)
        for query, hits in zip(queries, index.search(queries, k), strict=True):
            assert_matches_brute_force(hits, query, docs, k)
    index.configure(exact_threshold=stored)


def assert_no_orphans(folder: Path, index: VoyagerIndex) -> None:
    """After a writable open, every vector file is referenced (orphans were swept)."""
    referenced = {s.file for s in index._snap.segments}
    assert {p.name for p in (folder / "vectors").iterdir()} == referenced
