"""The README's 30-second tour runs as written (hub ids swapped for tiny local checkpoints)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from llama_index.core.llms import MockLLM

from tests.factories.colbert import build_tiny_colbert
from tests.factories.collfm2 import build_tiny_collfm2
from tests.pdf_factory import make_pdf

README = Path(__file__).resolve().parents[1] / "README.md"
TEXT_MODEL = "VAGOsolutions/SauerkrautLM-Multi-ColBERT-15m"
PAGE_MODEL = "VAGOsolutions/SauerkrautLM-ColLFM2-450M-v0.1"


def test_readme_tour_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## 30-second tour\n") : text.index("## Command line\n")]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)
    assert len(blocks) == 3
    text_dir = build_tiny_colbert(tmp_path / "colbert")
    page_dir = build_tiny_collfm2(tmp_path / "collfm2")
    monkeypatch.chdir(tmp_path)
    make_pdf(tmp_path / "report.pdf", 2)
    namespace: dict[str, Any] = {"vision_llm": MockLLM(is_chat_model=True)}
    for block in blocks:
        code = block.replace(TEXT_MODEL, str(text_dir)).replace(PAGE_MODEL, str(page_dir))
        exec(compile(code, "README.md", "exec"), namespace)
    assert len(namespace["retriever"].invoke("Wie hoch ist die Zugspitze?")) == 1
    assert namespace["engine"].query("Umsatz").response is not None
    assert len(namespace["best"]) == 1
    assert "relevance_score" in namespace["best"][0].metadata
    namespace["store"].close()
    namespace["pages"].close()
