"""``sauerkraut-rag remove``: delete files from an index (documents and page images).

A path names an indexed file, or a folder whose indexed files all go; it need not exist
any more.  Paths that match no indexed file are an error, and then nothing is removed.
No model is loaded.
"""

from __future__ import annotations

from pathlib import Path

from sauerkraut_rag.cli.manifest import MANIFEST_FILE, IndexedFile, SourceManifest
from sauerkraut_rag.cli.settings import PAGES_FOLDER
from sauerkraut_rag.cli.sync import files_at, forget_files
from sauerkraut_rag.errors import IndexFormatError, InvalidInputError


def run_remove(paths: list[str], folder: Path) -> tuple[int, int]:
    """Remove the indexed files at ``paths``; returns ``(files, documents)`` removed."""
    from sauerkraut_rag.retrievers.voyager.index import VoyagerIndex
    from sauerkraut_rag.retrievers.voyager.loading import is_index

    if not is_index(folder):
        raise IndexFormatError(
            f"No index at {folder}. Build one with: sauerkraut-rag index PATH... --index {folder}"
        )
    if not (folder / MANIFEST_FILE).is_file():
        raise InvalidInputError(
            f"The index at {folder} has no list of indexed files ({MANIFEST_FILE}): it was not "
            "built by the command line. Delete documents by id with the Python API instead."
        )
    index = VoyagerIndex.open(folder)
    try:
        with SourceManifest(folder) as manifest:
            chosen: dict[str, IndexedFile] = {}
            missing: list[str] = []
            for raw in paths:
                entries = files_at(manifest, Path(raw))
                if not entries:
                    missing.append(raw)
                chosen.update({entry.sha256: entry for entry in entries})
            if missing:
                raise InvalidInputError(
                    f"Not in the index at {folder}: {', '.join(missing)}. Nothing was removed. "
                    "Pass indexed files or folders (as they were indexed, or their new path "
                    "after a rename that `index` has seen)."
                )
            entries = list(chosen.values())
            documents = forget_files(index, manifest, entries, folder / PAGES_FOLDER)
    finally:
        index.close()
    return len(entries), documents
