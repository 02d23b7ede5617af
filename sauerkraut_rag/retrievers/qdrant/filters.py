"""The filter language (:mod:`sauerkraut_rag.retrievers.filters`) compiled to Qdrant filters.

Qdrant's own conditions differ from the language on edge cases (an integer match does
not see ``1.0``; local mode compares ``True == 1`` as Python does; a dotted key also
walks into arrays of objects). So every point stores derived fields under ``filter``,
computed here in Python with the language's exact semantics, and filters compile onto
them (:func:`filter_fields`, :func:`compile_tree`):

* ``filter.keys``: every dotted key path present (``$exists``);
* ``filter.eq``: one keyword per (path, scalar) pair, ``["path", value]`` as canonical
  JSON (``1`` and ``1.0`` give the same text, ``true`` and ``1`` do not): ``$eq``, ``$in``;
* ``filter.num.k<hex path>``: the numbers at a path (bools excluded): ranges;
* ``filter.str.k<hex path>`` / ``filter.lstr.k<hex path>``: the strings at a path, as
  stored and lower-cased: ``$like`` / ``$ilike``.

A list in the metadata contributes each of its scalar elements, and Qdrant matches an
array when any element matches, as the language says. ``$like`` patterns that are a
literal, ``x%``, ``%x%`` or all ``%`` compile to exact keyword, prefix and substring
matches; other patterns (``_``, ``%x``, ``a%b``) are evaluated by :mod:`.residual`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sauerkraut_rag.retrievers.filters import And, Comparison, FilterNode, Not, Op, Or
from sauerkraut_rag.retrievers.qdrant.points import DOC_ID_KEY, FILTER_KEY
from sauerkraut_rag.types import Metadata

__all__ = ["Residual", "compile_tree", "filter_fields"]

_ANY_RUN = object()
"""A ``%`` in a pattern piece list (an object: an escaped ``"%"`` is a literal string)."""
_ONE = object()
"""A ``_`` in a pattern piece list."""


class Residual(Exception):
    """A comparison Qdrant cannot evaluate exactly (raised while compiling)."""


def path_key(path: str) -> str:
    """The derived-field name of a dotted path: safe in any Qdrant JSON path."""
    return "k" + path.encode("utf-8").hex()


def eq_token(path: str, value: Any) -> str:
    """The keyword for "``value`` at ``path``" (equal JSON scalars give equal keywords)."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # 1.0 == 1; Python compares big ints and floats exactly too
    return json.dumps([path, value], ensure_ascii=False, separators=(",", ":"))


def _walk(metadata: Metadata, prefix: str = "") -> list[tuple[str, Any]]:
    """Every ``(dotted path, value)``, stepping into dicts; keys with a dot are unreachable."""
    found: list[tuple[str, Any]] = []
    for key, value in metadata.items():
        if not key or "." in key:
            continue
        path = f"{prefix}{key}"
        found.append((path, value))
        if isinstance(value, dict):
            found += _walk(value, path + ".")
    return found


def filter_fields(metadata: Metadata) -> dict[str, Any]:
    """The derived payload fields of one document (stored under ``filter``)."""
    keys, eq = [], []
    num: dict[str, list[float | int]] = {}
    strs: dict[str, list[str]] = {}
    for path, value in _walk(metadata):
        keys.append(path)
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, (dict, list)):
                continue  # never equal to a scalar
            eq.append(eq_token(path, item))
            if isinstance(item, (int, float)) and not isinstance(item, bool):
                num.setdefault(path_key(path), []).append(item)
            elif isinstance(item, str):
                strs.setdefault(path_key(path), []).append(item)
    lower = {k: [s.lower() for s in v] for k, v in strs.items()}
    return {"keys": keys, "eq": eq, "num": num, "str": strs, "lstr": lower}


def payload_index_fields(numbers: Sequence[str], texts: Sequence[str]) -> list[tuple[str, str]]:
    """``(field, kind)`` of the payload indexes that serve filters: equality and
    existence of every key, ranges on ``numbers``, patterns on ``texts`` (dotted keys)."""
    fields = [(f"{FILTER_KEY}.eq", "keyword"), (f"{FILTER_KEY}.keys", "keyword")]
    fields += [(f"{FILTER_KEY}.num.{path_key(k)}", "float") for k in numbers]
    for key in texts:
        fields += [(f"{FILTER_KEY}.{kind}.{path_key(key)}", "prefix") for kind in ("str", "lstr")]
    return fields


# ---------------------------------------------------------------------------- compile


def everything(models: Any) -> Any:
    """A filter every document of this package passes (all have a ``doc_id``)."""
    return models.Filter(must_not=[_no_doc_id(models)])


def nothing(models: Any) -> Any:
    """A filter no document passes."""
    return models.Filter(must=[_no_doc_id(models)])


def _no_doc_id(models: Any) -> Any:
    return models.IsEmptyCondition(is_empty=models.PayloadField(key=DOC_ID_KEY))


