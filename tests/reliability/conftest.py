"""Fixtures of the reliability suite: tiny local checkpoints and a small populated index."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from sauerkraut_rag import MultiVectorEncoder, load_encoder
from sauerkraut_rag.retrievers.voyager.index import VoyagerIndex
from tests.reliability.support import IndexHolder

TEXTS = [
    "Berlin ist die Hauptstadt von Deutschland.",
    "Paris is the capital of France.",
    "Das Wetter heute ist schön und grün.",
    "The girl walks down the green street.",
    "Die Suche nach einer Antwort auf die Frage.",
    "Where is the beautiful house in the city?",
    "Le capital de la France est Paris.",
    "Heute morgen ist das Haus grün.",
]
"""The documents of the small index every matrix case starts from."""


@pytest.fixture(scope="session")
def colbert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random PyLate-layout ColBERT checkpoint (dim 16)."""
    from tests.factories.colbert import build_tiny_colbert

    return build_tiny_colbert(tmp_path_factory.mktemp("rel-colbert") / "model", seed=3)


@pytest.fixture(scope="session")
def text_encoder(colbert_dir: Path) -> MultiVectorEncoder:
    """The tiny ColBERT loaded through the public entry point."""
    return load_encoder(colbert_dir, device="cpu", dtype="float32")


@pytest.fixture(scope="session")
def corpus_vectors(text_encoder: MultiVectorEncoder) -> list[np.ndarray]:
    """``TEXTS`` encoded once: ``[(n_tokens_i, 16), ...]``."""
    return text_encoder.encode_documents(TEXTS)


@pytest.fixture
def holder(tmp_path: Path, corpus_vectors: list[np.ndarray]) -> Iterator[IndexHolder]:
    """An index of the eight ``TEXTS`` (ids ``t0``..``t7``, metadata ``topic`` and ``n``)."""
    folder = tmp_path / "index"
    index = VoyagerIndex.create(folder, dim=corpus_vectors[0].shape[1])
    ids = [f"t{i}" for i in range(len(TEXTS))]
    metas = [{"topic": "de" if i % 2 == 0 else "en", "n": i} for i in range(len(TEXTS))]
    index.add(ids, corpus_vectors, metas, TEXTS)
    index.close()  # persist the HNSW graph too, as a real folder would have it
    held = IndexHolder(folder, VoyagerIndex.open(folder), ids)
    yield held
    held.index.close()


@pytest.fixture(scope="session")
def page_encoder(tmp_path_factory: pytest.TempPathFactory) -> MultiVectorEncoder:
    """A tiny random ColLFM2 page model (dim 128)."""
    from tests.factories.collfm2 import build_tiny_collfm2

    folder = build_tiny_collfm2(tmp_path_factory.mktemp("rel-collfm2") / "model")
    return load_encoder(folder, device="cpu", dtype="float32")


@pytest.fixture(scope="session")
def broken_checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Checkpoint folders built on first use, keyed ``"<family>/<variant>"``."""
    root = tmp_path_factory.mktemp("rel-broken")

    class Lazy(dict[str, Path]):
        def __missing__(self, key: str) -> Path:
            family, variant = key.split("/")
            folder = root / family / variant
            if family == "colbert":
                from tests.factories.colbert import build_tiny_colbert

                path = build_tiny_colbert(folder, variant=variant, seed=3)
            elif family == "collfm2":
                from tests.factories.collfm2 import build_tiny_collfm2

                path = build_tiny_collfm2(folder, layout=variant)  # type: ignore[arg-type]
            else:
                from tests.factories.colqwen3 import break_checkpoint, build_tiny_colqwen3

                path = break_checkpoint(build_tiny_colqwen3(folder), variant)  # type: ignore[arg-type]
            self[key] = path
            return path

    return Lazy()
