"""Top-k over float16 stores: the float16-GEMM path (certified bound + exact rescoring)
returns the exact path's ids and scores, and its bound holds; the fallback is exact too."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from sauerkraut_rag.errors import InvalidInputError
from sauerkraut_rag.retrievers import _bounded, _half
from sauerkraut_rag.retrievers._exact import prepare_queries
from sauerkraut_rag.retrievers.maxsim import (
    PackedStore,
    maxsim_packed,
    maxsim_topk,
    maxsim_topk_packed,
    maxsim_topk_stores,
    pack,
    token_norms,
    topk_from_scores,
)

needs_native = pytest.mark.skipif(
    not _half._probe(16), reason="torch's float16 GEMM here does not accumulate in float32"
)
"""The fast path's bound and rescoring are checked on every CPU whose float16 GEMM
accumulates in float32; without native float16 torch computes the same GEMM, slowly."""
F32_ROUNDING = 2.0**-21
"""Four units of float32 roundoff, relative to the score."""


def store(rng: np.random.Generator, lengths: list[int], dim: int, scale: float = 1.0):
    docs = [(rng.standard_normal((n, dim)) * scale).astype(np.float16) for n in lengths]
    return docs, *pack(docs)


def queries_of(rng: np.random.Generator, lengths: list[int], dim: int) -> list[np.ndarray]:
    return [rng.standard_normal((n, dim)).astype(np.float32) for n in lengths]


def exact_topk(queries, tokens, offsets, k, mask=None):
    scores = maxsim_packed(queries, tokens, offsets)
    if mask is not None:
        scores[:, ~mask] = -np.inf
        k = min(k, int(mask.sum()))
    return topk_from_scores(scores, k)


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts float16-GEMM scans, so a test knows which path ran."""
    seen: list[int] = []
    original = _half.approximate_maxsim

    def spy(*args, **kwargs):
        seen.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(_half, "approximate_maxsim", spy)
    monkeypatch.setattr(_half, "MIN_WORK", 0)  # test-sized inputs take the fast path too
    monkeypatch.setattr(_half, "_native_half", lambda: True)  # and CPUs without native float16
    return seen


