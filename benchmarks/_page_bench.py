"""Shared driver of the page-model throughput benchmarks (ours vs the reference, same run).

The parent (:func:`run_page_benchmark`) runs one child process per implementation and
round, alternating the order, and builds the report table; the child
(:func:`worker_main`) loads one implementation, warms up on one page, times encoding
``--pages`` reproducible 512x512 pages one at a time, writes the vectors (``.npz``, no
pickle) and prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
DEFAULT_REFERENCE_PYTHON = "/tmp/colpali-venv/bin/python"

Encode = Callable[[Any], np.ndarray]


def make_pages(n: int, seed: int) -> list[Any]:
    """``n`` reproducible 512x512 RGB noise pages."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    return [
        Image.fromarray((rng.random((512, 512, 3)) * 255).astype(np.uint8), "RGB") for _ in range(n)
    ]


def random_weights(shapes: dict[str, Any], *, seed: int) -> dict[str, Any]:
    """bfloat16 tensors for a random checkpoint: norms 1, biases 0, the rest N(0, 0.02)."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    weights = {}
    for key, size in sorted(shapes.items()):
        tensor = torch.empty(size, dtype=torch.float32)
        if "norm" in key and key.endswith(".weight"):
            tensor.fill_(1.0)
        elif key.endswith(".bias"):
            tensor.zero_()
        else:
            tensor.normal_(0.0, 0.02, generator=generator)
        weights[key] = tensor.to(torch.bfloat16)
    return weights


def load_ours(checkpoint: str) -> Encode:
    """Our encoder, float32 on the CPU, through the public entry point."""
    import sauerkraut_rag

    encoder = sauerkraut_rag.load_encoder(checkpoint, device="cpu", dtype="float32")
    return encoder.encode_document


def reference_encode(processor: Any, model: Any) -> Encode:
    """One page at a time through a ``sauerkrautlm-colpali`` processor and model."""
    import torch

    def encode(page: Any) -> np.ndarray:
        batch = processor.process_images([page])
        with torch.inference_mode():
            vectors = model(**batch)
        return vectors[0][batch["attention_mask"][0].bool()].float().numpy()

    return encode


def main_with_reference(load_reference: Callable[[str], Encode]) -> None:
    """Run a worker whose ``--impl`` is ``ours`` or ``reference``."""
    worker_main({"ours": load_ours, "reference": load_reference})


def worker_main(loaders: dict[str, Callable[[str], Encode]]) -> None:
    """Entry point of a worker script: ``--impl`` picks one of ``loaders``."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--impl", choices=sorted(loaders), required=True)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--pages", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()

    import torch

    start = time.perf_counter()
    encode = loaders[args.impl](args.checkpoint)
    load_seconds = time.perf_counter() - start
    pages = make_pages(args.pages, args.seed)
    encode(pages[0])  # warm-up: lazy imports, allocator, thread pool
    start = time.perf_counter()
    vectors = [encode(page) for page in pages]
    seconds = time.perf_counter() - start
    if args.out:
        np.savez(args.out, *[np.asarray(v, dtype=np.float32) for v in vectors])
    result = {
        "impl": args.impl,
        "load_seconds": load_seconds,
        "seconds": seconds,
        "pages": len(pages),
        "tokens_per_page": int(vectors[0].shape[0]),
        "threads": torch.get_num_threads(),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    sys.stdout.write(json.dumps(result) + "\n")


def _run(
    python: str, worker: Path, impl: str, checkpoint: Path, args: argparse.Namespace, out: Path
) -> dict:
    cmd = [python, str(worker), "--impl", impl, "--checkpoint", str(checkpoint)]
    cmd += ["--pages", str(args.pages), "--seed", str(args.seed), "--out", str(out)]
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{impl} worker failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def max_abs_diff(a: Path, b: Path) -> float:
    """Largest element difference between two ``.npz`` files of arrays (inf on shape change)."""
    with np.load(a, allow_pickle=False) as x, np.load(b, allow_pickle=False) as y:
        pairs = [(x[k], y[k]) for k in x.files]
        if x.files != y.files or any(p.shape != q.shape for p, q in pairs):
            return float("inf")
        return max(float(np.abs(p - q).max(initial=0.0)) for p, q in pairs)


def page_bench_args(args: argparse.Namespace) -> argparse.Namespace:
    """The options a page benchmark reads, with defaults for a short run."""
    return argparse.Namespace(
        pages=getattr(args, "pages", 2),
        rounds=getattr(args, "page_rounds", 1),
        seed=getattr(args, "seed", 0),
        reference=getattr(args, "reference_python", None)
        or os.environ.get("COLPALI_PYTHON")
        or DEFAULT_REFERENCE_PYTHON,
    )


def run_page_benchmark(
    label: str, worker: Path, checkpoint: Path, work: Path, args: argparse.Namespace
) -> list[str]:
    """Time ours (and the reference, if its interpreter exists); return report lines.

    ``label`` starts the first line (model and shape); ``args`` comes from
    :func:`page_bench_args`.
    """
    pythons = {"ours": sys.executable}
    if Path(args.reference).exists():
        pythons["reference"] = args.reference
    results: dict[str, list[dict]] = {impl: [] for impl in pythons}
    for r in range(args.rounds):
        for impl in sorted(pythons, reverse=r % 2 == 0):  # reference first on even rounds
            res = _run(pythons[impl], worker, impl, checkpoint, args, work / f"{impl}.npz")
            results[impl].append(res)
            print(f"  round {r + 1} {impl:9s} {res['seconds']:8.2f} s", file=sys.stderr)
    first = results["ours"][0]
    lines = [
        f"{label}, {args.pages} x 512x512 page(s) one at a time "
        f"({first['tokens_per_page']} vectors/page), {first['threads']} torch threads, "
        f"{args.rounds} round(s)",
        "| implementation | load s | encode s (median) | pages/s | peak RSS MB |",
        "|---|---|---|---|---|",
    ]
    medians = {}
    for impl, runs in results.items():
        medians[impl] = statistics.median(r["seconds"] for r in runs)
        load = statistics.median(r["load_seconds"] for r in runs)
        peak = max(r["peak_rss_mb"] for r in runs)
        lines.append(
            f"| {impl} | {load:.1f} | {medians[impl]:.1f} | {args.pages / medians[impl]:.3f} | "
            f"{peak:.0f} |"
        )
    if len(pythons) == 1:
        lines.append(f"reference interpreter {args.reference} not found: no ratio")
    else:
        diff = max_abs_diff(work / "ours.npz", work / "reference.npz")
        lines.append(
            f"ratio ours/reference (pages/s): {medians['reference'] / medians['ours']:.2f}x; "
            f"same vectors: max |diff| = {diff:.1e}"
        )
    return lines
