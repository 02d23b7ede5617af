"""The names a user may give for an encoder's dtype, checked without importing torch.

``load_encoder(..., dtype=)`` and the command line's ``--dtype`` accept these spellings;
the command line checks them before the model (and torch) is loaded, so a typo is one
clear line, not a traceback after a minute of loading.
"""

from __future__ import annotations

from sauerkraut_rag.errors import InvalidInputError

DTYPE_NAMES: dict[str, str] = {
    "float32": "float32",
    "fp32": "float32",
    "float16": "float16",
    "fp16": "float16",
    "half": "float16",
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
}
"""Accepted spelling -> canonical name (a ``torch`` attribute)."""


def canonical_dtype_name(value: object, *, what: str = "dtype") -> str:
    """``"bf16"`` -> ``"bfloat16"``, ``"torch.float32"`` -> ``"float32"``; else
    :class:`~sauerkraut_rag.errors.InvalidInputError` naming the choices."""
    key = str(value).removeprefix("torch.").lower()
    if key not in DTYPE_NAMES:
        raise InvalidInputError(
            f"Expected {what} to be float32 (exact, the CPU default), bfloat16 (faster on "
            "CPUs with AVX512_BF16/AMX and on GPUs) or float16 (GPUs), or one of their short "
            f"names {sorted(set(DTYPE_NAMES) - set(DTYPE_NAMES.values()))}; got {value!r}."
        )
    return DTYPE_NAMES[key]
