"""This package's record in a collection's metadata (key ``sauerkraut_rag``).

``{"format": 1, "config": {...}, "encoder": {...} | null, "annotations": {...}}``: the
layout version, the settings every client must share, the encoder that made the stored
vectors, and small values tools store with the collection (the CLI: the model it used).
Qdrant merges metadata by top-level key, so the whole record is written at once.
"""

from __future__ import annotations

import contextlib
from typing import Any

from sauerkraut_rag.retrievers.qdrant.config import METADATA_KEY
from sauerkraut_rag.retrievers.qdrant.engine import Engine

__all__ = ["RecordMixin"]


class RecordMixin:
    """Reading and writing the record; mixed into ``QdrantIndex``."""

    _engine: Engine
    _record: dict[str, Any]

    def _guard(self) -> contextlib.AbstractContextManager[None]:  # provided by QdrantIndex
        raise NotImplementedError

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
