"""Argument checks of the LangChain vector store, done before any model time is spent."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from sauerkraut_rag.errors import InvalidInputError, InvalidInputTypeError
from sauerkraut_rag.integrations._common import check_json_metadata
from sauerkraut_rag.types import Metadata


def check_query(query: Any) -> None:
    """Queries are non-blank text for every model family (as in the LlamaIndex adapter
    and the command line: a blank query would rank documents arbitrarily)."""
    if not isinstance(query, str):
        raise InvalidInputTypeError(f"Expected the query to be a str, got {type(query).__name__}.")
    if not query.strip():
        raise InvalidInputError(
            f"Expected a non-empty query, got {query!r}. Pass the user's question as text "
            "(skip the search when there is none)."
        )


def check_texts(texts: Iterable[str]) -> list[str]:
    """A list of strings (a bare string is refused: it would be split into characters)."""
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


def _one_per_text(values: Sequence[Any], n: int, what: str) -> list[Any]:
    items = list(values)
    if len(items) != n:
        raise InvalidInputError(
            f"Expected one {what} per text ({n}), got {len(items)}. Pass {what}s of the same "
            "length as texts, or None."
        )
    return items


def check_metadatas(metadatas: Sequence[Any] | None, n: int) -> list[Metadata]:
    """``n`` JSON-serialisable dicts (``None`` entries become ``{}``)."""
    if metadatas is None:
        return [{} for _ in range(n)]
    items = _one_per_text(metadatas, n, "metadata dict")
    return [
        check_json_metadata({} if meta is None else meta, what=f"metadatas[{i}]")
        for i, meta in enumerate(items)
    ]


def check_ids(ids: Sequence[Any] | None, n: int, *, generate: bool = True) -> list[str]:
    """Non-empty string ids; with ``generate``, ``None`` ids get a UUID4 and repeats fail."""
    if ids is None:
        return [str(uuid.uuid4()) for _ in range(n)]
    out: list[str] = []
    for i, doc_id in enumerate(_one_per_text(ids, n, "id")):
        if doc_id is None and generate:
            doc_id = str(uuid.uuid4())
        elif not isinstance(doc_id, str) or not doc_id:
            raise InvalidInputTypeError(f"Expected ids[{i}] to be a non-empty str, got {doc_id!r}.")
        if generate and doc_id in out:
            raise InvalidInputError(
                f"Got the id {doc_id!r} more than once in one call. Ids must be unique per call."
            )
        out.append(doc_id)
    return out
