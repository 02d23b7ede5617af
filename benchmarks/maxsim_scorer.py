"""Exact MaxSim scorer: float32 vs float16 stores, and the peers' real functions, one run.

Usage::

    python benchmarks/maxsim_scorer.py --peer-python /work/venvs/peers/bin/python
    python benchmarks/maxsim_scorer.py --scenario single     # 1 query vs 2,000 docs
    python benchmarks/maxsim_scorer.py --scenario ragged     # 16 queries vs 2,000 docs x 30-300
    python benchmarks/maxsim_scorer.py --scenario issue      # 32 queries vs 1,000 docs x 100-300
    python benchmarks/maxsim_scorer.py --small --repeats 1   # smoke run
    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python ...   # 1 thread

Ours (this process): ``maxsim_packed`` (the full score matrix, exact) over a float32 and a
float16 store, and the exact top-10 ``maxsim_topk_packed`` over both stores (the index's
exact scan and rerank), for all queries in one call and one query per call (as the index
searches). On a float16 store the top-10 runs the float16 GEMM with a certified error
bound and rescores the candidates exactly where the CPU has native float16 arithmetic and
a call holds at most 128 query rows (token norms precomputed, as the index keeps them),
else (the "fallback" row, forced here) the exact path with vectorised conversion.

Peers, through their real installed functions in a worker process of the peers' venv
(``--peer-python``; see ``benchmarks/_peer_scores_worker.py``): colpali-engine's
``score_multi_vector`` and PyLate's ``colbert_scores``. The throwaway venv used:
``/work/venvs/peers`` = CPython 3.11.7, torch 2.13.0+cpu, transformers 5.3.0,
colpali-engine 0.3.18, pylate 1.6.0 installed ``--no-deps`` (its fast-plaid/fastkmeans pin
torch 2.11 and are not used by ``colbert_scores``; torchvision removed: its wheel does not
load with the +cpu torch, and scoring does not use it).

All methods score the same data; results are checked against ours. Methods run
round-robin (``--repeats`` rounds after a warm-up) so load from other processes hits them
alike; the table gives the best round's wall time, the median, and the best CPU time of
the process that ran it (``time.process_time``; with 1 thread it is the work itself).
The naive loop scores the first 4 queries only (reported per query). ``GEMM`` is this
machine's float32 matrix-product rate in the same rounds.

Errors: the float16 store's top-10 (ids and scores) against float64 MaxSim over the stored
float16 vectors (what "exact" means for that store), and what storing in float16 costs
against the float32 vectors (score change, top-10 overlap).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sauerkraut_rag.retrievers import _half
from sauerkraut_rag.retrievers.maxsim import (
    maxsim,
    maxsim_packed,
    maxsim_topk_packed,
    pack,
    token_norms,
)

DIM = 128
K = 10
BASE = "ours maxsim_packed f32 store"
WORKER = Path(__file__).with_name("_peer_scores_worker.py")


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def make_data(
    seed: int, n_docs: int, doc_len: tuple[int, int], n_queries: int, q_len: int
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    docs = [
        unit(rng.standard_normal((int(n), DIM)))
        for n in rng.integers(doc_len[0], doc_len[1] + 1, n_docs)
    ]
    queries = [unit(rng.standard_normal((q_len, DIM))) for _ in range(n_queries)]
    return queries, docs


class Peers:
    """The peer worker process: ``run`` returns ``(wall, cpu)`` measured inside it."""

    def __init__(self, python: str, folder: Path) -> None:
        threads = str(torch.get_num_threads())
        cmd = [python, str(WORKER), str(folder), threads]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.versions = self._answer()

    def _answer(self) -> dict[str, Any]:
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if not line:
            raise RuntimeError("the peer worker ended; run it by hand to see its error")
        return json.loads(line)

    def ask(self, command: str) -> dict[str, Any]:
        if self.proc.stdin is None:
            raise RuntimeError("the peer worker has no stdin")
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self._answer()

    def close(self) -> None:
        if self.proc.poll() is None and self.proc.stdin is not None:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.close()
        self.proc.wait(timeout=60)


def without_native_half(fn: Callable[[], Any]) -> Callable[[], Any]:
    """``fn`` run as on a CPU without native float16 GEMM (the fallback path)."""

    def run() -> Any:
        original = _half.half_gemm_supported
        _half.half_gemm_supported = lambda dim: False
        try:
            return fn()
        finally:
            _half.half_gemm_supported = original

    return run


def gemm_block() -> Callable[[], object]:
    """A (512, 128) x (128, 8192) float32 product, the shape of a MaxSim block."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((512, DIM)).astype(np.float32)
    b = rng.standard_normal((8192, DIM)).astype(np.float32)
    return lambda: [a @ b.T for _ in range(4)]


