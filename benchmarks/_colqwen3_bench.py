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
own child process (``_colqwen3_worker.py``, driven by ``_page_bench.py``): ours
through ``load_encoder``, the reference (``sauerkrautlm-colpali`` 0.1.0, in the venv described in
``tests/fixtures/make_colqwen3_golden.py``; ``--reference-python`` or
``$COLPALI_PYTHON``) through ``ColQwen3.from_pretrained``.  Each warms up on one page,
then encodes ``--pages`` 512x512 pages one at a time (256 image tokens per page).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from _page_bench import page_bench_args, random_weights, run_page_benchmark

REPO = Path(__file__).resolve().parent.parent
WORKER = Path(__file__).resolve().parent / "_colqwen3_worker.py"

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
    weights = random_weights(checkpoint_shapes(config), seed=seed)
    save_file(weights, str(folder / "model.safetensors"), metadata={"format": "pt"})
    return sum(t.numel() for t in weights.values())


def bench_colqwen3(args: argparse.Namespace) -> list[str]:
    """Pages/s (and load time) of our ColQwen3 encoder vs the reference; report lines."""
    options = page_bench_args(args)
    with tempfile.TemporaryDirectory(prefix="bench-colqwen3-") as tmp:
        work = Path(tmp)
        n_params = build_real_shape_checkpoint(work / "ck", seed=options.seed)
        label = (
            f"colqwen3: real shape ({n_params / 1e9:.3f}B parameters, random init, bf16 on "
            "disk, float32 on CPU)"
        )
        return run_page_benchmark(label, WORKER, work / "ck", work, options)
