"""A fair writer: background graph insertion with an exactly scored tail, and the gate.

Writes no longer wait for the HNSW graph: the documents a write adds are the snapshot's
"tail" until the background indexer has inserted them, and searches score the tail
exactly next to the graph's candidates. The gate keeps searches from starving the
writer. ``benchmarks/writer_fairness.py`` measures writes/s with 16 searching threads;
the smoke test here runs it on a tiny size.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from sauerkraut_rag.retrievers.voyager import indexer as indexer_module
from sauerkraut_rag.retrievers.voyager.gate import BESIDE_WRITER, Gate
from sauerkraut_rag.retrievers.voyager.index import VoyagerIndex
from tests.retrievers.helpers import assert_matches_brute_force, random_docs, unit_rows

DIM = 16


@pytest.mark.parametrize("strategy", ["fde", "tokens"])
def test_documents_not_yet_in_the_graph_are_found_exactly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, strategy: str
) -> None:
    # every document of the graph is a candidate: a miss can only come from the tail
    options = {"strategy": strategy, "exact_threshold": 0, "candidates": 9999, "token_k": 9999}
    docs = dict(zip([f"d{i}" for i in range(120)], random_docs(120, DIM, seed=3), strict=True))
    ids = list(docs)
    with VoyagerIndex.create(tmp_path / "idx", dim=DIM, **options) as index:
        index.add(ids[:100], [docs[i] for i in ids[:100]])
        index.save()
        paused = staticmethod(lambda snap: False)  # the indexer sees nothing to do
        monkeypatch.setattr(indexer_module.Indexer, "_pending", paused)
        index.add(ids[100:], [docs[i] for i in ids[100:]])
        index.delete(["d3", "d105"])
        del docs["d3"], docs["d105"]
        snap = index._snap
        assert snap.n_docs - snap.tail_start() == 20  # the tail: not in the graph
        for seed in range(4):
            rng = np.random.default_rng(seed)
            query = docs[f"d{100 + seed * 3}"][:2] if seed % 2 else unit_rows(rng, 3, DIM)
            hits = index.search([query], 5)[0]
            assert_matches_brute_force(hits, query, docs, 5)
        monkeypatch.undo()
        index._h.indexer.notify()
        index._h.indexer.drain()
        assert index._snap.tail_start() == index._snap.n_docs
        query = docs["d110"][:3]
        assert_matches_brute_force(index.search([query], 5)[0], query, docs, 5)
    with VoyagerIndex.open(tmp_path / "idx") as reopened:  # the saved graph holds them all
        assert not reopened._writer.hnsw_dirty
        assert reopened._snap.tail_start() == reopened._snap.n_docs


def test_gate_admits_one_search_beside_a_write() -> None:
    gate = Gate(slots=4)
    running, peak = [0], {"free": 0, "writing": 0}
    lock = threading.Lock()
    writing = threading.Event()
    stop = threading.Event()

    def search() -> None:
        while not stop.is_set():
            with gate.search():
                with lock:
                    running[0] += 1
                    key = "writing" if writing.is_set() else "free"
                    peak[key] = max(peak[key], running[0])
                time.sleep(0.002)
                with lock:
                    running[0] -= 1

    threads = [threading.Thread(target=search) for _ in range(12)]
    for thread in threads:
        thread.start()
    time.sleep(0.2)
    with gate.write():
        time.sleep(0.05)  # searches admitted before the write drain away
        writing.set()
        time.sleep(0.3)
        writing.clear()
    time.sleep(0.1)
    stop.set()
    for thread in threads:
        thread.join()
    assert peak["free"] == 4
    assert peak["writing"] <= BESIDE_WRITER


def test_gate_is_reentrant_for_a_thread() -> None:
    gate = Gate(slots=1)
    with gate.search(), gate.search():  # a callable filter that searches again
        pass
    with gate.write(), gate.search():  # a write that reads
        pass


def test_writer_fairness_benchmark_smoke(tmp_path: Path) -> None:
    script = Path(__file__).resolve().parents[2] / "benchmarks" / "writer_fairness.py"
    out = tmp_path / "result.json"
    args = ["--readers", "4", "--seconds", "0.7", "--docs", "120", "--dir", str(tmp_path)]
    done = subprocess.run(
        [sys.executable, str(script), *args, "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text(encoding="utf-8"))
    mixed = result["writer_with_readers"]
    assert result["writer_alone"]["writes_per_s"] > 0
    assert mixed["writes_per_s"] > 0 and mixed["searches_per_s"] > 0
    assert result["readers_alone"]["searches_per_s"] > 0
    assert "writes/s" in done.stdout and "load average" in done.stdout
