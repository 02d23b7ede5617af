"""``MultiVectorIndexTests``: the protocol's semantics as pytest tests, for any backend.

Subclass it in a test module, implement :meth:`MultiVectorIndexTests.make_index`, and
pytest runs every test on your index (as LangChain's standard tests do)::

    from sauerkraut_rag.retrievers.conformance import MultiVectorIndexTests

    class TestMyIndex(MultiVectorIndexTests):
        def make_index(self, tmp_path, dim):
            return MyIndex(tmp_path / "idx", dim=dim)

``make_index`` returns a new, empty, writable index whose search is exact for a few
hundred documents (the suite compares with brute-force MaxSim). Class attributes tune
what the backend promises: ``score_tolerance``, ``callable_filters`` (callables work
like dict filters, else they raise ``UnsupportedFilterError``) and
``skip_filter_tags`` (filter-matrix tags it does not support, e.g. ``"int-precision"``).
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from sauerkraut_rag.errors import (
    DimensionMismatchError,
    DuplicateIdError,
    InvalidInputError,
    InvalidInputTypeError,
    UnsupportedFilterError,
)
from sauerkraut_rag.retrievers.conformance.filter_cases import (
    BAD_CASES,
    CASES,
    DOCUMENTS,
    BadFilterCase,
    FilterCase,
)
from sauerkraut_rag.retrievers.conformance.reference import check_hits, random_docs, unit_rows
from sauerkraut_rag.retrievers.protocol import IdPage, MultiVectorIndex

__all__ = ["MultiVectorIndexTests"]

_N = 60
_K = 7


def _close(index: Any) -> None:
    close = getattr(index, "close", None)
    if callable(close):
        close()


class MultiVectorIndexTests:
    """The protocol-level tests every ``MultiVectorIndex`` must pass (see module docstring)."""

    dim: ClassVar[int] = 16
    score_tolerance: ClassVar[float] = 1e-4
    callable_filters: ClassVar[bool] = False
    skip_filter_tags: ClassVar[frozenset[str]] = frozenset()

    def make_index(self, tmp_path: Path, dim: int) -> MultiVectorIndex:
        """A new, empty, writable index of token dimension ``dim`` under ``tmp_path``."""
        raise NotImplementedError("Implement make_index(tmp_path, dim) in your subclass.")

    # ------------------------------------------------------------------ fixtures

    @pytest.fixture
    def index(self, tmp_path: Path) -> Iterator[MultiVectorIndex]:
        made = self.make_index(tmp_path, self.dim)
        yield made
        _close(made)

    @pytest.fixture
    def queries(self) -> list[np.ndarray]:
        rng = np.random.default_rng(99)
        return [unit_rows(rng, n, self.dim) for n in (1, 3, 7)]

    @pytest.fixture(scope="class")
    @classmethod
    def filter_index(cls, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
        """One index holding the filter matrix's documents, shared by its cases."""
        made = cls().make_index(tmp_path_factory.mktemp("filters"), cls.dim)
        ids = list(DOCUMENTS)
        made.add(ids, random_docs(len(ids), cls.dim, seed=5), [DOCUMENTS[i] for i in ids])
        yield made
        _close(made)

    # ------------------------------------------------------------------ helpers

    def fill(self, index: Any, n: int, *, seed: int = 0) -> dict[str, np.ndarray]:
        """Add ``n`` documents ``d0..`` (metadata group/n, payload text); returns the stored
        vectors (as the index returns them when it can, else as given)."""
        docs = random_docs(n, self.dim, seed=seed)
        ids = [f"d{i}" for i in range(n)]
        metas = [{"group": "rare" if i % 20 == 0 else "common", "n": i} for i in range(n)]
        index.add(ids, docs, metas, [f"payload {i}" for i in range(n)])
        return self.stored(index, dict(zip(ids, docs, strict=True)))

    def stored(self, index: Any, docs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        try:
            got = index.get(list(docs), include_vectors=True)
        except TypeError:
            return docs
        return {d.id: np.asarray(d.multivector, dtype=np.float32) for d in got}

    def state(self, index: Any, queries: list[np.ndarray]) -> tuple[Any, ...]:
        """Everything observable, to prove that a failed call changed nothing."""
        ids = sorted(self.all_ids(index))
        docs = index.get(ids)
        hits = index.search(queries, 5) if len(index) else []
        return (
            len(index),
            [(d.id, json.dumps(d.metadata, sort_keys=True), d.payload) for d in docs],
            [[(h.id, round(h.score, 4)) for h in q] for q in hits],
        )

    def all_ids(self, index: Any, limit: int = 1000) -> list[str]:
        ids: list[str] = []
        cursor = None
        while True:
            page = index.list_ids(limit=limit, cursor=cursor)
            ids += page.ids
            cursor = page.next_cursor
            if cursor is None:
                return ids

    # ------------------------------------------------------------------ basics

    def test_implements_the_protocol(self, index: Any) -> None:
        assert isinstance(index, MultiVectorIndex)
        assert index.dim == self.dim

    def test_empty_index(self, index: Any, queries: list[np.ndarray]) -> None:
        assert len(index) == 0
        assert index.search(queries, 3) == [[], [], []]
        assert index.search([], 3) == []
        assert index.get(["nope"]) == []
        assert index.list_ids() == IdPage(ids=[], next_cursor=None)
        assert index.delete(["nope"]) == 0

    def test_get_keeps_order_repeats_and_skips_unknown(self, index: Any) -> None:
        self.fill(index, 5)
        got = index.get(["d4", "nope", "d0", "d4"])
        assert [d.id for d in got] == ["d4", "d0", "d4"]
        assert got[1].metadata == {"group": "rare", "n": 0}
        assert got[1].payload == "payload 0"
        assert index.get([]) == []

    def test_metadata_and_payload_round_trip(self, index: Any) -> None:
        meta = {"ünï": "🥬", "nested": {"a": [1, 2.5, None, True]}, "empty": [], "n": -3}
        index.add(["x", "y"], random_docs(2, self.dim, seed=1), [meta, None], ["text", None])
        x, y = index.get(["x", "y"])
        assert x.metadata == meta and x.payload == "text"
        assert y.metadata == {} and y.payload is None

    def test_returned_metadata_is_a_copy(self, index: Any, queries: Any) -> None:
        index.add(["a"], random_docs(1, self.dim, seed=2), [{"tags": ["x"]}])
        index.get(["a"])[0].metadata["tags"].append("mutated")
        index.search(queries, 1)[0][0].metadata["tags"].append("mutated")
        assert index.get(["a"])[0].metadata == {"tags": ["x"]}

    # ------------------------------------------------------------------ writes

    def test_add_duplicate_raises_and_writes_nothing(self, index: Any, queries: Any) -> None:
        self.fill(index, 6)
        before = self.state(index, queries)
        extra = random_docs(2, self.dim, seed=3)
        with pytest.raises(DuplicateIdError):
            index.add(["new", "d1"], extra)
        with pytest.raises(DuplicateIdError):
            index.add(["x", "x"], extra)
        assert self.state(index, queries) == before

    def test_upsert_replaces_and_adds(self, index: Any, queries: Any) -> None:
        docs = self.fill(index, 10)
        replacement = random_docs(2, self.dim, seed=7)
        index.upsert(["d3", "new"], replacement, [{"v": 2}, {"v": 3}], ["p3", "pn"])
        assert len(index) == 11
        assert [(d.metadata, d.payload) for d in index.get(["d3", "new"])] == [
            ({"v": 2}, "p3"),
            ({"v": 3}, "pn"),
        ]
        docs.update(self.stored(index, dict(zip(["d3", "new"], replacement, strict=True))))
        self.check_search(index, queries, docs, 4)

    def test_delete_counts_and_ignores_unknown(self, index: Any, queries: Any) -> None:
        docs = self.fill(index, 12)
        assert index.delete(["d1", "d2", "unknown", "d1"]) == 2
        assert index.delete(["d1"]) == 0
        assert len(index) == 10 and index.get(["d1", "d2"]) == []
        del docs["d1"], docs["d2"]
        self.check_search(index, queries, docs, 5)

    def test_ids_are_data(self, index: Any) -> None:
        weird = ["../../x", "/etc/passwd", "a/b\\c", "nul\x00byte", "ünï 🥬", " ", "..", "."]
        index.add(weird, random_docs(len(weird), self.dim, seed=4))
        assert [d.id for d in index.get(weird)] == weird
        assert sorted(self.all_ids(index)) == sorted(weird)
        assert index.delete(["../../x"]) == 1

    def test_bad_input_raises_typed_errors_and_changes_nothing(
        self, index: Any, queries: Any
    ) -> None:
        self.fill(index, 6)
        before = self.state(index, queries)
        for method, args, error in self.bad_calls(np.random.default_rng(5)):
            with pytest.raises(error):
                getattr(index, method)(*args)
            assert self.state(index, queries) == before, (method, error)

    def bad_calls(self, rng: np.random.Generator) -> list[tuple[str, Any, type[Exception]]]:
        good = unit_rows(rng, 3, self.dim)
        nan = good.copy()
        nan[1, 2] = np.nan
        empty = np.zeros((0, self.dim), np.float32)
        other_dim = unit_rows(rng, 3, self.dim + 1)
        return [
            ("add", (["x"], [other_dim]), DimensionMismatchError),
            ("add", (["x"], [nan]), InvalidInputError),
            ("add", (["x"], [empty]), InvalidInputError),
            ("add", (["x"], [good[0]]), InvalidInputError),
            ("add", (["x"], [good.tolist()]), InvalidInputTypeError),
            ("add", (["x"], [good.astype(np.int32)]), InvalidInputTypeError),
            ("add", (["x", "y"], [good]), InvalidInputError),
            ("add", ([""], [good]), InvalidInputError),
            ("add", ([7], [good]), InvalidInputTypeError),
            ("add", ("x", [good]), InvalidInputTypeError),
            ("add", (["x"], [good], [{"a": {1, 2}}]), InvalidInputError),
            ("add", (["x"], [good], [{"a": math.nan}]), InvalidInputError),
            ("add", (["x"], [good], [{1: "a"}]), InvalidInputTypeError),
            ("add", (["x"], [good], None, [b"bytes"]), InvalidInputTypeError),
            ("upsert", (["x"], [nan]), InvalidInputError),
            ("upsert", (["d0", "d0"], [good, good]), DuplicateIdError),
            ("search", ([other_dim], 3), DimensionMismatchError),
            ("search", ([empty], 3), InvalidInputError),
            ("search", (good, 3), InvalidInputTypeError),
            ("search", ([nan], 3), InvalidInputError),
            ("search", ([good], 0), InvalidInputError),
            ("search", ([good], -1), InvalidInputError),
            ("search", ([good], 2.5), InvalidInputTypeError),
            ("list_ids", (0,), InvalidInputError),
            ("list_ids", (10, "not-a-cursor"), InvalidInputError),
        ]

    # ------------------------------------------------------------------ search

    def check_search(
        self, index: Any, queries: list[np.ndarray], docs: dict[str, np.ndarray], k: int
    ) -> None:
        for query, hits in zip(queries, index.search(queries, k), strict=True):
            check_hits(hits, query, docs, k, tolerance=self.score_tolerance)

    def test_search_is_exact_maxsim(self, index: Any, queries: Any) -> None:
        docs = self.fill(index, _N)
        results = index.search(queries, _K)
        assert len(results) == len(queries)
        for query, hits in zip(queries, results, strict=True):
            check_hits(hits, query, docs, _K, tolerance=self.score_tolerance)
            assert all(h.payload == f"payload {h.metadata['n']}" for h in hits)

    def test_k_larger_than_index_returns_all(self, index: Any, queries: Any) -> None:
        docs = self.fill(index, 4)
        hits = index.search(queries[:1], 50)[0]
        assert len(hits) == 4
        check_hits(hits, queries[0], docs, 4, tolerance=self.score_tolerance)

    def test_filter_returns_min_k_matching(self, index: Any, queries: Any) -> None:
        docs = self.fill(index, _N)  # 3 "rare" documents
        rare = {i: d for i, d in docs.items() if int(i[1:]) % 20 == 0}
        for k, expected in ((2, 2), (3, 3), (30, 3)):
            for query, hits in zip(
                queries, index.search(queries, k, filter={"group": "rare"}), strict=True
            ):
                assert len(hits) == expected
                check_hits(hits, query, rare, expected, tolerance=self.score_tolerance)
        assert index.search(queries, 3, filter={"missing": 1}) == [[], [], []]

    def test_callable_filter(self, index: Any, queries: Any) -> None:
        self.fill(index, 20)
        predicate = lambda meta: meta["group"] == "rare"  # noqa: E731
        if self.callable_filters:
            got = index.search(queries, 5, filter=predicate)
            assert got == index.search(queries, 5, filter={"group": "rare"})
        else:
            with pytest.raises(UnsupportedFilterError, match='"group": "rare"'):
                index.search(queries, 5, filter=predicate)

    @pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
    def test_filter_matrix(self, filter_index: Any, case: FilterCase) -> None:
        if self.skip_filter_tags & set(case.tags):
            pytest.skip(f"{type(self).__name__} does not support {sorted(case.tags)}")
        query = unit_rows(np.random.default_rng(1), 2, self.dim)
        hits = filter_index.search([query], len(DOCUMENTS), filter=case.filter)[0]
        assert {h.id for h in hits} == set(case.expected)
        assert all(a.score >= b.score for a, b in itertools.pairwise(hits))

    @pytest.mark.parametrize("case", BAD_CASES, ids=lambda c: c.name)
    def test_bad_filter(self, filter_index: Any, case: BadFilterCase) -> None:
        query = unit_rows(np.random.default_rng(1), 2, self.dim)
        with pytest.raises(case.error) as raised:
            filter_index.search([query], 3, filter=case.filter)
        assert case.message in str(raised.value)

    # ------------------------------------------------------------------ list_ids

    def test_list_ids_pages_every_id_once(self, index: Any) -> None:
        self.fill(index, 23)
        seen: list[str] = []
        cursor = None
        pages = 0
        while True:
            page = index.list_ids(limit=5, cursor=cursor)
            assert len(page.ids) <= 5
            seen += page.ids
            pages += 1
            cursor = page.next_cursor
            if cursor is None:
                break
        assert sorted(seen) == sorted(f"d{i}" for i in range(23))
        assert pages in (5, 6)  # a backend may need one empty last page
        index.delete(["d3"])
        assert sorted(self.all_ids(index, limit=7)) == sorted(f"d{i}" for i in range(23) if i != 3)
