"""LlamaIndex ``MetadataFilters`` are translated into the filter language.

Every ``FilterOperator`` and ``FilterCondition`` of the installed llama-index-core has a
translation; each is checked against LlamaIndex's own in-memory evaluation
(``build_metadata_filter_fn``) on the metadata where LlamaIndex defines the operator
(scalars for comparisons, lists for ANY/ALL/CONTAINS), then end to end through a
``SauerkrautRetriever`` on a ``VoyagerIndex`` (SQLite evaluation), including the
issue's three filters that used to return nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from llama_index.core.schema import TextNode
from llama_index.core.vector_stores.types import (
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
)
from llama_index.core.vector_stores.utils import build_metadata_filter_fn

from sauerkraut_rag import MultiVectorEncoder
from sauerkraut_rag.errors import FilterError, FilterTypeError
from sauerkraut_rag.integrations.llamaindex import SauerkrautRetriever
from sauerkraut_rag.integrations.llamaindex._filters import OPERATORS, resolve_filters, to_filter
from sauerkraut_rag.retrievers.filters import matches, parse_filter

META: dict[str, dict[str, Any]] = {
    "n0": {"source": "a.txt", "lang": "de", "start_index": 0, "tags": ["x", "y"], "t": "Kohl"},
    "n1": {"source": "b.txt", "lang": "en", "start_index": 1200, "tags": ["y"], "t": "kohlrabi"},
    "n2": {"source": "c.txt", "lang": "fr", "start_index": 2500.5, "tags": [], "t": ""},
    "n3": {"source": "a.txt", "lang": "de", "start_index": 999, "t": "Sauerkraut 50%"},
    "n4": {"source": "d.txt", "lang": None, "tags": ["x"], "t": None},
    "n5": {},
}

SCALAR_CASES = [
    ("source", FilterOperator.EQ, "a.txt"),
    ("source", FilterOperator.NE, "a.txt"),
    ("start_index", FilterOperator.GT, 1000),
    ("start_index", FilterOperator.GTE, 999),
    ("start_index", FilterOperator.LT, 1200),
    ("start_index", FilterOperator.LTE, 2500.5),
    ("source", FilterOperator.IN, ["a.txt", "b.txt"]),
    ("source", FilterOperator.NIN, ["a.txt", "b.txt"]),
    ("lang", FilterOperator.IN, []),
    ("t", FilterOperator.TEXT_MATCH, "ohl"),
    ("t", FilterOperator.TEXT_MATCH_INSENSITIVE, "KOHL"),
    ("t", FilterOperator.TEXT_MATCH, "50%"),
    ("tags", FilterOperator.ANY, ["x", "z"]),
    ("tags", FilterOperator.ALL, ["x", "y"]),
    ("tags", FilterOperator.CONTAINS, "y"),
    ("tags", FilterOperator.IS_EMPTY, None),
    ("t", FilterOperator.IS_EMPTY, None),
    ("lang", FilterOperator.IS_EMPTY, None),
]
"""(key, operator, value) where LlamaIndex's own evaluation is defined for every node."""


def _llamaindex(filters: MetadataFilters) -> set[str]:
    """Ids LlamaIndex's in-memory evaluation keeps (text operators need strings)."""
    keep = build_metadata_filter_fn(lambda node_id: META[node_id], filters)
    out = set()
    for node_id, meta in META.items():
        try:
            if keep(node_id):
                out.add(node_id)
        except TypeError:  # TEXT_MATCH on a non-string value: LlamaIndex raises
            assert meta.get(filters.filters[0].key) is not None
    return out


def _ours(filters: MetadataFilters) -> set[str]:
    tree = parse_filter(to_filter(filters))
    return {node_id for node_id, meta in META.items() if tree is None or matches(tree, meta)}


def test_every_operator_and_condition_has_a_translation() -> None:
    assert set(OPERATORS) == {op.value for op in FilterOperator}
    covered = {op for _, op, _ in SCALAR_CASES}
    assert covered == set(FilterOperator)
    for condition in FilterCondition:
        flt = MetadataFilters(
            filters=[
                MetadataFilter(key="lang", value="de"),
                MetadataFilter(key="lang", value="en"),
            ],
            condition=condition,
        )
        assert _ours(flt) == _llamaindex(flt)


