"""Device, dtype and attention-implementation choices taken from the user."""

from __future__ import annotations

import importlib.util
import logging

import torch

from sauerkraut_rag.errors import DependencyMissingError, InvalidInputError

logger = logging.getLogger(__name__)

_DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "float16": torch.float16,
    "fp16": torch.float16,
    "half": torch.float16,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
}
_ATTENTION = ("sdpa", "eager", "flash_attention_2")


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None`` picks CUDA, then Apple MPS, then CPU."""
    if device is None:
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        return torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise InvalidInputError(
            f"Expected device like 'cpu', 'cuda', 'cuda:1' or 'mps', got {device!r}."
        ) from exc


def resolve_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    """``None`` means float32 on CPU/MPS (exact parity) and bfloat16 on CUDA."""
    if dtype is None:
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if isinstance(dtype, torch.dtype):
        if dtype not in _DTYPES.values():
            raise InvalidInputError(
                f"Expected a floating dtype (float32, float16, bfloat16), got {dtype}."
            )
        return dtype
    key = str(dtype).removeprefix("torch.").lower()
    if key not in _DTYPES:
        raise InvalidInputError(
            f"Expected dtype to be one of {sorted(set(_DTYPES))} or a torch.dtype, got {dtype!r}."
        )
    return _DTYPES[key]


def resolve_attention(attn_implementation: str | None) -> str:
    """SDPA by default; flash-attention only when asked for and installed."""
    choice = attn_implementation or "sdpa"
    if choice not in _ATTENTION:
        raise InvalidInputError(
            f"Expected attn_implementation in {_ATTENTION}, got {attn_implementation!r}."
        )
    if choice == "flash_attention_2" and importlib.util.find_spec("flash_attn") is None:
        raise DependencyMissingError(
            "attn_implementation='flash_attention_2' needs the flash-attn package, which is not "
            "installed. Install it (pip install flash-attn) or use the default 'sdpa'."
        )
    return choice
