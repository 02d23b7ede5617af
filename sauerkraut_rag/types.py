"""Shared value types: multi-vectors, pages and search hits."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from PIL import Image

MultiVector: TypeAlias = npt.NDArray[np.float32]
"""One input's token vectors: float32 array of shape ``(n_tokens, dim)``, rows L2-normalised."""

Metadata: TypeAlias = dict[str, Any]


@dataclass
class Page:
    """One page image to index.

    ``page_number`` is 1-based for PDFs and ``1`` for single images.
    ``image`` is an RGB PIL image; ``metadata`` is JSON-serialisable; ``text`` is the
    page's text layer when the source has one (PDF pages with embedded text), else ``None``.
    """

    source: str
    page_number: int
    image: Image.Image
    metadata: Metadata = field(default_factory=dict)
    text: str | None = None


@dataclass(frozen=True)
class Hit:
    """One search result: document id, MaxSim score, metadata and optional payload."""

    id: str
    score: float
    metadata: Metadata = field(default_factory=dict)
    payload: str | None = None
