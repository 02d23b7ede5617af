"""Input checks shared by the encoders (typed errors, never ``assert``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sauerkraut_rag._checks import check_positive_int
from sauerkraut_rag.errors import InvalidInputError, InvalidInputTypeError


def check_items(items: Any, *, what: str) -> list[Any]:
    """Return ``items`` as a list; reject a bare string, a non-sequence or an empty list."""
    if isinstance(items, (str, bytes)):
        raise InvalidInputTypeError(
            f"Expected a list of {what}, got a single {type(items).__name__}. "
            f"Wrap it in a list: [{what[:-1] if what.endswith('s') else what}]."
        )
    if not isinstance(items, Sequence):
        try:
            items = list(items)
        except TypeError:
            raise InvalidInputTypeError(
                f"Expected a list of {what}, got {type(items).__name__}. Pass a list."
            ) from None
    if len(items) == 0:
        raise InvalidInputError(
            f"Expected a non-empty list of {what}, got an empty list. "
            "Skip the call when there is nothing to encode."
        )
    return list(items)


def check_texts(texts: Any, *, what: str) -> list[str]:
    """Validate a non-empty list of strings (``None`` or other types are rejected by index)."""
    items = check_items(texts, what=what)
    for i, text in enumerate(items):
        if not isinstance(text, str):
            raise InvalidInputTypeError(
                f"Expected every item of {what} to be a str, but item {i} is "
                f"{type(text).__name__} ({text!r:.80}). Convert it with str() or drop it."
            )
    return items


def check_batch_size(batch_size: Any) -> None:
    """Require a positive integer batch size."""
    check_positive_int(batch_size, name="batch_size", hint="")