GEMM_FLOP = 4 * 2 * 512 * 8192 * DIM


def numpy_loop(queries: list[np.ndarray], docs: list[np.ndarray]) -> np.ndarray:
    out = np.empty((len(queries), len(docs)), dtype=np.float32)
    for i, q in enumerate(queries):
        for j, d in enumerate(docs):
            out[i, j] = (q @ d.T).max(axis=1).sum()
    return out


def float64_maxsim(queries: list[np.ndarray], docs: list[np.ndarray]) -> np.ndarray:
    out = np.empty((len(queries), len(docs)))
    for j, d in enumerate(docs):
        block = np.concatenate(queries).astype(np.float64) @ d.astype(np.float64).T
        rows = block.max(axis=1)
        out[:, j] = [r.sum() for r in np.split(rows, np.cumsum([len(q) for q in queries])[:-1])]
    return out


def one_by_one(
    queries: list[np.ndarray], fn: Callable[[list[np.ndarray]], tuple[np.ndarray, np.ndarray]]
) -> Callable[[], tuple[np.ndarray, np.ndarray]]:
    """``fn`` called once per query (as the index searches), results stacked."""

    def call() -> tuple[np.ndarray, np.ndarray]:
        parts = [fn([q]) for q in queries]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    return call


def run(name: str, queries: list[np.ndarray], docs: list[np.ndarray], args: Any) -> None:
    n_q = len(queries)
    tokens, offsets = pack(docs)
    tokens16 = tokens.astype(np.float16)
    norms16 = token_norms(tokens16)  # the index keeps these with its segments
    loop_queries = queries[:4]
    methods: dict[str, Callable[[], object]] = {
        "GEMM": gemm_block(),
        BASE: lambda: maxsim_packed(queries, tokens, offsets),
        "ours maxsim_packed f16 store": lambda: maxsim_packed(queries, tokens16, offsets),
        "ours top-10 f32 store": lambda: maxsim_topk_packed(queries, tokens, offsets, K),
        "ours top-10 f16 store": lambda: maxsim_topk_packed(
            queries, tokens16, offsets, K, norms=norms16
        ),
        "ours top-10 f16 store, fallback path": without_native_half(
            lambda: maxsim_topk_packed(queries, tokens16, offsets, K)
        ),
        "ours top-10 f32 store, one query per call": one_by_one(
            queries, lambda q: maxsim_topk_packed(q, tokens, offsets, K)
        ),
        "ours top-10 f16 store, one query per call": one_by_one(
            queries, lambda q: maxsim_topk_packed(q, tokens16, offsets, K, norms=norms16)
        ),
        "ours maxsim (incl. pack)": lambda: maxsim(queries, docs),
        "numpy-loop": lambda: numpy_loop(loop_queries, docs),
    }
    peers = None
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if args.peer_python:
            for label, arrays in (("queries", queries), ("docs", docs)):
                packed, offs = pack(arrays)
                np.save(folder / f"{label}.npy", packed)
                np.save(folder / f"{label}_offsets.npy", offs)
            peers = Peers(args.peer_python, folder)
        load_before = os.getloadavg()
        wall, cpu, results = round_robin(methods, peers, args.repeats)
        load_after = os.getloadavg()
        if peers is not None:
            for peer in ("colpali-engine", "pylate"):
                peers.ask(f"save {peer} {folder / peer}.npy")
                results[f"{peer} (real function)"] = np.load(folder / f"{peer}.npy")
            peers.close()
    check(results, tokens, offsets, queries)
    report(name, n_q, queries, tokens, wall, cpu, load_before, load_after, peers, len(loop_queries))
    errors(queries, docs, tokens16, offsets, results)


