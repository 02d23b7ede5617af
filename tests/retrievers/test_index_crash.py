"""Crash safety: SIGKILL a writing child process at random moments, then reopen.

After every kill the index must hold exactly the documents of the last whole committed
operation (the one in flight may be absent or complete, never partial), with the
stored vectors and metadata intact and search agreeing with brute force.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from sauerkraut_rag.retrievers.index import VoyagerIndex
from tests.retrievers import crash_ops
from tests.retrievers.helpers import assert_matches_brute_force, unit_rows

CHILD = Path(__file__).with_name("crash_child.py")
KILLS_PER_STRATEGY = int(os.environ.get("SAUERKRAUT_CRASH_KILLS", "10"))


def _run_and_kill(folder: Path, strategy: str, start: int, delay: float) -> int:
    """Start the child, SIGKILL it ``delay`` s after it is ready; return steps completed."""
    child = subprocess.Popen(
        [sys.executable, str(CHILD), str(folder), strategy, str(start)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first = child.stdout.readline()
        assert first.strip() == "ready", first + child.stderr.read()
        time.sleep(delay)
        child.send_signal(signal.SIGKILL)
        out, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == -signal.SIGKILL, err
    done = [int(line.split()[1]) for line in out.splitlines() if line.startswith("done ")]
    return done[-1] if done else start


def _matches(index: VoyagerIndex, steps: int) -> bool:
    model = crash_ops.model_after(steps)
    if set(index._snap.id_to_pos) != set(model):
        return False
    for doc in index.get(sorted(model), include_vectors=True):
        vec, meta = model[doc.id]
        if doc.metadata != meta or not np.array_equal(doc.multivector, vec.astype(np.float16)):
            return False
    return True


def _verify(folder: Path, completed: int) -> int:
    """Reopen; return the step count whose state the index holds (completed or +1)."""
    with VoyagerIndex.open(folder) as index:
        matched = [s for s in (completed, completed + 1) if _matches(index, s)]
        assert matched, f"state after kill matches neither {completed} nor {completed + 1} ops"
        steps = matched[-1]
        docs = {i: v for i, (v, _) in crash_ops.model_after(steps).items()}
        queries = [unit_rows(np.random.default_rng(steps + q), 3, crash_ops.DIM) for q in range(2)]
        k = min(5, len(docs))
        if k:
            for query, hits in zip(queries, index.search(queries, k), strict=True):
                assert_matches_brute_force(hits, query, docs, k)
        index.configure(exact_threshold=10**6)
        if k:
            for query, hits in zip(queries, index.search(queries, k), strict=True):
                assert_matches_brute_force(hits, query, docs, k)
        index.configure(exact_threshold=0)
        referenced = {s.file for s in index._snap.segments}
        assert {p.name for p in (folder / "vectors").iterdir()} == referenced  # orphans swept
    return steps


@pytest.mark.parametrize("strategy", ["tokens", "fde"])
def test_sigkill_during_writes_leaves_whole_operations(tmp_path, strategy):
    folder = tmp_path / "idx"
    rng = random.Random(1234 if strategy == "tokens" else 4321)
    steps = 0
    kinds_hit: set[str] = set()
    for _ in range(KILLS_PER_STRATEGY):
        completed = _run_and_kill(folder, strategy, steps, rng.uniform(0.0, 0.25))
        steps = _verify(folder, completed)
        kinds_hit.add(crash_ops.operation(completed)[0])
    assert steps > 0
    assert "add" in kinds_hit
