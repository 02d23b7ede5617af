"""Concurrency: 16 threads search through the framework adapters while a writer changes
the index underneath.

Six threads call the LangChain retriever's ``ainvoke``, five its ``abatch`` and five the
LlamaIndex retriever's ``aretrieve`` (each thread runs its own event loop). Meanwhile a
writer adds, replaces and deletes documents through the LangChain vector store and
compacts the shared ``VoyagerIndex``. No call may raise, and every result must be a
version of a document that existed at some moment during that search: written before
the search ended, and neither deleted nor replaced before it started.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from sauerkraut_rag import MultiVectorEncoder
from sauerkraut_rag.retrievers.voyager.index import VoyagerIndex
from tests.factories.colbert import tiny_vocab
from tests.reliability.conftest import TEXTS

pytest.importorskip("langchain_core")
pytest.importorskip("llama_index.core")

from sauerkraut_rag.integrations.langchain import SauerkrautVectorStore
from sauerkraut_rag.integrations.llamaindex import SauerkrautRetriever

THREADS = {"ainvoke": 6, "abatch": 5, "aretrieve": 5}
WRITER_ROUNDS = 24
K = 4
WORDS = [w for w in tiny_vocab() if w.isalpha() and len(w) > 2]


@dataclass
class Version:
    """One stored version of a document and the logical times bounding its life."""

    text: str
    metadata: dict[str, Any]
    written: int  # tick taken just before the write call started
    gone: int | None = None  # tick taken just after the delete/replace call returned


@dataclass
class History:
    """A logical clock and every version of every document the writer stored."""

    versions: dict[str, list[Version]] = field(default_factory=dict)
    _clock: itertools.count[int] = field(default_factory=itertools.count)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def tick(self) -> int:
        with self._lock:
            return next(self._clock)

    def check(self, doc_id: str, text: str, metadata: dict[str, Any], start: int, end: int) -> None:
        """The result is a version alive at some moment in ``[start, end]``."""
        alive = [
            v
            for v in self.versions.get(doc_id, [])
            if v.written < end and (v.gone is None or v.gone > start)
        ]
        assert alive, f"{doc_id!r} did not exist between ticks {start} and {end}"
        assert any(v.text == text and v.metadata == metadata for v in alive), (doc_id, text)


def _write(
    store: SauerkrautVectorStore, history: History, ids: list[str], texts: list[str]
) -> None:
    metas = [{"id": doc_id, "rev": len(history.versions.get(doc_id, []))} for doc_id in ids]
    tick = history.tick()
    replaced = [history.versions[i][-1] for i in ids if i in history.versions]
    for doc_id, text, meta in zip(ids, texts, metas, strict=True):
        history.versions.setdefault(doc_id, []).append(Version(text, meta, tick))
    store.add_texts(texts, metas, ids=ids)
    done = history.tick()
    for version in replaced:
        version.gone = done


def _writer(store: SauerkrautVectorStore, history: History, stop: threading.Event) -> None:
    rng = random.Random(7)
    try:
        for r in range(WRITER_ROUNDS):
            ids = [f"w{r}-{i}" for i in range(3)]
            _write(store, history, ids, [" ".join(rng.sample(WORDS, 6)) for _ in ids])
            if r % 3 == 2:
                gone = [f"w{r - 2}-0", f"w{r - 1}-1"]
                store.delete(gone)
                done = history.tick()
                for doc_id in gone:
                    history.versions[doc_id][-1].gone = done
            if r % 4 == 3:
                _write(store, history, [f"w{r - 1}-2"], [" ".join(rng.sample(WORDS, 4))])
            if r % 8 == 7:
                store.index.compact()  # type: ignore[attr-defined]
    finally:
        stop.set()


async def _search(kind: str, store: Any, li: Any, query: str) -> list[tuple[str, str, dict]]:
    """Run one search; returns ``(id, text, metadata)`` per result."""
    if kind == "aretrieve":
        nodes = await li.aretrieve(query)
        return [(n.node.id_, n.node.get_content(), dict(n.node.metadata)) for n in nodes]
    retriever = store.as_retriever(search_kwargs={"k": K})
    if kind == "ainvoke":
        docs = await retriever.ainvoke(query)
    else:
        batches = await retriever.abatch([query, query.upper(), query[::-1]])
        docs = [doc for batch in batches for doc in batch]
    return [(d.id, d.page_content, d.metadata) for d in docs]


def _reader(
    kind: str, seed: int, shared: tuple[Any, Any, History], stop: threading.Event, log: dict
) -> None:
    store, li, history = shared
    rng = random.Random(seed)

    async def loop() -> None:
        while not stop.is_set():
            query = " ".join(rng.sample(WORDS, 3))
            start = history.tick()
            results = await _search(kind, store, li, query)
            end = history.tick()
            assert len(results) == K * (3 if kind == "abatch" else 1)
            for doc_id, text, metadata in results:
                history.check(doc_id, text, metadata, start, end)
            log["searches"][kind] += 1

    try:
        asyncio.run(loop())
    except BaseException as exc:  # reported by the main thread
        log["errors"].append((kind, exc))
        stop.set()


def test_adapter_searches_during_writes(text_encoder: MultiVectorEncoder, tmp_path: Path) -> None:
    index = VoyagerIndex.create(tmp_path / "index", dim=text_encoder.dim, exact_threshold=20)
    store = SauerkrautVectorStore(text_encoder, index)
    li = SauerkrautRetriever(text_encoder, index, similarity_top_k=K)
    history = History()
    _write(store, history, [f"base{i}" for i in range(len(TEXTS))], TEXTS)
    stop = threading.Event()
    log: dict[str, Any] = {"errors": [], "searches": dict.fromkeys(THREADS, 0)}
    shared = (store, li, history)
    readers = [
        threading.Thread(target=_reader, args=(kind, 100 * n + i, shared, stop, log))
        for n, (kind, count) in enumerate(THREADS.items())
        for i in range(count)
    ]
    writer = threading.Thread(target=_writer, args=(store, history, stop))
    try:
        for thread in readers:
            thread.start()
        writer.start()
        writer.join(timeout=600)
        for thread in readers:
            thread.join(timeout=120)
    finally:
        stop.set()
    assert len(readers) == 16
    assert not writer.is_alive() and not any(t.is_alive() for t in readers)
    if log["errors"]:
        kind, exc = log["errors"][0]
        raise AssertionError(f"{len(log['errors'])} reader(s) failed, first via {kind}") from exc
    assert all(n > 0 for n in log["searches"].values()), log["searches"]
    live = {doc_id for doc_id, vs in history.versions.items() if vs[-1].gone is None}
    assert set(index._snap.id_to_pos) == live
    index.close()
