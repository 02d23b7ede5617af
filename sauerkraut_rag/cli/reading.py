"""Opening a command-line index for reading, and finding the model that built it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sauerkraut_rag.cli.index import model_reference
from sauerkraut_rag.cli.targets import FolderTarget, Target
from sauerkraut_rag.errors import InvalidInputError


def as_target(where: Path | Target) -> Target:
    """An index folder as a :class:`FolderTarget`; targets pass through."""
    return FolderTarget(where) if isinstance(where, Path) else where


def open_read_only(where: Path | Target) -> Any:
    """Open the index read-only (a folder: searches work while another process indexes)."""
    return as_target(where).open_read_only()


def model_for(where: Path | Target, model: str | None, index: Any = None) -> str:
    """``--model`` if given, else the model recorded with the index."""
    if model is not None:
        return model_reference(model)
    target = as_target(where)
    settings = target.read_settings(index) if index is not None else target.read_settings()
    if settings is None:
        raise InvalidInputError(
            f"{target.label} does not say which model built it (it was not made by the "
            "command line). Pass --model ID|PATH with the model that built it."
        )
    return settings.model
