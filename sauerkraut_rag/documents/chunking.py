"""Splitting plain text and Markdown into retrieval chunks (pure functions).

Text is cut into blocks at blank lines.  A heading (a Markdown ``#`` line, or a single
short line without final punctuation) is joined to the block after it, so it is always
followed by its text; headings at the very end join the text before them.  A block
longer than ``max_tokens`` is split at sentence ends, and a sentence longer than that at
word boundaries; its heading stays with the first piece.

These units are then *packed*: consecutive units are joined (with a blank line) while
their token count fits ``max_tokens``, so short paragraphs share a chunk instead of each
becoming a tiny document.  A new chunk starts at a heading once the current chunk is at
least half full, so sections stay together where they can.  A chunk is never a lone
heading (unless the whole text is nothing but headings).

Token counts come from the caller (the model's own tokenizer), counted per unit and
summed, which matches WordPiece exactly and BPE closely; the encoder truncates any small
overshoot.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sauerkraut_rag.errors import InvalidInputError

TokenCounter = Callable[[Sequence[str]], list[int]]
"""Returns the number of tokens (without special tokens) of each given string."""

_BLANK_LINES = re.compile(r"\n[ \t]*\n+")
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+")
_HEADING_MAX_CHARS = 80


@dataclass(frozen=True)
class _Unit:
    """A piece of text that is never split further: a paragraph (or a part of a long one)."""

    text: str
    tokens: int
    heading: bool  # starts with a heading


def split_paragraphs(text: str) -> list[str]:
    """Non-empty paragraphs of ``text``, stripped, each heading joined to the text after it.

    Headings with no text after them join the paragraph before them.
    """
    return [text for text, _ in _blocks(text)]


def _blocks(text: str) -> list[tuple[str, int]]:
    """``(paragraph, number of heading lines at its start)`` pairs (Markdown ``#`` lines
    that open a block without a blank line after them count as its heading lines)."""
    normalised = text.replace("\r\n", "\n").replace("\r", "\n")
    blocks = [block.strip() for block in _BLANK_LINES.split(normalised)]
    paragraphs: list[tuple[str, int]] = []
    pending: list[str] = []
    for block in (b for b in blocks if b):
        if _is_heading(block):
            pending.append(block)
            continue
        lines = block.splitlines()
        lead = next((i for i, line in enumerate(lines) if not line.lstrip().startswith("#")), 0)
        paragraphs.append(("\n".join([*pending, block]), len(pending) + lead))
        pending = []
    if pending and paragraphs:  # trailing headings: with the text before them
        last, n_headings = paragraphs[-1]
        paragraphs[-1] = ("\n".join([last, *pending]), n_headings)
    elif pending:  # nothing but headings
        paragraphs.append(("\n".join(pending), len(pending)))
    return paragraphs


def _is_heading(block: str) -> bool:
    lines = block.splitlines()
    if all(line.lstrip().startswith("#") for line in lines):
        return True
    return (
        len(lines) == 1
        and len(block) <= _HEADING_MAX_CHARS
        and not block.endswith((".", "!", "?", ":", ";", "…", '"', "»", ")"))
    )


def chunk_text(text: str, count_tokens: TokenCounter, max_tokens: int) -> list[str]:
    """Chunks of ``text`` of at most about ``max_tokens`` tokens each (see the module doc)."""
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise InvalidInputError(f"Expected max_tokens to be a positive int, got {max_tokens!r}.")
    blocks = _blocks(text)
    if not blocks:
        return []
    units: list[_Unit] = []
    counts = count_tokens([paragraph for paragraph, _ in blocks])
    for (paragraph, n_headings), n_tokens in zip(blocks, counts, strict=True):
        if n_tokens <= max_tokens:
            units.append(_Unit(paragraph, n_tokens, n_headings > 0))
        else:
            units.extend(_split_long(paragraph, n_headings, count_tokens, max_tokens))
    return _pack(units, max_tokens)


def _split_long(
    paragraph: str, n_headings: int, count_tokens: TokenCounter, max_tokens: int
) -> list[_Unit]:
    """Sentences packed up to ``max_tokens``; the heading lines lead the first piece."""
    lines = paragraph.split("\n")
    heading, body = "\n".join(lines[:n_headings]), "\n".join(lines[n_headings:])
    pieces: list[tuple[str, int]] = []
    if heading:
        pieces.append((heading, count_tokens([heading])[0]))
    sentences = [s for s in _SENTENCE_END.split(body) if s.strip()]
    for sentence, n_tokens in zip(sentences, count_tokens(sentences), strict=True):
        if n_tokens <= max_tokens:
            pieces.append((sentence, n_tokens))
        else:
            words = sentence.split()
            pieces.extend(zip(words, count_tokens(words), strict=True))
    packed: list[_Unit] = []
    current: list[str] = []
    used = 0
    for i, (piece, n_tokens) in enumerate(pieces):
        keep_heading = heading and i == 1 and len(current) == 1  # never leave it alone
        if current and used + n_tokens > max_tokens and not keep_heading:
            packed.append(_Unit(_join_piece(current, heading), used, bool(heading) and not packed))
            current, used = [], 0
        current.append(piece)
        used += n_tokens
    if current:
        packed.append(_Unit(_join_piece(current, heading), used, bool(heading) and not packed))
    return packed


def _join_piece(parts: list[str], heading: str) -> str:
    if heading and parts[0] == heading:
        return heading + ("\n" + " ".join(parts[1:]) if len(parts) > 1 else "")
    return " ".join(parts)


def _pack(units: list[_Unit], max_tokens: int) -> list[str]:
    """Join consecutive units while they fit; start afresh at a heading past half full."""
    chunks: list[str] = []
    current: list[str] = []
    used = 0
    for unit in units:
        full = used + unit.tokens > max_tokens
        new_section = unit.heading and used >= max_tokens / 2
        if current and (full or new_section):
            chunks.append("\n\n".join(current))
            current, used = [], 0
        current.append(unit.text)
        used += unit.tokens
    if current:
        chunks.append("\n\n".join(current))
    return chunks
