"""Length-sorted batching with a progress bar, under ``torch.inference_mode``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

import numpy as np
import torch
from tqdm.auto import tqdm

from sauerkraut_rag.types import MultiVector

T = TypeVar("T")

AUTO_PROGRESS_MIN_ITEMS = 256
"""With ``show_progress=None`` a bar is shown (on a terminal) from this many items on."""


def run_length_sorted(
    items: Sequence[T],
    lengths: Sequence[int],
    encode_batch: Callable[[list[T]], list[MultiVector]],
    *,
    batch_size: int,
    show_progress: bool | None,
    desc: str,
    max_batch_tokens: int | None = None,
) -> list[MultiVector]:
    """Encode ``items`` in batches of similar length (longest first); keep input order.

    ``encode_batch`` receives a list of items and returns one ``(n_tokens, dim)``
    array per item.  Sorting by length minimises padding; results are returned in
    the original order.  With ``max_batch_tokens``, a batch also holds at most that
    many padded tokens (``n_items * longest``, at least one item), so the long tail
    of a skewed length distribution runs in small batches instead of padding many
    shorter items to the longest one.
    """
    n = len(items)
    order = np.argsort(-np.asarray(lengths, dtype=np.int64), kind="stable")
    results: list[MultiVector | None] = [None] * n
    if show_progress is None:
        disable: bool | None = None if n >= AUTO_PROGRESS_MIN_ITEMS else True
    else:
        disable = not show_progress
    with torch.inference_mode(), tqdm(total=n, desc=desc, disable=disable, unit="item") as bar:
        for start, stop in _batch_bounds(order, lengths, batch_size, max_batch_tokens):
            idx = order[start:stop].tolist()
            outputs = encode_batch([items[i] for i in idx])
            for i, out in zip(idx, outputs, strict=True):
                results[i] = out
            bar.update(len(idx))
    return [r for r in results if r is not None]


def _batch_bounds(
    order: np.ndarray, lengths: Sequence[int], batch_size: int, max_batch_tokens: int | None
) -> list[tuple[int, int]]:
    """``(start, stop)`` slices of ``order`` (longest first) respecting both limits."""
    bounds = []
    start, n = 0, len(order)
    while start < n:
        size = batch_size
        if max_batch_tokens is not None:
            longest = max(int(lengths[int(order[start])]), 1)
            size = max(1, min(batch_size, max_batch_tokens // longest))
        bounds.append((start, min(start + size, n)))
        start += size
    return bounds
