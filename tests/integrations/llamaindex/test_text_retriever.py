"""SauerkrautRetriever specifics: node round trip, documents, filters, writes, errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from llama_index.core.node_parser import SentenceSplitter
from llama_index.core.schema import Document, ImageNode, MetadataMode, TextNode
from llama_index.core.vector_stores.types import (
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
)

from sauerkraut_rag import MultiVectorEncoder
from sauerkraut_rag.errors import (
    DimensionMismatchError,
    DuplicateIdError,
    InvalidInputError,
    InvalidInputTypeError,
)
from sauerkraut_rag.integrations.llamaindex import SauerkrautRetriever
from sauerkraut_rag.retrievers.voyager.index import VoyagerIndex
from tests.integrations.llamaindex.conftest import TEXTS

QUERY = "fermented cabbage"


@pytest.fixture
def retriever(
    text_encoder: MultiVectorEncoder, text_nodes: list[TextNode], tmp_path: Path
) -> SauerkrautRetriever:
    with SauerkrautRetriever.from_nodes(
        text_nodes, text_encoder, tmp_path / "idx", similarity_top_k=len(text_nodes)
    ) as built:
        yield built


def test_nodes_round_trip_with_ids_text_metadata_and_source(
    retriever: SauerkrautRetriever, text_nodes: list[TextNode]
) -> None:
    by_id = {node.node_id: node for node in text_nodes}
    results = retriever.retrieve(QUERY)
    assert {r.node.node_id for r in results} == set(by_id)
    for scored in results:
        original = by_id[scored.node.node_id]
        assert scored.node.text == original.text
        assert scored.node.metadata == original.metadata
        assert scored.node.ref_doc_id == original.ref_doc_id
        assert scored.node.get_content(MetadataMode.LLM) == original.get_content(MetadataMode.LLM)


def test_excluded_metadata_keys_survive(text_encoder: MultiVectorEncoder, tmp_path: Path) -> None:
    node = TextNode(
        id_="x",
        text="Sauerkraut is fermented cabbage.",
        metadata={"secret": "s", "title": "t"},
        excluded_llm_metadata_keys=["secret"],
        excluded_embed_metadata_keys=["title"],
    )
    with SauerkrautRetriever.from_nodes([node], text_encoder, tmp_path / "idx") as retriever:
        (hit,) = retriever.retrieve(QUERY)
    assert hit.node.excluded_llm_metadata_keys == ["secret"]
    assert hit.node.excluded_embed_metadata_keys == ["title"]
    assert "secret" not in hit.node.get_content(MetadataMode.LLM)


def test_documents_without_splitting_keep_their_ids(
    text_encoder: MultiVectorEncoder, tmp_path: Path
) -> None:
    docs = [Document(id_=f"doc-{i}", text=text) for i, text in enumerate(TEXTS[:3])]
    with SauerkrautRetriever.from_documents(
        docs, text_encoder, tmp_path / "idx", transformations=[], similarity_top_k=5
    ) as retriever:
        results = retriever.retrieve(QUERY)
    assert sorted(r.node.node_id for r in results) == ["doc-0", "doc-1", "doc-2"]
    assert all(type(r.node) is TextNode for r in results)


def test_documents_are_split_into_nodes_pointing_at_their_document(
    text_encoder: MultiVectorEncoder, tmp_path: Path
) -> None:
    long_text = " ".join(TEXTS * 4)
    splitter = SentenceSplitter(chunk_size=60, chunk_overlap=0)
    doc = Document(id_="long", text=long_text, metadata={"file_name": "long.txt"})
    with SauerkrautRetriever.from_documents(
        [doc], text_encoder, tmp_path / "idx", transformations=[splitter], similarity_top_k=50
    ) as retriever:
        n_chunks = len(splitter.get_nodes_from_documents([doc]))
        results = retriever.retrieve(QUERY)
    assert n_chunks > 1
    assert len(results) == n_chunks == len(retriever)
    assert {r.node.ref_doc_id for r in results} == {"long"}
    assert all(r.node.metadata == {"file_name": "long.txt"} for r in results)


@pytest.mark.parametrize(
    "filters",
    [
        {"position": 3},
        lambda metadata: metadata.get("position") == 3,
        MetadataFilters(filters=[MetadataFilter(key="position", value=3)]),
    ],
    ids=["dict", "callable", "llamaindex"],
)
def test_filters_restrict_results(
    text_encoder: MultiVectorEncoder, text_nodes: list[TextNode], tmp_path: Path, filters: object
) -> None:
    SauerkrautRetriever.from_nodes(text_nodes, text_encoder, tmp_path / "idx").close()
    with SauerkrautRetriever(text_encoder, tmp_path / "idx", filters=filters) as retriever:
        results = retriever.retrieve(QUERY)
    assert [r.node.node_id for r in results] == ["node-3"]


def test_llamaindex_filter_operators(
    text_encoder: MultiVectorEncoder, text_nodes: list[TextNode], tmp_path: Path
) -> None:
    filters = MetadataFilters(
        filters=[MetadataFilter(key="position", value=[1, 4, 5], operator=FilterOperator.IN)]
    )
    SauerkrautRetriever.from_nodes(text_nodes, text_encoder, tmp_path / "idx").close()
    with SauerkrautRetriever(
        text_encoder, tmp_path / "idx", filters=filters, similarity_top_k=10
    ) as retriever:
        ids = sorted(r.node.node_id for r in retriever.retrieve(QUERY))
    assert ids == ["node-1", "node-4", "node-5"]


def test_add_replace_and_delete(retriever: SauerkrautRetriever, text_nodes: list[TextNode]) -> None:
    with pytest.raises(DuplicateIdError):
        retriever.add_nodes([text_nodes[0]])
    changed = TextNode(id_="node-0", text="Completely new text about fermented cabbage.")
    assert retriever.add_nodes([changed], replace=True) == ["node-0"]
    assert len(retriever) == len(text_nodes)
    texts = {r.node.node_id: r.node.text for r in retriever.retrieve(QUERY)}
    assert texts["node-0"] == changed.text
    assert retriever.delete_nodes(["node-0", "node-1", "unknown"]) == 2
    assert len(retriever) == len(text_nodes) - 2
    assert {"node-0", "node-1"}.isdisjoint(r.node.node_id for r in retriever.retrieve(QUERY))


def test_adding_nothing_is_a_no_op(retriever: SauerkrautRetriever) -> None:
    before = len(retriever)
    assert retriever.add_nodes([]) == []
    assert len(retriever) == before


def test_image_nodes_and_non_nodes_are_rejected(retriever: SauerkrautRetriever) -> None:
    with pytest.raises(InvalidInputTypeError, match="SauerkrautPageRetriever"):
        retriever.add_nodes([ImageNode(image_path="page.png")])
    with pytest.raises(InvalidInputTypeError, match="TextNode"):
        retriever.add_nodes(["just a string"])  # type: ignore[list-item]


def test_non_json_metadata_is_rejected_before_writing(retriever: SauerkrautRetriever) -> None:
    before = len(retriever)
    bad = TextNode(id_="bad", text="x", metadata={"when": object()})
    with pytest.raises(InvalidInputTypeError, match="JSON"):
        retriever.add_nodes([bad])
    assert len(retriever) == before


def test_reserved_metadata_key_is_rejected(retriever: SauerkrautRetriever) -> None:
    with pytest.raises(InvalidInputError, match="reserved"):
        retriever.add_nodes([TextNode(text="x", metadata={"_llamaindex": 1})])


def test_page_model_is_rejected(page_encoder: MultiVectorEncoder, tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="text model"):
        SauerkrautRetriever(page_encoder, tmp_path / "idx")


def test_index_of_another_dimension_is_rejected(
    text_encoder: MultiVectorEncoder, tmp_path: Path
) -> None:
    with (
        VoyagerIndex(tmp_path / "idx", dim=text_encoder.dim + 1) as index,
        pytest.raises(DimensionMismatchError, match="dim"),
    ):
        SauerkrautRetriever(text_encoder, index)


def test_wrong_index_type_is_rejected(text_encoder: MultiVectorEncoder) -> None:
    with pytest.raises(InvalidInputTypeError, match="MultiVectorIndex"):
        SauerkrautRetriever(text_encoder, {"not": "an index"})  # type: ignore[arg-type]


def test_an_index_object_is_used_but_not_closed(
    text_encoder: MultiVectorEncoder, text_nodes: list[TextNode], tmp_path: Path
) -> None:
    with VoyagerIndex(tmp_path / "idx", dim=text_encoder.dim) as index:
        with SauerkrautRetriever.from_nodes(text_nodes, text_encoder, index):
            pass
        assert len(index) == len(text_nodes)  # still open after the retriever closed


def test_temporary_index_is_deleted_on_close(
    text_encoder: MultiVectorEncoder, text_nodes: list[TextNode]
) -> None:
    retriever = SauerkrautRetriever.from_nodes(text_nodes, text_encoder)
    folder = Path(retriever.index.path)
    assert folder.is_dir()
    assert len(retriever.retrieve(QUERY)) == 4
    retriever.close()
    assert not folder.exists()


def test_read_only_reader_next_to_the_writer(
    text_encoder: MultiVectorEncoder, text_nodes: list[TextNode], tmp_path: Path
) -> None:
    with (
        SauerkrautRetriever.from_nodes(text_nodes, text_encoder, tmp_path / "idx") as writer,
        SauerkrautRetriever(text_encoder, tmp_path / "idx", read_only=True) as reader,
    ):
        assert [r.node.node_id for r in reader.retrieve(QUERY)] == [
            r.node.node_id for r in writer.retrieve(QUERY)
        ]


def test_index_options_create_the_index(
    text_encoder: MultiVectorEncoder, text_nodes: list[TextNode], tmp_path: Path
) -> None:
    with SauerkrautRetriever.from_nodes(
        text_nodes, text_encoder, tmp_path / "idx", index_options={"strategy": "tokens"}
    ) as retriever:
        assert retriever.index.config.strategy == "tokens"
        assert len(retriever.retrieve(QUERY)) == 4


@pytest.mark.parametrize("new_ids", [["fresh", "node-2"], ["fresh", "fresh"]])
def test_duplicate_ids_are_refused_before_encoding(
    retriever: SauerkrautRetriever, monkeypatch: pytest.MonkeyPatch, new_ids: list[str]
) -> None:
    calls: list[object] = []
    monkeypatch.setattr(retriever.encoder, "encode_documents", lambda *a, **k: calls.append(a))
    before = len(retriever)
    with pytest.raises(DuplicateIdError, match="replace=True"):
        retriever.add_nodes([TextNode(id_=node_id, text="x") for node_id in new_ids])
    assert calls == [] and len(retriever) == before
