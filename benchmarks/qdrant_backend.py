"""Benchmark QdrantIndex (client local mode, and Qdrant Edge in-process) against VoyagerIndex.

The corpus is ``index_strategies.py``'s synthetic clustered corpus (``corpus_family.py``,
``"base"`` member: 60-140 tokens of dim 128 per document). Every configuration is built
and queried in its own subprocess (clean peak RSS, CPU time of its own). Reported: build
time (``--docs`` documents in adds of 500), time to add ``--add-more`` documents in 10
adds, p50/p95 single-query latency (k=10), recall@10 against exact float32 MaxSim, size on
disk, resident memory, CPU seconds, and every ratio against VoyagerIndex (same run).

What the Qdrant rows mean:

* ``qdrant-local``: qdrant-client's **local mode** (``location=":memory:"``): a pure
  Python/NumPy implementation of the API. Every search scans every candidate vector in
  Python (no HNSW), writes go through pydantic models. It is a development and test
  mode: its numbers say nothing about a Qdrant server.
* ``qdrant-edge``: **Qdrant Edge**, Qdrant's Rust engine (segments, HNSW on the MUVERA
  vector, MaxSim, payload filters) in this process, on disk. The closest thing to one
  server node that runs here, without network and without the server's optimizer
  threads; a cluster adds network round trips and spreads the work over nodes.

    python benchmarks/qdrant_backend.py                       # 2,000 + 1,000 docs
    python benchmarks/qdrant_backend.py --docs 20000          # ~2M token vectors
    python benchmarks/qdrant_backend.py --configs voyager,qdrant-edge --queries 50
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from corpus_family import DIM, FAMILY, load_ragged, write_corpus
from index_strategies import (
    K,
    _disk_mb,
    _recall,
    _rss_mb,
    _search_row,
    _timed_adds,
    ground_truth,
)

CONFIGS: dict[str, dict[str, Any]] = {
    "voyager": {"backend": "voyager", "options": {}},
    "qdrant-local": {"backend": "qdrant", "where": "memory", "options": {}},
    "qdrant-edge": {"backend": "qdrant", "where": "edge", "options": {}},
    "qdrant-edge-f16": {
        "backend": "qdrant",
        "where": "edge",
        "options": {"vector_dtype": "float16"},
    },
    "qdrant-edge-int8": {"backend": "qdrant", "where": "edge", "options": {"quantization": "int8"}},
}
SEARCH_SETTINGS: dict[str, list[dict[str, Any]]] = {
    "voyager": [{"candidates": 128}],
    "qdrant-local": [{"candidates": 128}],
    "qdrant-edge": [{"candidates": 128}, {"candidates": 256}],
    "qdrant-edge-f16": [{"candidates": 128}],
    "qdrant-edge-int8": [{"candidates": 128}],
}


def _open(name: str, workdir: Path) -> Any:
    config = CONFIGS[name]
    folder = workdir / name
    if config["backend"] == "voyager":
        from sauerkraut_rag.retrievers.voyager.index import VoyagerIndex

        return VoyagerIndex.create(folder, dim=DIM, **config["options"]), folder
    from sauerkraut_rag.retrievers.qdrant import QdrantIndex

    options = dict(config["options"], show_progress=False)
    if config["where"] == "memory":
        return QdrantIndex("bench", dim=DIM, location=":memory:", **options), None
    return QdrantIndex("bench", dim=DIM, path=folder, engine="edge", **options), folder


def run(name: str, data: Path, n_docs: int, n_more: int, workdir: Path) -> dict[str, Any]:
    docs = load_ragged(data / "docs")
    queries = load_ragged(data / "queries")
    index, folder = _open(name, workdir)
    save = getattr(index, "save", lambda: None)
    build, add_more = _timed_adds(index.add, save, docs, n_docs, n_more)
    del docs
    rows = []
    for setting in SEARCH_SETTINGS[name]:
        index.configure(**setting)
        search = lambda q: [int(h.id) for h in index.search([q], K)[0]]  # noqa: E731
        rows.append(_search_row(setting, search, queries))
    result: dict[str, Any] = {"build_s": build, "add_more_s": add_more, "searches": rows}
    result["disk_mb"] = _disk_mb(folder) if folder is not None else float("nan")
    result["serve_rss_mb"] = _rss_mb()
    index.close()
    return result


def worker(args: argparse.Namespace) -> None:
    result = run(args.worker, Path(args.data), args.docs, args.add_more, Path(args.workdir))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result["max_rss_mb"] = usage.ru_maxrss / 1024
    result["cpu_s"] = usage.ru_utime + usage.ru_stime
    print(json.dumps(result))


def _spawn(name: str, args: argparse.Namespace, data: Path, workdir: Path) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--worker", name, "--data", str(data)]
    cmd += ["--workdir", str(workdir), "--docs", str(args.docs), "--add-more", str(args.add_more)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def report(results: dict[str, dict[str, Any]], truth: Any) -> None:
    print(
        "| config | search | build s | +add s | p50 ms | p95 ms | recall@10 | disk MB "
        "| serve RSS MB | peak RSS MB | CPU s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, res in results.items():
        for row in res["searches"]:
            setting = ", ".join(f"{k}={v}" for k, v in row["setting"].items()) or "-"
            cells = [
                name, setting, f"{res['build_s']:.1f}", f"{res['add_more_s']:.1f}",
                f"{row['p50']:.1f}", f"{row['p95']:.1f}", f"{_recall(row['found'], truth):.3f}",
                f"{res['disk_mb']:.1f}", f"{res['serve_rss_mb']:.0f}",
                f"{res['max_rss_mb']:.0f}", f"{res['cpu_s']:.1f}",
            ]  # fmt: skip
            print("| " + " | ".join(cells) + " |")
    if "voyager" not in results:
        return
    base = results["voyager"]
    print("\n| config (first setting) / voyager | build x | +add x | p50 x | p95 x | disk x |")
    print("|---|---|---|---|---|---|")
    for name, res in results.items():
        ratios = [
            res["build_s"] / base["build_s"],
            res["add_more_s"] / base["add_more_s"],
            res["searches"][0]["p50"] / base["searches"][0]["p50"],
            res["searches"][0]["p95"] / base["searches"][0]["p95"],
            res["disk_mb"] / base["disk_mb"],
        ]
        print(f"| {name} | " + " | ".join(f"{r:.2f}" for r in ratios) + " |")
    print(
        "\nqdrant-local is qdrant-client's local mode (pure Python/NumPy scans, no HNSW): "
        "not a Qdrant server's speed. qdrant-edge is Qdrant's Rust engine in this process "
        "(one shard, no network); a server or cluster adds network round trips."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=2000)
    parser.add_argument("--add-more", type=int, default=1000)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--configs", default=",".join(CONFIGS))
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--data", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    names = [c for c in args.configs.split(",") if c]
    unknown = sorted(set(names) - set(CONFIGS))
    if unknown:
        parser.error(f"unknown configs {unknown}; choose from {sorted(CONFIGS)}")
    tmp = Path(tempfile.mkdtemp(prefix="qdrant-bench-"))
    try:
        data = tmp / "data"
        data.mkdir()
        n_tokens = write_corpus(data, FAMILY["base"], args.docs + args.add_more, args.queries)
        truth = ground_truth(data, args.docs + args.add_more)
        load = os.getloadavg()
        print(
            f"corpus 'base': {args.docs} + {args.add_more} docs, {n_tokens} token vectors, "
            f"{args.queries} queries; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
        )
        results = {}
        for name in names:
            results[name] = _spawn(name, args, data, tmp / "work")
            shutil.rmtree(tmp / "work", ignore_errors=True)
        report(results, truth)
        load = os.getloadavg()
        print(f"load average at the end {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
