"""Parity with PyLate 1.6.0: golden embeddings from ``tests/fixtures/make_colbert_golden.py``.

The committed tiny checkpoint (15m layout) was encoded by the real PyLate in a
throwaway environment; our encoder must give the same tokens and vectors within
1e-5 for queries with and without expansion, documents with skiplist tokens,
truncated inputs, umlauts and mixed-length batches.
"""

from __future__ import annotations

import json
import string
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import sauerkraut_rag

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
CHECKPOINT = FIXTURES / "colbert_tiny"
CASES = [
    c
    for c in json.loads((FIXTURES / "colbert_golden_cases.json").read_text(encoding="utf-8"))
    if "name" in c
]


@pytest.fixture(scope="module")
def golden() -> dict[str, np.ndarray]:
    with np.load(FIXTURES / "colbert_golden.npz", allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_matches_pylate(case: dict[str, Any], golden: dict[str, np.ndarray]) -> None:
    encoder = sauerkraut_rag.load_encoder(CHECKPOINT, device="cpu", **case["options"])
    encode = encoder.encode_queries if case["is_query"] else encoder.encode_documents
    ours = encode(case["texts"], batch_size=case["batch_size"], show_progress=False)
    assert len(ours) == case["count"]
    for i, got in enumerate(ours):
        want = golden[f"{case['name']}__{i}"]
        assert got.dtype == np.float32
        assert got.shape == want.shape, f"item {i} ({case['texts'][i]!r})"
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5, err_msg=f"item {i}")


def test_golden_covers_the_spec_cases(golden: dict[str, np.ndarray]) -> None:
    """The fixture really exercises truncation, expansion and the skiplist."""
    by_name = {c["name"]: c for c in CASES}
    expansion = by_name["queries_expansion"]
    lengths = {golden[f"queries_expansion__{i}"].shape[0] for i in range(expansion["count"])}
    assert lengths == {16}  # every expanded query has exactly query_length vectors
    no_exp = [golden[f"queries_no_expansion__{i}"].shape[0] for i in range(expansion["count"])]
    assert min(no_exp) < max(no_exp) <= 16  # short queries are not padded; long ones truncated
    docs = by_name["documents"]
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(CHECKPOINT))
    skip = set(tokenizer.convert_tokens_to_ids(list(string.punctuation)))
    punct = docs["texts"].index(next(t for t in docs["texts"] if t.startswith("(((")))
    ids = tokenizer(docs["texts"][punct])["input_ids"]
    kept = sum(i not in skip for i in ids) + 1  # + the [D] prefix
    assert kept < len(ids) and golden[f"documents__{punct}"].shape[0] == kept
    doc_lengths = [golden[f"documents__{i}"].shape[0] for i in range(docs["count"])]
    assert max(doc_lengths) <= 48
    long_doc = golden[f"documents__{3}"]  # three copies of a long German text: truncated
    assert long_doc.shape[0] < 48  # punctuation dropped from a 48-token window
