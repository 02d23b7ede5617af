"""Token cells (voyager/cells.py): against plain-Python references, persistence, recall."""

from __future__ import annotations

import json
import logging
import sqlite3
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sauerkraut_rag.retrievers.voyager import cells_store
from sauerkraut_rag.retrievers.voyager.cells import (
    CENTROID_WIDEN,
    PROBE_MARGIN,
    PROBE_MOST,
    PROBE_WIDE,
    Codebook,
    TokenLists,
    n_cells_for,
)
from sauerkraut_rag.retrievers.voyager.cells_search import cell_candidates
from sauerkraut_rag.retrievers.voyager.index import VoyagerIndex
from tests.retrievers.helpers import check_search, clustered_docs, unit_rows

DIM = 16


def make_docs(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """``n`` clustered documents of 4-15 tokens (enough tokens for cells from ~400 docs)."""
    docs, _ = clustered_docs(n, DIM, seed=seed, n_topics=30)
    return {f"d{i}": d for i, d in enumerate(docs)}


def create(path: Path, docs: dict[str, np.ndarray], **options: Any) -> VoyagerIndex:
    index = VoyagerIndex.create(path, dim=DIM, exact_threshold=0, **options)
    index.add(list(docs), list(docs.values()), [{"even": i % 2 == 0} for i in range(len(docs))])
    index._h.indexer.drain()  # graph and token cells are built in the background
    return index


@pytest.fixture(autouse=True)
def gather_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    """These indexes are tiny (~20 tokens per cell), so every query's cells hold more
    than ``GATHER_SHARE`` of the tokens: lift the limit to test the cells themselves."""
    from sauerkraut_rag.retrievers.voyager import cells_search

    monkeypatch.setattr(cells_search, "GATHER_SHARE", 1.0)


@pytest.fixture
def queries() -> list[np.ndarray]:
    rng = np.random.default_rng(5)
    return [unit_rows(rng, n, DIM) for n in (1, 4, 9)]


# ---------------------------------------------------------------------------- units


def test_number_of_cells_follows_the_square_root_rule():
    assert [n_cells_for(n) for n in (1, 4096, 10**5, 2 * 10**6, 10**7, 10**9)] == [
        256, 512, 2048, 8192, 16384, 65536,
    ]  # fmt: skip


def test_codebook_is_deterministic_and_assigns_the_most_similar_leaf():
    rng = np.random.default_rng(0)
    sample = unit_rows(rng, 3000, DIM)
    book = Codebook.train(sample, 256, seed=3)
    again = Codebook.train(sample, 256, seed=3)
    assert np.array_equal(book.top, again.top) and np.array_equal(book.leaves, again.leaves)
    assert book.top.shape == (4, DIM) and book.leaves.shape == (256, DIM)
    np.testing.assert_allclose(np.linalg.norm(book.leaves, axis=1), 1.0, rtol=1e-5)
    tokens = unit_rows(rng, 500, DIM).astype(np.float16)
    codes = book.assign(tokens)
    for token, code in zip(tokens.astype(np.float64), codes.tolist(), strict=True):
        sims = [float(leaf @ token) for leaf in book.leaves.astype(np.float64)]
        assert sims[code] >= max(sims) - 1e-5


def test_token_lists_match_a_dictionary_and_merge_like_one_build():
    rng = np.random.default_rng(1)
    codes = rng.integers(0, 12, size=150).astype(np.uint16)
    whole = TokenLists.build(codes, 0, 12)
    for cell in range(12):
        listed = whole.tokens[whole.ptr[cell] : whole.ptr[cell + 1]].tolist()
        assert listed == [t for t, c in enumerate(codes.tolist()) if c == cell]
    first = TokenLists.build(codes[:61], 0, 12)
    merged = first.merged(TokenLists.build(codes[61:], 61, 12))
    assert (merged.first, merged.stop) == (0, 150)
    assert np.array_equal(merged.ptr, whole.ptr) and np.array_equal(merged.tokens, whole.tokens)


def _reference_estimates(
    snap: Any, query: np.ndarray, probes: int
) -> tuple[dict[int, float], list[int]]:
    """Plain-Python estimate of every document found by the probed cells, and the query
    tokens that were poorly covered."""
    cells = snap.cells.cells
    leaves = cells.codebook.leaves.astype(np.float64)
    tokens = np.concatenate([snap.doc_tokens(p) for p in range(snap.n_docs)]).astype(np.float64)
    owner = np.repeat(np.arange(snap.n_docs), snap.lengths)
    best: dict[int, dict[int, float]] = defaultdict(dict)
    floors: list[float] = []
    wide: list[int] = []
    for i, q in enumerate(query.astype(np.float64)):
        sims = leaves @ q
        order = sorted(range(len(sims)), key=lambda c: -sims[c])
        near = sims[order[0]] - PROBE_MARGIN
        probed = {c for n, c in enumerate(order[:PROBE_MOST]) if n < probes or sims[c] >= near}
        if sims[order[0]] < cells.codebook.fit:  # a poorly covered token searches widely
            probed = set(order[:PROBE_WIDE])
            wide.append(i)
        found = [t for t, c in enumerate(cells.codes.tolist()) if c in probed]
        values = {t: float(tokens[t] @ q) for t in found}
        floors.append(min(values.values()) if values else 0.0)
        for t, v in values.items():
            pos = int(owner[t])
            best[pos][i] = max(best[pos].get(i, -np.inf), v)
    n_q = len(query)
    return {pos: sum(per.get(i, floors[i]) for i in range(n_q)) for pos, per in best.items()}, wide


def test_cell_candidates_follow_the_reference_estimate(tmp_path):
    docs = make_docs(450, seed=2)
    with create(tmp_path / "idx", docs) as index:
        snap = index._snap
        cells = snap.cells.cells
        book = cells.codebook
        mask = snap.live.copy()
        mask[::3] = False
        rng = np.random.default_rng(2)
        stored = snap.doc_tokens(7)[:2].astype(np.float32)  # tokens of the index: covered
        candidates = unit_rows(rng, 2000, DIM)
        poor = candidates[(candidates @ book.leaves.T).max(axis=1) < book.fit][:2]
        assert len(poor) == 2
        queries = [unit_rows(rng, 1, DIM), unit_rows(rng, 5, DIM), np.vstack([stored, poor])]
        widely = []
        for query in queries:
            estimate, wide = _reference_estimates(snap, query, probes=3)
            widely.extend(wide)
            allowed = {p: e for p, e in estimate.items() if mask[p]}
            everything = cell_candidates(snap, cells, query, mask, probes=3, want=10_000)
            assert set(everything.tolist()) == set(allowed)
            best = cell_candidates(snap, cells, query, mask, probes=3, want=5)
            assert len(best) == 5 and np.all(np.diff(best) > 0)
            cut = min(allowed[p] for p in best.tolist())
            assert all(e <= cut + 1e-4 for p, e in allowed.items() if p not in set(best.tolist()))
        assert widely  # the wide search of poorly covered tokens was exercised


# ---------------------------------------------------------------------------- index


def test_cells_search_alone_is_exact_when_all_documents_are_candidates(tmp_path, queries):
    docs = make_docs(500)
    with create(tmp_path / "idx", docs, candidates=0, cell_candidates=10_000, cell_probes=50) as ix:
        assert ix._snap.cells is not None
        check_search(ix, queries, docs, 5)
        even = {k: v for i, (k, v) in enumerate(docs.items()) if i % 2 == 0}
        for query, hits in zip(queries, ix.search(queries, 5, filter={"even": True}), strict=True):
            assert {h.id for h in hits} <= set(even)
            check_search_one(hits, query, even)


def check_search_one(hits: Any, query: np.ndarray, docs: dict[str, np.ndarray]) -> None:
    from tests.retrievers.helpers import assert_matches_brute_force

    assert_matches_brute_force(hits, query, docs, len(hits))


def test_cells_are_saved_reloaded_without_training_and_caught_up(tmp_path, queries, monkeypatch):
    docs = make_docs(600)
    index = create(tmp_path / "idx", docs)
    saved = index._snap.cells.cells
    index.close()
    monkeypatch.setattr(cells_store, "train", _no_training)
    with VoyagerIndex.open(tmp_path / "idx", read_only=True) as again:
        again._h.indexer.drain()
        assert np.array_equal(again._snap.cells.cells.codes, saved.codes)
        assert np.array_equal(again._snap.cells.cells.codebook.leaves, saved.codebook.leaves)
    more = make_docs(60, seed=9)
    more = {f"m{k}": v for k, v in more.items()}
    index = VoyagerIndex.open(tmp_path / "idx")
    index.add(list(more), list(more.values()))
    index._h.indexer.stop()
    index._h.lock.release()  # crash: the cells file still covers the first 600 documents only
    index._h.conn.close()
    with VoyagerIndex.open(tmp_path / "idx", read_only=True) as caught_up:
        caught_up._h.indexer.drain()
        cells = caught_up._snap.cells.cells
        assert cells.n_tokens == caught_up._snap.next_token
        tokens = np.concatenate(list(docs.values()) + list(more.values())).astype(np.float16)
        assert np.array_equal(cells.codes, saved.codebook.assign(tokens))
        caught_up.configure(candidates=0, cell_candidates=10_000, cell_probes=50)
        check_search(caught_up, queries, {**docs, **more}, 5)


def _no_training(*args: Any, **kwargs: Any) -> None:
    raise AssertionError("the saved cells should have been loaded, not retrained")


def test_index_created_before_cells_keeps_its_behaviour_until_turned_on(tmp_path, queries):
    docs = make_docs(600)
    create(tmp_path / "idx", docs).close()
    db = sqlite3.connect(tmp_path / "idx" / "index.sqlite")
    config = json.loads(db.execute("SELECT value FROM meta WHERE key = 'config'").fetchone()[0])
    del config["cell_candidates"], config["cell_probes"]  # as written before cells existed
    db.execute("UPDATE meta SET value = ? WHERE key = 'config'", (json.dumps(config),))
    db.execute("DELETE FROM meta WHERE key = 'cells'")
    db.commit()
    db.close()
    with VoyagerIndex.open(tmp_path / "idx") as old:
        assert old.config.cell_candidates == 0 and (
            old._snap.cells is None or old._snap.cells.cells is None
        )
        old.configure(cell_candidates=128)
        old._h.indexer.drain()
        assert old._snap.cells is not None and old._snap.cells.cells is not None
    with VoyagerIndex.open(tmp_path / "idx", read_only=True) as reopened:
        reopened._h.indexer.drain()
        assert reopened.config.cell_candidates == 128 and reopened._snap.cells.cells is not None
        reopened.configure(candidates=0, cell_candidates=10_000, cell_probes=50)
        check_search(reopened, queries, docs, 5)


def test_compact_renumbers_cells_and_damaged_files_are_retrained(tmp_path, queries, caplog):
    docs = make_docs(700)
    index = create(tmp_path / "idx", docs, candidates=0, cell_candidates=10_000, cell_probes=50)
    gone = [f"d{i}" for i in range(0, 700, 3)]
    index.delete(gone)
    index.compact()
    index._h.indexer.drain()
    for doc_id in gone:
        del docs[doc_id]
    cells = index._snap.cells.cells
    assert cells.n_tokens == index._snap.next_token
    tokens = np.concatenate(list(docs.values())).astype(np.float16)
    assert np.array_equal(cells.codes, cells.codebook.assign(tokens))
    check_search(index, queries, docs, 5)
    index.close()
    (file,) = (tmp_path / "idx" / "hnsw").glob("cells-*.npz")
    file.write_bytes(b"not an npz file")
    with caplog.at_level(logging.WARNING), VoyagerIndex.open(tmp_path / "idx") as reopened:
        reopened._h.indexer.drain()
        assert "retraining the cells" in caplog.text
        assert reopened._snap.cells.cells.n_tokens == reopened._snap.next_token
        check_search(reopened, queries, docs, 5)


def test_queries_whose_cells_hold_too_many_tokens_use_cell_similarities(
    tmp_path, queries, monkeypatch
):
    from sauerkraut_rag.retrievers.voyager import cells_search

    docs = make_docs(500)
    with create(tmp_path / "idx", docs, candidates=0, cell_candidates=10_000) as index:
        snap = index._snap
        cells = snap.cells.cells
        mask = snap.live.copy()
        mask[1::4] = False
        query = queries[1]
        monkeypatch.setattr(cells_search, "GATHER_SHARE", 0.0)
        # plain-Python centroid estimate: a token counts with its cell's similarity
        centroid = query.astype(np.float64) @ cells.codebook.leaves.T.astype(np.float64)
        owner = snap.positions_of_tokens(np.arange(snap.next_token))
        best: dict[int, dict[int, float]] = defaultdict(dict)
        floors = []
        for i, row in enumerate(cells.probe(query.astype(np.float32), 4)):
            tokens = cells.tokens_in(row)
            values = centroid[i, cells.codes[tokens]]
            floors.append(values.min())
            for t, v in zip(tokens.tolist(), values.tolist(), strict=True):
                pos = int(owner[t])
                if pos >= 0 and mask[pos]:
                    best[pos][i] = max(best[pos].get(i, -np.inf), v)
        estimate = {
            p: sum(per.get(i, floors[i]) for i in range(len(query))) for p, per in best.items()
        }
        everything = cell_candidates(snap, cells, query, mask, probes=4, want=10_000)
        assert set(everything.tolist()) == set(estimate)
        chosen = cell_candidates(snap, cells, query, mask, probes=4, want=3)
        assert len(chosen) == 3 * CENTROID_WIDEN
        cut = min(estimate[p] for p in chosen.tolist())
        assert all(e <= cut + 1e-4 for p, e in estimate.items() if p not in set(chosen.tolist()))
