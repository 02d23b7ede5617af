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
) -> list[MultiVector]:
    """Encode ``items`` in batches of similar length (longest first); keep input order.

    ``encode_batch`` receives a list of items and returns one ``(n_tokens, dim)``
    array per item.  Sorting by length minimises padding; results are returned in
    the original order.
    """
    n = len(items)
    order = np.argsort(-np.asarray(lengths, dtype=np.int64), kind="stable")
    results: list[MultiVector | None] = [None] * n
    if show_progress is None:
        disable: bool | None = None if n >= AUTO_PROGRESS_MIN_ITEMS else True
    else:
        disable = not show_progress
    with torch.inference_mode(), tqdm(total=n, desc=desc, disable=disable, unit="item") as bar:
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size].tolist()
            outputs = encode_batch([items[i] for i in idx])
            for i, out in zip(idx, outputs, strict=True):
                results[i] = out
            bar.update(len(idx))
    return [r for r in results if r is not None]
