"""The README runs top to bottom (issue 15, row 5).

Every ```python block of ``README.md`` runs in order, in one namespace, in one working
folder, exactly as written except for what cannot run here:

- hub ids become tiny local checkpoints of the same layout (``load_encoder`` takes a
  folder where it takes an id);
- LLMs become fakes: ``llm`` and ``vision_llm`` are LangChain fake chat models in the
  LangChain section and LlamaIndex ``MockLLM`` s elsewhere, and LlamaIndex's default
  embedding model (OpenAI) is ``MockEmbedding``;
- a Qdrant server URL becomes the client's in-memory mode, and the shared pages folder a
  local one.

The input files the examples name (``report.pdf``, ``scans/``, ``docs/``, ``page.png``
...) are made in the working folder first.  Any error fails the test; checks after
particular blocks make sure the examples did what the README says.  A second test checks
that the ``[langchain]`` and ``[llamaindex]`` extras install what those sections import.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import itertools
import re
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib.metadata import packages_distributions
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("langchain_core")
pytest.importorskip("llama_index.core")
pytest.importorskip("qdrant_client")

from langchain_core.language_models import GenericFakeChatModel
from llama_index.core import Settings
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.llms import MockLLM
from llama_index.core.schema import ImageNode
from PIL import Image

from tests.factories.colbert import build_tiny_colbert
from tests.factories.collfm2 import build_tiny_collfm2
from tests.pdf_factory import make_pdf

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
TEXT_MODEL = "VAGOsolutions/SauerkrautLM-Multi-ColBERT-15m"
PAGE_MODEL = "VAGOsolutions/SauerkrautLM-ColLFM2-450M-v0.1"
SERVER = re.compile(
    r'url="http://localhost:6333"(,\s*api_key=os\.environ\.get\("QDRANT_API_KEY"\))?'
)


@dataclass(frozen=True)
class Block:
    section: str  # the "## " heading above the block
    code: str
    line: int  # first line of the code in README.md


def readme_blocks() -> list[Block]:
    """Every ```python block of the README with its section, in order."""
    text = README.read_text(encoding="utf-8")
    blocks: list[Block] = []
    for match in re.finditer(r"```python\n(.*?)```", text, flags=re.DOTALL):
        before = text[: match.start()]
        headings = re.findall(r"^## (.+)$", before, flags=re.MULTILINE)
        line = before.count("\n") + 2
        blocks.append(Block(headings[-1] if headings else "", match.group(1), line))
    return blocks


def as_written(block: Block, models: dict[str, Path], root: Path) -> str:
    """The block with only the documented substitutions applied."""
    code = block.code.replace(TEXT_MODEL, str(models["text"]))
    code = code.replace(PAGE_MODEL, str(models["page"]))
    code = SERVER.sub('location=":memory:"', code)
    code = code.replace("/mnt/shared/pages", str(root / "shared-pages"))
    assert "VAGOsolutions/" not in code and "localhost" not in code, block.line
    return "\n" * (block.line - 1) + code  # tracebacks point at README lines


def run(code: str, namespace: dict[str, Any]) -> None:
    """Execute like a notebook cell: top-level ``await`` allowed."""
    compiled = compile(code, str(README), "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    result = eval(compiled, namespace)  # noqa: S307 - the README's own examples
    if inspect.iscoroutine(result):
        asyncio.run(result)


def fakes_for(section: str) -> dict[str, Any]:
    """The LLMs a section's examples use, as fakes of that framework."""
    if section == "LangChain":
        return {
            "llm": GenericFakeChatModel(messages=itertools.cycle(["2962 m"])),
            "vision_llm": GenericFakeChatModel(messages=itertools.cycle(["Umsatz: 1 Mio."])),
        }
    return {"llm": MockLLM(), "vision_llm": MockLLM(is_chat_model=True)}


def make_inputs(root: Path) -> None:
    """The files the examples read."""
    make_pdf(root / "report.pdf", 3, texts=["Umsatz 2023: 1 Mio.", "Bilanz", "Ausblick"])
    (root / "scans").mkdir()
    Image.new("RGB", (120, 160), (200, 30, 30)).save(root / "scans" / "scan.png")
    Image.new("RGB", (120, 160), (200, 30, 30)).save(root / "scan.png")
    Image.new("RGB", (120, 160), (30, 200, 30)).save(root / "page.png")
    Image.new("RGB", (160, 120), (30, 30, 200)).save(root / "page2.jpg")
    (root / "docs").mkdir()
    (root / "docs" / "zugspitze.txt").write_text("Die Zugspitze ist 2962 m hoch.", "utf-8")
    (root / "docs" / "berlin.txt").write_text("Berlin ist die Hauptstadt.", "utf-8")


# ---------------------------------------------------------------------- checks per block

Check = Callable[[dict[str, Any], Path], None]
CHECKS: list[tuple[str, str, Check]] = []
"""``(section, marker, check)``: after a block of that section containing the marker."""


def after(section: str, marker: str) -> Callable[[Check], Check]:
    def register(check: Check) -> Check:
        CHECKS.append((section, marker, check))
        return check

    return register


@after("30-second tour", "store.as_retriever")
def _tour_store(ns: dict[str, Any], root: Path) -> None:
    assert len(ns["retriever"].invoke("Wie hoch ist die Zugspitze?")) == 1


@after("30-second tour", "RetrieverQueryEngine")
def _tour_pages(ns: dict[str, Any], root: Path) -> None:
    assert ns["engine"].query("Umsatz").response is not None


@after("30-second tour", "MaxSimReranker")
def _tour_rerank(ns: dict[str, Any], root: Path) -> None:
    assert len(ns["best"]) == 1 and "relevance_score" in ns["best"][0].metadata


@after("Command line", "explain_page_figure")
def _explain(ns: dict[str, Any], root: Path) -> None:
    assert ns["heat"].shape == (160, 120)
    with Image.open(root / "map.png") as image:
        assert image.text["Title"].startswith('"Umsatz 2023" · report.pdf, page 4 · score ')


@after("Index and retriever", "VoyagerIndex(")
def _index(ns: dict[str, Any], root: Path) -> None:
    assert [h.id for h in ns["hits"]] == ["kraut"]  # the filter leaves one document
    assert ns["hits"][0].metadata == {"lang": "de", "topic": "food"}
    assert ns["scores"].shape == (1, 2) and np.isfinite(ns["scores"]).all()


@after("Metadata filters", "similarity_search(q")
def _filters(ns: dict[str, Any], root: Path) -> None:
    store, q = ns["store"], ns["q"]
    first = store.similarity_search(q, k=3, filter={"source": {"$in": ["a.txt", "b.txt"]}})
    assert sorted(d.metadata["source"] for d in first) == ["a.txt", "b.txt"]
    third = store.similarity_search(q, k=3, filter={"start_index": {"$gt": 1000}, "lang": "de"})
    assert [d.metadata["source"] for d in third] == ["a.txt"]


@after("Scaling out: Qdrant", "retriever.add_documents")
def _qdrant_local(ns: dict[str, Any], root: Path) -> None:
    assert [h.id for h in ns["hits"]] == ["kraut"] and (root / "qdrant-data").is_dir()


@after("Scaling out: Qdrant", "pool_factor=2")
def _qdrant_server(ns: dict[str, Any], root: Path) -> None:
    assert ns["pages_index"].config.vector_dtype == "float16"
    assert len(ns["store"].index) == 0


@after("Scaling out: Qdrant", "copy_index(")
def _qdrant_copy(ns: dict[str, Any], root: Path) -> None:
    assert ns["report"].copied == 2  # the two documents of ./my-index


@after("LangChain", "StrOutputParser")
def _chain(ns: dict[str, Any], root: Path) -> None:
    assert ns["chain"].invoke("Wie hoch ist die Zugspitze?") == "2962 m"


@after("LangChain", "VisualPageRetriever.from_sources")
def _lc_pages(ns: dict[str, Any], root: Path) -> None:
    docs = ns["docs"]
    assert {d.metadata["source"] for d in docs} <= {"report.pdf", str(Path("scans") / "scan.png")}
    assert all(d.page_content for d in docs)  # text layer or placeholder, never empty


@after("LangChain", "include_image_base64=True")
def _lc_vision(ns: dict[str, Any], root: Path) -> None:
    assert ns["answer"].content == "Umsatz: 1 Mio."


@after("LangChain", "ContextualCompressionRetriever")
def _lc_rerank(ns: dict[str, Any], root: Path) -> None:
    assert ns["docs"] and "relevance_score" in ns["docs"][0].metadata


@after("LangChain", "SauerkrautEmbeddings(")
def _lc_embeddings(ns: dict[str, Any], root: Path) -> None:
    assert len(ns["vector"]) == ns["embeddings"].dimension


@after("LlamaIndex", "SauerkrautRetriever.from_documents")
def _li_text(ns: dict[str, Any], root: Path) -> None:
    from sauerkraut_rag.integrations.llamaindex import SauerkrautRetriever

    with SauerkrautRetriever(ns["retriever"].encoder, root / "li_index") as reopened:
        assert len(reopened) == 2  # one node per file


@after("LlamaIndex", "aretrieve")
def _li_filters(ns: dict[str, Any], root: Path) -> None:
    assert [n.node.metadata["file_name"] for n in ns["nodes"]] == ["zugspitze.txt"]


@after("LlamaIndex", "SauerkrautPageRetriever.from_sources")
def _li_pages(ns: dict[str, Any], root: Path) -> None:
    node = ns["node"]
    assert isinstance(node, ImageNode) and Path(node.image_path).is_file()
    assert node.metadata["page"] in (1, 2, 3) and node.text


@after("LlamaIndex", "MaxSimRerank(")
def _li_rerank(ns: dict[str, Any], root: Path) -> None:
    assert len(ns["best"]) == 2  # top_n=3 of the 2 documents


@after("LlamaIndex", "MultiModalVectorStoreIndex(")
def _li_embedding(ns: dict[str, Any], root: Path) -> None:
    assert len(ns["vector"]) == ns["text_embed"].dimension
    assert len(ns["page_vector"]) == ns["page_embed"].dimension
    images = ns["both"].storage_context.vector_stores["image"]
    assert len(images.data.embedding_dict) == 1  # the image was indexed, not skipped


# ---------------------------------------------------------------------- the tests


@pytest.fixture
def models(tmp_path: Path) -> dict[str, Path]:
    return {
        "text": build_tiny_colbert(tmp_path / "models" / "colbert"),
        "page": build_tiny_collfm2(tmp_path / "models" / "collfm2"),
    }


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    work = tmp_path / "work"
    work.mkdir()
    make_inputs(work)
    monkeypatch.chdir(work)
    monkeypatch.setattr(Settings, "_embed_model", MockEmbedding(embed_dim=8))
    yield work


def test_the_readme_runs_top_to_bottom(models: dict[str, Path], root: Path) -> None:
    blocks = readme_blocks()
    sections = {block.section for block in blocks}
    assert {"30-second tour", "Index and retriever", "LangChain", "LlamaIndex"} <= sections
    namespace: dict[str, Any] = {}
    ran: list[tuple[str, str]] = []
    for block in blocks:
        namespace.update(fakes_for(block.section))
        try:
            run(as_written(block, models, root), namespace)
        except Exception as exc:
            raise AssertionError(f"README.md block at line {block.line} failed: {exc!r}") from exc
        for section, marker, check in CHECKS:
            if section == block.section and marker in block.code:
                check(namespace, root)
                ran.append((section, marker))
    assert sorted(ran) == sorted((s, m) for s, m, _ in CHECKS)  # every check found its block


def test_running_the_llamaindex_example_twice_keeps_one_copy(
    models: dict[str, Path], root: Path
) -> None:
    [block] = [b for b in readme_blocks() if "SauerkrautRetriever.from_documents" in b.code]
    namespace: dict[str, Any] = {}
    for _ in range(2):
        run(as_written(block, models, root), namespace)
    from sauerkraut_rag.integrations.llamaindex import SauerkrautRetriever

    with SauerkrautRetriever(models["text"], root / "li_index") as reopened:
        assert len(reopened) == 2


@pytest.mark.parametrize("extra", ["langchain", "llamaindex"])
def test_each_extra_installs_what_its_section_imports(extra: str) -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    allowed = {_name(req) for req in project["dependencies"]}
    allowed |= {_name(req) for req in project["optional-dependencies"][extra]}
    allowed |= {"sauerkraut-rag"}
    section = {"langchain": "LangChain", "llamaindex": "LlamaIndex"}[extra]
    modules = set()
    for block in readme_blocks():
        if block.section == section:
            for node in ast.walk(ast.parse(block.code)):
                if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    modules.add(node.module.split(".")[0])
                elif isinstance(node, ast.Import):
                    modules.update(alias.name.split(".")[0] for alias in node.names)
    owners = packages_distributions()
    needed = {
        _name(dist) for module in modules if module != "sauerkraut_rag" for dist in owners[module]
    }
    missing = needed - allowed
    assert not missing, f"[{extra}] does not install {sorted(missing)}, imported by its README"


def _name(requirement: str) -> str:
    """The normalised distribution name of a requirement string."""
    name = re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", name).lower()
