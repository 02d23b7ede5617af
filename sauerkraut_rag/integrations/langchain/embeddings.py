"""``SauerkrautEmbeddings``: LangChain ``Embeddings`` over a late-interaction model."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from langchain_core.embeddings import Embeddings

from sauerkraut_rag._checks import check_positive_int
from sauerkraut_rag.encoders.base import MultiVectorEncoder
from sauerkraut_rag.errors import InvalidInputError
from sauerkraut_rag.integrations._common import (
    EncoderLike,
    float_rows,
    resolve_encoder,
    resolve_muvera,
    run_off_loop,
)
from sauerkraut_rag.retrievers.muvera import FDEConfig, MuveraEncoder
from sauerkraut_rag.types import MultiVector

DEFAULT_TEXT_MODEL = "VAGOsolutions/SauerkrautLM-Multi-ColBERT-15m"


class SauerkrautEmbeddings(Embeddings):
    """Single-vector and token-level embeddings from one SauerkrautLM model.

    ``embed_documents`` / ``embed_query`` return flat ``list[float]`` vectors of length
    :attr:`dimension`: the MUVERA fixed-dimensional encoding (FDE) of the token vectors,
    whose inner product approximates MaxSim.  This lets the models drop into any
    LangChain vector store (``InMemoryVectorStore``, Chroma, FAISS, ...); rerank the
    candidates with :class:`~sauerkraut_rag.integrations.langchain.MaxSimReranker` for
    exact late-interaction scores.

    :meth:`embed_documents_multi` / :meth:`embed_query_multi` return the token matrices
    as numpy float32 arrays of shape ``(n_tokens, dim)``, rows L2-normalised (numpy, not
    nested lists: they feed straight into :func:`sauerkraut_rag.retrievers.maxsim.maxsim`).

    Queries are always text.  Documents are text for a text model; for a page model use
    :meth:`embed_image` / :meth:`embed_image_multi` with image paths (the method name
    LangChain's multimodal stores look for).

    Args:
        model: a loaded encoder, a hub id or a local checkpoint folder.
        muvera: the FDE settings (``FDEConfig`` or ``MuveraEncoder``; seeded, so the same
            settings give the same vectors in every process).
        batch_size: encoder batch size.
        show_progress: progress bar while encoding (``None``: only for long inputs).
        load_kwargs: options for :func:`sauerkraut_rag.load_encoder` (``device``, ...).
    """

    def __init__(
        self,
        model: EncoderLike = DEFAULT_TEXT_MODEL,
        *,
        muvera: MuveraEncoder | FDEConfig | None = None,
        batch_size: int = 16,
        show_progress: bool | None = None,
        load_kwargs: dict[str, Any] | None = None,
    ) -> None:
        self.encoder: MultiVectorEncoder = resolve_encoder(
            model, modality=None, role="model", load_kwargs=load_kwargs
        )
        self.muvera: MuveraEncoder = resolve_muvera(muvera, dim=self.encoder.dim)
        self.batch_size = check_positive_int(batch_size, name="batch_size")
        self.show_progress = show_progress

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(model={self.encoder.name!r}, "
            f"modality={self.encoder.modality!r}, dimension={self.dimension})"
        )

    @property
    def dimension(self) -> int:
        """Length of every flat (MUVERA) vector."""
        return int(self.muvera.output_dim)

    # ---- token-level (multi-vector) API ---------------------------------------------

    def embed_query_multi(self, text: str) -> MultiVector:
        """Token vectors of one query: ``(n_tokens, dim)`` float32."""
        return self.encoder.encode_queries([text], batch_size=1, show_progress=False)[0]

    def embed_queries_multi(self, texts: Sequence[str]) -> list[MultiVector]:
        """Token vectors of several queries: ``[(n_tokens_i, dim) float32, ...]``."""
        if not texts:
            return []
        return self.encoder.encode_queries(
            list(texts), batch_size=self.batch_size, show_progress=self.show_progress
        )

    def embed_documents_multi(self, texts: Sequence[str]) -> list[MultiVector]:
        """Token vectors of text documents (text model): ``[(n_tokens_i, dim), ...]``."""
        self._require("text", "text documents", "embed_image_multi")
        if not texts:
            return []
        return self.encoder.encode_documents(
            list(texts), batch_size=self.batch_size, show_progress=self.show_progress
        )

    def embed_image_multi(self, uris: Sequence[str | Path | bytes]) -> list[MultiVector]:
        """Token vectors of page images (page model; paths or bytes): ``[(n_i, dim), ...]``."""
        self._require("image", "images", "embed_documents_multi")
        if not uris:
            return []
        return self.encoder.encode_documents(
            list(uris), batch_size=self.batch_size, show_progress=self.show_progress
        )

    # ---- flat (MUVERA) view: the LangChain Embeddings interface -----------------------

    def embed_query(self, text: str) -> list[float]:
        """One flat vector of length :attr:`dimension` for a query."""
        return float_rows(self.muvera.encode_queries([self.embed_query_multi(text)]))[0]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """One flat vector of length :attr:`dimension` per text document."""
        multivectors = self.embed_documents_multi(texts)
        return float_rows(self.muvera.encode_documents(multivectors)) if multivectors else []

    def embed_image(self, uris: list[str]) -> list[list[float]]:
        """One flat vector of length :attr:`dimension` per page image path."""
        multivectors = self.embed_image_multi(uris)
        return float_rows(self.muvera.encode_documents(multivectors)) if multivectors else []

    async def aembed_query(self, text: str) -> list[float]:
        """Async :meth:`embed_query`; the model runs in a worker thread."""
        return await run_off_loop(self.embed_query, text)

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        """Async :meth:`embed_documents`; the model runs in a worker thread."""
        return await run_off_loop(self.embed_documents, texts)

    async def aembed_query_multi(self, text: str) -> MultiVector:
        """Async :meth:`embed_query_multi`; the model runs in a worker thread."""
        return await run_off_loop(self.embed_query_multi, text)

    async def aembed_documents_multi(self, texts: Sequence[str]) -> list[MultiVector]:
        """Async :meth:`embed_documents_multi`; the model runs in a worker thread."""
        return await run_off_loop(self.embed_documents_multi, texts)

    def _require(self, modality: str, what: str, alternative: str) -> None:
        if self.encoder.modality != modality:
            raise InvalidInputError(
                f"Cannot embed {what} with {self.encoder.name!r}, whose documents are "
                f"{self.encoder.modality!r}. Use {alternative}() for this model, or a "
                f"SauerkrautEmbeddings built on a {modality} model (queries work with both)."
            )
