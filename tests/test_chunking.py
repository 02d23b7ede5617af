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
        # a trailing heading joins the text before it: never a heading on its own
        "Short heading\nSecond paragraph.\nA closing line without punctuation",
    ]
    assert split_paragraphs(" \n\n\t\n") == []
    assert split_paragraphs("# Only\n\n## Headings") == ["# Only\n## Headings"]


def test_short_paragraphs_are_packed_up_to_the_budget() -> None:
    text = "One two three.\n\nFour five.\n\nSix."
    assert chunk_text(text, words, 5) == ["One two three.\n\nFour five.", "Six."]
    assert chunk_text(text, words, 100) == [text]
    assert chunk_text(text, words, 3) == ["One two three.", "Four five.\n\nSix."]


def test_a_heading_starts_a_new_chunk_once_the_current_one_is_half_full() -> None:
    text = "Intro one two three.\n\n# Part\n\nBody four five.\n\nMore six."
    # 4 words used of 8 (half): the heading opens a new chunk and keeps its text
    assert chunk_text(text, words, 8) == [
        "Intro one two three.",
        "# Part\nBody four five.\n\nMore six.",
    ]
    # 4 of 20 is less than half: packing goes on across the heading
    assert chunk_text(text, words, 20) == [text.replace("# Part\n\n", "# Part\n")]


def test_no_chunk_is_a_lone_heading() -> None:
    heading = "# 1. Installation and first steps"
    body = " ".join(f"Sentence {i} has five words." for i in range(8))
    text = f"{heading}\n\n{body}\n\n## Closing notes"
    chunks = chunk_text(text, words, 10)
    assert chunks[0].startswith(heading + "\nSentence 0")  # the heading leads its text
    assert all(not _only_headings(chunk) for chunk in chunks)
    assert chunks[-1].endswith("## Closing notes")  # a trailing heading joins the text
    assert " ".join(chunks).split() == text.split()  # nothing lost or reordered


def _only_headings(chunk: str) -> bool:
    return all(line.lstrip().startswith("#") for line in chunk.splitlines() if line.strip())


def test_long_paragraph_splits_at_sentences_then_words() -> None:
    long_sentence = " ".join(f"w{i}" for i in range(12))
    text = f"A b c. D e f! G h i? {long_sentence}.\n\nTail."
    chunks = chunk_text(text, words, 6)
    assert chunks[:2] == ["A b c. D e f!", "G h i? w0 w1 w2"]  # greedy packing
    assert all(len(chunk.split()) <= 6 for chunk in chunks)
    assert chunks[-1].endswith("Tail.")  # packed with the last piece when it fits
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


def test_heading_lines_opening_a_block_lead_its_first_piece() -> None:
    """A changelog entry: headings and a long list in one block (no blank line between)."""
    items = "\n".join(f"- Change number {i} makes things better." for i in range(10))
    text = f"## [2.0.8](https://example.org) (2021-11-24)\n### Changed\n{items}"
    chunks = chunk_text(text, words, 12)
    assert chunks[0].startswith("## [2.0.8](https://example.org) (2021-11-24)\n### Changed\n- ")
    assert all(not _only_headings(chunk) for chunk in chunks)
    assert " ".join(chunks).split() == text.split()
