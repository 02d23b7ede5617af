"""Bad-input matrix, ``VoyagerIndex``: vectors, ids, k, filters and damaged folders."""

from __future__ import annotations

import logging

import numpy as np

from sauerkraut_rag.errors import (
    DimensionMismatchError,
    DuplicateIdError,
    FilterError,
    FilterTypeError,
    IndexCorruptedError,
    IndexFormatError,
    IndexStoreError,
    InvalidInputError,
    InvalidInputTypeError,
    UnknownIdError,
)
from sauerkraut_rag.retrievers.voyager.index import VoyagerIndex
from tests.reliability.matrix_case import Ctx, behaves, fails
from tests.reliability.support import damaged, first_segment, flip_byte, truncate_half
from tests.retrievers.helpers import assert_matches_brute_force, unit_rows

A = "index"


def _docs(ctx: Ctx, n: int = 1, n_tokens: int = 3) -> list[np.ndarray]:
    rng = np.random.default_rng(n * 100 + n_tokens)
    return [unit_rows(rng, n_tokens, ctx.index.dim) for _ in range(n)]


def _query(ctx: Ctx) -> np.ndarray:
    return unit_rows(np.random.default_rng(5), 4, ctx.index.dim)


def _stored(ctx: Ctx) -> dict[str, np.ndarray]:
    docs = ctx.index.get(ctx.holder.ids, include_vectors=True)
    return {d.id: np.asarray(d.multivector, dtype=np.float32) for d in docs}


def _with(value: float) -> np.ndarray:
    array = unit_rows(np.random.default_rng(1), 3, 16)
    array[1, 2] = value
    return array


@fails(A, "nan-document", InvalidInputError, "nan", "multivectors[0]", "re-encode")
def _nan_doc(ctx: Ctx) -> object:
    return ctx.index.add(["new"], [_with(np.nan)])


@fails(A, "inf-query", InvalidInputError, "nan or inf", "queries[0]", "re-encode")
def _inf_query(ctx: Ctx) -> object:
    return ctx.index.search([_with(np.inf)], 3)


@fails(A, "bad-vector-in-batch", InvalidInputError, "multivectors[2]", "re-encode")
def _bad_in_batch(ctx: Ctx) -> object:
    """The first two documents are fine, the third is not: nothing at all is written."""
    return ctx.index.add(["n1", "n2", "n3"], [*_docs(ctx, 2), _with(-np.inf)])


@fails(A, "upsert-with-bad-vector", InvalidInputError, "nan", "multivectors[1]")
def _bad_upsert(ctx: Ctx) -> object:
    return ctx.index.upsert(["t0", "t1"], [_docs(ctx)[0], _with(np.nan)])


@fails(A, "wrong-dim-document", DimensionMismatchError, "dim 16", "encode with the model")
def _wrong_dim_doc(ctx: Ctx) -> object:
    return ctx.index.add(["new"], [np.ones((2, 8), dtype=np.float32)])


@fails(A, "wrong-dim-query", DimensionMismatchError, "dim 16", "encode with the model")
def _wrong_dim_query(ctx: Ctx) -> object:
    return ctx.index.search([np.ones((2, 32), dtype=np.float32)], 3)


@fails(A, "zero-token-document", InvalidInputError, "at least one token", "drop it")
def _empty_doc(ctx: Ctx) -> object:
    return ctx.index.add(["new"], [np.zeros((0, 16), dtype=np.float32)])


@fails(A, "zero-token-query", InvalidInputError, "at least one token", "drop it")
def _empty_query(ctx: Ctx) -> object:
    return ctx.index.search([np.zeros((0, 16), dtype=np.float32)], 3)


@fails(A, "float16-overflow", InvalidInputError, "float16 range", "vector_dtype='float32'")
def _overflow(ctx: Ctx) -> object:
    return ctx.index.add(["new"], [np.full((2, 16), 1e6, dtype=np.float32)])


@fails(A, "3d-array-document", InvalidInputError, "2-d", "not a padded batch")
def _three_d(ctx: Ctx) -> object:
    return ctx.index.add(["new"], [np.ones((1, 2, 16), dtype=np.float32)])


@fails(A, "int-dtype-document", InvalidInputTypeError, "dtype float32", "astype")
def _int_dtype(ctx: Ctx) -> object:
    return ctx.index.add(["new"], [np.ones((2, 16), dtype=np.int64)])


@fails(A, "duplicate-stored-id", DuplicateIdError, "already stored", "upsert()")
def _dup_stored(ctx: Ctx) -> object:
    return ctx.index.add(["t3"], _docs(ctx))


@fails(A, "duplicate-id-in-call", DuplicateIdError, "more than once", "distinct ids")
def _dup_call(ctx: Ctx) -> object:
    return ctx.index.add(["x", "x"], _docs(ctx, 2))


@fails(A, "none-in-ids", InvalidInputTypeError, "ids[1]", "NoneType", "str(")
def _none_id(ctx: Ctx) -> object:
    return ctx.index.add(["a", None], _docs(ctx, 2))  # type: ignore[list-item]


