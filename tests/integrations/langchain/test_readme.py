"""The README's LangChain examples run as written (hub ids swapped for tiny local checkpoints)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from langchain_core.language_models import GenericFakeChatModel
from langchain_core.vectorstores import InMemoryVectorStore

from sauerkraut_rag import MultiVectorEncoder
from sauerkraut_rag.integrations.langchain import SauerkrautEmbeddings
from tests.pdf_factory import make_pdf

README = Path(__file__).resolve().parents[3] / "README.md"
TEXT_MODEL = "VAGOsolutions/SauerkrautLM-Multi-ColBERT-15m"
PAGE_MODEL = "VAGOsolutions/SauerkrautLM-ColLFM2-450M-v0.1"


def langchain_blocks() -> list[str]:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## LangChain\n") : text.index("## LlamaIndex\n")]
    return re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)


def test_readme_langchain_examples_run(
    tiny_colbert_dir: Path,
    page_encoder: MultiVectorEncoder,
    text_encoder: MultiVectorEncoder,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    blocks = langchain_blocks()
    assert len(blocks) >= 5
    monkeypatch.chdir(tmp_path)
    make_pdf(tmp_path / "report.pdf", 3)
    (tmp_path / "scans").mkdir()
    make_pdf(tmp_path / "scans" / "scan.pdf", 1)
    page_dir = page_encoder.name  # the folder the session fixture built and loaded
    namespace: dict[str, Any] = {
        "llm": GenericFakeChatModel(messages=iter(["2962 m"])),
        "vision_llm": GenericFakeChatModel(messages=iter(["Umsatz: 1 Mio."])),
        "any_vector_store": InMemoryVectorStore.from_texts(
            ["Die Zugspitze ist 2962 m hoch.", "Berlin ist die Hauptstadt."],
            SauerkrautEmbeddings(text_encoder),
        ),
    }
    for block in blocks:
        code = block.replace(TEXT_MODEL, str(tiny_colbert_dir)).replace(PAGE_MODEL, str(page_dir))
        if "VisualPageRetriever(model=" in code:
            namespace["pages"].close()  # the example reopens the folder built just before
        exec(compile(code, "README.md", "exec"), namespace)
    namespace["store"].close()
    namespace["pages"].close()
    assert next(namespace["llm"].messages, None) is None  # the chain called the chat model
    assert namespace["answer"].content == "Umsatz: 1 Mio."
    assert len(namespace["docs"]) >= 1 and "relevance_score" in namespace["docs"][0].metadata
    assert len(namespace["vector"]) == namespace["embeddings"].dimension
