"""Input checks for index operations: every failure is a typed error naming the fix."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from sauerkraut_rag._checks import check_nesting, check_unicode
from sauerkraut_rag.errors import (
    DimensionMismatchError,
    DuplicateIdError,
    FilterError,
    FilterTypeError,
    InvalidInputError,
    InvalidInputTypeError,
)
from sauerkraut_rag.retrievers._arrays import as_multivector, check_finite_rows
from sauerkraut_rag.retrievers.filters import FILTER_NODES, FilterNode, parse_filter
from sauerkraut_rag.types import Metadata


def _as_list(items: Any, *, what: str) -> list[Any]:
    if isinstance(items, (str, bytes, dict, np.ndarray)) or not isinstance(items, Sequence):
        raise InvalidInputTypeError(
            f"Expected {what} to be a list, got {type(items).__name__}. "
            f"Wrap a single item in a list: [{what[:-1] if what.endswith('s') else what}]."
        )
    return list(items)


def check_ids(ids: Any) -> list[str]:
    """Non-empty strings, unique within the call."""
    out = _as_list(ids, what="ids")
    seen: set[str] = set()
    for i, doc_id in enumerate(out):
        if not isinstance(doc_id, str):
            raise InvalidInputTypeError(
                f"Expected ids[{i}] to be a str, got {type(doc_id).__name__} ({doc_id!r}). "
                "Convert ids with str(...)."
            )
        if not doc_id:
            raise InvalidInputError(f"Expected ids[{i}] to be a non-empty string, got ''.")
        check_unicode(doc_id, name=f"ids[{i}]")
        if doc_id in seen:
            raise DuplicateIdError(
                f"Expected unique ids within one call, but {doc_id!r} appears more than once. "
                "Drop the repeated documents or give them distinct ids."
            )
        seen.add(doc_id)
    return out


def check_lookup_ids(ids: Any) -> list[str]:
    """Ids for ``get``/``delete``: strings; repeats allowed."""
    out = _as_list(ids, what="ids")
    for i, doc_id in enumerate(out):
        if not isinstance(doc_id, str):
            raise InvalidInputTypeError(
                f"Expected ids[{i}] to be a str, got {type(doc_id).__name__} ({doc_id!r})."
            )
    return out


def check_document_vectors(multivectors: Any, *, dim: int, n: int) -> list[np.ndarray]:
    """``n`` finite arrays of shape ``(n_tokens >= 1, dim)``, returned as float32."""
    items = _as_list(multivectors, what="multivectors")
    if len(items) != n:
        raise InvalidInputError(
            f"Expected one multi-vector per id ({n}), got {len(items)} multi-vectors. "
            "Pass lists of equal length."
        )
    return [_check_one(item, dim=dim, what=f"multivectors[{i}]") for i, item in enumerate(items)]


def check_query_vectors(queries: Any, *, dim: int) -> list[np.ndarray]:
    """A list of finite ``(n_tokens >= 1, dim)`` query arrays, returned as float32."""
    if isinstance(queries, np.ndarray):
        raise InvalidInputTypeError(
            f"Expected queries to be a list of (n_tokens, dim) arrays, got one array of shape "
            f"{queries.shape}. Wrap a single query in a list: [query]."
        )
    items = _as_list(queries, what="queries")
    return [_check_one(item, dim=dim, what=f"queries[{i}]") for i, item in enumerate(items)]


def _check_one(item: Any, *, dim: int, what: str) -> np.ndarray:
    array = as_multivector(item, what=what)
    if array.shape[1] != dim:
        raise DimensionMismatchError(
            f"Expected {what} to have dim {dim} (the index dim), got shape {array.shape}. "
            "Encode with the model the index was built for, or create a new index."
        )
    if array.shape[0] == 0:
        raise InvalidInputError(
            f"Expected {what} to have at least one token, got shape {array.shape}. "
            "An empty text or page encodes to 0 tokens: drop it before adding or searching."
        )
    check_finite_rows(array, what=what)
    return np.ascontiguousarray(array, dtype=np.float32)


def check_metadatas(metadatas: Any, *, n: int) -> list[tuple[Metadata, str]]:
    """``n`` JSON-serialisable dicts with string keys; returns (round-tripped dict, JSON)."""
    if metadatas is None:
        return [({}, "{}") for _ in range(n)]
    items = _as_list(metadatas, what="metadatas")
    if len(items) != n:
        raise InvalidInputError(
            f"Expected one metadata dict per id ({n}), got {len(items)}. "
            "Pass lists of equal length (or metadatas=None)."
        )
    out: list[tuple[Metadata, str]] = []
    for i, meta in enumerate(items):
        if meta is None:
            meta = {}
        if not isinstance(meta, dict):
            raise InvalidInputTypeError(
                f"Expected metadatas[{i}] to be a dict, got {type(meta).__name__}."
            )
        if any(not isinstance(key, str) for key in meta):
            raise InvalidInputTypeError(
                f"Expected string keys in metadatas[{i}], got {sorted(map(repr, meta))}."
            )
        check_nesting(meta, name=f"metadatas[{i}]")
        try:
            text = json.dumps(meta, ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(
                f"Expected metadatas[{i}] to be JSON-serialisable (str keys; str, number, "
                f"bool, None, list and dict values; no NaN), but: {exc}. Convert the values, "
                "e.g. paths and dates with str(...)."
            ) from exc
        check_unicode(text, name=f"metadatas[{i}] (its keys and string values)")
        out.append((json.loads(text), text))
    return out


def check_payloads(payloads: Any, *, n: int) -> list[str | None]:
    """``n`` strings or ``None`` (text chunks, page image paths)."""
    if payloads is None:
        return [None] * n
    items = _as_list(payloads, what="payloads")
    if len(items) != n:
        raise InvalidInputError(
            f"Expected one payload per id ({n}), got {len(items)}. "
            "Pass lists of equal length (or payloads=None)."
        )
    for i, payload in enumerate(items):
        if payload is not None and not isinstance(payload, str):
            raise InvalidInputTypeError(
                f"Expected payloads[{i}] to be a str or None, got {type(payload).__name__}. "
                "Store text, or a file path as str(path)."
            )
        if payload is not None:
            check_unicode(payload, name=f"payloads[{i}]")
    return items


def check_k(k: Any) -> int:
    """A positive int."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise InvalidInputTypeError(f"Expected k to be a positive int, got {type(k).__name__}.")
    if k <= 0:
        raise InvalidInputError(f"Expected k >= 1, got {k}. Ask for at least one result.")
    return int(k)


