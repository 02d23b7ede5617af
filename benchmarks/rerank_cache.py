"""Rerank latency with the document cache: a repeated candidate set, a fresh one, no cache.

Usage::

    python benchmarks/rerank_cache.py                          # 20 candidates, 10 rounds
    python benchmarks/rerank_cache.py --model VAGOsolutions/SauerkrautLM-Multi-ColBERT-15m
    python benchmarks/rerank_cache.py --candidates 5 --rounds 2 --words 60   # smoke run

Model: ``--model`` (hub id or folder), else the MiniLM-based PyLate-layout test checkpoint
(22M parameters, 128-d, offline) with ``--document-length`` tokens per document (512, its
limit). Candidates are ``--words``-word chunks of the quality corpus' sentences (about
1.3 tokens per word; every chunk distinct). For both rerankers, LangChain's
``MaxSimReranker`` and LlamaIndex's ``MaxSimRerank``, each round runs (round-robin):

* ``no cache``: ``cache=False``, the same candidates every round (the old behaviour);
* ``repeated``: a ``DocumentCache``, the same candidates every round (warmed once before);
* ``fresh``: the same cache, candidates never seen before (every document a miss: the
  cost of hashing and storing on top of encoding).

Times are per query (one rerank of ``--candidates`` documents), best and median over the
rounds, wall and CPU (``time.process_time``); ratios against ``no cache``. One query per
round, a different one each round.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from langchain_core.documents import Document  # noqa: E402
from llama_index.core.schema import NodeWithScore, TextNode  # noqa: E402

from sauerkraut_rag import load_encoder  # noqa: E402
from sauerkraut_rag.encoders.document_cache import DocumentCache  # noqa: E402
from sauerkraut_rag.integrations.langchain import MaxSimReranker  # noqa: E402
from sauerkraut_rag.integrations.llamaindex import MaxSimRerank  # noqa: E402
from tests.factories.minilm_colbert import build_minilm_colbert, load_quality_corpus  # noqa: E402


def chunks(n: int, words: int, seed: int) -> list[str]:
    """``n`` distinct chunks of about ``words`` words drawn from the quality corpus."""
    sentences = [d["text"] for d in load_quality_corpus()["documents"]]
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        picked: list[str] = [f"Chunk {seed}-{i}."]
        while sum(len(s.split()) for s in picked) < words:
            picked.append(str(rng.choice(sentences)))
        out.append(" ".join(picked))
    return out


def timed(fn: Callable[[], Any]) -> tuple[float, float]:
    start, start_cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - start, time.process_time() - start_cpu


def langchain(encoder: Any, cache: Any, top_n: int) -> Callable[[list[str], str], Any]:
    reranker = MaxSimReranker(encoder, top_n=top_n, cache=cache)
    return lambda texts, query: reranker.compress_documents(
        [Document(page_content=t) for t in texts], query
    )


def llamaindex(encoder: Any, cache: Any, top_n: int) -> Callable[[list[str], str], Any]:
    reranker = MaxSimRerank(encoder, top_n=top_n, cache=cache)
    return lambda texts, query: reranker.postprocess_nodes(
        [NodeWithScore(node=TextNode(text=t)) for t in texts], query_str=query
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="hub id or folder (default: MiniLM test)")
    parser.add_argument("--document-length", type=int, default=512)
    parser.add_argument("--candidates", type=int, default=20)
    parser.add_argument("--words", type=int, default=380, help="words per candidate chunk")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    queries = [q["query"] for q in load_quality_corpus()["queries"]]
    with tempfile.TemporaryDirectory() as tmp:
        source = args.model or build_minilm_colbert(Path(tmp) / "model")
        encoder = load_encoder(source, document_length=args.document_length)
        repeated = chunks(args.candidates, args.words, seed=0)
        tokens = [len(v) for v in encoder.encode_documents(repeated[:3])]
        load_before = os.getloadavg()
        rows = []
        for name, make in (
            ("LangChain MaxSimReranker", langchain),
            ("LlamaIndex MaxSimRerank", llamaindex),
        ):
            rows.append((name, run(make, encoder, repeated, queries, args)))
        load_after = os.getloadavg()
    print(
        f"\nModel {args.model or 'MiniLM test checkpoint'} (document_length "
        f"{args.document_length}); {args.candidates} candidates of ~{args.words} words "
        f"({int(np.mean(tokens))} tokens encoded each); {args.rounds} rounds; torch threads "
        f"{torch.get_num_threads()}; load average before {load_before[0]:.2f}, after "
        f"{load_after[0]:.2f}.\n"
    )
    print(
        "| reranker | candidates | wall ms/query best | wall median | CPU ms/query best "
        "| x no cache (CPU) |"
    )
    print("|---|---|---:|---:|---:|---:|")
    for name, timings in rows:
        base = min(timings["no cache"][1])
        for label, (walls, cpus) in timings.items():
            print(
                f"| {name} | {label} | {1000 * min(walls):.1f} | "
                f"{1000 * statistics.median(walls):.1f} | {1000 * min(cpus):.1f} | "
                f"{base / min(cpus):.1f}x |"
            )


def run(
    make: Callable[..., Callable[[list[str], str], Any]],
    encoder: Any,
    repeated: list[str],
    queries: list[str],
    args: Any,
) -> dict[str, tuple[list[float], list[float]]]:
    cache = DocumentCache(max_bytes=1 << 30)
    plain, cached = make(encoder, False, 5), make(encoder, cache, 5)
    cached(repeated, queries[0])  # warm the cache with the repeated set
    offset = 1 + 1000 * (make is llamaindex)  # fresh texts differ between rerankers too
    fresh_sets = [chunks(args.candidates, args.words, seed=offset + r) for r in range(args.rounds)]
    labels = ("no cache", "repeated", "fresh")
    timings: dict[str, tuple[list[float], list[float]]] = {k: ([], []) for k in labels}
    for r in range(args.rounds):
        query = queries[(r + 1) % len(queries)]
        calls = {
            "no cache": lambda q=query: plain(repeated, q),
            "repeated": lambda q=query: cached(repeated, q),
            "fresh": lambda q=query, texts=fresh_sets[r]: cached(texts, q),
        }
        for label in labels:
            wall, cpu = timed(calls[label])
            timings[label][0].append(wall)
            timings[label][1].append(cpu)
    return timings


if __name__ == "__main__":
    main()
