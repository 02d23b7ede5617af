"""The README's index-and-retriever example runs as written (hub id -> tiny checkpoint)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.factories.colbert import build_tiny_colbert

README = Path(__file__).resolve().parents[2] / "README.md"
TEXT_MODEL = "VAGOsolutions/SauerkrautLM-Multi-ColBERT-15m"


def test_readme_index_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Index and retriever\n") : text.index("## Metadata filters\n")]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)
    assert len(blocks) == 1
    folder = build_tiny_colbert(tmp_path / "tiny")
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {}
    exec(compile(blocks[0].replace(TEXT_MODEL, str(folder)), "README.md", "exec"), namespace)
    hits = namespace["hits"]
    assert [h.id for h in hits] == ["kraut"]  # the filter leaves one matching document
    assert hits[0].metadata == {"lang": "de", "topic": "food"}
    assert namespace["scores"].shape == (1, 2)
    assert np.isfinite(namespace["scores"]).all()
    assert (tmp_path / "my-index").is_dir()
