"""The exact float32 MaxSim path: input checks for packed documents, and the scan.

float16 documents are converted to float32 in cache-sized blocks with vector
instructions (:func:`sauerkraut_rag.retrievers._half.to_float32`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from sauerkraut_rag._checks import check_int
from sauerkraut_rag.errors import InvalidInputError, InvalidInputTypeError
from sauerkraut_rag.retrievers import _half
from sauerkraut_rag.retrievers._arrays import check_finite_rows, validate_multivectors
from sauerkraut_rag.retrievers._scan import RowGroups, scan

DEFAULT_CHUNK_BUDGET = 8 * 1024 * 1024
"""Default upper bound, in bytes, of one float32 ``(doc_tokens, query_tokens)`` score block."""

_MIN_DOC_CHUNK = 1024
"""Fewest document tokens per block before the query tokens are split into row groups."""

_CONVERT_BYTES = 1 << 20
"""float16 documents are converted to float32 in blocks of about this many bytes."""

FloatArray = npt.NDArray[np.float32]


def check_packed(tokens: Any, offsets: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validate the output of :func:`pack` (or an index's own packed store)."""
    if not isinstance(tokens, np.ndarray) or not isinstance(offsets, np.ndarray):
        raise InvalidInputTypeError(
            "Expected tokens and offsets to be numpy arrays (see pack()), got "
            f"{type(tokens).__name__} and {type(offsets).__name__}."
        )
    if tokens.ndim != 2 or tokens.dtype not in (np.float32, np.float16):
        raise InvalidInputError(
            f"Expected tokens of shape (n_tokens, dim) and dtype float32/float16, got shape "
            f"{tokens.shape} dtype {tokens.dtype}. Build them with pack(documents)."
        )
    if offsets.ndim != 1 or offsets.size < 1 or not np.issubdtype(offsets.dtype, np.integer):
        raise InvalidInputError(
            f"Expected offsets to be a 1-D integer array of length n_docs + 1, got shape "
            f"{offsets.shape} dtype {offsets.dtype}. Build them with pack(documents)."
        )
    offsets = offsets.astype(np.int64, copy=False)
    if offsets[0] != 0 or offsets[-1] != tokens.shape[0] or np.any(np.diff(offsets) < 0):
        raise InvalidInputError(
            f"Expected offsets to rise from 0 to len(tokens) = {tokens.shape[0]}, got "
            f"first {int(offsets[0])}, last {int(offsets[-1])}. Build them with pack(documents)."
        )
    return tokens, offsets


def prepare_queries(queries: Sequence[np.ndarray], dim: int | None) -> tuple[FloatArray, list[int]]:
    """Stack queries into one float32 ``(total_tokens, dim)`` matrix plus their token counts."""
    arrays, dim = validate_multivectors(queries, what="queries", dim=dim)
    lengths = [a.shape[0] for a in arrays]
    if not arrays or sum(lengths) == 0:
        return np.zeros((0, dim or 0), dtype=np.float32), lengths
    return np.concatenate(arrays, axis=0, dtype=np.float32), lengths


def check_budget(chunk_budget_bytes: Any) -> int:
    hint = f" It bounds one float32 block; the default is {DEFAULT_CHUNK_BUDGET}."
    return check_int("chunk_budget_bytes", chunk_budget_bytes, low=4, hint=hint)


def exact_scores(
    query_tokens: FloatArray,
    lengths: list[int],
    tokens: np.ndarray,
    offsets: np.ndarray,
    budget: int,
    check_finite: bool,
) -> np.ndarray:
    """Float32 MaxSim of stacked query tokens against packed documents."""
    budget_elems = max(1, budget // 4)
    rows_per_group = max(1, min(max(1, query_tokens.shape[0]), budget_elems // _MIN_DOC_CHUNK))
    max_doc_tokens = max(1, budget_elems // rows_per_group)
    half = tokens.dtype == np.float16
    if half:  # convert in blocks that stay in cache
        max_doc_tokens = min(
            max_doc_tokens, max(16, _CONVERT_BYTES // (4 * max(1, tokens.shape[1])))
        )
        buffer = np.empty(max_doc_tokens * max(1, tokens.shape[1]), dtype=np.float32)

    def prepare(chunk: np.ndarray, d0: int, d1: int) -> np.ndarray:
        if half:  # checked after the conversion: numpy's float16 isfinite is ~20x slower
            chunk = _half.to_float32(chunk, buffer[: chunk.size].reshape(chunk.shape))
        if check_finite:
            check_finite_rows(chunk, what=f"tokens (documents {d0}..{d1 - 1})")
        return chunk

    # torch converts float16 blocks, so torch multiplies them too (see _half.matmul)
    multiply = _half.matmul if half else np.matmul

    def product(r0: int, r1: int, operand: np.ndarray) -> np.ndarray:
        return multiply(query_tokens[r0:r1], operand.T)

    groups = RowGroups(lengths, rows_per_group, None)
    return scan(
        groups,
        len(lengths),
        tokens,
        offsets,
        prepare=prepare,
        product=product,
        max_doc_tokens=max_doc_tokens,
    )
