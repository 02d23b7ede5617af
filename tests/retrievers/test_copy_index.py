"""copy_index moves documents between backends without re-encoding: everything arrives,
search answers agree, an interrupted copy resumes, and mismatched targets are refused."""

from __future__ import annotations

import numpy as np
import pytest

from sauerkraut_rag.encoders.fingerprint import EncoderFingerprint
from sauerkraut_rag.errors import (
    DimensionMismatchError,
    EncoderMismatchError,
    IndexSchemaError,
    InvalidInputTypeError,
)
from sauerkraut_rag.retrievers.copying import CopyReport, copy_index
from sauerkraut_rag.retrievers.voyager.index import VoyagerIndex
from tests.retrievers.helpers import random_docs, unit_rows

pytest.importorskip("qdrant_client")

from sauerkraut_rag.retrievers.qdrant import QdrantIndex

DIM = 16
FINGERPRINT = EncoderFingerprint(model="org/model", family="colbert", dim=DIM)


def _fill_voyager(tmp_path, n: int, **options) -> VoyagerIndex:
    index = VoyagerIndex.create(tmp_path / "voyager", dim=DIM, **options)
    index.bind_encoder(FINGERPRINT)
    ids = [f"doc-{i}" for i in range(n)]
    metas = [{"n": i, "tags": ["a", "b"][: i % 3], "nested": {"x": i}} for i in range(n)]
    index.add(ids, random_docs(n, DIM, seed=2, lo=4, hi=10), metas, [f"text {i}" for i in range(n)])
    return index


def _everything(index) -> list[tuple]:
    ids = []
    cursor = None
    while True:
        page = index.list_ids(limit=7, cursor=cursor)
        ids += page.ids
        if (cursor := page.next_cursor) is None:
            break
    docs = index.get(sorted(ids), include_vectors=True)
    return [(d.id, d.metadata, d.payload, d.multivector.astype(np.float32).tobytes()) for d in docs]


@pytest.mark.parametrize("engine", ["memory", "edge"])
def test_voyager_to_qdrant_and_back(tmp_path, engine):
    queries = [unit_rows(np.random.default_rng(3), 4, DIM)]
    with _fill_voyager(tmp_path, 40, pool_factor=2) as source:
        where = (
            {"location": ":memory:"}
            if engine == "memory"
            else {"path": tmp_path / "edge", "engine": "edge"}
        )
        with QdrantIndex("docs", dim=DIM, pool_factor=2, **where) as target:
            report = copy_index(source, target, batch_size=16, show_progress=False)
            assert report == CopyReport(copied=40, skipped=0)
            assert _everything(target) == _everything(source)
            assert target.encoder_fingerprint == source.encoder_fingerprint
            want = source.search(queries, 5, filter={"tags": "a"})[0]
            got = target.search(queries, 5, filter={"tags": "a"})[0]
            assert [h.id for h in got] == [h.id for h in want]
            np.testing.assert_allclose([h.score for h in got], [h.score for h in want], atol=1e-4)
            back = VoyagerIndex.create(tmp_path / "back", dim=DIM, pool_factor=2)
            with back, pytest.raises(IndexSchemaError, match="pool the copied"):
                copy_index(target, back)
            back = VoyagerIndex.create(tmp_path / "back1", dim=DIM)
            with back, pytest.raises(IndexSchemaError, match="pool_factor=2"):
                copy_index(target, back)


def test_copy_resumes_and_skips_what_is_there(tmp_path):
    with (
        _fill_voyager(tmp_path, 30) as source,
        QdrantIndex("docs", dim=DIM, location=":memory:") as target,
    ):
        calls = {"n": 0}
        upsert = target.upsert

        def interrupted(*args, **kwargs):
            calls["n"] += 1
            if calls["n"] == 3:
                raise KeyboardInterrupt
            return upsert(*args, **kwargs)

        target.upsert = interrupted  # type: ignore[method-assign]
        with pytest.raises(KeyboardInterrupt):
            copy_index(source, target, batch_size=5, show_progress=False)
        assert len(target) == 10
        target.upsert = upsert  # type: ignore[method-assign]
        target.delete(["doc-0"])
        report = copy_index(source, target, batch_size=5, show_progress=False)
        assert report == CopyReport(copied=21, skipped=9)
        assert _everything(target) == _everything(source)
        assert copy_index(source, target) == CopyReport(copied=0, skipped=30)


def test_mismatched_targets_are_refused_before_writing(tmp_path):
    with _fill_voyager(tmp_path, 5) as source:
        wide = QdrantIndex("wide", dim=DIM * 2, location=":memory:")
        with wide, pytest.raises(DimensionMismatchError):
            copy_index(source, wide)
        with QdrantIndex("other", dim=DIM, location=":memory:") as other:
            other.bind_encoder(EncoderFingerprint(model="org/else", family="colbert", dim=DIM))
            with pytest.raises(EncoderMismatchError):
                copy_index(source, other)
            assert len(other) == 0
        with pytest.raises(InvalidInputTypeError, match="MultiVectorIndex"):
            copy_index(source, object())  # type: ignore[arg-type]