@fails(A, "none-in-multivectors", InvalidInputTypeError, "numpy array", "np.asarray")
def _none_vectors(ctx: Ctx) -> object:
    return ctx.index.add(["a", "b"], [_docs(ctx)[0], None])  # type: ignore[list-item]


@fails(A, "empty-string-id", InvalidInputError, "non-empty string", "ids[0]")
def _empty_id(ctx: Ctx) -> object:
    return ctx.index.add([""], _docs(ctx))


@fails(A, "metadata-not-json", InvalidInputError, "json-serialisable", "str(...)")
def _bad_meta(ctx: Ctx) -> object:
    return ctx.index.add(["new"], _docs(ctx), [{"when": object()}])


@fails(A, "length-mismatch", InvalidInputError, "one multi-vector per id", "equal length")
def _length_mismatch(ctx: Ctx) -> object:
    return ctx.index.add(["a", "b", "c"], _docs(ctx, 2))


@fails(A, "unknown-id-strict-delete", UnknownIdError, "not stored", "missing_ok=True")
def _unknown_strict(ctx: Ctx) -> object:
    return ctx.index.delete(["t1", "ghost"], missing_ok=False)


@behaves(A, "unknown-id-delete-and-get")
def _unknown_default(ctx: Ctx) -> None:
    """Documented: unknown ids are ignored by ``delete`` (returns 0) and skipped by ``get``."""
    assert ctx.index.delete(["ghost", "../t1"]) == 0
    assert [d.id for d in ctx.index.get(["ghost", "t2", "t2 "])] == ["t2"]


@fails(A, "k-zero", InvalidInputError, "k >= 1", "at least one result")
def _k_zero(ctx: Ctx) -> object:
    return ctx.index.search([_query(ctx)], 0)


@fails(A, "k-negative", InvalidInputError, "k >= 1", "got -3")
def _k_negative(ctx: Ctx) -> object:
    return ctx.index.search([_query(ctx)], -3)


@fails(A, "k-not-int", InvalidInputTypeError, "positive int", "float")
def _k_float(ctx: Ctx) -> object:
    return ctx.index.search([_query(ctx)], 2.5)  # type: ignore[arg-type]


@behaves(A, "k-above-size")
def _k_large(ctx: Ctx) -> None:
    """Documented: ``min(k, documents)`` hits, the exact top of brute-force MaxSim."""
    query = _query(ctx)
    hits = ctx.index.search([query], 1_000)[0]
    assert len(hits) == len(ctx.holder.ids)
    assert_matches_brute_force(hits, query, _stored(ctx), len(ctx.holder.ids))


@behaves(A, "filter-unknown-key")
def _filter_unknown(ctx: Ctx) -> None:
    """Documented: a filter key no document has matches nothing (no error)."""
    assert ctx.index.search([_query(ctx)], 5, filter={"no_such_key": 1}) == [[]]
    assert len(ctx.index.search([_query(ctx)], 5, filter={"topic": "en"})[0]) == 4


@fails(A, "filter-wrong-type", FilterTypeError, "dict", "callable")
def _filter_type(ctx: Ctx) -> object:
    return ctx.index.search([_query(ctx)], 5, filter=["topic"])  # type: ignore[arg-type]


@fails(A, "filter-unknown-operator", FilterError, "'$regex'", "$in", "$like")
def _filter_operator(ctx: Ctx) -> object:
    return ctx.index.search([_query(ctx)], 5, filter={"topic": {"$regex": "e.*"}})


@fails(A, "filter-dict-value", FilterError, "topic.lang", "dotted key")
def _filter_dict_value(ctx: Ctx) -> object:
    return ctx.index.search([_query(ctx)], 5, filter={"topic": {"lang": "en"}})


@behaves(A, "empty-index-search")
def _empty_index(ctx: Ctx) -> None:
    """Documented: searching an empty index gives an empty list per query."""
    with VoyagerIndex.create(ctx.tmp / "empty", dim=16) as empty:
        assert empty.search([_query(ctx), _query(ctx)], 3) == [[], []]


@fails(A, "write-to-read-only", IndexStoreError, "read_only=True", "without read_only")
def _read_only(ctx: Ctx) -> object:
    with VoyagerIndex.open(ctx.holder.folder, read_only=True) as ro:
        return ro.delete(["t0"])


@fails(A, "truncated-vector-file", IndexCorruptedError, "truncated", "backup")
def _truncated_segment(ctx: Ctx) -> object:
    with damaged(ctx.holder, first_segment, truncate_half) as folder:
        return VoyagerIndex.open(folder)


@fails(A, "bit-flipped-vector-file", IndexCorruptedError, "sha-256", "backup")
def _flipped_segment(ctx: Ctx) -> object:
    with damaged(ctx.holder, first_segment, flip_byte(3)) as folder:
        return VoyagerIndex.open(folder)


@fails(A, "truncated-database", IndexCorruptedError, "index database", "backup")
def _truncated_db(ctx: Ctx) -> object:
    with damaged(ctx.holder, lambda f: f / "index.sqlite", truncate_half) as folder:
        return VoyagerIndex.open(folder)


