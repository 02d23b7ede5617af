"""Shared set-up of the VoyagerIndex tests (test_index.py, test_index_damage.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from sauerkraut_rag.retrievers.voyager.index import VoyagerIndex
from tests.retrievers.helpers import random_docs

DIM = 16
STRATEGIES = ["fde", "tokens"]


def make(tmp_path: Path, name: str = "idx", **options: Any) -> VoyagerIndex:
    return VoyagerIndex.create(tmp_path / name, dim=options.pop("dim", DIM), **options)


def fill(index: VoyagerIndex, n: int, *, seed: int = 0, prefix: str = "d") -> dict[str, np.ndarray]:
    docs = random_docs(n, index.dim, seed=seed)
    ids = [f"{prefix}{i}" for i in range(n)]
    metas = [{"group": "rare" if i % 20 == 0 else "common", "n": i} for i in range(n)]
    index.add(ids, docs, metas, [f"payload {i}" for i in range(n)])
    return dict(zip(ids, docs, strict=True))


def state(index: VoyagerIndex, queries: list[np.ndarray]) -> tuple[Any, ...]:
    """Everything observable, to prove a failed call changed nothing."""
    ids = sorted(index._snap.id_to_pos)
    stored = index.get(ids, include_vectors=True)
    hits = index.search(queries, 5) if len(index) else []
    return (
        len(index),
        [(d.id, json.dumps(d.metadata), d.payload, d.multivector.tobytes()) for d in stored],
        [[(h.id, round(h.score, 5)) for h in q] for q in hits],
    )
