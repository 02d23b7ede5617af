"""Keeping a command-line index in step with its folders: gone files, renames, removal.

- A file recorded in ``sources.sqlite`` whose path lies in a folder given to ``index`` and
  that no longer exists is *gone*: its documents and page images are deleted (unless
  ``--keep-missing``).
- A file whose content is indexed under a path that no longer holds that content was
  *renamed* (or moved): its documents keep their ids and vectors and get the new
  ``source`` and ``file_name``.
- ``sauerkraut-rag remove PATH...`` deletes the documents and page images of the given
  files (or of every indexed file under a given folder).

None of this needs the model.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from sauerkraut_rag.cli.manifest import IndexedFile, SourceManifest

logger = logging.getLogger(__name__)


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or path.is_relative_to(folder)


def gone_files(manifest: SourceManifest, folders: list[Path]) -> list[IndexedFile]:
    """Indexed files under one of ``folders`` (resolved) that no longer exist on disk."""
    roots = [folder.resolve() for folder in folders]
    return [
        entry
        for entry in manifest.entries()
        if not Path(entry.source).exists()
        and any(_inside(Path(entry.source), root) for root in roots)
    ]


def files_at(manifest: SourceManifest, target: Path) -> list[IndexedFile]:
    """Indexed files whose path is ``target`` or lies below it (``target`` resolved)."""
    where = target.expanduser().resolve()
    return [entry for entry in manifest.entries() if _inside(Path(entry.source), where)]


def drop_documents(index: Any, ids: list[str], pages_dir: Path) -> int:
    """Delete documents and their page images (only images inside ``pages_dir``)."""
    if not ids:
        return 0
    own = pages_dir.resolve()
    for doc in index.get(ids):
        image = doc.metadata.get("image_path")
        if isinstance(image, str) and Path(image).parent == own:
            Path(image).unlink(missing_ok=True)
    return int(index.delete(ids))


def forget_files(
    index: Any, manifest: SourceManifest, entries: list[IndexedFile], pages_dir: Path
) -> int:
    """Delete the documents, page images and manifest rows of ``entries``; returns documents."""
    removed = 0
    for entry in entries:
        removed += drop_documents(index, list(entry.ids), pages_dir)
        logger.info("removed %s (%d documents)", entry.source, len(entry.ids))
    manifest.forget(entries)
    return removed


def relabel(index: Any, entry: IndexedFile, path: Path) -> list[str] | None:
    """Give the documents of a renamed file their new ``source`` and ``file_name``.

    Vectors are reused as stored.  Returns ``None`` (the caller encodes the file again)
    when that is not exact: the index pools tokens at write time (``pool_factor > 1``,
    pooling pooled vectors would shrink them twice) or some documents are missing.
    """
    config = getattr(index, "config", None)
    if getattr(config, "pool_factor", 1) != 1:
        return None
    docs = index.get(list(entry.ids), include_vectors=True)
    if len(docs) != len(entry.ids) or any(doc.multivector is None for doc in docs):
        return None
    index.upsert(
        [doc.id for doc in docs],
        [doc.multivector for doc in docs],
        [{**doc.metadata, "source": str(path), "file_name": path.name} for doc in docs],
        [doc.payload for doc in docs],
    )
    logger.info("%s was renamed to %s", entry.source, path)
    return [doc.id for doc in docs]
