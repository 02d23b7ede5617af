"""``load_encoder``: one call from a model id or folder to a ready encoder."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from sauerkraut_rag.encoders import _cache
from sauerkraut_rag.encoders._checkpoint import resolve_checkpoint
from sauerkraut_rag.encoders._runtime import resolve_device, resolve_dtype
from sauerkraut_rag.encoders.base import MultiVectorEncoder
from sauerkraut_rag.encoders.registry import detect_family

logger = logging.getLogger(__name__)


def load_encoder(
    name_or_path: str | Path,
    *,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
    revision: str | None = None,
    trust_remote_code: bool = False,
    **opts: Any,
) -> MultiVectorEncoder:
    """Load one of the three model families from a hub id or a local folder.

    The family is detected from the checkpoint's files, so any folder in the same
    layout as a published model works.  ``device`` defaults to CUDA, MPS or CPU;
    ``dtype`` to float32 off-GPU and bfloat16 on CUDA.  ``opts`` go to the family's
    encoder (e.g. ``query_length`` for ColBERT, ``max_num_visual_tokens`` for ColQwen3,
    ``attn_implementation``).  ``trust_remote_code`` is never enabled implicitly.

    One model per process: a second call with the same folder (any spelling of its path)
    or hub id, device, dtype, revision and options returns the same encoder object, as
    long as the first is still in use (the cache holds encoders weakly and is
    thread-safe), so a store, a retriever and a reranker share one copy of the weights.
    """
    torch_device = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, torch_device)
    key = (
        _cache.model_key(name_or_path),
        str(torch_device),
        str(torch_dtype),
        revision,
        bool(trust_remote_code),
        _cache.options_key(opts),
    )
    return _cache.cached(
        key,
        lambda: _load(name_or_path, torch_device, torch_dtype, revision, trust_remote_code, opts),
    )


def _load(
    name_or_path: str | Path,
    torch_device: torch.device,
    torch_dtype: torch.dtype,
    revision: str | None,
    trust_remote_code: bool,
    opts: dict[str, Any],
) -> MultiVectorEncoder:
    folder = resolve_checkpoint(name_or_path, revision=revision)
    family = detect_family(folder)
    logger.info(
        "Loading %s (%s) from %s on %s in %s",
        name_or_path,
        family,
        folder,
        torch_device,
        str(torch_dtype).removeprefix("torch."),
    )
    common: dict[str, Any] = {
        "name": str(name_or_path),
        "device": torch_device,
        "dtype": torch_dtype,
        "trust_remote_code": trust_remote_code,
        "revision": revision,
    }
    if family == "colbert":
        from sauerkraut_rag.encoders.colbert import ColBERTEncoder

        return ColBERTEncoder.from_folder(folder, **common, **opts)
    if family == "collfm2":
        from sauerkraut_rag.encoders.collfm2 import ColLFM2Encoder

        return ColLFM2Encoder.from_folder(folder, **common, **opts)
    from sauerkraut_rag.encoders.colqwen3 import ColQwen3Encoder

    return ColQwen3Encoder.from_folder(folder, **common, **opts)
