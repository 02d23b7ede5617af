"""Child process of ``test_creation_kills``: index creations SIGKILLed part-way.

Usage: ``python creation_worker.py SPEC_JSON``. The spec names a parent folder, a
seed and how many kills to make. The worker imports the package once, measures one
whole creation, then forks one child per round that creates ``<parent>/index-<n>`` and
is killed: at a random line executed inside the ``sauerkraut_rag`` package
(``sys.settrace``), or by a timer that can land inside C code (SQLite, fsync, rename).
Prints one JSON line per round: ``{"folder": ..., "mode": ..., "at": ..., "killed": ...}``.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = str(ROOT / "sauerkraut_rag")
DIM = 8


class LineKiller:
    """Counts lines run in the package; SIGKILLs the process at line ``at``."""

    def __init__(self, at: float) -> None:
        self.at = at
        self.lines = 0

    def __call__(self, frame: FrameType, event: str, arg: Any) -> Any:
        return self.local if frame.f_code.co_filename.startswith(PACKAGE) else None

    def local(self, frame: FrameType, event: str, arg: Any) -> Any:
        if event == "line":
            self.lines += 1
            if self.lines >= self.at:
                os.kill(os.getpid(), signal.SIGKILL)
        return self.local


def _create(folder: Path) -> None:
    from sauerkraut_rag.retrievers.voyager.index import VoyagerIndex

    VoyagerIndex.create(folder, dim=DIM).close()


def _measure(folder: Path) -> tuple[int, float]:
    _create(folder.with_name(folder.name + "-warm"))  # imports happen here, not in rounds
    tracer = LineKiller(float("inf"))
    sys.settrace(tracer)
    _create(folder)
    sys.settrace(None)
    started = time.perf_counter()
    _create(folder.with_name(folder.name + "-timed"))
    return tracer.lines, time.perf_counter() - started


def _round(folder: Path, mode: str, at: float) -> bool:
    """Run one creation in a forked child killed at ``at``; whether it was killed."""
    pid = os.fork()
    if pid == 0:  # child
        try:
            if mode == "line":
                sys.settrace(LineKiller(at))
            else:
                threading.Timer(at, os.kill, (os.getpid(), signal.SIGKILL)).start()
            _create(folder)
            sys.settrace(None)
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    return os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL


def main() -> None:
    spec = json.loads(sys.argv[1])
    sys.path.insert(0, str(ROOT))
    parent = Path(spec["parent"])
    rng = random.Random(spec["seed"])
    lines, seconds = _measure(parent / "measured")
    for n in range(spec["kills"]):
        mode = "line" if n % 3 else "timer"
        at = rng.randint(1, lines) if mode == "line" else rng.uniform(0.0, seconds)
        folder = parent / f"index-{n}"
        if n % 5 == 4:  # an existing empty folder, as users often pass
            folder.mkdir()
        killed = _round(folder, mode, at)
        print(json.dumps({"folder": str(folder), "mode": mode, "at": at, "killed": killed}))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
