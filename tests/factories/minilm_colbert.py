"""Test-only PyLate-layout ColBERT checkpoint with real semantics (all-MiniLM-L6-v2 weights).

Random tiny checkpoints hide masking and prefix bugs: any wiring gives random
rankings.  The builder lives in ``examples/offline_model.py`` (the demo falls back
to the same model offline); this module re-exports it for the tests and adds the
hand-written quality corpus and its metric.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from examples.offline_model import (
    OUT_FEATURES,
    PROJECTION_SEED,
    build_minilm_colbert,
    minilm_source_folder,
)

__all__ = [
    "OUT_FEATURES",
    "PROJECTION_SEED",
    "QUALITY_CORPUS",
    "build_minilm_colbert",
    "load_quality_corpus",
    "minilm_source_folder",
    "recall_at_1",
]

QUALITY_CORPUS = Path(__file__).resolve().parents[1] / "data" / "quality_corpus.json"
"""Hand-written corpus: ``documents`` (id, text, metadata) and ``queries`` (query, relevant)."""


def load_quality_corpus() -> dict[str, Any]:
    """The quality corpus (>= 30 documents, >= 30 queries, one relevant document each)."""
    data: dict[str, Any] = json.loads(QUALITY_CORPUS.read_text(encoding="utf-8"))
    if len(data["documents"]) < 30 or len(data["queries"]) < 30:
        raise ValueError(f"{QUALITY_CORPUS} must hold at least 30 documents and 30 queries")
    return data


def recall_at_1(corpus: dict[str, Any], top_ids: list[str | None]) -> float:
    """Share of queries whose top result (``top_ids[i]``, ``None`` = nothing) is relevant."""
    relevant = [q["relevant"] for q in corpus["queries"]]
    return sum(got == want for got, want in zip(top_ids, relevant, strict=True)) / len(relevant)
