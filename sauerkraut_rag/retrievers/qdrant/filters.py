"""Metadata filters compiled to Qdrant ``Filter``s that the server evaluates.

Qdrant's own conditions differ from the filter language on edge cases: a match on an
array field matches when any element matches, an integer match does not see ``1.0``,
local mode compares ``True == 1`` as Python does. So each point also stores derived
fields under ``filter`` (see :func:`filter_fields`), and filters compile onto those:

* ``filter.eq.<key>``: the value's canonical JSON text (``1`` and ``1.0`` both ``"1"``,
  ``true`` stays ``"true"``, strings quoted, lists and objects with sorted keys), so
  equality on any JSON value, ``$in`` and ``$nin`` are exact keyword matches, and
  ``is_empty`` on it means "key missing";
* ``filter.num.<key>``: the value when it is a number (not a bool), for ranges;
* ``filter.str.<key>``: the value when it is a string, for text matches.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from sauerkraut_rag.errors import InvalidInputTypeError, UnsupportedFilterError
from sauerkraut_rag.retrievers.qdrant.points import FILTER_KEY
from sauerkraut_rag.types import Metadata

__all__ = ["canonical", "compile_filter", "filter_fields"]

_SIMPLE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def canonical(value: Any) -> str:
    """Canonical JSON text of a metadata value: equal JSON values give equal text."""
    return json.dumps(
        _canon(value), sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False
    )


def _canon(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [_canon(v) for v in value]
    if isinstance(value, dict):
        return {k: _canon(v) for k, v in value.items()}
    return value


def filter_fields(metadata: Metadata) -> dict[str, Any]:
    """The derived payload fields of one document's metadata (stored under ``filter``)."""
    eq: dict[str, str] = {}
    num: dict[str, float | int] = {}
    text: dict[str, str] = {}
    for key, value in metadata.items():
        eq[key] = canonical(value)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            num[key] = value
        elif isinstance(value, str):
            text[key] = value
    return {"eq": eq, "num": num, "str": text}


def field_path(kind: str, key: str) -> str:
    """Qdrant JSON path of the derived field ``kind`` (eq, num, str) of metadata ``key``."""
    if _SIMPLE_KEY.match(key):
        return f"{FILTER_KEY}.{kind}.{key}"
    if '"' in key:
        raise UnsupportedFilterError(
            f"Qdrant cannot address the metadata key {key!r} in a filter (it contains a "
            "double quote). Rename the key, or filter on another one."
        )
    return f'{FILTER_KEY}.{kind}."{key}"'


def compile_filter(flt: Any) -> Any:
    """A ``qdrant_client.models.Filter`` for ``flt`` (a dict filter), ``None`` for ``None``."""
    if flt is None:
        return None
    if callable(flt) and not isinstance(flt, dict):
        raise callable_error(flt)
    if not isinstance(flt, dict):
        raise InvalidInputTypeError(
            f"Expected filter to be a dict (key == value for every key), got {type(flt).__name__}."
        )
    from qdrant_client import models

    return models.Filter(must=[_equals(models, key, value) for key, value in flt.items()])


def _equals(models: Any, key: str, value: Any) -> Any:
    return models.FieldCondition(
        key=field_path("eq", key), match=models.MatchValue(value=canonical(value))
    )


def callable_error(flt: Callable[..., Any]) -> UnsupportedFilterError:
    """The error for a Python callable filter, with the equivalent dict filter if known."""
    from sauerkraut_rag.retrievers.qdrant.callables import equivalent_filter

    equivalent = equivalent_filter(flt)
    hint = (
        f"The equivalent filter is {json.dumps(equivalent, ensure_ascii=False)}: pass that."
        if equivalent is not None
        else 'Write it as a metadata filter, e.g. {"lang": "de"}.'
    )
    return UnsupportedFilterError(
        "A Python callable filter cannot run on a Qdrant server: filters are evaluated "
        f"inside Qdrant, next to the data. {hint}"
    )
