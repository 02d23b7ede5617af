"""Shared driver of the page-model throughput benchmarks (ours vs the reference, same run).

The parent (:func:`run_page_benchmark`) runs one child process per implementation and
round, alternating the order, and builds the report table; the child
(:func:`worker_main`) loads one implementation, warms up on one page, times encoding
``--pages`` reproducible pages (512x512 noise unless ``--page-size``/``--page-kind`` say
otherwise) one at a time, writes the vectors (``.npz``, no pickle) and prints one JSON
line with wall, CPU and per-thread CPU time (``_cpu_accounting.Span``).  Our encoder also
takes ``--dtype`` and ``--threads``, and encodes ``--queries`` query strings (written to
``--queries-out``) for retrieval comparisons (``_precision_bench.py``,
``thread_scaling.py``).
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


def make_pages(
    n: int, seed: int, *, size: tuple[int, int] = (512, 512), kind: str = "noise"
) -> list[Any]:
    """``n`` reproducible RGB pages of ``size`` (width, height).

    ``kind="noise"``: uniform noise; ``"document"``: white pages with lines of random
    words, headings and coloured boxes (figures) at random places, so pages differ in
    layout the way real ones do and a retrieval over them has clear winners.
    """
    from PIL import Image

    rng = np.random.default_rng(seed)
    width, height = size
    if kind == "noise":
        return [
            Image.fromarray((rng.random((height, width, 3)) * 255).astype(np.uint8), "RGB")
            for _ in range(n)
        ]
    if kind != "document":
        raise ValueError(f"page kind must be 'noise' or 'document', got {kind!r}")
    return [_document_page(rng, width, height) for _ in range(n)]


def _document_page(rng: np.random.Generator, width: int, height: int) -> Any:
    from PIL import Image, ImageDraw, ImageFont

    page = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(page)
    unit = max(height // 40, 8)
    y = int(rng.integers(unit, 3 * unit))
    while y < height - 2 * unit:
        roll = rng.random()
        if roll < 0.15:  # a figure
            h = int(rng.integers(3, 9)) * unit
            x0 = int(rng.integers(unit, width // 3))
            x1 = int(rng.integers(width // 2, width - unit))
            colour = tuple(int(c) for c in rng.integers(40, 220, 3))
            draw.rectangle([x0, y, x1, min(y + h, height - unit)], fill=colour)
            y += h + unit
            continue
        size = int(unit * (1.6 if roll < 0.25 else 0.9))
        font = ImageFont.load_default(size=size)
        words = rng.choice(WORDS, size=int(rng.integers(3, 12)))
        draw.text((int(rng.integers(unit, 4 * unit)), y), " ".join(words), fill="black", font=font)
        y += int(size * 1.5)
    return page


_VOCABULARY = (
    "revenue market chart figure table annual report growth quarter profit loss energy "
    "data model analysis results method river mountain school policy health sales europe "
    "germany climate price index survey total value share customer product service"
)
WORDS = np.array(_VOCABULARY.split())
"""Vocabulary of the document pages and queries."""


def make_queries(n: int, seed: int) -> list[str]:
    """``n`` reproducible queries of 3-12 random words."""
    rng = np.random.default_rng(seed + 7919)
    return [" ".join(rng.choice(WORDS, size=int(rng.integers(3, 13)))) for _ in range(n)]


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


def _our_encoder(checkpoint: str, dtype: str) -> Any:
    import sauerkraut_rag

    return sauerkraut_rag.load_encoder(checkpoint, device="cpu", dtype=dtype)


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
    worker_main({"reference": load_reference})


def worker_main(loaders: dict[str, Callable[[str], Encode]]) -> None:
    """Entry point of a worker script: ``--impl`` picks one of ``loaders`` (``ours`` is
    always available and honours ``--dtype`` and ``--queries``)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--impl", choices=sorted({*loaders, "ours"}), required=True)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--pages", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None)
    parser.add_argument("--dtype", default="float32", help="ours: model dtype")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--page-size", default="512x512", help="WIDTHxHEIGHT")
    parser.add_argument("--page-kind", default="noise", choices=("noise", "document"))
    parser.add_argument("--queries", type=int, default=0, help="ours: queries to encode")
    parser.add_argument("--queries-out", default=None)
    parser.add_argument(
        "--batch-size", type=int, default=0, help="ours: pages per forward (0: one at a time)"
    )
    args = parser.parse_args()

    import torch
    from _cpu_accounting import Span

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    start = time.perf_counter()
    encoder = _our_encoder(args.checkpoint, args.dtype) if args.impl == "ours" else None
    encode = encoder.encode_document if encoder is not None else loaders[args.impl](args.checkpoint)
    load_seconds = time.perf_counter() - start
    width, height = (int(v) for v in args.page_size.lower().split("x"))
    pages = make_pages(args.pages, args.seed, size=(width, height), kind=args.page_kind)
    encode(pages[0])  # warm-up: lazy imports, allocator, thread pool
    with Span() as span:
        if encoder is not None and args.batch_size > 0:
            vectors = encoder.encode_documents(
                pages, batch_size=args.batch_size, show_progress=False
            )
        else:
            vectors = [encode(page) for page in pages]
    if args.out:
        np.savez(args.out, *[np.asarray(v, dtype=np.float32) for v in vectors])
    result = {
        "impl": args.impl,
        "dtype": args.dtype if encoder is not None else "float32",
        "load_seconds": load_seconds,
        "seconds": span.wall,
        **{f"span_{k}": v for k, v in span.as_dict().items()},
        "pages": len(pages),
        "page_size": args.page_size,
        "tokens_per_page": int(vectors[0].shape[0]),
        "tokens": int(sum(v.shape[0] for v in vectors)),
        "threads": torch.get_num_threads(),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    if encoder is not None and args.queries > 0:
        queries = encoder.encode_queries(make_queries(args.queries, args.seed))
        if args.queries_out:
            np.savez(args.queries_out, *[np.asarray(q, dtype=np.float32) for q in queries])
    sys.stdout.write(json.dumps(result) + "\n")


def clean_env(threads: int = 0) -> dict[str, str]:
    """The environment of a benchmark child: offline, no tokenizer pool, and the thread
    count the benchmark asks for (``threads``), never one inherited by accident.

    A shell set up for the tests (``OMP_NUM_THREADS=1``, see ``tests/conftest.py`` and
    the protocol) would otherwise run every "multi-threaded" child on one thread.  With
    ``threads=0`` the variables are removed and torch picks its default (the number of
    physical cores).
    """
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"}
    for name in THREAD_VARIABLES:
        env.pop(name, None)
        if threads > 0:
            env[name] = str(threads)
    return env


THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def run_worker(
    python: str,
    worker: Path,
    impl: str,
    checkpoint: Path,
    options: list[str],
    *,
    threads: int = 0,
    env: dict[str, str] | None = None,
) -> dict:
    """Run one worker child; return its JSON line (``RuntimeError`` with its stderr)."""
    cmd = [python, str(worker), "--impl", impl, "--checkpoint", str(checkpoint), *options]
    if threads > 0:
        cmd += ["--threads", str(threads)]
    environment = env if env is not None else clean_env(threads)
    done = subprocess.run(
        cmd, capture_output=True, text=True, env=environment, cwd=REPO, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{impl} worker failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _run(
    python: str, worker: Path, impl: str, checkpoint: Path, args: argparse.Namespace, out: Path
) -> dict:
    options = ["--pages", str(args.pages), "--seed", str(args.seed), "--out", str(out)]
    return run_worker(python, worker, impl, checkpoint, options, threads=args.threads)


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
        threads=getattr(args, "threads", 0),
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
        "| implementation | load s | encode wall s (median) | encode CPU s (median) | pages/s "
        "| peak RSS MB | load average |",
        "|---|---|---|---|---|---|---|",
    ]
    medians = {}
    for impl, runs in results.items():
        medians[impl] = statistics.median(r["seconds"] for r in runs)
        cpu = statistics.median(r["span_cpu"] for r in runs)
        load = statistics.median(r["load_seconds"] for r in runs)
        peak = max(r["peak_rss_mb"] for r in runs)
        averages = [r[k] for r in runs for k in ("span_load_before", "span_load_after")]
        lines.append(
            f"| {impl} | {load:.1f} | {medians[impl]:.1f} | {cpu:.1f} | "
            f"{args.pages / medians[impl]:.3f} | {peak:.0f} | "
            f"{min(averages):.1f}-{max(averages):.1f} |"
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
