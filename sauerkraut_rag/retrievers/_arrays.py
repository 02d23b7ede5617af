"""Shared input checks for multi-vector arrays (typed errors, never ``assert``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from sauerkraut_rag.errors import DimensionMismatchError, InvalidInputError, InvalidInputTypeError


def as_multivector(item: Any, *, what: str) -> np.ndarray:
    """Return ``item`` as a 2-D float32/float16 array; raise a typed error otherwise."""
    if not isinstance(item, np.ndarray):
        raise InvalidInputTypeError(
            f"Expected {what} to be a numpy array of shape (n_tokens, dim), got "
            f"{type(item).__name__}. Convert it with np.asarray(..., dtype=np.float32) "
            "(torch tensors: tensor.float().cpu().numpy())."
        )
    if item.ndim != 2:
        raise InvalidInputError(
            f"Expected {what} to be 2-D (n_tokens, dim), got shape {item.shape}. "
            "Pass one (n_tokens, dim) array per query or document, not a padded batch."
        )
    if item.dtype in (np.float32, np.float16):
        return item
    if item.dtype == np.float64:
        return item.astype(np.float32)
    raise InvalidInputTypeError(
        f"Expected {what} to have dtype float32 or float16, got {item.dtype}. "
        "Cast it with .astype(np.float32)."
    )


def check_finite_rows(array: np.ndarray, *, what: str) -> None:
    """Raise :class:`InvalidInputError` when ``array`` holds NaN or inf."""
    if array.size and not np.isfinite(array).all():
        bad = int(np.argwhere(~np.isfinite(array))[0][0])
        raise InvalidInputError(
            f"Expected finite values in {what}, but token row {bad} holds NaN or inf. "
            "Re-encode the input or drop the broken vectors."
        )


def as_multivector_list(items: Any, *, what: str) -> list[Any]:
    """Accept a list/tuple of arrays (a single 2-D or 3-D array is read as its rows)."""
    if isinstance(items, np.ndarray):
        if items.ndim == 3:
            return list(items)
        raise InvalidInputTypeError(
            f"Expected {what} to be a sequence of (n_tokens, dim) arrays, got one array of "
            f"shape {items.shape}. Wrap a single multi-vector in a list: [array]."
        )
    if isinstance(items, (str, bytes)) or not isinstance(items, Sequence):
        raise InvalidInputTypeError(
            f"Expected {what} to be a sequence of (n_tokens, dim) numpy arrays, got "
            f"{type(items).__name__}. Pass a list of arrays."
        )
    return list(items)


def check_dim(dim: int, expected: int | None, *, what: str) -> int:
    if expected is not None and dim != expected:
        raise DimensionMismatchError(
            f"Expected {what} to have dim {expected} (like the other vectors), got {dim}. "
            "Encode queries and documents with the same model."
        )
    return dim


def validate_multivectors(
    items: Any, *, what: str, dim: int | None = None
) -> tuple[list[np.ndarray], int | None]:
    """Check a sequence of ``(n_tokens, dim)`` arrays: type, ndim, dtype, common dim, finite.

    Returns the arrays (float32/float16, float64 cast to float32) and their common dim
    (``None`` for an empty sequence when no ``dim`` was given).
    """
    arrays: list[np.ndarray] = []
    for i, item in enumerate(as_multivector_list(items, what=what)):
        array = as_multivector(item, what=f"{what}[{i}]")
        dim = check_dim(array.shape[1], dim, what=f"{what}[{i}]")
        check_finite_rows(array, what=f"{what}[{i}]")
        arrays.append(array)
    return arrays, dim
