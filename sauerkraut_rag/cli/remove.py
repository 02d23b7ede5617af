"""``sauerkraut-rag remove``: delete files from an index (documents and page images).

A path names an indexed file, or a folder whose indexed files all go; it need not exist
any more.  Paths that match no indexed file are an error, and then nothing is removed.
No model is loaded.
"""

from __future__ import annotations

from pathlib import Path

from sauerkraut_rag.cli.manifest import MANIFEST_FILE, IndexedFile
from sauerkraut_rag.cli.sync import files_at, forget_files
from sauerkraut_rag.cli.targets import FolderTarget, Target
from sauerkraut_rag.errors import InvalidInputError


def run_remove(paths: list[str], where: Path | Target) -> tuple[int, int]:
    """Remove the indexed files at ``paths``; returns ``(files, documents)`` removed."""
    target = FolderTarget(where) if isinstance(where, Path) else where
    if not target.exists():
        raise target.missing_error()
    if isinstance(target, FolderTarget) and not (target.folder / MANIFEST_FILE).is_file():
        raise InvalidInputError(
            f"The index at {target.label} has no list of indexed files ({MANIFEST_FILE}): it "
            "was not built by the command line. Delete documents by id with the Python API "
            "instead."
        )
    index = target.open_index(None, None)
    try:
        settings = target.read_settings(index)
        pages_dir = target.pages_folder(settings.modality if settings else "text")
        with target.manifest(index) as manifest:
            chosen: dict[str, IndexedFile] = {}
            missing: list[str] = []
            for raw in paths:
                entries = files_at(manifest, Path(raw))
                if not entries:
                    missing.append(raw)
                chosen.update({entry.sha256: entry for entry in entries})
            if missing:
                raise InvalidInputError(
                    f"Not in the index at {target.label}: {', '.join(missing)}. Nothing was "
                    "removed. "
                    "Pass indexed files or folders (as they were indexed, or their new path "
                    "after a rename that `index` has seen)."
                )
            entries = list(chosen.values())
            documents = forget_files(index, manifest, entries, pages_dir)
    finally:
        index.close()
    return len(entries), documents
