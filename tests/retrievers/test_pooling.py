"""Hierarchical token pooling: shapes, identity, normalisation, fidelity of MaxSim."""

from __future__ import annotations

import numpy as np
import pytest

from sauerkraut_rag.errors import InvalidInputError, InvalidInputTypeError
from sauerkraut_rag.retrievers.maxsim import maxsim
from sauerkraut_rag.retrievers.pooling import pool_many, pool_tokens


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def clustered_doc(rng: np.random.Generator, n_groups: int, per_group: int, dim: int = 32):
    """``n_groups`` tight groups of near-duplicate tokens, interleaved, plus their centres."""
    centers = unit(rng.standard_normal((n_groups, dim)))
    labels = np.tile(np.arange(n_groups), per_group)
    noise = 0.05 * rng.standard_normal((labels.size, dim)) / np.sqrt(dim)
    return unit(centers[labels] + noise), labels, centers


@pytest.mark.parametrize(("n", "factor", "expected"), [(20, 2, 10), (21, 3, 7), (5, 10, 1)])
def test_output_shape_and_unit_rows(n: int, factor: int, expected: int) -> None:
    rng = np.random.default_rng(0)
    vectors = unit(rng.standard_normal((n, 16)))
    pooled = pool_tokens(vectors, factor)
    assert pooled.shape == (expected, 16)
    assert pooled.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(pooled, axis=1), 1.0, rtol=1e-5)


def test_recovers_groups_as_their_normalised_means() -> None:
    rng = np.random.default_rng(1)
    doc, labels, _ = clustered_doc(rng, n_groups=6, per_group=4)
    pooled = pool_tokens(doc, 4)
    expected = unit(np.stack([doc[labels == g].mean(axis=0) for g in range(6)]))
    # groups are interleaved 0..5, so first-token order is group order
    np.testing.assert_allclose(pooled, expected, atol=1e-5)


def test_pool_factor_one_is_identity_copy() -> None:
    rng = np.random.default_rng(2)
    vectors = rng.standard_normal((9, 8)).astype(np.float32)  # not even normalised
    pooled = pool_tokens(vectors, 1)
    np.testing.assert_array_equal(pooled, vectors)
    assert pooled is not vectors


def test_protected_tokens_are_kept_verbatim() -> None:
    rng = np.random.default_rng(3)
    vectors = unit(rng.standard_normal((22, 8)))
    pooled = pool_tokens(vectors, 4, protected_tokens=2)
    assert pooled.shape == (2 + 20 // 4, 8)
    np.testing.assert_array_equal(pooled[:2], vectors[:2])
    assert pool_tokens(vectors, 4, protected_tokens=22).shape == (22, 8)


def test_small_inputs_and_float16() -> None:
    one = np.ones((1, 4), np.float32)
    np.testing.assert_array_equal(pool_tokens(one, 3), one)
    assert pool_tokens(np.zeros((0, 4), np.float32), 2).shape == (0, 4)
    rng = np.random.default_rng(4)
    half = unit(rng.standard_normal((12, 8))).astype(np.float16)
    pooled = pool_tokens(half, 3)
    assert pooled.dtype == np.float16 and pooled.shape == (4, 8)


def test_deterministic() -> None:
    rng = np.random.default_rng(5)
    vectors = unit(rng.standard_normal((50, 16)))
    np.testing.assert_array_equal(pool_tokens(vectors, 3), pool_tokens(vectors.copy(), 3))


def test_maxsim_of_pooled_documents_stays_close() -> None:
    rng = np.random.default_rng(6)
    docs = [clustered_doc(rng, int(rng.integers(5, 15)), 3)[0] for _ in range(30)]
    queries = [
        unit(d[rng.choice(len(d), 6)] + 0.3 * rng.standard_normal((6, 32)) / 6) for d in docs[:8]
    ]
    pooled = pool_many(docs, 3)
    assert sum(len(p) for p in pooled) * 3 == sum(len(d) for d in docs)
    exact, approx = maxsim(queries, docs), maxsim(queries, pooled)
    own = np.arange(8)  # query i was sampled from document i
    np.testing.assert_allclose(approx[own, own], exact[own, own], rtol=0.01)
    np.testing.assert_allclose(approx, exact, rtol=0.1)
    assert np.array_equal(exact.argmax(axis=1), approx.argmax(axis=1))
    # baseline: averaging arbitrary token triples loses far more than clustering does
    arbitrary = [unit(d.reshape(-1, 3, d.shape[1]).mean(axis=1)) for d in docs]
    baseline = maxsim(queries, arbitrary)
    assert np.abs(baseline - exact).mean() > 5 * np.abs(approx - exact).mean()


def test_pool_many_matches_single_calls() -> None:
    rng = np.random.default_rng(7)
    docs = [unit(rng.standard_normal((n, 8))) for n in (4, 9, 1)]
    for got, doc in zip(pool_many(docs, 2), docs, strict=True):
        np.testing.assert_array_equal(got, pool_tokens(doc, 2))


def test_bad_arguments() -> None:
    vectors = np.ones((4, 4), np.float32)
    with pytest.raises(InvalidInputError, match="pool_factor >= 1"):
        pool_tokens(vectors, 0)
    with pytest.raises(InvalidInputTypeError):
        pool_tokens(vectors, 2.5)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError):
        pool_tokens(vectors, 2, protected_tokens=-1)
    with pytest.raises(InvalidInputError, match="2-D"):
        pool_tokens(np.ones(4, np.float32), 2)
    with pytest.raises(InvalidInputTypeError):
        pool_tokens([[1.0, 2.0]], 2)  # type: ignore[arg-type]
    broken = vectors.copy()
    broken[1, 1] = np.inf
    with pytest.raises(InvalidInputError, match="NaN or inf"):
        pool_tokens(broken, 2)
