"""Exact MaxSim scorer against a brute-force Python loop."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

from sauerkraut_rag.errors import DimensionMismatchError, InvalidInputError, InvalidInputTypeError
from sauerkraut_rag.retrievers import maxsim as maxsim_module
from sauerkraut_rag.retrievers.maxsim import (
    maxsim,
    maxsim_packed,
    maxsim_topk,
    pack,
    topk_from_scores,
)

DIM = 16


def brute_maxsim(queries: list[np.ndarray], documents: list[np.ndarray]) -> np.ndarray:
    """Reference: float64 triple loop; empty documents score 0."""
    out = np.zeros((len(queries), len(documents)))
    for qi, query in enumerate(queries):
        for di, doc in enumerate(documents):
            total = 0.0
            for q_tok in query:
                if len(doc):
                    total += max(
                        float(np.dot(q_tok.astype(np.float64), d.astype(np.float64))) for d in doc
                    )
            out[qi, di] = total
    return out


def ragged(rng: np.random.Generator, n: int, lengths: list[int] | None = None) -> list[np.ndarray]:
    if lengths is None:
        lengths = [int(x) for x in rng.integers(0, 12, n)]
    return [rng.standard_normal((length, DIM)).astype(np.float32) for length in lengths]


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


def test_doctest_runs() -> None:
    result = doctest.testmod(maxsim_module, raise_on_error=False)
    assert result.attempted >= 2
    assert result.failed == 0


def test_matches_brute_force_with_empty_and_single_token_docs(rng: np.random.Generator) -> None:
    docs = ragged(rng, 0, lengths=[0, 1, 5, 0, 11, 1, 3, 0])
    queries = ragged(rng, 0, lengths=[1, 4, 7])
    got = maxsim(queries, docs)
    assert got.dtype == np.float32
    assert got.shape == (3, 8)
    np.testing.assert_allclose(got, brute_maxsim(queries, docs), rtol=1e-5, atol=1e-5)
    assert np.all(got[:, [0, 3, 7]] == 0.0)


@pytest.mark.parametrize("seed", range(5))
def test_random_ragged_against_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    docs = ragged(rng, 25)
    queries = ragged(rng, 4, lengths=[int(x) for x in rng.integers(1, 9, 4)])
    np.testing.assert_allclose(
        maxsim(queries, docs), brute_maxsim(queries, docs), rtol=1e-5, atol=1e-5
    )


@pytest.mark.parametrize("budget", [4, 40, 64 * 7, 4 * 30, 4 * 1000])
def test_tiny_chunk_budgets_give_identical_results(rng: np.random.Generator, budget: int) -> None:
    docs = ragged(rng, 0, lengths=[0, 40, 1, 3, 0, 25, 2, 9, 0])
    queries = ragged(rng, 0, lengths=[3, 0, 8, 1])
    reference = maxsim(queries, docs)
    chunked = maxsim(queries, docs, chunk_budget_bytes=budget)
    # chunking regroups float32 sums only across query-token groups; maxima are exact
    np.testing.assert_allclose(chunked, reference, rtol=1e-6, atol=1e-5)
    np.testing.assert_allclose(chunked, brute_maxsim(queries, docs), rtol=1e-5, atol=1e-5)


def test_chunked_results_equal_unchunked_exactly_when_queries_fit(
    rng: np.random.Generator,
) -> None:
    docs = ragged(rng, 60)
    queries = ragged(rng, 3, lengths=[4, 4, 4])
    # 12 query rows x 4 bytes x >=1024 tokens fits, so only documents are chunked
    big = maxsim(queries, docs, chunk_budget_bytes=1 << 24)
    small = maxsim(queries, docs, chunk_budget_bytes=12 * 4 * 1024)
    np.testing.assert_array_equal(small, big)


def test_oversized_single_document_is_split(rng: np.random.Generator) -> None:
    docs = ragged(rng, 0, lengths=[3, 500, 2])
    queries = ragged(rng, 0, lengths=[2])
    got = maxsim(queries, docs, chunk_budget_bytes=8 * 4 * 16)  # < one doc's block
    np.testing.assert_allclose(got, brute_maxsim(queries, docs), rtol=1e-5, atol=1e-5)


def test_float16_inputs(rng: np.random.Generator) -> None:
    docs = [d.astype(np.float16) for d in ragged(rng, 15)]
    queries = [q.astype(np.float16) for q in ragged(rng, 2, lengths=[3, 5])]
    tokens, offsets = pack(docs)
    assert tokens.dtype == np.float16
    got = maxsim_packed(queries, tokens, offsets, chunk_budget_bytes=4 * 8 * 7)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, brute_maxsim(queries, docs), rtol=1e-4, atol=1e-3)


def test_pack_layout_and_mixed_dtype(rng: np.random.Generator) -> None:
    docs = [
        rng.standard_normal((2, DIM)).astype(np.float16),
        np.zeros((0, DIM), np.float32),
        rng.standard_normal((3, DIM)).astype(np.float32),
    ]
    tokens, offsets = pack(docs)
    assert tokens.dtype == np.float32
    assert offsets.dtype == np.int64
    assert offsets.tolist() == [0, 2, 2, 5]
    np.testing.assert_array_equal(tokens[2:5], docs[2])
    np.testing.assert_array_equal(tokens[0:2], docs[0].astype(np.float32))


def test_packed_equals_list_api(rng: np.random.Generator) -> None:
    docs = ragged(rng, 30)
    queries = ragged(rng, 3, lengths=[2, 6, 3])
    tokens, offsets = pack(docs)
    np.testing.assert_array_equal(maxsim_packed(queries, tokens, offsets), maxsim(queries, docs))


def test_empty_documents_list_and_empty_query(rng: np.random.Generator) -> None:
    queries = ragged(rng, 0, lengths=[3, 0])
    assert maxsim(queries, []).shape == (2, 0)
    docs = ragged(rng, 0, lengths=[4, 2])
    got = maxsim(queries, docs)
    assert np.all(got[1] == 0.0)
    indices, scores = maxsim_topk(queries, [], k=3)
    assert indices.shape == (2, 0) and scores.shape == (2, 0)


def test_topk_matches_full_sort(rng: np.random.Generator) -> None:
    docs = ragged(rng, 40)
    queries = ragged(rng, 3, lengths=[3, 4, 5])
    full = brute_maxsim(queries, docs)
    indices, scores = maxsim_topk(queries, docs, k=7)
    assert indices.dtype == np.int64 and scores.dtype == np.float32
    assert indices.shape == scores.shape == (3, 7)
    for row in range(3):
        expected = sorted(range(40), key=lambda j, r=row: (-full[r, j], j))[:7]
        assert indices[row].tolist() == expected
        np.testing.assert_allclose(scores[row], full[row, expected], rtol=1e-5, atol=1e-5)


def test_topk_ties_prefer_lower_index_and_k_above_n_docs() -> None:
    scores = np.array([[1.0, 3.0, 3.0, 0.0, 3.0, 2.0], [5.0, 5.0, 5.0, 5.0, 5.0, 5.0]], np.float32)
    idx, vals = topk_from_scores(scores, 2)
    assert idx.tolist() == [[1, 2], [0, 1]]
    assert vals.tolist() == [[3.0, 3.0], [5.0, 5.0]]
    idx, vals = topk_from_scores(scores, 4)
    assert idx.tolist() == [[1, 2, 4, 5], [0, 1, 2, 3]]
    idx, vals = topk_from_scores(scores, 100)
    assert idx.tolist() == [[1, 2, 4, 5, 0, 3], [0, 1, 2, 3, 4, 5]]
    assert vals[0].tolist() == [3.0, 3.0, 3.0, 2.0, 1.0, 0.0]


def test_topk_sorts_minus_inf_last() -> None:
    scores = np.array([[-np.inf, 1.0, -np.inf, 0.5]], np.float32)
    idx, _ = topk_from_scores(scores, 3)
    assert idx.tolist() == [[1, 3, 0]]


@pytest.mark.parametrize("k", [0, -3])
def test_k_must_be_positive(rng: np.random.Generator, k: int) -> None:
    with pytest.raises(InvalidInputError, match="k >= 1"):
        maxsim_topk(ragged(rng, 1, [2]), ragged(rng, 2, [2, 2]), k)
    with pytest.raises(InvalidInputError):
        topk_from_scores(np.zeros((1, 3), np.float32), k)


def test_k_must_be_int() -> None:
    with pytest.raises(InvalidInputTypeError):
        topk_from_scores(np.zeros((1, 3), np.float32), 2.0)  # type: ignore[arg-type]


def test_dimension_mismatch(rng: np.random.Generator) -> None:
    docs = ragged(rng, 3, [2, 2, 2])
    with pytest.raises(DimensionMismatchError, match="dim"):
        maxsim([np.ones((2, DIM + 1), np.float32)], docs)
    with pytest.raises(DimensionMismatchError):
        pack([np.ones((2, DIM), np.float32), np.ones((2, 3), np.float32)])
    with pytest.raises(DimensionMismatchError):
        maxsim([np.ones((2, DIM), np.float32), np.ones((2, 4), np.float32)], docs)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_rejected(rng: np.random.Generator, bad: float) -> None:
    docs = ragged(rng, 3, [2, 2, 2])
    broken = docs[1].copy()
    broken[1, 3] = bad
    query = ragged(rng, 1, [2])
    with pytest.raises(InvalidInputError, match="NaN or inf"):
        maxsim(query, [docs[0], broken])
    with pytest.raises(InvalidInputError, match="NaN or inf"):
        maxsim([broken], docs)
    tokens = np.concatenate([docs[0], broken])
    with pytest.raises(InvalidInputError, match="NaN or inf"):
        maxsim_packed(query, tokens, np.array([0, 2, 4]))


def test_wrong_types_and_shapes(rng: np.random.Generator) -> None:
    docs = ragged(rng, 2, [2, 2])
    with pytest.raises(InvalidInputTypeError):
        maxsim([[[1.0] * DIM]], docs)  # nested list instead of an array
    with pytest.raises(InvalidInputTypeError):
        maxsim("query", docs)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputTypeError):
        maxsim([np.ones((2, DIM), np.int64)], docs)
    with pytest.raises(InvalidInputError, match="2-D"):
        maxsim([np.ones(DIM, np.float32)], docs)
    with pytest.raises(InvalidInputError, match="offsets"):
        maxsim_packed(docs, np.concatenate(docs), np.array([0, 1, 3]))
    with pytest.raises(InvalidInputError):
        maxsim(docs, docs, chunk_budget_bytes=0)


def test_float64_input_is_accepted(rng: np.random.Generator) -> None:
    docs = ragged(rng, 5)
    queries = ragged(rng, 2, [3, 3])
    got = maxsim([q.astype(np.float64) for q in queries], [d.astype(np.float64) for d in docs])
    np.testing.assert_allclose(got, maxsim(queries, docs), rtol=1e-6, atol=1e-6)
