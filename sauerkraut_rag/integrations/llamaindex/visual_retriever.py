"""``SauerkrautPageRetriever``: text queries -> page images (``ImageNode``) by exact MaxSim."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import Any, Literal

from llama_index.core.schema import ImageNode

from sauerkraut_rag.documents.pages import iter_pages, save_page_image
from sauerkraut_rag.errors import InvalidInputError, InvalidInputTypeError
from sauerkraut_rag.integrations._common import EncoderLike, page_id
from sauerkraut_rag.integrations.llamaindex._base import IndexRetrieverBase
from sauerkraut_rag.integrations.llamaindex._pages import (
    hit_to_image_node,
    page_metadata,
)
from sauerkraut_rag.integrations.llamaindex._support import IndexLike
from sauerkraut_rag.types import Hit, Page

logger = logging.getLogger(__name__)


class SauerkrautPageRetriever(IndexRetrieverBase):
    """Retrieve rendered document pages for a text query with a page model (no OCR).

    Pages come from PDFs, image files, folders or bytes (:meth:`from_sources`,
    :meth:`add_sources`); each page image is saved under ``image_folder`` (default:
    ``<index folder>/pages``) and its multi-vector stored in the index (a folder, an
    index object, or ``None`` for a temporary one; see ``SauerkrautRetriever``).  Results are
    ``ImageNode``s with ``image_path``, ``image_mimetype`` and metadata ``source`` and
    ``page`` (1-based), scored by MaxSim / number of query tokens; with
    ``include_image_data=True`` the base64 image is filled in as well.  The nodes work in
    ``RetrieverQueryEngine.from_args(retriever, llm=..., multimodal=True)``.
    """

    modality = "image"

    def __init__(
        self,
        encoder: EncoderLike,
        index: IndexLike = None,
        *,
        image_folder: str | Path | None = None,
        include_image_data: bool = False,
        image_format: Literal["png", "webp"] = "png",
        similarity_top_k: int = 3,
        batch_size: int = 4,
        **kwargs: Any,
    ) -> None:
        """Wrap a page ``encoder`` and an index; ``kwargs`` as for ``SauerkrautRetriever``.

        (``filters``, ``callback_manager``, ``load_kwargs``, ``read_only``,
        ``index_options``, ``verbose``.)
        """
        if image_format not in ("png", "webp"):
            raise InvalidInputError(f"Expected image_format 'png' or 'webp', got {image_format!r}.")
        super().__init__(
            encoder, index, similarity_top_k=similarity_top_k, batch_size=batch_size, **kwargs
        )
        self._image_folder = _image_folder(image_folder, self._handle.folder)
        self.include_image_data = bool(include_image_data)
        self._image_format: Literal["png", "webp"] = image_format

    @classmethod
    def from_sources(
        cls,
        sources: Any,
        encoder: EncoderLike,
        index: IndexLike = None,
        *,
        dpi: int = 144,
        show_progress: bool | None = None,
        page_options: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> SauerkrautPageRetriever:
        """Build a retriever and index every page of ``sources`` (PDFs, images, folders).

        ``page_options`` go to :meth:`add_sources`; ``kwargs`` to the constructor.
        """
        retriever = cls(encoder, index, **kwargs)
        retriever.add_sources(sources, dpi=dpi, show_progress=show_progress, **(page_options or {}))
        return retriever

    @property
    def image_folder(self) -> Path:
        """Folder holding the stored page images."""
        return self._image_folder

    def add_sources(
        self, sources: Any, *, dpi: int = 144, show_progress: bool | None = None, **options: Any
    ) -> list[str]:
        """Render/load every page of ``sources`` and index it; returns the page ids.

        ``options`` go to :func:`sauerkraut_rag.documents.pages.iter_pages` (``max_pixels``,
        ``recursive``, ``password``, ``on_error``).  Pages stream through in batches, so
        a long PDF never sits in memory at once.
        """
        pages = iter_pages(sources, dpi=dpi, show_progress=show_progress, **options)
        return self.add_pages(pages)

    def add_pages(self, pages: Iterable[Page]) -> list[str]:
        """Save, encode and store pages (upsert: a page of the same file keeps its id).

        A page's id is derived from its source label, the source's SHA-256 and the page
        number, so indexing the same file again replaces its pages instead of duplicating
        them.
        """
        ids: list[str] = []
        for batch in _batches(pages, self._batch_size):
            for i, page in enumerate(batch):
                if not isinstance(page, Page):
                    raise InvalidInputTypeError(
                        f"Expected Page objects (from sauerkraut_rag.documents.iter_pages), got "
                        f"{type(page).__name__} at batch position {i}. Use add_sources()."
                    )
            paths = [
                save_page_image(page, self._image_folder, format=self._image_format)
                for page in batch
            ]
            multivectors = self._encoder.encode_documents(
                [page.image for page in batch], batch_size=self._batch_size, show_progress=False
            )
            batch_ids = [page_id(page) for page in batch]
            records = {  # a page repeated within one batch is stored once
                pid: (vectors, page_metadata(page, path))
                for pid, page, path, vectors in zip(
                    batch_ids, batch, paths, multivectors, strict=True
                )
            }
            self._index.upsert(
                list(records),
                [vectors for vectors, _ in records.values()],
                [metadata for _, metadata in records.values()],
            )
            ids.extend(batch_ids)
        logger.debug("Indexed %d pages into %s", len(ids), self._image_folder)
        return ids

    def delete_pages(self, page_ids: list[str]) -> int:
        """Remove pages by id from the index (their image files stay); returns the count."""
        return self._index.delete(list(page_ids))

    def _to_node(self, hit: Hit) -> ImageNode:
        return hit_to_image_node(
            hit, self._image_folder, include_image_data=self.include_image_data
        )


def _batches(items: Iterable[Page], size: int) -> Iterator[list[Page]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def _image_folder(image_folder: Any, index_folder: Path | None) -> Path:
    """``image_folder`` if given, else ``<index folder>/pages``."""
    if image_folder is not None:
        return Path(image_folder)
    if index_folder is None:
        raise InvalidInputError(
            "Cannot tell where to store page images: the index has no folder. "
            "Pass image_folder='./pages' or use a VoyagerIndex."
        )
    return index_folder / "pages"
