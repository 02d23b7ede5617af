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

import pytest

from sauerkraut_rag.retrievers.voyager.index import VoyagerIndex
from tests.retrievers import crash_ops
from tests.retrievers.crash_check import assert_no_orphans, assert_search_is_exact, holds_exactly

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
        child.wait(timeout=60)
        # read through the same buffered stream as readline() above: "done" lines that
        # arrived together with "ready" sit in its buffer (communicate() would skip them)
        out, err = child.stdout.read(), child.stderr.read()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == -signal.SIGKILL, err
    done = [int(line.split()[1]) for line in out.splitlines() if line.startswith("done ")]
    return done[-1] if done else start


def _verify(folder: Path, completed: int) -> int:
    """Reopen; return the step count whose state the index holds (completed or +1)."""
    with VoyagerIndex.open(folder) as index:
        matched = [
            s for s in (completed, completed + 1) if holds_exactly(index, crash_ops.model_after(s))
        ]
        assert matched, f"state after kill matches neither {completed} nor {completed + 1} ops"
        steps = matched[-1]
        assert_search_is_exact(index, crash_ops.model_after(steps), seed=steps)
        assert_no_orphans(folder, index)
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
