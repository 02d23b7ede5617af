"""VoyagerIndex on damaged files: newer formats, foreign folders, truncated, flipped or
deleted segments, graphs and database rows (split from test_index.py)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from sauerkraut_rag.errors import IndexCorruptedError, IndexFormatError
from sauerkraut_rag.retrievers.voyager.index import VoyagerIndex
from tests.retrievers.helpers import check_search
from tests.retrievers.index_support import fill, make

# ---------------------------------------------------------------------------- damage


def _set_meta(folder: Path, key: str, value: str) -> None:
    conn = sqlite3.connect(folder / "index.sqlite")
    with conn:
        conn.execute("UPDATE meta SET value = ? WHERE key = ?", (value, key))
    conn.close()


def _flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset % len(data)] ^= 0x10
    path.write_bytes(bytes(data))


def test_newer_format_version_is_refused(tmp_path):
    make(tmp_path).close()
    _set_meta(tmp_path / "idx", "format_version", "99")
    with pytest.raises(IndexFormatError, match="newer"):
        VoyagerIndex.open(tmp_path / "idx")


def test_not_an_index(tmp_path):
    folder = tmp_path / "fake"
    folder.mkdir()
    (folder / "index.sqlite").write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(IndexCorruptedError):
        VoyagerIndex.open(folder)
    other = tmp_path / "other"
    other.mkdir()
    conn = sqlite3.connect(other / "index.sqlite")
    conn.execute("CREATE TABLE t(x)")
    conn.close()
    with pytest.raises(IndexFormatError, match="not a sauerkraut-rag index"):
        VoyagerIndex.open(other)


@pytest.mark.parametrize("damage", ["truncate", "flip", "delete"])
def test_damaged_vector_segment_is_detected(tmp_path, damage):
    with make(tmp_path) as index:
        fill(index, 10)
    segment = next((tmp_path / "idx" / "vectors").iterdir())
    if damage == "truncate":
        segment.write_bytes(segment.read_bytes()[:-7])
    elif damage == "flip":
        _flip(segment, 200)
    else:
        segment.unlink()
    with pytest.raises(IndexCorruptedError, match="Vector segment"):
        VoyagerIndex.open(tmp_path / "idx")


@pytest.mark.parametrize("damage", ["truncate", "flip", "delete"])
def test_damaged_hnsw_file_is_rebuilt(tmp_path, queries, damage):
    with make(
        tmp_path, strategy="tokens", exact_threshold=0, candidates=100, token_k=10_000
    ) as index:
        docs = fill(index, 30)
    graph = next((tmp_path / "idx" / "hnsw").iterdir())
    if damage == "truncate":
        graph.write_bytes(graph.read_bytes()[: len(graph.read_bytes()) // 2])
    elif damage == "flip":
        _flip(graph, 5000)
    else:
        graph.unlink()
    with VoyagerIndex.open(tmp_path / "idx") as index:
        check_search(index, queries, docs, 5)
    with VoyagerIndex.open(tmp_path / "idx") as index:  # the rebuilt graph was saved
        assert not index._writer.hnsw_dirty


def test_damaged_database_is_detected(tmp_path):
    with make(tmp_path) as index:
        fill(index, 10)
    db = tmp_path / "idx" / "index.sqlite"
    db.write_bytes(db.read_bytes()[:3000])
    with pytest.raises(IndexCorruptedError):
        VoyagerIndex.open(tmp_path / "idx")


def test_damaged_document_row_is_detected(tmp_path):
    with make(tmp_path) as index:
        fill(index, 10)
    conn = sqlite3.connect(tmp_path / "idx" / "index.sqlite")
    with conn:  # what a flipped bit inside a row's text would do
        conn.execute("UPDATE docs SET payload = 'payload X' WHERE id = 'd3'")
    conn.close()
    with pytest.raises(IndexCorruptedError, match="checksum"):
        VoyagerIndex.open(tmp_path / "idx")


@pytest.mark.parametrize("entry", ["{not json", '{"file": 3}', '["list"]'])
def test_damaged_hnsw_entry_rebuilds_the_graph(tmp_path, queries, entry):
    with make(
        tmp_path, strategy="tokens", exact_threshold=0, candidates=100, token_k=10_000
    ) as index:
        docs = fill(index, 20)
    _set_meta(tmp_path / "idx", "hnsw", entry)
    with VoyagerIndex.open(tmp_path / "idx") as index:
        check_search(index, queries, docs, 5)
