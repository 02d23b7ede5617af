"""An independent reference evaluator of the filter language, for tests only.

It interprets the raw filter dicts directly (no parse step, no tree, no code shared with
``sauerkraut_rag.retrievers.filters``), written from the spec in that package's
docstring, so the package's parser, Python evaluator and SQL compilation are each checked
against a second reading of the spec.
"""

from __future__ import annotations

import re
from typing import Any

_ABSENT = ("absent",)


def _get(meta: Any, key: str) -> Any:
    node = meta
    for part in key.split("."):
        if type(node) is not dict or part not in node:
            return _ABSENT
        node = node[part]
    return node


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if type(value) is bool:
        return "bool"
    if type(value) in (int, float):
        return "number"
    if type(value) is str:
        return "string"
    return "other"


def _same(stored: Any, wanted: Any) -> bool:
    kind = _kind(stored)
    return kind == _kind(wanted) and kind != "other" and stored == wanted


def _elements(value: Any) -> list[Any]:
    return list(value) if type(value) is list else [value]


def _like(stored: Any, pattern: str, fold: bool) -> bool:
    if _kind(stored) != "string":
        return False
    if fold:
        stored, pattern = stored.lower(), pattern.lower()
    regex, i = "", 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            regex += re.escape(pattern[i + 1])
            i += 2
            continue
        regex += "(?s:.*)" if ch == "%" else "(?s:.)" if ch == "_" else re.escape(ch)
        i += 1
    return re.fullmatch(regex, stored) is not None


def _key_test(stored: Any, op: str, operand: Any) -> bool:
    if op == "$exists":
        return (stored is not _ABSENT) == operand
    if op == "$ne":
        return not _key_test(stored, "$eq", operand)
    if op == "$nin":
        return not _key_test(stored, "$in", operand)
    if op == "$between":
        return _key_test(stored, "$gte", operand[0]) and _key_test(stored, "$lte", operand[1])
    if stored is _ABSENT:
        return False
    items = _elements(stored)
    if op == "$eq":
        return any(_same(x, operand) for x in items)
    if op == "$in":
        return any(_same(x, want) for x in items for want in operand)
    if op in ("$gt", "$gte", "$lt", "$lte"):
        numbers = [x for x in items if _kind(x) == "number"]
        compare = {
            "$gt": lambda x: x > operand,
            "$gte": lambda x: x >= operand,
            "$lt": lambda x: x < operand,
            "$lte": lambda x: x <= operand,
        }[op]
        return any(compare(x) for x in numbers)
    if op in ("$like", "$ilike"):
        return any(_like(x, operand, op == "$ilike") for x in items)
    raise ValueError(f"reference evaluator: unknown operator {op}")


def reference_match(flt: dict[str, Any], meta: dict[str, Any]) -> bool:
    """Whether ``meta`` passes ``flt`` (a valid filter in the dict language)."""
    for key, value in flt.items():
        if key == "$and":
            ok = all(reference_match(f, meta) for f in value)
        elif key == "$or":
            ok = any(reference_match(f, meta) for f in value)
        elif key == "$not":
            ok = not reference_match(value, meta)
        elif type(value) is dict:
            stored = _get(meta, key)
            ok = all(_key_test(stored, op, operand) for op, operand in value.items())
        else:
            ok = _key_test(_get(meta, key), "$eq", value)
        if not ok:
            return False
    return True
