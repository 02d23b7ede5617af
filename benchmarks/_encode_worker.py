"""Child process of ``encode_throughput.py``: time one encoder on one document set.

Runs under either interpreter: ``--impl ours`` needs the project venv, ``--impl pylate``
the throwaway PyLate venv (PyLate pins an older transformers).  Loads the model,
warms up, times one ``encode`` call over all documents, writes the vectors to
``--out`` (``.npz``, no pickle) and prints one JSON line with the timing.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--impl", choices=("ours", "pylate"), required=True)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--docs", required=True, help="JSON list of document strings")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--out", default=None, help="write the vectors here (.npz)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    args = parser.parse_args()

    import torch

    if args.threads > 0:
        torch.set_num_threads(args.threads)

    with open(args.docs, encoding="utf-8") as fh:
        docs = json.load(fh)
    if args.impl == "ours":
        import sauerkraut_rag

        model = sauerkraut_rag.load_encoder(args.checkpoint, device="cpu")

        def encode(texts: list[str]) -> list[np.ndarray]:
            return model.encode_documents(texts, batch_size=args.batch_size, show_progress=False)

    else:
        from pylate import models

        model = models.ColBERT(args.checkpoint, device="cpu")

        def encode(texts: list[str]) -> list[np.ndarray]:
            return model.encode(
                texts, is_query=False, batch_size=args.batch_size, show_progress_bar=False
            )

    encode(docs[:4])  # warm-up: lazy imports, allocator, thread pool
    start, cpu_start = time.perf_counter(), time.process_time()
    vectors = encode(docs)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    if args.out:
        np.savez(args.out, *[np.asarray(v, dtype=np.float32) for v in vectors])
    result = {
        "impl": args.impl,
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "docs": len(docs),
        "vectors": int(sum(len(v) for v in vectors)),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
