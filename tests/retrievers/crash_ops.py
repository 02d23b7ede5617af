"""A deterministic schedule of index operations, shared by the crash-test child and parent.

The child runs the schedule against a real index until it is SIGKILLed; the parent
replays it on a plain dict to know the exact state after every whole operation.
This module imports only numpy so the child starts fast.
"""

from __future__ import annotations

from typing import Any

import numpy as np

DIM = 16
BATCH = 12


def vectors(seed: int, n: int) -> list[np.ndarray]:
    """``n`` unit multi-vectors of 2..10 tokens drawn from ``seed``."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        x = rng.standard_normal((int(rng.integers(2, 11)), DIM)).astype(np.float32)
        out.append(x / np.linalg.norm(x, axis=1, keepdims=True))
    return out


def operation(step: int) -> tuple[str, Any]:
    """The operation at ``step``: ``(kind, args)``."""
    if step % 6 == 2:
        ids = [f"b{step - 2}-{i}" for i in range(3)] + [f"u{step}"]
        return "upsert", (ids, vectors(10_000 + step, len(ids)), [{"v": step}] * len(ids))
    if step % 6 == 4:
        return "delete", ([f"b{step - 3}-1", f"b{step - 1}-2", f"u{step - 2}", "never"],)
    if step % 9 == 7:
        return "compact", ()
    ids = [f"b{step}-{i}" for i in range(BATCH)]
    metas = [{"batch": step, "i": i} for i in range(BATCH)]
    return "add", (ids, vectors(step, BATCH), metas, [f"text {step} {i}" for i in range(BATCH)])


def model_after(steps: int) -> dict[str, tuple[np.ndarray, dict[str, Any]]]:
    """The expected documents after the first ``steps`` operations."""
    docs: dict[str, tuple[np.ndarray, dict[str, Any]]] = {}
    for step in range(steps):
        kind, args = operation(step)
        if kind in ("add", "upsert"):
            for doc_id, vec, meta in zip(args[0], args[1], args[2], strict=True):
                docs[doc_id] = (vec, meta)
        elif kind == "delete":
            for doc_id in args[0]:
                docs.pop(doc_id, None)
    return docs


def apply(index: Any, step: int) -> None:
    """Run the operation at ``step`` on ``index``; save the HNSW graph every 5th step."""
    kind, args = operation(step)
    getattr(index, kind)(*args)
    if step % 5 == 4:
        index.save()
