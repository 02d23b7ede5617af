"""Helpers shared by the reliability tests: index snapshots, file damage, message checks."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sauerkraut_rag.retrievers.voyager.index import VoyagerIndex

Snapshot = dict[str, tuple[str, str | None, bytes]]
"""id -> (metadata as sorted JSON, payload, stored vector bytes)."""


@dataclass
class IndexHolder:
    """A writable index in ``folder``; tests may close and reopen it (``index`` is replaced)."""

    folder: Path
    index: VoyagerIndex
    ids: list[str] = field(default_factory=list)


def snapshot(index: VoyagerIndex) -> Snapshot:
    """Everything an index stores per live document (ids, metadata, payloads, vectors)."""
    ids = sorted(index._snap.id_to_pos)
    return {
        doc.id: (
            json.dumps(doc.metadata, sort_keys=True),
            doc.payload,
            np.ascontiguousarray(doc.multivector).tobytes(),
        )
        for doc in index.get(ids, include_vectors=True)
    }


def assert_same_except(before: Snapshot, after: Snapshot, added: tuple[str, ...] = ()) -> None:
    """``after`` holds exactly ``before`` plus the ``added`` ids, old documents untouched."""
    assert set(after) == set(before) | set(added), (sorted(before), sorted(after), added)
    changed = [doc_id for doc_id in before if after[doc_id] != before[doc_id]]
    assert not changed, f"stored documents changed: {changed}"


def folder_digest(folder: Path) -> dict[str, str]:
    """Relative path -> SHA-256 of every file below ``folder``."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def files_outside(root: Path, allowed: Path) -> set[str]:
    """Every file or folder under ``root`` that is not ``allowed`` or inside it."""
    out: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            if path != allowed and allowed not in path.parents:
                out.add(str(path.relative_to(root)))
    return out


def assert_helpful(exc: BaseException, words: tuple[str, ...]) -> None:
    """The message names the problem and the fix: every word appears (case-insensitive)."""
    message = str(exc)
    missing = [w for w in words if w.lower() not in message.lower()]
    assert not missing, f"{type(exc).__name__} message lacks {missing}: {message!r}"
    assert "Traceback" not in message


@contextmanager
def damaged(
    index_holder: Any, relpath: Callable[[Path], Path], mutate: Callable[[bytes], bytes]
) -> Iterator[Path]:
    """Close ``index_holder.index``, damage one file of its folder, and yield the folder.

    Afterwards checks that the failed open neither repaired nor deleted the damaged file,
    restores the original bytes and reopens ``index_holder.index``.
    """
    folder = index_holder.folder
    index_holder.index.close()
    path = relpath(folder)
    original = path.read_bytes()
    bad = mutate(original)
    path.write_bytes(bad)
    try:
        yield folder
    finally:
        untouched = path.is_file() and path.read_bytes() == bad
        path.write_bytes(original)
        index_holder.index = VoyagerIndex.open(folder)
        assert untouched, f"opening the damaged folder changed or removed {path.name}"


def first_segment(folder: Path) -> Path:
    """The first vector segment file of an index folder."""
    return sorted((folder / "vectors").glob("*.npy"))[0]


def flip_byte(offset_from_end: int = 1) -> Callable[[bytes], bytes]:
    """A mutation that flips every bit of the byte ``offset_from_end`` bytes before the end."""

    def mutate(data: bytes) -> bytes:
        out = bytearray(data)
        out[len(out) - offset_from_end] ^= 0xFF
        return bytes(out)

    return mutate


def truncate_half(data: bytes) -> bytes:
    """A mutation that keeps the first half of a file."""
    return data[: len(data) // 2]
