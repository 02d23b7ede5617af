"""MUVERA fixed-dimensional encodings against a brute-force reference and exact MaxSim."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sauerkraut_rag.errors import DimensionMismatchError, InvalidInputError, InvalidInputTypeError
from sauerkraut_rag.retrievers.maxsim import maxsim
from sauerkraut_rag.retrievers.muvera import FDEConfig, MuveraEncoder

SMALL = {"dim": 8, "num_repetitions": 3, "num_simhash_projections": 2, "projection_dim": None}


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def ragged(rng: np.random.Generator, lengths: list[int], dim: int = 8) -> list[np.ndarray]:
    return [unit(rng.standard_normal((n, dim))) for n in lengths]


def brute_fde(encoder: MuveraEncoder, tokens: np.ndarray, *, is_query: bool) -> np.ndarray:
    """Reference FDE without projections: Python loops over repetitions and partitions."""
    cfg = encoder.config
    k, n_parts = cfg.num_simhash_projections, cfg.num_partitions
    hyperplanes = encoder._hyperplanes.reshape(cfg.dim, cfg.num_repetitions, k)
    blocks = []
    for rep in range(cfg.num_repetitions):
        bits = [[int(tok @ hyperplanes[:, rep, j] > 0) for j in range(k)] for tok in tokens]
        ids = [sum(b << j for j, b in enumerate(tok_bits)) for tok_bits in bits]
        for part in range(n_parts):
            members = [t for t, pid in enumerate(ids) if pid == part]
            if members:
                total = np.sum(tokens[members].astype(np.float64), axis=0)
                blocks.append(total if is_query else total / len(members))
            elif is_query or not cfg.fill_empty_partitions:
                blocks.append(np.zeros(cfg.dim))
            else:
                part_bits = [(part >> j) & 1 for j in range(k)]
                hamming = [sum(a != b for a, b in zip(tb, part_bits, strict=True)) for tb in bits]
                blocks.append(tokens[int(np.argmin(hamming))].astype(np.float64))
    return np.concatenate(blocks)


@pytest.mark.parametrize("fill", [True, False])
def test_matches_brute_force_reference(fill: bool) -> None:
    rng = np.random.default_rng(0)
    encoder = MuveraEncoder(**SMALL, fill_empty_partitions=fill, seed=3)
    docs = ragged(rng, [1, 2, 7, 13, 3])
    got_docs = encoder.encode_documents(docs)
    got_queries = encoder.encode_queries(docs)
    for i, doc in enumerate(docs):
        np.testing.assert_allclose(got_docs[i], brute_fde(encoder, doc, is_query=False), atol=1e-5)
        np.testing.assert_allclose(
            got_queries[i], brute_fde(encoder, doc, is_query=True), atol=1e-5
        )


def test_one_token_document_scores_repetitions_times_maxsim() -> None:
    rng = np.random.default_rng(1)
    encoder = MuveraEncoder(**SMALL)
    doc = ragged(rng, [1])[0]
    queries = ragged(rng, [4, 9])
    approx = encoder.encode_queries(queries) @ encoder.encode_document(doc)
    exact = maxsim(queries, [doc])[:, 0]
    np.testing.assert_allclose(approx, SMALL["num_repetitions"] * exact, rtol=1e-5, atol=1e-5)


def test_inner_projection_is_count_sketch_of_unprojected_blocks() -> None:
    rng = np.random.default_rng(2)
    docs = ragged(rng, [5, 11], dim=16)
    plain = MuveraEncoder(dim=16, num_repetitions=4, num_simhash_projections=3, projection_dim=None)
    projected = MuveraEncoder(plain.config, projection_dim=6)
    raw = plain.encode_documents(docs).reshape(2, 4, 8, 16)
    sketch = projected._projection.reshape(16, 4, 6)
    assert np.all(np.count_nonzero(sketch, axis=2) == 1)  # each input coord -> one output
    assert set(np.unique(sketch)) <= {-1.0, 0.0, 1.0}
    expected = np.einsum("nrpd,drk->nrpk", raw, sketch).reshape(2, -1)
    np.testing.assert_allclose(projected.encode_documents(docs), expected, atol=1e-5)


def test_final_projection_is_signed_bucket_sum() -> None:
    rng = np.random.default_rng(3)
    docs = ragged(rng, [5, 11])
    plain = MuveraEncoder(**SMALL)
    final = MuveraEncoder(plain.config, final_projection_dim=10)
    assert final.output_dim == 10
    sketch = final._final_projection(np.eye(plain.output_dim, dtype=np.float32))
    assert np.all(np.count_nonzero(sketch, axis=1) == 1)
    assert set(np.unique(sketch)) <= {-1.0, 0.0, 1.0}
    np.testing.assert_allclose(
        final.encode_documents(docs), plain.encode_documents(docs) @ sketch, atol=1e-5
    )


def clustered(
    seed: int, n_docs: int = 300, n_queries: int = 12, dim: int = 64
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Documents mix a few topic clusters; queries sample topics of a random document."""
    rng = np.random.default_rng(seed)
    centers = unit(rng.standard_normal((80, dim)))
    docs, topics = [], []
    for _ in range(n_docs):
        topic = rng.choice(80, 6, replace=False)
        topics.append(topic)
        noise = 0.5 * rng.standard_normal((int(rng.integers(20, 60)), dim)) / np.sqrt(dim)
        docs.append(unit(centers[rng.choice(topic, len(noise))] + noise))
    queries = []
    for _ in range(n_queries):
        topic = topics[rng.integers(n_docs)][: rng.integers(2, 4)]
        noise = 0.5 * rng.standard_normal((16, dim)) / np.sqrt(dim)
        queries.append(unit(centers[rng.choice(topic, 16)] + noise))
    return queries, docs


