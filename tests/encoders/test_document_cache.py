"""DocumentCache: hits and misses, keys per encoder and content, LRU eviction, threads,
the folder tier (persistence, bound, damaged files are misses, never outside the folder)."""

from __future__ import annotations

import io
import os
import sqlite3
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from sauerkraut_rag.encoders.document_cache import (
    DocumentCache,
    default_document_cache,
    encode_documents_cached,
    resolve_document_cache,
)
from sauerkraut_rag.encoders.fingerprint import EncoderFingerprint
from sauerkraut_rag.errors import InvalidInputError, InvalidInputTypeError


class CountingEncoder:
    """A stand-in encoder: deterministic vectors per content, counts what it encodes."""

    def __init__(self, model: str = "m", *, dim: int = 8, modality: str = "text", **extra: Any):
        self.fingerprint = EncoderFingerprint(model=model, family="colbert", dim=dim, **extra)
        self.dim = dim
        self.modality = modality
        self.dtype = "torch.float32"
        self.encoded: list[Any] = []
        self.lock = threading.Lock()

    def encode_documents(self, items, *, batch_size=8, show_progress=None):
        with self.lock:
            self.encoded.extend(items)
        return [self.vectors(item) for item in items]

    def vectors(self, item: Any) -> np.ndarray:
        raw = item if isinstance(item, bytes) else str(item).encode()
        seed = int.from_bytes(raw[:8].ljust(8, b"\0"), "little") ^ len(raw)
        n = 1 + len(raw) % 5
        return np.random.default_rng(seed).standard_normal((n, self.dim)).astype(np.float32)


def test_second_call_hits_and_returns_identical_read_only_vectors() -> None:
    enc, cache = CountingEncoder(), DocumentCache()
    first = cache.encode_documents(enc, ["a", "b", "c"])
    assert enc.encoded == ["a", "b", "c"]
    second = cache.encode_documents(enc, ["c", "a", "b"])
    assert enc.encoded == ["a", "b", "c"]  # nothing encoded again
    for got, want in zip(second, [first[2], first[0], first[1]], strict=True):
        np.testing.assert_array_equal(got, want)
        assert not got.flags.writeable
    stats = cache.stats()
    assert (stats.hits, stats.misses, stats.entries) == (3, 3, 3)
    assert stats.bytes == sum(v.nbytes for v in first) + 3 * 256


def test_duplicates_once_order_kept_and_unkeyed_items_always_encoded() -> None:
    enc, cache = CountingEncoder(), DocumentCache()
    out = cache.encode_documents(enc, ["x", "y", "x", 42, "y"])
    assert enc.encoded == ["x", "y", 42]
    np.testing.assert_array_equal(out[0], out[2])
    np.testing.assert_array_equal(out[3], enc.vectors(42))
    cache.encode_documents(enc, [42, "x"])
    assert enc.encoded == ["x", "y", 42, 42]  # 42 has no content key: never cached
    assert cache.encode_documents(enc, []) == []


@pytest.mark.parametrize(
    "other",
    [
        CountingEncoder("other-model"),
        CountingEncoder(content_hash="sha256:" + "1" * 64),
        CountingEncoder(processing="transformers-5"),
        CountingEncoder(revision="a" * 40),
    ],
)
def test_no_hits_across_encoders(other: CountingEncoder) -> None:
    cache = DocumentCache()
    cache.encode_documents(CountingEncoder(), ["same text"])
    cache.encode_documents(other, ["same text"])
    assert other.encoded == ["same text"]


def test_dtype_and_document_options_are_part_of_the_key() -> None:
    cache = DocumentCache()
    base = CountingEncoder()
    cache.encode_documents(base, ["t"])
    half = CountingEncoder()
    half.dtype = "torch.bfloat16"
    shorter = CountingEncoder()
    shorter.settings = {"document_length": 64}
    for enc in (half, shorter):
        cache.encode_documents(enc, ["t"])
        assert enc.encoded == ["t"]
    twin = CountingEncoder()
    cache.encode_documents(twin, ["t"])
    assert twin.encoded == []  # an equal encoder object shares the entries


def test_encoder_without_fingerprint_is_not_cached() -> None:
    class Plain(CountingEncoder):
        @property
        def fingerprint(self):  # type: ignore[override]
            raise AttributeError("no fingerprint")

        @fingerprint.setter
        def fingerprint(self, value: Any) -> None:
            pass

    enc, cache = Plain(), DocumentCache()
    cache.encode_documents(enc, ["a"])
    cache.encode_documents(enc, ["a"])
    assert enc.encoded == ["a", "a"] and len(cache) == 0


