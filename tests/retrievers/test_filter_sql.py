"""VoyagerIndex answers filters in SQLite: the shared matrix checked three ways.

For every case of ``tests/filter_cases.py``: (1) the rows SQLite selects, (2) an
independent plain-Python reference evaluator over the stored metadata, and (3) a
brute-force scan (exact MaxSim of the query against every document the reference keeps)
compared with what ``search(..., filter=...)`` returns, plus the hand-written ids.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from sauerkraut_rag.errors import FilterError
from sauerkraut_rag.retrievers.filters import parse_filter
from sauerkraut_rag.retrievers.voyager import filter_sql, state
from sauerkraut_rag.retrievers.voyager.index import VoyagerIndex
from tests.filter_cases import BAD_CASES, CASES, DOCUMENTS
from tests.retrievers.filter_reference import reference_match
from tests.retrievers.helpers import assert_matches_brute_force, random_docs

DIM = 8
IDS = sorted(DOCUMENTS)
VECTORS = dict(zip(IDS, random_docs(len(IDS), DIM, seed=3, lo=2, hi=6), strict=True))
QUERY = random_docs(1, DIM, seed=4, lo=3, hi=3)[0]


def _fill(index: VoyagerIndex) -> None:
    # two adds, an upsert of changed metadata and a delete: rows are not positions
    half = len(IDS) // 2
    for part in (IDS[:half], IDS[half:]):
        index.add(part, [VECTORS[i] for i in part], [DOCUMENTS[i] for i in part])
    index.upsert(["a"], [VECTORS["a"]], [{"lang": "xx", "tags": ["stale"]}])
    index.add(["zz"], [VECTORS["a"]], [{"lang": "de", "tags": ["news"]}])
    index.delete(["zz"])
    index.upsert(["a"], [VECTORS["a"]], [DOCUMENTS["a"]])


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> VoyagerIndex:
    folder = tmp_path_factory.mktemp("filters") / "index"
    with VoyagerIndex(folder, dim=DIM) as built:
        _fill(built)
    opened = VoyagerIndex.open(folder, read_only=True)
    yield opened
    opened.close()


def _sql_ids(index: VoyagerIndex, flt: dict) -> set[str]:
    snap = index._snap
    with index._h.reads.connection() as conn:
        assert filter_sql.is_ready(conn)
        mask = filter_sql.filter_mask(conn, snap, parse_filter(flt))
    return {snap.ids[p] for p in np.flatnonzero(mask)}


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_matrix_sql_reference_and_brute_force_agree(index: VoyagerIndex, case) -> None:
    stored = {doc.id: doc.metadata for doc in index.get(IDS)}
    assert stored == DOCUMENTS
    reference = {i for i, meta in stored.items() if reference_match(case.filter, meta)}
    assert reference == case.expected
    assert _sql_ids(index, case.filter) == reference
    hits = index.search([QUERY], len(IDS) + 5, filter=case.filter)[0]
    assert {h.id for h in hits} == reference
    assert_matches_brute_force(hits, QUERY, {i: VECTORS[i] for i in reference}, len(reference))


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_python_fallback_agrees(index: VoyagerIndex, case) -> None:
    snap = index._snap
    mask = state.filter_mask(snap, parse_filter(case.filter))
    assert {snap.ids[p] for p in np.flatnonzero(mask)} == case.expected


@pytest.mark.parametrize("case", BAD_CASES, ids=lambda c: c.name)
def test_bad_filters_raise_before_searching(index: VoyagerIndex, case) -> None:
    with pytest.raises(case.error, match=None) as info:
        index.search([QUERY], 3, filter=case.filter)
    assert isinstance(info.value, FilterError) and case.message in str(info.value)


def test_callable_filters_still_work(index: VoyagerIndex) -> None:
    hits = index.search([QUERY], 20, filter=lambda meta: meta.get("lang") == "de")[0]
    assert {h.id for h in hits} == {"a", "c"}


def test_entries_of_deleted_documents_go_with_compact(tmp_path: Path) -> None:
    with VoyagerIndex(tmp_path / "ix", dim=DIM) as index:
        _fill(index)
        conn = index._h.conn
        before = conn.execute("SELECT count(DISTINCT row) FROM filter_values").fetchone()[0]
        index.compact()
        rows = {r for (r,) in conn.execute("SELECT row FROM docs")}
        kept = {r for (r,) in conn.execute("SELECT DISTINCT row FROM filter_values")}
        assert kept == rows and len(kept) == len(IDS) < before
        assert {h.id for h in index.search([QUERY], 20, filter={"lang": "de"})[0]} == {"a", "c"}


def _make_old(folder: Path) -> None:
    """Turn an index into one written before the filter table existed."""
    conn = sqlite3.connect(folder / "index.sqlite")
    conn.executescript(
        "DROP TRIGGER filter_values_guard; DROP TABLE filter_values; "
        "DELETE FROM meta WHERE key = 'filter_values';"
    )
    conn.close()


def test_old_index_opens_read_only_and_migrates_on_writable_open(tmp_path: Path) -> None:
    folder = tmp_path / "old"
    with VoyagerIndex(folder, dim=DIM) as index:
        _fill(index)
    _make_old(folder)
    flt = {"$or": [{"lang": "de"}, {"tags": "news"}]}
    expected = {i for i, m in DOCUMENTS.items() if reference_match(flt, m)}
    with VoyagerIndex.open(folder, read_only=True) as old:
        with old._h.reads.connection() as conn:
            assert not filter_sql.is_ready(conn)  # answered in Python
        assert {h.id for h in old.search([QUERY], 20, filter=flt)[0]} == expected
    with VoyagerIndex.open(folder) as migrated:
        with migrated._h.reads.connection() as conn:
            assert filter_sql.is_ready(conn)
        assert {h.id for h in migrated.search([QUERY], 20, filter=flt)[0]} == expected
        assert _sql_ids(migrated, flt) == expected


def test_a_writer_without_entries_marks_the_table_stale(tmp_path: Path) -> None:
    folder = tmp_path / "ix"
    with VoyagerIndex(folder, dim=DIM) as index:
        _fill(index)
    conn = sqlite3.connect(folder / "index.sqlite")
    conn.execute(  # what an older sauerkraut-rag would write: a document, no entries
        "INSERT INTO docs(row, id, token_start, n_tokens, deleted_at, metadata, payload, crc) "
        "SELECT max(row) + 1, 'old-writer', 0, 1, 1, '{}', NULL, 0 FROM docs"
    )
    conn.commit()
    assert conn.execute("SELECT value FROM meta WHERE key = 'filter_values'").fetchone() == (
        "stale",
    )
    conn.execute("DELETE FROM docs WHERE id = 'old-writer'")
    conn.commit()
    conn.close()
    with VoyagerIndex.open(folder, read_only=True) as reader:
        with reader._h.reads.connection() as rconn:
            assert not filter_sql.is_ready(rconn)
        assert {h.id for h in reader.search([QUERY], 20, filter={"lang": "de"})[0]} == {"a", "c"}
    with VoyagerIndex.open(folder) as writer:  # rebuilt on the writable open
        assert {h.id for h in writer.search([QUERY], 20, filter={"lang": "de"})[0]} == {"a", "c"}
        with writer._h.reads.connection() as wconn:
            assert filter_sql.is_ready(wconn)


def test_entries_flatten_lists_and_nested_dicts() -> None:
    found = filter_sql.entries({"a": {"b": [1, "x", [2], {"c": 3}]}, "n": None, "t": True})
    assert found == {
        ("[]", filter_sql.DICT, 0),
        ('["a"]', filter_sql.DICT, 0),
        ('["a","b"]', filter_sql.LIST, 0),
        ('["a","b"]', filter_sql.NUMBER, 1),
        ('["a","b"]', filter_sql.TEXT, "x"),
        ('["n"]', filter_sql.NULL, 0),
        ('["t"]', filter_sql.BOOL, 1),
    }


def test_deep_metadata_does_not_recurse() -> None:
    meta: dict = {}
    node = meta
    for _ in range(5000):
        node["k"] = {}
        node = node["k"]
    assert len(filter_sql.entries(meta)) == 5001


def test_many_comparisons_are_split_over_statements(index: VoyagerIndex) -> None:
    sources = [f"missing-{i}.txt" for i in range(450)] + ["a.txt"]
    flt = {"$or": [{"source": s} for s in sources]}  # 451 comparisons > one statement
    assert filter_sql.compile_leaves(parse_filter(flt)).__len__() == 451
    assert _sql_ids(index, flt) == {"a", "d"}


def test_filtered_search_picks_the_cheaper_path(tmp_path: Path) -> None:
    from sauerkraut_rag.retrievers.voyager.search import _filtered_path_is_approximate

    docs = random_docs(400, DIM, seed=5, lo=100, hi=140)
    metas = [{"group": "rare" if i < 4 else "half" if i % 2 else "other"} for i in range(400)]
    with VoyagerIndex(tmp_path / "ix", dim=DIM, exact_threshold=0, candidates=16) as built:
        built.add([f"d{i}" for i in range(400)], docs, metas)
        snap, config = built._snap, built.config
        with built._h.reads.connection() as conn:
            rare = filter_sql.filter_mask(conn, snap, parse_filter({"group": "rare"}))
            half = filter_sql.filter_mask(conn, snap, parse_filter({"group": "half"}))
        # above exact_threshold (0): 4 matching documents cost less exactly than 16 candidates
        assert not _filtered_path_is_approximate(snap, config, rare, 4, 3, True)
        # 200 matching documents: HNSW candidates + rerank are cheaper than scoring all
        assert _filtered_path_is_approximate(snap, config, half, 200, 3, True)
        # at or below the threshold exactness is kept unless it costs far more
        assert not _filtered_path_is_approximate(snap, config, rare, 4, 3, False)
        hits = built.search([QUERY], 3, filter={"group": "rare"})[0]
        rare_docs = {f"d{i}": docs[i] for i in range(4)}
        assert_matches_brute_force(hits, QUERY, rare_docs, 3)