def test_dot_products_track_exact_maxsim_on_clustered_data() -> None:
    queries, docs = clustered(0)
    encoder = MuveraEncoder(dim=64)  # default repetitions / partitions / projection
    exact = maxsim(queries, docs)
    approx = encoder.encode_queries(queries) @ encoder.encode_documents(docs).T
    pearson = [np.corrcoef(exact[i], approx[i])[0, 1] for i in range(len(queries))]
    recall = [
        len(set(np.argsort(-exact[i])[:10]) & set(np.argsort(-approx[i])[:50])) / 10
        for i in range(len(queries))
    ]
    assert np.mean(pearson) > 0.75
    assert np.mean(recall) >= 0.95


def test_deterministic_across_instances_and_seed_matters() -> None:
    rng = np.random.default_rng(4)
    docs = ragged(rng, [3, 8, 20], dim=32)
    a = MuveraEncoder(dim=32, seed=11).encode_documents(docs)
    b = MuveraEncoder(FDEConfig(dim=32, seed=11)).encode_documents(docs)
    c = MuveraEncoder(dim=32, seed=12).encode_documents(docs)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_batch_equals_single_and_float16_accepted() -> None:
    rng = np.random.default_rng(5)
    docs = ragged(rng, [int(n) for n in rng.integers(1, 40, 30)], dim=16)
    encoder = MuveraEncoder(dim=16, final_projection_dim=256)
    batch = encoder.encode_documents(docs)
    assert batch.shape == (30, 256) and batch.dtype == np.float32
    single = np.stack([encoder.encode_document(d) for d in docs])
    np.testing.assert_allclose(batch, single, atol=1e-6)
    half = encoder.encode_queries([d.astype(np.float16) for d in docs[:3]])
    ref = encoder.encode_queries([d.astype(np.float16).astype(np.float32) for d in docs[:3]])
    np.testing.assert_allclose(half, ref, atol=1e-6)
    assert encoder.encode_queries([]).shape == (0, 256)


def test_default_output_dim_fits_single_vector_stores() -> None:
    encoder = MuveraEncoder()
    assert encoder.output_dim == encoder.config.output_dim <= 4096
    assert encoder.encode_query(np.ones((3, 128), np.float32)).shape == (encoder.output_dim,)


def test_config_round_trip_through_json() -> None:
    config = FDEConfig(dim=96, num_repetitions=7, projection_dim=None, final_projection_dim=512)
    restored = FDEConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert restored == config
    assert restored.output_dim == 512


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"num_repetitions": 0}, InvalidInputError),
        ({"num_simhash_projections": 40}, InvalidInputError),
        ({"projection_dim": 0}, InvalidInputError),
        ({"dim": "128"}, InvalidInputTypeError),
        ({"seed": -1}, InvalidInputError),
        ({"fill_empty_partitions": 1}, InvalidInputTypeError),
        ({"num_repetitions": True}, InvalidInputTypeError),
    ],
)
def test_config_rejects_bad_values(change: dict, error: type[Exception]) -> None:
    data = {**FDEConfig().to_dict(), **change}
    with pytest.raises(error):
        FDEConfig.from_dict(data)


def test_from_dict_rejects_unknown_and_missing_keys() -> None:
    data = FDEConfig().to_dict()
    with pytest.raises(InvalidInputError, match="unknown keys \\['bogus'\\]"):
        FDEConfig.from_dict({**data, "bogus": 1})
    del data["seed"]
    with pytest.raises(InvalidInputError, match="missing keys \\['seed'\\]"):
        FDEConfig.from_dict(data)
    with pytest.raises(InvalidInputError, match="Unknown FDEConfig field"):
        MuveraEncoder(dims=3)


def test_bad_inputs_raise_typed_errors() -> None:
    encoder = MuveraEncoder(**SMALL)
    with pytest.raises(InvalidInputError, match="0"):
        encoder.encode_documents([np.ones((2, 8), np.float32), np.zeros((0, 8), np.float32)])
    with pytest.raises(DimensionMismatchError):
        encoder.encode_query(np.ones((2, 9), np.float32))
    broken = np.ones((2, 8), np.float32)
    broken[0, 0] = np.nan
    with pytest.raises(InvalidInputError, match="NaN"):
        encoder.encode_document(broken)
    with pytest.raises(InvalidInputTypeError):
        encoder.encode_queries([[1.0] * 8])  # type: ignore[list-item]
