"""Benchmark VoyagerIndex strategies against the exact full scan (and optionally PyLate).

A synthetic, clustered corpus (documents of 60-140 tokens, dim 128, built from shared
"concepts" grouped into topics, so nearest neighbours are meaningful) is written once;
every configuration is then built and queried in its own subprocess (clean peak RSS).

Reported per configuration: build time, time to add ``--add-more`` documents in 10
adds, p50/p95 single-query latency (k=10), recall@10 against exact float32 MaxSim, the
latency ratio to the exact full scan measured in the same run, on-disk and peak
resident size.

    python benchmarks/index_strategies.py                 # 2,000 docs
    python benchmarks/index_strategies.py --docs 20000    # ~2M token vectors
    python benchmarks/index_strategies.py --configs exact,fde --queries 50

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

DIM = 128
QUERY_TOKENS = 32
K = 10

BUILD_CONFIGS: dict[str, dict[str, Any]] = {
    # full scans: float16 store (the index default) and float32 store
    "exact": {"exact_threshold": 10**9},
    "exact-f32": {"exact_threshold": 10**9, "vector_dtype": "float32"},
    "default": {},
    "fde": {"strategy": "fde", "exact_threshold": 0},
    "fde-2560": {
        "strategy": "fde",
        "exact_threshold": 0,
        "fde": {"num_repetitions": 20, "num_simhash_projections": 4, "projection_dim": 8},
    },
    "tokens": {"strategy": "tokens", "hnsw_m": 16, "ef_construction": 200, "exact_threshold": 0},
    "tokens-e4m3": {"strategy": "tokens", "storage": "e4m3", "exact_threshold": 0},
}
SEARCH_SETTINGS: dict[str, list[dict[str, Any]]] = {
    "exact": [{}],
    "exact-f32": [{}],
    "default": [{}],
    "fde": [{"candidates": c} for c in (32, 64, 128, 256)],
    "fde-2560": [{"candidates": c} for c in (64, 128, 256)],
    "tokens": [{"token_k": t, "candidates": c} for t, c in ((16, 64), (32, 128), (64, 256))],
    "tokens-e4m3": [{"token_k": 32, "candidates": 128}],
}


# ---------------------------------------------------------------------------- corpus


def _normalise(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def make_corpus(
    n_docs: int, n_queries: int, seed: int = 0
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Clustered documents and queries: tokens are noisy copies of topic concepts."""
    rng = np.random.default_rng(seed)
    concepts = _normalise(rng.standard_normal((4096, DIM)))
    n_topics = max(20, n_docs // 25)
    topic_concepts = rng.integers(0, len(concepts), size=(n_topics, 48))
    weights = 1.0 / np.arange(1, 49) ** 0.8
    weights /= weights.sum()

    def sample(topics: np.ndarray, n: int, noise: float, own: np.ndarray | None) -> np.ndarray:
        picks = topics[(rng.random(n) > 0.7).astype(int)]
        ids = topic_concepts[picks, rng.choice(48, size=n, p=weights)]
        if own is not None:  # queries: half of the tokens restate the target document
            reuse = rng.random(n) < 0.5
            ids[reuse] = own[rng.integers(0, len(own), size=int(reuse.sum()))]
        return _normalise(concepts[ids] + noise * rng.standard_normal((n, DIM)) / np.sqrt(DIM))

    doc_topics = rng.integers(0, n_topics, size=(n_docs, 2))
    doc_concepts: list[np.ndarray] = []
    docs = []
    for topics in doc_topics:
        n = int(rng.integers(60, 141))
        picks = topics[(rng.random(n) > 0.7).astype(int)]
        ids = topic_concepts[picks, rng.choice(48, size=n, p=weights)]
        doc_concepts.append(ids)
        docs.append(_normalise(concepts[ids] + 0.7 * rng.standard_normal((n, DIM)) / np.sqrt(DIM)))
    targets = rng.integers(0, n_docs, size=n_queries)
    queries = [sample(doc_topics[t], QUERY_TOKENS, 0.9, doc_concepts[t]) for t in targets]
    return docs, queries


def save_ragged(path: Path, arrays: list[np.ndarray]) -> None:
    offsets = np.zeros(len(arrays) + 1, dtype=np.int64)
    np.cumsum([len(a) for a in arrays], out=offsets[1:])
    np.save(path.with_suffix(".tokens.npy"), np.concatenate(arrays), allow_pickle=False)
    np.save(path.with_suffix(".offsets.npy"), offsets, allow_pickle=False)


def load_ragged(path: Path) -> list[np.ndarray]:
    tokens = np.load(path.with_suffix(".tokens.npy"), mmap_mode="r", allow_pickle=False)
    offsets = np.load(path.with_suffix(".offsets.npy"), allow_pickle=False)
    return [np.asarray(tokens[a:b]) for a, b in zip(offsets[:-1], offsets[1:], strict=True)]


def ground_truth(data: Path, n_total: int) -> np.ndarray:
    """Exact float32 MaxSim top-10 ids per query over all documents."""
    from sauerkraut_rag.retrievers.maxsim import maxsim_packed, topk_from_scores

    tokens = np.load((data / "docs").with_suffix(".tokens.npy"), allow_pickle=False)
    offsets = np.load((data / "docs").with_suffix(".offsets.npy"), allow_pickle=False)
    queries = load_ragged(data / "queries")
    scores = maxsim_packed(queries, tokens, offsets[: n_total + 1])
    return topk_from_scores(scores, K)[0]


# ---------------------------------------------------------------------------- workers


def _disk_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6


def _latencies(search: Any, queries: list[np.ndarray]) -> tuple[list[list[int]], np.ndarray]:
    for q in queries[:3]:  # warm-up
        search(q)
    found, times = [], []
    for q in queries:
        t0 = time.perf_counter()
        found.append(search(q))
        times.append(time.perf_counter() - t0)
    return found, np.asarray(times) * 1000


def run_ours(name: str, data: Path, n_docs: int, n_more: int, workdir: Path) -> dict[str, Any]:
    from sauerkraut_rag.retrievers.index import VoyagerIndex

    docs = load_ragged(data / "docs")
    queries = load_ragged(data / "queries")
    folder = workdir / name
    t0 = time.perf_counter()
    index = VoyagerIndex.create(folder, dim=DIM, **BUILD_CONFIGS[name])
    for lo in range(0, n_docs, 500):
        hi = min(lo + 500, n_docs)
        index.add([str(i) for i in range(lo, hi)], docs[lo:hi])
    index.save()
    build = time.perf_counter() - t0
    t0 = time.perf_counter()
    step = max(1, n_more // 10)
    for lo in range(n_docs, n_docs + n_more, step):
        hi = min(lo + step, n_docs + n_more)
        index.add([str(i) for i in range(lo, hi)], docs[lo:hi])
    index.save()
    add_more = time.perf_counter() - t0
    index.close()
    t0 = time.perf_counter()
    index = VoyagerIndex.open(folder)
    reopen = time.perf_counter() - t0
    rows = []
    for setting in SEARCH_SETTINGS[name]:
        index.configure(**setting)
        found, ms = _latencies(lambda q: [int(h.id) for h in index.search([q], K)[0]], queries)
        rows.append(
            {
                "setting": setting,
                "found": found,
                "p50": float(np.median(ms)),
                "p95": float(np.percentile(ms, 95)),
            }
        )
    index.close()
    return {
        "build_s": build,
        "add_more_s": add_more,
        "reopen_s": reopen,
        "disk_mb": _disk_mb(folder),
        "searches": rows,
    }


def run_pylate(data: Path, n_docs: int, n_more: int, workdir: Path) -> dict[str, Any]:
    """PyLate's Voyager index with the same HNSW parameters as our token strategy."""
    import torch
    from pylate import indexes, retrieve

    docs = load_ragged(data / "docs")
    queries = load_ragged(data / "queries")
    t0 = time.perf_counter()
    index = indexes.Voyager(
        index_folder=str(workdir / "pylate"),
        index_name="bench",
        override=True,
        embedding_size=DIM,
        M=16,
        ef_construction=200,
    )
    index.add_documents([str(i) for i in range(n_docs)], docs[:n_docs], batch_size=500)
    build = time.perf_counter() - t0
    t0 = time.perf_counter()
    step = max(1, n_more // 10)
    for lo in range(n_docs, n_docs + n_more, step):
        hi = min(lo + step, n_docs + n_more)
        index.add_documents([str(i) for i in range(lo, hi)], docs[lo:hi])
    add_more = time.perf_counter() - t0
    retriever = retrieve.ColBERT(index=index)

    def search(q: np.ndarray) -> list[int]:
        out = retriever.retrieve(queries_embeddings=[torch.from_numpy(q)], k=K)
        return [int(hit["id"]) for hit in out[0]]

    found, ms = _latencies(search, queries)
    return {
        "build_s": build,
        "add_more_s": add_more,
        "reopen_s": float("nan"),
        "disk_mb": _disk_mb(workdir / "pylate"),
        "searches": [
            {
                "setting": {"k_token": 100, "ef_search": 200},
                "found": found,
                "p50": float(np.median(ms)),
                "p95": float(np.percentile(ms, 95)),
            }
        ],
    }


def worker(args: argparse.Namespace) -> None:
    workdir = Path(args.workdir)
    if args.worker == "pylate":
        result = run_pylate(Path(args.data), args.docs, args.add_more, workdir)
    else:
        result = run_ours(args.worker, Path(args.data), args.docs, args.add_more, workdir)
    result["max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


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
    parser.add_argument("--configs", default="exact,exact-f32,default,fde,fde-2560,tokens")
    parser.add_argument("--pylate-python", default=None)
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--data", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return

    tmp = Path(tempfile.mkdtemp(prefix="index-bench-"))
    try:
        data = tmp / "data"
        data.mkdir()
        t0 = time.perf_counter()
        docs, queries = make_corpus(args.docs + args.add_more, args.queries)
        save_ragged(data / "docs", docs)
        save_ragged(data / "queries", queries)
        n_tokens = sum(len(d) for d in docs)
        del docs
        truth = ground_truth(data, args.docs + args.add_more)
        print(
            f"corpus: {args.docs} + {args.add_more} docs, {n_tokens} token vectors, "
            f"{args.queries} queries x {QUERY_TOKENS} tokens ({time.perf_counter() - t0:.0f} s)"
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


def report(results: dict[str, dict[str, Any]], truth: np.ndarray) -> None:
    exact_p50 = results["exact"]["searches"][0]["p50"] if "exact" in results else float("nan")
    header = (
        f"{'config':<10} {'search setting':<34} {'build s':>8} {'+add s':>7} {'p50 ms':>7} "
        f"{'p95 ms':>7} {'recall':>7} {'p50/exact':>9} {'disk MB':>8} {'RSS MB':>7}"
    )
    print(header)
    print("-" * len(header))
    for name, res in results.items():
        for row in res["searches"]:
            recall = np.mean(
                [
                    len(set(f) & set(t.tolist())) / K
                    for f, t in zip(row["found"], truth, strict=True)
                ]
            )
            setting = ",".join(f"{k}={v}" for k, v in row["setting"].items()) or "-"
            print(
                f"{name:<10} {setting:<34} {res['build_s']:>8.1f} {res['add_more_s']:>7.1f} "
                f"{row['p50']:>7.1f} {row['p95']:>7.1f} {recall:>7.3f} "
                f"{row['p50'] / exact_p50:>9.2f} {res['disk_mb']:>8.1f} {res['max_rss_mb']:>7.0f}"
            )


if __name__ == "__main__":
    main()
