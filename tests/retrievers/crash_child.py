"""Child process of ``test_index_crash``: runs the operation schedule until it is killed.

Usage: ``python crash_child.py FOLDER STRATEGY START_STEP``. Prints ``ready`` once the
index is open and ``done N`` after each whole operation. torch is loaded before
``ready`` (the index imports it on first use).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def main() -> None:
    folder, strategy, start = sys.argv[1], sys.argv[2], int(sys.argv[3])
    sys.path[:0] = [str(ROOT), str(Path(__file__).parent)]
    import crash_ops
    import torch

    # The first FDE encoding runs torch's first product (thread pool and BLAS set-up, a
    # large share of the kill window); a long-running writer has done that long before.
    torch.mm(torch.ones(64, 64), torch.ones(64, 64))

    from sauerkraut_rag.retrievers.voyager.index import VoyagerIndex

    index = VoyagerIndex(
        folder,
        dim=crash_ops.DIM,
        strategy=strategy,
        exact_threshold=0,
        candidates=10_000,
        token_k=10_000,  # every token a candidate: the HNSW path must then be exact
    )
    print("ready", flush=True)
    step = start
    while True:
        crash_ops.apply(index, step)
        step += 1
        print(f"done {step}", flush=True)


if __name__ == "__main__":
    main()