def _flip_payload(data: bytes) -> bytes:
    at = data.index(b"Paris is the capital")
    return data[:at] + b"Rome" + data[at + 4 :]


@fails(A, "bit-flipped-database-row", IndexCorruptedError, "checksum", "backup")
def _flipped_db(ctx: Ctx) -> object:
    with damaged(ctx.holder, lambda f: f / "index.sqlite", _flip_payload) as folder:
        return VoyagerIndex.open(folder)


def _newer_version(data: bytes) -> bytes:
    """Rewrite the stored ``format_version`` value 1 as 9 (the meta row's text)."""
    at = data.index(b"format_version1")
    return data[: at + 14] + b"9" + data[at + 15 :]


@fails(A, "newer-format-version", IndexFormatError, "format version 9", "upgrade sauerkraut-rag")
def _newer(ctx: Ctx) -> object:
    with damaged(ctx.holder, lambda f: f / "index.sqlite", _newer_version) as folder:
        return VoyagerIndex.open(folder)


@fails(A, "not-an-index-folder", IndexFormatError, "no sauerkraut-rag index", "create")
def _not_index(ctx: Ctx) -> object:
    (ctx.tmp / "plain").mkdir()
    (ctx.tmp / "plain" / "notes.txt").write_text("hello")
    return VoyagerIndex.open(ctx.tmp / "plain")


@behaves(A, "bit-flipped-hnsw-file")
def _flipped_hnsw(ctx: Ctx) -> None:
    """Documented: the HNSW graph is derived data; a damaged file is rebuilt on open."""
    ctx.index.close()
    graph = next((ctx.holder.folder / "hnsw").glob("*.voy"))
    data = bytearray(graph.read_bytes())
    data[len(data) // 2] ^= 0xFF
    graph.write_bytes(bytes(data))
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("sauerkraut_rag")
    logger.addHandler(handler)
    try:
        ctx.holder.index = VoyagerIndex.open(ctx.holder.folder)
    finally:
        logger.removeHandler(handler)
    assert any("checksum" in r.getMessage() for r in records)
    ctx.index.configure(exact_threshold=0)  # force the (rebuilt) HNSW path
    query = _query(ctx)
    assert_matches_brute_force(ctx.index.search([query], 3)[0], query, _stored(ctx), 3)


@fails(A, "lone-surrogate-id", InvalidInputError, "ids[0]", "lone surrogate", "repair")
def _surrogate_id(ctx: Ctx) -> object:
    return ctx.index.add(["doc\udc80"], _docs(ctx))


@fails(A, "lone-surrogate-payload", InvalidInputError, "payloads[1]", "lone surrogate")
def _surrogate_payload(ctx: Ctx) -> object:
    return ctx.index.add(["n1", "n2"], _docs(ctx, 2), None, ["fine", "broken \ud800 text"])


@fails(A, "lone-surrogate-metadata", InvalidInputError, "metadatas[0]", "lone surrogate")
def _surrogate_meta(ctx: Ctx) -> object:
    return ctx.index.upsert(["t0"], _docs(ctx), [{"title\udfff": "x"}])


@fails(A, "lone-surrogate-filter", FilterError, "filter", "lone surrogate")
def _surrogate_filter(ctx: Ctx) -> object:
    return ctx.index.search([_query(ctx)], 3, filter={"topic": "\udfff"})


def _nested(depth: int) -> dict:
    meta: dict = {}
    inner = meta
    for _ in range(depth):
        inner["x"] = {}
        inner = inner["x"]
    return meta


@fails(A, "deeply-nested-metadata", InvalidInputError, "metadatas[0]", "nested", "flatten")
def _deep_meta(ctx: Ctx) -> object:
    """10,000 levels: the JSON encoder would hit Python's recursion limit."""
    return ctx.index.add(["new"], _docs(ctx), [_nested(10_000)])


@fails(A, "nul-in-index-path", InvalidInputError, "nul bytes", "index path")
def _nul_path(ctx: Ctx) -> object:
    return VoyagerIndex(str(ctx.tmp / "ind\x00ex"), dim=16)


CASES = [
    _surrogate_id,
    _surrogate_payload,
    _surrogate_meta,
    _surrogate_filter,
    _deep_meta,
    _nul_path,
    _nan_doc,
    _inf_query,
    _bad_in_batch,
    _bad_upsert,
    _wrong_dim_doc,
    _wrong_dim_query,
    _empty_doc,
    _empty_query,
    _overflow,
    _three_d,
    _int_dtype,
    _dup_stored,
    _dup_call,
    _none_id,
    _none_vectors,
    _empty_id,
    _bad_meta,
    _length_mismatch,
    _unknown_strict,
    _unknown_default,
    _k_zero,
    _k_negative,
    _k_float,
    _k_large,
    _filter_unknown,
    _filter_type,
    _filter_operator,
    _filter_dict_value,
    _empty_index,
    _read_only,
    _truncated_segment,
    _flipped_segment,
    _truncated_db,
    _flipped_db,
    _newer,
    _not_index,
    _flipped_hnsw,
]
