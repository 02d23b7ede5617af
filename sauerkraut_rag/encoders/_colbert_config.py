"""Reading a PyLate checkpoint's layout and ColBERT settings (PyLate 1.6.0 defaults).

Pure functions over the JSON files of a sentence-transformers/PyLate folder:
``modules.json`` (which sub-folder holds the Transformer and which the Dense
layers), ``sentence_bert_config.json`` and ``config_sentence_transformers.json``.
"""

from __future__ import annotations

import json
import string
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sauerkraut_rag.encoders._checkpoint import read_json
from sauerkraut_rag.errors import CheckpointError, InvalidInputError, InvalidInputTypeError

DEFAULT_QUERY_PREFIX = "[Q] "
DEFAULT_DOCUMENT_PREFIX = "[D] "
DEFAULT_QUERY_LENGTH = 32
DEFAULT_DOCUMENT_LENGTH = 180

OVERRIDABLE = (
    "query_prefix",
    "document_prefix",
    "query_length",
    "document_length",
    "do_query_expansion",
    "attend_to_expansion_tokens",
    "skiplist_words",
)
"""Settings a user may override when loading, as PyLate's ``ColBERT(...)`` constructor allows."""


@dataclass(frozen=True)
class ColBERTSettings:
    """The ColBERT encoding settings, after defaults and user overrides.

    An empty prefix means "no prefix token" (PyLate: ``""`` disables it).
    ``prompt`` is the sentence-transformers default prompt prepended to every text.
    """

    query_prefix: str = DEFAULT_QUERY_PREFIX
    document_prefix: str = DEFAULT_DOCUMENT_PREFIX
    query_length: int = DEFAULT_QUERY_LENGTH
    document_length: int = DEFAULT_DOCUMENT_LENGTH
    do_query_expansion: bool = True
    attend_to_expansion_tokens: bool = False
    skiplist_words: tuple[str, ...] = tuple(string.punctuation)
    prompt: str | None = None
    do_lower_case: bool = False


@dataclass(frozen=True)
class ModuleLayout:
    """Where the Transformer and the Dense layers live inside the checkpoint folder."""

    transformer: Path
    dense: tuple[Path, ...]


_TRANSFORMER_TYPES = ("sentence_transformers.models.Transformer",)
_DENSE_SUFFIXES = (".Dense", ".Dense.Dense")


def read_layout(folder: Path) -> ModuleLayout:
    """Parse ``modules.json``: the first module is the Transformer, Dense modules follow.

    Other module types (pooling, normalisation) are ignored, as PyLate keeps only
    the Transformer and Dense modules.  A folder without ``modules.json`` is read
    as a bare Transformer at the root with no Dense layer, which is an error here
    because the projection weights would be random.
    """
    modules = read_json_list(folder / "modules.json")
    transformer: Path | None = None
    dense: list[Path] = []
    for entry in sorted(modules, key=lambda m: int(m.get("idx", 0))):
        kind = str(entry.get("type", ""))
        path = _module_folder(folder, entry.get("path", ""))
        if transformer is None and (kind in _TRANSFORMER_TYPES or kind.endswith(".Transformer")):
            transformer = path
        elif kind.endswith(_DENSE_SUFFIXES):
            dense.append(path)
    if transformer is None:
        raise CheckpointError(
            f"modules.json in {folder} lists no sentence_transformers Transformer module "
            f"(found types: {[m.get('type') for m in modules]}). Expected a PyLate ColBERT "
            "checkpoint: module 0 = Transformer, module 1 = Dense."
        )
    if not dense:
        raise CheckpointError(
            f"modules.json in {folder} lists no Dense projection module, so the ColBERT "
            "output layer is missing. Expected module 1 = Dense in '1_Dense'. Download the "
            "complete PyLate checkpoint."
        )
    return ModuleLayout(transformer=transformer, dense=tuple(dense))


