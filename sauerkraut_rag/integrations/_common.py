"""Framework-free helpers shared by the LangChain and LlamaIndex adapters.

- :func:`run_off_loop`: run blocking model/index work in a worker thread;
- :func:`resolve_encoder`: accept an encoder object or a model id/folder, check modality;
- :func:`check_positive_int`, :func:`normalise`, :func:`image_base64`.
"""

from __future__ import annotations

import asyncio
import base64
import contextvars
import functools
import mimetypes
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from sauerkraut_rag.encoders.base import Modality, MultiVectorEncoder
from sauerkraut_rag.errors import InvalidInputError, InvalidInputTypeError

T = TypeVar("T")
ScoreT = TypeVar("ScoreT", float, np.ndarray)

EncoderLike = MultiVectorEncoder | str | Path
"""An encoder instance, or a hub id / local folder handed to :func:`load_encoder`."""


async def run_off_loop(func: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """Await ``func(*args, **kwargs)`` run in the loop's default thread pool.

    Context variables (tracing callbacks) are carried into the worker thread, and the
    event loop stays free while the model encodes.
    """
    loop = asyncio.get_running_loop()
    call = functools.partial(contextvars.copy_context().run, func, *args, **kwargs)
    return await loop.run_in_executor(None, call)


def resolve_encoder(
    encoder: Any,
    *,
    modality: Modality | None,
    role: str,
    load_kwargs: dict[str, Any] | None = None,
) -> MultiVectorEncoder:
    """Return a loaded encoder; ``str``/``Path`` go through ``load_encoder``; check modality."""
    if isinstance(encoder, (str, Path)):
        from sauerkraut_rag.encoders.loading import load_encoder

        encoder = load_encoder(encoder, **(load_kwargs or {}))
    elif load_kwargs:
        raise InvalidInputError(
            f"Got an already loaded encoder for {role} together with loading options "
            f"{sorted(load_kwargs)}. Pass those options to load_encoder() instead."
        )
    if not isinstance(encoder, MultiVectorEncoder):
        raise InvalidInputTypeError(
            f"Expected {role} to be a MultiVectorEncoder or a model id/folder, got "
            f"{type(encoder).__name__}. Build one with sauerkraut_rag.load_encoder(...)."
        )
    if modality is not None and encoder.modality != modality:
        hint = (
            "a text model such as VAGOsolutions/SauerkrautLM-Multi-ColBERT-15m"
            if modality == "text"
            else "a page model such as VAGOsolutions/SauerkrautLM-ColLFM2-450M-v0.1"
        )
        raise InvalidInputError(
            f"Expected {role} to be a {modality} model, got {encoder.name!r} whose "
            f"modality is {encoder.modality!r}. Pass {hint}."
        )
    return encoder


def check_positive_int(value: Any, *, name: str) -> int:
    """Require a positive ``int`` (bools rejected)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InvalidInputTypeError(
            f"Expected {name} to be a positive int, got {type(value).__name__} ({value!r})."
        )
    if value < 1:
        raise InvalidInputError(f"Expected {name} >= 1, got {value}. Use at least 1.")
    return int(value)


def normalise(scores: ScoreT, n_query_tokens: int) -> ScoreT:
    """MaxSim divided by the query's token count: the mean best-match cosine, ``[-1, 1]``."""
    return scores / max(n_query_tokens, 1)


def image_base64(path: str | Path) -> tuple[str, str]:
    """Read an image file; return ``(base64 text, mime type)``."""
    file = Path(path)
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise InvalidInputError(
            f"Expected a readable page image at {file}, but reading it failed ({exc}). "
            "If the index folder was moved or its images deleted, re-index the sources."
        ) from exc
    mime = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
    return base64.b64encode(data).decode("ascii"), mime
