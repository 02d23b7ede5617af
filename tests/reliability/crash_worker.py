"""Child process of ``test_crash_safety``: one index operation, SIGKILLed part-way.

Usage: ``python crash_worker.py SPEC_JSON``. The spec names the folder, the index
strategy, the operation (``add``, ``upsert``, ``delete`` or ``compact``, then ``close``)
and where to die:

* ``{"mode": "line", "at": N}``: SIGKILL itself at the N-th line executed inside the
  ``sauerkraut_rag`` package (a random point between two statements);
* ``{"mode": "timer", "at": S}``: a timer thread sends SIGKILL S seconds into the
  untraced operation (can land inside C code: fsync, SQLite commit, HNSW insert).

``"at": null`` runs to the end (to measure the operation: lines or seconds).

Prints ``ready`` once the index is open and ``done LINES SECONDS`` if it finished.
Imports only numpy, voyager and sqlite3 (no torch), so it starts fast.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = str(ROOT / "sauerkraut_rag")


class LineKiller:
    """A ``sys.settrace`` hook counting lines run in the package; SIGKILL at line ``at``."""

    def __init__(self, at: float) -> None:
        self.at = at
        self.lines = 0

    def __call__(self, frame: FrameType, event: str, arg: Any) -> Any:
        if not frame.f_code.co_filename.startswith(PACKAGE):
            return None
        return self.local

    def local(self, frame: FrameType, event: str, arg: Any) -> Any:
        if event == "line":
            self.lines += 1
            if self.lines >= self.at:
                os.kill(os.getpid(), signal.SIGKILL)
        return self.local


def main() -> None:
    spec = json.loads(sys.argv[1])
    sys.path.insert(0, str(ROOT))
    from sauerkraut_rag.retrievers.voyager.index import VoyagerIndex
    from tests.retrievers.crash_ops import DIM, vectors

    options = {"strategy": spec["strategy"], "exact_threshold": 0, "candidates": 10_000}
    index = VoyagerIndex(spec["folder"], dim=DIM, **options)
    op, kill = spec["op"], spec["kill"]
    args: list[Any] = [op["ids"]]
    if op["kind"] in ("add", "upsert"):
        args += [vectors(op["seed"], len(op["ids"])), op["metas"], op["payloads"]]
    elif op["kind"] == "compact":
        args = []
    print("ready", flush=True)
    traced = kill["mode"] == "line"
    at = kill["at"]
    tracer = LineKiller(at if traced and at is not None else float("inf"))
    if kill["mode"] == "timer" and at is not None:
        timer = threading.Timer(at, os.kill, (os.getpid(), signal.SIGKILL))
        timer.daemon = True
        timer.start()
    started = time.perf_counter()
    if traced:
        sys.settrace(tracer)
    getattr(index, op["kind"])(*args)
    index.close()
    sys.settrace(None)
    print(f"done {tracer.lines} {time.perf_counter() - started:.4f}", flush=True)


if __name__ == "__main__":
    main()