def compile_tree(node: FilterNode, models: Any, *, superset: bool | None = None) -> Any:
    """The Qdrant ``Filter`` of ``node``.

    ``superset=None``: exact, raising :class:`Residual` where Qdrant cannot be exact.
    ``superset=True`` / ``False``: replace such comparisons by a condition that matches
    at least / at most the same documents (for a pre-selection that Python refines).
    """
    if isinstance(node, And):
        return models.Filter(
            must=[compile_tree(c, models, superset=superset) for c in node.children]
        )
    if isinstance(node, Or):
        return models.Filter(
            should=[compile_tree(c, models, superset=superset) for c in node.children]
        )
    if isinstance(node, Not):
        flipped = None if superset is None else not superset
        return models.Filter(must_not=[compile_tree(node.child, models, superset=flipped)])
    try:
        return _comparison(node, models)
    except Residual:
        if superset is None:
            raise
        if not superset:
            return nothing(models)
        return _like_superset(node, models)


def _comparison(node: Comparison, models: Any) -> Any:
    path = node.key
    op, value = node.op, node.value
    field = models.FieldCondition
    if op is Op.EQ:
        return field(key=f"{FILTER_KEY}.eq", match=models.MatchValue(value=eq_token(path, value)))
    if op is Op.IN:
        items = value if isinstance(value, tuple) else ()
        if not items:
            return nothing(models)
        tokens = list(dict.fromkeys(eq_token(path, v) for v in items))
        return field(key=f"{FILTER_KEY}.eq", match=models.MatchAny(any=tokens))
    if op is Op.EXISTS:
        return field(key=f"{FILTER_KEY}.keys", match=models.MatchValue(value=path))
    if op in (Op.GT, Op.GTE, Op.LT, Op.LTE):
        bounds = {op.value[1:]: value}
        return field(key=f"{FILTER_KEY}.num.{path_key(path)}", range=models.Range(**bounds))
    return _like(node, models)


def _like(node: Comparison, models: Any) -> Any:
    """Exact ``$like``/``$ilike`` for literal, ``x%``, ``%x%`` and all-``%`` patterns."""
    fold = node.op is Op.ILIKE
    pattern = str(node.value).lower() if fold else str(node.value)
    pieces = _pattern_pieces(pattern)
    kind = "lstr" if fold else "str"
    key = f"{FILTER_KEY}.{kind}.{path_key(node.key)}"
    field = models.FieldCondition
    literals = [p for p in pieces if isinstance(p, str)]
    if any(p is _ONE for p in pieces):  # "_": exactly one character
        raise Residual
    if not pieces:  # "": the empty string
        return field(key=key, match=models.MatchValue(value=""))
    if not literals:  # only %: any string
        return models.Filter(
            must_not=[models.IsEmptyCondition(is_empty=models.PayloadField(key=key))]
        )
    if len(literals) > 1:
        raise Residual
    text = literals[0]
    starts, ends = pieces[0] is _ANY_RUN, pieces[-1] is _ANY_RUN
    if not starts and not ends:
        return field(key=key, match=models.MatchValue(value=text))
    if not starts and ends:
        return field(key=key, match=models.MatchPrefix(prefix=text))
    if starts and ends:
        return field(key=key, match=models.MatchSubstring(substring=text))
    raise Residual  # "%x": no suffix match in Qdrant


def _like_superset(node: Comparison, models: Any) -> Any:
    """Conditions every string matching the pattern meets: it is a string, it starts with
    the leading literal, and it contains every literal run."""
    fold = node.op is Op.ILIKE
    pattern = str(node.value).lower() if fold else str(node.value)
    pieces = _pattern_pieces(pattern)
    key = f"{FILTER_KEY}.{'lstr' if fold else 'str'}.{path_key(node.key)}"
    must: list[Any] = [
        models.Filter(must_not=[models.IsEmptyCondition(is_empty=models.PayloadField(key=key))])
    ]
    if pieces and isinstance(pieces[0], str):
        must.append(models.FieldCondition(key=key, match=models.MatchPrefix(prefix=pieces[0])))
    for piece in pieces:
        if isinstance(piece, str):
            must.append(
                models.FieldCondition(key=key, match=models.MatchSubstring(substring=piece))
            )
    return models.Filter(must=must)


def _pattern_pieces(pattern: str) -> list[object]:
    """The pattern as literal runs (str), ``_ANY_RUN`` for ``%`` and ``_ONE`` for ``_``."""
    pieces: list[object] = []
    literal: list[str] = []
    chars = iter(pattern)

    def flush() -> None:
        if literal:
            pieces.append("".join(literal))
            literal.clear()

    for char in chars:
        if char == "\\":
            literal.append(next(chars, ""))
        elif char == "%":
            flush()
            if not pieces or pieces[-1] != _ANY_RUN:
                pieces.append(_ANY_RUN)
        elif char == "_":
            flush()
            pieces.append(_ONE)
        else:
            literal.append(char)
    flush()
    return pieces
