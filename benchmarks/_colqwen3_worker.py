"""Child process of the ColQwen3 throughput benchmark: one implementation, one checkpoint.

``--impl ours`` runs :func:`sauerkraut_rag.load_encoder` (project venv);
``--impl reference`` runs ``sauerkrautlm-colpali`` 0.1.0's ``ColQwen3`` +
``ColQwen3Processor`` (the throwaway venv of ``tests/fixtures/make_colqwen3_golden.py``).
Loads the checkpoint (timed), warms up on one page, then times encoding ``--pages``
512x512 pages one at a time, writes the vectors to ``--out`` (``.npz``, no pickle) and
prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np


def make_pages(n: int, seed: int) -> list[Any]:
    """``n`` reproducible 512x512 RGB noise pages."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    return [
        Image.fromarray((rng.random((512, 512, 3)) * 255).astype(np.uint8), "RGB") for _ in range(n)
    ]


def load_ours(checkpoint: str) -> Callable[[Any], np.ndarray]:
    import sauerkraut_rag

    encoder = sauerkraut_rag.load_encoder(checkpoint, device="cpu", dtype="float32")
    return encoder.encode_document


def load_reference(checkpoint: str) -> Callable[[Any], np.ndarray]:
    import torch
    from sauerkrautlm_colpali.models.qwen3.colqwen3 import ColQwen3, ColQwen3Processor
    from transformers import Qwen2VLProcessor

    # Loading shim for transformers 5 (see tests/fixtures/make_colqwen3_golden.py).
    ColQwen3Processor.get_attributes = classmethod(lambda cls: Qwen2VLProcessor.get_attributes())
    model = ColQwen3.from_pretrained(
        checkpoint, dtype=torch.float32, attn_implementation="sdpa"
    ).eval()
    processor = ColQwen3Processor.from_pretrained(checkpoint)

    def encode(page: Any) -> np.ndarray:
        batch = processor.process_images([page])
        with torch.inference_mode():
            vectors = model(**batch)
        return vectors[0][batch["attention_mask"][0].bool()].float().numpy()

    return encode


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--impl", choices=("ours", "reference"), required=True)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--pages", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()

    import torch

    start = time.perf_counter()
    encode = load_ours(args.checkpoint) if args.impl == "ours" else load_reference(args.checkpoint)
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


if __name__ == "__main__":
    main()
