"""sauerkraut-rag: SauerkrautLM late-interaction retrieval for LangChain and LlamaIndex.

The core never imports LangChain or LlamaIndex; the adapters live in
``sauerkraut_rag.integrations.langchain`` and ``sauerkraut_rag.integrations.llamaindex``.
Encoders (and so torch) are imported on first use, so page ingestion and the index
stay light.
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

from sauerkraut_rag.types import Hit, MultiVector, Page

if TYPE_CHECKING:
    from sauerkraut_rag.encoders.base import MultiVectorEncoder
    from sauerkraut_rag.encoders.loading import load_encoder
    from sauerkraut_rag.encoders.registry import ModelInfo, list_models

logging.getLogger(__name__).addHandler(logging.NullHandler())

__version__ = "0.1.0"

_LAZY = {
    "MultiVectorEncoder": "sauerkraut_rag.encoders.base",
    "load_encoder": "sauerkraut_rag.encoders.loading",
    "ModelInfo": "sauerkraut_rag.encoders.registry",
    "list_models": "sauerkraut_rag.encoders.registry",
}

__all__ = [
    "Hit",
    "ModelInfo",
    "MultiVector",
    "MultiVectorEncoder",
    "Page",
    "__version__",
    "list_models",
    "load_encoder",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'sauerkraut_rag' has no attribute {name!r}")
