"""Benchmark VoyagerIndex strategies against the exact full scan (and optionally PyLate).

A synthetic, clustered corpus (``corpus_family.py``; by default its ``"base"`` member:
documents of 60-140 tokens, dim 128, built from shared "concepts" grouped into topics, so
nearest neighbours are meaningful; ``--corpus`` picks another member) is streamed to disk
once; every configuration is then built and queried in its own subprocess (clean peak RSS).

Reported per configuration: build time, time to add ``--add-more`` documents in 10
adds, p50/p95 single-query latency (k=10), recall@10 against exact float32 MaxSim, the
latency ratio to the exact full scan measured in the same run, on-disk and resident
size (serving, peak, and peak anonymous memory: the peak without the memory-mapped corpus
pages the worker reads while it builds).

    python benchmarks/index_strategies.py                 # 2,000 docs
    python benchmarks/index_strategies.py --docs 20000    # ~2M token vectors
    python benchmarks/index_strategies.py --configs exact,fde --queries 50
    python benchmarks/index_strategies.py --docs 100000 --add-more 1000 --configs default

PyLate's Voyager index (token HNSW + exact rerank through ``pylate.retrieve``) is
measured when ``--pylate-python`` points at a Python with pylate and voyager 2.1
installed (PyLate 1.6 fails on voyager 2.2).
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from corpus_family import DIM, FAMILY, load_packed, load_ragged, make_corpus, write_corpus

K = 10

BUILD_CONFIGS: dict[str, dict[str, Any]] = {
    # full scans: float16 store (the index default) and float32 store
    "exact": {"exact_threshold": 10**9},
    "exact-f32": {"exact_threshold": 10**9, "vector_dtype": "float32"},
    # the defaults: fde, 5,120-float MUVERA vectors, float8 graph, ef_construction 64
    "default": {},
    "fde-f32": {"storage": "float32"},
    "fde-e4m3": {"storage": "e4m3"},
    "fde-f32-efc200": {"storage": "float32", "ef_construction": 200},
    "fde-2560": {"fde": {"num_repetitions": 20, "num_simhash_projections": 4, "projection_dim": 8}},
    # PyLate's design: every token vector in HNSW (PyLate's M/ef_construction here: 16/200)
    "tokens": {"strategy": "tokens", "hnsw_m": 16, "ef_construction": 200},
    "tokens-e4m3": {"strategy": "tokens", "storage": "e4m3"},
}
SEARCH_SETTINGS: dict[str, list[dict[str, Any]]] = {
    "exact": [{}],
    "exact-f32": [{}],
    "default": [{"candidates": c} for c in (128, 32, 64, 256)],
    "fde-f32": [{"candidates": c} for c in (128, 64)],
    "fde-e4m3": [{"candidates": 128}],
    "fde-f32-efc200": [{"candidates": c} for c in (128, 64)],
    "fde-2560": [{"candidates": c} for c in (128, 64, 256)],
    "tokens": [{"token_k": t, "candidates": c} for t, c in ((32, 128), (16, 64), (64, 256))],
    "tokens-e4m3": [{"token_k": 32, "candidates": 128}],
}


# ---------------------------------------------------------------------------- corpus


def ground_truth(data: Path, n_total: int) -> np.ndarray:
    """Exact float32 MaxSim top-10 ids per query over all documents (memory-mapped corpus)."""
    from sauerkraut_rag.retrievers.maxsim import maxsim_packed, topk_from_scores

    tokens, offsets = load_packed(data / "docs")
    queries = load_ragged(data / "queries")
    blocks = []
    for lo in range(0, n_total, 10_000):  # bounded float32 conversions of the memmap
        hi = min(lo + 10_000, n_total)
        part = offsets[lo : hi + 1]
        chunk = np.asarray(tokens[part[0] : part[-1]], dtype=np.float32)
        blocks.append(maxsim_packed(queries, chunk, part - part[0], check_finite=False))
    return topk_from_scores(np.concatenate(blocks, axis=1), K)[0]


# ---------------------------------------------------------------------------- workers


def _disk_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6


def _rss_mb(field: str = "VmRSS") -> float:
    """Current resident set size (``VmRSS``), or ``RssAnon`` (without mapped files)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


_PEAK_ANON = [0.0]
"""Highest ``RssAnon`` seen between adds: the peak without the memory-mapped corpus pages."""


def _note_anon() -> None:
    _PEAK_ANON[0] = max(_PEAK_ANON[0], _rss_mb("RssAnon"))


def _latencies(search: Any, queries: list[np.ndarray]) -> tuple[list[list[int]], np.ndarray]:
    for q in queries[:3]:  # warm-up
        search(q)
    found, times = [], []
    for q in queries:
        t0 = time.perf_counter()
        found.append(search(q))
        times.append(time.perf_counter() - t0)
    return found, np.asarray(times) * 1000


