"""Private LlamaIndex-side helpers (query text, image inputs); the rest is in ``_common``."""

from __future__ import annotations

import base64
from io import BytesIO
from pathlib import Path
from typing import Any

from sauerkraut_rag.errors import InvalidInputError, InvalidInputTypeError
from sauerkraut_rag.retrievers.protocol import MultiVectorIndex


def query_text(query_bundle: Any) -> str:
    """Return the text of a ``QueryBundle``; queries are text for every model family."""
    text = getattr(query_bundle, "query_str", None)
    if not isinstance(text, str) or not text.strip():
        raise InvalidInputError(
            "Expected a QueryBundle with a non-empty query_str (all three model families "
            f"take text queries), got query_str={text!r}. Pass QueryBundle('your question')."
        )
    return text


def image_input(item: Any, *, what: str) -> str | bytes:
    """Turn LlamaIndex's ``ImageType`` (path ``str`` or ``BytesIO``) into encoder input."""
    if isinstance(item, BytesIO):
        return item.getvalue()
    if isinstance(item, Path):
        return str(item)
    if isinstance(item, (str, bytes)):
        return item
    raise InvalidInputTypeError(
        f"Expected {what} to be an image path (str) or BytesIO, got {type(item).__name__}."
    )


def decode_base64_image(data: str, *, what: str) -> bytes:
    """Decode a base64 image string (``ImageNode.image``) with a clear error."""
    try:
        return base64.b64decode(data, validate=True)
    except ValueError as exc:
        raise InvalidInputError(
            f"Expected {what} to be base64-encoded image bytes, but it does not decode "
            f"({exc}). Store the raw image as base64.b64encode(data).decode()."
        ) from exc


IndexLike = MultiVectorIndex | str | Path | None
"""An index object, a folder holding (or to hold) a ``VoyagerIndex``, or ``None`` (temporary)."""
