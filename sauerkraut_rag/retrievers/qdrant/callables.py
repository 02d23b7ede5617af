"""Read a simple Python filter function as the equivalent filter-language dict, for hints.

A callable filter cannot run on a Qdrant server; when it is a plain comparison on the
metadata (``lambda m: m["lang"] == "de" and m.get("year", 0) >= 2020``), the error shows
the dict that does the same. The source is only parsed (``ast``), never executed;
anything beyond comparisons of metadata values with literals, ``in``, ``and``, ``or``
and ``not`` gives ``None``.
"""

from __future__ import annotations

import ast
import inspect
import json
import textwrap
from collections.abc import Callable
from typing import Any

from sauerkraut_rag.errors import UnsupportedFilterError
from sauerkraut_rag.retrievers.filters import parse_filter

__all__ = ["callable_error", "equivalent_filter"]

_OPS = {
    ast.Eq: "$eq",
    ast.NotEq: "$ne",
    ast.Gt: "$gt",
    ast.GtE: "$gte",
    ast.Lt: "$lt",
    ast.LtE: "$lte",
}
_FLIPPED = {"$gt": "$lt", "$gte": "$lte", "$lt": "$gt", "$lte": "$gte", "$eq": "$eq", "$ne": "$ne"}


class _Unsupported(Exception):
    """The expression has no filter-language equivalent."""


def callable_error(func: Callable[..., Any]) -> UnsupportedFilterError:
    """The error for a Python callable filter, with the equivalent filter when readable."""
    equivalent = equivalent_filter(func)
    hint = (
        f"The equivalent filter is {json.dumps(equivalent, ensure_ascii=False)}: pass that."
        if equivalent is not None
        else 'Write it in the filter language, e.g. {"lang": "de", "year": {"$gte": 2020}}.'
    )
    return UnsupportedFilterError(
        "A Python callable filter cannot run on a Qdrant server: QdrantIndex evaluates "
        f"filters inside Qdrant, next to the data. {hint}"
    )


def equivalent_filter(func: Callable[..., Any]) -> dict[str, Any] | None:
    """The filter dict equivalent to ``func(metadata)``, or ``None`` when not readable."""
    try:
        source = textwrap.dedent(inspect.getsource(func))
    except (OSError, TypeError):
        return None
    body = _body(source, getattr(func, "__name__", ""))
    if body is None:
        return None
    expr, arg = body
    try:
        found = _translate(expr, arg)
        parse_filter(found)  # only hint at what the language accepts
    except (_Unsupported, ValueError, SyntaxError, TypeError):
        return None
    return found


def _body(source: str, name: str) -> tuple[ast.expr, str] | None:
    """The returned expression and the argument name of the one function in ``source``."""
    tree = None
    for text in (source, f"({source.strip().rstrip(',')})"):
        try:
            tree = ast.parse(text)
            break
        except SyntaxError:
            continue
    if tree is None:
        return None
    lambdas = [n for n in ast.walk(tree) if isinstance(n, ast.Lambda)]
    if name == "<lambda>":
        if len(lambdas) != 1 or len(lambdas[0].args.args) != 1:
            return None
        return lambdas[0].body, lambdas[0].args.args[0].arg
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == name and len(node.args.args) == 1:
            statements = [s for s in node.body if not _is_docstring(s)]
            if len(statements) == 1 and isinstance(statements[0], ast.Return):
                value = statements[0].value
                return (value, node.args.args[0].arg) if value is not None else None
    return None


def _is_docstring(node: ast.stmt) -> bool:
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)


def _translate(expr: ast.expr, arg: str) -> dict[str, Any]:
    if isinstance(expr, ast.BoolOp):
        parts = [_translate(v, arg) for v in expr.values]
        return {"$and" if isinstance(expr.op, ast.And) else "$or": parts}
    if isinstance(expr, ast.UnaryOp) and isinstance(expr.op, ast.Not):
        return {"$not": _translate(expr.operand, arg)}
    if isinstance(expr, ast.Compare):
        parts = []
        left = expr.left
        for op, right in zip(expr.ops, expr.comparators, strict=True):
            parts.append(_comparison(left, op, right, arg))
            left = right
        return parts[0] if len(parts) == 1 else {"$and": parts}
    raise _Unsupported


def _comparison(left: ast.expr, op: ast.cmpop, right: ast.expr, arg: str) -> dict[str, Any]:
    if isinstance(op, (ast.In, ast.NotIn)):
        if _is_metadata(right, arg):  # "key" in m
            key = ast.literal_eval(left)
            if not isinstance(key, str):
                raise _Unsupported
            return {key: {"$exists": isinstance(op, ast.In)}}
        key = _key(left, arg)
        values = ast.literal_eval(right)
        if not isinstance(values, (list, tuple, set, frozenset)):
            raise _Unsupported
        return {key: {"$in" if isinstance(op, ast.In) else "$nin": list(values)}}
    name = _OPS.get(type(op))
    if name is None:
        raise _Unsupported
    try:
        key, value = _key(left, arg), ast.literal_eval(right)
    except _Unsupported:
        key, value, name = _key(right, arg), ast.literal_eval(left), _FLIPPED[name]
    return {key: value} if name == "$eq" else {key: {name: value}}


def _is_metadata(node: ast.expr, arg: str) -> bool:
    return isinstance(node, ast.Name) and node.id == arg


def _key(node: ast.expr, arg: str) -> str:
    """``m["key"]`` or ``m.get("key"[, default])`` -> ``"key"``."""
    if isinstance(node, ast.Subscript) and _is_metadata(node.value, arg):
        key = ast.literal_eval(node.slice)
    elif (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "get"
        and _is_metadata(node.func.value, arg)
        and node.args
    ):
        key = ast.literal_eval(node.args[0])
    else:
        raise _Unsupported
    if not isinstance(key, str):
        raise _Unsupported
    return key
