"""Child process of ``test_hostile_files``: cases that could kill or split a process.

Usage: ``python hostile_worker.py CASE FOLDER``; prints one line per check and exits 0.

* ``truncate``: a vector segment is truncated behind the index's back while it is open
  (memory-mapped, and copied into memory); reads must raise ``IndexCorruptedError``
  instead of dying of ``SIGBUS``.
* ``fork``: a writable index used in a forked child raises ``ForkedWriterError``; a
  read-only handle keeps working there; the parent keeps its writer lock and writes on.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DIM = 8


def _docs(n: int, seed: int, tokens: int = 4) -> list:
    import numpy as np

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        x = rng.standard_normal((tokens, DIM)).astype(np.float32)
        out.append(x / np.linalg.norm(x, axis=1, keepdims=True))
    return out


def _truncate(folder: Path) -> None:
    from sauerkraut_rag.errors import IndexCorruptedError
    from sauerkraut_rag.retrievers.voyager import segments
    from sauerkraut_rag.retrievers.voyager.index import VoyagerIndex

    with VoyagerIndex.create(folder, dim=DIM) as index:  # a 40 KB segment: 10 pages
        index.add([f"d{i}" for i in range(40)], _docs(40, 1, tokens=64))
    copied = VoyagerIndex.open(folder, read_only=True)  # small segment: copied into memory
    segments.COPY_BYTES = 0  # from here on every segment is memory-mapped
    mapped = VoyagerIndex.open(folder, read_only=True)
    assert all(s.data.mapped for s in mapped._snap.segments)
    query = _docs(1, 2)[0]
    expected = mapped.search([query], 3)
    (segment,) = (folder / "vectors").glob("*.npy")
    os.truncate(segment, 4096)  # pages past the end of a mapped file raise SIGBUS
    for name, call in [
        ("search", lambda: mapped.search([query], 3)),
        ("get", lambda: mapped.get(["d5"], include_vectors=True)),
        ("open", lambda: VoyagerIndex.open(folder, read_only=True)),
    ]:
        try:
            call()
        except IndexCorruptedError as exc:
            assert "truncated" in str(exc), exc
            print(f"{name}: IndexCorruptedError", flush=True)
        else:
            raise AssertionError(f"{name} read a truncated segment without an error")
    assert copied.search([query], 3) == expected  # its copy is unaffected
    print("copied: unaffected", flush=True)


def _fork(folder: Path) -> None:
    from sauerkraut_rag.errors import ForkedWriterError, IndexStoreError
    from sauerkraut_rag.retrievers.voyager.index import VoyagerIndex

    writer = VoyagerIndex.create(folder, dim=DIM)
    writer.add(["a", "b"], _docs(2, 3))
    reader = VoyagerIndex.open(folder, read_only=True)
    pid = os.fork()
    if pid == 0:  # the child: report through the exit code
        code = 0
        for call in (lambda: writer.add(["c"], _docs(1, 4)), lambda: writer.search(_docs(1, 5), 1)):
            try:
                call()
                code |= 1
            except ForkedWriterError:
                pass
        if sorted(d.id for d in reader.get(["a", "b"])) != ["a", "b"]:
            code |= 2
        writer.close()  # must leave the parent's lock and connections alone
        reader.close()
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
    print("child: ForkedWriterError, reader works", flush=True)
    writer.add(["c"], _docs(1, 6))  # the parent still writes
    try:
        VoyagerIndex.open(folder)
    except IndexStoreError as exc:
        assert "already open for writing" in str(exc)
        print("parent: still holds the writer lock", flush=True)
    else:
        raise AssertionError("the child's close() released the parent's writer lock")
    writer.close()
    reader.close()
    with VoyagerIndex.open(folder, read_only=True) as check:
        assert len(check) == 3
    print("parent: writes kept", flush=True)


def main() -> None:
    case, folder = sys.argv[1], Path(sys.argv[2])
    sys.path.insert(0, str(ROOT))
    {"truncate": _truncate, "fork": _fork}[case](folder)


if __name__ == "__main__":
    main()
