"""``sauerkraut-rag index`` keeps an index in step with its folders; ``remove`` deletes files
(issue 15, row 13): gone files are removed, renames keep their vectors under the new path,
duplicates are indexed once, and page images go with their pages."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from sauerkraut_rag.cli import indexer as indexer_module
from sauerkraut_rag.cli.index import run_index
from tests.cli.support import run_cli
from tests.factories.colbert import build_tiny_colbert
from tests.factories.collfm2 import build_tiny_collfm2
from tests.pdf_factory import make_pdf
from tests.test_cli import assert_one_line_error, stored

TEXTS = {
    "berg.txt": "Die Zugspitze ist 2962 m hoch.",
    "stadt.txt": "Berlin ist die Hauptstadt.",
    "fluss.md": "# Rhein\n\nDer Rhein fließt durch Köln.",
}


@pytest.fixture(scope="module")
def colbert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_colbert(tmp_path_factory.mktemp("sync-colbert") / "ck")


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    folder.mkdir()
    for name, text in TEXTS.items():
        (folder / name).write_text(text, "utf-8")
    return folder


def sources(index_dir: Path) -> dict[str, str]:
    """Document id -> file name of every stored document."""
    return {doc.id: Path(doc.metadata["source"]).name for doc in stored(index_dir)}


def index(docs: Path, idx: Path, *extra: str | Path) -> str:
    run = run_cli("index", docs, "--index", idx, *extra)
    assert run.returncode == 0, run.stderr
    return run.stdout


def test_files_gone_from_the_folder_are_removed(colbert: Path, docs: Path, tmp_path: Path) -> None:
    idx = tmp_path / "idx"
    index(docs, idx, "--model", colbert)
    assert sorted(set(sources(idx).values())) == ["berg.txt", "fluss.md", "stadt.txt"]
    (docs / "stadt.txt").unlink()
    kept = run_cli("index", docs, "--index", idx, "--keep-missing")
    assert kept.returncode == 0 and "removed" not in kept.stdout
    assert "stadt.txt" in sources(idx).values()
    out = index(docs, idx)
    assert "1 gone file(s) removed (1 documents)" in out
    assert sorted(set(sources(idx).values())) == ["berg.txt", "fluss.md"]
    search = run_cli("search", idx, "Hauptstadt", "--json", "-k", "5")
    assert all(
        r["metadata"]["file_name"] != "stadt.txt" for r in json.loads(search.stdout)["results"]
    )
    # a folder emptied completely is synced too, and other folders are never touched
    other = tmp_path / "other"
    other.mkdir()
    (other / "see.txt").write_text("Der Bodensee liegt am Rand der Alpen.", "utf-8")
    index(other, idx)
    for name in ("berg.txt", "fluss.md"):
        (docs / name).unlink()
    out = index(docs, idx)
    assert "2 gone file(s) removed" in out
    assert sorted(set(sources(idx).values())) == ["see.txt"]


def test_renamed_file_keeps_its_vectors_under_the_new_path(
    colbert: Path, docs: Path, tmp_path: Path
) -> None:
    idx = tmp_path / "idx"
    index(docs, idx, "--model", colbert)
    before = {d.id: d for d in stored(idx)}
    (docs / "berg.txt").rename(docs / "gipfel.txt")
    run = run_cli("index", docs, "--index", idx, "--verbose")
    assert run.returncode == 0, run.stderr
    assert "1 renamed" in run.stdout and "removed" not in run.stdout
    assert "Loading " not in run.stderr  # a rename needs no model
    after = {d.id: d for d in stored(idx)}
    assert after.keys() == before.keys()
    [moved] = [d for d in after.values() if d.metadata["file_name"] == "gipfel.txt"]
    assert moved.metadata["source"].endswith("gipfel.txt")
    np.testing.assert_array_equal(moved.multivector, before[moved.id].multivector)
    search = run_cli("search", idx, "Zugspitze", "--json", "-k", "1")
    assert json.loads(search.stdout)["results"][0]["source"].endswith("gipfel.txt")


def test_same_content_under_another_path_is_indexed_once(
    colbert: Path, docs: Path, tmp_path: Path
) -> None:
    idx = tmp_path / "idx"
    index(docs, idx, "--model", colbert)
    shutil.copy(docs / "berg.txt", docs / "kopie.txt")
    run = run_cli("index", docs, "--index", idx)
    assert "1 duplicate(s) of indexed files skipped" in run.stdout
    assert "same content as" in run.stderr and "kopie.txt" in run.stderr
    assert len(stored(idx)) == 3
    # the original changes: the copy still holds the old content and takes it over
    (docs / "berg.txt").write_text("Die Zugspitze ist der höchste Berg.", "utf-8")
    index(docs, idx)
    names = sorted(sources(idx).values())
    assert names == ["berg.txt", "fluss.md", "kopie.txt", "stadt.txt"]


def test_remove_command(colbert: Path, docs: Path, tmp_path: Path) -> None:
    idx = tmp_path / "idx"
    index(docs, idx, "--model", colbert)
    bad = run_cli("remove", docs / "nope.txt", docs / "berg.txt", "--index", idx)
    assert_one_line_error(bad, "nope.txt", "Nothing was removed")
    assert len(stored(idx)) == 3
    done = run_cli("remove", docs / "berg.txt", "--index", idx)
    assert done.returncode == 0 and "Removed 1 file(s) (1 documents)" in done.stdout
    assert "berg.txt" not in sources(idx).values()
    (docs / "stadt.txt").unlink()  # a path that no longer exists can still be removed
    assert run_cli("remove", docs / "stadt.txt", "--index", idx).returncode == 0
    assert run_cli("remove", docs, "--index", idx).returncode == 0  # a whole folder
    assert stored(idx) == []
    assert "0 unchanged" in index(docs, idx)  # re-indexing brings back what is there


def test_remove_deletes_page_images(tmp_path: Path) -> None:
    model = build_tiny_collfm2(tmp_path / "lfm2")
    pdfs = tmp_path / "pdfs"
    pdfs.mkdir()
    make_pdf(pdfs / "a.pdf", 2, texts=["eins", "zwei"])
    make_pdf(pdfs / "b.pdf", 1, texts=["drei"])
    idx = tmp_path / "idx"
    index(pdfs, idx, "--model", model, "--dpi", "36")
    images = {Path(d.metadata["image_path"]).name: d.metadata["file_name"] for d in stored(idx)}
    assert sorted(p.name for p in (idx / "pages").iterdir()) == sorted(images)
    assert run_cli("remove", pdfs / "a.pdf", "--index", idx).returncode == 0
    left = sorted(p.name for p in (idx / "pages").iterdir())
    assert left == sorted(name for name, file in images.items() if file == "b.pdf")


class RecordingBar:
    """Stands in for tqdm: records the total and every update."""

    made: ClassVar[list[RecordingBar]] = []

    def __init__(self, *args: Any, total: int = 0, **kwargs: Any) -> None:
        self.total = total
        self.n = 0
        self.updates: list[tuple[int, int]] = []
        RecordingBar.made.append(self)

    def update(self, n: int) -> None:
        self.n += n
        self.updates.append((self.n, self.total))

    def refresh(self) -> None: ...
    def set_postfix_str(self, *args: Any, **kwargs: Any) -> None: ...
    def close(self) -> None: ...


def test_progress_counts_pages_and_chunks(
    colbert: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(indexer_module, "tqdm", RecordingBar)
    RecordingBar.made.clear()
    pdfs = tmp_path / "pdfs"
    pdfs.mkdir()
    make_pdf(pdfs / "long.pdf", 9, texts=[f"Seite {i}" for i in range(9)])
    make_pdf(pdfs / "short.pdf", 2, texts=["a", "b"])
    model = build_tiny_collfm2(tmp_path / "lfm2")
    run_index(
        [str(pdfs)], tmp_path / "idx", model=str(model), pool_factor=None, dpi=36, err=io.StringIO()
    )
    [bar] = RecordingBar.made
    assert bar.n == bar.total == 11  # pages, not files
    assert len(bar.updates) >= 4  # the 9-page PDF moves the bar while it is encoded
    assert bar.updates[0] == (4, 9)  # first batch of the long file: 4 of its 9 pages
    RecordingBar.made.clear()
    text = tmp_path / "text"
    text.mkdir()
    long_text = "\n\n".join(f"Absatz {i}. " + "Wort " * 200 for i in range(5))
    (text / "lang.txt").write_text(long_text, "utf-8")
    run_index(
        [str(text)],
        tmp_path / "tidx",
        model=str(colbert),
        pool_factor=None,
        dpi=36,
        err=io.StringIO(),
    )
    [bar] = RecordingBar.made
    assert bar.total == len(stored(tmp_path / "tidx")) > 1 and bar.n == bar.total  # chunks
