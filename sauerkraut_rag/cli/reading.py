"""Opening a command-line index folder for reading, and finding the model that built it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sauerkraut_rag.cli.index import model_reference
from sauerkraut_rag.cli.settings import IndexSettings
from sauerkraut_rag.errors import IndexFormatError, InvalidInputError


def open_read_only(folder: Path) -> Any:
    """Open the index in ``folder`` read-only (searches work while another process indexes)."""
    from sauerkraut_rag.retrievers.voyager.index import VoyagerIndex
    from sauerkraut_rag.retrievers.voyager.layout import is_index

    if not is_index(folder):
        raise IndexFormatError(
            f"No index at {folder}. Build one with: sauerkraut-rag index PATH... --index {folder}"
        )
    return VoyagerIndex.open(folder, read_only=True, verify=False)


def model_for(folder: Path, model: str | None) -> str:
    if model is not None:
        return model_reference(model)
    settings = IndexSettings.read(folder)
    if settings is None:
        raise InvalidInputError(
            f"{folder} does not say which model built it (no sauerkraut-rag.json: it was not "
            "made by the command line). Pass --model ID|PATH with the model that built it."
        )
    return settings.model
