"""Crash safety: 50 SIGKILLs at random points inside add, upsert, delete and compact.

Each round starts a child process (``crash_worker.py``) that opens the index, runs one
operation and closes the index, and kills it part-way: at a random line of package code
(``sys.settrace``), or after a random delay that can land inside C code (fsync, the
SQLite commit, an HNSW insert). The parent then reopens the folder and requires that it
holds exactly the state before or the state after the whole operation (after, if the
child finished), that search agrees with brute-force MaxSim on both search paths, and
that no unreferenced file survived the reopen.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from sauerkraut_rag.retrievers.voyager.index import VoyagerIndex
from tests.retrievers import crash_ops
from tests.retrievers.crash_check import (
    Model,
    assert_no_orphans,
    assert_search_is_exact,
    holds_exactly,
)

WORKER = Path(__file__).with_name("crash_worker.py")
KINDS = ("add", "upsert", "delete", "compact")
KILLS = {"tokens": 25, "fde": 25}
"""50 kills in all, spread evenly over the four operations."""


def plan(kind: str, step: int, model: Model, rng: random.Random) -> dict[str, Any]:
    """The operation of round ``step``: ids, vector seed, metadata and payloads."""
    stored = sorted(model)
    if kind == "add":
        ids = [f"a{step}-{i}" for i in range(5)]
    elif kind == "upsert":
        ids = rng.sample(stored, min(2, len(stored))) + [f"u{step}-{i}" for i in range(2)]
    elif kind == "delete":
        return {"kind": kind, "ids": [*rng.sample(stored, min(2, len(stored))), "never-stored"]}
    else:
        return {"kind": kind, "ids": []}
    metas = [{"step": step, "i": i} for i in range(len(ids))]
    payloads = [f"payload {step} {i}" for i in range(len(ids))]
    return {"kind": kind, "ids": ids, "seed": 1_000 + step, "metas": metas, "payloads": payloads}


def applied(op: dict[str, Any], model: Model) -> Model:
    """``model`` after the whole operation ``op``."""
    after = dict(model)
    if op["kind"] in ("add", "upsert"):
        vecs = crash_ops.vectors(op["seed"], len(op["ids"]))
        after.update(zip(op["ids"], zip(vecs, op["metas"], strict=True), strict=True))
    elif op["kind"] == "delete":
        for doc_id in op["ids"]:
            after.pop(doc_id, None)
    return after


def run_worker(folder: Path, strategy: str, op: dict[str, Any], kill: dict[str, Any]) -> str:
    """Run one child; returns its ``done LINES SECONDS`` line, or ``""`` if it was killed."""
    spec = {"folder": str(folder), "strategy": strategy, "op": op, "kill": kill}
    done = subprocess.run(
        [sys.executable, str(WORKER), json.dumps(spec)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.stdout.startswith("ready"), done.stdout + done.stderr
    if done.returncode == -signal.SIGKILL:
        return ""
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()[-1]


class KillPoints:
    """Random kill points per operation kind, drawn from the measured operation size."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.lines: dict[str, int] = {}
        self.seconds: dict[str, float] = {}

    def next(self, kind: str, mode: str) -> dict[str, Any]:
        """A kill spec; ``at`` is ``None`` (measure, no kill) until the kind was measured."""
        if mode == "line":
            size = self.lines.get(kind)
            return {"mode": mode, "at": None if size is None else self.rng.randint(1, size)}
        span = self.seconds.get(kind)
        return {"mode": mode, "at": None if span is None else self.rng.uniform(0, span)}

    def measured(self, kind: str, mode: str, done: str) -> None:
        _, lines, seconds = done.split()
        if mode == "line":
            self.lines[kind] = max(self.lines.get(kind, 0), int(lines))
        else:
            self.seconds[kind] = max(self.seconds.get(kind, 0.0), float(seconds))


@pytest.mark.parametrize("strategy", sorted(KILLS))
def test_sigkill_inside_operations_leaves_whole_operations(tmp_path: Path, strategy: str) -> None:
    folder = tmp_path / "index"
    rng = random.Random(f"crash-{strategy}")
    points = KillPoints(rng)
    model: Model = {}
    kills: Counter[str] = Counter()
    step = 0
    while sum(kills.values()) < KILLS[strategy]:
        assert step < 3 * KILLS[strategy], f"too few kills landed: {kills}"
        kind = KINDS[step % len(KINDS)]
        mode = ("line", "timer")[(step // len(KINDS)) % 2]
        op = plan(kind, step, model, rng)
        after = applied(op, model)
        kill = points.next(kind, mode)
        done = run_worker(folder, strategy, op, kill)
        if done:
            points.measured(kind, mode, done)
        else:
            kills[kind] += 1
        with VoyagerIndex.open(folder) as index:
            if holds_exactly(index, after):
                model = after
            else:
                assert not done, f"{kind} finished, but its result is not stored"
                assert holds_exactly(index, model), f"{kind} killed at {kill}: partial state"
            assert_search_is_exact(index, model, seed=step)
            assert_no_orphans(folder, index)
        step += 1
    assert set(kills) == set(KINDS), kills
    assert model, "the index ended empty: the plan should keep documents"
