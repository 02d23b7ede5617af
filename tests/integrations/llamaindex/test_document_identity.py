"""One copy of each document in the LlamaIndex text retriever (issue 15, row 1): reader
documents with random ids get stable ones from ``file_path``; unchanged documents are
skipped, changed ones replace their nodes, ``delete_ref_doc`` removes a document."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from llama_index.core import SimpleDirectoryReader
from llama_index.core.node_parser import SentenceSplitter
from llama_index.core.schema import Document

from sauerkraut_rag import MultiVectorEncoder
from sauerkraut_rag.integrations.llamaindex import SauerkrautRetriever
from sauerkraut_rag.retrievers.listing import iter_documents

FILES = {
    "zugspitze.txt": "Die Zugspitze ist 2962 m hoch. Sie liegt in Bayern.",
    "berlin.txt": "Berlin ist die Hauptstadt. Die Stadt hat viele Museen.",
    "rhein.txt": "Der Rhein fließt durch Köln. Er mündet in die Nordsee.",
}


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    folder.mkdir()
    for name, text in FILES.items():
        (folder / name).write_text(text, "utf-8")
    return folder


def stored_nodes(retriever: SauerkrautRetriever) -> dict[str, str]:
    """node id -> reference document id of every stored node."""
    return {
        doc.id: doc.metadata["_llamaindex"]["ref_doc_id"] for doc in iter_documents(retriever.index)
    }


def count_encodes(encoder: MultiVectorEncoder, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = encoder.encode_documents

    def spy(items, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(len(items))
        return real(items, **kwargs)

    monkeypatch.setattr(encoder, "encode_documents", spy)
    return calls


def test_loading_a_folder_twice_keeps_one_copy(
    text_encoder: MultiVectorEncoder, docs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = tmp_path / "li_index"
    with SauerkrautRetriever.from_documents(
        SimpleDirectoryReader(str(docs)).load_data(), text_encoder, index, similarity_top_k=4
    ) as first:
        before = stored_nodes(first)
    assert len(before) == 3
    assert sorted(before.values()) == sorted(f"{docs / name}_part_0" for name in FILES)
    calls = count_encodes(text_encoder, monkeypatch)
    again = SimpleDirectoryReader(str(docs)).load_data()  # new random ids, same files
    with SauerkrautRetriever.from_documents(
        again, text_encoder, index, similarity_top_k=4
    ) as second:
        assert stored_nodes(second) == before  # nothing added, nothing replaced
        hits = second.retrieve("Wie hoch ist die Zugspitze?")
        texts = [hit.node.get_content() for hit in hits]
        assert len(texts) == len(set(texts)) == 3  # no duplicates among the hits
        assert {hit.node.ref_doc_id for hit in hits} == set(before.values())
    assert calls == []  # unchanged documents are not even encoded


def test_changed_file_replaces_its_nodes(
    text_encoder: MultiVectorEncoder, docs: Path, tmp_path: Path
) -> None:
    with SauerkrautRetriever.from_documents(
        SimpleDirectoryReader(str(docs)).load_data(), text_encoder, tmp_path / "idx"
    ) as retriever:
        before = stored_nodes(retriever)
        (docs / "berlin.txt").write_text("Berlin ist die Hauptstadt Deutschlands.", "utf-8")
        flags = retriever.refresh_ref_docs(SimpleDirectoryReader(str(docs)).load_data())
        after = stored_nodes(retriever)
    berlin = f"{docs / 'berlin.txt'}_part_0"
    assert flags == [name == "berlin.txt" for name in sorted(FILES)]
    assert len(after) == 3 and Counter(after.values())[berlin] == 1
    assert {i for i, ref in before.items() if ref != berlin} <= after.keys()  # kept
    assert not {i for i, ref in before.items() if ref == berlin} & after.keys()  # replaced


def test_explicit_ids_hashes_and_delete_ref_doc(
    text_encoder: MultiVectorEncoder, tmp_path: Path
) -> None:
    splitter = SentenceSplitter(chunk_size=16, chunk_overlap=0)
    long = Document(id_="long", text=" ".join(f"Satz {i} ist kurz." for i in range(12)))
    short = Document(id_="short", text="Ein kurzer Text.", metadata={"lang": "de"})
    with SauerkrautRetriever(text_encoder, tmp_path / "idx") as retriever:
        ids = retriever.add_documents([long, short], transformations=[splitter])
        nodes = stored_nodes(retriever)
        assert sorted(ids) == sorted(nodes) and Counter(nodes.values())["long"] > 1
        assert retriever.refresh_ref_docs([long, short], transformations=[splitter]) == [
            False,
            False,
        ]
        assert stored_nodes(retriever) == nodes
        # metadata is part of the document: a change replaces the document's nodes
        changed = Document(id_="short", text="Ein kurzer Text.", metadata={"lang": "en"})
        assert retriever.refresh_ref_docs([changed]) == [True]
        assert Counter(stored_nodes(retriever).values())["short"] == 1
        removed = retriever.delete_ref_doc("long")
        assert removed == Counter(nodes.values())["long"]
        assert set(stored_nodes(retriever).values()) == {"short"}
        assert retriever.delete_ref_doc("long") == 0
        retriever.insert(Document(id_="third", text="Noch ein Text."), transformations=[])
        [hit] = [h for h in retriever.retrieve("Noch ein Text") if h.node.node_id == "third"]
        assert hit.node.ref_doc_id == "third"


def test_a_file_that_shrinks_loses_its_old_parts(
    text_encoder: MultiVectorEncoder, tmp_path: Path
) -> None:
    """Readers that split a file (a PDF reader: one document per page) give parts; parts
    that are no longer produced are deleted with the file's next load."""
    path = str(tmp_path / "report.pdf")

    def pages(*texts: str) -> list[Document]:
        return [
            Document(text=t, metadata={"file_path": path, "page_label": str(i + 1)})
            for i, t in enumerate(texts)
        ]

    with SauerkrautRetriever(text_encoder, tmp_path / "idx") as retriever:
        retriever.add_documents(pages("Seite eins.", "Seite zwei.", "Seite drei."))
        assert sorted(stored_nodes(retriever).values()) == [f"{path}_part_{i}" for i in range(3)]
        retriever.add_documents(pages("Seite eins.", "Seite zwei, neu."))
        assert sorted(stored_nodes(retriever).values()) == [f"{path}_part_{i}" for i in range(2)]
