"""``SauerkrautEmbedding``: a LlamaIndex ``MultiModalEmbedding`` over a multi-vector model."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from llama_index.core.bridge.pydantic import Field, PrivateAttr
from llama_index.core.callbacks import CallbackManager
from llama_index.core.embeddings import MultiModalEmbedding
from llama_index.core.schema import ImageType

from sauerkraut_rag.encoders.base import MultiVectorEncoder
from sauerkraut_rag.errors import InvalidInputError
from sauerkraut_rag.integrations._common import (
    EncoderLike,
    float_rows,
    resolve_encoder,
    resolve_muvera,
    run_off_loop,
)
from sauerkraut_rag.integrations.llamaindex._support import image_input
from sauerkraut_rag.retrievers.muvera import FDEConfig, MuveraEncoder
from sauerkraut_rag.types import MultiVector

Embedding = list[float]


class SauerkrautEmbedding(MultiModalEmbedding):
    """Single-vector (MUVERA) view of one late-interaction model, for any LlamaIndex store.

    ``get_query_embedding`` / ``get_text_embedding`` / ``get_image_embedding`` return one
    flat ``list[float]`` of length :attr:`dimension`: the MUVERA fixed-dimensional
    encoding (FDE) of the token vectors, whose inner product approximates MaxSim.  Queries
    are always text; documents are text for a text model and images (path or ``BytesIO``)
    for a page model.  Pair a text instance (``embed_model``) and a page instance
    (``image_embed_model``) in a ``MultiModalVectorStoreIndex``.

    The token matrices themselves, ``(n_tokens, dim)`` float32 each, come from
    :meth:`get_query_multivectors`, :meth:`get_text_multivectors` and
    :meth:`get_image_multivectors` (plus async twins) for exact MaxSim scoring.
    """

    modality: str = Field(default="text", description="'text' or 'image' documents.")
    dimension: int = Field(default=0, description="Length of every flat (MUVERA) vector.")
    _encoder: MultiVectorEncoder = PrivateAttr()
    _muvera: MuveraEncoder = PrivateAttr()

    def __init__(
        self,
        encoder: EncoderLike,
        *,
        muvera: MuveraEncoder | FDEConfig | None = None,
        embed_batch_size: int = 8,
        callback_manager: CallbackManager | None = None,
        load_kwargs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Wrap ``encoder`` (instance, hub id or folder); ``muvera`` sets the FDE (seeded)."""
        model = resolve_encoder(encoder, modality=None, role="encoder", load_kwargs=load_kwargs)
        fde = resolve_muvera(muvera, dim=model.dim)
        super().__init__(
            model_name=model.name,
            embed_batch_size=embed_batch_size,
            callback_manager=callback_manager,
            modality=model.modality,
            dimension=fde.output_dim,
            **kwargs,
        )
        self._encoder = model
        self._muvera = fde

    @classmethod
    def class_name(cls) -> str:
        return "SauerkrautEmbedding"

    @property
    def encoder(self) -> MultiVectorEncoder:
        """The wrapped multi-vector encoder."""
        return self._encoder

    @property
    def muvera(self) -> MuveraEncoder:
        """The MUVERA encoder that turns token matrices into flat vectors."""
        return self._muvera

    # ---- multi-vector (token-level) API -------------------------------------------------

    def get_query_multivectors(self, queries: Sequence[str]) -> list[MultiVector]:
        """Encode query strings; returns ``[(n_tokens_i, dim) float32, ...]``."""
        return self._encoder.encode_queries(
            list(queries), batch_size=self.embed_batch_size, show_progress=False
        )

    def get_query_multivector(self, query: str) -> MultiVector:
        """Encode one query string; returns ``(n_tokens, dim)`` float32."""
        return self.get_query_multivectors([query])[0]

    def get_text_multivectors(self, texts: Sequence[str]) -> list[MultiVector]:
        """Encode text documents (text model only); returns ``[(n_tokens_i, dim), ...]``."""
        self._require("text", "text documents")
        return self._encoder.encode_documents(
            list(texts), batch_size=self.embed_batch_size, show_progress=False
        )

    def get_image_multivectors(self, images: Sequence[ImageType]) -> list[MultiVector]:
        """Encode page images (page model only; path or ``BytesIO``); ``[(n_i, dim), ...]``."""
        self._require("image", "images")
        items = [image_input(item, what=f"images[{i}]") for i, item in enumerate(images)]
        return self._encoder.encode_documents(
            items, batch_size=self.embed_batch_size, show_progress=False
        )

    async def aget_query_multivectors(self, queries: Sequence[str]) -> list[MultiVector]:
        """Async :meth:`get_query_multivectors`; the model runs in a worker thread."""
        return await run_off_loop(self.get_query_multivectors, queries)

    async def aget_text_multivectors(self, texts: Sequence[str]) -> list[MultiVector]:
        """Async :meth:`get_text_multivectors`; the model runs in a worker thread."""
        return await run_off_loop(self.get_text_multivectors, texts)

    async def aget_image_multivectors(self, images: Sequence[ImageType]) -> list[MultiVector]:
        """Async :meth:`get_image_multivectors`; the model runs in a worker thread."""
        return await run_off_loop(self.get_image_multivectors, images)

    # ---- flat (MUVERA) view: the BaseEmbedding / MultiModalEmbedding hooks --------------

    def _get_query_embedding(self, query: str) -> Embedding:
        return float_rows(self._muvera.encode_queries([self.get_query_multivector(query)]))[0]

    async def _aget_query_embedding(self, query: str) -> Embedding:
        return await run_off_loop(self._get_query_embedding, query)

    def _get_text_embedding(self, text: str) -> Embedding:
        return self._get_text_embeddings([text])[0]

    async def _aget_text_embedding(self, text: str) -> Embedding:
        return await run_off_loop(self._get_text_embedding, text)

    def _get_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        return float_rows(self._muvera.encode_documents(self.get_text_multivectors(texts)))

    async def _aget_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        return await run_off_loop(self._get_text_embeddings, texts)

    def _get_image_embedding(self, img_file_path: ImageType) -> Embedding:
        return self._get_image_embeddings([img_file_path])[0]

    async def _aget_image_embedding(self, img_file_path: ImageType) -> Embedding:
        return await run_off_loop(self._get_image_embedding, img_file_path)

    def _get_image_embeddings(self, img_file_paths: list[ImageType]) -> list[Embedding]:
        return float_rows(
            self._muvera.encode_documents(self.get_image_multivectors(img_file_paths))
        )

    async def _aget_image_embeddings(self, img_file_paths: list[ImageType]) -> list[Embedding]:
        return await run_off_loop(self._get_image_embeddings, img_file_paths)

    def _require(self, modality: str, what: str) -> None:
        if self._encoder.modality != modality:
            other = "a text model" if modality == "text" else "a page model"
            raise InvalidInputError(
                f"Cannot embed {what} with {self._encoder.name!r}, whose documents are "
                f"{self._encoder.modality!r}. Use a SauerkrautEmbedding built on {other} "
                "for these inputs (queries work with both)."
            )
