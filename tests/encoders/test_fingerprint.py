"""EncoderFingerprint: persistence, comparison rules, content hash, ``encoder.fingerprint``."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sauerkraut_rag import load_encoder
from sauerkraut_rag.encoders._content_hash import checkpoint_content_hash
from sauerkraut_rag.encoders.fingerprint import FINGERPRINT_FORMAT, EncoderFingerprint
from sauerkraut_rag.errors import InvalidInputError, InvalidInputTypeError
from tests.hub_cache import FAKE_COMMIT, install_in_hf_cache, use_offline_cache

COLBERT = Path(__file__).resolve().parents[1] / "fixtures" / "colbert_tiny"
HUB_ID = "VAGOsolutions/SauerkrautLM-Multi-ColBERT-15m"

BASE = EncoderFingerprint(model="org/model", family="collfm2", dim=128, processing="p1")


def test_round_trip_through_json() -> None:
    full = EncoderFingerprint(
        model="org/model",
        family="colqwen3",
        dim=96,
        processing=None,
        revision="a" * 40,
        content_hash="sha256:" + "b" * 64,
        pool_factor=2,
    )
    data = json.loads(json.dumps(full.to_dict()))
    assert data["format"] == FINGERPRINT_FORMAT
    assert EncoderFingerprint.from_dict(data) == full
    assert EncoderFingerprint.from_dict({**data, "added_later": 1}) == full


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"model": "m", "family": "colbert"}, InvalidInputError),
        ({"model": "m", "family": "colbert", "dim": 0}, InvalidInputError),
        ({"model": "m", "family": "colbert", "dim": True}, InvalidInputError),
        ({"model": "", "family": "colbert", "dim": 8}, InvalidInputTypeError),
        ({"model": "m", "family": "colbert", "dim": 8, "revision": 5}, InvalidInputTypeError),
        ({"model": "m", "family": "colbert", "dim": 8, "format": 99}, InvalidInputError),
        (["not", "a", "dict"], InvalidInputTypeError),
    ],
)
def test_bad_dicts_raise_typed_errors(data: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        EncoderFingerprint.from_dict(data)  # type: ignore[arg-type]


def test_identical_fingerprints_match() -> None:
    assert BASE.describe_difference(BASE) is None
    assert BASE.matches(EncoderFingerprint.from_dict(BASE.to_dict()))


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"model": "other/model"}, "model"),
        ({"family": "colqwen3"}, "family"),
        ({"dim": 64}, "dim"),
        ({"processing": "p2"}, "processing"),
        ({"processing": None}, "processing"),
        ({"pool_factor": 2}, "pool_factor"),
    ],
)
def test_each_field_that_changes_vectors_is_reported(change: dict, field: str) -> None:
    other = EncoderFingerprint.from_dict({**BASE.to_dict(), **change})
    text = BASE.describe_difference(other)
    assert text is not None and text.startswith(f"{field}:")
    assert not BASE.matches(other)


def test_content_hash_decides_identity_when_both_know_it() -> None:
    a = EncoderFingerprint("org/model", "colbert", 8, content_hash="sha256:1")
    copy = EncoderFingerprint("my-local-copy", "colbert", 8, content_hash="sha256:1")
    retrained = EncoderFingerprint("org/model", "colbert", 8, content_hash="sha256:2")
    assert a.matches(copy)
    assert "model:" in (a.describe_difference(retrained) or "")


def test_revision_separates_commits_of_one_model() -> None:
    a = EncoderFingerprint("org/model", "colbert", 8, revision="1" * 40)
    b = EncoderFingerprint("org/model", "colbert", 8, revision="2" * 40)
    unknown = EncoderFingerprint("org/model", "colbert", 8)
    assert not a.matches(b)
    assert a.matches(unknown)


def test_with_pooling_and_describe() -> None:
    pooled = BASE.with_pooling(3)
    assert pooled.pool_factor == 3 and BASE.pool_factor == 1
    assert "pool factor 3" in pooled.describe()
    assert BASE.describe().startswith("org/model (collfm2; dim 128, processing p1")


# ---- content hash ------------------------------------------------------------------------


def test_content_hash_follows_file_contents(tmp_path: Path) -> None:
    folder = shutil.copytree(COLBERT, tmp_path / "copy")
    first = checkpoint_content_hash(folder)
    assert first == checkpoint_content_hash(COLBERT)
    assert first.startswith("sha256:") and len(first) == 7 + 64
    (folder / "README.md").write_text("not part of the model")
    assert checkpoint_content_hash(folder) == first
    dense = folder / "1_Dense" / "model.safetensors"
    data = bytearray(dense.read_bytes())
    data[-1] ^= 1
    dense.write_bytes(bytes(data))
    assert checkpoint_content_hash(folder) != first


def test_hf_cache_lfs_blobs_hash_like_plain_files(tmp_path: Path) -> None:
    """A snapshot whose weights link to ``blobs/<sha256>`` hashes like the plain folder."""
    snapshot = tmp_path / "models--org--m" / "snapshots" / FAKE_COMMIT
    blobs = tmp_path / "models--org--m" / "blobs"
    shutil.copytree(COLBERT, snapshot)
    blobs.mkdir()
    for path in [snapshot / "model.safetensors", snapshot / "1_Dense" / "model.safetensors"]:
        sha = hashlib.sha256(path.read_bytes()).hexdigest()
        shutil.move(path, blobs / sha)
        os.symlink(os.path.relpath(blobs / sha, path.parent), path)
    assert checkpoint_content_hash(snapshot) == checkpoint_content_hash(COLBERT)


# ---- encoder.fingerprint ----------------------------------------------------------------


def test_encoder_fingerprint_from_local_folder() -> None:
    encoder = load_encoder(COLBERT, device="cpu")
    fp = encoder.fingerprint
    assert fp == EncoderFingerprint(
        model="colbert_tiny",
        family="colbert",
        dim=encoder.dim,
        content_hash=checkpoint_content_hash(COLBERT),
    )
    assert encoder.fingerprint is fp  # computed once


def test_encoder_fingerprint_by_hub_id_knows_revision_and_matches_local(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "hub"
    install_in_hf_cache(COLBERT, HUB_ID, cache)
    use_offline_cache(monkeypatch, cache)
    fp = load_encoder(HUB_ID, device="cpu").fingerprint
    assert (fp.model, fp.revision) == (HUB_ID, FAKE_COMMIT)
    assert fp.matches(load_encoder(COLBERT, device="cpu").fingerprint)


def test_fingerprint_module_does_not_import_torch() -> None:
    code = (
        "import sys, sauerkraut_rag.encoders.fingerprint as f; "
        "f.EncoderFingerprint('m', 'colbert', 8); print('torch' in sys.modules)"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.stdout.strip() == "False", out.stderr
