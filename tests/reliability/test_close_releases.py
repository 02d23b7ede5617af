"""Closing an index frees its graph and segments at once, not at the next full garbage
collection: no reference cycle keeps a closed, dropped handle alive (issue 14 row 13:
a long-running service that reopens its index grew by one graph per reopen)."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest

from sauerkraut_rag.retrievers.voyager.index import VoyagerIndex
from tests.retrievers.helpers import random_docs


@pytest.fixture
def no_cycle_collector() -> Iterator[None]:
    """Only reference counts free objects while the test runs."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    with VoyagerIndex.create(tmp_path / "idx", dim=16, exact_threshold=10) as index:
        index.add([f"d{i}" for i in range(60)], random_docs(60), [{"g": i % 3} for i in range(60)])
    return tmp_path / "idx"


def _use(index: VoyagerIndex, write: bool) -> None:
    queries = random_docs(2, seed=1)
    index.search(queries, 5)
    index.search(queries, 5, filter={"g": 1})
    if write:
        ids = [f"n{i}" for i in range(5)]
        index.add(ids, random_docs(5, seed=2), [{"g": 0}] * 5)
        index.delete(ids[:2])
        index.compact()


@pytest.mark.parametrize("read_only", [False, True])
def test_a_closed_dropped_index_is_freed_by_reference_counting(
    folder: Path, no_cycle_collector: None, read_only: bool
) -> None:
    index = VoyagerIndex.open(folder, read_only=read_only)
    _use(index, write=not read_only)
    handle = index._h
    refs = {
        "index": weakref.ref(index),
        "handle": weakref.ref(handle),
        "snapshot": weakref.ref(handle.reads.snap),
    }
    index.close()
    del index, handle
    alive = [name for name, ref in refs.items() if ref() is not None]
    assert alive == [], f"still referenced after close: {alive}"


def test_a_reader_lets_go_of_the_snapshots_it_replaced(
    folder: Path, no_cycle_collector: None
) -> None:
    with VoyagerIndex.open(folder, read_only=True) as reader:
        first = weakref.ref(reader._snap)
        with VoyagerIndex.open(folder) as writer:
            writer.add(["new"], random_docs(1, seed=3))
        assert "new" in reader  # the reader caught up to a new snapshot
        assert first() is None, "the reader still holds the snapshot it opened with"
