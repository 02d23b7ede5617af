"""``matches(tree, metadata)``: the filter semantics in plain Python.

Backends that cannot run a filter where the data lives use this (and tests check the
SQL and Qdrant compilations against the same semantics).
"""

from __future__ import annotations

from typing import Any

from sauerkraut_rag.retrievers.filters.patterns import like_regex
from sauerkraut_rag.retrievers.filters.tree import (
    RANGE_OPS,
    And,
    Comparison,
    FilterNode,
    Not,
    Op,
    Or,
)
from sauerkraut_rag.types import Metadata

__all__ = ["json_equal", "lookup", "matches"]

_MISSING = object()


def matches(node: FilterNode, metadata: Metadata) -> bool:
    """Whether ``metadata`` (a JSON-like dict) passes the filter ``node``."""
    if isinstance(node, Comparison):
        return _compare(node, metadata)
    if isinstance(node, And):
        return all(matches(child, metadata) for child in node.children)
    if isinstance(node, Or):
        return any(matches(child, metadata) for child in node.children)
    if isinstance(node, Not):
        return not matches(node.child, metadata)
    raise TypeError(f"Not a filter node: {type(node).__name__}")


def lookup(metadata: Metadata, path: tuple[str, ...]) -> Any:
    """The value at ``path`` (nested dicts), or a private sentinel when it is missing."""
    value: Any = metadata
    for part in path:
        if not isinstance(value, dict) or part not in value:
            return _MISSING
        value = value[part]
    return value


def json_equal(a: Any, b: Any) -> bool:
    """Equality of two JSON scalars: numbers by value, bools only with bools."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, str) and isinstance(b, str):
        return a == b
    return a is None and b is None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _compare(node: Comparison, metadata: Metadata) -> bool:
    value = lookup(metadata, node.path)
    if value is _MISSING:
        return False
    if node.op is Op.EXISTS:
        return True
    candidates = value if isinstance(value, list) else (value,)
    op, operand = node.op, node.value
    if op is Op.EQ:
        return any(json_equal(c, operand) for c in candidates)
    if op is Op.IN:
        items = operand if isinstance(operand, tuple) else ()
        return any(json_equal(c, item) for c in candidates for item in items)
    if op in RANGE_OPS:
        return any(_is_number(c) and _ordered(op, c, operand) for c in candidates)
    regex = like_regex(str(operand), op is Op.ILIKE)
    fold = op is Op.ILIKE
    return any(
        isinstance(c, str) and regex.fullmatch(c.lower() if fold else c) is not None
        for c in candidates
    )


def _ordered(op: Op, left: Any, right: Any) -> bool:
    if op is Op.GT:
        return bool(left > right)
    if op is Op.GTE:
        return bool(left >= right)
    if op is Op.LT:
        return bool(left < right)
    return bool(left <= right)
