"""A content hash of a checkpoint folder: which weights and settings made the vectors.

``sha256`` over the relative path and the SHA-256 of every ``*.json``,
``*.safetensors`` and ``*.pt`` file in the folder and its direct subfolders (e.g.
PyLate's ``1_Dense/``), in sorted order.  A file in the Hugging Face cache that links
to a ``blobs/<64 hex>`` entry is a Git LFS object whose name *is* the SHA-256 of its
content, so large hub weights are never re-read; a local copy of the same files gives
the same hash.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

__all__ = ["checkpoint_content_hash", "file_sha256"]

HASHED_SUFFIXES = (".json", ".safetensors", ".pt")
_CHUNK = 8 * 1024 * 1024
_LFS_BLOB = re.compile(r"[0-9a-f]{64}")


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's content (free for Hugging Face cache LFS blobs)."""
    real = path.resolve()
    if path.is_symlink() and real.parent.name == "blobs" and _LFS_BLOB.fullmatch(real.name):
        return real.name
    digest = hashlib.sha256()
    with real.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _hashed_files(folder: Path) -> list[Path]:
    found = [
        path
        for pattern in ("*", "*/*")
        for path in folder.glob(pattern)
        if path.suffix in HASHED_SUFFIXES and path.is_file() and not path.name.startswith(".")
    ]
    return sorted(found, key=lambda p: p.relative_to(folder).as_posix())


def checkpoint_content_hash(folder: Path) -> str:
    """``"sha256:<hex>"`` over the config and weight files of ``folder`` (see module doc)."""
    digest = hashlib.sha256()
    for path in _hashed_files(Path(folder)):
        line = f"{path.relative_to(folder).as_posix()}\0{file_sha256(path)}\n"
        digest.update(line.encode("utf-8"))
    return f"sha256:{digest.hexdigest()}"
