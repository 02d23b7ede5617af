"""Bad-input matrix, encoders: texts, items, images and checkpoint folders."""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import numpy as np

from sauerkraut_rag import load_encoder
from sauerkraut_rag.documents.pages import load_image
from sauerkraut_rag.errors import (
    CheckpointError,
    ImageLoadError,
    InvalidInputError,
    InvalidInputTypeError,
    ModelNotFoundError,
    RemoteCodeRequiredError,
)
from tests.image_factory import (
    animated,
    cmyk_swatches,
    gray16,
    palette_with_transparency,
    png_header_bomb,
)
from tests.reliability.matrix_case import Case, Ctx, behaves, fails

A = "encoders"
MILLION_CHARS = "hauptstadt " * 100_000
"""1.1M characters of an in-vocabulary word. The tokenizer reads the whole text before
truncating, so this costs about a second; out-of-vocabulary text of the same length is
split into many more pieces by the tiny test vocabulary and takes several times longer."""


@fails(A, "empty-list", InvalidInputError, "empty list", "skip the call")
def _empty_list(ctx: Ctx) -> object:
    return ctx.get("text_encoder").encode_queries([])


@fails(A, "none-in-documents", InvalidInputTypeError, "item 1", "NoneType", "str()")
def _none_item(ctx: Ctx) -> object:
    return ctx.get("text_encoder").encode_documents(["ok", None])


@fails(A, "non-str-query", InvalidInputTypeError, "item 0", "int", "str()")
def _int_item(ctx: Ctx) -> object:
    return ctx.get("text_encoder").encode_queries([42])


@fails(A, "bare-string", InvalidInputTypeError, "single str", "wrap it in a list")
def _bare_string(ctx: Ctx) -> object:
    return ctx.get("text_encoder").encode_documents("one document")


@behaves(A, "empty-and-whitespace-texts")
def _empty_texts(ctx: Ctx) -> None:
    """Documented: texts are stripped; an empty document keeps only its special tokens
    ([CLS], the [D] prefix, [SEP]); an empty query is all expansion tokens."""
    enc = ctx.get("text_encoder")
    docs = enc.encode_documents(["", "   ", "\n\t "])
    queries = enc.encode_queries(["", "  "])
    assert [d.shape for d in docs] == [(3, enc.dim)] * 3
    assert all(np.array_equal(d, docs[0]) for d in docs)
    assert [q.shape for q in queries] == [(enc.settings.query_length, enc.dim)] * 2
    assert np.array_equal(queries[0], queries[1])
    for array in docs + queries:
        np.testing.assert_allclose(np.linalg.norm(array, axis=1), 1.0, rtol=1e-5)


@behaves(A, "million-char-text")
def _million_chars(ctx: Ctx) -> None:
    """Documented: documents are truncated to ``document_length``, queries to
    ``query_length``; the result equals that of a short prefix of the same text."""
    enc = ctx.get("text_encoder")
    prefix = MILLION_CHARS[:2_000]
    long_doc, short_doc = enc.encode_documents([MILLION_CHARS, prefix])
    long_q, short_q = enc.encode_queries([MILLION_CHARS, prefix])
    assert long_doc.shape[0] <= enc.settings.document_length
    np.testing.assert_allclose(long_doc, short_doc, atol=1e-6)
    np.testing.assert_allclose(long_q, short_q, atol=1e-6)


@fails(A, "page-garbage-bytes", ImageLoadError, "could not identify", "png")
def _garbage_image(ctx: Ctx) -> object:
    return ctx.get("page_encoder").encode_documents([b"definitely not an image"])


@fails(A, "page-30000x30000-header", ImageLoadError, "decompression bomb", "max_pixels")
def _bomb(ctx: Ctx) -> object:
    return ctx.get("page_encoder").encode_documents([png_header_bomb(30_000, 30_000)])


@behaves(A, "page-cmyk-palette-16bit-animated")
def _odd_modes(ctx: Ctx) -> None:
    """Documented: every image is converted to RGB first (CMYK via ICC or formula,
    transparency onto white, 16-bit scaled, animations: first frame)."""
    enc = ctx.get("page_encoder")
    images = [
        cmyk_swatches()[0].resize((32, 32)),
        palette_with_transparency().resize((32, 32)),
        gray16([0, 1000, 40000, 65535]).resize((32, 32)),
        animated([(200, 30, 30), (30, 200, 30)], "GIF", size=32),
    ]
    got = enc.encode_documents(images, batch_size=4)
    want = enc.encode_documents([load_image(img) for img in images], batch_size=4)
    for a, b in zip(got, want, strict=True):
        assert np.isfinite(a).all()
        np.testing.assert_allclose(a, b, atol=1e-5)