@pytest.mark.parametrize(("key", "op", "value"), SCALAR_CASES, ids=lambda x: str(x))
def test_operator_agrees_with_llamaindex(key: str, op: FilterOperator, value: Any) -> None:
    flt = MetadataFilters(filters=[MetadataFilter(key=key, value=value, operator=op)])
    if op in (FilterOperator.TEXT_MATCH, FilterOperator.TEXT_MATCH_INSENSITIVE):
        strings = {i for i, m in META.items() if isinstance(m.get(key), str)}
        assert _ours(flt) & strings == _llamaindex(flt) & strings
        assert _ours(flt) <= strings  # non-strings never match (LlamaIndex raises instead)
    else:
        assert _ours(flt) == _llamaindex(flt)


def test_nested_filters_and_not() -> None:
    nested = MetadataFilters(
        filters=[
            MetadataFilter(key="lang", value="de"),
            MetadataFilters(
                filters=[
                    MetadataFilter(key="start_index", value=900, operator=FilterOperator.GT),
                    MetadataFilter(key="tags", value=["x"], operator=FilterOperator.ANY),
                ],
                condition=FilterCondition.OR,
            ),
        ],
        condition=FilterCondition.AND,
    )
    assert _ours(nested) == {"n0", "n3"}
    negated = MetadataFilters(filters=[nested], condition=FilterCondition.NOT)
    assert _ours(negated) == set(META) - {"n0", "n3"}
    empty_inside = MetadataFilters(
        filters=[MetadataFilters(filters=[]), MetadataFilter(key="lang", value="fr")],
        condition=FilterCondition.OR,
    )
    assert to_filter(empty_inside) is None  # an empty group matches everything
    assert _ours(MetadataFilters(filters=[MetadataFilters(filters=[])], condition="not")) == set()
    assert resolve_filters(MetadataFilters(filters=[])) is None


def test_untranslatable_input_raises_typed_errors() -> None:
    future = MetadataFilter.model_construct(key="year", value=[1, 2], operator="between")
    with pytest.raises(FilterError, match=r"'between'.*Supported: EQ \('=='\).*IS_EMPTY"):
        to_filter(MetadataFilters(filters=[future]))
    with pytest.raises(FilterTypeError, match="list value"):
        to_filter(MetadataFilters(filters=[MetadataFilter(key="a", value="x", operator="in")]))
    with pytest.raises(FilterTypeError, match="numbers only"):
        to_filter(MetadataFilters(filters=[MetadataFilter(key="d", value="2024", operator=">")]))
    with pytest.raises(FilterError, match=r"\$regex"):
        resolve_filters({"a": {"$regex": "x"}})
    with pytest.raises(FilterTypeError, match="MetadataFilters"):
        resolve_filters("lang=de")


def test_issue_filters_through_the_retriever(
    text_encoder: MultiVectorEncoder, tmp_path: Path
) -> None:
    nodes = [TextNode(id_=i, text=f"Sauerkraut und Kohl {i}", metadata=m) for i, m in META.items()]
    SauerkrautRetriever.from_nodes(nodes, text_encoder, tmp_path / "idx").close()
    cases = [
        (MetadataFilter(key="source", value=["a.txt", "b.txt"], operator="in"), {"n0", "n1", "n3"}),
        (
            MetadataFilters(
                filters=[
                    MetadataFilter(key="lang", value="de"),
                    MetadataFilter(key="lang", value="en"),
                ],
                condition="or",
            ),
            {"n0", "n1", "n3"},
        ),
        (MetadataFilter(key="start_index", value=1000, operator=">"), {"n1", "n2"}),
        ({"start_index": {"$gt": 1000}}, {"n1", "n2"}),
    ]
    for flt, expected in cases:
        filters = MetadataFilters(filters=[flt]) if isinstance(flt, MetadataFilter) else flt
        with SauerkrautRetriever(
            text_encoder, tmp_path / "idx", filters=filters, similarity_top_k=10
        ) as retriever:
            assert {r.node.node_id for r in retriever.retrieve("Kohl")} == expected
