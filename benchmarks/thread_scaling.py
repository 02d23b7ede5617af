"""Page encoding and search at 1 and 2 threads: wall, CPU, per-thread CPU, load, ratio.

Usage (record on an idle machine; ``uptime`` should show a load average near 0)::

    python benchmarks/thread_scaling.py --checkpoints /tmp/bench-checkpoints
    python benchmarks/thread_scaling.py --dtype bfloat16 --checkpoints /tmp/bench-checkpoints
    python benchmarks/thread_scaling.py --size tiny --pages 4 --search-docs 300   # smoke run

Parts (``--parts``, default all):

- ``gemm``: float32 and bfloat16 ``torch.mm`` rate (2048 x 2048 x 2048): the most any
  torch work can gain from a second thread on this machine (two vCPUs that share one
  physical core, or a busy neighbour, show up here first);
- ``encode``: each page model (``--models``, ``--size real``: the real-shape random
  checkpoints of ``_collfm2_bench.py``/``_colqwen3_bench.py``) encodes ``--pages``
  document-like pages one at a time in ``--dtype`` (``_page_bench`` worker);
- ``census``: one page forward per model with 2 threads under a per-op CPU-time census
  (``_op_census.py``): which ops ran on one thread, how much CPU the calling thread
  spent between ops, and the speed-up that predicts (valid on a busy machine too);
- ``search``: a ``VoyagerIndex`` of ``--search-docs`` random page-sized documents
  (250-300 token vectors each) answers ``--search-queries`` 20-token queries one at a
  time, as a full scan (``exact``) and with the default candidate search (``default``).

Every measurement runs in a fresh child with the thread count set explicitly
(``torch.set_num_threads`` and ``OMP/MKL/OPENBLAS_NUM_THREADS``: a test shell's
``OMP_NUM_THREADS=1`` is not inherited), ``--threads`` alternating in order over
``--rounds`` rounds.  Reported per part and thread count: median wall and CPU seconds,
CPU of the calling thread and of all other threads, the load average before/after, and
the wall-time speed-up over one thread.  One more run at the highest thread count uses
``OMP_WAIT_POLICY=PASSIVE`` so idle workers sleep instead of spinning; its per-thread CPU
split gives the serial CPU time (work only the calling thread does) and the speed-up
Amdahl's law predicts from it on an idle machine (``_cpu_accounting``).  On a busy
machine the wall ratios mean little; the CPU split still does.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from _cpu_accounting import Span, amdahl, load_average, passive_wait_env
from _page_bench import clean_env, run_worker
from _page_checkpoints import WORKERS, checkpoint

SELF = Path(__file__).resolve()
DIM = 128


# ---------------------------------------------------------------- children


def child_gemm(args: argparse.Namespace) -> dict[str, Any]:
    """GFLOP/s of float32 and bfloat16 ``torch.mm`` at the current thread count."""
    import torch

    n, reps, rates = 2048, 8, {}
    span = Span()
    with span:
        for dtype in (torch.float32, torch.bfloat16):
            a = torch.randn(n, n).to(dtype)
            b = torch.randn(n, n).to(dtype)
            torch.mm(a, b)
            start = time.perf_counter()
            for _ in range(reps):
                torch.mm(a, b)
            rates[str(dtype).removeprefix("torch.")] = (
                2 * n**3 * reps / (time.perf_counter() - start) / 1e9
            )
    return {"gflops": rates, **span.as_dict()}


def make_search_data(seed: int, n_docs: int, n_queries: int) -> tuple[list, list]:
    """Clustered unit vectors: documents of 250-300 tokens, queries of 20 tokens."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((256, DIM)).astype(np.float32)

    def sample(n: int) -> np.ndarray:
        x = centres[rng.integers(0, len(centres), n)] + 0.6 * rng.standard_normal((n, DIM))
        return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)

    docs = [sample(int(n)) for n in rng.integers(250, 301, n_docs)]
    return docs, [sample(20) for _ in range(n_queries)]


def child_build(args: argparse.Namespace) -> dict[str, Any]:
    from sauerkraut_rag.retrievers.voyager import VoyagerIndex

    docs, _ = make_search_data(args.seed, args.search_docs, 0)
    start = time.perf_counter()
    with VoyagerIndex.create(args.index, dim=DIM) as index:
        for lo in range(0, len(docs), 500):
            chunk = docs[lo : lo + 500]
            index.add([f"d{lo + i}" for i in range(len(chunk))], chunk)
    return {"seconds": time.perf_counter() - start}


