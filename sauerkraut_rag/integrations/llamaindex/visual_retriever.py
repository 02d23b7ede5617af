"""``SauerkrautPageRetriever``: text queries -> page images (``ImageNode``) by exact MaxSim."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Literal

from llama_index.core.schema import ImageNode

from sauerkraut_rag.errors import InvalidInputError
from sauerkraut_rag.integrations._common import EncoderLike
from sauerkraut_rag.integrations._page_store import PageStore
from sauerkraut_rag.integrations.llamaindex._base import IndexRetrieverBase
from sauerkraut_rag.integrations.llamaindex._pages import hit_to_image_node
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
        self,
        sources: Any,
        *,
        dpi: int = 144,
        show_progress: bool | None = None,
        page_text: Callable[[Page], str | None] | None = None,
        source_key: str | None = None,
        **options: Any,
    ) -> list[str]:
        """Render/load every page of ``sources`` and index it; returns the page ids.

        One copy per source: a file is identified by its absolute path (bytes and PIL
        images by their content hash, or by ``source_key``), which is also the
        ``ref_doc_id`` of its nodes.  A source stored unchanged is skipped (nothing is
        rendered or encoded); an edited file replaces its pages, and pages beyond its new
        length are deleted with their images.  The same bytes under two paths are two
        sources.  A node's text is ``page_text(page)`` when given, else the PDF's text
        layer (a placeholder naming the page when there is none).  ``options`` go to
        :func:`sauerkraut_rag.documents.pages.iter_pages` (``max_pixels``, ``recursive``,
        ``password``, ``on_error``).  Pages stream through in batches.
        """
        ids = self._store.add_sources(
            sources,
            self._image_folder,
            dpi=dpi,
            image_format=self._image_format,
            batch_size=self._batch_size,
            page_text=page_text,
            show_progress=show_progress,
            source_key=source_key,
            **options,
        )
        logger.debug("Indexed %d pages into %s", len(ids), self._image_folder)
        return ids

    def add_pages(self, pages: Iterable[Page]) -> list[str]:
        """Save, encode and store pages (upsert: a page of the same source keeps its id)."""
        return self._store.add_pages(
            pages, self._image_folder, image_format=self._image_format, batch_size=self._batch_size
        )

    def delete_pages(self, page_ids: list[str]) -> int:
        """Remove pages by id, and their image files; returns how many were removed."""
        return self._store.delete_pages(list(page_ids))

    def delete_sources(self, sources: Any) -> int:
        """Remove every page (and image) of the given files or source keys; returns the count."""
        return self._store.delete_sources(sources)

    def delete_ref_doc(self, ref_doc_id: str, **kwargs: Any) -> int:
        """Remove the pages of one source (its ``ref_doc_id`` is the source key)."""
        return self._store.delete_sources([ref_doc_id])

    @property
    def _store(self) -> PageStore:
        return PageStore(self._encoder, self._index)

    def _to_node(self, hit: Hit) -> ImageNode:
        return hit_to_image_node(
            hit, self._image_folder, include_image_data=self.include_image_data
        )


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
