"""Hostile files and processes: truncation under a memory map, fork, damaged databases,
and links that would lead an index out of its folder.

The process-level cases run in ``hostile_worker.py`` so that a ``SIGBUS`` or a confused
fork cannot take pytest down with it.
"""

from __future__ import annotations

import random
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sauerkraut_rag.errors import IndexCorruptedError, IndexFormatError, SauerkrautError
from sauerkraut_rag.retrievers.voyager.index import VoyagerIndex
from tests.reliability.support import folder_digest
from tests.retrievers.helpers import random_docs

WORKER = Path(__file__).with_name("hostile_worker.py")
DIM = 8


def _worker(case: str, folder: Path) -> list[str]:
    done = subprocess.run(
        [sys.executable, str(WORKER), case, str(folder)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode != -signal.SIGBUS, "the process died of SIGBUS"
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    return done.stdout.splitlines()


def test_truncated_segment_under_an_open_index_raises_instead_of_sigbus(tmp_path: Path) -> None:
    lines = _worker("truncate", tmp_path / "index")
    assert lines == [
        "search: IndexCorruptedError",
        "get: IndexCorruptedError",
        "open: IndexCorruptedError",
        "copied: unaffected",
    ]


def test_writable_index_refuses_use_in_a_forked_child(tmp_path: Path) -> None:
    lines = _worker("fork", tmp_path / "index")
    assert lines == [
        "child: ForkedWriterError, reader works",
        "parent: still holds the writer lock",
        "parent: writes kept",
    ]


# ------------------------------------------------------------------ byte-flipped databases


@pytest.fixture(scope="module")
def small_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("flip") / "index"
    with VoyagerIndex.create(folder, dim=DIM, exact_threshold=5) as index:
        for batch in range(4):
            ids = [f"d{batch}-{i}" for i in range(10)]
            metas = [{"k": i, "t": f"x{i}", "tags": ["a", i]} for i in range(10)]
            index.add(ids, random_docs(10, DIM, seed=batch), metas, [f"text {i}" for i in ids])
        index.delete(["d0-1", "d2-2"])
    return folder


def test_byte_flipped_database_gives_typed_errors(small_index: Path, tmp_path: Path) -> None:
    """Flip one byte at 240 places of ``index.sqlite``: every open, search, filtered
    search and get either works or raises a typed index error, never a raw one."""
    data = (small_index / "index.sqlite").read_bytes()
    rng = random.Random(14)
    outcomes: dict[str, int] = {}
    query = random_docs(1, DIM, seed=9)[0]
    for position in sorted(rng.sample(range(len(data)), 240)):
        work = tmp_path / "work"
        shutil.rmtree(work, ignore_errors=True)
        shutil.copytree(small_index, work)
        flipped = bytearray(data)
        flipped[position] ^= 0xFF
        (work / "index.sqlite").write_bytes(bytes(flipped))
        for read_only, verify in ((True, True), (False, False)):
            try:
                with VoyagerIndex.open(work, read_only=read_only, verify=verify) as index:
                    index.search([query], 3)
                    index.search([query], 3, filter={"k": {"$gte": 5}})
                    index.get(["d1-1", "d3-9"], include_vectors=True)
                name = "ok"
            except SauerkrautError as exc:
                name = type(exc).__name__
            outcomes[name] = outcomes.get(name, 0) + 1
    assert set(outcomes) <= {"ok", IndexCorruptedError.__name__, IndexFormatError.__name__}
    assert outcomes.get(IndexCorruptedError.__name__, 0) >= 5, outcomes


# ------------------------------------------------------------------ links out of the folder


def _index(folder: Path) -> None:
    with VoyagerIndex.create(folder, dim=DIM) as index:
        index.add(["a", "b", "c"], random_docs(3, DIM, seed=1), None, ["x", "y", "z"])


def _move_out(folder: Path, name: str, elsewhere: Path) -> None:
    """Replace ``folder/name`` by a link to a copy of it in ``elsewhere``."""
    target = folder / name
    outside = elsewhere / target.name
    shutil.move(target, outside)
    target.symlink_to(outside)


@pytest.mark.parametrize("read_only", [False, True])
@pytest.mark.parametrize("name", ["vectors", "hnsw", "index.sqlite", "segment", "writer.lock"])
def test_linked_index_files_are_refused(tmp_path: Path, name: str, read_only: bool) -> None:
    folder, elsewhere = tmp_path / "index", tmp_path / "elsewhere"
    _index(folder)
    elsewhere.mkdir()
    if name == "segment":
        name = str(next((folder / "vectors").glob("*.npy")).relative_to(folder))
    _move_out(folder, name, elsewhere)
    before = folder_digest(elsewhere)
    with pytest.raises(IndexCorruptedError, match="symbolic link"):
        VoyagerIndex.open(folder, read_only=read_only)
    assert folder_digest(elsewhere) == before


def test_linked_graph_file_is_not_followed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The graph is derived data: a linked graph file is ignored (rebuilt), never read or
    written through, and its target survives the retirement of the old graph."""
    folder, elsewhere = tmp_path / "index", tmp_path / "elsewhere"
    _index(folder)
    elsewhere.mkdir()
    name = str(next((folder / "hnsw").glob("*.voy")).relative_to(folder))
    _move_out(folder, name, elsewhere)
    before = folder_digest(elsewhere)
    with VoyagerIndex.open(folder) as index:
        assert [h.id for h in index.search([random_docs(3, DIM, seed=1)[1]], 1)[0]] == ["b"]
        index.add(["d"], random_docs(1, DIM, seed=2))
        index.save()
    assert "rebuilding" in caplog.text
    assert folder_digest(elsewhere) == before


def test_planted_link_at_a_temporary_name_is_not_written_through(tmp_path: Path) -> None:
    """Segment files are written under predictable temporary names; a link planted there
    is replaced, never followed."""
    folder, victim = tmp_path / "index", tmp_path / "victim.txt"
    _index(folder)
    victim.write_text("precious")
    with VoyagerIndex.open(folder) as index:
        start = index._snap.next_token
        stop = start + 4
        planted = folder / "vectors" / f"seg-e0-{start:012d}-{stop:012d}.npy.tmp"
        planted.symlink_to(victim)
        index.add(["d"], [np.ones((4, DIM), dtype=np.float32) / np.sqrt(DIM)])
        assert "d" in index
    assert victim.read_text() == "precious"


def test_cli_follows_links_out_of_a_folder_only_when_asked(
    colbert_dir: Path, tmp_path: Path
) -> None:
    docs, index_dir = tmp_path / "docs", tmp_path / "index"
    docs.mkdir()
    (docs / "berlin.txt").write_text("Berlin ist die Hauptstadt von Deutschland.")
    secret = tmp_path / "secret.txt"
    secret.write_text("Paris is the capital of France.")
    (docs / "secret.txt").symlink_to(secret)
    (docs / "loop").symlink_to(docs)  # a link inside the folder (a loop): harmless
    args = ["index", str(docs), "--index", str(index_dir), "--model", str(colbert_dir)]

    def texts() -> list[str]:
        with VoyagerIndex.open(index_dir, read_only=True) as index:
            return [d.payload or "" for d in index.get(index.list_ids(1000).ids)]

    code, _, err = _cli_main(args)
    assert code == 0, err
    assert [line for line in err.splitlines() if "secret.txt" in line], err
    assert any("Berlin" in t for t in texts()) and not any("Paris" in t for t in texts())
    code, _, err = _cli_main([*args, "--follow-symlinks"])
    assert code == 0, err
    assert any("Paris" in t for t in texts())


def _cli_main(args: list[str]) -> tuple[int, str, str]:
    import io
    from contextlib import redirect_stderr, redirect_stdout

    from sauerkraut_rag.cli import main

    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(args)
    return code, out.getvalue(), err.getvalue()
