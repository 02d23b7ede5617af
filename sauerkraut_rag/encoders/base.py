"""The one encoder interface shared by the text model and the two page models."""

from __future__ import annotations

import logging
import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import torch

from sauerkraut_rag.encoders._validation import check_batch_size, check_texts
from sauerkraut_rag.encoders.fingerprint import EncoderFingerprint
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
    family: str = "unknown"
    processing: str | None = None
    """How inputs are prepared where the family has variants (ColLFM2), else ``None``."""
    checkpoint_folder: Path | None = None
    """The local folder the weights were read from (set by :func:`load_encoder`)."""
    revision: str | None = None
    """The hub commit of the checkpoint when it was loaded by hub id, else ``None``."""

    @property
    def fingerprint(self) -> EncoderFingerprint:
        """What makes this encoder's vectors: model, family, dim, processing, checkpoint hash.

        Indexes record it and refuse vectors from a different encoder.  The content hash
        of the checkpoint folder is computed on first access and then cached.
        """
        cached = self.__dict__.get("_fingerprint")
        if cached is None:
            cached = EncoderFingerprint(
                model=self._model_label(),
                family=self.family,
                dim=int(self.dim),
                processing=self.processing,
                revision=self.revision or _snapshot_commit(self.checkpoint_folder),
                content_hash=self._content_hash(),
            )
            self.__dict__["_fingerprint"] = cached
        return cached

    def _model_label(self) -> str:
        """The hub id, or the folder name for a local checkpoint."""
        path = Path(self.name).expanduser()
        if path.is_dir():
            return path.resolve().name or str(path)
        return self.name

    def _content_hash(self) -> str | None:
        if self.checkpoint_folder is None or not Path(self.checkpoint_folder).is_dir():
            return None
        from sauerkraut_rag.encoders._content_hash import checkpoint_content_hash

        return checkpoint_content_hash(Path(self.checkpoint_folder))

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
        processing = f", processing={self.processing!r}" if self.processing else ""
        return (
            f"{type(self).__name__}(name={self.name!r}, modality={self.modality!r}, "
            f"dim={self.dim}{processing}, device={str(self.device)!r}, dtype={self.dtype})"
        )


_COMMIT = re.compile(r"[0-9a-f]{40}")


def _snapshot_commit(folder: Path | None) -> str | None:
    """The commit of a Hugging Face cache snapshot folder (``.../snapshots/<sha>``)."""
    if folder is None:
        return None
    folder = Path(folder)
    if folder.parent.name == "snapshots" and _COMMIT.fullmatch(folder.name):
        return folder.name
    return None
