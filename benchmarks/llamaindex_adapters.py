"""LlamaIndex adapter cost against the bare core, and the MUVERA + rerank path, in one run.

Usage::

    python benchmarks/llamaindex_adapters.py --docs 1000 --repeats 3

Same model, corpus and queries as ``benchmarks/langchain_adapters.py`` (whose corpus and
timing helpers it reuses): the MiniLM-based PyLate-layout test checkpoint and ``--docs``
two-sentence documents from ``tests/data/quality_corpus.json``, 36 queries.  Every method
encodes the query itself, so the ratios show what the adapters add.

Per-query methods (ms/query, median over rounds; methods run round-robin per round):

* ``core``: ``encoder.encode_queries`` + ``VoyagerIndex.search`` (the peer, 1.00x);
* ``SauerkrautRetriever``: ``retrieve`` on the same index contents (``TextNode`` results);
* ``VectorStoreIndex+FDE``: LlamaIndex's default in-memory index over
  ``SauerkrautEmbedding`` (one MUVERA vector per node, cosine);
* ``FDE+MaxSimRerank``: that index's top ``--candidates`` reranked by ``MaxSimRerank``
  (which re-encodes the candidate texts: it only sees nodes).

``overlap@k with core``: mean share of the core's top-k ids that a method also returns.

Indexing (s for all documents): ``core add`` against ``SauerkrautRetriever.add_nodes``
and building the ``VectorStoreIndex``.

``--clock cpu`` (default) measures this process's CPU time (``time.process_time``), which
other jobs on a shared machine disturb far less than wall time; with one torch thread it
is the work done.  ``--clock wall`` measures wall time.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from llama_index.core import VectorStoreIndex  # noqa: E402
from llama_index.core.schema import NodeWithScore, TextNode  # noqa: E402

from benchmarks.langchain_adapters import make_corpus, print_indexing_table  # noqa: E402
from sauerkraut_rag import load_encoder  # noqa: E402
from sauerkraut_rag.integrations.llamaindex import (  # noqa: E402
    MaxSimRerank,
    SauerkrautEmbedding,
    SauerkrautRetriever,
)
from sauerkraut_rag.retrievers.voyager.index import VoyagerIndex  # noqa: E402
from tests.factories.minilm_colbert import build_minilm_colbert  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--candidates", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: stable)")
    parser.add_argument("--clock", choices=["cpu", "wall"], default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    clock = time.process_time if args.clock == "cpu" else time.perf_counter

    def timed(fn: Callable[[], object]) -> float:
        start = clock()
        fn()
        return clock() - start

    with tempfile.TemporaryDirectory() as tmp:
        encoder = load_encoder(build_minilm_colbert(Path(tmp) / "model"))
        docs, queries = make_corpus(args.docs, seed=0)
        ids = [f"d{i}" for i in range(len(docs))]
        nodes = [TextNode(id_=i, text=text) for i, text in zip(ids, docs, strict=True)]

        core_index = VoyagerIndex(Path(tmp) / "core", encoder.dim)
        retriever = SauerkrautRetriever(encoder, Path(tmp) / "li", similarity_top_k=args.k)
        embed = SauerkrautEmbedding(encoder, embed_batch_size=32)
        built: dict[str, VectorStoreIndex] = {}

        def core_add() -> None:
            core_index.add(ids, encoder.encode_documents(docs, show_progress=False))

        def build_vector_index() -> None:
            built["index"] = VectorStoreIndex(nodes, embed_model=embed)

        indexing = {
            "core add": timed(core_add),
            "SauerkrautRetriever.add_nodes": timed(lambda: retriever.add_nodes(nodes)),
            "VectorStoreIndex(nodes) (FDE)": timed(build_vector_index),
        }
        fde_top_k = built["index"].as_retriever(similarity_top_k=args.k)
        fde_candidates = built["index"].as_retriever(similarity_top_k=args.candidates)
        reranker = MaxSimRerank(text_encoder=encoder, top_n=args.k)

        def core(q: str) -> list[str]:
            return [hit.id for hit in core_index.search(encoder.encode_queries([q]), args.k)[0]]

        def node_ids(fn: Callable[[str], list[NodeWithScore]]) -> Callable[[str], list[str]]:
            return lambda q: [scored.node.node_id for scored in fn(q)]

        def rerank(q: str) -> list[NodeWithScore]:
            return reranker.postprocess_nodes(fde_candidates.retrieve(q), query_str=q)

        methods: dict[str, Callable[[str], list[str]]] = {
            "core": core,
            "SauerkrautRetriever": node_ids(retriever.retrieve),
            "VectorStoreIndex+FDE": node_ids(fde_top_k.retrieve),
            "FDE+MaxSimRerank": node_ids(rerank),
        }
        for fn in methods.values():  # warm-up
            fn(queries[0])
        rounds: dict[str, list[float]] = {name: [] for name in methods}
        for _ in range(args.repeats):
            for name, fn in methods.items():
                total = sum(timed(lambda q=q, fn=fn: fn(q)) for q in queries)
                rounds[name].append(1000 * total / len(queries))
        exact = {q: set(core(q)) for q in queries}
        overlap = {
            name: statistics.mean(len(exact[q] & set(fn(q))) / args.k for q in queries)
            for name, fn in methods.items()
        }
        segments = retriever.index.stats().get("segments")  # type: ignore[attr-defined]
        retriever.close()
        core_index.close()

    base = statistics.median(rounds["core"])
    print(
        f"docs={args.docs} queries={len(queries)} k={args.k} threads={args.threads} "
        f"clock={args.clock}"
    )
    print(f"index segments: core 1, SauerkrautRetriever {segments}")
    print("| method | ms/query (median) | ms/query (best) | x core | overlap@k with core |")
    print("|---|---|---|---|---|")
    for name, values in rounds.items():
        med = statistics.median(values)
        print(
            f"| {name} | {med:.2f} | {min(values):.2f} | {med / base:.2f} | {overlap[name]:.3f} |"
        )
    print_indexing_table(indexing)


if __name__ == "__main__":
    main()
