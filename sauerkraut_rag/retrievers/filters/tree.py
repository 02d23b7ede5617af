"""The parsed form of a metadata filter: a small immutable tree that backends compile.

Four node types, nothing else (a stable contract: the SQLite and Qdrant backends compile
exactly these):

* :class:`Comparison` ``(path, op, value)``: one test on one metadata value;
* :class:`And` ``(children)`` / :class:`Or` ``(children)``: at least one child each;
* :class:`Not` ``(child)``: the complement (documents missing the key included).

``$ne``, ``$nin``, ``$exists: false`` and ``$between`` are sugar of the dict syntax and
never appear in a tree: they parse to ``Not(eq)``, ``Not(in)``, ``Not(exists)`` and
``And(gte, lte)``. See :mod:`sauerkraut_rag.retrievers.filters` for the semantics.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeAlias

__all__ = [
    "FILTER_NODES",
    "And",
    "Comparison",
    "FilterNode",
    "Not",
    "Op",
    "Or",
    "Scalar",
    "to_dict",
]

Scalar: TypeAlias = str | int | float | bool | None
"""A JSON scalar: the values metadata is compared with."""


class Op(StrEnum):
    """Operators of a :class:`Comparison` (the value is the dict syntax's name)."""

    EQ = "$eq"
    """``value``: a Scalar. JSON equality (``1 == 1.0``, ``"1" != 1``, ``True != 1``)."""
    GT = "$gt"
    """``value``: an int or float (never a bool). Numeric comparison; other types fail."""
    GTE = "$gte"
    LT = "$lt"
    LTE = "$lte"
    IN = "$in"
    """``value``: a tuple of Scalars (possibly empty: matches nothing). Equal to any."""
    EXISTS = "$exists"
    """``value``: ``None`` (unused). The key is present, whatever its value (null too)."""
    LIKE = "$like"
    """``value``: a str pattern; ``%`` any run, ``_`` one character, ``\\`` escapes."""
    ILIKE = "$ilike"
    """As ``LIKE`` on ``str.lower()`` of both sides."""


RANGE_OPS: frozenset[Op] = frozenset({Op.GT, Op.GTE, Op.LT, Op.LTE})
TEXT_OPS: frozenset[Op] = frozenset({Op.LIKE, Op.ILIKE})


@dataclass(frozen=True, slots=True)
class Comparison:
    """``metadata[path] <op> value``.

    ``path`` holds the key's segments: ``("source",)``, or ``("author", "name")`` for the
    dotted key ``"author.name"`` (nested dicts). Compared with a list in the metadata,
    the test passes when any element passes it. Note that Python equality of trees
    follows Python's ``True == 1``: do not use trees as cache keys.
    """

    path: tuple[str, ...]
    op: Op
    value: Scalar | tuple[Scalar, ...] = None

    @property
    def key(self) -> str:
        """The dotted key as written in a filter: ``"author.name"``."""
        return ".".join(self.path)


@dataclass(frozen=True, slots=True)
class And:
    """Every child matches (``children`` is non-empty)."""

    children: tuple[FilterNode, ...]

    def __post_init__(self) -> None:
        _check_children(self.children, "And")


@dataclass(frozen=True, slots=True)
class Or:
    """At least one child matches (``children`` is non-empty)."""

    children: tuple[FilterNode, ...]

    def __post_init__(self) -> None:
        _check_children(self.children, "Or")


@dataclass(frozen=True, slots=True)
class Not:
    """The child does not match."""

    child: FilterNode


FilterNode: TypeAlias = Comparison | And | Or | Not
"""A parsed filter (the root of a tree)."""
FILTER_NODES: tuple[type, ...] = (Comparison, And, Or, Not)
"""The node classes, for ``isinstance`` checks."""


def _check_children(children: Any, name: str) -> None:
    if not isinstance(children, tuple) or not children:
        raise ValueError(f"{name} needs a non-empty tuple of filter nodes, got {children!r}.")


def to_dict(node: FilterNode) -> dict[str, Any]:
    """The filter in the dict language; ``parse_filter(to_dict(t))`` rebuilds ``t``.

    ``Not(eq)``, ``Not(in)`` and ``Not(exists)`` are written as ``$ne``, ``$nin`` and
    ``$exists: false``.
    """
    if isinstance(node, And):
        return {"$and": [to_dict(c) for c in node.children]}
    if isinstance(node, Or):
        return {"$or": [to_dict(c) for c in node.children]}
    if isinstance(node, Not):
        inner = node.child
        if isinstance(inner, Comparison) and inner.op in (Op.EQ, Op.IN, Op.EXISTS):
            if inner.op is Op.EXISTS:
                return {inner.key: {"$exists": False}}
            name = "$ne" if inner.op is Op.EQ else "$nin"
            return {inner.key: {name: _json_value(inner.value)}}
        return {"$not": to_dict(inner)}
    if node.op is Op.EXISTS:
        return {node.key: {"$exists": True}}
    return {node.key: {node.op.value: _json_value(node.value)}}


def _json_value(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, float) and not math.isfinite(value):  # never produced by parse
        raise ValueError(f"Filter values must be finite, got {value!r}.")
    return value
