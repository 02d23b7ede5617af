"""Finding the files ``sauerkraut-rag index`` was pointed at, and reading text files.

Folders are walked recursively in sorted order; hidden files and folders are skipped.
Pages are PDFs and images (the suffixes :func:`sauerkraut_rag.documents.pages.iter_pages` reads);
text files end in ``.txt``, ``.md`` or ``.markdown``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from sauerkraut_rag.documents.sources import IMAGE_SUFFIXES, PDF_SUFFIXES, Source, sha256_of
from sauerkraut_rag.errors import InvalidInputError

TEXT_SUFFIXES = frozenset({".txt", ".md", ".markdown"})
PAGE_SUFFIXES = PDF_SUFFIXES | IMAGE_SUFFIXES
Kind = Literal["page", "text"]


@dataclass(frozen=True)
class InputFile:
    """One file to index: its path (as found) and whether it holds pages or text."""

    path: Path
    kind: Kind


@dataclass
class Discovery:
    """Files found under the given paths, and explicitly named files of unknown type."""

    files: list[InputFile]
    unsupported: list[Path]


def kind_of(path: Path) -> Kind | None:
    """``"page"`` or ``"text"`` by file suffix (case-insensitive); ``None`` if unsupported."""
    suffix = path.suffix.lower()
    if suffix in PAGE_SUFFIXES:
        return "page"
    if suffix in TEXT_SUFFIXES:
        return "text"
    return None


def discover(paths: list[str]) -> Discovery:
    """Files to index under ``paths`` (files or folders), each once, in a stable order.

    Raises :class:`InvalidInputError` for a path that does not exist.
    """
    found: list[InputFile] = []
    unsupported: list[Path] = []
    seen: set[Path] = set()
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_dir():
            candidates = list(_walk(path))
        elif path.is_file():
            candidates = [path]
            if kind_of(path) is None:
                unsupported.append(path)
        else:
            raise InvalidInputError(
                f"No such file or folder: {raw!r}. Pass existing PDFs, images, .txt/.md files "
                "or folders."
            )
        for candidate in candidates:
            kind = kind_of(candidate)
            key = candidate.resolve()
            if kind is None or key in seen:
                continue
            seen.add(key)
            found.append(InputFile(candidate, kind))
    return Discovery(found, unsupported)


def _walk(root: Path) -> list[Path]:
    """Supported, non-hidden files under ``root``, sorted by their path below it."""
    files: list[Path] = []
    for folder, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            path = Path(folder) / name
            if not name.startswith(".") and kind_of(path) is not None and path.is_file():
                files.append(path)
    return sorted(files, key=lambda p: p.relative_to(root).parts)


def file_sha256(path: Path) -> str:
    """SHA-256 hex digest of a file (:class:`ImageLoadError` when it cannot be read)."""
    return sha256_of(Source(label=str(path), path=path))


def read_text_file(path: Path) -> str:
    """The text of a UTF-8 file (a BOM is dropped); :class:`InvalidInputError` otherwise."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInputError(
            f"not UTF-8 text (byte {exc.start}: {data[exc.start : exc.start + 1]!r}); save "
            "it as UTF-8"
        ) from exc
