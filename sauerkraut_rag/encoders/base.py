"""The one encoder interface shared by the text model and the two page models."""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, Literal

import torch

from sauerkraut_rag.encoders._validation import check_batch_size, check_texts
from sauerkraut_rag.types import MultiVector

logger = logging.getLogger(__name__)

Modality = Literal["text", "image"]


class MultiVectorEncoder(ABC):
    """Turns queries and documents into multi-vectors: one L2-normalised vector per token.

    Both ``encode_*`` methods return a ``list`` with one float32 array of shape
    ``(n_tokens_i, dim)`` per input, padding stripped, in input order.  Queries are
    always text.  Documents are strings for ``modality == "text"`` and page images
    (PIL images, image paths or bytes) for ``modality == "image"``.

    Build instances with :func:`sauerkraut_rag.load_encoder`.
    """

    name: str
    dim: int
    modality: Modality
    device: torch.device
    dtype: torch.dtype

    def encode_queries(
        self,
        texts: Sequence[str],
        *,
        batch_size: int = 32,
        show_progress: bool | None = None,
    ) -> list[MultiVector]:
        """Encode query strings; returns ``[(n_tokens_i, dim) float32, ...]``."""
        items = check_texts(texts, what="queries")
        check_batch_size(batch_size)
        return self._encode_queries(items, batch_size=batch_size, show_progress=show_progress)

    def encode_documents(
        self,
        items: Sequence[Any],
        *,
        batch_size: int = 8,
        show_progress: bool | None = None,
    ) -> list[MultiVector]:
        """Encode documents (strings or page images); returns ``[(n_tokens_i, dim), ...]``."""
        check_batch_size(batch_size)
        return self._encode_documents(items, batch_size=batch_size, show_progress=show_progress)

    def encode_query(self, text: str) -> MultiVector:
        """Encode one query string; returns ``(n_tokens, dim)``."""
        return self.encode_queries([text], show_progress=False)[0]

    def encode_document(self, item: Any) -> MultiVector:
        """Encode one document (string or page image); returns ``(n_tokens, dim)``."""
        return self.encode_documents([item], show_progress=False)[0]

    @abstractmethod
    def _encode_queries(
        self, texts: list[str], *, batch_size: int, show_progress: bool | None
    ) -> list[MultiVector]:
        """Encode validated query strings."""

    @abstractmethod
    def _encode_documents(
        self, items: Sequence[Any], *, batch_size: int, show_progress: bool | None
    ) -> list[MultiVector]:
        """Validate and encode documents."""

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(name={self.name!r}, modality={self.modality!r}, "
            f"dim={self.dim}, device={str(self.device)!r}, dtype={self.dtype})"
        )
