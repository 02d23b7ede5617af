"""ColLFM2 parity with the reference implementation (sauerkrautlm-colpali 0.1.0).

The golden arrays in ``tests/fixtures/collfm2_tiny`` were produced by the
reference's own ``ColLFM2``/``ColLFM2Processor`` on the committed tiny checkpoint
(see ``tests/fixtures/make_collfm2_golden.py`` for how, and to regenerate them):
pages in one reference batch (its collation), queries in one left-padded batch, under
**transformers 5.x**, so the encoder is asked for 5.x processing here (the checkpoint
records no transformers version, which means 4.57 by default).  The 4.57.1 goldens are
in ``test_published_env.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sauerkraut_rag import load_encoder
from sauerkraut_rag.encoders.base import MultiVectorEncoder
from tests.hub_cache import install_in_hf_cache, use_offline_cache

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "collfm2_tiny"
BASE_ID = "LiquidAI/LFM2-VL-450M"


@pytest.fixture
def encoder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> MultiVectorEncoder:
    """The committed checkpoint; its base_model comes from a fake offline hub cache."""
    cache = tmp_path / "hub"
    install_in_hf_cache(FIXTURE / "ck-base", BASE_ID, cache)
    use_offline_cache(monkeypatch, cache)
    return load_encoder(FIXTURE / "ck", device="cpu", dtype="float32", processing="transformers-5")


def golden(kind: str, n: int) -> list[np.ndarray]:
    return [np.load(FIXTURE / f"golden_{kind}_{i}.npy", allow_pickle=False) for i in range(n)]


def assert_matches(got: list[np.ndarray], want: list[np.ndarray]) -> None:
    assert len(got) == len(want)
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        assert g.shape == w.shape, f"item {i}: {g.shape} vs reference {w.shape}"
        np.testing.assert_allclose(g, w, atol=1e-5, rtol=0, err_msg=f"item {i}")


def test_pages_match_reference(encoder: MultiVectorEncoder) -> None:
    paths = sorted((FIXTURE / "pages").glob("page_*.png"))
    pages = [Image.open(p) for p in paths]
    want = golden("pages", len(pages))
    assert want[2].shape[0] > 512  # the multi-tile page (2 tiles + thumbnail) is covered
    assert_matches(encoder.encode_documents(pages, batch_size=2), want)
    assert_matches([encoder.encode_document(paths[2])], want[2:])


def test_queries_match_reference(encoder: MultiVectorEncoder) -> None:
    queries = json.loads((FIXTURE / "queries.json").read_text(encoding="utf-8"))
    want = golden("queries", len(queries))
    assert_matches(encoder.encode_queries(queries, batch_size=2), want)
    assert_matches([encoder.encode_query(queries[1])], want[1:2])
