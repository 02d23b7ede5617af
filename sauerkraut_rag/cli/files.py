"""Finding the files ``sauerkraut-rag index`` was pointed at, and reading text files.

Folders are walked recursively in sorted order; hidden files and folders are skipped.
Pages are PDFs and images (the suffixes :func:`sauerkraut_rag.documents.pages.iter_pages` reads);
text files end in ``.txt``, ``.md`` or ``.markdown``.

Symbolic links inside a given folder are followed only while they stay inside that
folder: a link to ``/etc/shadow`` (or to a folder elsewhere) in a shared folder of text
files must not put that file into the index. ``follow_symlinks=True`` (the command
line's ``--follow-symlinks``) follows every link; files named on the command line are
always read, links or not (the user chose them).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
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
    """Files found under the given paths, explicitly named files of unknown type, and
    links under the given folders that lead out of them (not followed)."""

    files: list[InputFile]
    unsupported: list[Path]
    outside_links: list[Path] = field(default_factory=list)


def kind_of(path: Path) -> Kind | None:
    """``"page"`` or ``"text"`` by file suffix (case-insensitive); ``None`` if unsupported."""
    suffix = path.suffix.lower()
    if suffix in PAGE_SUFFIXES:
        return "page"
    if suffix in TEXT_SUFFIXES:
        return "text"
    return None


def discover(paths: list[str], *, follow_symlinks: bool = False) -> Discovery:
    """Files to index under ``paths`` (files or folders), each once, in a stable order.

    Raises :class:`InvalidInputError` for a path that does not exist.
    """
    found: list[InputFile] = []
    unsupported: list[Path] = []
    outside: list[Path] = []
    seen: set[Path] = set()
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_dir():
            candidates = _walk(path, follow_symlinks, outside)
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
    return Discovery(found, unsupported, outside)


def _inside(path: Path, root: Path) -> bool:
    """Whether ``path``, with every link resolved, lies inside ``root`` (resolved)."""
    try:
        return path.resolve().is_relative_to(root)
    except (OSError, RuntimeError):  # a link loop
        return False


def _walk(root: Path, follow: bool, outside: list[Path]) -> list[Path]:
    """Supported, non-hidden files under ``root``, sorted by their path below it.

    Links leading out of ``root`` are appended to ``outside`` unless ``follow``; with
    ``follow`` linked folders are descended once each (no loops).
    """
    real_root = root.resolve()
    files: list[Path] = []
    visited: set[Path] = {real_root}
    for folder, dirnames, filenames in os.walk(root, followlinks=follow):
        keep = []
        for name in sorted(d for d in dirnames if not d.startswith(".")):
            sub = Path(folder) / name
            if sub.is_symlink():
                if not follow and not _inside(sub, real_root):
                    outside.append(sub)
                    continue
                real = sub.resolve()
                if real in visited:  # a loop, or a folder reached twice
                    continue
                visited.add(real)
            keep.append(name)
        dirnames[:] = keep
        for name in filenames:
            path = Path(folder) / name
            if name.startswith(".") or kind_of(path) is None:
                continue
            if path.is_symlink() and not follow and not _inside(path, real_root):
                outside.append(path)
                continue
            if path.is_file():
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
