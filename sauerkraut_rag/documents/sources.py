"""Source resolution for page ingestion: argument checks, folder walking, sniffing, hashing."""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal, TypeAlias

from PIL import Image

from sauerkraut_rag.documents.images import describe, path_kind
from sauerkraut_rag.errors import ImageLoadError, InvalidInputError, InvalidInputTypeError

logger = logging.getLogger(__name__)

PDF_SUFFIXES = frozenset({".pdf"})
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp", ".gif"})
"""File extensions picked up from folders (case-insensitive); hidden files are ignored."""


SourceItem: TypeAlias = "str | os.PathLike[str] | bytes | bytearray | Image.Image | IO[bytes]"
Sources: TypeAlias = "SourceItem | Iterable[SourceItem]"
OnError = Literal["raise", "skip"]

_HASH_CHUNK = 1 << 20
_SNIFF_BYTES = 1024


@dataclass(frozen=True)
class Source:
    """One input to ingest: a file path, in-memory bytes or a PIL image."""

    label: str
    path: Path | None = None
    data: bytes | None = None
    image: Image.Image | None = None


def check_page_options(
    dpi: object, recursive: object, password: object, show_progress: object, on_error: object
) -> None:
    """Validate ``iter_pages`` options; raise a typed error naming the bad one."""
    if isinstance(dpi, bool) or not isinstance(dpi, (int, float)):
        raise InvalidInputTypeError(
            f"Expected dpi to be a positive number, got {type(dpi).__name__}."
        )
    if not 1 <= dpi <= 2400:
        raise InvalidInputError(
            f"Expected dpi between 1 and 2400, got {dpi}. 144 suits page retrievers; "
            "300 is typical for OCR-quality scans."
        )
    if not isinstance(recursive, bool):
        raise InvalidInputTypeError(
            f"Expected recursive to be a bool, got {type(recursive).__name__}."
        )
    if password is not None and not isinstance(password, str):
        raise InvalidInputTypeError(
            f"Expected password to be a str or None, got {type(password).__name__}."
        )
    if show_progress is not None and not isinstance(show_progress, bool):
        raise InvalidInputTypeError(
            f"Expected show_progress to be True, False or None, got {show_progress!r}."
        )
    if on_error not in ("raise", "skip"):
        raise InvalidInputError(f"Expected on_error to be 'raise' or 'skip', got {on_error!r}.")


def _is_single(item: object) -> bool:
    return isinstance(item, (str, os.PathLike, bytes, bytearray, Image.Image)) or (
        callable(getattr(item, "read", None)) and not isinstance(item, Mapping)
    )


def resolve_sources(sources: Sources, *, recursive: bool, on_error: OnError) -> list[Source]:
    """Check every source's type and list folders (sorted); missing paths raise or are skipped."""
    if _is_single(sources):
        items: list[Any] = [sources]
    elif isinstance(sources, Iterable) and not isinstance(sources, Mapping):
        items = list(sources)
    else:
        raise InvalidInputTypeError(
            f"Expected a path, bytes, a PIL image, a binary stream or a list of these, got "
            f"{type(sources).__name__}."
        )
    if not items:
        raise InvalidInputError(
            "Expected at least one source (PDF, image, folder, bytes or PIL image), got an "
            "empty list."
        )
    resolved: list[Source] = []
    for position, item in enumerate(items):
        try:
            resolved.extend(_resolve_one(item, position, recursive=recursive))
        except InvalidInputTypeError:
            raise
        except InvalidInputError as exc:
            if on_error == "raise":
                raise
            logger.warning("Skipping source %d: %s", position, exc)
    return resolved


def _resolve_one(item: Any, position: int, *, recursive: bool) -> list[Source]:
    if isinstance(item, Image.Image):
        return [Source(label="<image>", image=item)]
    if isinstance(item, (bytes, bytearray)):
        if not item:
            raise InvalidInputError(
                f"Source {position} is empty bytes; expected PDF or image data."
            )
        return [Source(label="<bytes>", data=bytes(item))]
    if isinstance(item, (str, os.PathLike)):
        return _resolve_path(item, recursive=recursive)
    if callable(getattr(item, "read", None)) and not isinstance(item, Mapping):
        data = item.read()
        if not isinstance(data, bytes):
            raise InvalidInputTypeError(
                f"Source {position} is a text stream; open the file in binary mode ('rb')."
            )
        return _resolve_one(data, position, recursive=recursive)
    raise InvalidInputTypeError(
        f"Expected each source to be a path, bytes, a PIL image or a binary stream, but "
        f"source {position} is {type(item).__name__} ({item!r:.80})."
    )


def _resolve_path(raw: str | os.PathLike[str], *, recursive: bool) -> list[Source]:
    kind = path_kind(raw)  # checked before Path("") could turn "" into "."
    path = Path(os.fspath(raw))
    if kind == "file":
        return [Source(label=str(path), path=path)]
    if kind == "missing":
        raise InvalidInputError(
            f"No such file or folder: {describe(path)}. Pass an existing PDF, image or folder."
        )
    found = sorted(_walk(path, recursive=recursive), key=lambda p: p.relative_to(path).parts)
    if not found:
        suffixes = ", ".join(sorted(PDF_SUFFIXES | IMAGE_SUFFIXES))
        hint = "" if recursive else " or pass recursive=True to look in sub-folders"
        raise InvalidInputError(
            f"Folder {describe(path)} holds no PDF or image files (looked for {suffixes}). "
            f"Check the folder{hint}."
        )
    return [Source(label=str(p), path=p) for p in found]


def _walk(root: Path, *, recursive: bool) -> Iterator[Path]:
    """Supported, non-hidden files under ``root``; symlinked folders are not followed."""
    wanted = PDF_SUFFIXES | IMAGE_SUFFIXES
    for folder, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")] if recursive else []
        for name in filenames:
            candidate = Path(folder) / name
            if name.startswith(".") or candidate.suffix.lower() not in wanted:
                continue
            if candidate.is_file():
                yield candidate


def is_pdf(source: Source) -> bool:
    """PDF by extension or by the ``%PDF-`` marker in the first kilobyte."""
    if source.path is not None:
        if source.path.suffix.lower() in PDF_SUFFIXES:
            return True
        try:
            with source.path.open("rb") as handle:
                head = handle.read(_SNIFF_BYTES)
        except OSError as exc:
            raise ImageLoadError(f"Could not read {source.label!r}: {exc}.") from exc
    else:
        head = (source.data or b"")[:_SNIFF_BYTES]
    return b"%PDF-" in head


def sha256_of(source: Source) -> str:
    """SHA-256 hex digest of a source file (read in 1 MiB chunks) or of its bytes."""
    if source.path is None:
        return hashlib.sha256(source.data or b"").hexdigest()
    digest = hashlib.sha256()
    try:
        with source.path.open("rb") as handle:
            while chunk := handle.read(_HASH_CHUNK):
                digest.update(chunk)
    except OSError as exc:
        raise ImageLoadError(f"Could not read {source.label!r}: {exc}. Check permissions.") from exc
    return digest.hexdigest()
