"""The command line's list of indexed files for a Qdrant target: a companion collection.

``sources.sqlite`` lives in an index folder; a Qdrant collection has no folder that every
machine sees, so its list lives next to it in Qdrant, in the payload-only collection
``<collection>__files``: one point per indexed file content (id ``uuid5`` of its
SHA-256; payload ``sha256``, ``source``, ``kind``, ``ids``, ``indexed_at``). Same
interface and semantics as :class:`~sauerkraut_rag.cli.manifest.SourceManifest`: a row
is written after all of the file's documents are stored, so a file counts as indexed
only when it is complete.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sauerkraut_rag.cli.manifest import IndexedFile

__all__ = ["FILES_SUFFIX", "QdrantManifest"]

FILES_SUFFIX = "__files"
_NAMESPACE = uuid.UUID("0b6a4f3e-51a1-5a57-9d0c-61e2a6f1b1c7")
_PAGE = 1000


def _point_id(sha256: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, sha256))


class QdrantManifest:
    """Read and update the file list of the Qdrant collection ``collection``."""

    def __init__(
        self, client: Any, collection: str, *, where: str, read_only: bool = False
    ) -> None:
        from sauerkraut_rag.retrievers.qdrant.client import translate_errors

        self._client = client
        self._name = collection + FILES_SUFFIX
        self._translate = lambda: translate_errors(where)
        with self._translate():
            self._exists = self._client.collection_exists(self._name)
            if not self._exists and not read_only:
                self._client.create_collection(self._name, vectors_config={})
                self._exists = True

    def close(self) -> None:
        """Nothing to release (the client belongs to the caller)."""

    def __enter__(self) -> QdrantManifest:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ reads

    def _scroll(self, flt: Any = None) -> list[IndexedFile]:
        if not self._exists:
            return []
        found: list[IndexedFile] = []
        offset = None
        with self._translate():
            while True:
                records, offset = self._client.scroll(
                    self._name, scroll_filter=flt, limit=_PAGE, offset=offset, with_payload=True
                )
                found += [_entry(r.payload) for r in records]
                if offset is None:
                    return found

    def find(self, sha256: str) -> IndexedFile | None:
        """The indexed file with this content hash, if any."""
        if not self._exists:
            return None
        with self._translate():
            records = self._client.retrieve(self._name, [_point_id(sha256)], with_payload=True)
        return _entry(records[0].payload) if records else None

    def replaced_by(self, source: str, sha256: str) -> list[IndexedFile]:
        """Earlier contents of ``source`` (rows with the same path and another hash)."""
        from qdrant_client import models

        flt = models.Filter(
            must=[models.FieldCondition(key="source", match=models.MatchValue(value=source))]
        )
        return [entry for entry in self._scroll(flt) if entry.sha256 != sha256]

    def entries(self) -> list[IndexedFile]:
        """Every indexed file, in path order."""
        return sorted(self._scroll(), key=lambda entry: entry.source)

    def counts(self) -> dict[str, int]:
        """Number of indexed files per kind."""
        counts: dict[str, int] = {}
        for entry in self._scroll():
            counts[entry.kind] = counts.get(entry.kind, 0) + 1
        return counts

    # ------------------------------------------------------------------ writes

    def record(self, entry: IndexedFile, *, drop: list[IndexedFile] | None = None) -> None:
        """Store ``entry`` and delete the rows in ``drop``."""
        from qdrant_client import models

        payload = {
            "sha256": entry.sha256,
            "source": entry.source,
            "kind": entry.kind,
            "ids": list(entry.ids),
            "indexed_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        point = models.PointStruct(id=_point_id(entry.sha256), vector={}, payload=payload)
        with self._translate():
            if drop:
                self.forget(drop)
            self._client.upsert(self._name, points=[point], wait=True)

    def forget(self, entries: list[IndexedFile]) -> None:
        """Delete the rows of ``entries``."""
        from qdrant_client import models

        if not entries:
            return
        ids = [_point_id(entry.sha256) for entry in entries]
        with self._translate():
            self._client.delete(self._name, models.PointIdsList(points=ids), wait=True)

    def move(self, entry: IndexedFile, source: str) -> IndexedFile:
        """Record that the file content of ``entry`` now lives at ``source`` (a rename)."""
        with self._translate():
            self._client.set_payload(
                self._name, payload={"source": source}, points=[_point_id(entry.sha256)], wait=True
            )
        return IndexedFile(entry.sha256, source, entry.kind, entry.ids)


def _entry(payload: Any) -> IndexedFile:
    data = dict(payload or {})
    return IndexedFile(
        sha256=str(data.get("sha256", "")),
        source=str(data.get("source", "")),
        kind=str(data.get("kind", "")),
        ids=tuple(str(i) for i in data.get("ids") or ()),
    )
