"""The design not taken, for ``filtered_search.py``: filters as SQLite JSON1 expressions
evaluated over ``docs.metadata`` (a full scan that parses every document's JSON).

Same semantics as ``filter_sql`` (the benchmark checks both give the same documents), so
the two timings compare the designs: JSON1 functions over the stored metadata against the
key/value table with a covering index that ``VoyagerIndex`` uses.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import numpy as np

from sauerkraut_rag.retrievers.filters import And, Comparison, FilterNode, Not, Op, like_glob

_RANGE = {Op.GT: ">", Op.GTE: ">=", Op.LT: "<", Op.LTE: "<="}


def _path(node: Comparison) -> str:
    """The JSON path as an SQL string literal: ``'$."author"."name"'``."""
    text = "$" + "".join('."' + part + '"' for part in node.path)
    return "'" + text.replace("'", "''") + "'"


def _scalar_test(value: Any, params: list[Any], column: str, type_column: str) -> str:
    """``column`` (a JSON value) equals ``value`` as a JSON scalar."""
    if value is None:
        return f"{type_column} = 'null'"
    if isinstance(value, bool):
        return f"{type_column} = '{'true' if value else 'false'}'"
    params.append(value)
    kinds = "('text')" if isinstance(value, str) else "('integer','real')"
    return f"({type_column} IN {kinds} AND {column} = ?)"


def _test(node: Comparison, column: str, type_column: str, params: list[Any]) -> str:
    """The comparison on one JSON value (``column``, of JSON type ``type_column``)."""
    if node.op is Op.EQ:
        return _scalar_test(node.value, params, column, type_column)
    if node.op is Op.IN:
        values = node.value if isinstance(node.value, tuple) else ()
        parts = [_scalar_test(v, params, column, type_column) for v in values]
        return "(" + (" OR ".join(parts) or "0") + ")"
    if node.op in _RANGE:
        params.append(node.value)
        return f"({type_column} IN ('integer','real') AND {column} {_RANGE[node.op]} ?)"
    params.append(like_glob(str(node.value), node.op is Op.ILIKE))
    text = f"lower({column})" if node.op is Op.ILIKE else column
    return f"({type_column} = 'text' AND {text} GLOB ?)"


def _comparison(node: Comparison, params: list[Any]) -> str:
    path = _path(node)
    if node.op is Op.EXISTS:
        return f"json_type(metadata, {path}) IS NOT NULL"
    own = _test(node, f"json_extract(metadata, {path})", f"json_type(metadata, {path})", params)
    element = _test(node, "value", "type", params)
    return (
        f"COALESCE(({own}) OR (json_type(metadata, {path}) = 'array' AND EXISTS "
        f"(SELECT 1 FROM json_each(metadata, {path}) WHERE {element})), 0)"
    )


def compile_where(node: FilterNode, params: list[Any]) -> str:
    """A ``WHERE`` expression over ``docs.metadata`` (never NULL)."""
    if isinstance(node, Comparison):
        return _comparison(node, params)
    if isinstance(node, Not):
        return f"NOT ({compile_where(node.child, params)})"
    joiner = " AND " if isinstance(node, And) else " OR "
    return "(" + joiner.join(compile_where(c, params) for c in node.children) + ")"


def json1_rows(conn: sqlite3.Connection, node: FilterNode) -> np.ndarray:
    """Rows of documents matching ``node`` by a JSON1 scan of ``docs``."""
    params: list[Any] = []
    where = compile_where(node, params)
    (text,) = conn.execute(f"SELECT group_concat(row) FROM docs WHERE {where}", params).fetchone()
    return np.fromstring(text or "", dtype=np.int64, sep=",")
