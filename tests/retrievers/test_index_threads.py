"""Concurrency: 8 searching threads while one writer adds, upserts, deletes and compacts.

Every hit must name a document that existed at some moment during that search (added
before the search ended, not deleted before it started), carry that document's
metadata, and have its exact MaxSim score; no thread may raise.
"""

from __future__ import annotations

import itertools
import threading

import numpy as np
import pytest

from sauerkraut_rag.retrievers.voyager.index import VoyagerIndex
from tests.retrievers.helpers import random_docs, unit_rows

DIM = 16
READERS = 8


class Timeline:
    """A logical clock and what the writer did when."""

    def __init__(self) -> None:
        self._clock = itertools.count()
        self._lock = threading.Lock()
        self.add_started: dict[str, int] = {}
        self.delete_done: dict[str, int] = {}
        self.versions: dict[str, list[tuple[dict, np.ndarray]]] = {}

    def tick(self) -> int:
        with self._lock:
            return next(self._clock)


def _writer(index: VoyagerIndex, timeline: Timeline, stop: threading.Event) -> None:
    try:
        for step in range(30):
            ids = [f"w{step}-{i}" for i in range(6)]
            docs = random_docs(6, DIM, seed=step)
            metas = [{"step": step, "parity": step % 2} for _ in ids]
            for doc_id, meta, doc in zip(ids, metas, docs, strict=True):
                timeline.versions.setdefault(doc_id, []).append((meta, doc))
                timeline.add_started[doc_id] = timeline.tick()
            index.add(ids, docs, metas)
            if step % 5 == 4:
                gone = [f"w{step - 3}-{i}" for i in range(3)]
                index.delete(gone)
                now = timeline.tick()
                for doc_id in gone:
                    timeline.delete_done[doc_id] = now
            if step % 7 == 6:
                doc_id, new = f"w{step - 1}-5", random_docs(1, DIM, seed=500 + step)[0]
                timeline.versions[doc_id].append(({"step": -step, "parity": 9}, new))
                index.upsert([doc_id], [new], [{"step": -step, "parity": 9}])
            if step % 15 == 14:
                index.compact()
    finally:
        stop.set()


def _check_hit(hit, query: np.ndarray, timeline: Timeline, started: int, ended: int) -> None:
    assert hit.id in timeline.add_started and timeline.add_started[hit.id] < ended, hit.id
    deleted = timeline.delete_done.get(hit.id)
    assert deleted is None or deleted > started, (hit.id, deleted, started)
    versions = [doc for meta, doc in timeline.versions[hit.id] if meta == hit.metadata]
    assert versions, (hit.id, hit.metadata)
    exact = [
        float((query @ doc.astype(np.float16).astype(np.float32).T).max(axis=1).sum())
        for doc in versions
    ]
    assert min(abs(hit.score - e) for e in exact) < 1e-3, (hit.id, hit.score, exact)


def _reader(
    index: VoyagerIndex, timeline: Timeline, stop: threading.Event, seed: int, errors: list
) -> None:
    rng = np.random.default_rng(seed)
    try:
        while not stop.is_set():
            query = unit_rows(rng, int(rng.integers(1, 5)), DIM)
            flt = {"parity": int(rng.integers(0, 2))} if rng.random() < 0.3 else None
            started = timeline.tick()
            hits = index.search([query], 5, filter=flt)[0]
            ended = timeline.tick()
            scores = [h.score for h in hits]
            assert scores == sorted(scores, reverse=True)
            for hit in hits:
                if flt is not None:
                    assert hit.metadata["parity"] == flt["parity"]
                _check_hit(hit, query, timeline, started, ended)
            assert len(index) >= 0
            index.get([h.id for h in hits])
    except BaseException as exc:  # reported by the main thread
        errors.append(exc)
        stop.set()


@pytest.mark.parametrize("strategy", ["tokens", "fde"])
def test_readers_and_one_writer(tmp_path, strategy):
    timeline = Timeline()
    stop = threading.Event()
    errors: list[BaseException] = []
    with VoyagerIndex.create(
        tmp_path / "idx", dim=DIM, strategy=strategy, exact_threshold=40, candidates=20
    ) as index:
        readers = [
            threading.Thread(target=_reader, args=(index, timeline, stop, seed, errors))
            for seed in range(READERS)
        ]
        writer = threading.Thread(target=_writer, args=(index, timeline, stop))
        for thread in readers:
            thread.start()
        writer.start()
        writer.join(timeout=600)
        for thread in readers:
            thread.join(timeout=60)
        assert not writer.is_alive()
        if errors:
            raise errors[0]
        expected = {doc_id for doc_id in timeline.add_started if doc_id not in timeline.delete_done}
        assert set(index._snap.id_to_pos) == expected
