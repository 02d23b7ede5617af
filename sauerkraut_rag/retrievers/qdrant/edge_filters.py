"""``qdrant_client.models.Filter`` -> the equivalent ``qdrant_edge.Filter``.

The two libraries describe the same server-side filter with different classes; filters
are compiled once (to the client's models) and converted here for the edge engine.
Every condition kind the compiler emits is converted; anything else is a typed error.
"""

from __future__ import annotations

from typing import Any

from sauerkraut_rag.errors import UnsupportedFilterError

__all__ = ["to_edge_filter"]


def to_edge_filter(edge: Any, flt: Any) -> Any:
    """The edge form of ``flt`` (``None`` stays ``None``)."""
    if flt is None:
        return None
    return _filter(edge, flt)


def _filter(edge: Any, flt: Any) -> Any:
    def many(items: Any) -> list[Any] | None:
        return None if items is None else [_condition(edge, c) for c in _as_list(items)]

    min_should = None
    if getattr(flt, "min_should", None) is not None:
        ms = flt.min_should
        min_should = edge.MinShould([_condition(edge, c) for c in ms.conditions], int(ms.min_count))
    return edge.Filter(
        must=many(flt.must),
        should=many(flt.should),
        must_not=many(flt.must_not),
        min_should=min_should,
    )


def _as_list(items: Any) -> list[Any]:
    return list(items) if isinstance(items, list) else [items]


def _condition(edge: Any, cond: Any) -> Any:
    from qdrant_client import models

    if isinstance(cond, models.Filter):
        return _filter(edge, cond)
    if isinstance(cond, models.FieldCondition):
        return _field(edge, cond)
    if isinstance(cond, models.IsEmptyCondition):
        return edge.IsEmptyCondition(cond.is_empty.key)
    if isinstance(cond, models.IsNullCondition):
        return edge.IsNullCondition(cond.is_null.key)
    if isinstance(cond, models.HasIdCondition):
        return edge.HasIdCondition({str(i) for i in cond.has_id})
    if isinstance(cond, models.NestedCondition):
        return edge.NestedCondition(cond.nested.key, _filter(edge, cond.nested.filter))
    raise UnsupportedFilterError(
        f"The Qdrant Edge engine has no translation for the condition {type(cond).__name__}."
    )


def _field(edge: Any, cond: Any) -> Any:
    from qdrant_client import models

    kwargs: dict[str, Any] = {}
    match = cond.match
    if isinstance(match, models.MatchValue):
        kwargs["match"] = edge.MatchValue(match.value)
    elif isinstance(match, models.MatchAny):
        kwargs["match"] = edge.MatchAny(list(match.any))
    elif isinstance(match, models.MatchExcept):
        kwargs["match"] = edge.MatchExcept(list(match.except_))
    elif isinstance(match, models.MatchText):
        kwargs["match"] = edge.MatchText(match.text)
    elif match is not None:
        kwargs["match"] = _other_match(edge, match)
    if cond.range is not None:
        r = cond.range
        kwargs["range"] = edge.RangeFloat(gte=r.gte, gt=r.gt, lte=r.lte, lt=r.lt)
    if cond.values_count is not None:
        v = cond.values_count
        kwargs["values_count"] = edge.ValuesCount(lt=v.lt, gt=v.gt, lte=v.lte, gte=v.gte)
    if cond.is_empty is not None:
        kwargs["is_empty"] = cond.is_empty
    if cond.is_null is not None:
        kwargs["is_null"] = cond.is_null
    return edge.FieldCondition(cond.key, **kwargs)


def _other_match(edge: Any, match: Any) -> Any:
    """Prefix and substring matches, present in newer qdrant-client versions."""
    for attr, cls in (("prefix", "MatchPrefix"), ("substring", "MatchSubstring")):
        if hasattr(match, attr) and hasattr(edge, cls):
            return getattr(edge, cls)(getattr(match, attr))
    raise UnsupportedFilterError(
        f"The Qdrant Edge engine has no translation for the match {type(match).__name__}."
    )
