"""Splitting plain text and Markdown into retrieval chunks (pure functions).

A chunk is one paragraph (text between blank lines).  A heading (a Markdown ``#`` line,
or a single short line without final punctuation) is joined to the paragraph after it,
so the chunk keeps its context.  A paragraph longer than ``max_tokens`` is split at
sentence ends, and a sentence longer than that at word boundaries; the pieces are packed
greedily up to ``max_tokens``.  Token counts come from the caller (the model's own
tokenizer), counted per sentence or word and summed, which matches WordPiece exactly and
BPE closely; the encoder truncates any small overshoot.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from sauerkraut_rag.errors import InvalidInputError

TokenCounter = Callable[[Sequence[str]], list[int]]
"""Returns the number of tokens (without special tokens) of each given string."""

_BLANK_LINES = re.compile(r"\n[ \t]*\n+")
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+")
_HEADING_MAX_CHARS = 80


def split_paragraphs(text: str) -> list[str]:
    """Non-empty paragraphs of ``text``, stripped, with short headings joined to the next one."""
    normalised = text.replace("\r\n", "\n").replace("\r", "\n")
    blocks = [block.strip() for block in _BLANK_LINES.split(normalised)]
    paragraphs: list[str] = []
    pending: list[str] = []
    for block in (b for b in blocks if b):
        if _is_heading(block):
            pending.append(block)
            continue
        paragraphs.append("\n".join([*pending, block]))
        pending = []
    if pending:
        paragraphs.append("\n".join(pending))
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
    """Chunks of ``text`` (paragraphs, split further when longer than ``max_tokens``)."""
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise InvalidInputError(f"Expected max_tokens to be a positive int, got {max_tokens!r}.")
    paragraphs = split_paragraphs(text)
    if not paragraphs:
        return []
    chunks: list[str] = []
    for paragraph, n_tokens in zip(paragraphs, count_tokens(paragraphs), strict=True):
        if n_tokens <= max_tokens:
            chunks.append(paragraph)
        else:
            chunks.extend(_split_long(paragraph, count_tokens, max_tokens))
    return chunks


def _split_long(paragraph: str, count_tokens: TokenCounter, max_tokens: int) -> list[str]:
    """Sentences packed up to ``max_tokens``; over-long sentences cut at word boundaries."""
    pieces: list[tuple[str, int]] = []
    sentences = [s for s in _SENTENCE_END.split(paragraph) if s.strip()]
    for sentence, n_tokens in zip(sentences, count_tokens(sentences), strict=True):
        if n_tokens <= max_tokens:
            pieces.append((sentence, n_tokens))
        else:
            words = sentence.split()
            pieces.extend(zip(words, count_tokens(words), strict=True))
    return _pack(pieces, max_tokens)


def _pack(pieces: list[tuple[str, int]], max_tokens: int) -> list[str]:
    """Join consecutive pieces with spaces while their summed token count fits."""
    chunks: list[str] = []
    current: list[str] = []
    used = 0
    for piece, n_tokens in pieces:
        if current and used + n_tokens > max_tokens:
            chunks.append(" ".join(current))
            current, used = [], 0
        current.append(piece)
        used += n_tokens
    if current:
        chunks.append(" ".join(current))
    return chunks
