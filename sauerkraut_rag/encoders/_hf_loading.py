"""Loading a ``transformers`` backbone and tokenizer from a folder, strictly and quietly.

``transformers`` builds the model on the meta device and loads every tensor once
(no random initialisation), applies its own legacy key renames (e.g.
``LayerNorm.gamma`` -> ``LayerNorm.weight``) and strips a ``bert.``-style prefix.
We then turn its loading report into a :class:`CheckpointError` that names the
missing, unexpected or mis-shaped keys, instead of silently running with random
weights.  Remote modelling code is only ever run with ``trust_remote_code=True``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError

from sauerkraut_rag.encoders._checkpoint import read_json, require_files
from sauerkraut_rag.errors import CheckpointError, RemoteCodeRequiredError

logger = logging.getLogger(__name__)

_LIMIT = 8


@contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers' load report and weight-loading bar; restore both afterwards."""
    from transformers.utils import logging as hf_logging

    # The library-wide level, not the modeling_utils logger's own level: raising the
    # latter makes transformers run (and log) an extra tensor-parallel plan check.
    old_level = hf_logging.get_verbosity()
    bar_was_on = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity(logging.ERROR)
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(old_level)
        if bar_was_on:
            hf_logging.enable_progress_bar()


def check_remote_code(folder: Path, *, trust_remote_code: bool) -> dict[str, Any]:
    """Read ``config.json`` and refuse configs that need remote code unless it is allowed.

    A ``model_type`` unknown to the installed transformers with an ``auto_map``
    needs the checkpoint's own Python code; without ``trust_remote_code=True`` this
    raises :class:`RemoteCodeRequiredError`.  Returns the parsed config.
    """
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    config = read_json(folder / "config.json")
    model_type = config.get("model_type")
    auto_map = config.get("auto_map") or {}
    if isinstance(model_type, str) and model_type in CONFIG_MAPPING:
        if auto_map.get("AutoModel") and not trust_remote_code:
            logger.info(
                "%s ships its own modelling code (%s); using the built-in %r class instead "
                "because trust_remote_code=False.",
                folder,
                auto_map["AutoModel"],
                model_type,
            )
        return config
    if auto_map:
        if not trust_remote_code:
            raise RemoteCodeRequiredError(
                f"The checkpoint in {folder} has model_type {model_type!r}, which the "
                f"installed transformers does not know; it ships its own modelling code "
                f"({auto_map.get('AutoModel') or auto_map.get('AutoConfig')}). Running that "
                "code is opt-in: if you trust its authors, load it with "
                "load_encoder(..., trust_remote_code=True)."
            )
        return config
    raise CheckpointError(
        f"config.json in {folder} has model_type {model_type!r}, which the installed "
        "transformers does not know, and no auto_map pointing at custom code. Upgrade "
        "transformers (pip install -U transformers) or check that config.json is intact."
    )


def _names(keys: Any) -> list[str]:
    out = []
    for key in keys:
        out.append(key[0] if isinstance(key, (tuple, list)) else str(key))
    return sorted(out)


def _summary(keys: list[str]) -> str:
    shown = ", ".join(keys[:_LIMIT])
    return shown + (f", ... ({len(keys)} in all)" if len(keys) > _LIMIT else "")


def load_pretrained_strict(
    folder: Path,
    *,
    dtype: torch.dtype,
    attn_implementation: str,
    trust_remote_code: bool,
    may_be_missing: Callable[[str], bool] = lambda _key: False,
) -> torch.nn.Module:
    """``AutoModel`` from ``folder`` with every weight loaded; fail on key mismatches.

    ``may_be_missing`` names parameters allowed to be absent from the file
    (e.g. an unused pooler).  Returns the model in eval mode on the CPU.
    """
    from transformers import AutoConfig, AutoModel

    if not (folder / "model.safetensors.index.json").is_file():
        require_files(folder, ["config.json", "model.safetensors"])
    raw = check_remote_code(folder, trust_remote_code=trust_remote_code)
    try:
        config = AutoConfig.from_pretrained(str(folder), trust_remote_code=trust_remote_code)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(
            f"Could not read config.json in {folder} ({type(exc).__name__}: {exc}). "
            "Re-download the checkpoint or upgrade transformers."
        ) from exc
    kwargs: dict[str, Any] = {
        "config": config,
        "dtype": dtype,
        "attn_implementation": attn_implementation,
        "trust_remote_code": trust_remote_code,
        "use_safetensors": True,
        "ignore_mismatched_sizes": True,  # reported below as a CheckpointError instead
        "output_loading_info": True,
    }
    try:
        with quiet_transformers():
            try:
                model, info = AutoModel.from_pretrained(str(folder), **kwargs)
            except ValueError as exc:
                if attn_implementation != "sdpa" or "sdpa" not in str(exc).lower():
                    raise
                logger.warning("%s does not support SDPA attention; using 'eager'.", folder)
                model, info = AutoModel.from_pretrained(
                    str(folder), **{**kwargs, "attn_implementation": "eager"}
                )
    except (OSError, ValueError, RuntimeError, KeyError, SafetensorError) as exc:
        raise CheckpointError(
            f"Could not load the weights in {folder} ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}). Re-download the checkpoint."
        ) from exc
    missing = [k for k in _names(info.get("missing_keys", ())) if not may_be_missing(k)]
    unexpected = _names(info.get("unexpected_keys", ()))
    mismatched = _names(info.get("mismatched_keys", ()))
    if missing or unexpected or mismatched:
        parts = [
            f"{label}: {_summary(keys)}"
            for label, keys in (
                ("missing keys", missing),
                ("unexpected keys", unexpected),
                ("keys with the wrong shape", mismatched),
            )
            if keys
        ]
        remote = (raw.get("auto_map") or {}).get("AutoModel")
        if remote and not trust_remote_code:
            raise RemoteCodeRequiredError(
                f"The weights in {folder} do not match the built-in {raw.get('model_type')!r} "
                f"architecture ({'; '.join(parts)}); the checkpoint ships its own modelling "
                f"code ({remote}). If you trust its authors, load it with "
                "load_encoder(..., trust_remote_code=True)."
            )
        raise CheckpointError(
            f"The weights in {folder} do not match the architecture built from its "
            f"config.json ({'; '.join(parts)}). The checkpoint is incomplete or its files "
            "come from different models: download it again."
        )
    return model.eval()


def load_tokenizer(folder: Path, *, trust_remote_code: bool, **kwargs: Any) -> Any:
    """``AutoTokenizer`` from ``folder`` with a clear error when the files are unusable."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(
            str(folder), trust_remote_code=trust_remote_code, **kwargs
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(
            f"Could not load the tokenizer in {folder} ({type(exc).__name__}: {exc}). "
            "Expected tokenizer.json or vocab.txt with tokenizer_config.json: download the "
            "complete checkpoint."
        ) from exc
