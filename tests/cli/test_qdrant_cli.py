"""The command line on a Qdrant collection in local mode (``--qdrant PATH --collection NAME``):
index, search, remove, info, explain and copy work as on an index folder and give the
same answers; connection problems end in one line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("qdrant_client")

from sauerkraut_rag.cli.main import main
from tests.factories.colbert import build_tiny_colbert
from tests.factories.collfm2 import build_tiny_collfm2
from tests.pdf_factory import make_pdf
from tests.retrievers.test_qdrant_errors import refusing_server  # noqa: F401

TEXTS = {
    "berg.txt": "Die Zugspitze ist 2962 m hoch.",
    "stadt.txt": "Berlin ist die Hauptstadt.",
    "fluss.md": "# Rhein\n\nDer Rhein fließt durch Köln.",
}
QUERY = "Wie hoch ist die Zugspitze?"


@pytest.fixture(scope="module")
def colbert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_colbert(tmp_path_factory.mktemp("qcli-colbert") / "ck")


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    folder.mkdir()
    for name, text in TEXTS.items():
        (folder / name).write_text(text, "utf-8")
    return folder


def run(capsys: pytest.CaptureFixture[str], *args: Any) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def ok(capsys: pytest.CaptureFixture[str], *args: Any) -> str:
    code, out, err = run(capsys, *args)
    assert code == 0, err
    return out


def results(out: str) -> list[tuple[str, float]]:
    return [(r["id"], r["maxsim"]) for r in json.loads(out)["results"]]


def test_index_search_remove_info_on_a_collection(capsys, colbert, docs, tmp_path):
    where = ["--qdrant", tmp_path / "qdrant", "--collection", "texts"]
    out = ok(capsys, "index", docs, *where, "--model", colbert)
    assert "Indexed 3 new file(s)" in out and "collection 'texts'" in out
    assert "3 unchanged" in ok(capsys, "index", docs, *where)  # the file list is in Qdrant
    ok(capsys, "index", docs, "--index", tmp_path / "idx", "--model", colbert)
    on_qdrant = results(ok(capsys, "search", QUERY, *where, "--json", "-k", "3"))
    on_folder = results(ok(capsys, "search", tmp_path / "idx", QUERY, "--json", "-k", "3"))
    assert [i for i, _ in on_qdrant] == [i for i, _ in on_folder]
    assert [s for _, s in on_qdrant] == pytest.approx([s for _, s in on_folder], abs=2e-3)
    filtered = results(ok(capsys, "search", QUERY, *where, "--json", "--filter", "chunk=1"))
    assert len(filtered) == 3
    info = json.loads(ok(capsys, "info", *where, "--json"))
    assert info["documents"] == 3 and info["files"] == 3 and info["model"] == str(colbert)
    assert "Removed 1 file(s) (1 documents)" in ok(capsys, "remove", docs / "berg.txt", *where)
    assert json.loads(ok(capsys, "info", *where, "--json"))["files"] == 2
    (docs / "stadt.txt").unlink()
    assert "1 gone file(s) removed" in ok(capsys, "index", docs, *where)
    assert "texts" in ok(capsys, "info", *where)


def test_copy_a_folder_into_a_collection(capsys, colbert, docs, tmp_path):
    ok(capsys, "index", docs, "--index", tmp_path / "idx", "--model", colbert)
    where = ["--qdrant", tmp_path / "qdrant", "--collection", "copied"]
    assert "Copied 3 documents" in ok(capsys, "copy", tmp_path / "idx", *where)
    assert "(3 already there)" in ok(capsys, "copy", tmp_path / "idx", *where)  # resumable
    on_folder = results(ok(capsys, "search", tmp_path / "idx", QUERY, "--json"))
    on_copy = results(ok(capsys, "search", QUERY, *where, "--json"))
    assert [i for i, _ in on_copy] == [i for i, _ in on_folder]
    assert [s for _, s in on_copy] == pytest.approx([s for _, s in on_folder], abs=1e-4)
    assert "3 unchanged" in ok(capsys, "index", docs, *where)  # model and file list came along


def test_pages_with_a_pages_dir_and_explain(capsys, tmp_path):
    model = build_tiny_collfm2(tmp_path / "lfm2")
    pdf = make_pdf(tmp_path / "report.pdf", 2, texts=["Umsatz", "Sicherheit"])
    shared = tmp_path / "shared-pages"
    where = ["--qdrant", tmp_path / "qdrant", "--collection", "pages"]
    ok(capsys, "index", pdf, *where, "--model", model, "--dpi", "36", "--pages-dir", shared)
    hits = json.loads(ok(capsys, "search", "Umsatz", *where, "--json"))["results"]
    assert len(hits) == 2 and all(Path(h["image_path"]).parent == shared for h in hits)
    assert json.loads(ok(capsys, "info", *where, "--json"))["pages_dir"] == str(shared.resolve())
    out = ok(
        capsys, "explain", "Umsatz", *where, "--page", hits[0]["id"], "--out", tmp_path / "m.png"
    )
    assert (tmp_path / "m.png").is_file() and "Wrote" in out


def test_target_mistakes_are_one_line_errors(capsys, tmp_path):
    code, _, err = run(capsys, "search", QUERY, "--qdrant", tmp_path / "q", "--collection", "no")
    assert code == 1 and "No collection 'no'" in err and "sauerkraut-rag index" in err
    code, _, err = run(capsys, "search", tmp_path, QUERY, "--collection", "x")
    assert code == 1 and "--collection only applies with --qdrant" in err
    code, _, err = run(capsys, "info", tmp_path, "--qdrant", tmp_path / "q", "--collection", "x")
    assert code == 1 and "got both" in err
    code, _, err = run(capsys, "copy", tmp_path / "idx", "--qdrant", tmp_path / "q")
    assert code == 1 and "--collection" in err
    with pytest.raises(SystemExit) as usage:
        main(["info"])
    assert usage.value.code == 2


@pytest.mark.enable_socket
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_server_errors_are_one_line(capsys, monkeypatch, refusing_server):  # noqa: F811
    monkeypatch.setenv("QDRANT_API_KEY", "wrong")
    code, _, err = run(capsys, "info", "--qdrant", refusing_server, "--collection", "x")
    assert code == 1 and "API key is missing or wrong" in err and "wrong" not in err.split("(")[0]
    assert err.count("\n") == 1
    code, _, err = run(capsys, "info", "--qdrant", "http://127.0.0.1:1", "--collection", "x")
    assert code == 1 and "Cannot reach Qdrant at http://127.0.0.1:1" in err
