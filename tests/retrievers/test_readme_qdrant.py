"""The README's Qdrant examples run as written in local mode: hub ids become tiny local
checkpoints, a server URL becomes ``location=":memory:"`` (no server runs in tests), and
the shared pages folder a temporary one."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("qdrant_client")

from sauerkraut_rag import load_encoder
from sauerkraut_rag.retrievers.voyager.index import VoyagerIndex
from tests.factories.colbert import build_tiny_colbert
from tests.factories.collfm2 import build_tiny_collfm2

README = Path(__file__).resolve().parents[2] / "README.md"
TEXT_MODEL = "VAGOsolutions/SauerkrautLM-Multi-ColBERT-15m"
PAGE_MODEL = "VAGOsolutions/SauerkrautLM-ColLFM2-450M-v0.1"
SERVER = re.compile(
    r'url="http://localhost:6333"(,\s*api_key=os\.environ\.get\("QDRANT_API_KEY"\))?'
)


def test_readme_qdrant_examples_run_in_local_mode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Scaling out: Qdrant\n") : text.index("## LangChain\n")]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)
    assert len(blocks) == 3
    text_dir = build_tiny_colbert(tmp_path / "colbert")
    page_dir = build_tiny_collfm2(tmp_path / "collfm2")
    assert load_encoder(page_dir).dim == 128  # the README's dim=128 for the page model
    monkeypatch.chdir(tmp_path)
    VoyagerIndex.create(tmp_path / "my-index", dim=16).close()  # what the copy reads
    namespace: dict[str, Any] = {}
    for block in blocks:
        code = SERVER.sub('location=":memory:"', block)
        code = code.replace(TEXT_MODEL, str(text_dir)).replace(PAGE_MODEL, str(page_dir))
        code = code.replace("/mnt/shared/pages", str(tmp_path / "pages"))
        assert "localhost" not in code
        exec(compile(code, "README.md", "exec"), namespace)
    assert [h.id for h in namespace["hits"]] == ["kraut"]
    assert (tmp_path / "qdrant-data").is_dir()
    assert namespace["pages_index"].config.vector_dtype == "float16"
    assert namespace["report"].copied == 0
    assert len(namespace["store"].index) == 0
    namespace["pages_index"].close()
