"""The command line's record of how an index folder was built: ``sauerkraut-rag.json``.

It sits next to the index files and names the model (hub id, or absolute folder path), so
``search`` and ``explain`` encode queries with the model that encoded the documents, and
keeps the model's :class:`~sauerkraut_rag.encoders.fingerprint.EncoderFingerprint` under
``"encoder"`` (absent in folders indexed before fingerprints existed).  It is plain JSON,
written atomically (temporary file, fsync, ``os.replace``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sauerkraut_rag._atomic import write_atomically
from sauerkraut_rag.encoders.fingerprint import EncoderFingerprint
from sauerkraut_rag.errors import IndexCorruptedError, IndexFormatError

SETTINGS_FILE = "sauerkraut-rag.json"
SETTINGS_VERSION = 1
PAGES_FOLDER = "pages"
"""Sub-folder of the index folder holding the rendered page images."""
_KIND = "sauerkraut-rag cli index"


@dataclass(frozen=True)
class IndexSettings:
    """What the CLI stores about an index folder: the model and what it produces."""

    model: str
    family: str
    modality: str
    dim: int
    created_with: str
    format_version: int = SETTINGS_VERSION
    encoder: EncoderFingerprint | None = None

    @classmethod
    def read(cls, folder: Path) -> IndexSettings | None:
        """The settings stored in ``folder``, or ``None`` when the folder has none."""
        path = folder / SETTINGS_FILE
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise IndexCorruptedError(
                f"{path} is unreadable ({exc}). Restore it from a backup, or delete it and "
                "pass --model with the model the index was built with."
            ) from exc
        return cls.from_dict(data, path)

    @classmethod
    def from_dict(cls, data: Any, path: Path | str) -> IndexSettings:
        """Settings from :meth:`to_dict` output; ``path`` names where they came from."""
        if not isinstance(data, dict) or data.get("kind") != _KIND:
            raise IndexCorruptedError(
                f"{path} is not a sauerkraut-rag settings file (expected a JSON object with "
                f'"kind": "{_KIND}"). Restore it, or delete it and pass --model.'
            )
        version = data.get("format_version")
        if not isinstance(version, int) or version < 1:
            raise IndexCorruptedError(f"{path} has no valid format_version: {version!r}.")
        if version > SETTINGS_VERSION:
            raise IndexFormatError(
                f"{path} has format version {version}, newer than this sauerkraut-rag "
                f"supports ({SETTINGS_VERSION}). Upgrade sauerkraut-rag."
            )
        try:
            encoder = data.get("encoder")
            return cls(
                encoder=None if encoder is None else EncoderFingerprint.from_dict(encoder),
                model=str(data["model"]),
                family=str(data["family"]),
                modality=str(data["modality"]),
                dim=int(data["dim"]),
                created_with=str(data.get("created_with", "")),
                format_version=version,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise IndexCorruptedError(
                f"{path} lacks a valid {exc} entry. Restore it, or delete it and pass --model."
            ) from exc

    def to_dict(self) -> dict[str, Any]:
        """The JSON object stored (in ``sauerkraut-rag.json``, or with a Qdrant collection)."""
        data = {"kind": _KIND, **asdict(self)}
        data["encoder"] = None if self.encoder is None else self.encoder.to_dict()
        if data["encoder"] is None:
            del data["encoder"]
        return data

    def write(self, folder: Path) -> Path:
        """Write the settings into ``folder`` atomically; returns the file's path."""
        text = json.dumps(self.to_dict(), indent=2, ensure_ascii=False)
        return write_atomically(
            folder / SETTINGS_FILE, lambda stream: stream.write((text + "\n").encode("utf-8"))
        )
