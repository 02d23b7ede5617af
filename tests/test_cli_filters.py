"""``sauerkraut-rag search --where``: the filter language on the command line.

The issue's three filters that used to return nothing (``$in``, ``$or``, ``$gt``) find
the matching chunks; ``--filter key=value`` keeps working and combines with ``--where``;
bad filters end in one error line naming the problem. The index is built once by the
real ``index`` command (subprocess); searches run ``main()`` in-process.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sauerkraut_rag.cli.main import main
from sauerkraut_rag.retrievers.voyager.index import VoyagerIndex
from tests.factories.colbert import build_tiny_colbert
from tests.test_cli import cli


@pytest.fixture(scope="module")
def text_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli-where")
    model = build_tiny_colbert(root / "colbert")
    docs = root / "notes"
    docs.mkdir()
    (docs / "a.txt").write_text("Die Zugspitze ist 2962 m hoch.\n", "utf-8")
    (docs / "b.txt").write_text("Berlin ist die Hauptstadt.\n\n" + "Mehr Text. " * 60, "utf-8")
    (docs / "c.txt").write_text("Sauerkraut ist fermentierter Kohl.\n", "utf-8")
    index_dir = root / "idx"
    run = cli("index", docs, "--index", index_dir, "--model", model)
    assert run.returncode == 0, run.stderr
    return index_dir


def _chunks(index_dir: Path) -> dict[str, dict]:
    with VoyagerIndex.open(index_dir, read_only=True) as index:
        ids = []
        cursor = None
        while True:
            page = index.list_ids(100, cursor)
            ids += page.ids
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        return {d.id: d.metadata for d in index.get(ids)}


def _search(capsys: pytest.CaptureFixture[str], index_dir: Path, *extra: str) -> set[str]:
    code = main(["search", str(index_dir), "Kohl", "-k", "500", "--json", *extra])
    out = capsys.readouterr()
    assert code == 0, out.err
    return {r["id"] for r in json.loads(out.out)["results"]}


def test_where_runs_the_issue_filters(text_index: Path, capsys: pytest.CaptureFixture[str]) -> None:
    chunks = _chunks(text_index)
    assert {m["file_name"] for m in chunks.values()} == {"a.txt", "b.txt", "c.txt"}
    assert max(m["chunk"] for m in chunks.values()) > 1  # b.txt has several chunks

    def ids(test) -> set[str]:
        return {i for i, m in chunks.items() if test(m)}

    where_in = '{"file_name": {"$in": ["a.txt", "c.txt"]}}'
    assert _search(capsys, text_index, "--where", where_in) == ids(
        lambda m: m["file_name"] in ("a.txt", "c.txt")
    )
    where_or = '{"$or": [{"file_name": "a.txt"}, {"file_name": "b.txt"}]}'
    assert _search(capsys, text_index, "--where", where_or) == ids(
        lambda m: m["file_name"] in ("a.txt", "b.txt")
    )
    where_gt = '{"chunk": {"$gt": 1}}'
    found = _search(capsys, text_index, "--where", where_gt)
    assert found == ids(lambda m: m["chunk"] > 1) and found


def test_filter_and_where_combine(text_index: Path, capsys: pytest.CaptureFixture[str]) -> None:
    chunks = _chunks(text_index)
    found = _search(
        capsys, text_index, "--filter", "file_name=b.txt", "--where", '{"chunk": {"$lte": 2}}'
    )
    assert found == {i for i, m in chunks.items() if m["file_name"] == "b.txt" and m["chunk"] <= 2}
    assert _search(capsys, text_index, "--filter", "chunk=1", "--filter", "chunk=2") == set()


@pytest.mark.parametrize(
    ("where", "needles"),
    [
        ('{"chunk": {"$regex": "1"}}', ("'$regex'", "$in", "$like")),
        ("{chunk: 1}", ("JSON filter", "single quotes")),
        ('["chunk"]', ("JSON object",)),
        ('{"file_name": {"name": "a.txt"}}', ("dotted key",)),
    ],
)
def test_bad_where_is_one_error_line(
    text_index: Path, capsys: pytest.CaptureFixture[str], where: str, needles: tuple[str, ...]
) -> None:
    code = main(["search", str(text_index), "Kohl", "--where", where])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and err[0].startswith("sauerkraut-rag: error: ")
    for needle in needles:
        assert needle in err[0]
