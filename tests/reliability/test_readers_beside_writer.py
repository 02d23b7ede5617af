"""Readers beside a writer, in other processes: snapshot reads that never fail.

A writer process adds, upserts, deletes and compacts for about 30 seconds. Beside it,
one process opens the folder ``read_only=True`` afresh for every search, and another
keeps one read-only handle open throughout. No read may raise (no corruption error, no
"retry"), and every hit must be a version the writer committed that was alive at some
moment of that search, with its own payload, metadata and exact score (checked by the
readers). At the end both readers have moved forward to the writer's final state.
``SAUERKRAUT_READERS_SECONDS`` changes the duration.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

WORKER = Path(__file__).with_name("readers_worker.py")
SECONDS = float(os.environ.get("SAUERKRAUT_READERS_SECONDS", "30"))
WRITER_HEAD_START = 3.0
"""The writer stops this much earlier, so the readers' final check sees its last state."""


def _start(role: str, folder: Path, seconds: float, out: Path) -> subprocess.Popen[str]:
    child = subprocess.Popen(
        [sys.executable, str(WORKER), role, str(folder), str(seconds), str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    line = child.stdout.readline()
    assert line.strip() == "ready", line + child.stderr.read()
    return child


def _finish(child: subprocess.Popen[str], out: Path) -> dict[str, Any]:
    _, err = child.communicate(timeout=SECONDS + 300)
    assert child.returncode == 0, err[-3000:]
    return json.loads(out.read_text(encoding="utf-8"))


def _lifetimes(ops: list[dict[str, Any]]) -> dict[tuple[str, int], tuple[float, float | None]]:
    """``(id, version) -> (written, gone)``: monotonic time the writing call started and
    the time the call that replaced or deleted it returned (``None``: still stored)."""
    life: dict[tuple[str, int], tuple[float, float | None]] = {}
    current: dict[str, tuple[str, int]] = {}
    for op in ops:
        for doc_id, version in op["docs"]:
            old = current.pop(doc_id, None)
            if old is not None:
                life[old] = (life[old][0], op["end"])
            if op["kind"] in ("add", "upsert"):
                key = (doc_id, version)
                life[key] = (op["start"], None)
                current[doc_id] = key
    return life


def test_readers_in_other_processes_see_whole_committed_states(tmp_path: Path) -> None:
    folder = tmp_path / "index"
    outs = {role: tmp_path / f"{role}.json" for role in ("writer", "opener", "reader")}
    writer = _start("writer", folder, SECONDS - WRITER_HEAD_START, outs["writer"])
    readers = {role: _start(role, folder, SECONDS, outs[role]) for role in ("opener", "reader")}
    try:
        written = _finish(writer, outs["writer"])
        results = {role: _finish(child, outs[role]) for role, child in readers.items()}
    finally:
        for child in (writer, *readers.values()):
            if child.poll() is None:
                child.kill()
    kinds = {op["kind"] for op in written["ops"]}
    assert kinds == {"add", "upsert", "delete", "compact"}, kinds
    life = _lifetimes(written["ops"])
    for role, result in results.items():
        assert result["errors"] == [], (
            f"{role}: {len(result['errors'])} errors, first:\n" + (result["errors"][0])
        )
        assert len(result["searches"]) >= 20, f"{role} searched too little"
        for search in result["searches"]:
            for doc_id, version in search["hits"]:
                key = (doc_id, version)
                assert key in life, f"{role} saw {key}, which was never committed"
                born, gone = life[key]
                assert born < search["end"], f"{role} saw {key} before it was written"
                assert gone is None or gone > search["start"], f"{role} saw {key} after it went"
        assert result["final"] == written["live"], f"{role} did not move forward"
        assert result["final_len"] == len(written["live"])
