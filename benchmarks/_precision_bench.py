"""Page encoding in float32 against a lower precision (bfloat16): speed and fidelity.

Used by ``benchmarks/encode_throughput.py --compare-dtype bfloat16``.  For each page
model a random-weight checkpoint (``--size real``: the real shapes of
``_collfm2_bench.py``/``_colqwen3_bench.py``; ``tiny``: the test factories') is encoded
by our encoder in its own child process per dtype and round (order alternating), one
page at a time, ``--pages`` document-like pages (``_page_bench.make_pages``) of
``--page-size``, plus ``--queries`` queries.  Reported:

- speed: median wall and CPU seconds per page per dtype, the ratios to float32, the
  load average seen by the children;
- fidelity of the low-precision vectors to the float32 ones (first round): per-token
  cosine (mean and min) for pages and for queries; MaxSim top-10 overlap over the pages
  (low-precision queries on low-precision pages, and low-precision queries on float32
  pages, i.e. a bfloat16 query against a float32-built index) with the overlap a random
  ranking would give; the largest relative MaxSim score difference.

Random weights measure rounding, not retrieval quality: with trained weights scores are
better separated, so overlaps are at least as high (an assumption, stated as such).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from _page_bench import run_worker
from _page_checkpoints import WORKERS, checkpoint

K = 10


def load_vectors(path: Path) -> list[np.ndarray]:
    """The arrays of a worker's ``.npz`` in order (no pickle)."""
    with np.load(path, allow_pickle=False) as data:
        return [data[f"arr_{i}"] for i in range(len(data.files))]


def token_cosines(reference: list[np.ndarray], other: list[np.ndarray]) -> np.ndarray:
    """Cosine of every token vector pair (same item, same position)."""
    out = []
    for a, b in zip(reference, other, strict=True):
        if a.shape != b.shape:
            raise ValueError(f"token counts differ: {a.shape} vs {b.shape}")
        norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
        out.append((a * b).sum(axis=1) / norms)
    return np.concatenate(out)


def maxsim_matrix(queries: list[np.ndarray], pages: list[np.ndarray]) -> np.ndarray:
    """``(n_queries, n_pages)`` MaxSim scores in float64."""
    return np.array(
        [[float((q.astype(np.float64) @ p.T).max(axis=1).sum()) for p in pages] for q in queries]
    )


def topk_overlap(reference: np.ndarray, other: np.ndarray, k: int) -> float:
    """Mean share of the reference top-``k`` found in the other top-``k`` (per query)."""
    k = min(k, reference.shape[1])
    shares = []
    for ref_row, row in zip(reference, other, strict=True):
        top_ref = set(np.argsort(-ref_row, kind="stable")[:k].tolist())
        top = set(np.argsort(-row, kind="stable")[:k].tolist())
        shares.append(len(top_ref & top) / k)
    return float(np.mean(shares))


def fidelity(work: Path, dtype: str) -> dict[str, Any]:
    """Compare ``work/<dtype>-pages.npz``/``-queries.npz`` to the float32 files."""
    pages = {d: load_vectors(work / f"{d}-pages.npz") for d in ("float32", dtype)}
    queries = {d: load_vectors(work / f"{d}-queries.npz") for d in ("float32", dtype)}
    page_cos = token_cosines(pages["float32"], pages[dtype])
    query_cos = token_cosines(queries["float32"], queries[dtype])
    exact = maxsim_matrix(queries["float32"], pages["float32"])
    low = maxsim_matrix(queries[dtype], pages[dtype])
    mixed = maxsim_matrix(queries[dtype], pages["float32"])
    return {
        "page_cos_mean": float(page_cos.mean()),
        "page_cos_min": float(page_cos.min()),
        "page_tokens": int(page_cos.size),
        "query_cos_mean": float(query_cos.mean()),
        "query_cos_min": float(query_cos.min()),
        "overlap_low": topk_overlap(exact, low, K),
        "overlap_mixed": topk_overlap(exact, mixed, K),
        "chance": min(K, exact.shape[1]) / exact.shape[1],
        "score_rel_err": float(np.max(np.abs(low - exact) / np.abs(exact))),
    }


def bench_precision(model: str, args: argparse.Namespace) -> list[str]:
    """Speed and fidelity of ``args.compare_dtype`` against float32 for one page model."""
    dtype = args.compare_dtype
    dtypes = ("float32", dtype)
    with (
        checkpoint(model, args.size, seed=args.seed, cache=args.checkpoints) as (ck, n_params),
        tempfile.TemporaryDirectory(prefix=f"precision-{model}-") as tmp,
    ):
        work = Path(tmp)
        runs: dict[str, list[dict[str, Any]]] = {d: [] for d in dtypes}
        for r in range(args.page_rounds):
            for d in dtypes if r % 2 == 0 else dtypes[::-1]:
                options = [
                    *("--pages", str(args.pages), "--seed", str(args.seed), "--dtype", d),
                    *("--page-size", args.page_size, "--page-kind", "document"),
                    *("--queries", str(args.queries)),
                    *("--out", str(work / f"{d}-pages.npz")),
                    *("--queries-out", str(work / f"{d}-queries.npz")),
                ]
                res = run_worker(
                    sys.executable, WORKERS[model], "ours", ck, options, threads=args.threads
                )
                runs[d].append(res)
                print(
                    f"  {model} round {r + 1} {d:9s} wall {res['seconds']:8.2f} s "
                    f"cpu {res['span_cpu']:8.2f} s",
                    file=sys.stderr,
                )
            if r == 0:
                fid = fidelity(work, dtype)
    first = runs["float32"][0]
    lines = [
        f"{model}: {args.size} shape ({n_params / 1e6:.3g}M parameters, random weights), "
        f"float32 vs {dtype}: {args.pages} document page(s) of {args.page_size} one at a time "
        f"({first['tokens_per_page']} vectors/page), {args.queries} queries, "
        f"{first['threads']} torch threads, {args.page_rounds} round(s)",
        "| dtype | wall s/page (median) | CPU s/page (median) | speed-up wall | speed-up CPU "
        "| load average |",
        "|---|---|---|---|---|---|",
    ]
    wall = {d: statistics.median(r["seconds"] for r in runs[d]) / args.pages for d in dtypes}
    cpu = {d: statistics.median(r["span_cpu"] for r in runs[d]) / args.pages for d in dtypes}
    for d in dtypes:
        loads = [r[k] for r in runs[d] for k in ("span_load_before", "span_load_after")]
        lines.append(
            f"| {d} | {wall[d]:.3f} | {cpu[d]:.3f} | {wall['float32'] / wall[d]:.2f}x | "
            f"{cpu['float32'] / cpu[d]:.2f}x | {min(loads):.1f}-{max(loads):.1f} |"
        )
    lines.append(
        f"fidelity of {dtype} to float32: page tokens cosine mean {fid['page_cos_mean']:.5f}, "
        f"min {fid['page_cos_min']:.5f} ({fid['page_tokens']} tokens); query tokens mean "
        f"{fid['query_cos_mean']:.5f}, min {fid['query_cos_min']:.5f}; top-{K} overlap over "
        f"{args.pages} pages: {dtype} queries on {dtype} pages {fid['overlap_low']:.3f}, "
        f"{dtype} queries on float32 pages {fid['overlap_mixed']:.3f} (random ranking "
        f"{fid['chance']:.2f}); max relative MaxSim score difference {fid['score_rel_err']:.1e}"
    )
    return lines