def _checkpoint_case(family: str, variant: str, *words: str) -> Case:
    def run(ctx: Ctx) -> object:
        return load_encoder(ctx.get("broken_checkpoints")[f"{family}/{variant}"], device="cpu")

    return Case(A, f"{family}-{variant}", run, CheckpointError, words)


@fails(A, "remote-code-not-trusted", RemoteCodeRequiredError, "trust_remote_code=True", "own")
def _remote_code(ctx: Ctx) -> object:
    return load_encoder(ctx.get("broken_checkpoints")["colbert/remote_code"], device="cpu")


@fails(A, "missing-model-folder", ModelNotFoundError, "no model folder", "hub id")
def _missing_folder(ctx: Ctx) -> object:
    return load_encoder(ctx.tmp / "no" / "such" / "model")


def _checkpoint_copy(ctx: Ctx) -> Path:
    """A private copy of the tiny ColBERT checkpoint to damage."""
    return Path(shutil.copytree(ctx.get("colbert_dir"), ctx.tmp / "model"))


@fails(A, "malformed-model-safetensors", CheckpointError, "could not load", "re-download")
def _malformed_weights(ctx: Ctx) -> object:
    """A header claiming 2**62 bytes (the Transformer's weights, read by transformers)."""
    folder = _checkpoint_copy(ctx)
    (folder / "model.safetensors").write_bytes(struct.pack("<Q", 2**62) + b'{"a": 1}')
    return load_encoder(folder, device="cpu")


@fails(A, "modules-json-path-outside", CheckpointError, "outside the model folder", "'path'")
def _module_outside(ctx: Ctx) -> object:
    """A ``modules.json`` entry leading out of the folder is refused, not followed."""
    folder = _checkpoint_copy(ctx)
    shutil.copytree(folder / "1_Dense", ctx.tmp / "elsewhere")
    modules = json.loads((folder / "modules.json").read_text())
    modules[1]["path"] = "../elsewhere"
    (folder / "modules.json").write_text(json.dumps(modules))
    return load_encoder(folder, device="cpu")


@fails(A, "modules-json-link-outside", CheckpointError, "outside the model folder", "'path'")
def _module_link_outside(ctx: Ctx) -> object:
    """The same through a link: ``1_Dense`` is a link to a folder elsewhere."""
    folder = _checkpoint_copy(ctx)
    shutil.move(folder / "1_Dense", ctx.tmp / "elsewhere")
    (folder / "1_Dense").symlink_to(ctx.tmp / "elsewhere")
    return load_encoder(folder, device="cpu")


@fails(A, "nul-in-model-path", InvalidInputError, "nul bytes", "model folder")
def _nul_model_path(ctx: Ctx) -> object:
    return load_encoder(str(ctx.tmp / "mo\x00del"), device="cpu")


CASES = [
    _empty_list,
    _none_item,
    _int_item,
    _bare_string,
    _empty_texts,
    _million_chars,
    _garbage_image,
    _bomb,
    _odd_modes,
    _checkpoint_case(
        "colbert", "missing_key", "missing keys", "intermediate.dense.weight", "download"
    ),
    _checkpoint_case("colbert", "extra_key", "unexpected keys", "gate.weight", "download"),
    _checkpoint_case("colbert", "missing_weights", "missing model.safetensors", "download"),
    _checkpoint_case("collfm2", "missing_key", "missing", "q_proj.weight", "checkpoint"),
    _checkpoint_case("collfm2", "extra_key", "unexpected", "surprise.weight", "checkpoint"),
    _checkpoint_case("colqwen3", "missing_key", "missing", "norm.weight", "checkpoint"),
    _checkpoint_case("colqwen3", "extra_key", "unexpected", "extra_norm.weight", "checkpoint"),
    _remote_code,
    _missing_folder,
    _malformed_weights,
    _module_outside,
    _module_link_outside,
    _nul_model_path,
]
