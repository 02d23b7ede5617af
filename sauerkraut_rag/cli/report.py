"""What an ``index`` run did, and how the command line writes per-file notes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TextIO

from tqdm.auto import tqdm


@dataclass
class IndexReport:
    """What one ``index`` run did, counted in files (and documents for new/removed files)."""

    new_files: int = 0
    new_documents: int = 0
    unchanged: int = 0
    failed: int = 0
    replaced: int = 0
    left_out: int = 0
    renamed: int = 0
    duplicates: int = 0
    removed: int = 0
    removed_documents: int = 0

    def summary(self, folder: object) -> str:
        """The one-line summary ``index`` prints."""
        parts = [
            f"{self.unchanged} unchanged file(s) skipped",
            f"{self.replaced} changed file(s) replaced",
        ]
        if self.renamed:
            parts.append(f"{self.renamed} renamed")
        if self.duplicates:
            parts.append(f"{self.duplicates} duplicate(s) of indexed files skipped")
        if self.removed:
            parts.append(
                f"{self.removed} gone file(s) removed ({self.removed_documents} documents)"
            )
        parts.append(f"{self.failed} failed")
        return (
            f"Indexed {self.new_files} new file(s) ({self.new_documents} documents) into "
            f"{folder}; {', '.join(parts)}."
        )


def say(err: TextIO, message: str) -> None:
    """One line on stderr that does not break a running progress bar."""
    tqdm.write(" ".join(message.split()), file=err)