def check_filter(filter: Any) -> Callable[[Metadata], bool] | FilterNode | None:
    """``None``, a callable ``metadata -> bool``, or a filter in the filter language,
    returned parsed (:func:`~sauerkraut_rag.retrievers.filters.parse_filter`)."""
    if isinstance(filter, dict):
        _check_filter_text(filter)
    if filter is None or isinstance(filter, (dict, *FILTER_NODES)):
        return parse_filter(filter)
    if callable(filter):
        return filter
    raise FilterTypeError(
        f"Expected a filter dict in the filter language (e.g. {{'lang': 'de'}} or "
        f"{{'year': {{'$gte': 2020}}}}) or a callable metadata -> bool, got "
        f"{type(filter).__name__} ({filter!r:.60})."
    )


def _check_filter_text(filter: dict[str, Any]) -> None:
    """Filters too: no nesting beyond the limit, no lone surrogates (SQLite stores UTF-8)."""
    try:
        check_nesting(filter, name="the filter")
    except InvalidInputError as exc:
        raise FilterError(str(exc)) from None
    try:
        json.dumps(filter, ensure_ascii=False, default=str).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise FilterError(
            f"Expected the filter to hold valid Unicode text, but a key or value holds a lone "
            f"surrogate ({exc.object[exc.start : exc.end]!r}). Repair the text first."
        ) from None
    except (TypeError, ValueError):
        pass  # not JSON-like: parse_filter names the offending part


def check_page_size(limit: Any) -> int:
    """``list_ids`` page size: a positive int."""
    if isinstance(limit, bool) or not isinstance(limit, (int, np.integer)):
        raise InvalidInputTypeError(
            f"Expected limit to be a positive int, got {type(limit).__name__}."
        )
    if limit <= 0:
        raise InvalidInputError(f"Expected limit >= 1, got {limit}. Ask for at least one id.")
    return int(limit)


def check_cursor(cursor: Any) -> str | None:
    """``list_ids`` cursor: ``None`` or the ``next_cursor`` string of an earlier page."""
    if cursor is not None and (not isinstance(cursor, str) or not cursor):
        raise InvalidInputTypeError(
            f"Expected cursor to be None or the next_cursor of an earlier page, got {cursor!r}."
        )
    return cursor
