"""``DocumentCache``: document multi-vectors kept by encoder and content, so rerankers never
encode the same text (or page) twice.

RAG pipelines rerank the same chunks again and again; encoding them is most of a
rerank's time. The cache maps ``(encoder, content)`` to the vectors the encoder produced:

* the encoder part is its :class:`~sauerkraut_rag.encoders.fingerprint.EncoderFingerprint`
  (checkpoint content hash, family, dim, processing) plus dtype and document options, so
  another model, revision or setting never sees these vectors;
* the content part is the SHA-256 of the text, or of the image bytes (see
  :mod:`sauerkraut_rag.encoders._document_cache_keys`).

Entries live in memory (least recently used evicted beyond ``max_bytes``) and, with
``folder=``, also on disk (``.npy`` files and a SQLite index, atomic writes, never
pickled, bounded by ``max_folder_bytes``), so a restarted process starts warm. It is
thread-safe; two threads missing the same document at once may both encode it. Returned
arrays are read-only and exactly what the encoder returned.

>>> cache = DocumentCache(max_bytes=64 << 20)
>>> vectors = cache.encode_documents(encoder, ["a chunk", "another"])  # doctest: +SKIP
>>> cache.stats()  # doctest: +SKIP
CacheStats(hits=0, misses=2, ...)
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sauerkraut_rag._checks import check_int
from sauerkraut_rag.encoders._document_cache_folder import FolderStore
from sauerkraut_rag.encoders._document_cache_keys import content_keys, encoder_key
from sauerkraut_rag.errors import InvalidInputTypeError
from sauerkraut_rag.types import MultiVector

__all__ = [
    "DEFAULT_CACHE_BYTES",
    "DEFAULT_FOLDER_BYTES",
    "CacheStats",
    "DocumentCache",
    "default_document_cache",
    "encode_documents_cached",
    "resolve_document_cache",
]

DEFAULT_CACHE_BYTES = 256 << 20
"""Memory bound of a cache made without ``max_bytes`` (and of the shared default cache)."""
DEFAULT_FOLDER_BYTES = 4 << 30
"""Disk bound of a folder cache made without ``max_folder_bytes``."""
_ENTRY_OVERHEAD = 256
"""Bytes counted per entry on top of its array (key, bookkeeping)."""


@dataclass(frozen=True)
class CacheStats:
    """Counters since the cache was made (or cleared) and its current size."""

    hits: int
    misses: int
    evictions: int
    entries: int
    bytes: int
    max_bytes: int
    folder_hits: int = 0
    folder_entries: int = 0
    folder_bytes: int = 0


class DocumentCache:
    """A size-bounded, thread-safe cache of document multi-vectors (see the module doc).

    ``max_bytes``: memory bound (0 keeps nothing in memory). ``folder``: also keep entries
    on disk there (created if needed; only files of the cache are read or written inside
    it). ``max_folder_bytes``: the disk bound.
    """

    def __init__(
        self,
        max_bytes: int = DEFAULT_CACHE_BYTES,
        *,
        folder: str | Path | None = None,
        max_folder_bytes: int = DEFAULT_FOLDER_BYTES,
    ) -> None:
        self.max_bytes = check_int("max_bytes", max_bytes, low=0, hint=" Use 0 to keep none.")
        folder_bound = check_int("max_folder_bytes", max_folder_bytes, low=0)
        self._memory: OrderedDict[str, MultiVector] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self._hits = self._misses = self._evictions = self._folder_hits = 0
        self._folder = None if folder is None else FolderStore(folder, folder_bound)

    # ------------------------------------------------------------------ main entry

    def encode_documents(
        self,
        encoder: Any,
        items: list[Any],
        *,
        batch_size: int = 8,
        show_progress: bool | None = False,
    ) -> list[MultiVector]:
        """``encoder.encode_documents(items)``, encoding only what the cache lacks.

        Misses are encoded in one call (each distinct content once), in input order.
        """
        items = list(items)
        key = encoder_key(encoder)
        if key is None or not items:
            return encoder.encode_documents(
                items, batch_size=batch_size, show_progress=show_progress
            )
        ids = [
            None if c is None else hashlib.sha256(f"{key}:{c}".encode()).hexdigest()
            for c in content_keys(items, getattr(encoder, "modality", "text"))
        ]
        found = self._lookup([i for i in ids if i is not None])
        todo: dict[str | int, int] = {}  # id (or position, when unkeyed) -> item index
        for pos, entry_id in enumerate(ids):
            if entry_id is None:
                todo[pos] = pos
            elif entry_id not in found and entry_id not in todo:
                todo[entry_id] = pos
        if todo:
            encoded = encoder.encode_documents(
                [items[p] for p in todo.values()],
                batch_size=batch_size,
                show_progress=show_progress,
            )
            fresh = {}
            for name, vectors in zip(todo, encoded, strict=True):
                vectors.flags.writeable = False
                if isinstance(name, str):
                    fresh[name] = found[name] = vectors
                else:
                    found[name] = vectors
            self._store(fresh)
        return [found[pos if entry_id is None else entry_id] for pos, entry_id in enumerate(ids)]

    # ------------------------------------------------------------------ tiers

    def _lookup(self, ids: list[str]) -> dict[str | int, MultiVector]:
        found: dict[str | int, MultiVector] = {}
        with self._lock:
            for entry_id in ids:
                vectors = self._memory.get(entry_id)
                if vectors is not None:
                    self._memory.move_to_end(entry_id)
                    found[entry_id] = vectors
        missing = list(dict.fromkeys(i for i in ids if i not in found))
        from_disk = self._folder.get(missing) if self._folder is not None and missing else {}
        with self._lock:
            self._folder_hits += len(from_disk)
            self._hits += sum(1 for i in ids if i in found or i in from_disk)
            self._misses += sum(1 for i in ids if i not in found and i not in from_disk)
            for entry_id, vectors in from_disk.items():
                self._remember(entry_id, vectors)
        found.update(from_disk)
        return found

    def _store(self, entries: dict[str, MultiVector]) -> None:
        with self._lock:
            for entry_id, vectors in entries.items():
                self._remember(entry_id, vectors)
        if self._folder is not None and entries:
            self._folder.put(entries)

    def _remember(self, entry_id: str, vectors: MultiVector) -> None:
        """Put one entry in memory and evict (caller holds the lock)."""
        size = vectors.nbytes + _ENTRY_OVERHEAD
        if size > self.max_bytes:
            return
        old = self._memory.pop(entry_id, None)
        if old is not None:
            self._bytes -= old.nbytes + _ENTRY_OVERHEAD
        self._memory[entry_id] = vectors
        self._bytes += size
        while self._bytes > self.max_bytes:
            _, dropped = self._memory.popitem(last=False)
            self._bytes -= dropped.nbytes + _ENTRY_OVERHEAD
            self._evictions += 1

    # ------------------------------------------------------------------ housekeeping

    def stats(self) -> CacheStats:
        folder = self._folder.stats() if self._folder is not None else (0, 0)
        with self._lock:
            return CacheStats(
                hits=self._hits,
                misses=self._misses,
                evictions=self._evictions,
                entries=len(self._memory),
                bytes=self._bytes,
                max_bytes=self.max_bytes,
                folder_hits=self._folder_hits,
                folder_entries=folder[0],
                folder_bytes=folder[1],
            )

    def clear(self) -> None:
        """Drop every entry (memory and folder) and reset the counters."""
        with self._lock:
            self._memory.clear()
            self._bytes = 0
            self._hits = self._misses = self._evictions = self._folder_hits = 0
        if self._folder is not None:
            self._folder.clear()

    def close(self) -> None:
        """Release the folder's database (the memory tier stays usable)."""
        if self._folder is not None:
            self._folder.close()
            self._folder = None

    def __len__(self) -> int:
        with self._lock:
            return len(self._memory)

    def __repr__(self) -> str:
        where = f", folder={str(self._folder.folder)!r}" if self._folder is not None else ""
        return f"DocumentCache(max_bytes={self.max_bytes}{where})"


_default: DocumentCache | None = None
_default_lock = threading.Lock()


def default_document_cache() -> DocumentCache:
    """The process-wide cache rerankers share by default (memory only, 256 MiB)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = DocumentCache()
        return _default


def resolve_document_cache(cache: Any, *, role: str = "cache") -> DocumentCache | None:
    """``True`` -> the shared default cache; ``False``/``None`` -> none; or the given cache."""
    if cache is True:
        return default_document_cache()
    if cache is False or cache is None:
        return None
    if isinstance(cache, DocumentCache):
        return cache
    raise InvalidInputTypeError(
        f"Expected {role} to be True, False, None or a DocumentCache, got "
        f"{type(cache).__name__}. Pass DocumentCache(max_bytes=..., folder=...) to size it."
    )


def encode_documents_cached(
    encoder: Any, items: list[Any], *, batch_size: int, cache: DocumentCache | None
) -> list[MultiVector]:
    """Encode documents through ``cache`` when there is one."""
    if cache is None:
        return encoder.encode_documents(items, batch_size=batch_size, show_progress=False)
    return cache.encode_documents(encoder, items, batch_size=batch_size, show_progress=False)
