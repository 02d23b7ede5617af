"""ColLFM2 pages/s at the real ColLFM2-450M shape: ours vs the reference, same run.

Used by ``benchmarks/encode_throughput.py --models collfm2``.

**Shape (assumption).** The published configs cannot be downloaded here.  We take
LFM2-VL-450M's shape as published configs of the LFM2-VL-450M family show it: text
model LFM2-350M (hidden 1024, 16 layers of which 6 attention layers at 2/5/8/10/12/14,
16 heads, 8 KV heads, vocab 65,536, conv kernel 3, ``intermediate_size`` 6656 with
LFM2's auto-adjusted FFN (-> 4608)); vision tower SigLIP2 NaFlex base (hidden 768, 12
layers, 12 heads, FFN 3072, patch 16, 256 position embeddings); projector hidden 2560,
downsample 2.  That gives 451M parameters (the card says 450M); the FFN width is the
least certain number.  ``custom_text_proj`` is Linear(1024, 128).

A random checkpoint of that shape (bfloat16 on disk, ~0.9 GB) is written in the
published layout (``config.json`` with ``model_type: collfm2`` and ``base_model``
pointing at a local base folder with the real-shape LFM2-VL config and the tokenizer
and processor files of ``tests/factories/collfm2.py``).  Each implementation loads it
in float32 in its own child process (``_collfm2_worker.py``): ours through
``load_encoder``, the reference (``sauerkrautlm-colpali`` 0.1.0 in the venv of
``tests/fixtures/make_collfm2_golden.py``: pass ``--venv /tmp/colpali-venv`` there,
or point ``--reference-python``/``$COLPALI_PYTHON`` at another one) through
``ColLFM2.from_pretrained``, with its base model built from the local config instead
of downloaded (see the golden script).  Each warms up on one page, then encodes
``--pages`` 512x512 pages one at a time (a 512x512 page is one tile: 256 image tokens).
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
WORKER = Path(__file__).resolve().parent / "_collfm2_worker.py"

LFM2_VL_450M_SHAPE: dict[str, Any] = {
    "architectures": ["Lfm2VlForConditionalGeneration"],
    "model_type": "lfm2_vl",
    "downsample_factor": 2,
    "image_token_id": 396,
    "projector_hidden_size": 2560,
    "projector_bias": True,
    "projector_use_layernorm": True,
    "projector_hidden_act": "gelu",
    "text_config": {
        "model_type": "lfm2",
        "vocab_size": 65536,
        "hidden_size": 1024,
        "intermediate_size": 6656,
        "block_multiple_of": 256,
        "block_ffn_dim_multiplier": 1.0,
        "block_auto_adjust_ff_dim": True,
        "num_hidden_layers": 16,
        "num_attention_heads": 16,
        "num_key_value_heads": 8,
        "full_attn_idxs": [2, 5, 8, 10, 12, 14],
        "conv_L_cache": 3,
        "max_position_embeddings": 128000,
        "norm_eps": 1e-05,
    },
    "vision_config": {
        "model_type": "siglip2_vision_model",
        "hidden_size": 768,
        "intermediate_size": 3072,
        "num_hidden_layers": 12,
        "num_attention_heads": 12,
        "num_patches": 256,
        "patch_size": 16,
        "vision_use_head": False,
    },
}


def build_real_shape_checkpoint(folder: Path, *, seed: int) -> int:
    """Write ``folder/ck`` and its base ``folder/base``; return the parameter count."""
    import torch
    from safetensors.torch import save_file
    from transformers import Lfm2VlConfig, Lfm2VlModel

    sys.path.insert(0, str(REPO))
    from tests.factories.lfm2_processor import save_processor

    base, ck = folder / "base", folder / "ck"
    for sub in (base, ck):
        sub.mkdir(parents=True, exist_ok=True)
        save_processor(sub)
    (base / "config.json").write_text(json.dumps(LFM2_VL_450M_SHAPE, indent=2), "utf-8")
    collfm2 = {"model_type": "collfm2", "base_model": str(base.resolve()), "dim": 128}
    (ck / "config.json").write_text(json.dumps(collfm2, indent=2), "utf-8")
    shape = {
        k: v for k, v in LFM2_VL_450M_SHAPE.items() if k not in ("architectures", "model_type")
    }
    with torch.device("meta"):
        shapes = {k: v.shape for k, v in Lfm2VlModel(Lfm2VlConfig(**shape)).state_dict().items()}
    shapes = {f"model.{k}": v for k, v in shapes.items()}
    shapes["custom_text_proj.weight"] = torch.Size([128, 1024])
    shapes["custom_text_proj.bias"] = torch.Size([128])
    weights = random_weights(shapes, seed=seed)
    save_file(weights, str(ck / "model.safetensors"), metadata={"format": "pt"})
    return sum(t.numel() for t in weights.values())


def bench_collfm2(args: argparse.Namespace) -> list[str]:
    """Pages/s (and load time) of our ColLFM2 encoder vs the reference; report lines."""
    options = page_bench_args(args)
    with tempfile.TemporaryDirectory(prefix="bench-collfm2-") as tmp:
        work = Path(tmp)
        n_params = build_real_shape_checkpoint(work, seed=options.seed)
        label = (
            f"collfm2: real shape ({n_params / 1e6:.0f}M parameters, random init, bf16 on "
            "disk, float32 on CPU)"
        )
        return run_page_benchmark(label, WORKER, work / "ck", work, options)
