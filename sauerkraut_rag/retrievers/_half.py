"""Float16 stores at GEMM speed: fast float16 -> float32 conversion, and an approximate
MaxSim from the CPU's native float16 GEMM with a certified error bound.

numpy converts float16 one value at a time (about 1-2 ns per value, more than the float32
product costs per value for a 32-token query); torch converts with vector instructions
(about 0.15 ns). On CPUs with native float16 arithmetic (AVX512-FP16, AMX-FP16) torch's
float16 GEMM reads the stored vectors as they are, without any conversion, at about twice
the float32 rate; it accumulates in float32 and rounds the result to float16.

The approximate scores come with a bound ``radius`` on their distance to the float32
MaxSim, so a caller can rescore exactly every document that could still be in the top
``k`` (see :func:`sauerkraut_rag.retrievers.maxsim.maxsim_topk_packed`). For one query
token ``q`` and one stored token ``d`` (float16, exact), with ``u = 2**-11`` the unit
roundoff of float16, ``eta = 2**-25`` half its smallest subnormal step, and ``p = 2**e q``
the query token scaled by a power of two (exact) so that ``||p|| <= min(1, 2**14 / G)``
(``G``: the largest stored token norm, so no float16 result can overflow):

* rounding ``p`` to float16 changes ``p.d`` by at most ``u ||p|| ||d|| + eta sqrt(dim) ||d||``;
* float32 accumulation of ``dim`` exact products adds at most ``gamma ||p^|| ||d||`` with
  ``gamma = dim 2**-24 / (1 - dim 2**-24)``;
* rounding the result to float16 adds at most ``u |s| + eta``.

A max over document tokens moves by at most the largest per-token error, so a document's
score moves by at most ``sum_i 2**-e_i (kappa ||p_i|| G_doc + eta (sqrt(dim) G_doc + 2))``
with ``kappa = 2u + 2u**2 + gamma (1 + u)`` and ``G_doc`` the document's largest token norm.
``radius`` adds a 6% margin, and the float32 rounding of the exact path and of the sums.
"""

from __future__ import annotations

import functools
import logging
import math
from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np

from sauerkraut_rag.retrievers._scan import RowGroups, scan

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

U16 = 2.0**-11
"""Unit roundoff of float16 (round to nearest)."""
ETA16 = 2.0**-25
"""Largest rounding error of a float16 subnormal (half of 2**-24)."""
U32 = 2.0**-24
SAFETY = 1.0625
OUTPUT_LIMIT = 2.0**14
"""Largest query-norm x token-norm product fed to the float16 GEMM (float16 max: 65504)."""
GEMM_ROWS = 128
"""Query rows per float16 GEMM (fewer rows lower the GEMM rate, more spill the cache)."""
BLOCK_BYTES = 1 << 20
"""float32 size of one score block: it is reduced while it is still in the L2 cache."""
DOC_BYTES = 1 << 20
"""Largest float16 document chunk per GEMM (reused from cache by every row group)."""


def _torch() -> ModuleType:
    """torch, imported on first use (importing the scorer must not load it)."""
    import torch

    return torch


def torch_view(array: np.ndarray) -> torch.Tensor:
    """A torch tensor sharing ``array``'s memory (read-only memmaps included)."""
    torch = _torch()
    if array.flags.writeable:
        return torch.from_numpy(array)
    try:
        return torch.from_dlpack(array)
    except (BufferError, TypeError, RuntimeError):  # older numpy: no read-only DLPack export
        return torch.from_numpy(np.array(array))


