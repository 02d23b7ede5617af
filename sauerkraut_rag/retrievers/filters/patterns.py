"""``$like`` patterns (as SQL ``LIKE`` in PostgreSQL, LangChain's ``PGVector`` filter).

``%`` matches any run of characters (also none), ``_`` exactly one character, and ``\\``
makes the next character literal (``\\%``, ``\\_``, ``\\\\``). The whole value must match
(``"%report%"`` for a substring, ``"report%"`` for a prefix). Case-sensitive; ``$ilike``
compares ``str.lower()`` of pattern and value.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator

from sauerkraut_rag.errors import FilterError

__all__ = ["check_pattern", "escape_like", "like_glob", "like_regex"]

_ANY, _ONE = object(), object()


def _tokens(pattern: str) -> Iterator[object | str]:
    """Wildcards as ``_ANY`` / ``_ONE``, everything else as literal characters."""
    chars = iter(pattern)
    for char in chars:
        if char == "\\":
            escaped = next(chars, None)
            if escaped is None:
                raise ValueError("a trailing backslash escapes nothing")
            yield escaped
        elif char == "%":
            yield _ANY
        elif char == "_":
            yield _ONE
        else:
            yield char


def check_pattern(pattern: str, where: str) -> None:
    """Raise :class:`FilterError` if ``pattern`` is not a valid ``$like`` pattern."""
    try:
        for _ in _tokens(pattern):
            pass
    except ValueError as exc:
        raise FilterError(
            f"Expected a $like pattern at {where}, got {pattern!r}: {exc}. In a pattern, "
            "two backslashes stand for one literal backslash, and a backslash before % or _ "
            "makes them literal."
        ) from exc


def escape_like(text: str) -> str:
    """``text`` as a pattern matching exactly itself (``%``, ``_``, ``\\`` escaped)."""
    return re.sub(r"([\\%_])", r"\\\1", text)


@functools.lru_cache(maxsize=256)
def like_regex(pattern: str, fold: bool) -> re.Pattern[str]:
    """A regex whose ``fullmatch`` equals the pattern (``fold``: on lower-cased text)."""
    if fold:
        pattern = pattern.lower()
    parts = []
    for token in _tokens(pattern):
        if token is _ANY:
            parts.append(".*")
        elif token is _ONE:
            parts.append(".")
        else:
            parts.append(re.escape(str(token)))
    return re.compile("".join(parts), re.DOTALL)


def like_glob(pattern: str, fold: bool) -> str:
    """The same pattern for SQLite's ``GLOB`` (case-sensitive, ``*``/``?`` wildcards)."""
    if fold:
        pattern = pattern.lower()
    parts = []
    for token in _tokens(pattern):
        if token is _ANY:
            parts.append("*")
        elif token is _ONE:
            parts.append("?")
        elif token in ("*", "?", "["):
            parts.append(f"[{token}]")
        else:
            parts.append(str(token))
    return "".join(parts)
