"""encoders: one interface (``MultiVectorEncoder``) over the three SauerkrautLM model
families, checkpoint loading and the model registry. May import documents (to load page
images), never retrievers, integrations or the CLI. ``DocumentCache`` keeps document
vectors per encoder and content for the rerankers. Names are imported on first use, so
``encoders.fingerprint`` (pure data) can be imported without torch."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sauerkraut_rag.encoders.base import MultiVectorEncoder
    from sauerkraut_rag.encoders.document_cache import DocumentCache
    from sauerkraut_rag.encoders.fingerprint import EncoderFingerprint
    from sauerkraut_rag.encoders.loading import load_encoder
    from sauerkraut_rag.encoders.registry import (
        KNOWN_MODELS,
        ModelInfo,
        detect_family,
        list_models,
    )

_LAZY = {
    "DocumentCache": "sauerkraut_rag.encoders.document_cache",
    "EncoderFingerprint": "sauerkraut_rag.encoders.fingerprint",
    "KNOWN_MODELS": "sauerkraut_rag.encoders.registry",
    "ModelInfo": "sauerkraut_rag.encoders.registry",
    "MultiVectorEncoder": "sauerkraut_rag.encoders.base",
    "detect_family": "sauerkraut_rag.encoders.registry",
    "list_models": "sauerkraut_rag.encoders.registry",
    "load_encoder": "sauerkraut_rag.encoders.loading",
}

__all__ = [
    "KNOWN_MODELS",
    "DocumentCache",
    "EncoderFingerprint",
    "ModelInfo",
    "MultiVectorEncoder",
    "detect_family",
    "list_models",
    "load_encoder",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'sauerkraut_rag.encoders' has no attribute {name!r}")
