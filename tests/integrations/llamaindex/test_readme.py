"""The README's LlamaIndex examples run as written (hub ids swapped for tiny local checkpoints)."""

from __future__ import annotations

import ast
import asyncio
import inspect
import re
from pathlib import Path
from typing import Any

import pytest
from llama_index.core import Settings
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.llms import MockLLM
from llama_index.core.schema import ImageNode, NodeWithScore, TextNode
from PIL import Image

from sauerkraut_rag import MultiVectorEncoder
from tests.pdf_factory import make_pdf

README = Path(__file__).resolve().parents[3] / "README.md"
TEXT_MODEL = "VAGOsolutions/SauerkrautLM-Multi-ColBERT-15m"
PAGE_MODEL = "VAGOsolutions/SauerkrautLM-ColLFM2-450M-v0.1"


def llamaindex_blocks() -> list[str]:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## LlamaIndex\n") : text.index("## Benchmarks\n")]
    return re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)


def _run(code: str, namespace: dict[str, Any]) -> None:
    compiled = compile(code, "README.md", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    result = eval(compiled, namespace)  # noqa: S307 - the README's own examples
    if inspect.iscoroutine(result):
        asyncio.run(result)


def test_readme_llamaindex_examples_run(
    text_encoder: MultiVectorEncoder,
    page_encoder: MultiVectorEncoder,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    blocks = llamaindex_blocks()
    assert len(blocks) >= 5
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(Settings, "_embed_model", MockEmbedding(embed_dim=8))
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "zugspitze.txt").write_text("Die Zugspitze ist 2962 m hoch.")
    (tmp_path / "docs" / "berlin.txt").write_text("Berlin ist die Hauptstadt.")
    make_pdf(tmp_path / "report.pdf", 3)
    (tmp_path / "scans").mkdir()
    Image.new("RGB", (120, 160), (200, 30, 30)).save(tmp_path / "scans" / "scan.png")
    Image.new("RGB", (120, 160), (30, 200, 30)).save(tmp_path / "page.png")
    namespace: dict[str, Any] = {
        "llm": MockLLM(),
        "vision_llm": MockLLM(is_chat_model=True),
        "candidates": [
            NodeWithScore(node=TextNode(text=text), score=0.0)
            for text in ("Die Zugspitze ist 2962 m hoch.", "Berlin ist die Hauptstadt.")
        ],
        "text_nodes": [TextNode(text="Die Zugspitze ist 2962 m hoch.")],
    }
    for block in blocks:
        code = block.replace(TEXT_MODEL, text_encoder.name).replace(PAGE_MODEL, page_encoder.name)
        _run(code, namespace)
    namespace["one_file"].close()
    namespace["pages"].close()
    assert [n.node.metadata["file_name"] for n in namespace["nodes"]] == ["zugspitze.txt"]
    node = namespace["node"]
    assert isinstance(node, ImageNode) and Path(node.image_path).is_file()
    assert node.metadata["page"] in (1, 2, 3)
    assert len(namespace["best"]) == 2  # top_n=3 of 2 candidates
    assert len(namespace["vector"]) == namespace["text_embed"].dimension
    assert namespace["tokens"].shape[1] == text_encoder.dim
    assert len(namespace["page_vector"]) == namespace["page_embed"].dimension
