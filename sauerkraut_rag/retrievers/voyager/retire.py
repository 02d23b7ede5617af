"""Retiring files: a file that a committed state named is deleted only once no reader
can still be opening it.

The writer hands every file that a commit stopped referencing (merged segments, the
segments and graph replaced by ``compact``, an older saved graph) to :class:`Retirer`,
and so does the orphan sweep of a writable open (files of no committed state, left by a
crash). :meth:`Retirer.flush` deletes them while holding :class:`FilesLock` exclusively
and simply tries again after the next commit when a reader holds it.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterable
from pathlib import Path

from sauerkraut_rag.retrievers.voyager.locks import FilesLock
from sauerkraut_rag.retrievers.voyager.storage import fsync_dir

logger = logging.getLogger(__name__)


class Retirer:
    """Files waiting to be deleted, per index-owned folder (``vectors/``, ``hnsw/``)."""

    def __init__(self, lock: FilesLock) -> None:
        self._lock = lock
        self._pending: dict[Path, set[str]] = {}

    @property
    def pending(self) -> int:
        """Number of files still waiting to be deleted."""
        return sum(len(names) for names in self._pending.values())

    def retire(self, folder: Path, names: Iterable[str]) -> None:
        """Schedule ``folder/name`` for deletion (names are plain file names)."""
        self._pending.setdefault(folder, set()).update(names)

    def sweep(self, folder: Path, keep: set[str]) -> list[str]:
        """Schedule every file in ``folder`` not named in ``keep``; return those names.

        Only files (and links) directly inside an index-owned folder are considered;
        the caller has checked that ``folder`` is a real folder, not a link.
        """
        found: list[str] = []
        try:
            entries = list(os.scandir(folder))
        except FileNotFoundError:
            return found
        for entry in entries:
            mode = entry.stat(follow_symlinks=False).st_mode
            if (stat.S_ISREG(mode) or stat.S_ISLNK(mode)) and entry.name not in keep:
                found.append(entry.name)
        if found:
            self.retire(folder, found)
        return found

    def flush(self) -> bool:
        """Delete pending files unless a reader is opening files; ``True`` if none remain.

        Failures to delete are logged and retried later; this never raises ``OSError``.
        """
        if not self._pending:
            return True
        try:
            with self._lock.try_exclusive() as locked:
                if not locked:
                    logger.debug("a reader is opening files; deleting retired files later")
                    return False
                self._delete_pending()
        except OSError as exc:
            logger.warning("could not delete retired index files yet (%s); will retry", exc)
        return not self._pending

    def _delete_pending(self) -> None:
        removed = 0
        for folder in list(self._pending):
            names = self._pending[folder]
            for name in sorted(names):
                try:
                    (folder / name).unlink(missing_ok=True)
                except OSError as exc:
                    logger.debug("could not delete %s (%s); retrying later", folder / name, exc)
                    continue
                names.discard(name)
                removed += 1
            fsync_dir(folder)
            if not names:
                del self._pending[folder]
        if removed:
            logger.debug("deleted %d retired index file(s)", removed)
