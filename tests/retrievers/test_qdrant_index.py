"""QdrantIndex beyond the shared conformance suite: schema, ids and payloads, the candidate
path against brute force, storage options, reopening, and exactness on each engine."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("qdrant_client")

from qdrant_client import QdrantClient, models

from sauerkraut_rag.encoders.fingerprint import EncoderFingerprint
from sauerkraut_rag.errors import (
    DimensionMismatchError,
    EncoderMismatchError,
    IndexFormatError,
    IndexSchemaError,
    IndexStoreError,
    InvalidInputError,
)
from sauerkraut_rag.retrievers.conformance.reference import check_hits
from sauerkraut_rag.retrievers.maxsim import maxsim
from sauerkraut_rag.retrievers.qdrant import QdrantIndex
from sauerkraut_rag.retrievers.qdrant.points import ID_NAMESPACE
from sauerkraut_rag.retrievers.voyager.index import VoyagerIndex
from tests.retrievers.helpers import brute_topk, clustered_docs, random_docs, unit_rows

DIM = 16
ENGINES = ["memory", "edge"]


def make(tmp_path: Path, engine: str, name: str = "docs", **options: Any) -> QdrantIndex:
    dim = options.pop("dim", DIM)
    if engine == "memory":
        return QdrantIndex(name, dim=dim, location=":memory:", **options)
    if engine == "path":
        return QdrantIndex(name, dim=dim, path=tmp_path / "local", **options)
    pytest.importorskip("qdrant_edge")
    return QdrantIndex(name, dim=dim, path=tmp_path / "edge", engine="edge", **options)


def fill(index: QdrantIndex, n: int, *, seed: int = 0) -> dict[str, np.ndarray]:
    docs = random_docs(n, index.dim, seed=seed)
    ids = [f"d{i}" for i in range(n)]
    index.add(ids, docs, [{"n": i} for i in range(n)], [f"p{i}" for i in range(n)])
    return dict(zip(ids, docs, strict=True))


@pytest.fixture
def queries() -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    return [unit_rows(rng, n, DIM) for n in (2, 5)]


# ---------------------------------------------------------------------------- schema


def test_new_collection_schema_and_point_layout() -> None:
    client = QdrantClient(location=":memory:")
    with QdrantIndex("docs", dim=DIM, client=client, vector_dtype="float16") as index:
        index.add(["a/1"], random_docs(1, DIM), [{"lang": "de"}], ["text"])
        params = client.get_collection("docs").config
        tokens = params.params.vectors["tokens"]
        fde = params.params.vectors["fde"]
        assert tokens.size == DIM and tokens.distance == models.Distance.DOT
        assert tokens.multivector_config.comparator == models.MultiVectorComparator.MAX_SIM
        assert tokens.hnsw_config.m == 0 and tokens.datatype == models.Datatype.FLOAT16
        assert fde.size == index.config.fde_dim and fde.distance == models.Distance.COSINE
        assert fde.multivector_config is None and fde.hnsw_config.m == 16
        record = params.metadata["sauerkraut_rag"]
        assert record["format"] == 1 and record["config"]["fde"]["num_repetitions"] == 20
        point = client.retrieve("docs", [str(uuid.uuid5(ID_NAMESPACE, "a/1"))])[0]
        assert point.payload["doc_id"] == "a/1"
        assert point.payload["metadata"] == {"lang": "de"} and point.payload["payload"] == "text"
        assert '["lang","de"]' in point.payload["filter"]["eq"]
    client.get_collection("docs")  # a client passed in stays open


def test_foreign_or_altered_collections_are_refused() -> None:
    client = QdrantClient(location=":memory:")
    client.create_collection("plain", vectors_config=models.VectorParams(size=DIM, distance="Dot"))
    with pytest.raises(IndexSchemaError, match="not created by sauerkraut-rag"):
        QdrantIndex("plain", client=client)
    QdrantIndex("docs", dim=DIM, client=client).close()
    record = client.get_collection("docs").config.metadata["sauerkraut_rag"]
    client.delete_collection("docs")
    client.create_collection(
        "docs",
        vectors_config={"tokens": models.VectorParams(size=DIM, distance="Cosine")},
        metadata={"sauerkraut_rag": record},
    )
    with pytest.raises(IndexSchemaError, match=r"'tokens' is .*'fde' is missing"):
        QdrantIndex("docs", client=client)


@pytest.mark.parametrize("engine", ["path", "edge"])
def test_reopen_keeps_documents_and_checks_settings(tmp_path, queries, engine):
    with make(tmp_path, engine, candidates=50, fde={"num_repetitions": 8}) as index:
        docs = fill(index, 30)
        config = index.config
    with make(tmp_path, engine, dim=None, candidates=99) as index:  # tunable: applied here only
        assert index.config == config.replace(candidates=99) and len(index) == 30
        check = {k: v for k, v in docs.items()}
        for query, hits in zip(queries, index.search(queries, 5), strict=True):
            check_hits(hits, query, check, 5, tolerance=1e-4)
    with pytest.raises(DimensionMismatchError, match="holds 16-d"):
        make(tmp_path, engine, dim=32)
    with pytest.raises(IndexSchemaError, match="other settings"):
        make(tmp_path, engine, dim=None, vector_dtype="float16")
    with pytest.raises(IndexSchemaError, match="only apply when a collection is created"):
        make(tmp_path, engine, dim=None, shard_number=2)
    with pytest.raises(IndexFormatError, match="Pass dim="):
        make(tmp_path, engine, name="other", dim=None)
    with pytest.raises(InvalidInputError, match="Unknown option"):
        make(tmp_path, engine, name="other", candidats=3)


def test_connection_arguments_are_checked(tmp_path):
    with pytest.raises(InvalidInputError, match="exactly one of"):
        QdrantIndex("docs", dim=DIM)
    with pytest.raises(InvalidInputError, match="exactly one of"):
        QdrantIndex("docs", dim=DIM, location=":memory:", path=tmp_path)
    with pytest.raises(InvalidInputError, match="engine='edge'"):
        QdrantIndex("docs", dim=DIM, location=":memory:", engine="edge")
    with pytest.raises(InvalidInputError, match="engine"):
        QdrantIndex("docs", dim=DIM, location=":memory:", engine="rust")
    with pytest.raises(Exception, match="collection"):
        QdrantIndex("", dim=DIM, location=":memory:")


def test_local_folder_open_twice_names_the_fix(tmp_path):
    with make(tmp_path, "path"), pytest.raises(IndexStoreError, match="one client per folder"):
        QdrantIndex("docs", path=tmp_path / "local")


# ---------------------------------------------------------------------------- search


@pytest.mark.parametrize("engine", ENGINES)
def test_candidate_path_is_exact_when_candidates_cover_all(tmp_path, queries, engine):
    with make(tmp_path, engine, exact_threshold=0, candidates=200) as index:
        docs = fill(index, 120)
        for query, hits in zip(queries, index.search(queries, 7), strict=True):
            check_hits(hits, query, docs, 7, tolerance=1e-4)
        # the same top-k ids and scores as the package's exact scorer
        scores = maxsim(queries, list(docs.values()))
        for row, hits in zip(scores, index.search(queries, 7), strict=True):
            np.testing.assert_allclose([h.score for h in hits], np.sort(row)[::-1][:7], atol=1e-4)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("quantization", [None, "int8"])
def test_candidate_path_recall_on_clustered_data(tmp_path, engine, quantization):
    docs, queries = clustered_docs(400, dim=32, seed=3)
    by_id = {str(i): d for i, d in enumerate(docs)}
    options = {"exact_threshold": 0, "candidates": 60, "quantization": quantization}
    with make(tmp_path, engine, dim=32, **options) as index:
        index.add(list(by_id), docs)
        found = index.search(queries, 10)
    recall = np.mean(
        [
            len({h.id for h in hits} & {i for i, _ in brute_topk(q, by_id, 10)}) / 10
            for q, hits in zip(queries, found, strict=True)
        ]
    )
    assert recall >= 0.9
    for query, hits in zip(queries, found, strict=True):  # candidates are re-scored exactly
        for hit in hits:
            assert abs(hit.score - float(maxsim([query], [by_id[hit.id]])[0, 0])) < 1e-4


@pytest.mark.parametrize("engine", ENGINES)
def test_filtered_candidate_search_returns_k_matches(tmp_path, queries, engine):
    with make(tmp_path, engine, exact_threshold=5, candidates=4) as index:
        fill(index, 80)
        for k, expected in ((3, 3), (20, 8)):
            flt = {"n": {"$lt": 8}}
            for hits in index.search(queries, k, filter=flt):
                assert len(hits) == expected and all(h.metadata["n"] < 8 for h in hits)
        assert index.count({"n": {"$gte": 70}}) == 10 and index.count() == 80


@pytest.mark.parametrize("engine", ENGINES)
def test_float16_storage_rounds_documents_and_queries(tmp_path, queries, engine):
    with make(tmp_path, engine, vector_dtype="float16") as index:
        docs = fill(index, 20)
        stored = index.get(["d3"], include_vectors=True)[0].multivector
        assert stored.dtype == np.float16
        np.testing.assert_array_equal(stored, docs["d3"].astype(np.float16))
        rounded = {i: d.astype(np.float16).astype(np.float32) for i, d in docs.items()}
        for query, hits in zip(queries, index.search(queries, 5), strict=True):
            q16 = query.astype(np.float16).astype(np.float32)
            check_hits(hits, q16, rounded, 5, tolerance=1e-4)


@pytest.mark.parametrize("engine", ENGINES)
def test_pool_factor_stores_pooled_tokens(tmp_path, queries, engine):
    from sauerkraut_rag.retrievers.pooling import pool_tokens

    docs = random_docs(10, DIM, seed=8, lo=6, hi=12)
    with make(tmp_path, engine, pool_factor=2, pool_protected_tokens=1) as index:
        index.add([str(i) for i in range(10)], docs)
        index.add(["raw"], [docs[0]], pooled=True)  # already pooled vectors: stored as given
        for i, doc in enumerate(docs):
            got = index.get([str(i)], include_vectors=True)[0].multivector
            np.testing.assert_allclose(got, pool_tokens(doc, 2, protected_tokens=1), atol=1e-6)
        assert len(index.get(["raw"], include_vectors=True)[0].multivector) == len(docs[0])


# ---------------------------------------------------------------------------- encoder record


@pytest.mark.parametrize("engine", ["path", "edge"])
def test_encoder_fingerprint_is_recorded_and_enforced(tmp_path, engine):
    mine = EncoderFingerprint(model="org/model-a", family="colbert", dim=DIM)
    other = EncoderFingerprint(model="org/model-b", family="colbert", dim=DIM)
    with make(tmp_path, engine, pool_factor=2) as index:
        assert index.encoder_fingerprint is None
        index.bind_encoder(mine)
        assert index.encoder_fingerprint == mine.with_pooling(2)
        fill(index, 3)
    with make(tmp_path, engine, dim=None) as index:
        assert index.encoder_fingerprint == mine.with_pooling(2)
        index.bind_encoder(mine)
        with pytest.raises(EncoderMismatchError, match="model-b"):
            index.bind_encoder(other)


def test_multivector_retriever_takes_a_qdrant_index(tmp_path):
    from sauerkraut_rag.retrievers.retriever import MultiVectorRetriever
    from tests.retrievers.helpers import FakeEncoder

    texts = ["red apple pie", "green apple", "blue sky", "red car"]
    with (
        make(tmp_path, "path") as qdrant,
        VoyagerIndex.create(tmp_path / "v", dim=DIM, vector_dtype="float32") as voyager,
    ):
        answers = []
        for index in (qdrant, voyager):
            retriever = MultiVectorRetriever(FakeEncoder(DIM), index)
            retriever.add_documents(texts, ids=[f"t{i}" for i in range(4)])
            answers.append(
                [(h.id, round(h.score, 4), h.payload) for h in retriever.search("red apple", k=3)]
            )
        assert answers[0] == answers[1] and answers[0][0][0] == "t0"


@pytest.mark.parametrize("engine", ENGINES)
def test_payload_indexes_do_not_change_filter_results(tmp_path, engine):
    """Qdrant's payload indexes change how filters are evaluated, never what they match."""
    from sauerkraut_rag.retrievers.conformance.filter_cases import CASES, DOCUMENTS

    with make(tmp_path, engine, exact_threshold=0) as index:
        numbers = ["year", "start_index", "author.age", "page", "rating", "tags", "big"]
        index.index_metadata(numbers=numbers, texts=["title", "code", "tags", "emoji", "year"])
        ids = list(DOCUMENTS)
        index.add(ids, random_docs(len(ids), DIM, seed=5), [DOCUMENTS[i] for i in ids])
        query = [unit_rows(np.random.default_rng(1), 2, DIM)]
        wrong = [
            case.name
            for case in CASES
            if {h.id for h in index.search(query, len(ids), filter=case.filter)[0]}
            != set(case.expected)
        ]
        assert wrong == []


def test_server_without_collection_metadata_is_refused_and_left_clean():
    client = QdrantClient(location=":memory:")
    create = client.create_collection
    client.create_collection = lambda name, **kw: create(name, **{**kw, "metadata": None})
    with pytest.raises(IndexSchemaError, match="did not keep the collection metadata"):
        QdrantIndex("docs", dim=DIM, client=client)
    assert not client.collection_exists("docs")
