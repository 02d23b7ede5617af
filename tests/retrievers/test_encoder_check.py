"""An index remembers its encoder: records it, refuses another, warns once when it cannot know."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from sauerkraut_rag.encoders.fingerprint import EncoderFingerprint
from sauerkraut_rag.errors import EncoderMismatchError, IndexCorruptedError
from sauerkraut_rag.retrievers import encoder_check
from sauerkraut_rag.retrievers.retriever import MultiVectorRetriever
from sauerkraut_rag.retrievers.voyager.index import VoyagerIndex
from tests.retrievers.helpers import FakeEncoder

DIM = 16
LFM2 = EncoderFingerprint(
    "VAGOsolutions/SauerkrautLM-ColLFM2-450M-v0.1",
    "collfm2",
    DIM,
    processing="transformers-4.57",
    content_hash="sha256:aaa",
)


class PrintedEncoder(FakeEncoder):
    """The fake word encoder with a fingerprint, like a real encoder."""

    def __init__(self, fingerprint: EncoderFingerprint) -> None:
        super().__init__(dim=fingerprint.dim, name=fingerprint.model)
        self.fingerprint = fingerprint


@pytest.fixture(autouse=True)
def fresh_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(encoder_check, "_warned", set())


def test_retriever_records_the_encoder_of_a_new_index(tmp_path: Path) -> None:
    with VoyagerIndex(tmp_path / "ix", dim=DIM) as index:
        assert index.encoder_fingerprint is None
        MultiVectorRetriever(PrintedEncoder(LFM2), index).add_documents(["a b", "c"])
    with VoyagerIndex.open(tmp_path / "ix", read_only=True) as index:
        assert index.encoder_fingerprint == LFM2
        MultiVectorRetriever(PrintedEncoder(LFM2), index).search("a")  # same encoder: fine


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"model": "someone/else", "content_hash": "sha256:bbb"}, "model"),
        ({"processing": "transformers-5"}, "processing"),
        ({"family": "colqwen3"}, "family"),
    ],
)
def test_another_encoder_is_refused_for_search_and_add(
    tmp_path: Path, change: dict, field: str
) -> None:
    other = EncoderFingerprint.from_dict({**LFM2.to_dict(), **change})
    with VoyagerIndex(tmp_path / "ix", dim=DIM) as index:
        MultiVectorRetriever(PrintedEncoder(LFM2), index).add_documents(["a b"])
        with pytest.raises(EncoderMismatchError) as info:
            MultiVectorRetriever(PrintedEncoder(other), index)
        assert len(index) == 1
    message = str(info.value)
    assert f"{field}: " in message and "rebuild" in message and str(tmp_path / "ix") in message
    with (
        VoyagerIndex.open(tmp_path / "ix", read_only=True) as index,
        pytest.raises(EncoderMismatchError),
    ):
        MultiVectorRetriever(PrintedEncoder(other), index)


def test_pooled_index_records_its_pool_factor(tmp_path: Path) -> None:
    with VoyagerIndex(tmp_path / "ix", dim=DIM, pool_factor=2) as index:
        MultiVectorRetriever(PrintedEncoder(LFM2), index).add_documents(["a b c d"])
        assert index.encoder_fingerprint == LFM2.with_pooling(2)
        MultiVectorRetriever(PrintedEncoder(LFM2), index)  # the encoder itself pools nothing


def test_index_written_before_fingerprints_warns_once_and_still_works(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with VoyagerIndex(tmp_path / "ix", dim=DIM) as index:
        index.add(["old"], [np.eye(DIM, dtype=np.float32)[:2]])  # raw vectors: no encoder
    caplog.set_level(logging.WARNING, logger="sauerkraut_rag.retrievers.encoder_check")
    with VoyagerIndex.open(tmp_path / "ix") as index:
        first = MultiVectorRetriever(PrintedEncoder(LFM2), index)
        MultiVectorRetriever(PrintedEncoder(LFM2), index)
        first.add_documents(["new words"])
        assert index.encoder_fingerprint is None  # unknown stays unknown: nothing asserted
        assert len(first.search("new", k=2)) == 2
    warnings = [r for r in caplog.records if "before sauerkraut-rag recorded" in r.message]
    assert len(warnings) == 1


def test_encoders_without_fingerprint_are_not_checked(tmp_path: Path) -> None:
    with VoyagerIndex(tmp_path / "ix", dim=DIM) as index:
        MultiVectorRetriever(PrintedEncoder(LFM2), index).add_documents(["a"])
        MultiVectorRetriever(FakeEncoder(dim=DIM), index).search("a")


def test_damaged_record_is_a_typed_error(tmp_path: Path) -> None:
    with VoyagerIndex(tmp_path / "ix", dim=DIM) as index:
        index.bind_encoder(LFM2)
    with sqlite3.connect(tmp_path / "ix" / "index.sqlite") as conn:
        conn.execute("UPDATE meta SET value = '{\"model\": 3' WHERE key = 'encoder'")
    with pytest.raises(IndexCorruptedError, match="encoder record"):
        VoyagerIndex.open(tmp_path / "ix")


def test_bind_fingerprint_decisions() -> None:
    def bind(stored: EncoderFingerprint | None, **state: bool) -> EncoderFingerprint | None:
        return encoder_check.bind_fingerprint(stored, LFM2, where="the index at x", **state)

    assert bind(None, empty=True, writable=True) == LFM2
    assert bind(None, empty=True, writable=False) is None
    assert bind(LFM2, empty=False, writable=True) is None
    with pytest.raises(EncoderMismatchError, match=r"^The index at x holds vectors made by"):
        bind(LFM2.with_pooling(3), empty=False, writable=True)
