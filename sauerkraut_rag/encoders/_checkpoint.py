"""Finding checkpoint folders (local or hub) and loading weights with strict key checks."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from sauerkraut_rag._checks import check_path
from sauerkraut_rag.errors import CheckpointError, ModelNotFoundError

logger = logging.getLogger(__name__)

HUB_FILE_PATTERNS = (
    "*.json",
    "*.safetensors",
    "*.txt",
    "*.model",
    "*.jinja",
    "*.tiktoken",
    "*.py",  # modelling code of remote-code checkpoints: only run with trust_remote_code=True
    "1_Dense/*",
)


def resolve_checkpoint(
    name_or_path: str | Path,
    *,
    revision: str | None = None,
    allow_patterns: Iterable[str] = HUB_FILE_PATTERNS,
) -> Path:
    """Return a local folder for a path or a hub id (downloaded into the HF cache).

    Raises :class:`ModelNotFoundError` when the path does not exist and the hub id
    can be neither found in the local cache nor downloaded.
    """
    path = check_path(name_or_path, name="the model folder or hub id").expanduser()
    if path.is_dir():
        return path
    name = str(name_or_path)
    if path.exists():
        raise ModelNotFoundError(
            f"Expected a model folder or a hub id, got the file {name!r}. "
            "Pass the folder that holds config.json."
        )
    if name.count("/") != 1 or name.startswith((".", "/", "~")):
        raise ModelNotFoundError(
            f"No model folder at {name!r}, and it is not a hub id of the form 'org/name'. "
            "Pass an existing local folder or a hub id such as "
            "'VAGOsolutions/SauerkrautLM-Multi-ColBERT-15m'."
        )
    from huggingface_hub import snapshot_download

    try:
        folder = snapshot_download(name, revision=revision, allow_patterns=list(allow_patterns))
    except Exception as exc:  # network, auth, offline mode, missing repo: all mean "not fetchable"
        raise ModelNotFoundError(
            f"Could not fetch model {name!r}"
            f"{f' at revision {revision!r}' if revision else ''} from the Hugging Face hub "
            f"and it is not in the local cache ({type(exc).__name__}: {str(exc).splitlines()[0]}). "
            "Check the id and your connection, or download the model folder elsewhere and "
            "pass its local path instead."
        ) from exc
    return Path(folder)


def read_json(path: Path, *, required: bool = True) -> dict[str, Any]:
    """Read a JSON object; a missing optional file gives ``{}``."""
    if not path.is_file():
        if required:
            raise CheckpointError(
                f"Expected {path.name} in {path.parent}, but it is missing. "
                "The folder is incomplete: download the full checkpoint again."
            )
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(
            f"{path} is not valid JSON ({exc}). Re-download the checkpoint."
        ) from exc
    if not isinstance(data, dict):
        raise CheckpointError(f"Expected a JSON object in {path}, got {type(data).__name__}.")
    return data


def require_files(folder: Path, names: Iterable[str]) -> None:
    """Raise one :class:`CheckpointError` listing every missing file."""
    missing = [n for n in names if not (folder / n).is_file()]
    if missing:
        raise CheckpointError(
            f"The model folder {folder} is missing {', '.join(missing)}. "
            "Download the complete checkpoint (all files of the hub repository) into it."
        )


def has_image_processor(folder: Path) -> bool:
    """Whether ``folder`` holds an image processor config in either on-disk layout.

    transformers 4.57 writes ``preprocessor_config.json``; 5.x writes only
    ``processor_config.json`` with the image processor nested under ``"image_processor"``
    (a 4.57 ``processor_config.json`` names only the processor class).
    """
    if (folder / "preprocessor_config.json").is_file():
        return True
    processor = read_json(folder / "processor_config.json", required=False)
    return isinstance(processor.get("image_processor"), dict)


def load_safetensors(path: Path) -> dict[str, torch.Tensor]:
    """Load a safetensors file onto the CPU with a clear error when it is unreadable."""
    if not path.is_file():
        raise CheckpointError(
            f"Expected weights at {path}, but the file is missing. Re-download the checkpoint."
        )
    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(
            f"Could not read weights from {path} ({exc}). The file is truncated or corrupt: "
            "re-download the checkpoint."
        ) from exc


def _summarise(keys: list[str], limit: int = 8) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f", ... ({len(keys)} in all)" if len(keys) > limit else "")


def load_state_dict_strict(
    module: torch.nn.Module,
    state_dict: Mapping[str, torch.Tensor],
    *,
    source: str,
    may_be_missing: Callable[[str], bool] = lambda _key: False,
) -> None:
    """Copy ``state_dict`` into ``module``; fail on missing, unexpected or mis-shaped keys.

    ``may_be_missing`` names parameters that are allowed to stay as initialised
    (an unused ``lm_head``, say).  Tensors are cast to each parameter's dtype.
    """
    expected = module.state_dict()
    missing = sorted(k for k in expected if k not in state_dict and not may_be_missing(k))
    unexpected = sorted(k for k in state_dict if k not in expected)
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing keys: {_summarise(missing)}")
        if unexpected:
            parts.append(f"unexpected keys: {_summarise(unexpected)}")
        raise CheckpointError(
            f"The weights in {source} do not match the architecture built from its config "
            f"({'; '.join(parts)}). The checkpoint is incomplete or belongs to another "
            "model: check that config.json and the weight files come from the same checkpoint."
        )
    wrong = [
        f"{k}: file {tuple(v.shape)} vs model {tuple(expected[k].shape)}"
        for k, v in state_dict.items()
        if tuple(v.shape) != tuple(expected[k].shape)
    ]
    if wrong:
        raise CheckpointError(
            f"The weights in {source} have shapes that do not match config.json "
            f"({_summarise(wrong)}). config.json and the weights come from different checkpoints."
        )
    result = module.load_state_dict(dict(state_dict), strict=False)
    leftover = [k for k in result.missing_keys if not may_be_missing(k)]
    if leftover or result.unexpected_keys:  # pragma: no cover - guarded above
        raise CheckpointError(f"Weights in {source} could not be loaded completely: {leftover}.")
