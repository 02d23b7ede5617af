"""Pages in an index, one copy per source: shared by the LangChain and LlamaIndex page
retrievers (framework-free), so both can serve one index.

A *source* (a PDF, an image file, bytes, a PIL image) is identified by a key: the
absolute path of a file, ``"sha256:<hex>"`` of in-memory bytes or pixels, or a key the
caller gives (``source_key=``).  A page's id is a hash of its source key and page number,
and its image file is named after that id, so:

- adding a source whose content is stored unchanged does nothing (nothing is rendered or
  encoded);
- adding an edited file replaces its pages, and deletes pages (and images) beyond its
  new page count;
- the same bytes under two paths are two sources (each stored once); the same bytes
  passed twice as ``bytes`` are one;
- deleting pages or sources deletes their image files too.

Each stored page keeps its page metadata plus ``source_key``, ``image_path`` (absolute),
``image_file`` (name inside the image folder) and ``image_mimetype``; its payload is the
page's text (``page_text(page)`` when given, else the PDF's text layer, else ``None``).
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import mimetypes
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Literal

from tqdm.auto import tqdm

from sauerkraut_rag.documents.pages import iter_pages, save_page_image, source_sha256
from sauerkraut_rag.documents.sources import Source, resolve_sources
from sauerkraut_rag.encoders.base import MultiVectorEncoder
from sauerkraut_rag.errors import ImageLoadError, InvalidInputError, InvalidInputTypeError
from sauerkraut_rag.retrievers.listing import iter_documents
from sauerkraut_rag.retrievers.protocol import MultiVectorIndex, StoredDocument
from sauerkraut_rag.types import Metadata, Page

logger = logging.getLogger(__name__)

PageText = Callable[[Page], str | None]
ImageFormat = Literal["png", "webp"]
_IN_MEMORY = ("<bytes>", "<image>")


def page_id(key: str, page_number: int) -> str:
    """Id of page ``page_number`` of the source with key ``key`` (32 hex digits)."""
    return hashlib.sha256(f"{key}\x00{page_number}".encode()).hexdigest()[:32]


def key_of(source: Source, sha: str) -> str:
    """The default source key: an absolute path, or the content hash of in-memory data."""
    if source.path is not None:
        return str(source.path.resolve())
    return f"sha256:{sha}"


def page_key(page: Page) -> str:
    """The source key of a page made by ``iter_pages`` (or given by the caller)."""
    given = page.metadata.get("source_key")
    if isinstance(given, str) and given:
        return given
    if page.source not in _IN_MEMORY:
        return str(Path(page.source).resolve())
    return f"sha256:{page.metadata.get('source_sha256', '')}"


class PageStore:
    """Render, encode and store pages of sources; delete pages and sources with images."""

    def __init__(self, encoder: MultiVectorEncoder, index: MultiVectorIndex) -> None:
        self.encoder = encoder
        self.index = index

    # ---- adding ------------------------------------------------------------------------

    def add_sources(
        self,
        sources: Any,
        folder: Path,
        *,
        dpi: int,
        image_format: ImageFormat,
        batch_size: int,
        page_text: PageText | None,
        show_progress: bool | None,
        source_key: str | None = None,
        **page_options: Any,
    ) -> list[str]:
        """Index every page of ``sources``; returns the ids of all their pages, in order."""
        if source_key is not None and (not isinstance(source_key, str) or not source_key):
            raise InvalidInputTypeError(
                f"Expected source_key to be a non-empty str, got {source_key!r}."
            )
        on_error = page_options.get("on_error", "raise")
        resolved = resolve_sources(
            sources, recursive=page_options.get("recursive", True), on_error=on_error
        )
        if source_key is not None and len(resolved) != 1:
            raise InvalidInputError(
                f"source_key names one source, but the sources resolve to {len(resolved)} "
                "files or items. Add them one at a time, or leave source_key out (files are "
                "keyed by their path)."
            )
        bar = tqdm(total=0, unit="page", desc="pages", disable=_disabled(show_progress), delay=1.0)
        ids: list[str] = []
        try:
            for source in resolved:
                try:
                    sha = source_sha256(source)
                except ImageLoadError as exc:
                    if on_error == "raise":
                        raise
                    logger.warning("Skipping %s: %s", source.label, exc)
                    continue
                key = source_key or key_of(source, sha)
                ids.extend(
                    self._add_source(
                        source,
                        key,
                        sha,
                        folder,
                        bar,
                        dpi=dpi,
                        image_format=image_format,
                        batch_size=batch_size,
                        page_text=page_text,
                        page_options=page_options,
                    )
                )
        finally:
            bar.close()
        return ids

    def _add_source(
        self,
        source: Source,
        key: str,
        sha: str,
        folder: Path,
        bar: Any,
        *,
        dpi: int,
        image_format: ImageFormat,
        batch_size: int,
        page_text: PageText | None,
        page_options: dict[str, Any],
    ) -> list[str]:
        first = self.index.get([page_id(key, 1)])
        old_total = _total_pages(first[0]) if first else 0
        if first and first[0].metadata.get("source_sha256") == sha:
            logger.info("%s is stored unchanged; skipped", source.label)
            return [
                d.id for d in self.index.get([page_id(key, n) for n in range(1, old_total + 1)])
            ]
        item = (
            source.path
            if source.path is not None
            else source.data
            if source.data is not None
            else source.image
        )
        pages = iter_pages(item, dpi=dpi, show_progress=False, **page_options)
        ids = self.add_pages(
            pages,
            folder,
            image_format=image_format,
            batch_size=batch_size,
            page_text=page_text,
            key=key,
            bar=bar,
        )
        stale = [page_id(key, n) for n in range(len(ids) + 1, old_total + 1)]
        self.delete_pages(stale)
        if old_total:
            logger.info("Replaced %s (%d pages, before %d)", source.label, len(ids), old_total)
        return ids

    def add_pages(
        self,
        pages: Iterable[Page],
        folder: Path,
        *,
        image_format: ImageFormat,
        batch_size: int,
        page_text: PageText | None = None,
        key: str | None = None,
        bar: Any = None,
    ) -> list[str]:
        """Save, encode and store pages (upsert by page id); returns their ids in order."""
        ids: list[str] = []
        for batch in _batches(pages, batch_size):
            for i, page in enumerate(batch):
                if not isinstance(page, Page):
                    raise InvalidInputTypeError(
                        f"Expected Page objects (from sauerkraut_rag.documents.iter_pages), got "
                        f"{type(page).__name__} at batch position {i}. Use add_sources()."
                    )
            if bar is not None:
                _grow(bar, batch[0])
            vectors = self.encoder.encode_documents(
                [page.image for page in batch], batch_size=len(batch), show_progress=False
            )
            records: dict[str, tuple[Any, Metadata, str | None]] = {}
            for page, tokens in zip(batch, vectors, strict=True):
                pkey = key or page_key(page)
                pid = page_id(pkey, page.page_number)
                path = save_page_image(page, folder, format=image_format, name=pid)
                metadata = _metadata(page, pkey, path)
                records[pid] = (tokens, metadata, _text(page_text, page))  # repeats stored once
            replaced = self.index.get(list(records))
            self.index.upsert(
                list(records),
                [r[0] for r in records.values()],
                [r[1] for r in records.values()],
                [r[2] for r in records.values()],
            )
            _unlink_old_images(replaced, {pid: r[1] for pid, r in records.items()})
            ids.extend(page_id(key or page_key(p), p.page_number) for p in batch)
            if bar is not None:
                bar.update(len(batch))
        return ids

    # ---- deleting ----------------------------------------------------------------------

    def delete_pages(self, ids: list[str]) -> int:
        """Delete pages by id, with their image files; unknown ids are ignored."""
        if not ids:
            return 0
        for doc in self.index.get(list(ids)):
            image = _own_image(doc.id, doc.metadata)
            if image is not None:
                image.unlink(missing_ok=True)
        return int(self.index.delete(list(ids)))

    def delete_sources(self, sources: Iterable[str | Path]) -> int:
        """Delete every page of the given sources (keys, or file paths); returns the count.

        A path need not exist any more.  One pass over the stored metadata.
        """
        keys: set[str] = set()
        for item in [sources] if isinstance(sources, (str, Path)) else list(sources):
            if not isinstance(item, (str, Path)) or not str(item):
                raise InvalidInputTypeError(
                    f"Expected source keys or file paths (str or Path), got {item!r}."
                )
            keys.add(str(item))
            keys.add(str(Path(item).expanduser().resolve()))
        ids = [
            doc.id for doc in iter_documents(self.index) if doc.metadata.get("source_key") in keys
        ]
        return self.delete_pages(ids)


def _batches(items: Iterable[Page], size: int) -> Iterator[list[Page]]:
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def _disabled(show_progress: bool | None) -> bool | None:
    return None if show_progress is None else not show_progress


def _grow(bar: Any, page: Page) -> None:
    """A source's first batch: grow the bar's total by its page count."""
    if page.page_number == 1:
        bar.total = (bar.total or 0) + int(page.metadata.get("total_pages", 1))
        bar.refresh()


def _total_pages(doc: StoredDocument) -> int:
    total = doc.metadata.get("total_pages", 1)
    return total if isinstance(total, int) and total > 0 else 1


def _metadata(page: Page, key: str, path: Path) -> Metadata:
    return {
        **page.metadata,
        "source": page.source,
        "page": page.page_number,
        "source_key": key,
        "image_path": str(path.resolve()),
        "image_file": path.name,
        "image_mimetype": mimetypes.guess_type(path.name)[0] or "image/png",
    }


def _text(page_text: PageText | None, page: Page) -> str | None:
    if page_text is None:
        return page.text or None
    text = page_text(page)
    if text is not None and not isinstance(text, str):
        raise InvalidInputTypeError(
            f"Expected page_text to return a str or None, got {type(text).__name__} for "
            f"{page.source} page {page.page_number}."
        )
    return text


def _own_image(doc_id: str, metadata: Metadata) -> Path | None:
    """The page's image file if this store wrote it (named after the page id), else None:
    images that other tools recorded are never deleted."""
    path = metadata.get("image_path")
    if isinstance(path, str) and path and Path(path).stem == doc_id:
        return Path(path)
    return None


def _unlink_old_images(replaced: list[StoredDocument], new: dict[str, Metadata]) -> None:
    """Image files of replaced pages that the new version no longer uses (format change)."""
    for doc in replaced:
        old = _own_image(doc.id, doc.metadata)
        if old is not None and str(old) != new.get(doc.id, {}).get("image_path"):
            old.unlink(missing_ok=True)
