"""``sauerkraut-rag copy``: move an index folder into a Qdrant collection, without re-encoding.

Streams every document (stored vectors, metadata, text) with
:func:`~sauerkraut_rag.retrievers.copying.copy_index`; a new collection gets the
folder's dim and pool factor. The model record and the list of indexed files come
along, so ``index``, ``search``, ``explain`` and ``info`` work on the collection as they
did on the folder. Resumable: run it again after an interruption and documents already
copied are skipped. With ``--pages-dir`` page images are copied there and the documents
point at the copies; without it they keep pointing into the folder.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TextIO

from sauerkraut_rag._checks import check_positive_int
from sauerkraut_rag.cli.targets import FolderTarget, QdrantTarget
from sauerkraut_rag.retrievers.protocol import StoredDocument

__all__ = ["run_copy"]


def run_copy(
    source: FolderTarget,
    target: QdrantTarget,
    *,
    batch_size: int,
    pages_dir: Path | None,
    out: TextIO,
) -> None:
    """Copy ``source`` into ``target``; prints one summary line."""
    from sauerkraut_rag.retrievers.copying import copy_index

    check_positive_int(batch_size, name="--batch-size")
    reader = source.open_read_only()
    try:
        settings = source.read_settings()
        writer = target.open_index(reader.dim, reader.config.pool_factor)
        try:
            if settings is not None and target.read_settings(writer) is None:
                target.write_settings(writer, settings)
            move = None if pages_dir is None else _image_mover(pages_dir)
            report = copy_index(reader, writer, batch_size=batch_size, map_document=move)
            with (
                source.manifest(reader, read_only=True) as files,
                target.manifest(writer) as copied,
            ):
                for entry in files.entries():
                    if copied.find(entry.sha256) is None:
                        copied.record(entry)
        finally:
            writer.close()
    finally:
        reader.close()
    out.write(
        f"Copied {report.copied} documents from {source.label} to {target.label} "
        f"({report.skipped} already there).\n"
    )


def _image_mover(pages_dir: Path) -> Callable[[StoredDocument], StoredDocument]:
    """A ``map_document`` copying each page image into ``pages_dir`` (once)."""
    pages_dir.mkdir(parents=True, exist_ok=True)

    def move(doc: StoredDocument) -> StoredDocument:
        image = doc.metadata.get("image_path")
        if not isinstance(image, str) or not Path(image).is_file():
            return doc
        copy = pages_dir / Path(image).name
        if not copy.exists():
            shutil.copy2(image, copy)
        return replace(doc, metadata={**doc.metadata, "image_path": str(copy.resolve())})

    return move