def test_lru_eviction_keeps_the_bound() -> None:
    enc = CountingEncoder(dim=16)
    items = [f"doc-{i:03d}" for i in range(10)]
    sizes = {i: enc.vectors(i).nbytes + 256 for i in items}
    bound = sizes[items[0]] + sizes[items[1]] + sizes[items[2]]
    cache = DocumentCache(max_bytes=bound)
    cache.encode_documents(enc, items[:3])
    cache.encode_documents(enc, items[:1])  # touch doc-000: doc-001 is now the oldest
    cache.encode_documents(enc, items[3:4])
    stats = cache.stats()
    assert stats.bytes <= bound and stats.evictions >= 1
    enc.encoded.clear()
    cache.encode_documents(enc, [items[0]])
    assert enc.encoded == []  # recently used: kept
    cache.encode_documents(enc, [items[1]])
    assert enc.encoded == [items[1]]  # least recently used: evicted


def test_zero_bytes_and_oversized_entries_are_not_kept() -> None:
    enc = CountingEncoder()
    none = DocumentCache(max_bytes=0)
    none.encode_documents(enc, ["a"])
    none.encode_documents(enc, ["a"])
    assert enc.encoded == ["a", "a"] and len(none) == 0
    small = DocumentCache(max_bytes=100)
    small.encode_documents(enc, ["b"])
    assert len(small) == 0
    with pytest.raises(InvalidInputError):
        DocumentCache(max_bytes=-1)


def test_thread_safety_under_contention() -> None:
    enc = CountingEncoder()
    items = [f"chunk {i}" for i in range(40)]
    cache = DocumentCache(max_bytes=20 * (5 * 8 * 4 + 256))
    errors: list[BaseException] = []
    lookups = [0]
    guard = threading.Lock()

    def work(seed: int) -> None:
        rng = np.random.default_rng(seed)
        try:
            for _ in range(60):
                picked = [items[i] for i in rng.choice(len(items), 7, replace=False)]
                got = cache.encode_documents(enc, picked)
                with guard:
                    lookups[0] += len(picked)
                for item, vectors in zip(picked, got, strict=True):
                    np.testing.assert_array_equal(vectors, enc.vectors(item))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(s,)) for s in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    stats = cache.stats()
    assert stats.hits + stats.misses == lookups[0]
    assert stats.hits > 0 and stats.bytes <= cache.max_bytes and stats.evictions > 0


def test_folder_persists_across_instances(tmp_path: Path) -> None:
    enc = CountingEncoder()
    first = DocumentCache(folder=tmp_path / "c")
    want = first.encode_documents(enc, ["alpha", "beta"])
    first.close()
    enc.encoded.clear()
    second = DocumentCache(folder=tmp_path / "c")
    got = second.encode_documents(enc, ["beta", "alpha", "gamma"])
    assert enc.encoded == ["gamma"]
    np.testing.assert_array_equal(got[0], want[1])
    np.testing.assert_array_equal(got[1], want[0])
    stats = second.stats()
    assert stats.folder_hits == 2 and stats.folder_entries == 3
    files = sorted(p.name for p in (tmp_path / "c" / "vectors").iterdir())
    assert len(files) == 3 and all(f.endswith(".npy") and len(f) == 68 for f in files)
    assert {p.name for p in (tmp_path / "c").iterdir()} <= {
        "vectors", "cache.sqlite", "cache.sqlite-wal", "cache.sqlite-shm"
    }  # fmt: skip


def _one_file(folder: Path) -> Path:
    (path,) = (folder / "vectors").iterdir()
    return path


