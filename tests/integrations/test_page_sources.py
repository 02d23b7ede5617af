"""One copy of each page source in both page retrievers (issue 15, rows 2, 7 and 15).

A source is identified by its path (or a caller's key): re-adding an edited PDF
replaces its pages and drops pages it lost; unchanged sources are not encoded again;
deleting pages or sources deletes their image files; both adapters share one index.
Page hits carry text (the PDF text layer, else a placeholder naming source and page),
so text chains and text-only query engines never get an empty context.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("langchain_core")
pytest.importorskip("llama_index.core")
pypdfium2 = pytest.importorskip("pypdfium2")

from langchain_core.runnables import RunnableLambda  # noqa: E402
from llama_index.core.query_engine import RetrieverQueryEngine  # noqa: E402
from PIL import Image  # noqa: E402

from sauerkraut_rag import MultiVectorEncoder, load_encoder  # noqa: E402
from sauerkraut_rag.integrations._page_store import page_id  # noqa: E402
from sauerkraut_rag.integrations.langchain import VisualPageRetriever  # noqa: E402
from sauerkraut_rag.integrations.llamaindex import SauerkrautPageRetriever  # noqa: E402
from sauerkraut_rag.retrievers.listing import iter_documents  # noqa: E402
from tests.factories.collfm2 import build_tiny_collfm2  # noqa: E402
from tests.integrations.llamaindex.test_query_engine import RecordingLLM  # noqa: E402
from tests.pdf_factory import make_pdf  # noqa: E402

DPI = 36
TEXTS = ["Umsatz 2023", "Bilanz", "Ausblick", "Anhang", "Glossar"]


@pytest.fixture(scope="module")
def encoder(tmp_path_factory: pytest.TempPathFactory) -> MultiVectorEncoder:
    return load_encoder(build_tiny_collfm2(tmp_path_factory.mktemp("pages-lfm2") / "ck"))


def langchain(encoder: MultiVectorEncoder, folder: Path) -> Any:
    return VisualPageRetriever(encoder, folder, k=10)


def llamaindex(encoder: MultiVectorEncoder, folder: Path) -> Any:
    return SauerkrautPageRetriever(encoder, folder, similarity_top_k=10)


ADAPTERS = [langchain, llamaindex]


@pytest.fixture(params=ADAPTERS, ids=["langchain", "llamaindex"])
def make(request: pytest.FixtureRequest) -> Callable[..., Any]:
    return request.param


@pytest.fixture
def report(tmp_path: Path) -> Path:
    (tmp_path / "docs").mkdir()
    return make_pdf(tmp_path / "docs" / "report.pdf", 5, texts=TEXTS)


def stored(retriever: Any) -> dict[str, dict[str, Any]]:
    index = retriever.index
    return {doc.id: doc.metadata for doc in iter_documents(index)}


def images(folder: Path) -> list[str]:
    return sorted(p.name for p in (folder / "pages").iterdir())


def drop_page(path: Path, page: int) -> None:
    """Delete one page of a PDF in place (as a user would with a PDF tool)."""
    pdf = pypdfium2.PdfDocument(str(path))
    pdf.del_page(page - 1)
    out = path.with_suffix(".tmp")
    pdf.save(str(out))
    pdf.close()
    out.replace(path)


def test_edited_pdf_replaces_its_pages(
    make: Callable[..., Any], encoder: MultiVectorEncoder, report: Path, tmp_path: Path
) -> None:
    with make(encoder, tmp_path / "idx") as retriever:
        first = retriever.add_sources(report, dpi=DPI)
        key = str(report.resolve())
        assert first == [page_id(key, n) for n in range(1, 6)]
        drop_page(report, 2)  # "Bilanz" goes; pages 3-5 move up
        again = retriever.add_sources(report, dpi=DPI)
        docs = stored(retriever)
    assert again == [page_id(key, n) for n in range(1, 5)]
    assert sorted(docs) == sorted(again)  # 4 pages, not 5 + 4
    assert [docs[i]["source_sha256"] for i in again] == [docs[again[0]]["source_sha256"]] * 4
    assert images(tmp_path / "idx") == sorted(f"{i}.png" for i in again)


def test_unchanged_source_is_not_encoded_again(
    make: Callable[..., Any],
    encoder: MultiVectorEncoder,
    report: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with make(encoder, tmp_path / "idx") as retriever:
        first = retriever.add_sources(report.parent, dpi=DPI)  # a folder of sources
        calls: list[int] = []
        monkeypatch.setattr(encoder, "encode_documents", lambda items, **kw: calls.append(1))
        assert retriever.add_sources(report, dpi=DPI) == first
        assert calls == []


def test_same_bytes_under_two_paths_and_as_bytes(
    make: Callable[..., Any], encoder: MultiVectorEncoder, report: Path, tmp_path: Path
) -> None:
    copy = shutil.copy(report, tmp_path / "copy.pdf")
    with make(encoder, tmp_path / "idx") as retriever:
        retriever.add_sources([report, copy], dpi=DPI)
        assert len(stored(retriever)) == 10  # two paths: two sources (documented)
        data = report.read_bytes()
        once = retriever.add_sources(data, dpi=DPI)
        twice = retriever.add_sources(data, dpi=DPI)
        assert once == twice and len(stored(retriever)) == 15  # bytes: keyed by content
        keyed = retriever.add_sources(data, dpi=DPI, source_key="uploads/42")
        assert keyed == [page_id("uploads/42", n) for n in range(1, 6)]


def test_deleting_pages_and_sources_deletes_images(
    make: Callable[..., Any], encoder: MultiVectorEncoder, report: Path, tmp_path: Path
) -> None:
    other = make_pdf(tmp_path / "docs" / "memo.pdf", 2, texts=["Memo", "Notiz"])
    with make(encoder, tmp_path / "idx") as retriever:
        ids = retriever.add_sources([report, other], dpi=DPI)
        assert retriever.delete_pages(ids[:1]) == 1
        assert f"{ids[0]}.png" not in images(tmp_path / "idx")
        report.unlink()  # a path that no longer exists can still be deleted
        assert retriever.delete_sources([str(report)]) == 4
        assert images(tmp_path / "idx") == sorted(f"{i}.png" for i in ids[5:])
        if isinstance(retriever, SauerkrautPageRetriever):
            assert retriever.delete_ref_doc(str(other.resolve())) == 2
        else:
            assert retriever.delete_sources(other) == 2
        assert stored(retriever) == {} and images(tmp_path / "idx") == []


def test_both_adapters_share_one_index(
    encoder: MultiVectorEncoder, report: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with langchain(encoder, tmp_path / "idx") as lc:
        ids = lc.add_sources(report, dpi=DPI)
    calls: list[int] = []
    monkeypatch.setattr(encoder, "encode_documents", lambda items, **kw: calls.append(1))
    with llamaindex(encoder, tmp_path / "idx") as li:
        assert li.add_sources(report, dpi=DPI) == ids and calls == []
        nodes = li.retrieve("Umsatz")
    assert {n.node.ref_doc_id for n in nodes} == {str(report.resolve())}


@pytest.fixture
def scan(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "scan.png"
    Image.new("RGB", (120, 160), (200, 30, 30)).save(path)
    yield path


def test_pages_in_a_langchain_text_chain_carry_text(
    encoder: MultiVectorEncoder, report: Path, scan: Path, tmp_path: Path
) -> None:
    with langchain(encoder, tmp_path / "idx") as pages:
        pages.add_sources([report, scan], dpi=DPI)
        chain = pages | RunnableLambda(lambda docs: "\n\n".join(d.page_content for d in docs))
        context = chain.invoke("Umsatz")
    for n, text in enumerate(TEXTS, 1):
        assert f"Page {n}\n{text}" in context  # the PDF's text layer
    assert "[Page 1 of scan.png: an image without a text layer." in context  # a scan


def test_text_only_query_engine_gets_page_text(
    encoder: MultiVectorEncoder, report: Path, scan: Path, tmp_path: Path
) -> None:
    with llamaindex(encoder, tmp_path / "idx") as pages:
        pages.add_sources([report, scan], dpi=DPI)
        llm = RecordingLLM()
        RetrieverQueryEngine.from_args(pages, llm=llm).query("Umsatz")  # no multimodal=True
    sent = llm.text()
    assert all(text in sent for text in TEXTS)
    assert "Page 1 of scan.png" in sent
