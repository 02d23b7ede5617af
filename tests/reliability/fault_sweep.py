"""Storage-fault injection for the index: a disk that fills up at every write step.

A :class:`Limiter` leaves the index a given number of free bytes: on a small tmpfs
(mounted by the test when it runs as root) by writing a ballast file, otherwise with
``RLIMIT_FSIZE`` (every file of this process may grow only that far; writes beyond fail
with ``EFBIG``, and Python ignores ``SIGXFSZ``). :func:`sweep` runs one operation with
0, 1, 2, ... pages free until it succeeds, so the fault lands on each write in turn:
segment files, the SQLite WAL, merged segments, the saved graph.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sauerkraut_rag.errors import IndexStorageError

PAGE = 4096


class Limiter:
    """Leaves ``free`` bytes for the files under a folder."""

    kind = ""

    def limit(self, free: int) -> None:
        raise NotImplementedError

    def clear(self) -> None:
        raise NotImplementedError


class TmpfsLimiter(Limiter):
    """A ballast file on the tmpfs takes all but ``free`` bytes (ENOSPC beyond)."""

    kind = "tmpfs"

    def __init__(self, mount: Path) -> None:
        self.mount = mount
        self.ballast = mount / "ballast"

    def limit(self, free: int) -> None:
        self.clear()
        stats = os.statvfs(self.mount)
        available = stats.f_bavail * stats.f_frsize
        with open(self.ballast, "wb") as handle:
            size = max(0, available - free)
            handle.truncate(0)
            block = b"\0" * (1 << 20)
            while size > 0:
                handle.write(block[: min(size, len(block))])
                size -= len(block)

    def clear(self) -> None:
        self.ballast.unlink(missing_ok=True)


class RlimitLimiter(Limiter):
    """``RLIMIT_FSIZE``: no file may grow beyond ``free`` bytes (writes past it: EFBIG).

    New files (segments, the WAL, a saved graph) start empty, so sweeping the cap from 0
    up fails each of their writes in turn; existing larger files stay readable.
    """

    kind = "rlimit"

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.saved = resource.getrlimit(resource.RLIMIT_FSIZE)

    def limit(self, free: int) -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (free, self.saved[1]))

    def clear(self) -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, self.saved)


@contextmanager
def small_tmpfs(where: Path, size: str = "8m") -> Iterator[Path | None]:
    """Mount a tmpfs at ``where`` if allowed (root); yields ``None`` otherwise (and when
    ``SAUERKRAUT_NO_TMPFS=1`` asks for the ``RLIMIT_FSIZE`` path)."""
    where.mkdir(parents=True, exist_ok=True)
    mounted = False
    allowed = os.environ.get("SAUERKRAUT_NO_TMPFS") != "1"
    if allowed and shutil.which("mount") and hasattr(os, "geteuid") and os.geteuid() == 0:
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
            capture_output=True,
            check=False,
        )
        mounted = done.returncode == 0
    try:
        yield where if mounted else None
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(where)], capture_output=True, check=False)


@dataclass
class Attempt:
    """One run of the operation with ``free`` bytes left."""

    free: int
    error: BaseException | None
    result: Any = None


@dataclass
class SweepResult:
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def failures(self) -> list[Attempt]:
        return [a for a in self.attempts if a.error is not None]


def sweep(
    limiter: Limiter,
    prepare: Callable[[], Any],
    run: Callable[[Any], Any],
    check: Callable[[Any, Attempt], None],
    *,
    max_pages: int = 96,
) -> SweepResult:
    """For free = 0, 1, 2, ... pages: ``state = prepare()``, limit, ``run(state)``,
    unlimit, ``check(state, attempt)``; stops after the first success."""
    out = SweepResult()
    for pages in range(max_pages):
        state = prepare()
        limiter.limit(pages * PAGE)
        try:
            attempt = Attempt(pages * PAGE, None, run(state))
        except Exception as exc:  # checked below: only IndexStorageError is allowed
            attempt = Attempt(pages * PAGE, exc)
        finally:
            limiter.clear()
        check(state, attempt)
        out.attempts.append(attempt)
        if attempt.error is None:
            return out
    raise AssertionError(f"the operation never succeeded with up to {max_pages} pages free")


def assert_storage_error(exc: BaseException | None, operation: str) -> IndexStorageError:
    """``exc`` is the typed storage error of ``operation``: nothing committed, data intact."""
    assert isinstance(exc, IndexStorageError), f"untyped error: {exc!r}"
    assert exc.operation == operation, exc.operation
    assert exc.committed is False and exc.data_intact is True, str(exc)
    for word in (operation, "nothing", "retry"):
        assert word in str(exc).lower(), str(exc)
    return exc


def copy_folder(source: Path, target: Path) -> None:
    """Replace ``target`` with a copy of the index folder ``source``."""
    with suppress(FileNotFoundError):
        shutil.rmtree(target)
    shutil.copytree(source, target)
