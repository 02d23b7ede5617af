"""The ColBERT text encoder: loading, settings, batch invariance and bad input."""

from __future__ import annotations

import json
import string
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import sauerkraut_rag
from sauerkraut_rag.encoders._colbert_config import ColBERTSettings, read_settings
from sauerkraut_rag.encoders.colbert import ColBERTEncoder
from sauerkraut_rag.errors import (
    CheckpointError,
    InvalidInputError,
    InvalidInputTypeError,
    ModelNotFoundError,
    RemoteCodeRequiredError,
)
from tests.factories.colbert import DOCUMENT_PREFIX, QUERY_PREFIX, build_tiny_colbert, tiny_vocab
from tests.hub_cache import install_in_hf_cache, use_offline_cache

HUB_ID = "VAGOsolutions/SauerkrautLM-Multi-ColBERT-15m"
SEED = 7
QUERIES = ["Was ist die Hauptstadt von Deutschland?", "x", "the capital of france", ""]
DOCUMENTS = [
    "Berlin ist die Hauptstadt von Deutschland.",
    "kurz",
    "Paris is the capital of France, and it is beautiful! " * 6,
    "Mädchen über Straße: grün & schön?",
]


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Lazily built variants, all with the same seeded weights."""
    root = tmp_path_factory.mktemp("colbert")
    cache: dict[str, Path] = {}

    class Lazy(dict):
        def __missing__(self, variant: str) -> Path:
            cache[variant] = build_tiny_colbert(root / variant, variant=variant, seed=SEED)
            self[variant] = cache[variant]
            return cache[variant]

    return Lazy()


@pytest.fixture(scope="module")
def encoder(checkpoints: dict[str, Path]) -> ColBERTEncoder:
    enc = sauerkraut_rag.load_encoder(checkpoints["default"], device="cpu")
    assert isinstance(enc, ColBERTEncoder)
    return enc


def _same(a: list[np.ndarray], b: list[np.ndarray], atol: float = 1e-6) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert x.shape == y.shape
        np.testing.assert_allclose(x, y, rtol=0, atol=atol)


# ---------------------------------------------------------------- loading
def test_load_encoder_from_folder(encoder: ColBERTEncoder, checkpoints: dict[str, Path]) -> None:
    assert encoder.modality == "text"
    assert encoder.dim == 16
    assert encoder.name == str(checkpoints["default"])
    assert encoder.settings.query_length == 16 and encoder.settings.document_length == 48
    assert "ColBERTEncoder" in repr(encoder)


def test_load_by_hub_id_from_offline_cache(
    encoder: ColBERTEncoder,
    checkpoints: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    install_in_hf_cache(checkpoints["default"], HUB_ID, tmp_path / "hub")
    use_offline_cache(monkeypatch, tmp_path / "hub")
    by_id = sauerkraut_rag.load_encoder(HUB_ID, device="cpu")
    assert by_id.name == HUB_ID and by_id.dim == encoder.dim
    _same(by_id.encode_queries(QUERIES), encoder.encode_queries(QUERIES))
    _same(by_id.encode_documents(DOCUMENTS), encoder.encode_documents(DOCUMENTS))


def test_unknown_model_id_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    use_offline_cache(monkeypatch, tmp_path / "empty-hub")
    with pytest.raises(ModelNotFoundError, match="VAGOsolutions/No-Such-Model"):
        sauerkraut_rag.load_encoder("VAGOsolutions/No-Such-Model")


@pytest.mark.parametrize("variant", ["legacy_layernorm", "prefixed_keys", "no_pooler"])
def test_equivalent_key_layouts_give_identical_vectors(
    variant: str, encoder: ColBERTEncoder, checkpoints: dict[str, Path]
) -> None:
    """gamma/beta LayerNorm names, a ``bert.`` prefix or no pooler: same weights, same output."""
    other = sauerkraut_rag.load_encoder(checkpoints[variant], device="cpu")
    _same(other.encode_queries(QUERIES), encoder.encode_queries(QUERIES), atol=0)
    _same(other.encode_documents(DOCUMENTS), encoder.encode_documents(DOCUMENTS), atol=0)


# --------------------------------------------------------------- settings
def test_prefixes_resolve_to_their_added_tokens(encoder: ColBERTEncoder) -> None:
    vocab_size = len(tiny_vocab())
    assert encoder.query_prefix_id == vocab_size  # added after the WordPiece vocabulary
    assert encoder.document_prefix_id == vocab_size + 1
    unk = encoder.tokenizer.unk_token_id
    assert unk not in (encoder.query_prefix_id, encoder.document_prefix_id)
    tokens = encoder.tokenizer.convert_ids_to_tokens(
        [encoder.query_prefix_id, encoder.document_prefix_id]
    )
    assert tokens == [QUERY_PREFIX, DOCUMENT_PREFIX]
    assert encoder.pad_id == encoder.tokenizer.mask_token_id


def test_missing_settings_take_pylate_defaults(
    checkpoints: dict[str, Path], tmp_path: Path
) -> None:
    folder = checkpoints["default"]
    (tmp_path / "config_sentence_transformers.json").write_text("{}", encoding="utf-8")
    (tmp_path / "sentence_bert_config.json").write_text("{}", encoding="utf-8")
    settings = read_settings(tmp_path, tmp_path)
    assert settings == ColBERTSettings()
    assert settings.query_prefix == "[Q] " and settings.document_prefix == "[D] "
    assert (settings.query_length, settings.document_length) == (32, 180)
    assert settings.do_query_expansion and not settings.attend_to_expansion_tokens
    assert settings.skiplist_words == tuple(string.punctuation)
    assert read_settings(folder, folder).query_length == 16


def test_settings_from_config_and_overrides(checkpoints: dict[str, Path]) -> None:
    no_exp = sauerkraut_rag.load_encoder(checkpoints["no_expansion"])
    assert not no_exp.settings.do_query_expansion
    lengths = [q.shape[0] for q in no_exp.encode_queries(["x", "the capital of france"])]
    assert lengths == [4, 7]  # [CLS] [Q] tokens [SEP]: no expansion tokens
    attend = sauerkraut_rag.load_encoder(checkpoints["attend_expansion"])
    assert attend.settings.attend_to_expansion_tokens
    overridden = sauerkraut_rag.load_encoder(
        checkpoints["attend_expansion"], query_length=8, do_query_expansion=False
    )
    assert overridden.settings.query_length == 8
    assert not overridden.settings.attend_to_expansion_tokens  # forced off without expansion
    assert overridden.encode_query(QUERIES[0]).shape[0] <= 8


def test_checkpoint_length_beyond_position_table_is_capped(tmp_path: Path) -> None:
    """PyLate would crash on documents longer than the position table; we truncate."""
    folder = build_tiny_colbert(tmp_path / "long", seed=SEED, document_length=100)
    enc = sauerkraut_rag.load_encoder(folder)
    assert enc.settings.document_length == 64  # max_position_embeddings of the factory
    assert enc.encode_document("der die das " * 40).shape == (64, 16)


def test_query_expansion_pads_with_mask_to_query_length(encoder: ColBERTEncoder) -> None:
    out = encoder.encode_queries(QUERIES)
    assert {q.shape for q in out} == {(16, 16)}
    long = encoder.encode_query("der die das " * 20)
    assert long.shape == (16, 16)  # truncated to query_length


def test_documents_drop_padding_and_skiplist(encoder: ColBERTEncoder) -> None:
    text = "ist , die . das ! und ?"
    n_tokens = len(encoder.tokenizer(text)["input_ids"])  # [CLS] 7 words/marks [SEP]
    out = encoder.encode_document(text)
    assert out.shape == (n_tokens + 1 - 4, 16)  # + [D], - four punctuation marks
    no_skip = sauerkraut_rag.load_encoder(encoder.name, skiplist_words=[])
    assert no_skip.encode_document(text).shape == (n_tokens + 1, 16)


def test_prompt_is_prepended(checkpoints: dict[str, Path], tmp_path: Path) -> None:
    import shutil

    folder = shutil.copytree(checkpoints["default"], tmp_path / "prompted")
    config_path = folder / "config_sentence_transformers.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config.update(prompts={"query": "frage: ", "document": ""}, default_prompt_name="query")
    config_path.write_text(json.dumps(config), encoding="utf-8")
    prompted = sauerkraut_rag.load_encoder(folder)
    plain = sauerkraut_rag.load_encoder(checkpoints["default"])
    _same(prompted.encode_queries(["antwort"]), plain.encode_queries(["frage: antwort"]))


def test_dense_activation_and_bias_are_applied(checkpoints: dict[str, Path]) -> None:
    """Brute-force reference: backbone -> tanh(W h + b) -> L2 normalise, for one document."""
    enc = sauerkraut_rag.load_encoder(checkpoints["tanh_bias_dense"])
    dense = enc.projection[0]
    assert isinstance(dense.activation_function, torch.nn.Tanh) and dense.linear.bias is not None
    ids = enc.tokenizer("frage antwort")["input_ids"]
    ids = [ids[0], enc.document_prefix_id, *ids[1:]]
    with torch.inference_mode():
        hidden = enc.backbone(input_ids=torch.tensor([ids]))[0][0]
        want = F.normalize(torch.tanh(hidden @ dense.linear.weight.T + dense.linear.bias), dim=-1)
    np.testing.assert_allclose(enc.encode_document("frage antwort"), want.numpy(), atol=1e-6)


# ------------------------------------------------------- output properties
@pytest.mark.parametrize("variant", ["default", "no_expansion"])
def test_batch_invariance(variant: str, checkpoints: dict[str, Path]) -> None:
    enc = sauerkraut_rag.load_encoder(checkpoints[variant])
    mixed_docs = [*DOCUMENTS, "a b c " * 30, "ja", *DOCUMENTS[::-1]]
    for encode, items in ((enc.encode_queries, QUERIES), (enc.encode_documents, mixed_docs)):
        together = encode(items, batch_size=len(items))
        in_pairs = encode(items, batch_size=2)
        for i, item in enumerate(items):
            alone = encode([item])[0]
            np.testing.assert_allclose(alone, together[i], rtol=0, atol=1e-4)
            np.testing.assert_allclose(alone, in_pairs[i], rtol=0, atol=1e-4)


def test_vectors_are_float32_and_unit_norm(encoder: ColBERTEncoder) -> None:
    for out in (encoder.encode_queries(QUERIES), encoder.encode_documents(DOCUMENTS)):
        for vecs in out:
            assert vecs.dtype == np.float32 and vecs.ndim == 2 and vecs.shape[1] == 16
            np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)


def test_results_keep_input_order(encoder: ColBERTEncoder) -> None:
    docs = ["der", "a b c d e f g h", "der die"]
    lengths = [d.shape[0] for d in encoder.encode_documents(docs, batch_size=1)]
    assert lengths == [4, 11, 5]  # [CLS] [D] tokens [SEP]


def test_concurrent_calls_match_sequential(encoder: ColBERTEncoder) -> None:
    """Queries and documents truncate differently; threads must not mix the settings."""
    from concurrent.futures import ThreadPoolExecutor

    long_text = "der die das und " * 20
    jobs = [("q", long_text), ("d", long_text)] * 6
    want = {
        "q": encoder.encode_queries([long_text])[0],
        "d": encoder.encode_documents([long_text])[0],
    }

    def run(job: tuple[str, str]) -> np.ndarray:
        kind, text = job
        call = encoder.encode_queries if kind == "q" else encoder.encode_documents
        return call([text])[0]

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(run, jobs))
    for (kind, _), got in zip(jobs, results, strict=True):
        assert got.shape == want[kind].shape
        np.testing.assert_allclose(got, want[kind], rtol=0, atol=1e-5)


# -------------------------------------------------------------- bad input
@pytest.mark.parametrize("variant", ["missing_weights", "missing_dense"])
def test_folder_missing_files(variant: str, checkpoints: dict[str, Path]) -> None:
    with pytest.raises(CheckpointError, match=r"missing model\.safetensors"):
        sauerkraut_rag.load_encoder(checkpoints[variant])


def test_folder_missing_modules_json(checkpoints: dict[str, Path], tmp_path: Path) -> None:
    import shutil

    folder = shutil.copytree(checkpoints["default"], tmp_path / "no-modules")
    (folder / "modules.json").unlink()
    with pytest.raises(CheckpointError, match=r"modules\.json"):
        sauerkraut_rag.load_encoder(folder)


@pytest.mark.parametrize(
    ("variant", "key"),
    [
        ("extra_key", "encoder.layer.0.attention.self.gate.weight"),
        ("missing_key", "encoder.layer.1.intermediate.dense.weight"),
        ("wrong_shape", "encoder.layer.0.output.dense.bias"),
    ],
)
def test_mismatched_weight_keys(variant: str, key: str, checkpoints: dict[str, Path]) -> None:
    with pytest.raises(CheckpointError, match=key.replace(".", r"\.")):
        sauerkraut_rag.load_encoder(checkpoints[variant])


def test_remote_code_needed_but_not_given(checkpoints: dict[str, Path]) -> None:
    with pytest.raises(RemoteCodeRequiredError, match=r"trust_remote_code=True"):
        sauerkraut_rag.load_encoder(checkpoints["remote_code"])


@pytest.mark.parametrize("method", ["encode_queries", "encode_documents"])
def test_empty_list(encoder: ColBERTEncoder, method: str) -> None:
    with pytest.raises(InvalidInputError, match="non-empty"):
        getattr(encoder, method)([])


@pytest.mark.parametrize("bad", [None, 3, b"bytes", ["nested"]])
@pytest.mark.parametrize("method", ["encode_queries", "encode_documents"])
def test_non_string_item(encoder: ColBERTEncoder, method: str, bad: object) -> None:
    with pytest.raises(InvalidInputTypeError, match="item 1"):
        getattr(encoder, method)(["fine", bad])


def test_bare_string_instead_of_list(encoder: ColBERTEncoder) -> None:
    with pytest.raises(InvalidInputTypeError, match="Wrap it in a list"):
        encoder.encode_documents("just one text")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"query_length": 2}, "query_length >= 4"),
        ({"document_length": 1000}, "max_position_embeddings"),
        ({"query_prefix": "[QUERY] "}, "not a token"),
        ({"query_length": "32"}, "positive int"),
        ({"pooling": "mean"}, "Unknown option"),
    ],
)
def test_bad_options(
    checkpoints: dict[str, Path], options: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidInputError, match=message):
        sauerkraut_rag.load_encoder(checkpoints["default"], **options)


# ------------------------------------------------------------- real model
@pytest.mark.slow
def test_real_model_ranks_german_and_english() -> None:
    """Needs the published checkpoint (network or a populated HF cache)."""
    enc = sauerkraut_rag.load_encoder(HUB_ID, device="cpu")
    assert enc.dim == 128
    docs = [
        "Berlin ist die Hauptstadt und zugleich die bevölkerungsreichste Stadt Deutschlands.",
        "Die Fotosynthese wandelt Lichtenergie in chemische Energie um.",
        "Paris is the capital and most populous city of France.",
        "The mitochondria is the powerhouse of the cell.",
    ]
    queries = ["Was ist die Hauptstadt von Deutschland?", "What is the capital of France?"]
    doc_vecs = enc.encode_documents(docs)
    for query, best in zip(enc.encode_queries(queries), (0, 2), strict=True):
        scores = [float((query @ doc.T).max(axis=1).sum()) for doc in doc_vecs]
        assert int(np.argmax(scores)) == best
