"""VoyagerIndex behaviour against brute-force MaxSim, persistence, errors and corruption.

The protocol-level semantics every backend shares (empty index, k checks, get order,
duplicate ids, bad input, the filter matrix) are in the conformance suite, run on
VoyagerIndex by ``test_conformance.py``; these tests cover what is Voyager's own
(strategies, HNSW storage, segments, persistence, damage)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from sauerkraut_rag.errors import (
    DimensionMismatchError,
    DuplicateIdError,
    IndexFormatError,
    IndexStoreError,
    InvalidInputError,
    InvalidInputTypeError,
    UnknownIdError,
)
from sauerkraut_rag.retrievers.protocol import MultiVectorIndex
from sauerkraut_rag.retrievers.voyager.index import VoyagerIndex
from tests.retrievers.helpers import (
    assert_matches_brute_force,
    brute_maxsim,
    brute_topk,
    check_search,
    clustered_docs,
    random_docs,
    unit_rows,
)
from tests.retrievers.index_support import DIM, STRATEGIES, fill, make, state

# ---------------------------------------------------------------------------- search


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("exact_threshold", [0, 10_000])
def test_search_matches_brute_force(tmp_path, queries, strategy, exact_threshold):
    # every document (and every token) a candidate: the approximate path must then be exact
    options = {"exact_threshold": exact_threshold, "candidates": 200, "token_k": 10_000}
    with make(tmp_path, strategy=strategy, **options) as index:
        docs = fill(index, 120)
        results = index.search(queries, 7)
        assert len(results) == len(queries)
        for query, hits in zip(queries, results, strict=True):
            assert_matches_brute_force(hits, query, docs, 7)
            assert all(h.payload == f"payload {h.metadata['n']}" for h in hits)


@pytest.mark.parametrize(
    ("strategy", "storage"),
    [("fde", "e4m3"), ("fde", "float32"), ("fde", "float8"), ("tokens", "float32")],
)
def test_approximate_path_recall_on_clustered_data(tmp_path, strategy, storage):
    docs, queries = clustered_docs(400, dim=32, seed=3)
    options = {"strategy": strategy, "storage": storage, "exact_threshold": 0, "candidates": 60}
    with make(tmp_path, dim=32, **options) as index:
        index.add([str(i) for i in range(len(docs))], docs)
        found = index.search(queries, 10)
    by_id = {str(i): d for i, d in enumerate(docs)}
    recall = np.mean(
        [
            len({h.id for h in hits} & {i for i, _ in brute_topk(q, by_id, 10)}) / 10
            for q, hits in zip(queries, found, strict=True)
        ]
    )
    assert recall >= 0.9


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("exact_threshold", [0, 10_000])
def test_filter_returns_k_matching_documents(tmp_path, queries, strategy, exact_threshold):
    with make(tmp_path, strategy=strategy, exact_threshold=exact_threshold, candidates=8) as index:
        docs = fill(index, 200)  # 10 "rare" documents
        rare = {i: d for i, d in docs.items() if int(i[1:]) % 20 == 0}
        for flt in ({"group": "rare"}, lambda meta: meta["group"] == "rare"):
            for k, expected in ((5, 5), (10, 10), (30, 10)):
                results = index.search(queries, k, filter=flt)
                for query, hits in zip(queries, results, strict=True):
                    assert len(hits) == expected
                    assert all(h.metadata["group"] == "rare" for h in hits)
                    if exact_threshold or expected == len(rare):  # exact scan, or all matches
                        assert_matches_brute_force(hits, query, rare, expected)
                    else:  # approximate: candidates are re-scored exactly
                        for hit in hits:
                            own = brute_maxsim(query, rare[hit.id].astype(np.float16))
                            assert abs(hit.score - own) < 1e-3


# ---------------------------------------------------------------------------- writes


def test_get_len_contains_and_order(tmp_path):
    with make(tmp_path) as index:
        docs = fill(index, 5)
        assert len(index) == 5 and "d3" in index and "zz" not in index
        got = index.get(["d4", "nope", "d0", "d4"], include_vectors=True)
        assert [d.id for d in got] == ["d4", "d0", "d4"]
        np.testing.assert_array_equal(got[0].multivector, docs["d4"].astype(np.float16))
        assert got[1].metadata == {"group": "rare", "n": 0} and got[1].payload == "payload 0"
        assert index.get(["d1"])[0].multivector is None


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_delete_upsert_and_search_agree_with_brute_force(tmp_path, queries, strategy):
    with make(
        tmp_path, strategy=strategy, exact_threshold=0, candidates=100, token_k=10_000
    ) as index:
        docs = fill(index, 40)
        assert index.delete(["d1", "d2", "unknown", "d1"]) == 2
        assert index.delete(["d1"]) == 0
        del docs["d1"], docs["d2"]
        replacement = random_docs(2, DIM, seed=7)
        index.upsert(["d3", "new"], replacement, [{"v": 2}, {"v": 3}])
        docs["d3"], docs["new"] = replacement
        assert len(index) == 40 - 2 + 1
        assert index.get(["d3"])[0].metadata == {"v": 2}
        check_search(index, queries, docs, 6)


def test_delete_strict_mode_deletes_nothing_on_unknown_id(tmp_path, queries):
    with make(tmp_path) as index:
        fill(index, 5)
        before = state(index, queries)
        with pytest.raises(UnknownIdError, match="nothing was deleted"):
            index.delete(["d1", "ghost"], missing_ok=False)
        assert state(index, queries) == before


def test_many_small_adds_merge_segments(tmp_path, queries):
    with make(tmp_path) as index:
        docs: dict[str, np.ndarray] = {}
        for i in range(40):
            doc = random_docs(1, DIM, seed=1000 + i)[0]
            index.add([f"s{i}"], [doc])
            docs[f"s{i}"] = doc
        assert len(index._snap.segments) <= 6  # binary-counter merging keeps it logarithmic
        files = list((tmp_path / "idx" / "vectors").iterdir())
        assert len(files) == len(index._snap.segments)
        check_search(index, queries, docs, 5)


# ---------------------------------------------------------------------------- bad input


def _bad_calls(rng: np.random.Generator) -> list[tuple[str, Any, type[Exception], str]]:
    good = unit_rows(rng, 3, DIM)
    nan = good.copy()
    nan[1, 2] = np.nan
    inf = good.copy()
    inf[0, 0] = np.inf
    return [
        ("add", (["d0"], [good]), DuplicateIdError, "already stored"),
        ("add", (["x", "x"], [good, good]), DuplicateIdError, "more than once"),
        ("add", (["x"], [unit_rows(rng, 3, DIM + 1)]), DimensionMismatchError, "dim 16"),
        ("add", (["x"], [nan]), InvalidInputError, "NaN or inf"),
        ("add", (["x"], [inf]), InvalidInputError, "NaN or inf"),
        ("add", (["x"], [np.zeros((0, DIM), np.float32)]), InvalidInputError, "at least one token"),
        ("add", (["x"], [good[0]]), InvalidInputError, "2-D"),
        ("add", (["x"], [good.tolist()]), InvalidInputTypeError, "numpy array"),
        ("add", (["x"], [good.astype(np.int32)]), InvalidInputTypeError, "dtype"),
        ("add", (["x", "y"], [good]), InvalidInputError, "one multi-vector per id"),
        ("add", ([""], [good]), InvalidInputError, "non-empty"),
        ("add", ([7], [good]), InvalidInputTypeError, "str"),
        ("add", ("x", [good]), InvalidInputTypeError, "list"),
        ("add", (["x"], [good], [{"a": {1, 2}}]), InvalidInputError, "JSON"),
        ("add", (["x"], [good], [{"a": float("nan")}]), InvalidInputError, "JSON"),
        ("add", (["x"], [good], [{1: "a"}]), InvalidInputTypeError, "string keys"),
        ("add", (["x"], [good], None, [b"bytes"]), InvalidInputTypeError, "payloads"),
        ("add", (["x"], [good * 1e6]), InvalidInputError, "float16 range"),
        ("upsert", (["x"], [nan]), InvalidInputError, "NaN"),
        ("upsert", (["d0", "d0"], [good, good]), DuplicateIdError, "more than once"),
        ("search", ([unit_rows(rng, 2, DIM + 1)], 3), DimensionMismatchError, "dim 16"),
        ("search", ([np.zeros((0, DIM), np.float32)], 3), InvalidInputError, "token"),
        ("search", (good, 3), InvalidInputTypeError, "Wrap a single query"),
        ("search", ([nan], 3), InvalidInputError, "NaN"),
    ]


def test_bad_input_raises_typed_errors_and_changes_nothing(tmp_path, queries):
    with make(tmp_path) as index:
        fill(index, 6)
        before = state(index, queries)
        for method, args, error, message in _bad_calls(np.random.default_rng(5)):
            with pytest.raises(error, match=message):
                getattr(index, method)(*args)
            assert state(index, queries) == before, (method, message)
    with VoyagerIndex.open(tmp_path / "idx") as reopened:
        assert state(reopened, queries) == before


def test_ids_are_data_never_paths(tmp_path, queries):
    folder = tmp_path / "deep" / "idx"
    weird = ["../../x", "/etc/passwd", "a/b\\c", "nul\x00byte", "ünï 🥬", " ", "..", "."]
    with VoyagerIndex.create(folder, dim=DIM) as index:
        index.add(weird, random_docs(len(weird), DIM, seed=4))
        assert [d.id for d in index.get(weird)] == weird
    with VoyagerIndex.open(folder) as index:
        assert sorted(index._snap.id_to_pos) == sorted(weird)
        assert index.delete(["../../x"]) == 1
    created = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")}
    assert all(p.startswith("deep") for p in created)
    assert not (tmp_path / "x").exists()


# ---------------------------------------------------------------------------- persistence


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_persistence_round_trip(tmp_path, queries, strategy):
    with make(
        tmp_path, strategy=strategy, exact_threshold=0, candidates=100, token_k=10_000
    ) as index:
        fill(index, 30)
        index.delete(["d5"])
        index.upsert(["d6"], random_docs(1, DIM, seed=11), [{"new": True}])
        before = state(index, queries)
        config = index.config
    with VoyagerIndex.open(tmp_path / "idx") as index:
        assert state(index, queries) == before
        assert index.config == config
    with VoyagerIndex(tmp_path / "idx") as index:  # the constructor opens existing indexes
        assert len(index) == 29


def test_hnsw_is_caught_up_after_unsaved_writes(tmp_path, queries):
    folder = tmp_path / "idx"
    index = make(tmp_path, strategy="tokens", exact_threshold=0, candidates=100, token_k=10_000)
    docs = fill(index, 20)
    index.save()
    more = random_docs(5, DIM, seed=12)
    index.add([f"m{i}" for i in range(5)], more)
    index.delete(["d0", "d1"])
    # simulate a crash: drop the object without close(), releasing only the OS lock
    index._h.lock.release()
    index._h.conn.close()
    docs.update({f"m{i}": d for i, d in enumerate(more)})
    del docs["d0"], docs["d1"]
    with VoyagerIndex.open(folder) as reopened:
        assert reopened._snap.hnsw_complete
        check_search(reopened, queries, docs, 5)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_compact_drops_tombstones(tmp_path, queries, strategy):
    folder = tmp_path / "idx"
    with make(
        tmp_path, strategy=strategy, exact_threshold=0, candidates=100, token_k=10_000
    ) as index:
        docs = fill(index, 50)
        index.delete([f"d{i}" for i in range(0, 50, 2)])
        docs = {i: d for i, d in docs.items() if int(i[1:]) % 2}
        before = state(index, queries)
        vectors = folder / "vectors"
        size_before = sum(f.stat().st_size for f in vectors.iterdir())
        index.compact()
        stats = index.stats()
        assert stats["tombstones"] == 0 and stats["segments"] == 1 and stats["documents"] == 25
        assert sum(f.stat().st_size for f in vectors.iterdir()) < 0.6 * size_before
        assert state(index, queries) == before
        check_search(index, queries, docs, 5)
        index.add(["after"], random_docs(1, DIM, seed=3))
    with VoyagerIndex.open(folder) as index:
        assert len(index) == 26
        assert len(list((folder / "hnsw").iterdir())) == 1


@pytest.mark.parametrize("storage", ["e4m3", "float8"])
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_low_precision_hnsw_storage(tmp_path, queries, storage, strategy):
    with make(
        tmp_path,
        strategy=strategy,
        storage=storage,
        exact_threshold=0,
        candidates=100,
        token_k=10_000,
    ) as index:
        docs = fill(index, 60)
        check_search(index, queries, docs, 5)
    with VoyagerIndex.open(tmp_path / "idx") as index:
        assert index.config.storage == storage
        assert len(index.search(queries, 5)[0]) == 5


def test_pool_factor_stores_pooled_tokens(tmp_path, queries):
    from sauerkraut_rag.retrievers.pooling import pool_tokens

    docs = random_docs(10, DIM, seed=8, lo=6, hi=12)
    with make(tmp_path, pool_factor=2, pool_protected_tokens=1) as index:
        index.add([str(i) for i in range(10)], docs)
        for i, doc in enumerate(docs):
            stored = index.get([str(i)], include_vectors=True)[0].multivector
            expected = pool_tokens(doc, 2, protected_tokens=1).astype(np.float16)
            np.testing.assert_array_equal(stored, expected)
            assert len(stored) < len(doc)
        pooled = {str(i): pool_tokens(d, 2, protected_tokens=1) for i, d in enumerate(docs)}
        check_search(index, queries, pooled, 3)


def test_float32_vector_storage(tmp_path, queries):
    with make(tmp_path, vector_dtype="float32") as index:
        docs = fill(index, 10)
        got = index.get(["d2"], include_vectors=True)[0].multivector
        np.testing.assert_array_equal(got, docs["d2"])


# ---------------------------------------------------------------------------- lifecycle


def test_create_open_and_option_checks(tmp_path):
    with pytest.raises(IndexFormatError, match="No sauerkraut-rag index"):
        VoyagerIndex.open(tmp_path / "missing")
    with pytest.raises(IndexFormatError):
        VoyagerIndex(tmp_path / "missing")  # no dim: cannot create
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "file.txt").write_text("x")
    with pytest.raises(IndexStoreError, match="not empty"):
        VoyagerIndex.create(tmp_path / "junk", dim=DIM)
    with pytest.raises(InvalidInputError, match="strategy"):
        VoyagerIndex.create(tmp_path / "bad", dim=DIM, strategy="magic")
    with pytest.raises(InvalidInputError, match=r"Unknown option.*for the index"):
        VoyagerIndex.create(tmp_path / "bad", dim=DIM, stratgy="fde")
    with pytest.raises(InvalidInputTypeError, match="dim"):
        VoyagerIndex.create(tmp_path / "bad", dim="128")  # type: ignore[arg-type]
    make(tmp_path, strategy="tokens").close()
    with pytest.raises(IndexStoreError, match="already exists"):
        make(tmp_path)
    with pytest.raises(DimensionMismatchError, match="dim 16"):
        VoyagerIndex(tmp_path / "idx", dim=32)
    with pytest.raises(InvalidInputError, match="other settings"):
        VoyagerIndex(tmp_path / "idx", strategy="fde")
    with VoyagerIndex(tmp_path / "idx", exact_threshold=5) as index:  # tunable: applied
        assert index.config.exact_threshold == 5
    with VoyagerIndex.open(tmp_path / "idx") as index:
        assert index.config.exact_threshold == 5 and index.config.strategy == "tokens"
        assert isinstance(index, MultiVectorIndex)
        with pytest.raises(InvalidInputError, match="tunable"):
            index.configure(strategy="fde")


def test_single_writer_and_read_only_openers(tmp_path, queries):
    with make(tmp_path) as writer:
        fill(writer, 5)
        with pytest.raises(IndexStoreError, match="already open for writing"):
            VoyagerIndex.open(tmp_path / "idx")
        with VoyagerIndex.open(tmp_path / "idx", read_only=True) as reader:
            assert len(reader) == 5
            assert reader.search(queries, 2) == writer.search(queries, 2)
            with pytest.raises(IndexStoreError, match="read_only"):
                reader.delete(["d1"])
    index = VoyagerIndex.open(tmp_path / "idx")
    index.close()
    index.close()  # idempotent
    with pytest.raises(IndexStoreError, match="closed"):
        index.search(queries, 1)
