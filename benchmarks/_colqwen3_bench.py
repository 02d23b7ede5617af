"""ColQwen3 pages/s at the real ColQwen3-1.7B-Turbo shape: ours vs the reference, same run.

Used by ``benchmarks/encode_throughput.py --models colqwen3``.

**Shape (assumption).** The published config cannot be read here.  The model card says
"Qwen3-VL-2B structurally pruned to 1.7B (layers and FFN width removed)"; we take
Qwen3-VL-2B-Instruct's config (vision: depth 24, hidden 1024, 16 heads, FFN 4096,
DeepStack at blocks 5/11/17, patch 16, merge 2; text: hidden 2048, 16 heads, 8 KV heads,
head_dim 128, vocab 151,936, interleaved M-RoPE 24/20/20) and prune the text model from
28 to 24 layers and its FFN from 6144 to 4608, which gives 1.700B parameters.

A random checkpoint of that shape (bfloat16 on disk, 3.4 GB) is written to a temporary
folder in the published layout (tokenizer and processor files from
``tests/factories/colqwen3.py``), and each implementation loads it in float32 in its
own child process (``_colqwen3_worker.py``): ours through ``load_encoder``, the
reference (``sauerkrautlm-colpali`` 0.1.0, in the venv described in
``tests/fixtures/make_colqwen3_golden.py``; ``--reference-python`` or
``$COLPALI_PYTHON``) through ``ColQwen3.from_pretrained``.  Each warms up on one page,
then encodes ``--pages`` 512x512 pages one at a time (256 image tokens per page).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
WORKER = Path(__file__).resolve().parent / "_colqwen3_worker.py"
DEFAULT_REFERENCE_PYTHON = "/tmp/colpali-venv/bin/python"

TEXT_SHAPE: dict[str, Any] = {
    "vocab_size": 151936,
    "hidden_size": 2048,
    "intermediate_size": 4608,
    "num_hidden_layers": 24,
    "num_attention_heads": 16,
    "num_key_value_heads": 8,
    "head_dim": 128,
    "rope_scaling": {
        "mrope_interleaved": True,
        "mrope_section": [24, 20, 20],
        "rope_type": "default",
    },
}
VISION_SHAPE: dict[str, Any] = {
    "depth": 24,
    "hidden_size": 1024,
    "intermediate_size": 4096,
    "num_heads": 16,
    "out_hidden_size": 2048,
    "num_position_embeddings": 2304,
    "deepstack_visual_indexes": [5, 11, 17],
}


def build_real_shape_checkpoint(folder: Path, *, seed: int) -> int:
    """Write the random real-shape checkpoint; return its parameter count."""
    import torch
    from safetensors.torch import save_file

    sys.path.insert(0, str(REPO))
    from tests.factories.colqwen3 import checkpoint_shapes, tiny_config, write_processor_files

    config = tiny_config()
    config["text_config"].update(TEXT_SHAPE)
    config["vision_config"].update(VISION_SHAPE)
    config["dtype"] = config["text_config"]["dtype"] = "bfloat16"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    write_processor_files(folder)
    generator = torch.Generator().manual_seed(seed)
    weights: dict[str, torch.Tensor] = {}
    for key, shape in sorted(checkpoint_shapes(config).items()):
        tensor = torch.empty(shape, dtype=torch.float32)
        if "norm" in key and key.endswith(".weight"):
            tensor.fill_(1.0)
        elif key.endswith(".bias"):
            tensor.zero_()
        else:
            tensor.normal_(0.0, 0.02, generator=generator)
        weights[key] = tensor.to(torch.bfloat16)
    n_params = sum(t.numel() for t in weights.values())
    save_file(weights, str(folder / "model.safetensors"), metadata={"format": "pt"})
    return n_params


def _run(python: str, impl: str, checkpoint: Path, pages: int, seed: int, out: Path) -> dict:
    cmd = [python, str(WORKER), "--impl", impl, "--checkpoint", str(checkpoint)]
    cmd += ["--pages", str(pages), "--seed", str(seed), "--out", str(out)]
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{impl} worker failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _max_abs_diff(a: Path, b: Path) -> float:
    with np.load(a, allow_pickle=False) as x, np.load(b, allow_pickle=False) as y:
        pairs = [(x[k], y[k]) for k in x.files]
        if x.files != y.files or any(p.shape != q.shape for p, q in pairs):
            return float("inf")
        return max(float(np.abs(p - q).max(initial=0.0)) for p, q in pairs)


def bench_colqwen3(args: argparse.Namespace) -> list[str]:
    """Pages/s (and load time) of our ColQwen3 encoder vs the reference; report lines."""
    pages = getattr(args, "pages", 2)
    rounds = getattr(args, "page_rounds", 1)
    seed = getattr(args, "seed", 0)
    reference = (
        getattr(args, "reference_python", None)
        or os.environ.get("COLPALI_PYTHON")
        or DEFAULT_REFERENCE_PYTHON
    )
    pythons = {"ours": sys.executable}
    if Path(reference).exists():
        pythons["reference"] = reference
    results: dict[str, list[dict]] = {impl: [] for impl in pythons}
    with tempfile.TemporaryDirectory(prefix="bench-colqwen3-") as tmp:
        work = Path(tmp)
        n_params = build_real_shape_checkpoint(work / "ckpt", seed=seed)
        for r in range(rounds):
            order = sorted(pythons, reverse=r % 2 == 0)  # reference first on even rounds
            for impl in order:
                res = _run(pythons[impl], impl, work / "ckpt", pages, seed, work / f"{impl}.npz")
                results[impl].append(res)
                print(f"  round {r + 1} {impl:9s} {res['seconds']:8.2f} s", file=sys.stderr)
        diff = (
            _max_abs_diff(work / "ours.npz", work / "reference.npz") if len(pythons) > 1 else None
        )
    first = results["ours"][0]
    lines = [
        f"colqwen3: real shape ({n_params / 1e9:.3f}B parameters, random init, bf16 on disk, "
        f"float32 on CPU), {pages} x 512x512 page(s) one at a time "
        f"({first['tokens_per_page']} vectors/page), {first['threads']} torch threads, "
        f"{rounds} round(s)",
        "| implementation | load s | encode s (median) | pages/s | peak RSS MB |",
        "|---|---|---|---|---|",
    ]
    medians = {}
    for impl, runs in results.items():
        medians[impl] = statistics.median(r["seconds"] for r in runs)
        load = statistics.median(r["load_seconds"] for r in runs)
        peak = max(r["peak_rss_mb"] for r in runs)
        lines.append(
            f"| {impl} | {load:.1f} | {medians[impl]:.1f} | {pages / medians[impl]:.3f} | "
            f"{peak:.0f} |"
        )
    if diff is None:
        lines.append(f"reference interpreter {reference} not found: no ratio (see module doc)")
    else:
        lines.append(
            f"ratio ours/reference (pages/s): {medians['reference'] / medians['ours']:.2f}x; "
            f"same vectors: max |diff| = {diff:.1e}"
        )
    return lines
