"""One saved index, one query: the same hits in every process, whatever its thread count.

Each reader is a fresh subprocess that opens the index read-only, so a graph that is
rebuilt or caught up on open is rebuilt in every reader; the readers run with different
BLAS thread counts (Voyager uses one thread per core unless told otherwise).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sauerkraut_rag.retrievers.voyager.index import VoyagerIndex
from tests.retrievers.helpers import clustered_docs, random_docs

ROOT = Path(__file__).resolve().parents[2]
DIM = 16

READER = """
import json, sys
import numpy as np
from sauerkraut_rag.retrievers.voyager.index import VoyagerIndex

index = VoyagerIndex.open(sys.argv[1], read_only=True)
queries = list(np.load(sys.argv[2]))
hits = index.search(queries, 10)
print(json.dumps([[(h.id, h.score) for h in q] for q in hits]))
"""


def _read(folder: Path, queries: Path, threads: int) -> list[list[list[object]]]:
    env = dict(os.environ)
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[name] = str(threads)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    out = subprocess.run(
        [sys.executable, "-c", READER, str(folder), str(queries)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=300,
    )
    return json.loads(out.stdout)


def _crash(index: VoyagerIndex) -> None:
    """Drop the index without close(): nothing written since the last save() reaches HNSW."""
    index._h.lock.release()
    index._h.conn.close()


@pytest.mark.parametrize("strategy", ["fde", "tokens"])
@pytest.mark.parametrize("graph", ["rebuilt", "caught-up", "saved"])
def test_two_processes_return_identical_hits(tmp_path, strategy, graph):
    docs, _ = clustered_docs(900, DIM, seed=3, n_topics=40)
    queries = random_docs(12, DIM, seed=4, lo=4, hi=8)
    np.save(tmp_path / "queries.npy", np.stack([q[:4] for q in queries]))
    # a shallow search makes every difference between two graphs visible in the hits
    index = VoyagerIndex.create(
        tmp_path / "idx",
        dim=DIM,
        strategy=strategy,
        exact_threshold=0,
        candidates=10,
        ef_search=10,
        token_k=4,
    )
    ids = [f"d{i}" for i in range(len(docs))]
    if graph == "caught-up":
        index.add(ids[:300], docs[:300])
        index.save()
        index.add(ids[300:], docs[300:])
        index.delete(ids[:20])
    else:
        index.add(ids, docs)
    if graph == "saved":
        index.close()
    else:
        _crash(index)
    first = _read(tmp_path / "idx", tmp_path / "queries.npy", threads=1)
    second = _read(tmp_path / "idx", tmp_path / "queries.npy", threads=2)
    assert first == second
    assert all(len(hits) == 10 for hits in first)
