"""``VisualPageRetriever``: LangChain retriever over page images (PDFs, scans) by MaxSim."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, Self

from langchain_core.callbacks import (
    AsyncCallbackManagerForRetrieverRun,
    CallbackManagerForRetrieverRun,
)
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, Field, PrivateAttr

from sauerkraut_rag._checks import check_positive_int
from sauerkraut_rag.encoders.base import MultiVectorEncoder
from sauerkraut_rag.errors import InvalidInputError
from sauerkraut_rag.integrations._common import (
    ClosesIndex,
    EncoderLike,
    IndexHandle,
    image_base64,
    normalise,
    page_content,
    resolve_encoder,
    resolve_index,
    run_off_loop,
)
from sauerkraut_rag.integrations._page_store import PageStore
from sauerkraut_rag.integrations.langchain._inputs import check_query
from sauerkraut_rag.retrievers._validation import check_filter
from sauerkraut_rag.retrievers.protocol import MetadataFilter, MultiVectorIndex
from sauerkraut_rag.types import Hit, Page

logger = logging.getLogger(__name__)

PAGES_FOLDER = "pages"
"""Sub-folder of the index folder that holds the rendered page images."""


class VisualPageRetriever(ClosesIndex, BaseRetriever):
    """Retrieve document pages as images with a page model (no OCR).

    Build it from PDFs, image files or folders with :meth:`from_sources`, or reopen a
    persisted index with ``VisualPageRetriever(model=..., index="folder")``.  Each result
    is a ``Document`` whose ``page_content`` is the page's text (the PDF's text layer, or
    what a ``page_text`` function returned at ingestion) or, for a page without text, a
    placeholder naming the source and page, so a text chain never gets an empty context;
    its metadata holds ``source``,
    ``page`` (1-based), ``image_path`` (the rendered page image in the index folder),
    ``score`` (MaxSim divided by the number of query tokens) and the other page facts
    (``total_pages``, ``width``, ``height``, ``kind``, ``source_sha256``, ``dpi``).
    With ``include_image_base64=True`` it also holds ``image_base64`` and
    ``image_mime_type``, ready for a multimodal chat model.

    ``k`` is set in the constructor and can be overridden per call:
    ``retriever.invoke("query", k=2)``; so can ``filter``, a filter in the dict language
    of LangChain's stores (``{"page": {"$lte": 3}}``, ``{"source": {"$in": [...]}}``;
    see :mod:`sauerkraut_rag.retrievers.filters`) evaluated inside the index.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    model: Any = Field(description="The loaded page encoder.")
    index: Any = Field(description="The MultiVectorIndex holding the pages.")
    k: int = Field(default=4, description="Pages returned per query.")
    include_image_base64: bool = Field(default=False, description="Add base64 page images.")
    filter: Any = Field(
        default=None, description="Metadata pre-filter (filter-language dict, or predicate)."
    )
    _handle: IndexHandle | None = PrivateAttr(default=None)
    _pages_dir: Path | None = PrivateAttr(default=None)

    def __init__(
        self,
        model: EncoderLike,
        index: MultiVectorIndex | str | Path | None = None,
        *,
        k: int = 4,
        include_image_base64: bool = False,
        filter: MetadataFilter | None = None,
        read_only: bool = False,
        load_kwargs: dict[str, Any] | None = None,
        index_options: dict[str, Any] | None = None,
        pages_dir: str | Path | None = None,
        **kwargs: Any,
    ) -> None:
        """``model``: page encoder, hub id or folder; ``index``: index, folder or None (temp).

        A folder is opened (``read_only`` for search-only use) or created with
        ``index_options``; :meth:`close` releases it. ``pages_dir``: where rendered page
        images are saved (default ``<index folder>/pages``); required for an index without
        a folder, such as a ``QdrantIndex``: pick a place every reader can reach.
        """
        encoder = resolve_encoder(model, modality="image", role="model", load_kwargs=load_kwargs)
        k = check_positive_int(k, name="k")
        check_filter(filter)
        handle = resolve_index(
            index, encoder=encoder, role="index", read_only=read_only, **(index_options or {})
        )
        try:
            super().__init__(
                model=encoder,
                index=handle.index,
                k=k,
                include_image_base64=include_image_base64,
                filter=filter,
                **kwargs,
            )
        except BaseException:
            handle.close()  # do not keep the folder's writer lock on a failed construction
            raise
        self._handle = handle
        self._pages_dir = None if pages_dir is None else Path(pages_dir)

    @property
    def encoder(self) -> MultiVectorEncoder:
        """The page encoder."""
        return self.model

    # ---- ingestion ---------------------------------------------------------------------

    @classmethod
    def from_sources(
        cls,
        sources: Any,
        model: MultiVectorEncoder | str | Path,
        *,
        index_path: str | Path | MultiVectorIndex | None = None,
        dpi: int = 144,
        k: int = 4,
        index_options: dict[str, Any] | None = None,
        include_image_base64: bool = False,
        image_format: Literal["png", "webp"] = "png",
        batch_size: int = 4,
        page_text: Callable[[Page], str | None] | None = None,
        show_progress: bool | None = None,
        load_kwargs: dict[str, Any] | None = None,
        pages_dir: str | Path | None = None,
        **page_options: Any,
    ) -> Self:
        """Render and index ``sources`` (PDFs, images, folders, bytes) into ``index_path``.

        ``index_path``: a folder, an index object (e.g. a ``QdrantIndex``) or ``None`` (a
        temporary folder deleted with the retriever).  Pages stream through the model
        ``batch_size`` at a time; page images are written to ``pages_dir`` (default
        ``index_path / "pages"``).  ``page_options`` go to :func:`sauerkraut_rag.documents.pages.
        iter_pages` (``max_pixels``, ``recursive``, ``password``, ``on_error``).
        """
        retriever = cls(
            model,
            index_path,
            k=k,
            include_image_base64=include_image_base64,
            load_kwargs=load_kwargs,
            index_options=index_options,
            pages_dir=pages_dir,
        )
        retriever.add_sources(
            sources,
            dpi=dpi,
            image_format=image_format,
            batch_size=batch_size,
            page_text=page_text,
            show_progress=show_progress,
            **page_options,
        )
        return retriever

    def add_sources(
        self,
        sources: Any,
        *,
        dpi: int = 144,
        image_dir: str | Path | None = None,
        image_format: Literal["png", "webp"] = "png",
        batch_size: int = 4,
        page_text: Callable[[Page], str | None] | None = None,
        show_progress: bool | None = None,
        source_key: str | None = None,
        **page_options: Any,
    ) -> list[str]:
        """Render, encode and store pages; returns the ids of all pages of ``sources``.

        One copy per source: a file is identified by its absolute path (bytes and PIL
        images by their content hash, or by ``source_key``), and a page's id by its source
        and page number.  A source stored unchanged is skipped (nothing is rendered or
        encoded); an edited file replaces its pages, and pages beyond its new length are
        deleted with their images.  The same bytes under two paths are two sources.
        ``page_text`` sets each page's text; by default it is the PDF's text layer.
        """
        batch_size = check_positive_int(batch_size, name="batch_size")
        ids = self._store.add_sources(
            sources,
            self._image_dir(image_dir),
            dpi=dpi,
            image_format=image_format,
            batch_size=batch_size,
            page_text=page_text,
            show_progress=show_progress,
            source_key=source_key,
            **page_options,
        )
        logger.info("Indexed %d pages; the index holds %d documents", len(ids), len(self.index))
        return ids

    def delete_pages(self, ids: list[str]) -> int:
        """Delete pages by id, and their image files; returns how many were deleted."""
        return self._store.delete_pages(list(ids))

    def delete_sources(self, sources: Any) -> int:
        """Delete every page (and image) of the given files or source keys; returns the count.

        A file path need not exist any more.
        """
        return self._store.delete_sources(sources)

    @property
    def _store(self) -> PageStore:
        return PageStore(self.encoder, self.index)

    def _image_dir(self, image_dir: str | Path | None) -> Path:
        if image_dir is not None:
            return Path(image_dir)
        if self._pages_dir is not None:
            return self._pages_dir
        folder = self._handle.folder if self._handle is not None else None
        if folder is None:
            raise InvalidInputError(
                "This index has no folder to store page images in (e.g. a QdrantIndex). Pass "
                "pages_dir=... (a folder every reader of the index can reach) when creating "
                "the retriever, or image_dir=... to add_sources()."
            )
        return folder / PAGES_FOLDER

    # ---- retrieval ---------------------------------------------------------------------

    def search(
        self, query: str, *, k: int | None = None, filter: MetadataFilter | None = None
    ) -> list[Document]:
        """The ``k`` best pages for ``query`` as Documents, best first."""
        check_query(query)
        top = check_positive_int(self.k if k is None else k, name="k")
        check_filter(filter)
        if len(self.index) == 0:
            return []
        tokens = self.encoder.encode_queries([query], batch_size=1, show_progress=False)[0]
        active = self.filter if filter is None else filter
        hits = self.index.search([tokens], top, filter=active)[0]
        return [self._to_document(hit, tokens.shape[0]) for hit in hits]

    def _to_document(self, hit: Hit, n_query_tokens: int) -> Document:
        metadata = {**hit.metadata, "score": float(normalise(hit.score, n_query_tokens))}
        if self.include_image_base64:
            data, mime = image_base64(metadata["image_path"])
            metadata["image_base64"] = data
            metadata["image_mime_type"] = mime
        return Document(
            id=hit.id, page_content=page_content(hit.payload, metadata), metadata=metadata
        )

    def _get_relevant_documents(
        self,
        query: str,
        *,
        run_manager: CallbackManagerForRetrieverRun,
        k: int | None = None,
        filter: MetadataFilter | None = None,
    ) -> list[Document]:
        return self.search(query, k=k, filter=filter)

    async def _aget_relevant_documents(
        self,
        query: str,
        *,
        run_manager: AsyncCallbackManagerForRetrieverRun,
        k: int | None = None,
        filter: MetadataFilter | None = None,
    ) -> list[Document]:
        return await run_off_loop(self.search, query, k=k, filter=filter)
