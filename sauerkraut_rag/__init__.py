"""sauerkraut-rag: SauerkrautLM late-interaction retrieval for LangChain and LlamaIndex.

The core never imports LangChain or LlamaIndex; the adapters live in
``sauerkraut_rag.integrations.langchain`` and ``sauerkraut_rag.integrations.llamaindex``.
"""

from __future__ import annotations

import logging

from sauerkraut_rag.encoders import MultiVectorEncoder, list_models, load_encoder
from sauerkraut_rag.encoders.registry import ModelInfo
from sauerkraut_rag.types import Hit, MultiVector, Page

logging.getLogger(__name__).addHandler(logging.NullHandler())

__version__ = "0.1.0"

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
