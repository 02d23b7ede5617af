"""Child process of ``test_readers_beside_writer``: one writer or one reader of an index.

Usage: ``python readers_worker.py ROLE FOLDER SECONDS OUT_JSON`` with ROLE one of

* ``writer``: adds, upserts, deletes and compacts for SECONDS, logging every operation
  with the monotonic times around it (``time.monotonic`` is system-wide on Linux);
* ``opener``: opens the folder ``read_only=True``, searches once and closes, in a loop;
* ``reader``: one long-lived ``read_only=True`` handle searching in a loop.

Every stored version of document ``id`` at version ``v`` has payload ``"id|v"``,
metadata ``{"id": id, "v": v}`` and vectors drawn from ``(id, v)``, so a reader checks
each hit on the spot (payload, metadata and exact score belong together) and reports
what it saw; the parent checks that every hit was a committed version alive during the
search. Readers count every exception as an error. Imports no torch.
"""

from __future__ import annotations

import json
import random
import sys
import time
import traceback
import zlib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DIM = 16
OPTIONS = {"strategy": "fde", "exact_threshold": 30, "candidates": 200}
"""Above 30 documents searches take the HNSW path; 200 candidates keep it exact here."""
MAX_LIVE = 120


def vectors(doc_id: str, version: int) -> Any:
    """The vectors of ``doc_id`` at ``version``: 2..6 unit rows of dim 16."""
    import numpy as np

    rng = np.random.default_rng(zlib.crc32(f"{doc_id}:{version}".encode()))
    x = rng.standard_normal((int(rng.integers(2, 7)), DIM)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _writer(index: Any, seconds: float) -> dict[str, Any]:
    rng = random.Random(5)
    live: dict[str, int] = {}
    ops: list[dict[str, Any]] = []
    step, deadline = 0, time.monotonic() + seconds
    while time.monotonic() < deadline:
        kind = "compact" if step % 12 == 11 else ("add", "upsert", "delete")[step % 3]
        docs: list[tuple[str, int]] = []
        if kind == "add":
            docs = [(f"d{step}-{i}", 0) for i in range(5)]
        elif kind == "upsert":
            docs = [(d, live[d] + 1) for d in rng.sample(sorted(live), min(2, len(live)))]
            docs.append((f"u{step}", 0))
        elif kind == "delete":
            count = max(2, len(live) - MAX_LIVE)
            docs = [(d, live[d]) for d in rng.sample(sorted(live), min(count, len(live)))]
        started = time.monotonic()
        if kind in ("add", "upsert"):
            ids = [d for d, _ in docs]
            getattr(index, kind)(
                ids,
                [vectors(d, v) for d, v in docs],
                [{"id": d, "v": v} for d, v in docs],
                [f"{d}|{v}" for d, v in docs],
            )
            live.update(docs)
        elif kind == "delete":
            index.delete([d for d, _ in docs])
            for d, _ in docs:
                del live[d]
        else:
            index.compact()
        ops.append({"kind": kind, "docs": docs, "start": started, "end": time.monotonic()})
        step += 1
    return {"ops": ops, "live": sorted(live)}


def _check_hits(hits: Any, query: Any) -> list[list[Any]]:
    """``[id, version]`` per hit after checking payload, metadata and exact score."""
    import numpy as np

    seen = []
    for hit in hits:
        version = hit.metadata["v"]
        if hit.metadata["id"] != hit.id or hit.payload != f"{hit.id}|{version}":
            raise AssertionError(f"mixed versions in one hit: {hit}")
        stored = vectors(hit.id, version).astype(np.float16).astype(np.float32)
        exact = float((query @ stored.T).max(axis=1).sum())
        if abs(exact - hit.score) > 1e-3:
            raise AssertionError(f"{hit.id} v{version}: score {hit.score}, exact {exact}")
        seen.append([hit.id, version])
    return seen


def _reader(folder: str, seconds: float, reopen: bool) -> dict[str, Any]:
    import numpy as np

    from sauerkraut_rag.retrievers.voyager.index import VoyagerIndex

    rng = np.random.default_rng(11 if reopen else 12)
    searches: list[dict[str, Any]] = []
    errors: list[str] = []
    index = None if reopen else VoyagerIndex.open(folder, read_only=True)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        query = rng.standard_normal((3, DIM)).astype(np.float32)
        query /= np.linalg.norm(query, axis=1, keepdims=True)
        started = time.monotonic()
        try:
            if reopen:
                with VoyagerIndex.open(folder, read_only=True) as fresh:
                    hits = fresh.search([query], 5)[0]
            else:
                hits = index.search([query], 5)[0]
            seen = _check_hits(hits, query)
        except Exception:
            errors.append(traceback.format_exc(limit=6))
            continue
        searches.append({"start": started, "end": time.monotonic(), "hits": seen})
    final = VoyagerIndex.open(folder, read_only=True) if reopen else index
    final_len = len(final)  # a read-only handle catches up first
    result = {
        "searches": searches,
        "errors": errors,
        "final_len": final_len,
        "final": sorted(final._snap.id_to_pos),
    }
    final.close()
    return result


def main() -> None:
    role, folder, seconds, out = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
    sys.path.insert(0, str(ROOT))
    from sauerkraut_rag.retrievers.voyager.index import VoyagerIndex

    if role == "writer":
        with VoyagerIndex(folder, dim=DIM, **OPTIONS) as index:
            print("ready", flush=True)
            result = _writer(index, seconds)
    else:
        print("ready", flush=True)
        result = _reader(folder, seconds, reopen=role == "opener")
    Path(out).write_text(json.dumps(result), encoding="utf-8")


if __name__ == "__main__":
    main()
