"""Paragraph chunking of text files (``sauerkraut_rag.documents.chunking``), with a word counter."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from sauerkraut_rag.documents.chunking import chunk_text, split_paragraphs
from sauerkraut_rag.errors import InvalidInputError


def words(texts: Sequence[str]) -> list[int]:
    """A token counter whose tokens are whitespace-separated words."""
    return [len(text.split()) for text in texts]


def test_paragraphs_and_headings() -> None:
    text = (
        "# Title\r\n\r\n## Section\n\nFirst paragraph,\nwrapped.\n\n\n  \n"
        "Short heading\n\nSecond paragraph.\n\nA closing line without punctuation"
    )
    assert split_paragraphs(text) == [
        "# Title\n## Section\nFirst paragraph,\nwrapped.",
        "Short heading\nSecond paragraph.",
        "A closing line without punctuation",  # a trailing heading stays on its own
    ]
    assert split_paragraphs(" \n\n\t\n") == []


def test_short_paragraphs_are_chunks() -> None:
    text = "One two three.\n\nFour five.\n\nSix."
    assert chunk_text(text, words, 5) == ["One two three.", "Four five.", "Six."]


def test_long_paragraph_splits_at_sentences_then_words() -> None:
    long_sentence = " ".join(f"w{i}" for i in range(12))
    text = f"A b c. D e f! G h i? {long_sentence}.\n\nTail."
    chunks = chunk_text(text, words, 6)
    assert chunks[:2] == ["A b c. D e f!", "G h i? w0 w1 w2"]  # greedy packing
    assert all(len(chunk.split()) <= 6 for chunk in chunks)
    assert chunks[-1] == "Tail."
    # nothing is lost or reordered
    assert " ".join(chunks).split() == text.split()


def test_single_overlong_word_is_its_own_chunk() -> None:
    def chars(texts: Sequence[str]) -> list[int]:
        return [len(t) for t in texts]

    chunks = chunk_text("ab " + "x" * 30 + " cd.", chars, 10)
    assert chunks == ["ab", "x" * 30, "cd."]


@pytest.mark.parametrize("bad", [0, -1, True, 2.5])
def test_max_tokens_is_checked(bad: object) -> None:
    with pytest.raises(InvalidInputError, match="max_tokens"):
        chunk_text("text", words, bad)  # type: ignore[arg-type]
