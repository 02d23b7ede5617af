"""Child process of ``test_index_crash``: runs the operation schedule until it is killed.

Usage: ``python crash_child.py FOLDER STRATEGY START_STEP``. Prints ``ready`` once the
index is open and ``done N`` after each whole operation. The package ``__init__`` (which
loads the encoders and torch) is bypassed so only numpy, voyager and sqlite3 are loaded.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def main() -> None:
    folder, strategy, start = sys.argv[1], sys.argv[2], int(sys.argv[3])
    package = types.ModuleType("sauerkraut_rag")
    package.__path__ = [str(ROOT / "sauerkraut_rag")]
    sys.modules["sauerkraut_rag"] = package
    sys.path.insert(0, str(Path(__file__).parent))
    import crash_ops

    from sauerkraut_rag.retrievers.index import VoyagerIndex

    index = VoyagerIndex(
        folder, dim=crash_ops.DIM, strategy=strategy, exact_threshold=0, candidates=10_000
    )
    print("ready", flush=True)
    step = start
    while True:
        crash_ops.apply(index, step)
        step += 1
        print(f"done {step}", flush=True)


if __name__ == "__main__":
    main()