def child_search(args: argparse.Namespace) -> dict[str, Any]:
    from sauerkraut_rag.retrievers.voyager import VoyagerIndex

    _, queries = make_search_data(args.seed, args.search_docs, args.search_queries)
    options = {"exact_threshold": 10**9} if args.mode == "exact" else {}
    with VoyagerIndex(args.index, read_only=True, **options) as index:
        index.search(queries[:2], k=10)  # warm-up: graph, caches, thread pools
        with Span() as span:
            for query in queries:
                index.search([query], k=10)
    return span.as_dict()


def child_census(args: argparse.Namespace) -> dict[str, Any]:
    from _op_census import census
    from _page_bench import make_pages

    import sauerkraut_rag

    encoder = sauerkraut_rag.load_encoder(args.checkpoint, device="cpu", dtype=args.dtype)
    width, height = (int(v) for v in args.page_size.lower().split("x"))
    pages = make_pages(max(args.batch_size, 1), args.seed, size=(width, height), kind="document")

    def encode(batch: list[Any]) -> Any:
        return encoder.encode_documents(batch, batch_size=len(batch), show_progress=False)

    return census(encode, pages)


CHILDREN = {
    "gemm": child_gemm,
    "build": child_build,
    "search": child_search,
    "census": child_census,
}


def run_child(kind: str, threads: int, extra: list[str], env: dict[str, str] | None = None) -> dict:
    import subprocess

    cmd = [sys.executable, str(SELF), "--child", kind, "--threads", str(threads), *extra]
    done = subprocess.run(
        cmd, capture_output=True, text=True, env=env or clean_env(threads), check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{kind} child failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- report


def table(title: str, runs: dict[int, list[dict]], passive: dict | None, top: int) -> list[str]:
    """Markdown rows: one per thread count, then the Amdahl line of the passive run."""
    lines = [
        title,
        "| threads | wall s (median) | CPU s (median) | calling-thread CPU s | other threads "
        "CPU s | load average | speed-up (wall) |",
        "|---|---|---|---|---|---|---|",
    ]
    base = statistics.median(r["wall"] for r in runs[min(runs)])
    for n, rs in sorted(runs.items()):
        med = {
            k: statistics.median(r[k] for r in rs) for k in ("wall", "cpu", "main_cpu", "other_cpu")
        }
        loads = [r[k] for r in rs for k in ("load_before", "load_after")]
        lines.append(
            f"| {n} | {med['wall']:.2f} | {med['cpu']:.2f} | {med['main_cpu']:.2f} | "
            f"{med['other_cpu']:.2f} | {min(loads):.1f}-{max(loads):.1f} | "
            f"{base / med['wall']:.2f}x |"
        )
    if passive is not None:
        est = amdahl(passive["main_cpu"], passive["other_cpu"], top)
        lines.append(
            f"CPU accounting ({top} threads, OMP_WAIT_POLICY=PASSIVE, wall {passive['wall']:.2f} "
            f"s): serial {est['serial']:.2f} CPU s, parallel {est['parallel']:.2f} CPU s "
            f"({est['serial'] / max(est['serial'] + est['parallel'], 1e-9):.0%} serial) -> "
            f"predicted speed-up on an idle machine {est['predicted_speedup']:.2f}x"
        )
    return lines


def measure(args: argparse.Namespace, run: Any, title: str) -> list[str]:
    """``run(threads, env)`` -> span dict, over rounds and thread counts, plus a passive run."""
    runs: dict[int, list[dict]] = {n: [] for n in args.thread_counts}
    for r in range(args.rounds):
        for n in args.thread_counts if r % 2 == 0 else args.thread_counts[::-1]:
            runs[n].append(run(n, clean_env(n)))
            print(
                f"  {title.split(':')[0]} {n} thread(s): {runs[n][-1]['wall']:.2f} s",
                file=sys.stderr,
            )
    top = max(args.thread_counts)
    passive = run(top, passive_wait_env(clean_env(top), top)) if top > 1 else None
    return table(title, runs, passive, top)


def part_gemm(args: argparse.Namespace) -> list[str]:
    rates: dict[int, list[dict]] = {}

    def run(n: int, env: dict[str, str]) -> dict:
        res = run_child("gemm", n, [], env)
        rates.setdefault(n, []).append(res["gflops"])
        return res

    lines = measure(args, run, "gemm: torch.mm 2048^3, float32 then bfloat16")
    for n, rs in sorted(rates.items()):
        best = {k: max(r[k] for r in rs) for k in rs[0]}
        lines.append(
            f"{n} thread(s): " + ", ".join(f"{k} {v:.0f} GFLOP/s" for k, v in best.items())
        )
    return lines


def part_encode(args: argparse.Namespace, model: str) -> list[str]:
    with checkpoint(model, args.size, seed=args.seed, cache=args.checkpoints) as (ck, n_params):
        options = [
            *("--pages", str(args.pages), "--seed", str(args.seed), "--dtype", args.dtype),
            *("--page-size", args.page_size, "--page-kind", "document"),
            *("--batch-size", str(args.batch_size)),
        ]

        def run(n: int, env: dict[str, str]) -> dict:
            res = run_worker(
                sys.executable, WORKERS[model], "ours", ck, options, threads=n, env=env
            )
            return {k.removeprefix("span_"): v for k, v in res.items() if k.startswith("span_")}

        title = (
            f"encode {model}: {args.size} shape ({n_params / 1e6:.3g}M parameters), {args.dtype}, "
            f"{args.pages} document page(s) of {args.page_size}, "
            + ("one at a time" if args.batch_size <= 1 else f"in batches of {args.batch_size}")
        )
        return measure(args, run, title)


def _batch_words(args: argparse.Namespace) -> str:
    if args.batch_size <= 1:
        return "one document page"
    return f"one batch of {args.batch_size} document pages"


def part_census(args: argparse.Namespace, model: str) -> list[str]:
    from _op_census import report

    top = max(args.thread_counts)
    with checkpoint(model, args.size, seed=args.seed, cache=args.checkpoints) as (ck, n_params):
        options = ["--checkpoint", str(ck), "--dtype", args.dtype, "--page-size", args.page_size]
        options += ["--batch-size", str(args.batch_size)]
        result = run_child("census", top, options, passive_wait_env(clean_env(top), top))
    title = (
        f"census {model}: {args.size} shape ({n_params / 1e6:.3g}M parameters), {args.dtype}, "
        f"{_batch_words(args)} of {args.page_size}, {top} threads, OMP_WAIT_POLICY=PASSIVE"
    )
    return report(title, result)


def part_search(args: argparse.Namespace) -> list[str]:
    lines: list[str] = []
    with tempfile.TemporaryDirectory(prefix="thread-search-") as tmp:
        index = Path(tmp) / "index"
        common = ["--index", str(index), "--search-docs", str(args.search_docs)]
        common += ["--search-queries", str(args.search_queries), "--seed", str(args.seed)]
        built = run_child("build", 0, common)
        for mode in ("exact", "default"):
            title = (
                f"search {mode}: {args.search_docs} documents of 250-300 vectors (built in "
                f"{built['seconds']:.0f} s), {args.search_queries} queries of 20 tokens, one at "
                "a time, k=10"
            )
            lines += measure(
                args,
                lambda n, env, m=mode: run_child("search", n, [*common, "--mode", m], env),
                title,
            )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="gemm,encode,census,search")
    parser.add_argument("--models", default="collfm2,colqwen3")
    parser.add_argument("--size", choices=("real", "tiny"), default="real")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--pages", type=int, default=6)
    parser.add_argument("--page-size", default="512x512")
    parser.add_argument(
        "--batch-size", type=int, default=4, help="pages per forward (the CLI's 4; 1: one by one)"
    )
    parser.add_argument("--threads", default="1,2", help="thread counts (children: one)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--search-docs", type=int, default=2000)
    parser.add_argument("--search-queries", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--checkpoints", default=None, metavar="DIR")
    parser.add_argument("--child", choices=sorted(CHILDREN), help=argparse.SUPPRESS)
    parser.add_argument("--index", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--checkpoint", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--mode", default="exact", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        import torch

        if int(args.threads) > 0:
            torch.set_num_threads(int(args.threads))
        sys.stdout.write(json.dumps(CHILDREN[args.child](args)) + "\n")
        return
    args.thread_counts = [int(t) for t in args.threads.split(",")]
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    out: list[str] = [f"load average at start: {load_average():.1f}"]
    for part in parts:
        if part == "gemm":
            out += part_gemm(args)
        elif part == "encode":
            for model in (m.strip() for m in args.models.split(",") if m.strip()):
                out += part_encode(args, model)
        elif part == "census":
            for model in (m.strip() for m in args.models.split(",") if m.strip()):
                out += part_census(args, model)
        elif part == "search":
            out += part_search(args)
        else:
            parser.error(f"unknown part {part!r}; choose from gemm, encode, census, search")
        print("\n".join(out), flush=True)
        out = []


if __name__ == "__main__":
    main()