def to_float32(block: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``block`` (float16 or float32, 2-D) as float32; into ``out`` when given."""
    if out is None:
        out = np.empty(block.shape, dtype=np.float32)
    if block.dtype == np.float16 and block.size:
        torch_view(out).copy_(torch_view(block))
    else:
        out[...] = block
    return out


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` in float32, computed by torch.

    Every product on a search's path goes through torch (FDE encoding, cell probes, the
    scorer's blocks): with numpy's BLAS threads beside torch's OpenMP threads, each pool
    spins while the other waits for a core (measured on 2 cores at 2 threads: the default
    search 2.2x slower than at one thread, a float16 full scan 40x slower).
    """
    torch = _torch()
    left = torch_view(np.asarray(a, dtype=np.float32))
    return torch.mm(left, torch_view(np.asarray(b, dtype=np.float32))).numpy()


def token_norms(tokens: np.ndarray, *, block_tokens: int = 8192) -> np.ndarray:
    """L2 norm of every row of ``tokens (n, dim)``, float32 ``(n,)``, computed in blocks.

    A row holding NaN or inf gets a non-finite norm.
    """
    torch = _torch()
    norms = np.empty(tokens.shape[0], dtype=np.float32)
    for lo in range(0, tokens.shape[0], block_tokens):
        block = torch_view(tokens[lo : lo + block_tokens])
        torch_view(norms[lo : lo + block_tokens]).copy_(
            torch.linalg.vector_norm(block, dim=1, dtype=torch.float32)
        )
    return norms


def doc_norm_bounds(norms: np.ndarray, offsets: np.ndarray, dim: int) -> np.ndarray:
    """Upper bound of every document's largest token norm (0 if empty), float64 ``(n_docs,)``.

    ``norms`` are float32 norms of the tokens; they are raised by their own rounding error.
    """
    out = np.zeros(offsets.size - 1, dtype=np.float64)
    nonempty = np.flatnonzero(np.diff(offsets) > 0)
    if nonempty.size:
        out[nonempty] = np.maximum.reduceat(norms.astype(np.float64), offsets[nonempty])
    return out * (1 + (dim + 2) * U32)


MAX_ROWS = 128
"""Above this many query rows per call (4 queries of 32 tokens) the float32 GEMM of a
batch is as fast (measured on AVX512-FP16: 1.6x at 32 rows, 1.05x at 128, 0.87x at 256)."""
MIN_WORK = 1 << 19
"""Below this many query-row x stored-token products the exact path is as fast."""


def pays_off(n_rows: int, n_tokens: int, dim: int) -> bool:
    """Whether the float16 GEMM path is used for this many query rows and stored tokens."""
    work = n_rows * n_tokens
    return 0 < n_rows <= MAX_ROWS and work >= MIN_WORK and half_gemm_supported(dim)


def half_gemm_supported(dim: int) -> bool:
    """Whether the float16 GEMM is native here and accumulates in float32 for ``dim``."""
    torch = _torch()
    if torch._C._get_cpu_allow_fp16_reduced_precision_reduction():
        return False  # the user allowed float16 accumulation: the bound would not hold
    return _native_half() and _probe(dim)


@functools.cache
def _native_half() -> bool:
    torch = _torch()
    get = getattr(getattr(torch, "cpu", None), "get_capabilities", None)
    if get is None:
        return False
    try:
        caps = get()
    except Exception:  # an unknown CPU is simply not a fast one
        return False
    return bool(caps.get("avx512_fp16") or caps.get("amx_fp16"))


@functools.cache
def _probe(dim: int) -> bool:
    """Check on this machine that float16 GEMM results stay within the bound's terms.

    Rows mixing one large and many small products lose the small ones under float16
    accumulation whatever the order; random rows check the error of typical data.
    """
    torch = _torch()
    rng = np.random.default_rng(0)
    small = np.full((3, dim), 2.0**-12)
    for i, pos in enumerate((0, dim // 2, dim - 1)):
        small[i, pos] = 1.0
    docs = np.concatenate([small, rng.standard_normal((61, dim)) / math.sqrt(dim)]) * 0.99
    queries = np.concatenate([np.ones((1, dim)) / math.sqrt(dim), rng.standard_normal((8, dim))])
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    q16, d16 = queries.astype(np.float16), docs.astype(np.float16)
    exact = q16.astype(np.float64) @ d16.astype(np.float64).T
    for rows in (1, 9):
        got = torch.mm(torch.from_numpy(q16[:rows]), torch.from_numpy(d16).T).double().numpy()
        gamma = dim * U32 / (1 - dim * U32)
        limit = (U16 + gamma * 1.01) * np.abs(exact[:rows]) + ETA16 + gamma * 1.01
        if not np.all(np.abs(got - exact[:rows]) <= limit):
            logger.info("float16 GEMM of dim %d does not accumulate in float32; not used", dim)
            return False
    return True


def in_range(rows: np.ndarray, g_doc: np.ndarray) -> bool:
    """Whether query and stored norms are finite and far from float32's limits."""
    norms = np.linalg.norm(rows.astype(np.float64), axis=1)
    nonzero = norms[norms > 0]
    return bool(
        np.isfinite(g_doc).all()
        and np.isfinite(norms).all()
        and (nonzero.size == 0 or (nonzero.min() > 2.0**-60 and nonzero.max() < 2.0**60))
    )


def block_shape(n_rows: int, dim: int, budget_bytes: int) -> tuple[int, int]:
    """``(rows_per_group, doc_tokens)`` of one float16 GEMM; its float32 block fits in
    ``BLOCK_BYTES`` and in ``budget_bytes``."""
    rows = max(1, min(GEMM_ROWS, n_rows, budget_bytes // 64))
    block_elems = max(1, min(BLOCK_BYTES, budget_bytes) // 4)
    doc_tokens = min(DOC_BYTES // (2 * max(dim, 1)), block_elems // rows)
    return rows, max(1, doc_tokens)


def approximate_maxsim(
    rows: np.ndarray,
    lengths: list[int],
    tokens: np.ndarray,
    offsets: np.ndarray,
    gmax: float,
    *,
    budget_bytes: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Float16-GEMM MaxSim of stacked float32 query ``rows`` against float16 ``tokens``.

    ``gmax`` bounds every stored token norm. Returns ``(approx (n_queries, n_docs),
    kappa_q, eta_q)``: the float32 MaxSim of query ``q`` and a document whose largest token
    norm is ``G_doc`` lies within ``kappa_q[q] * G_doc + eta_q[q]`` of ``approx``.
    """
    torch = _torch()
    dim = tokens.shape[1]
    norms = np.linalg.norm(rows.astype(np.float64), axis=1)
    target = min(1.0, OUTPUT_LIMIT / gmax) if gmax > 0 else 1.0
    exponent = np.zeros(rows.shape[0], dtype=np.int64)
    positive = norms > 0
    exponent[positive] = np.floor(np.log2(target / norms[positive])).astype(np.int64)
    scaled = np.ldexp(rows.astype(np.float64), exponent[:, None])  # exact: powers of two
    query16 = torch.from_numpy(scaled.astype(np.float16))
    unscale = np.ldexp(1.0, -exponent)  # float64
    gamma = dim * U32 / (1 - dim * U32)
    kappa = 2 * U16 + 2 * U16**2 + gamma * (1 + U16)
    row_len = np.repeat(np.asarray(lengths, dtype=np.float64), lengths)
    # float16 GEMM error, plus float32 rounding of the exact path and of the sums
    row_kappa = SAFETY * (
        unscale * (kappa * norms * np.ldexp(1.0, exponent) + ETA16 * math.sqrt(dim))
        + (dim + row_len + 4) * 2 * U32 * norms
    )
    row_eta = SAFETY * unscale * 2 * ETA16 + 2.0**-126

    rows_per_group, max_doc_tokens = block_shape(rows.shape[0], dim, budget_bytes)
    groups = RowGroups(lengths, rows_per_group, unscale.astype(np.float32))
    out16 = torch.empty(rows_per_group * max_doc_tokens, dtype=torch.float16)
    out32 = np.empty(rows_per_group * max_doc_tokens, dtype=np.float32)

    def product(r0: int, r1: int, operand: torch.Tensor) -> np.ndarray:
        n = operand.shape[0]
        block16 = out16[: (r1 - r0) * n].view(r1 - r0, n)
        torch.mm(query16[r0:r1], operand.T, out=block16)
        block32 = out32[: (r1 - r0) * n].reshape(r1 - r0, n)
        torch_view(block32).copy_(block16)
        return block32

    approx = scan(
        groups,
        len(lengths),
        tokens,
        offsets,
        prepare=lambda chunk, _d0, _d1: torch_view(chunk),
        product=product,
        max_doc_tokens=max_doc_tokens,
    )
    starts = np.r_[0, np.cumsum(lengths)[:-1]].astype(np.int64)
    kappa_q, eta_q = np.zeros(len(lengths)), np.zeros(len(lengths))
    filled = np.asarray(lengths) > 0
    if filled.any():
        kappa_q[filled] = np.add.reduceat(row_kappa, starts[filled])
        eta_q[filled] = np.add.reduceat(row_eta, starts[filled])
    return approx, kappa_q, eta_q


def radius(kappa_q: np.ndarray, eta_q: np.ndarray, g_doc: np.ndarray) -> np.ndarray:
    """``(n_queries, n_docs)`` bound of ``|approx - float32 MaxSim|`` (0 for empty docs)."""
    out = kappa_q[:, None] * g_doc[None, :] + eta_q[:, None] * (g_doc > 0)[None, :]
    return out * (1 + 2.0**-20)
