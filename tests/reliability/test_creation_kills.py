"""Crash-safe creation: 30 SIGKILLs inside ``VoyagerIndex.create`` leave usable folders.

``creation_worker.py`` kills creations at random lines of package code and at random
times (inside C code too). Afterwards every folder either opens as an empty index or
can be created (a half-built folder is recognised and cleared), and then works.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from sauerkraut_rag.retrievers.voyager.index import VoyagerIndex
from sauerkraut_rag.retrievers.voyager.layout import is_index
from tests.reliability.creation_worker import DIM
from tests.retrievers.helpers import random_docs

WORKER = Path(__file__).with_name("creation_worker.py")
KILLS = 30


def _usable(folder: Path) -> str:
    """Open or create the index in ``folder`` and use it; returns which one happened."""
    how = "opened" if is_index(folder) else "created"
    index = VoyagerIndex.open(folder) if how == "opened" else VoyagerIndex.create(folder, dim=DIM)
    with index:
        assert len(index) == 0
        docs = random_docs(3, DIM, seed=1)
        index.add(["a", "b", "c"], docs)
        hits = index.search([docs[1]], 1)[0]
        assert [h.id for h in hits] == ["b"]
    with VoyagerIndex.open(folder, read_only=True) as again:
        assert sorted(d.id for d in again.get(["a", "b", "c"])) == ["a", "b", "c"]
        assert np.array_equal(
            again.get(["c"], include_vectors=True)[0].multivector, docs[2].astype(np.float16)
        )
    return how


def test_kills_during_creation_leave_usable_folders(tmp_path: Path) -> None:
    spec = {"parent": str(tmp_path), "seed": 14, "kills": KILLS}
    done = subprocess.run(
        [sys.executable, str(WORKER), json.dumps(spec)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rounds = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(rounds) == KILLS
    assert sum(r["killed"] for r in rounds) >= KILLS - 2, "too few kills landed"
    outcomes = {_usable(Path(r["folder"])) for r in rounds}
    assert outcomes == {"opened", "created"}, outcomes  # kills before and after the commit
