"""This package's record in a collection's metadata (key ``sauerkraut_rag``).

``{"format": 1, "config": {...}, "encoder": {...} | null, "annotations": {...}}``: the
layout version, the settings every client must share, the encoder that made the stored
vectors, and small values tools store with the collection (the CLI: the model it used).
Qdrant merges metadata by top-level key, so the whole record is written at once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

from sauerkraut_rag.encoders.fingerprint import EncoderFingerprint
from sauerkraut_rag.retrievers.encoder_check import bind_fingerprint, fingerprint_from_json
from sauerkraut_rag.retrievers.qdrant.config import METADATA_KEY, QdrantConfig
from sauerkraut_rag.retrievers.qdrant.engine import Engine
from sauerkraut_rag.retrievers.qdrant.filters import payload_index_fields

__all__ = ["RecordMixin"]


class RecordMixin:
    """Collection-level operations (the record, the encoder, stats, payload indexes);
    mixed into ``QdrantIndex``."""

    _engine: Engine
    _record: dict[str, Any]
    _config: QdrantConfig
    _collection: str

    def _guard(self) -> contextlib.AbstractContextManager[None]:  # provided by QdrantIndex
        raise NotImplementedError

    def _where(self) -> str:
        return f"the collection {self._collection!r} at {self._engine.location}"

    @property
    def encoder_fingerprint(self) -> EncoderFingerprint | None:
        """The encoder that made the stored vectors; ``None`` when not recorded yet."""
        return fingerprint_from_json(self._record.get("encoder"), where=self._where())

    def bind_encoder(self, fingerprint: EncoderFingerprint) -> None:
        """Refuse an encoder other than the one that made the stored vectors.

        Raises :class:`~sauerkraut_rag.errors.EncoderMismatchError`; an empty collection
        without a record records ``fingerprint`` (with its pool factor). The record is
        re-read first, so a fingerprint recorded by another client counts. See
        :mod:`sauerkraut_rag.retrievers.encoder_check`.
        """
        with self._guard():
            info = self._engine.read_collection()
            if info is not None and isinstance(info.metadata.get(METADATA_KEY), dict):
                self._record = info.metadata[METADATA_KEY]
            record = bind_fingerprint(
                self.encoder_fingerprint,
                fingerprint.with_pooling(self._config.pool_factor),
                where=self._where(),
                empty=self._engine.count(None) == 0,
                writable=True,
            )
            if record is not None:
                self._store_record({**self._record, "encoder": record.to_dict()})

    def _store_record(self, record: dict[str, Any]) -> None:
        with self._guard():
            self._engine.write_metadata({METADATA_KEY: record})
        self._record = record

    def annotation(self, name: str) -> Any:
        """A value stored with :meth:`annotate` (``None`` if absent)."""
        return dict(self._record.get("annotations") or {}).get(name)

    def annotate(self, name: str, value: Any) -> None:
        """Store a small JSON value in the collection's metadata under ``name`` (tools such
        as the CLI record how the collection was built this way)."""
        notes = dict(self._record.get("annotations") or {})
        notes[name] = value
        self._store_record({**self._record, "annotations": notes})

    def stats(self) -> dict[str, Any]:
        """Counts and collection facts (engine, shards, replication, status)."""
        with self._guard():
            info = self._engine.read_collection()
            documents = self._engine.count(None)
        details = {} if info is None else dict(info.details)
        return {
            "documents": documents,
            "collection": self._collection,
            "location": self._engine.location,
            **details,
        }

    def index_metadata(self, numbers: Sequence[str] = (), texts: Sequence[str] = ()) -> None:
        """Create Qdrant payload indexes so filters stay fast on large collections.

        Always indexes the fields behind ``$eq``/``$in``/``$ne``/``$nin``/``$exists`` of
        every key; ``numbers``: dotted keys filtered by ranges; ``texts``: keys filtered
        by ``$like``/``$ilike`` prefixes and substrings. Idempotent; on a cluster also
        what makes filtered HNSW search work well (local mode ignores indexes).
        """
        with self._guard():
            for field, kind in payload_index_fields(numbers, texts):
                self._engine.create_payload_index(field, kind)
