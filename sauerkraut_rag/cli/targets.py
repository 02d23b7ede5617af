"""Where a command-line index lives: an index folder, or a Qdrant collection.

Both give the commands the same four things: the index (``VoyagerIndex`` or
``QdrantIndex``), the settings that name its model (:class:`IndexSettings`), the list of
indexed files, and the folder for rendered page images.

* ``--index DIR``: everything in DIR (``sauerkraut-rag.json``, ``sources.sqlite``,
  ``pages/``).
* ``--qdrant URL_OR_PATH --collection NAME``: an ``http(s)://`` URL is a server or
  cluster (API key from ``QDRANT_API_KEY``, never the command line), anything else a
  local-mode folder. The settings are stored with the collection, the file list in the
  companion collection ``NAME__files``; page images go to ``--pages-dir`` (a folder every
  reader can reach), recorded with the collection so later runs find it (local mode:
  ``<folder>/NAME-pages`` by default).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from sauerkraut_rag.cli.manifest import SourceManifest
from sauerkraut_rag.cli.settings import PAGES_FOLDER, IndexSettings
from sauerkraut_rag.errors import DimensionMismatchError, IndexFormatError, InvalidInputError

__all__ = ["FolderTarget", "QdrantTarget", "Target", "target_from_args"]

API_KEY_VARIABLE = "QDRANT_API_KEY"
_CLI_NOTE = "cli"


class FolderTarget:
    """An index folder (``--index DIR``)."""

    def __init__(self, folder: Path, pages_dir: Path | None = None) -> None:
        self.folder = folder
        self.label = str(folder)
        self.pages_dir = pages_dir if pages_dir is not None else folder / PAGES_FOLDER

    def pages_folder(self, modality: str) -> Path:
        """Where this index keeps page images."""
        return self.pages_dir

    def exists(self) -> bool:
        from sauerkraut_rag.retrievers.voyager.layout import is_index

        return is_index(self.folder)

    def check_new(self) -> None:
        if not self.exists() and self.folder.is_dir() and any(self.folder.iterdir()):
            raise InvalidInputError(
                f"{self.folder} is a folder that holds other files, not an index. Pass a new "
                "or empty folder to --index (or the folder of an existing index)."
            )

    def missing_error(self) -> IndexFormatError:
        return IndexFormatError(
            f"No index at {self.folder}. Build one with: sauerkraut-rag index PATH... "
            f"--index {self.folder}"
        )

    def read_settings(self, index: Any = None) -> IndexSettings | None:
        return IndexSettings.read(self.folder) if self.folder.is_dir() else None

    def write_settings(self, index: Any, settings: IndexSettings) -> None:
        settings.write(self.folder)

    def open_index(self, dim: int | None, pool_factor: int | None) -> Any:
        """Create (``dim`` given, no index yet) or open the index for writing."""
        from sauerkraut_rag.retrievers.voyager.index import VoyagerIndex

        if not self.exists():
            options = {} if pool_factor is None else {"pool_factor": pool_factor}
            return VoyagerIndex.create(self.folder, dim, **options)
        return _checked(VoyagerIndex.open(self.folder), self.label, dim, pool_factor)

    def open_read_only(self) -> Any:
        from sauerkraut_rag.retrievers.voyager.index import VoyagerIndex

        if not self.exists():
            raise self.missing_error()
        return VoyagerIndex.open(self.folder, read_only=True, verify=False)

    def manifest(self, index: Any, *, read_only: bool = False) -> Any:
        return SourceManifest(self.folder, read_only=read_only)

    def close(self) -> None:
        """Nothing to release."""


class QdrantTarget:
    """A Qdrant collection (``--qdrant URL_OR_PATH --collection NAME``)."""

    def __init__(self, where: str, collection: str, pages_dir: Path | None = None) -> None:
        if not collection:
            raise InvalidInputError("--qdrant needs --collection NAME (the collection to use).")
        self.where = where
        self.collection = collection
        self.remote = where.startswith(("http://", "https://"))
        self.label = f"collection {collection!r} at {where}"
        self._pages_dir = pages_dir
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            from sauerkraut_rag.retrievers.qdrant.client import connect

            self._client = connect(
                url=self.where if self.remote else None,
                api_key=os.environ.get(API_KEY_VARIABLE) if self.remote else None,
                path=None if self.remote else self.where,
                location=None,
                client_options={},
            )
        return self._client

    @property
    def pages_dir(self) -> Path:
        if self._pages_dir is not None:
            return self._pages_dir
        if not self.remote:
            return Path(self.where) / f"{self.collection}-pages"
        raise InvalidInputError(
            f"Page images of {self.label} need a folder every reader can reach: pass "
            "--pages-dir DIR (e.g. a shared mount). Later runs remember it."
        )

    def pages_folder(self, modality: str) -> Path:
        """Where page images go; a text index has none (a path no image is ever in)."""
        return self.pages_dir if modality == "image" else Path(os.devnull)

    def exists(self) -> bool:
        from sauerkraut_rag.retrievers.qdrant.client import translate_errors

        with translate_errors(self.where):
            return bool(self.client.collection_exists(self.collection))

    def check_new(self) -> None:
        """A new collection needs nothing more."""

    def missing_error(self) -> IndexFormatError:
        return IndexFormatError(
            f"No {self.label}. Build it with: sauerkraut-rag index PATH... --qdrant "
            f"{self.where} --collection {self.collection}"
        )

    def read_settings(self, index: Any = None) -> IndexSettings | None:
        if index is None:
            if not self.exists():
                return None
            index = self._open(None)
            try:
                return self.read_settings(index)
            finally:
                index.close()
        note = index.annotation(_CLI_NOTE)
        if not isinstance(note, dict):
            return None
        if self._pages_dir is None and isinstance(note.get("pages_dir"), str):
            self._pages_dir = Path(note["pages_dir"])
        return IndexSettings.from_dict(note.get("settings"), self.label)

    def write_settings(self, index: Any, settings: IndexSettings) -> None:
        note: dict[str, Any] = {"settings": settings.to_dict()}
        if settings.modality == "image":
            note["pages_dir"] = str(self.pages_dir.resolve())
        index.annotate(_CLI_NOTE, note)

    def _open(self, dim: int | None, **options: Any) -> Any:
        from sauerkraut_rag.retrievers.qdrant import QdrantIndex

        return QdrantIndex(self.collection, dim, client=self.client, **options)

    def open_index(self, dim: int | None, pool_factor: int | None) -> Any:
        if not self.exists():
            options = {} if pool_factor is None else {"pool_factor": pool_factor}
            return self._open(dim, **options)
        return _checked(self._open(None), self.label, dim, pool_factor)

    def open_read_only(self) -> Any:
        if not self.exists():
            raise self.missing_error()
        return self._open(None)

    def manifest(self, index: Any, *, read_only: bool = False) -> Any:
        from sauerkraut_rag.cli.qdrant_manifest import QdrantManifest

        return QdrantManifest(self.client, self.collection, where=self.where, read_only=read_only)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


Target = FolderTarget | QdrantTarget


def _checked(index: Any, label: str, dim: int | None, pool_factor: int | None) -> Any:
    """``index`` if it holds ``dim``-d vectors pooled with ``pool_factor``; else closed + error."""
    stored = index.config.pool_factor
    if (dim is None or index.dim == dim) and (pool_factor is None or pool_factor == stored):
        return index
    index.close()
    if dim is not None and index.dim != dim:
        raise DimensionMismatchError(
            f"The index at {label} holds {index.dim}-d vectors, but the model makes {dim}-d "
            "ones. Use a new --index folder (or --collection) for this model."
        )
    raise InvalidInputError(
        f"The index at {label} was created with --pool-factor {stored}, got {pool_factor}. "
        "Leave out --pool-factor, or use a new --index folder (or --collection)."
    )


def target_from_args(args: argparse.Namespace) -> Target:
    """The target named by ``--index`` / ``DIR`` or ``--qdrant`` + ``--collection``."""
    folder = getattr(args, "index", None) or getattr(args, "dir", None)
    qdrant = getattr(args, "qdrant", None)
    pages_dir = getattr(args, "pages_dir", None)
    if qdrant is not None and folder is not None:
        raise InvalidInputError(
            f"Expected either an index folder or --qdrant, got both ({folder} and {qdrant})."
        )
    if qdrant is not None:
        return QdrantTarget(qdrant, getattr(args, "collection", None) or "", pages_dir)
    if getattr(args, "collection", None):
        raise InvalidInputError("--collection only applies with --qdrant URL_OR_PATH.")
    if folder is None:
        raise InvalidInputError(
            "Expected an index: an index folder (--index DIR, or DIR) or --qdrant "
            "URL_OR_PATH --collection NAME."
        )
    return FolderTarget(Path(folder), pages_dir)
