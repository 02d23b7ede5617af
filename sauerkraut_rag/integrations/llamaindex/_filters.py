"""LlamaIndex ``MetadataFilters`` -> the package's filter language (evaluated by the index).

Every ``FilterOperator`` and ``FilterCondition`` of llama-index-core translates; an
operator without a translation (a newer LlamaIndex) raises
:class:`~sauerkraut_rag.errors.FilterError` naming it. Translations::

    EQ NE GT GTE LT LTE IN NIN   ->  $eq $ne $gt $gte $lt $lte $in $nin
    ANY (list contains any)      ->  $in   (a list in the metadata matches when any element does)
    ALL (list contains all)      ->  $and of $eq, one per value
    CONTAINS (list contains v)   ->  $eq v (any element); use TEXT_MATCH for substrings
    TEXT_MATCH / _INSENSITIVE    ->  $like / $ilike "%value%" (value escaped)
    IS_EMPTY                     ->  missing, null, "", or a list without scalar elements
    AND / OR / NOT conditions    ->  $and / $or / $not of $or (none of the filters matches)

Nested ``MetadataFilters`` nest; an empty one matches everything (as LlamaIndex's own
in-memory evaluation of an empty filter list).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from llama_index.core.vector_stores.types import (
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
)

from sauerkraut_rag.errors import FilterError, FilterTypeError
from sauerkraut_rag.retrievers.filters import FILTER_NODES, escape_like, parse_filter
from sauerkraut_rag.retrievers.protocol import MetadataFilter as IndexFilter

__all__ = ["OPERATORS", "resolve_filters", "to_filter"]

Translation = Callable[[str, Any], dict[str, Any]]
_NOTHING: dict[str, Any] = {"_": {"$in": []}}
"""A filter no document matches (an empty ``$in``)."""


def _list(value: Any, op: str) -> list[Any]:
    if not isinstance(value, (list, tuple)):
        raise FilterTypeError(
            f"Expected a list value for the LlamaIndex operator {op}, got "
            f"{type(value).__name__} ({value!r:.60}). Example: "
            f"MetadataFilter(key='source', value=['a.txt', 'b.txt'], operator='{op}')."
        )
    return list(value)


def _text(value: Any, op: str) -> str:
    if not isinstance(value, str):
        raise FilterTypeError(
            f"Expected a string value for the LlamaIndex operator {op}, got "
            f"{type(value).__name__} ({value!r:.60})."
        )
    return f"%{escape_like(value)}%"


def _all(key: str, value: Any) -> dict[str, Any]:
    values = _list(value, "all")
    if not values:
        raise FilterError(
            f"Expected at least one value for the LlamaIndex operator ALL on {key!r}, got []."
        )
    return {"$and": [{key: {"$eq": v}} for v in values]}


def _is_empty(key: str, value: Any) -> dict[str, Any]:
    any_scalar = {
        "$or": [
            {key: {"$like": "%"}},
            {key: {"$gte": 0}},
            {key: {"$lt": 0}},
            {key: {"$in": [True, False, None]}},
        ]
    }
    return {
        "$or": [
            {key: {"$exists": False}},
            {key: {"$in": [None, ""]}},
            {"$and": [{key: {"$exists": True}}, {"$not": any_scalar}]},
        ]
    }


OPERATORS: dict[str, Translation] = {
    FilterOperator.EQ.value: lambda k, v: {k: {"$eq": v}},
    FilterOperator.NE.value: lambda k, v: {k: {"$ne": v}},
    FilterOperator.GT.value: lambda k, v: {k: {"$gt": v}},
    FilterOperator.GTE.value: lambda k, v: {k: {"$gte": v}},
    FilterOperator.LT.value: lambda k, v: {k: {"$lt": v}},
    FilterOperator.LTE.value: lambda k, v: {k: {"$lte": v}},
    FilterOperator.IN.value: lambda k, v: {k: {"$in": _list(v, "in")}},
    FilterOperator.NIN.value: lambda k, v: {k: {"$nin": _list(v, "nin")}},
    FilterOperator.ANY.value: lambda k, v: {k: {"$in": _list(v, "any")}},
    FilterOperator.ALL.value: _all,
    FilterOperator.CONTAINS.value: lambda k, v: {k: {"$eq": v}},
    FilterOperator.TEXT_MATCH.value: lambda k, v: {k: {"$like": _text(v, "text_match")}},
    FilterOperator.TEXT_MATCH_INSENSITIVE.value: lambda k, v: {
        k: {"$ilike": _text(v, "text_match_insensitive")}
    },
    FilterOperator.IS_EMPTY.value: _is_empty,
}
"""Translation of each ``FilterOperator`` value."""


def _leaf(item: MetadataFilter) -> dict[str, Any]:
    op = getattr(item.operator, "value", item.operator)
    translate = OPERATORS.get(op)
    if translate is None:
        raise FilterError(
            f"The LlamaIndex filter operator {op!r} (key {item.key!r}) has no translation "
            f"into sauerkraut-rag's filter language. Supported: "
            f"{', '.join(f'{FilterOperator(v).name} ({v!r})' for v in OPERATORS)}."
        )
    out = translate(item.key, item.value)
    try:
        parse_filter(out)
    except FilterError as exc:
        raise type(exc)(
            f"The LlamaIndex filter MetadataFilter(key={item.key!r}, operator={op!r}, "
            f"value={item.value!r:.60}) cannot be evaluated: {exc}"
        ) from exc
    return out


def to_filter(filters: MetadataFilters) -> dict[str, Any] | None:
    """The filter-language dict of ``filters``; ``None`` when it matches everything."""
    parts: list[dict[str, Any] | None] = []
    for item in filters.filters:
        if isinstance(item, MetadataFilters):
            parts.append(to_filter(item))
        elif isinstance(item, MetadataFilter):
            parts.append(_leaf(item))
        else:
            raise FilterTypeError(
                f"Expected MetadataFilter or MetadataFilters inside MetadataFilters, got "
                f"{type(item).__name__}."
            )
    condition = getattr(filters.condition, "value", filters.condition) or "and"
    if not parts:
        return None
    if condition == FilterCondition.AND.value:
        kept = [p for p in parts if p is not None]
        return None if not kept else kept[0] if len(kept) == 1 else {"$and": kept}
    if condition == FilterCondition.OR.value:
        if any(p is None for p in parts):
            return None
        return parts[0] if len(parts) == 1 else {"$or": parts}
    if condition == FilterCondition.NOT.value:
        if any(p is None for p in parts):
            return _NOTHING
        return {"$not": parts[0] if len(parts) == 1 else {"$or": parts}}
    raise FilterError(
        f"The LlamaIndex filter condition {condition!r} has no translation; supported: "
        f"{', '.join(c.value for c in FilterCondition)}."
    )


def resolve_filters(filters: Any) -> IndexFilter | None:
    """``filters=`` of the LlamaIndex retrievers: ``MetadataFilters`` (translated), a dict
    in the filter language or a parsed tree (checked now), or a callable (passed on)."""
    if filters is None:
        return None
    if isinstance(filters, MetadataFilters):
        return to_filter(filters) if filters.filters else None
    if isinstance(filters, (dict, *FILTER_NODES)):
        parse_filter(filters)
        return filters
    if callable(filters):
        return filters
    raise FilterTypeError(
        "Expected filters to be LlamaIndex MetadataFilters, a filter dict such as "
        "{'lang': 'de'} or {'year': {'$gte': 2020}}, or a callable(metadata) -> bool, got "
        f"{type(filters).__name__}."
    )
