"""Encoders: one interface over the three SauerkrautLM model families."""

from __future__ import annotations

from sauerkraut_rag.encoders.base import MultiVectorEncoder
from sauerkraut_rag.encoders.loading import load_encoder
from sauerkraut_rag.encoders.registry import KNOWN_MODELS, ModelInfo, detect_family, list_models

__all__ = [
    "KNOWN_MODELS",
    "ModelInfo",
    "MultiVectorEncoder",
    "detect_family",
    "list_models",
    "load_encoder",
]
