"""``langchain_core.indexing.index`` keeps one copy of each document in
``SauerkrautVectorStore`` with a record manager, in incremental and full cleanup modes
(issue 15, item 1), sync and async, on a persistent folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from langchain_core.documents import Document
from langchain_core.indexing import InMemoryRecordManager, aindex, index

from sauerkraut_rag import MultiVectorEncoder
from sauerkraut_rag.integrations.langchain import SauerkrautVectorStore
from sauerkraut_rag.retrievers.listing import iter_documents

KEY = "sha256"  # a collision-resistant record key (LangChain warns about its SHA-1 default)


def contents(store: SauerkrautVectorStore) -> list[tuple[str, str]]:
    """``(source, text)`` of every stored document, sorted."""
    return sorted((d.metadata["source"], d.payload or "") for d in iter_documents(store.index))


def docs(*items: tuple[str, str]) -> list[Document]:
    return [Document(page_content=text, metadata={"source": source}) for source, text in items]


@pytest.fixture
def manager() -> InMemoryRecordManager:
    record_manager = InMemoryRecordManager("sauerkraut/test")
    record_manager.create_schema()
    return record_manager


def test_incremental_cleanup(
    text_encoder: MultiVectorEncoder, tmp_path: Path, manager: InMemoryRecordManager
) -> None:
    first = docs(("a.txt", "Die Zugspitze ist hoch."), ("b.txt", "Berlin ist groß."))
    with SauerkrautVectorStore(text_encoder, tmp_path / "idx") as store:
        run = index(
            first, manager, store, cleanup="incremental", source_id_key="source", key_encoder=KEY
        )
        assert (run["num_added"], run["num_skipped"], run["num_deleted"]) == (2, 0, 0)
    with SauerkrautVectorStore(text_encoder, tmp_path / "idx") as store:  # reopened folder
        run = index(
            first, manager, store, cleanup="incremental", source_id_key="source", key_encoder=KEY
        )
        assert (run["num_added"], run["num_skipped"], run["num_deleted"]) == (0, 2, 0)
        assert len(store) == 2
        changed = docs(("a.txt", "Die Zugspitze ist 2962 m hoch."))
        run = index(
            changed, manager, store, cleanup="incremental", source_id_key="source", key_encoder=KEY
        )
        assert (run["num_added"], run["num_deleted"]) == (1, 1)
        assert contents(store) == [
            ("a.txt", "Die Zugspitze ist 2962 m hoch."),
            ("b.txt", "Berlin ist groß."),
        ]
        ids = manager.list_keys()
        assert sorted(doc.id for doc in store.get_by_ids(ids)) == sorted(ids)


def test_full_cleanup(
    text_encoder: MultiVectorEncoder, tmp_path: Path, manager: InMemoryRecordManager
) -> None:
    with SauerkrautVectorStore(text_encoder, tmp_path / "idx") as store:
        index(
            docs(("a.txt", "Eins."), ("b.txt", "Zwei."), ("c.txt", "Drei.")),
            manager,
            store,
            cleanup="full",
            source_id_key="source",
            key_encoder=KEY,
        )
        run = index(
            docs(("b.txt", "Zwei."), ("c.txt", "Drei, neu.")),
            manager,
            store,
            cleanup="full",
            source_id_key="source",
            key_encoder=KEY,
        )
        assert (run["num_added"], run["num_skipped"], run["num_deleted"]) == (1, 1, 2)
        assert contents(store) == [("b.txt", "Zwei."), ("c.txt", "Drei, neu.")]
        hits = store.similarity_search("Zwei", k=4)
        assert len({hit.id for hit in hits}) == len(hits) == 2


async def test_async_incremental(
    text_encoder: MultiVectorEncoder, manager: InMemoryRecordManager
) -> None:
    with SauerkrautVectorStore(text_encoder) as store:
        first = docs(("a.txt", "Eins."), ("a.txt", "Zwei."))
        await aindex(
            first, manager, store, cleanup="incremental", source_id_key="source", key_encoder=KEY
        )
        run = await aindex(
            docs(("a.txt", "Eins.")),
            manager,
            store,
            cleanup="incremental",
            source_id_key="source",
            key_encoder=KEY,
        )
        assert (run["num_skipped"], run["num_deleted"]) == (1, 1)
        assert contents(store) == [("a.txt", "Eins.")]