def _timed_adds(
    add: Any, finish: Any, docs: list[np.ndarray], n_docs: int, n_more: int
) -> tuple[float, float]:
    """Build with batches of 500, then add ``n_more`` documents in 10 calls; seconds each.

    ``finish()`` (persist everything) runs at the end of each phase, inside the timing.
    """
    t0 = time.perf_counter()
    for lo in range(0, n_docs, 500):
        hi = min(lo + 500, n_docs)
        add([str(i) for i in range(lo, hi)], docs[lo:hi])
        _note_anon()
    finish()
    _note_anon()
    build = time.perf_counter() - t0
    t0 = time.perf_counter()
    step = max(1, n_more // 10)
    for lo in range(n_docs, n_docs + n_more, step):
        hi = min(lo + step, n_docs + n_more)
        add([str(i) for i in range(lo, hi)], docs[lo:hi])
    finish()
    return build, time.perf_counter() - t0


def _search_row(setting: dict[str, Any], search: Any, queries: list[np.ndarray]) -> dict[str, Any]:
    found, ms = _latencies(search, queries)
    p50, p95 = float(np.median(ms)), float(np.percentile(ms, 95))
    return {"setting": setting, "found": found, "p50": p50, "p95": p95}


def run_ours(name: str, data: Path, n_docs: int, n_more: int, workdir: Path) -> dict[str, Any]:
    from sauerkraut_rag.retrievers.voyager.index import VoyagerIndex

    docs = load_ragged(data / "docs")
    queries = load_ragged(data / "queries")
    folder = workdir / name
    index = VoyagerIndex.create(folder, dim=DIM, **BUILD_CONFIGS[name])
    # every add is durable on return; save() also writes the (derived) HNSW graph
    build, add_more = _timed_adds(index.add, index.save, docs, n_docs, n_more)
    index.close()
    del docs
    t0 = time.perf_counter()
    index = VoyagerIndex.open(folder)
    reopen = time.perf_counter() - t0
    rows = []
    for setting in SEARCH_SETTINGS[name]:
        index.configure(**setting)
        search = lambda q: [int(h.id) for h in index.search([q], K)[0]]  # noqa: E731
        rows.append(_search_row(setting, search, queries))
    result = {"build_s": build, "add_more_s": add_more, "reopen_s": reopen}
    result.update(disk_mb=_disk_mb(folder), serve_rss_mb=_rss_mb(), searches=rows)
    index.close()
    return result


def run_pylate(data: Path, n_docs: int, n_more: int, workdir: Path) -> dict[str, Any]:
    """PyLate's Voyager index with the same HNSW parameters as our token strategy."""
    import torch
    from pylate import indexes, retrieve

    docs = load_ragged(data / "docs")
    queries = load_ragged(data / "queries")
    options = {"index_folder": str(workdir / "pylate"), "index_name": "bench"}
    options.update(embedding_size=DIM, M=16, ef_construction=200)
    index = indexes.Voyager(override=True, **options)
    # add_documents saves the graph and the pickled id maps on every call
    build, add_more = _timed_adds(index.add_documents, lambda: None, docs, n_docs, n_more)
    del docs, index
    t0 = time.perf_counter()
    index = indexes.Voyager(override=False, **options)
    reopen = time.perf_counter() - t0
    retriever = retrieve.ColBERT(index=index)

    def search(q: np.ndarray) -> list[int]:
        out = retriever.retrieve(queries_embeddings=[torch.from_numpy(q)], k=K)
        return [int(hit["id"]) for hit in out[0]]

    row = _search_row({"k_token": 100, "ef_search": 200}, search, queries)
    result = {"build_s": build, "add_more_s": add_more, "reopen_s": reopen}
    result.update(disk_mb=_disk_mb(workdir / "pylate"), serve_rss_mb=_rss_mb(), searches=[row])
    return result


def worker(args: argparse.Namespace) -> None:
    workdir = Path(args.workdir)
    if args.worker == "pylate":
        result = run_pylate(Path(args.data), args.docs, args.add_more, workdir)
    else:
        result = run_ours(args.worker, Path(args.data), args.docs, args.add_more, workdir)
    result["max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result["peak_anon_mb"] = _PEAK_ANON[0]
    print(json.dumps(result))


def threshold_sweep(sizes: list[int], n_queries: int) -> None:
    """Exact full scan vs the approximate (default fde) path on the same index, per size.

    The two paths alternate query by query, so machine load hits both alike; the
    crossover is where ``exact_threshold`` belongs.
    """
    from sauerkraut_rag.retrievers.voyager.index import VoyagerIndex

    docs, queries = make_corpus(FAMILY["base"], max(sizes), n_queries)
    print(f"{'docs':>6} {'exact p50 ms':>12} {'approx p50 ms':>13} {'approx/exact':>12}")
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            index = VoyagerIndex.create(Path(tmp) / str(n), dim=DIM, exact_threshold=0)
            index.add([str(i) for i in range(n)], docs[:n])
            times: dict[int, list[float]] = {10**9: [], 0: []}
            for q in queries:
                for threshold, bucket in times.items():
                    index.configure(exact_threshold=threshold)
                    t0 = time.perf_counter()
                    index.search([q], K)
                    bucket.append((time.perf_counter() - t0) * 1000)
            exact, approx = (float(np.median(times[t][3:])) for t in (10**9, 0))
            print(f"{n:>6} {exact:>12.1f} {approx:>13.1f} {approx / exact:>12.2f}")
            index.close()


# ---------------------------------------------------------------------------- driver


def _spawn(
    python: str, name: str, args: argparse.Namespace, data: Path, workdir: Path
) -> dict[str, Any]:
    cmd = [
        python,
        __file__,
        "--worker",
        name,
        "--data",
        str(data),
        "--workdir",
        str(workdir),
        "--docs",
        str(args.docs),
        "--add-more",
        str(args.add_more),
    ]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=2000)
    parser.add_argument("--add-more", type=int, default=1000)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--configs", default="exact,exact-f32,default,fde-f32,fde-2560,tokens")
    parser.add_argument("--corpus", default="base", choices=sorted(FAMILY))
    parser.add_argument("--pylate-python", default=None)
    parser.add_argument(
        "--sweep", default=None, help="comma-separated corpus sizes: exact vs approximate only"
    )
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--data", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    if args.sweep:
        threshold_sweep([int(n) for n in args.sweep.split(",")], args.queries)
        return

    tmp = Path(tempfile.mkdtemp(prefix="index-bench-"))
    try:
        data = tmp / "data"
        data.mkdir()
        t0 = time.perf_counter()
        spec = FAMILY[args.corpus]
        n_tokens = write_corpus(data, spec, args.docs + args.add_more, args.queries)
        truth = ground_truth(data, args.docs + args.add_more)
        print(
            f"corpus {args.corpus!r} ({spec.describe()}): {args.docs} + {args.add_more} docs, "
            f"{n_tokens} token vectors, {args.queries} queries of {spec.query_tokens} tokens "
            f"({time.perf_counter() - t0:.0f} s)"
        )
        names = [c for c in args.configs.split(",") if c]
        if args.pylate_python:
            names.append("pylate")
        results = {}
        for name in names:
            python = args.pylate_python if name == "pylate" else sys.executable
            results[name] = _spawn(python, name, args, data, tmp / "work")
            shutil.rmtree(tmp / "work", ignore_errors=True)
        report(results, truth)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _recall(found: list[list[int]], truth: np.ndarray) -> float:
    pairs = zip(found, truth, strict=True)
    return float(np.mean([len(set(f) & set(t.tolist())) / K for f, t in pairs]))


def report(results: dict[str, dict[str, Any]], truth: np.ndarray) -> None:
    """Markdown tables: every search setting, then ratios against PyLate."""
    exact_p50 = results["exact"]["searches"][0]["p50"] if "exact" in results else float("nan")
    print(
        "| config | search setting | build s | +add s | p50 ms | p95 ms | recall@10 "
        "| p50 / exact | disk MB | serve RSS MB | peak RSS MB | peak anon MB |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name, res in results.items():
        for row in res["searches"]:
            setting = ", ".join(f"{k}={v}" for k, v in row["setting"].items()) or "-"
            cells = [
                name, setting, f"{res['build_s']:.1f}", f"{res['add_more_s']:.1f}",
                f"{row['p50']:.1f}", f"{row['p95']:.1f}", f"{_recall(row['found'], truth):.3f}",
                f"{row['p50'] / exact_p50:.2f}", f"{res['disk_mb']:.1f}",
                f"{res['serve_rss_mb']:.0f}", f"{res['max_rss_mb']:.0f}",
                f"{res.get('peak_anon_mb', float('nan')):.0f}",
            ]  # fmt: skip
            print("| " + " | ".join(cells) + " |")
    if "pylate" not in results:
        return
    peer = results["pylate"]
    print("\n| config (first setting) | build x | +add x | p50 x | disk x | serve RSS x |")
    print("|---|---|---|---|---|---|")
    for name, res in results.items():
        ratios = [
            res["build_s"] / peer["build_s"],
            res["add_more_s"] / peer["add_more_s"],
            res["searches"][0]["p50"] / peer["searches"][0]["p50"],
            res["disk_mb"] / peer["disk_mb"],
            res["serve_rss_mb"] / peer["serve_rss_mb"],
        ]
        print(f"| {name} | " + " | ".join(f"{r:.3f}" for r in ratios) + " |")


if __name__ == "__main__":
    main()
