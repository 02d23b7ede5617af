"""``sauerkraut-rag search``: queries from stdin with one model load; no-model checks are
fast (before torch is imported); a filter key that no document has is named (issue 15,
rows 9 and 11)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.support import assert_fail_without_torch, run_cli
from tests.factories.colbert import build_tiny_colbert
from tests.test_cli import assert_one_line_error

QUERIES = ["Wie hoch ist die Zugspitze?", "Hauptstadt", "Rhein Köln"]


@pytest.fixture(scope="module")
def text_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli-stdin")
    model = build_tiny_colbert(root / "colbert")
    docs = root / "docs"
    docs.mkdir()
    (docs / "berg.txt").write_text("Die Zugspitze ist 2962 m hoch.", "utf-8")
    (docs / "stadt.txt").write_text("Berlin ist die Hauptstadt.", "utf-8")
    (docs / "fluss.md").write_text("# Rhein\n\nDer Rhein fließt durch Köln.", "utf-8")
    run = run_cli("index", docs, "--index", root / "idx", "--model", model)
    assert run.returncode == 0, run.stderr
    return root / "idx"


def test_queries_from_stdin_load_the_model_once(text_index: Path) -> None:
    stdin = "\n".join([QUERIES[0], "", QUERIES[1], "   ", QUERIES[2]]) + "\n"
    run = run_cli("search", text_index, "--json", "-k", "2", "--verbose", stdin=stdin)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.strip().splitlines()
    assert len(lines) == 3  # JSON Lines: one object per query, blank lines skipped
    documents = [json.loads(line) for line in lines]
    assert [d["query"] for d in documents] == QUERIES
    assert run.stderr.count("Loading ") == 1  # one model load for all queries
    single = run_cli("search", text_index, QUERIES[2], "--json", "-k", "2")
    assert json.loads(single.stdout)["results"] == documents[2]["results"]  # as one by one


def test_stdin_table_has_one_block_per_query(text_index: Path) -> None:
    run = run_cli("search", text_index, stdin="\n".join(QUERIES))
    assert run.returncode == 0, run.stderr
    blocks = run.stdout.strip().split("\n\n")
    assert [b.splitlines()[0] for b in blocks] == [f"Query: {q}" for q in QUERIES]
    assert all(b.splitlines()[1].split()[:3] == ["#", "score", "source"] for b in blocks)


def test_unknown_filter_key_is_named(text_index: Path) -> None:
    run = run_cli("search", text_index, "Zugspitze", "--filter", "nosuchkey=1")
    assert_one_line_error(run, "nosuchkey", "file_name", "chunk")
    known = run_cli("search", text_index, "Zugspitze", "--filter", "file_name=nope.txt")
    assert known.returncode == 0 and known.stdout == "No results.\n"  # key exists: no error


def test_checks_that_need_no_model_run_before_torch(text_index: Path, tmp_path: Path) -> None:
    missing = str(tmp_path / "none")
    busy = tmp_path / "busy"  # a folder with other files is not an index folder
    busy.mkdir()
    (busy / "notes.txt").write_text("x", "utf-8")
    stderr = assert_fail_without_torch(
        [
            ["index", str(busy / "notes.txt"), "--index", str(busy)],
            ["remove", str(busy / "notes.txt"), "--index", missing],
            ["search", missing, "q"],
            ["search", str(text_index), "q", "-k", "0"],
            ["search", str(text_index), "q", "--filter", "novalue"],
            ["search", str(text_index), "q", "--filter", "nosuchkey=1"],
            ["search", str(text_index), " "],
            ["explain", str(text_index), "q", "--page", "x", "--out", "map.jpg"],
            ["info", missing],
            ["index", missing, "--index", str(tmp_path / "idx")],
        ]
    )
    assert stderr.count("sauerkraut-rag: error: ") == 10
    assert "holds other files, not an index" in stderr