@pytest.mark.parametrize("damage", ["truncate", "flip", "pickle", "garbage", "link"])
def test_damaged_file_is_a_miss(tmp_path: Path, damage: str) -> None:
    enc = CountingEncoder()
    DocumentCache(folder=tmp_path / "c").encode_documents(enc, ["text"])
    path = _one_file(tmp_path / "c")
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[: len(data) - 7])
    elif damage == "flip":
        path.write_bytes(data[:-1] + bytes([data[-1] ^ 0x40]))
    elif damage == "pickle":
        buf = io.BytesIO()
        np.save(buf, np.array([{"x": 1}], dtype=object), allow_pickle=True)
        path.write_bytes(buf.getvalue())
    elif damage == "garbage":
        path.write_bytes(b"not an npy file")
    else:
        outside = tmp_path / "outside.npy"
        outside.write_bytes(data)
        path.unlink()
        path.symlink_to(outside)
    enc.encoded.clear()
    cache = DocumentCache(folder=tmp_path / "c")
    got = cache.encode_documents(enc, ["text"])
    assert enc.encoded == ["text"]  # re-encoded, no crash
    np.testing.assert_array_equal(got[0], enc.vectors("text"))
    fresh = DocumentCache(folder=tmp_path / "c")
    enc.encoded.clear()
    fresh.encode_documents(enc, ["text"])
    assert enc.encoded == []  # the rewritten entry is good again
    if damage == "link":
        assert (tmp_path / "outside.npy").read_bytes() == data  # never written through


def test_damaged_index_starts_afresh(tmp_path: Path) -> None:
    enc = CountingEncoder()
    DocumentCache(folder=tmp_path / "c").encode_documents(enc, ["a"])
    db = tmp_path / "c" / "cache.sqlite"
    for suffix in ("-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    db.write_bytes(b"this is not a database" * 100)
    enc.encoded.clear()
    cache = DocumentCache(folder=tmp_path / "c")
    cache.encode_documents(enc, ["a"])
    assert enc.encoded == ["a"]
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM entries").fetchone()[0] == 1


def test_folder_bound_evicts_least_recently_used(tmp_path: Path) -> None:
    enc = CountingEncoder(dim=32)
    probe = DocumentCache(folder=tmp_path / "probe")
    probe.encode_documents(enc, ["p"])
    one = probe.stats().folder_bytes
    cache = DocumentCache(folder=tmp_path / "c", max_folder_bytes=3 * one)
    for i in range(6):
        cache.encode_documents(enc, ["p" * (1 + 5 * i)])  # same token count: same size
    stats = cache.stats()
    assert stats.folder_bytes <= 3 * one and stats.folder_entries <= 3
    assert len(list((tmp_path / "c" / "vectors").iterdir())) == stats.folder_entries


def test_refuses_a_linked_vectors_folder(tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "c").mkdir()
    os.symlink(tmp_path / "elsewhere", tmp_path / "c" / "vectors")
    with pytest.raises(InvalidInputError, match="link"):
        DocumentCache(folder=tmp_path / "c")


def test_images_keyed_by_bytes(tmp_path: Path) -> None:
    enc = CountingEncoder(modality="image")
    image = Image.new("RGB", (8, 6), (200, 10, 10))
    path = tmp_path / "page.png"
    image.save(path)
    cache = DocumentCache()
    cache.encode_documents(enc, [str(path)])
    cache.encode_documents(enc, [path.read_bytes(), path])  # same bytes: hits
    assert enc.encoded == [str(path)]
    cache.encode_documents(enc, [image, image.copy()])
    assert len(enc.encoded) == 2  # a PIL image is keyed by its pixels
    other = Image.new("RGB", (8, 6), (10, 200, 10))
    cache.encode_documents(enc, [other, str(tmp_path / "missing.png")])
    assert enc.encoded[-2:] == [other, str(tmp_path / "missing.png")]


def test_resolve_and_helper() -> None:
    assert resolve_document_cache(True) is default_document_cache()
    assert resolve_document_cache(False) is None and resolve_document_cache(None) is None
    mine = DocumentCache(max_bytes=1 << 20)
    assert resolve_document_cache(mine) is mine
    with pytest.raises(InvalidInputTypeError, match="DocumentCache"):
        resolve_document_cache("yes")
    enc = CountingEncoder()
    encode_documents_cached(enc, ["a"], batch_size=2, cache=None)
    encode_documents_cached(enc, ["a"], batch_size=2, cache=None)
    assert enc.encoded == ["a", "a"]
    assert "max_bytes=1048576" in repr(mine)


def test_changed_options_on_a_live_encoder_change_the_key() -> None:
    enc, cache = CountingEncoder(), DocumentCache()
    enc.settings = {"document_length": 180}
    cache.encode_documents(enc, ["t"])
    enc.settings = {"document_length": 32}
    cache.encode_documents(enc, ["t"])
    assert enc.encoded == ["t", "t"]