def round_robin(
    methods: dict[str, Callable[[], object]], peers: Peers | None, repeats: int
) -> tuple[dict[str, list[float]], dict[str, list[float]], dict[str, Any]]:
    """Every method once per round (peers inside their worker); warm-up first."""
    results = {label: fn() for label, fn in methods.items()}
    names = ["colpali-engine", "pylate"] if peers else []
    for peer in names:
        peers.ask(f"run {peer}")  # type: ignore[union-attr]
    labels = list(methods) + [f"{p} (real function)" for p in names]
    wall: dict[str, list[float]] = {label: [] for label in labels}
    cpu: dict[str, list[float]] = {label: [] for label in labels}
    for _ in range(repeats):
        for label, fn in methods.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            results[label] = fn()
            wall[label].append(time.perf_counter() - start)
            cpu[label].append(time.process_time() - start_cpu)
        for peer in names:
            answer = peers.ask(f"run {peer}")  # type: ignore[union-attr]
            wall[f"{peer} (real function)"].append(answer["wall"])
            cpu[f"{peer} (real function)"].append(answer["cpu"])
    return wall, cpu, results


def check(results: dict[str, Any], tokens: np.ndarray, offsets: np.ndarray, queries: list) -> None:
    """Every full score matrix equals ours; every top-10 equals the exact one."""
    reference = np.asarray(results[BASE])
    exact16 = maxsim_packed(queries, tokens.astype(np.float16), offsets)
    for label, result in results.items():
        if label == "GEMM" or "top-10" in label:
            continue
        scores = np.asarray(result)
        want = exact16 if "f16" in label else reference
        np.testing.assert_allclose(scores, want[: len(scores)], atol=1e-3, rtol=1e-4)
    for label in [x for x in results if "top-10" in x]:
        idx, vals = results[label]
        base = exact16 if "f16" in label else reference
        want = np.take_along_axis(base, idx, axis=1)
        np.testing.assert_allclose(vals, want, atol=1e-4, rtol=0)
        kth = np.sort(base, axis=1)[:, -K]
        if not np.all(vals[:, -1] >= kth - 1e-4):
            raise AssertionError(f"{label}: not the top-{K}")


