"""Input checks shared by every layer: integers in a range, and option names.

Each check raises a typed error that says what was expected, what arrived and how to fix
it; callers pass the user-facing ``name`` of the argument.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from sauerkraut_rag.errors import InvalidInputError, InvalidInputTypeError

__all__ = [
    "MAX_NESTING",
    "check_int",
    "check_nesting",
    "check_options",
    "check_path",
    "check_positive_int",
    "check_unicode",
]

MAX_NESTING = 64
"""Deepest nesting of lists and dicts accepted in metadata and filters."""


def check_int(name: str, value: Any, *, low: int, high: int | None = None, hint: str = "") -> int:
    """Return ``value`` as an int in ``[low, high]``; bools, floats and strings are rejected."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        kind = "a positive int" if low == 1 and high is None else "an int"
        raise InvalidInputTypeError(
            f"Expected {name} to be {kind}, got {type(value).__name__} ({value!r:.40})."
        )
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f">= {low}"
        raise InvalidInputError(f"Expected {name} {bound}, got {value}.{hint}")
    return int(value)


def check_positive_int(value: Any, *, name: str, hint: str = " Use at least 1.") -> int:
    """Require a positive ``int`` (bools rejected) and return it."""
    return check_int(name, value, low=1, hint=hint)


def check_options(given: Iterable[str], accepted: Iterable[str], *, what: str) -> None:
    """Reject option names not in ``accepted`` (typos), listing the accepted ones.

    ``what`` names the owner of the options, e.g. ``"ColLFM2"`` or ``"the index"``.
    """
    known = list(accepted)
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise InvalidInputError(
            f"Unknown option(s) for {what}: {unknown}. Accepted: {', '.join(sorted(known))}. "
            "Check the spelling."
        )


def check_path(value: Any, *, name: str) -> Path:
    """Return ``value`` (a ``str`` or ``os.PathLike``) as a :class:`~pathlib.Path`.

    Empty paths and paths with a NUL byte (which no file system accepts) are refused.
    """
    if not isinstance(value, (str, os.PathLike)):
        raise InvalidInputTypeError(
            f"Expected {name} to be a path (str or pathlib.Path), got {type(value).__name__} "
            f"({value!r:.60})."
        )
    text = os.fspath(value)
    if isinstance(text, bytes):
        text = os.fsdecode(text)
    if "\0" in text:
        raise InvalidInputError(
            f"Expected {name} to be a path without NUL bytes, got {text!r:.80}. Remove the "
            "'\\x00' character (it often comes from reading binary data as text)."
        )
    if not text:
        raise InvalidInputError(f"Expected {name} to be a path, got an empty string.")
    return Path(text)


def check_unicode(text: str, *, name: str) -> str:
    """Require text that can be stored as UTF-8: no lone surrogates (``"\\udc80"``).

    Lone surrogates come from decoding bytes with ``errors="surrogateescape"`` or from
    broken JSON; no database or file format can store them.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = text[exc.start : exc.end]
        raise InvalidInputError(
            f"Expected {name} to be valid Unicode text, but it holds a lone surrogate "
            f"{bad!r} at position {exc.start}. Repair the text, e.g. "
            "text.encode('utf-8', 'surrogateescape').decode('utf-8', 'replace')."
        ) from None
    return text


def check_nesting(value: Any, *, name: str, limit: int = MAX_NESTING) -> None:
    """Refuse lists/dicts nested deeper than ``limit`` (checked without recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    seen: set[int] = set()
    while stack:
        item, depth = stack.pop()
        if not isinstance(item, (dict, list, tuple)):
            continue
        if depth > limit:
            raise InvalidInputError(
                f"Expected {name} nested at most {limit} levels deep, got deeper nesting. "
                "Flatten it (e.g. join nested keys with '.') or store it as a JSON string."
            )
        if id(item) in seen:  # a cycle: reported by the JSON encoder with its own message
            continue
        seen.add(id(item))
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children)