@needs_native
@pytest.mark.parametrize("dim", [16, 13, 100, 128])
@pytest.mark.parametrize("seed", range(3))
def test_fast_path_equals_exact_on_ragged_inputs(
    dim: int, seed: int, calls: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    # candidates rescored per query (cheap calls) or all together (costly calls)
    monkeypatch.setattr(_bounded, "_CALL_COST", 0 if seed % 2 else 10**12)
    rng = np.random.default_rng(seed)
    lengths = [0, 1, 1, 300, 0, *rng.integers(0, 60, 150).tolist(), 0]
    _, tokens, offsets = store(rng, lengths, dim, scale=1 / np.sqrt(dim))
    queries = queries_of(rng, [1, 32, 0, 7], dim)
    for k in (1, 10, 50, len(lengths) + 5):
        idx, vals = maxsim_topk_packed(queries, tokens, offsets, k)
        ref_idx, ref_vals = exact_topk(queries, tokens, offsets, k)
        np.testing.assert_array_equal(idx, ref_idx)
        # equal up to float32 rounding: the rescoring GEMM and the exact scan block the
        # same sums differently (a score near 80 moved by 2 ulps on a CPU without AVX512-FP16)
        np.testing.assert_allclose(vals, ref_vals, atol=1e-5, rtol=F32_ROUNDING)
    assert calls, "the float16 GEMM path did not run"


@needs_native
def test_ties_keep_the_lower_index(calls: list[int]) -> None:
    """Exactly representable values: duplicates and equal scores tie exactly."""
    rng = np.random.default_rng(7)
    base = [rng.integers(-4, 5, (n, 16)).astype(np.float16) / 4 for n in (3, 5, 1, 4)]
    docs = [base[i % 4] for i in range(40)] + [np.zeros((0, 16), np.float16)] * 3
    tokens, offsets = pack(docs)
    queries = [rng.integers(-2, 3, (n, 16)).astype(np.float32) for n in (4, 1, 6)]
    for k in (1, 3, 10, 11, 25):
        idx, vals = maxsim_topk_packed(queries, tokens, offsets, k)
        ref_idx, ref_vals = exact_topk(queries, tokens, offsets, k)
        np.testing.assert_array_equal(idx, ref_idx)
        np.testing.assert_array_equal(vals, ref_vals)
    assert calls


@needs_native
def test_mask_and_several_stores(calls: list[int]) -> None:
    rng = np.random.default_rng(3)
    lengths = rng.integers(0, 40, 90).tolist()
    docs, tokens, offsets = store(rng, lengths, 24)
    queries = queries_of(rng, [5, 9], 24)
    mask = rng.random(90) < 0.3
    idx, vals = maxsim_topk_packed(queries, tokens, offsets, 8, mask=mask)
    ref_idx, ref_vals = exact_topk(queries, tokens, offsets, 8, mask)
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_allclose(vals, ref_vals, atol=1e-5, rtol=0)
    assert mask[idx].all()
    parts = [docs[:30], docs[30:31], docs[31:]]
    stores = [PackedStore(*pack(p)) for p in parts]
    stores[1] = PackedStore(stores[1].tokens.astype(np.float32), stores[1].offsets)  # mixed
    got = maxsim_topk_stores(queries, stores, 8, mask=mask)
    np.testing.assert_array_equal(got[0], ref_idx)
    np.testing.assert_allclose(got[1], ref_vals, atol=1e-5, rtol=0)
    tiny = np.zeros(90, bool)
    tiny[[4, 70]] = True
    idx, _ = maxsim_topk_packed(queries, tokens, offsets, 8, mask=tiny)
    assert idx.shape == (2, 2) and set(idx.ravel().tolist()) <= {4, 70}
    idx, _ = maxsim_topk_packed(queries, tokens, offsets, 8, mask=np.zeros(90, bool))
    assert idx.shape == (2, 0)


@needs_native
@pytest.mark.parametrize("scale", [2.0**-20, 1e-3, 1.0, 300.0, 4000.0])
def test_bound_holds_at_any_scale(scale: float) -> None:
    """|approx - exact| <= radius for tiny (subnormal) to huge (overflow-prone) vectors."""
    rng = np.random.default_rng(11)
    dim = 40
    lengths = [0, *rng.integers(1, 30, 60).tolist()]
    _, tokens, offsets = store(rng, lengths, dim, scale=scale)
    queries = queries_of(rng, [3, 16, 1], dim)
    queries[1] *= 1e4
    rows, q_lengths = prepare_queries(queries, dim)
    g_doc = _half.doc_norm_bounds(token_norms(tokens), offsets, dim)
    approx, kappa_q, eta_q = _half.approximate_maxsim(
        rows, q_lengths, tokens, offsets, float(g_doc.max()), budget_bytes=1 << 16
    )
    radius = _half.radius(kappa_q, eta_q, g_doc)
    exact = _float64_maxsim(queries, tokens, offsets)
    assert np.all(np.abs(approx - exact) <= radius)
    assert np.all(radius[:, 0] == 0)  # the empty document is exact
    # and it is tight enough to be useful: ~2**-10 of sum_i ||q_i|| x the largest token norm
    q_norms = np.array([np.linalg.norm(q, axis=1).sum() for q in queries])
    if scale >= 1e-3:  # (below, float16 subnormals add their absolute error)
        assert np.all(radius <= 1.2e-3 * q_norms[:, None] * g_doc[None, :])


def _float64_maxsim(queries, tokens, offsets) -> np.ndarray:
    t = tokens.astype(np.float64)
    out = np.zeros((len(queries), offsets.size - 1))
    for d in range(offsets.size - 1):
        doc = t[offsets[d] : offsets[d + 1]]
        for i, q in enumerate(queries):
            if len(doc) and len(q):
                out[i, d] = (q.astype(np.float64) @ doc.T).max(axis=1).sum()
    return out


@needs_native
def test_huge_stored_values_do_not_overflow(calls: list[int]) -> None:
    rng = np.random.default_rng(5)
    docs = [(rng.standard_normal((n, 8)) * 2e4).astype(np.float16) for n in (4, 9, 2, 6)]
    docs = [np.clip(d, -65000, 65000).astype(np.float16) for d in docs]
    tokens, offsets = pack(docs)
    queries = queries_of(rng, [3], 8)
    idx, vals = maxsim_topk_packed(queries, tokens, offsets, 3)
    ref_idx, ref_vals = exact_topk(queries, tokens, offsets, 3)
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_allclose(vals, ref_vals, rtol=1e-6)


def test_small_inputs_and_large_batches_take_the_exact_path(calls: list[int]) -> None:
    assert not _half.pays_off(_half.MAX_ROWS + 1, 10**6, 16)
    assert not _half.pays_off(0, 10**6, 16)
    assert _half.pays_off(32, 10**6, 16) == _half.half_gemm_supported(16)


def test_fallback_without_native_float16(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_half, "half_gemm_supported", lambda dim: False)
    spy: list[int] = []
    monkeypatch.setattr(_half, "approximate_maxsim", lambda *a, **k: spy.append(1))
    rng = np.random.default_rng(2)
    lengths = rng.integers(0, 50, 70).tolist()
    docs, tokens, offsets = store(rng, lengths, 20)
    queries = queries_of(rng, [4, 12], 20)
    idx, vals = maxsim_topk_packed(queries, tokens, offsets, 6)
    ref_idx, ref_vals = exact_topk(queries, tokens, offsets, 6)
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_array_equal(vals, ref_vals)
    np.testing.assert_array_equal(maxsim_topk(queries, docs, 6)[0], ref_idx)
    assert not spy


def test_reduced_precision_accumulation_disables_the_fast_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With float16 accumulation allowed (torch's CPU flag) the bound would not hold."""
    monkeypatch.setattr(torch._C, "_get_cpu_allow_fp16_reduced_precision_reduction", lambda: True)
    assert not _half.half_gemm_supported(16)


def test_non_finite_store_is_rejected() -> None:
    rng = np.random.default_rng(4)
    _, tokens, offsets = store(rng, [3, 4, 2], 8)
    tokens[5, 2] = np.inf
    with pytest.raises(InvalidInputError, match="NaN or inf"):
        maxsim_topk_packed(queries_of(rng, [2], 8), tokens, offsets, 2)


def test_conversion_and_norms_match_numpy(tmp_path: Path) -> None:
    rng = np.random.default_rng(8)
    tokens = (rng.standard_normal((1000, 24)) * 3).astype(np.float16)
    tokens[0, :3] = [np.float16(6e-8), -65504, 0]  # a subnormal, the float16 limit
    np.save(tmp_path / "t.npy", tokens)
    mapped = np.load(tmp_path / "t.npy", mmap_mode="r")  # read-only
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        converted = _half.to_float32(mapped[10:900])
        norms = token_norms(mapped)
    np.testing.assert_array_equal(converted, tokens[10:900].astype(np.float32))
    expected = np.linalg.norm(tokens.astype(np.float64), axis=1)
    np.testing.assert_allclose(norms, expected, rtol=2e-6)


def test_mask_is_checked() -> None:
    rng = np.random.default_rng(1)
    _, tokens, offsets = store(rng, [2, 2], 8)
    with pytest.raises(InvalidInputError, match="mask"):
        maxsim_topk_packed(queries_of(rng, [2], 8), tokens, offsets, 1, mask=np.ones(3, bool))


def test_probe_rejects_float16_accumulation(monkeypatch: pytest.MonkeyPatch) -> None:
    """A GEMM that accumulates in float16 fails the start-up probe (so the bound is safe)."""

    def float16_accumulating_mm(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        x, y = a.numpy(), b.numpy()
        acc = np.zeros((x.shape[0], y.shape[1]), np.float16)
        for j in range(x.shape[1]):
            acc = (acc + x[:, j : j + 1] * y[j : j + 1, :]).astype(np.float16)
        return torch.from_numpy(acc)

    assert _half._probe.__wrapped__(64)
    monkeypatch.setattr(torch, "mm", float16_accumulating_mm)
    assert not _half._probe.__wrapped__(64)