def _module_folder(folder: Path, raw: Any) -> Path:
    """The folder of one module: a relative path that stays inside the model folder.

    ``modules.json`` is data from the checkpoint; a path such as ``"../../etc"`` or an
    absolute one (or a link leading out of the folder) would make the loader read files
    elsewhere, so it is refused.
    """
    text = raw if isinstance(raw, str) else ""
    relative = Path(text)
    bad = (
        not isinstance(raw, str)
        or "\0" in text
        or relative.is_absolute()
        or bool(relative.drive)
        or ".." in relative.parts
    )
    path = folder / relative
    if not bad:
        try:
            inside = path.resolve().is_relative_to(folder.resolve())
        except (OSError, RuntimeError):
            inside = False
        bad = not inside
    if bad:
        raise CheckpointError(
            f"modules.json in {folder} names the module path {raw!r}, which leads outside "
            "the model folder. A checkpoint is read only from inside its folder: fix the "
            "'path' entries of modules.json (e.g. '' and '1_Dense') or re-download it."
        )
    return path


def read_json_list(path: Path) -> list[dict[str, Any]]:
    """Read ``modules.json`` (a JSON list of objects) with a clear error."""
    if not path.is_file():
        raise CheckpointError(
            f"Expected {path.name} in {path.parent}, but it is missing. A PyLate checkpoint "
            "lists its modules there: download the complete checkpoint."
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path} is not valid JSON ({exc}). Re-download it.") from exc
    if not isinstance(data, list) or not all(isinstance(m, dict) for m in data):
        raise CheckpointError(f"Expected a JSON list of module objects in {path}.")
    return data


def read_settings(folder: Path, transformer_folder: Path) -> ColBERTSettings:
    """ColBERT settings from the checkpoint's JSON files; missing keys keep PyLate defaults."""
    st_config = read_json(folder / "config_sentence_transformers.json", required=False)
    sbert = read_json(transformer_folder / "sentence_bert_config.json", required=False)
    values: dict[str, Any] = {}
    for key in OVERRIDABLE:
        if st_config.get(key) is not None:
            values[key] = st_config[key]
    prompts = st_config.get("prompts") or {}
    default_prompt_name = st_config.get("default_prompt_name")
    if default_prompt_name and isinstance(prompts, dict):
        values["prompt"] = prompts.get(default_prompt_name)
    values["do_lower_case"] = bool(sbert.get("do_lower_case", False))
    return _checked(
        ColBERTSettings(), values, source=str(folder / "config_sentence_transformers.json")
    )


def with_overrides(settings: ColBERTSettings, overrides: dict[str, Any]) -> ColBERTSettings:
    """Apply user options (``None`` means "keep the checkpoint's value")."""
    given = {k: v for k, v in overrides.items() if v is not None}
    return _checked(settings, given, source="the options passed to load_encoder")


def _checked(base: ColBERTSettings, values: dict[str, Any], *, source: str) -> ColBERTSettings:
    """Validate types of ``values`` and return ``base`` updated with them."""
    clean: dict[str, Any] = {}
    error = CheckpointError if source.endswith(".json") else InvalidInputError
    for key, value in values.items():
        if key in ("query_prefix", "document_prefix") or key == "prompt":
            if value is not None and not isinstance(value, str):
                raise _type_error(error, key, "a string", value, source)
            clean[key] = value
        elif key in ("query_length", "document_length"):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise _type_error(error, key, "a positive int", value, source)
            clean[key] = value
        elif key in ("do_query_expansion", "attend_to_expansion_tokens", "do_lower_case"):
            if not isinstance(value, bool):
                raise _type_error(error, key, "true or false", value, source)
            clean[key] = value
        elif key == "skiplist_words":
            if isinstance(value, str) or not all(isinstance(w, str) for w in value):
                raise _type_error(error, key, "a list of strings", value, source)
            clean[key] = tuple(value)
    settings = replace(base, **clean)
    if not settings.do_query_expansion:  # PyLate: no expansion means nothing to attend to
        settings = replace(settings, attend_to_expansion_tokens=False)
    return settings


def _type_error(
    error: type[Exception], key: str, expected: str, value: Any, source: str
) -> Exception:
    if error is InvalidInputError and not isinstance(value, (int, str, list, tuple, bool)):
        error = InvalidInputTypeError
    return error(
        f"Expected {key} to be {expected} in {source}, got {value!r} "
        f"({type(value).__name__}). Fix the value."
    )
