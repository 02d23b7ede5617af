"""Peer MaxSim scorers, called through their real installed functions (run in the peers' venv).

Started by ``benchmarks/maxsim_scorer.py --peer-python ...``: it loads the data the
parent wrote (``queries.npy``/``docs.npy`` packed, with ``*_offsets.npy``), then answers
one command per line on stdin: ``run <peer>`` scores everything once and prints one JSON
line ``{"wall": s, "cpu": s}``; ``save <peer> <path>`` writes the last scores as .npy;
``quit`` ends. The first line printed is ``{"ready": ..., versions}``.

Peers (no re-implementation, the functions as installed):

* ``colpali-engine``: ``BaseVisualRetrieverProcessor.score_multi_vector(qs, ps)`` on the
  lists of tensors (it pads queries and passages in batches of 128 itself), ``device="cpu"``.
* ``pylate``: ``pylate.scores.colbert_scores`` with the queries and a batch of 128 documents
  zero-padded by ``torch.nn.utils.rnn.pad_sequence`` plus both masks, as PyLate's API
  documents for ragged inputs (padding counted in the time: a caller has to do it; all
  documents at once would need a ``(n_q, n_docs, q_len, d_len)`` tensor of gigabytes).
"""

from __future__ import annotations

import itertools
import json
import sys
import time
from importlib.metadata import version
from pathlib import Path

import numpy as np
import torch


def load(folder: Path, name: str) -> list[torch.Tensor]:
    tokens = np.load(folder / f"{name}.npy")
    offsets = np.load(folder / f"{name}_offsets.npy")
    return [torch.from_numpy(tokens[a:b].copy()) for a, b in itertools.pairwise(offsets)]


def colpali(queries: list[torch.Tensor], docs: list[torch.Tensor]) -> torch.Tensor:
    from colpali_engine.utils.processing_utils import BaseVisualRetrieverProcessor

    return BaseVisualRetrieverProcessor.score_multi_vector(queries, docs, device="cpu")


def pylate(queries: list[torch.Tensor], docs: list[torch.Tensor]) -> torch.Tensor:
    from pylate.scores import colbert_scores

    pad = torch.nn.utils.rnn.pad_sequence
    q = pad(queries, batch_first=True)
    q_mask = pad([torch.ones(len(x)) for x in queries], batch_first=True)
    parts = []
    for j in range(0, len(docs), 128):
        batch = docs[j : j + 128]
        d = pad(batch, batch_first=True)
        d_mask = pad([torch.ones(len(x)) for x in batch], batch_first=True)
        parts.append(colbert_scores(q, d, queries_mask=q_mask, documents_mask=d_mask))
    return torch.cat(parts, dim=1)


PEERS = {"colpali-engine": colpali, "pylate": pylate}


def main() -> None:
    folder, threads = Path(sys.argv[1]), int(sys.argv[2])
    torch.set_num_threads(threads)
    torch.set_grad_enabled(False)
    queries, docs = load(folder, "queries"), load(folder, "docs")
    versions = {p: version(p) for p in ("torch", "pylate", "colpali-engine")}
    print(json.dumps({"ready": True, **versions}), flush=True)
    last: dict[str, np.ndarray] = {}
    for line in sys.stdin:
        cmd = line.split()
        if not cmd or cmd[0] == "quit":
            break
        if cmd[0] == "run":
            start, start_cpu = time.perf_counter(), time.process_time()
            scores = PEERS[cmd[1]](queries, docs)
            wall, cpu = time.perf_counter() - start, time.process_time() - start_cpu
            last[cmd[1]] = scores.float().numpy()
            print(json.dumps({"wall": wall, "cpu": cpu}), flush=True)
        elif cmd[0] == "save":
            np.save(cmd[2], last[cmd[1]])
            print(json.dumps({"saved": cmd[2]}), flush=True)


if __name__ == "__main__":
    main()
