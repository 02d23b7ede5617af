"""Device, dtype and attention-implementation choices taken from the user."""

from __future__ import annotations

import functools
import importlib.util
import logging
import platform

import torch

from sauerkraut_rag.encoders._dtype_names import DTYPE_NAMES, canonical_dtype_name
from sauerkraut_rag.errors import DependencyMissingError, InvalidInputError

logger = logging.getLogger(__name__)

_DTYPES: dict[str, torch.dtype] = {
    name: getattr(torch, canonical) for name, canonical in DTYPE_NAMES.items()
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
    """``None`` means float32 on CPU/MPS (exact parity) and bfloat16 on CUDA.

    bfloat16 on a CPU that lacks native bfloat16 instructions logs one warning: it runs,
    but slower than float32 (see :func:`cpu_has_native_bfloat16`).
    """
    if dtype is None:
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if isinstance(dtype, torch.dtype):
        if dtype not in _DTYPES.values():
            raise InvalidInputError(
                f"Expected a floating dtype (float32, float16, bfloat16), got {dtype}."
            )
        resolved = dtype
    else:
        resolved = _DTYPES[canonical_dtype_name(dtype)]
    if resolved == torch.bfloat16 and device.type == "cpu" and cpu_has_native_bfloat16() is False:
        _warn_slow_bfloat16()
    return resolved


@functools.cache
def cpu_has_native_bfloat16() -> bool | None:
    """Whether this CPU multiplies bfloat16 natively (``None``: cannot tell).

    x86: AVX512_BF16 or AMX tiles (as torch detects them); Linux on ARM: the ``bf16``
    feature in ``/proc/cpuinfo``; other systems: ``None``.  Without them torch widens
    bfloat16 to float32 around every product, so bfloat16 encoding is slower than
    float32 instead of faster.
    """
    machine = platform.machine().lower()
    if machine in ("x86_64", "amd64", "i386", "i686"):
        names = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
        probes = [probe for n in names if (probe := getattr(torch.cpu, n, None)) is not None]
        try:
            return any(bool(probe()) for probe in probes) if probes else None
        except RuntimeError:  # a torch build without the probes' backend
            return None
    if platform.system() == "Linux" and machine in ("aarch64", "arm64"):
        try:
            with open("/proc/cpuinfo", encoding="utf-8") as handle:
                return any(
                    line.startswith("Features") and "bf16" in line.split(":", 1)[-1].split()
                    for line in handle
                )
        except OSError:
            return None
    return None


@functools.cache
def _warn_slow_bfloat16() -> None:
    logger.warning(
        "dtype='bfloat16' on a CPU without native bfloat16 instructions (AVX512_BF16 or AMX "
        "on x86): encoding will likely be slower than in float32, not faster. The default "
        "float32 is exact; bfloat16 pays on CPUs that have them (see the README)."
    )


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
