"""Argument checks of the LangChain vector store, done before any model time is spent."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from sauerkraut_rag.errors import InvalidInputError, InvalidInputTypeError
from sauerkraut_rag.types import Metadata


def check_query(query: Any) -> None:
    if not isinstance(query, str):
        raise InvalidInputTypeError(f"Expected the query to be a str, got {type(query).__name__}.")


def check_texts(texts: Iterable[str]) -> list[str]:
    if isinstance(texts, str):
        raise InvalidInputTypeError(
            "Expected texts to be a list of strings, got a single str. Wrap it: [text]."
        )
    items = list(texts)
    for i, text in enumerate(items):
        if not isinstance(text, str):
            raise InvalidInputTypeError(
                f"Expected texts[{i}] to be a str, got {type(text).__name__}."
            )
    return items


def check_metadatas(metadatas: Sequence[Any] | None, n: int) -> list[Metadata]:
    if metadatas is None:
        return [{} for _ in range(n)]
    metas = list(metadatas)
    if len(metas) != n:
        raise InvalidInputError(
            f"Expected one metadata dict per text ({n}), got {len(metas)}. Pass metadatas of "
            "the same length as texts, or None."
        )
    checked: list[Metadata] = []
    for i, meta in enumerate(metas):
        meta = {} if meta is None else meta
        if not isinstance(meta, dict):
            raise InvalidInputTypeError(
                f"Expected metadatas[{i}] to be a dict, got {type(meta).__name__}."
            )
        try:
            json.dumps(meta, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise InvalidInputTypeError(
                f"Expected metadatas[{i}] to be JSON-serialisable (it is stored as JSON, "
                f"never pickled), but it is not: {exc}. Convert values to str, int, float, "
                "bool, list or dict."
            ) from exc
        checked.append(dict(meta))
    return checked


def check_ids(ids: Sequence[Any] | None, n: int, *, generate: bool = True) -> list[str]:
    if ids is None:
        return [str(uuid.uuid4()) for _ in range(n)]
    items = list(ids)
    if len(items) != n:
        raise InvalidInputError(
            f"Expected one id per text ({n}), got {len(items)}. Pass ids of the same length "
            "as texts, or None to generate them."
        )
    out: list[str] = []
    for i, doc_id in enumerate(items):
        if doc_id is None and generate:
            out.append(str(uuid.uuid4()))
        elif isinstance(doc_id, str) and doc_id:
            out.append(doc_id)
        else:
            raise InvalidInputTypeError(f"Expected ids[{i}] to be a non-empty str, got {doc_id!r}.")
    if generate:
        seen: set[str] = set()
        for doc_id in out:
            if doc_id in seen:
                raise InvalidInputError(
                    f"Got the id {doc_id!r} more than once in one call. Ids must be unique "
                    "per call."
                )
            seen.add(doc_id)
    return out
