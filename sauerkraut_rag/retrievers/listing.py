"""Walking every stored document of any :class:`MultiVectorIndex` (no query, no model).

Built on the protocol's ``list_ids`` pages and ``get``, so it works on every backend and
never scores anything: used to find documents by their metadata (a LlamaIndex reference
document's nodes, a command-line filter key) where no vector is involved.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from sauerkraut_rag.retrievers.protocol import MultiVectorIndex, StoredDocument
from sauerkraut_rag.types import Metadata

__all__ = ["PAGE_SIZE", "ids_where", "iter_documents"]

PAGE_SIZE = 1000
"""Ids fetched per ``list_ids`` page (and documents per ``get``)."""


def iter_documents(
    index: MultiVectorIndex, *, page_size: int = PAGE_SIZE
) -> Iterator[StoredDocument]:
    """Every stored document (id, metadata, payload), page by page, in the index's order."""
    cursor: str | None = None
    while True:
        page = index.list_ids(page_size, cursor)
        if page.ids:
            yield from index.get(page.ids)
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


def ids_where(index: MultiVectorIndex, predicate: Callable[[Metadata], bool]) -> list[str]:
    """Ids of the stored documents whose metadata satisfies ``predicate``."""
    return [doc.id for doc in iter_documents(index) if predicate(doc.metadata)]
