"""Parity with the reference ``sauerkrautlm-colpali`` 0.1.0 ColQwen3 on a committed tiny checkpoint.

The golden vectors were produced by ``tests/fixtures/make_colqwen3_golden.py`` running
the reference ``ColQwen3`` + ``ColQwen3Processor`` (batched, left-padded) and stripping
padding with the processor's attention mask.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sauerkraut_rag import load_encoder

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
CASES = json.loads((FIXTURES / "colqwen3_golden_cases.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def golden() -> dict[str, np.ndarray]:
    with np.load(FIXTURES / "colqwen3_golden.npz", allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


@pytest.mark.parametrize("case", CASES["cases"], ids=[c["name"] for c in CASES["cases"]])
def test_matches_reference_implementation(
    case: dict[str, Any], golden: dict[str, np.ndarray]
) -> None:
    encoder = load_encoder(
        FIXTURES / "colqwen3_tiny", device="cpu", dtype="float32", **case["options"]
    )
    if case["kind"] == "queries":
        ours = encoder.encode_queries(CASES["queries"], batch_size=2)
    else:
        pages = [FIXTURES / "colqwen3_pages" / name for name in CASES["pages"]]
        ours = encoder.encode_documents(pages, batch_size=3)
    expected = [golden[f"{case['name']}/{i}"] for i in range(len(ours))]
    assert f"{case['name']}/{len(ours)}" not in golden
    for mine, theirs in zip(ours, expected, strict=True):
        assert mine.shape == theirs.shape
        np.testing.assert_allclose(mine, theirs, atol=1e-5, rtol=0)
