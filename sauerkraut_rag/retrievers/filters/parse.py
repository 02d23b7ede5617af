"""``parse_filter``: the dict language -> a validated :mod:`tree` (once per search).

Every malformed part raises :class:`~sauerkraut_rag.errors.FilterError` (wrong Python
types: :class:`~sauerkraut_rag.errors.FilterTypeError`) naming where it is, e.g.
``filter["$or"][1]["year"]["$gt"]``, and listing the supported operators.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from sauerkraut_rag.errors import FilterError, FilterTypeError
from sauerkraut_rag.retrievers.filters.patterns import check_pattern
from sauerkraut_rag.retrievers.filters.tree import (
    FILTER_NODES,
    And,
    Comparison,
    FilterNode,
    Not,
    Op,
    Or,
    Scalar,
    to_dict,
)

__all__ = ["KEY_OPERATORS", "LOGIC_OPERATORS", "parse_filter"]

KEY_OPERATORS: tuple[str, ...] = (
    "$eq",
    "$ne",
    "$gt",
    "$gte",
    "$lt",
    "$lte",
    "$in",
    "$nin",
    "$exists",
    "$like",
    "$ilike",
    "$between",
)
"""Operators on a key: ``{"year": {"$gte": 2020}}``."""
LOGIC_OPERATORS: tuple[str, ...] = ("$and", "$or", "$not")
"""Operators combining filters: ``{"$or": [{...}, {...}]}``, ``{"$not": {...}}``."""

MAX_DEPTH = 32
"""Deeper nesting is rejected (a filter is written by people, not generated unboundedly)."""

_SUPPORTED = (
    f"Supported on a key: {', '.join(KEY_OPERATORS)}; to combine filters: "
    f"{', '.join(LOGIC_OPERATORS)}."
)


def parse_filter(obj: Any) -> FilterNode | None:
    """Validate a filter and return its tree; ``None`` and ``{}`` mean "no filter".

    ``obj`` is a dict in the filter language (or an already parsed tree, returned as
    is). Raises :class:`FilterError` / :class:`FilterTypeError` for anything else.

    >>> parse_filter({"year": {"$gte": 2020}})
    Comparison(path=('year',), op=<Op.GTE: '$gte'>, value=2020)
    >>> parse_filter({"lang": {"$ne": "de"}})
    Not(child=Comparison(path=('lang',), op=<Op.EQ: '$eq'>, value='de'))
    """
    if obj is None:
        return None
    if isinstance(obj, FILTER_NODES):
        return _parse_dict(_tree_dict(obj), "filter", 0)  # a hand-built tree is checked too
    if not isinstance(obj, dict):
        hint = (
            " A callable filter works on VoyagerIndex only; write it in the filter language "
            "to use it everywhere."
            if callable(obj)
            else ""
        )
        raise FilterTypeError(
            f"Expected a metadata filter dict such as {{'lang': 'de'}} or "
            f"{{'year': {{'$gte': 2020}}}}, got {type(obj).__name__} ({obj!r:.60}).{hint}"
        )
    if not obj:
        return None
    return _parse_dict(obj, "filter", 0)


def _tree_dict(node: FilterNode) -> dict[str, Any]:
    try:
        return to_dict(node)
    except (AttributeError, TypeError, ValueError) as exc:
        raise FilterTypeError(f"Expected a valid filter tree, got {node!r:.80}: {exc}") from exc


def _parse_dict(obj: Any, where: str, depth: int) -> FilterNode:
    if depth > MAX_DEPTH:
        raise FilterError(f"The filter nests deeper than {MAX_DEPTH} levels at {where}.")
    if not isinstance(obj, dict):
        raise FilterTypeError(
            f"Expected a filter dict at {where}, got {type(obj).__name__} ({obj!r:.60}). "
            'Example: {"lang": "de"}.'
        )
    if not obj:
        raise FilterError(f"Expected a non-empty filter dict at {where}, got {{}}.")
    nodes: list[FilterNode] = []
    for key, value in obj.items():
        here = f"{where}[{key!r}]"
        if not isinstance(key, str):
            raise FilterTypeError(
                f"Expected string keys in the filter, got {type(key).__name__} {key!r} at "
                f"{where}. Write the metadata key as a str."
            )
        if key.startswith("$"):
            nodes.append(_parse_logic(key, value, here, depth))
        else:
            nodes.append(_parse_key(key, value, here, depth))
    return _combine(And, nodes)


def _parse_logic(op: str, value: Any, where: str, depth: int) -> FilterNode:
    if op in ("$and", "$or"):
        if not isinstance(value, (list, tuple)) or not value:
            raise FilterError(
                f"Expected a non-empty list of filter dicts for {op} at {where}, got "
                f"{value!r:.60}. Example: {{{op!r}: [{{'lang': 'de'}}, {{'lang': 'en'}}]}}."
            )
        children = [_parse_dict(item, f"{where}[{i}]", depth + 1) for i, item in enumerate(value)]
        return _combine(And if op == "$and" else Or, children)
    if op == "$not":
        return Not(_parse_dict(value, where, depth + 1))
    if op in KEY_OPERATORS:
        raise FilterError(
            f"{op} at {where} compares a metadata key, so it belongs inside a key: "
            f'{{"year": {{"{op}": ...}}}}. {_SUPPORTED}'
        )
    raise FilterError(f"Unknown filter operator {op!r} at {where}. {_SUPPORTED}")


def _parse_key(key: str, value: Any, where: str, depth: int) -> FilterNode:
    path = _split_key(key, where)
    if isinstance(value, dict):
        if not value:
            raise FilterError(
                f"Expected a value or an operator dict such as {{'$gte': 1}} at {where}, got "
                "{}. " + _SUPPORTED
            )
        plain = [k for k in value if not (isinstance(k, str) and k.startswith("$"))]
        if plain:
            raise FilterError(
                f"Expected operators ($eq, $in, ...) as the keys of the dict at {where}, got "
                f"{plain[:3]!r}. A filter never compares with a whole dict: reach nested "
                f"metadata with a dotted key, e.g. {{'{key}.{plain[0]}': ...}}. {_SUPPORTED}"
            )
        nodes = [
            _parse_operator(path, op, operand, f"{where}[{op!r}]") for op, operand in value.items()
        ]
        return _combine(And, nodes)
    if isinstance(value, (list, tuple)):
        raise FilterError(
            f"A list at {where} needs an operator: {{{key!r}: {{'$in': [...]}}}} matches "
            "documents whose value equals any of the list (a list in the metadata matches "
            "when any element does)."
        )
    return Comparison(path, Op.EQ, _scalar(value, where))


def _parse_operator(path: tuple[str, ...], op: Any, operand: Any, where: str) -> FilterNode:
    handler = _OPERATORS.get(op)
    if handler is None:
        if op in LOGIC_OPERATORS:
            raise FilterError(
                f"{op} at {where} combines whole filters, so it belongs at the top: "
                f'{{"{op}": ...}} around {{"{".".join(path)}": ...}}. {_SUPPORTED}'
            )
        raise FilterError(f"Unknown filter operator {op!r} at {where}. {_SUPPORTED}")
    return handler(path, operand, where)


def _eq(path: tuple[str, ...], operand: Any, where: str) -> FilterNode:
    if isinstance(operand, (list, tuple)):
        raise FilterError(
            f"Expected one value for $eq/$ne at {where}, got a list. Use $in / $nin to "
            "compare with several values."
        )
    return Comparison(path, Op.EQ, _scalar(operand, where))


def _range(op: Op) -> Callable[[tuple[str, ...], Any, str], FilterNode]:
    def parse(path: tuple[str, ...], operand: Any, where: str) -> FilterNode:
        return Comparison(path, op, _number(operand, where))

    return parse


def _in(path: tuple[str, ...], operand: Any, where: str) -> FilterNode:
    if not isinstance(operand, (list, tuple)):
        raise FilterTypeError(
            f"Expected a list of values for $in/$nin at {where}, got "
            f"{type(operand).__name__} ({operand!r:.60}). Example: {{'$in': ['a.txt', 'b.txt']}}."
        )
    return Comparison(
        path, Op.IN, tuple(_scalar(item, f"{where}[{i}]") for i, item in enumerate(operand))
    )


def _exists(path: tuple[str, ...], operand: Any, where: str) -> FilterNode:
    if not isinstance(operand, (bool, np.bool_)):
        raise FilterTypeError(
            f"Expected true or false for $exists at {where}, got {operand!r:.60}."
        )
    node = Comparison(path, Op.EXISTS, None)
    return node if operand else Not(node)


def _text(op: Op) -> Callable[[tuple[str, ...], Any, str], FilterNode]:
    def parse(path: tuple[str, ...], operand: Any, where: str) -> FilterNode:
        if not isinstance(operand, str):
            raise FilterTypeError(
                f"Expected a text pattern for {op} at {where}, got {type(operand).__name__} "
                f"({operand!r:.60}). Example: {{'{op}': '%report%'}} (% any text, _ one "
                "character)."
            )
        check_pattern(operand, where)
        return Comparison(path, op, operand)

    return parse


def _between(path: tuple[str, ...], operand: Any, where: str) -> FilterNode:
    if not isinstance(operand, (list, tuple)) or len(operand) != 2:
        raise FilterError(
            f"Expected [low, high] for $between at {where}, got {operand!r:.60}. "
            "Example: {'$between': [2015, 2020]} (both ends included)."
        )
    low, high = (_number(v, f"{where}[{i}]") for i, v in enumerate(operand))
    return And((Comparison(path, Op.GTE, low), Comparison(path, Op.LTE, high)))


def _negated(
    parse: Callable[[tuple[str, ...], Any, str], FilterNode],
) -> Callable[[tuple[str, ...], Any, str], FilterNode]:
    return lambda path, operand, where: Not(parse(path, operand, where))


_OPERATORS: dict[str, Callable[[tuple[str, ...], Any, str], FilterNode]] = {
    "$eq": _eq,
    "$ne": _negated(_eq),
    "$gt": _range(Op.GT),
    "$gte": _range(Op.GTE),
    "$lt": _range(Op.LT),
    "$lte": _range(Op.LTE),
    "$in": _in,
    "$nin": _negated(_in),
    "$exists": _exists,
    "$like": _text(Op.LIKE),
    "$ilike": _text(Op.ILIKE),
    "$between": _between,
}


def _split_key(key: str, where: str) -> tuple[str, ...]:
    path = tuple(key.split("."))
    if not all(path):
        raise FilterError(
            f"Expected a metadata key such as 'source' or a dotted path such as "
            f"'author.name' at {where}, got {key!r} (an empty part)."
        )
    return path


def _scalar(value: Any, where: str) -> Scalar:
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise FilterError(f"Expected a finite number at {where}, got {value!r}.")
        return value
    raise FilterTypeError(
        f"Expected a string, number, boolean or null at {where}, got {type(value).__name__} "
        f"({value!r:.60}). Convert it, e.g. dates and paths with str(...)."
    )


def _number(value: Any, where: str) -> int | float:
    number = _scalar(value, where) if not isinstance(value, (list, tuple, dict)) else value
    if isinstance(number, bool) or not isinstance(number, (int, float)):
        raise FilterTypeError(
            f"Expected a number for this comparison at {where}, got {type(value).__name__} "
            f"({value!r:.60}). $gt/$gte/$lt/$lte/$between compare numbers only; store "
            "dates as numbers (e.g. 2024 or a Unix time) to range over them."
        )
    return number


def _combine(kind: type[And] | type[Or], nodes: list[FilterNode]) -> FilterNode:
    """One node, or ``kind`` over ``nodes`` with nested nodes of the same kind flattened."""
    if len(nodes) == 1:
        return nodes[0]
    flat: list[FilterNode] = []
    for node in nodes:
        flat.extend(node.children if isinstance(node, kind) else (node,))
    return kind(tuple(flat))
