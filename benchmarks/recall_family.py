"""Recall@10 and latency of the default ``VoyagerIndex`` on every corpus of the family.

For each corpus of ``corpus_family.FAMILY`` and each size, the corpus is streamed to disk,
the exact float32 MaxSim top-10 of every query is computed (ground truth), and a worker
subprocess builds a default index (adds of 1,000 documents, then ``close()``), reopens
it and searches. Reported per corpus and size:

* recall@10 of the default settings against the exact top-10, and the recall of each
  candidate source alone (``fde``: the MUVERA HNSW graph, ``cells``: the token cells)
  as a diagnosis;
* p50 / p95 latency of the default search and of the exact full scan over the same index
  (the two alternate query by query, so machine load hits both alike) and their ratio;
* build time, token vectors, disk size.

Recall does not depend on machine load; latency does (run it on a quiet machine):

    python benchmarks/recall_family.py                                  # 3,000 docs, all corpora
    python benchmarks/recall_family.py --sizes 3000,20000 --queries 100
    python benchmarks/recall_family.py --corpora paraphrase --sizes 3000 --inspect
"""

from __future__ import annotations

import argparse
import itertools
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from corpus_family import DIM, FAMILY, load_packed, load_ragged, write_corpus
from index_strategies import ground_truth

K = 10
SOURCES: dict[str, dict[str, Any]] = {
    "default": {},
    "fde only": {"cell_candidates": 0},
    "cells only": {"candidates": 0},
}
"""Search settings per reported column (``configure`` keywords)."""


def _recall(found: list[list[int]], truth: np.ndarray) -> float:
    pairs = zip(found, truth, strict=True)
    return float(np.mean([len(set(f) & set(t.tolist())) / K for f, t in pairs]))


def _search_ids(index: Any, query: np.ndarray) -> list[int]:
    return [int(h.id) for h in index.search([query], K)[0]]


def worker(data: Path, folder: Path, n_exact: int) -> dict[str, Any]:
    """Build, reopen and query one index; latencies in ms."""
    from sauerkraut_rag.retrievers.voyager.index import VoyagerIndex

    docs = load_ragged(data / "docs")
    queries = load_ragged(data / "queries")
    t0 = time.perf_counter()
    index = VoyagerIndex.create(folder, dim=DIM)
    for lo in range(0, len(docs), 1000):
        hi = min(lo + 1000, len(docs))
        index.add([str(i) for i in range(lo, hi)], docs[lo:hi])
    index.close()
    build = time.perf_counter() - t0
    del docs
    index = VoyagerIndex.open(folder, read_only=True)
    defaults = {k: getattr(index.config, k) for k in ("candidates", "exact_threshold")}
    if hasattr(index.config, "cell_candidates"):
        defaults["cell_candidates"] = index.config.cell_candidates
    found: dict[str, list[list[int]]] = {}
    for name, setting in SOURCES.items():
        if "cell_candidates" not in defaults and name != "default":
            continue  # an index without token cells: the default is the FDE source alone
        index.configure(**{**defaults, **setting})
        found[name] = [_search_ids(index, q) for q in queries]
    index.configure(**defaults)
    for q in queries[:3]:  # warm-up (page cache, float32 copies)
        index.search([q], K)
    approx, exact = [], []
    for i, q in enumerate(queries):
        t = time.perf_counter()
        index.search([q], K)
        approx.append(time.perf_counter() - t)
        if i < n_exact:
            index.configure(exact_threshold=10**12)
            t = time.perf_counter()
            index.search([q], K)
            exact.append(time.perf_counter() - t)
            index.configure(exact_threshold=defaults["exact_threshold"])
    stats = index.stats()
    index.close()
    ms = lambda xs, p: float(np.percentile(np.asarray(xs) * 1000, p))  # noqa: E731
    return {
        "found": found,
        "build_s": build,
        "p50": ms(approx, 50),
        "p95": ms(approx, 95),
        "exact_p50": ms(exact, 50),
        "exact_p95": ms(exact, 95),
        "disk_mb": stats["disk_bytes"] / 1e6,
        "tokens": stats["tokens"],
    }


def inspect_misses(data: Path, truth: np.ndarray, found: list[list[int]]) -> None:
    """Where the missed true top-10 documents rank by exact score and by FDE similarity."""
    from sauerkraut_rag.retrievers.maxsim import maxsim_packed
    from sauerkraut_rag.retrievers.muvera import MuveraEncoder
    from sauerkraut_rag.retrievers.voyager.config import IndexConfig

    tokens, offsets = load_packed(data / "docs")
    queries = load_ragged(data / "queries")
    muvera = MuveraEncoder(IndexConfig(dim=DIM).fde_config())
    docs = [np.asarray(tokens[a:b]) for a, b in itertools.pairwise(offsets.tolist())]
    fde_d = muvera.encode_documents(docs)
    fde_d /= np.linalg.norm(fde_d, axis=1, keepdims=True)
    for i, (f, t) in enumerate(zip(found, truth, strict=True)):
        missed = [d for d in t.tolist() if d not in f]
        if not missed:
            continue
        exact = maxsim_packed([queries[i]], np.asarray(tokens), offsets)[0]
        q = muvera.encode_query(np.asarray(queries[i]))
        fde_rank = np.argsort(np.argsort(-(fde_d @ (q / np.linalg.norm(q)))))
        s = np.sort(exact)[::-1]
        print(
            f"query {i}: missed {missed} at FDE ranks {[int(fde_rank[d]) for d in missed]}; "
            f"exact scores {[round(float(exact[d]), 3) for d in missed]}, "
            f"10th {s[9]:.3f}, 11th {s[10]:.3f}, 1st {s[0]:.3f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpora", default=",".join(FAMILY))
    parser.add_argument("--sizes", default="3000")
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--exact-queries", type=int, default=20, help="queries timed exactly")
    parser.add_argument("--inspect", action="store_true", help="print where misses rank")
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        data, folder, n_exact = args.worker
        print(json.dumps(worker(Path(data), Path(folder), int(n_exact))))
        return
    print(
        "| corpus | docs | tokens | recall@10 | fde only | cells only | p50 ms | p95 ms "
        "| exact p50 ms | p50 / exact | build s | disk MB |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for size in [int(s) for s in args.sizes.split(",")]:
        for name in args.corpora.split(","):
            tmp = Path(tempfile.mkdtemp(prefix="recall-family-"))
            try:
                write_corpus(tmp / "data", FAMILY[name], size, args.queries)
                truth = ground_truth(tmp / "data", size)
                cmd = [sys.executable, __file__, "--worker", str(tmp / "data"), str(tmp / "idx")]
                cmd.append(str(args.exact_queries))
                out = subprocess.run(cmd, capture_output=True, text=True)
                if out.returncode:
                    raise RuntimeError(f"worker failed:\n{out.stderr}")
                res = json.loads(out.stdout.strip().splitlines()[-1])
                rec = {k: _recall(v, truth) for k, v in res["found"].items()}
                cells = [f"{rec.get(k, float('nan')):.3f}" for k in SOURCES]
                print(
                    f"| {name} | {size} | {res['tokens']} | " + " | ".join(cells) + " | "
                    f"{res['p50']:.1f} | {res['p95']:.1f} | {res['exact_p50']:.1f} | "
                    f"{res['p50'] / res['exact_p50']:.3f} | {res['build_s']:.1f} | "
                    f"{res['disk_mb']:.0f} |",
                    flush=True,
                )
                if args.inspect:
                    inspect_misses(tmp / "data", truth, res["found"]["default"])
            finally:
                shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
