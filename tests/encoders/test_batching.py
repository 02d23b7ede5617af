"""Length-sorted batching: order restored, batch-size and padded-token limits respected."""

from __future__ import annotations

import numpy as np

from sauerkraut_rag.encoders._batching import run_length_sorted


def _run(lengths: list[int], batch_size: int, max_batch_tokens: int | None) -> list[list[int]]:
    batches: list[list[int]] = []

    def encode(batch: list[int]) -> list[np.ndarray]:
        batches.append(batch)
        return [np.full((lengths[i], 1), i, dtype=np.float32) for i in batch]

    out = run_length_sorted(
        list(range(len(lengths))),
        lengths,
        encode,
        batch_size=batch_size,
        show_progress=False,
        desc="test",
        max_batch_tokens=max_batch_tokens,
    )
    assert [int(o[0, 0]) for o in out] == list(range(len(lengths)))  # input order kept
    return batches


def test_fixed_batch_size_longest_first() -> None:
    batches = _run([3, 10, 1, 7, 5], batch_size=2, max_batch_tokens=None)
    assert batches == [[1, 3], [4, 0], [2]]


def test_token_budget_splits_the_long_tail() -> None:
    lengths = [100, 2000, 50, 900, 60, 55, 1000, 40]
    batches = _run(lengths, batch_size=4, max_batch_tokens=2048)
    assert batches[0] == [1]  # 2000 tokens: alone
    for batch in batches:
        assert len(batch) <= 4
        assert len(batch) == 1 or len(batch) * max(lengths[i] for i in batch) <= 2048
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))


def test_item_longer_than_budget_still_runs() -> None:
    assert _run([5000, 10], batch_size=8, max_batch_tokens=1000) == [[0], [1]]
