"""Writer fairness: how many writes one writer completes while 16 threads search.

Issue 14 row 12: with 16 searching threads, the single writer of a ``VoyagerIndex``
managed about 3 writes per second. Target: at least 50 writes/s (batches of 10 small
documents) on the core index. This script measures, in one run and one process:

1. the writer alone (writes/s), 2. the searchers alone (searches/s), 3. both together:
writes/s, write latency p50/p99, searches/s, and the ratios to the runs alone.

Each write is ``index.add`` of ``--batch`` documents of 8-16 unit vectors (dim 128);
each search is one 32-token query, ``k=10``, over an index of ``--docs`` documents
(default 2,000: above the exact threshold, so searches take the HNSW + rerank path).
Every write is durable (fsync) as in normal use. Prints CPU time and load average.

    python benchmarks/writer_fairness.py                      # 16 readers, 20 s per phase
    python benchmarks/writer_fairness.py --seconds 2 --docs 300 --readers 4   # smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from sauerkraut_rag.retrievers.voyager.index import VoyagerIndex

DIM = 128


def _docs(rng: np.random.Generator, n: int) -> list[np.ndarray]:
    out = []
    for _ in range(n):
        x = rng.standard_normal((int(rng.integers(8, 17)), DIM)).astype(np.float32)
        out.append(x / np.linalg.norm(x, axis=1, keepdims=True))
    return out


def _searcher(index: VoyagerIndex, stop: threading.Event, counts: list[int], seed: int) -> None:
    rng = np.random.default_rng(seed)
    queries = [_docs(rng, 1)[0][:8].repeat(4, axis=0) for _ in range(16)]
    n = 0
    while not stop.is_set():
        index.search([queries[n % len(queries)]], 10)
        n += 1
    counts.append(n)


def _writer(
    index: VoyagerIndex, seconds: float, batch: int, prefix: str, latencies: list[float]
) -> int:
    rng = np.random.default_rng(7)
    pool = _docs(rng, 200)
    deadline = time.perf_counter() + seconds
    n = 0
    while time.perf_counter() < deadline:
        ids = [f"{prefix}{n}-{i}" for i in range(batch)]
        docs = [pool[(n * batch + i) % len(pool)] for i in range(batch)]
        started = time.perf_counter()
        index.add(ids, docs, [{"n": n}] * batch)
        latencies.append(time.perf_counter() - started)
        n += 1
    return n


def _phase(
    index: VoyagerIndex, *, readers: int, write: bool, seconds: float, batch: int, tag: str
) -> dict[str, Any]:
    stop = threading.Event()
    counts: list[int] = []
    threads = [
        threading.Thread(target=_searcher, args=(index, stop, counts, 100 + i))
        for i in range(readers)
    ]
    latencies: list[float] = []
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for thread in threads:
        thread.start()
    if write:
        writes = _writer(index, seconds, batch, tag, latencies)
    else:
        time.sleep(seconds)
        writes = 0
    stop.set()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - wall0
    ms = np.asarray(latencies) * 1000 if latencies else np.zeros(1)
    return {
        "readers": readers,
        "writes_per_s": writes / wall if write else None,
        "write_ms_p50": float(np.percentile(ms, 50)) if write else None,
        "write_ms_p99": float(np.percentile(ms, 99)) if write else None,
        "searches_per_s": sum(counts) / wall if readers else None,
        "cpu_s": time.process_time() - cpu0,
        "wall_s": wall,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    rng = np.random.default_rng(1)
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        folder = Path(tmp) / "index"
        with VoyagerIndex.create(folder, dim=DIM) as index:
            base = _docs(rng, args.docs)
            for lo in range(0, args.docs, 500):
                part = base[lo : lo + 500]
                index.add([f"base{lo + i}" for i in range(len(part))], part)
            index.save()  # waits until the graph holds every document (steady state)
            common = {"seconds": args.seconds, "batch": args.batch}
            alone = _phase(index, readers=0, write=True, tag="a", **common)
            index.save()
            readers = _phase(index, readers=args.readers, write=False, tag="r", **common)
            mixed = _phase(index, readers=args.readers, write=True, tag="m", **common)
            tail = index._snap.n_docs - index._snap.tail_start()
    result = {
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "writer_alone": alone,
        "readers_alone": readers,
        "writer_with_readers": mixed,
        "write_share_kept": mixed["writes_per_s"] / max(alone["writes_per_s"], 1e-9),
        "search_share_kept": mixed["searches_per_s"] / max(readers["searches_per_s"], 1e-9),
        "tail_at_end": tail,
        "load_average": os.getloadavg(),
    }
    return result


def _print(result: dict[str, Any]) -> None:
    alone, readers, mixed = (
        result["writer_alone"],
        result["readers_alone"],
        result["writer_with_readers"],
    )
    n = mixed["readers"]
    print(
        f"writer alone:            {alone['writes_per_s']:8.1f} writes/s "
        f"(p50 {alone['write_ms_p50']:.1f} ms, p99 {alone['write_ms_p99']:.1f} ms)"
    )
    print(f"{n} readers alone:       {readers['searches_per_s']:8.1f} searches/s")
    print(
        f"writer + {n} readers:    {mixed['writes_per_s']:8.1f} writes/s "
        f"(p50 {mixed['write_ms_p50']:.1f} ms, p99 {mixed['write_ms_p99']:.1f} ms), "
        f"{mixed['searches_per_s']:.1f} searches/s"
    )
    print(
        f"ratios: writes kept {result['write_share_kept']:.2f}x, "
        f"searches kept {result['search_share_kept']:.2f}x of their runs alone"
    )
    cpu = sum(r["cpu_s"] for r in (alone, readers, mixed))
    print(f"documents not yet in the graph at the end: {result['tail_at_end']}")
    print(f"CPU time {cpu:.1f} s; load average {result['load_average']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readers", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=20.0, help="per phase")
    parser.add_argument("--docs", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument("--dir", type=Path, default=None, help="where the index lives")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    result = run(args)
    _print(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