def report(
    name: str,
    n_q: int,
    queries: list[np.ndarray],
    tokens: np.ndarray,
    wall: dict[str, list[float]],
    cpu: dict[str, list[float]],
    load_before: tuple[float, float, float],
    load_after: tuple[float, float, float],
    peers: Peers | None,
    n_loop: int,
) -> None:
    gemm = GEMM_FLOP / min(wall.pop("GEMM")) / 1e9
    gemm_cpu = GEMM_FLOP / min(cpu.pop("GEMM")) / 1e9
    useful_flop = 2 * sum(len(q) for q in queries) * tokens.shape[0] * DIM
    caps = torch.cpu.get_capabilities() if hasattr(torch.cpu, "get_capabilities") else {}
    native = [f for f in ("avx512_fp16", "amx_fp16", "avx512_bf16", "amx_bf16") if caps.get(f)]
    versions = {k: v for k, v in (peers.versions if peers else {}).items() if k != "ready"}
    flags = ", ".join(native) or "none"
    peer_versions = versions or "not run (give --peer-python)"
    print(
        f"\n### {name}\n\n{n_q} queries x {len(queries[0])} tokens vs {tokens.shape[0]} doc "
        f"tokens (dim {DIM}); threads {torch.get_num_threads()}; "
        f"{len(next(iter(wall.values())))} rounds; load average before {load_before[0]:.2f}, "
        f"after {load_after[0]:.2f}. CPU flags: {flags}; float16 GEMM available: "
        f"{_half.half_gemm_supported(DIM)}. torch {torch.__version__}, numpy {np.__version__}; "
        f"peers: {peer_versions}. float32 GEMM rate: {gemm:.1f} GFLOP/s wall, "
        f"{gemm_cpu:.1f} per CPU-second.\n"
    )
    base_wall, base_cpu = min(wall[BASE]), min(cpu[BASE])
    print(
        "| method | wall ms/query best | wall ms/query median | x ours f32 (wall) "
        "| CPU ms/query best | x ours f32 (CPU) | useful % of GEMM (CPU) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for label, seconds in wall.items():
        per = n_loop if label == "numpy-loop" else n_q
        best, median = min(seconds) / per, statistics.median(seconds) / per
        best_cpu = min(cpu[label]) / per
        rate = 100 * useful_flop / n_q / best_cpu / 1e9 / gemm_cpu
        print(
            f"| {label} | {best * 1000:.2f} | {median * 1000:.2f} | "
            f"{best * n_q / base_wall:.2f}x | {best_cpu * 1000:.2f} | "
            f"{best_cpu * n_q / base_cpu:.2f}x | {rate:.0f}% |"
        )
    f16, f32 = "ours top-10 f16 store", "ours top-10 f32 store"
    print(
        f"\nfloat16 store vs float32 store, exact top-{K}: {min(cpu[f32]) / min(cpu[f16]):.2f}x "
        f"(CPU), {min(wall[f32]) / min(wall[f16]):.2f}x (wall) as fast; full score matrix: "
        f"{min(cpu[BASE]) / min(cpu['ours maxsim_packed f16 store']):.2f}x (CPU)."
    )
    one16, one32 = f"{f16}, one query per call", f"{f32}, one query per call"
    print(
        f"One query per call (as the index scans): float16 store "
        f"{min(cpu[one32]) / min(cpu[one16]):.2f}x (CPU), "
        f"{min(wall[one32]) / min(wall[one16]):.2f}x (wall) as fast as float32."
    )
    for peer in ("colpali-engine", "pylate"):
        label = f"{peer} (real function)"
        if label in cpu:
            ratio_cpu, ratio_wall = min(cpu[label]) / base_cpu, min(wall[label]) / base_wall
            print(
                f"ours maxsim_packed f32 vs {peer}: {ratio_cpu:.2f}x faster (CPU), "
                f"{ratio_wall:.2f}x (wall)."
            )


def errors(
    queries: list[np.ndarray],
    docs: list[np.ndarray],
    tokens16: np.ndarray,
    offsets: np.ndarray,
    results: dict[str, Any],
) -> None:
    stored = [tokens16[a:b] for a, b in itertools.pairwise(offsets)]
    exact16 = float64_maxsim(queries, stored)
    exact32 = float64_maxsim(queries, docs)
    idx, vals = results["ours top-10 f16 store"]
    want = np.argsort(-exact16, axis=1, kind="stable")[:, :K]
    score_err = np.abs(vals - np.take_along_axis(exact16, idx, axis=1)).max()
    overlap = np.mean([len(set(a) & set(b)) / K for a, b in zip(idx, want, strict=True)])
    storage = np.abs(exact16 - exact32).max()
    top32 = np.argsort(-exact32, axis=1, kind="stable")[:, :K]
    store_overlap = np.mean([len(set(a) & set(b)) / K for a, b in zip(idx, top32, strict=True)])
    print(
        f"\nfloat16 store, exact top-{K} vs float64 MaxSim over the stored float16 vectors: "
        f"max |score error| {score_err:.1e}, ids equal to the reference's in "
        f"{100 * overlap:.0f}% of places. Storing in float16 itself: max |score change| vs the "
        f"float32 vectors {storage:.1e} (all query-document pairs); top-{K} overlap with the "
        f"float32 vectors' top-{K} {100 * store_overlap:.0f}%."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", choices=["single", "ragged", "issue", "all"], default="all")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--peer-python", default=None, help="python of the peers' venv")
    parser.add_argument("--small", action="store_true", help="tiny sizes (smoke test)")
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    scale = 20 if args.small else 1
    scenarios = {
        "single": ("single: 1 query vs 2,000 docs of 30-300 tokens", 0, 2000, (30, 300), 1),
        "ragged": ("ragged: 16 queries vs 2,000 docs of 30-300 tokens", 0, 2000, (30, 300), 16),
        "issue": ("issue: 32 queries vs 1,000 docs of 100-300 tokens", 1, 1000, (100, 300), 32),
    }
    for key, (title, seed, n_docs, lengths, n_q) in scenarios.items():
        if args.scenario in (key, "all"):
            queries, docs = make_data(seed, max(n_docs // scale, K), lengths, n_q, 32)
            run(title + (" (--small)" if args.small else ""), queries, docs, args)


if __name__ == "__main__":
    main()
