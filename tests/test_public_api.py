"""The public core API is pinned, and the core never imports the frameworks."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import sauerkraut_rag

ROOT = Path(__file__).resolve().parents[1]


def test_public_api_is_pinned() -> None:
    assert sorted(sauerkraut_rag.__all__) == [
        "Hit",
        "ModelInfo",
        "MultiVector",
        "MultiVectorEncoder",
        "Page",
        "__version__",
        "list_models",
        "load_encoder",
    ]
    for name in sauerkraut_rag.__all__:
        assert hasattr(sauerkraut_rag, name), name


def test_list_models_reports_the_three_models() -> None:
    models = {m.id: m for m in sauerkraut_rag.list_models()}
    assert set(models) == {
        "VAGOsolutions/SauerkrautLM-Multi-ColBERT-15m",
        "VAGOsolutions/SauerkrautLM-ColLFM2-450M-v0.1",
        "VAGOsolutions/SauerkrautLM-ColQwen3-1.7b-Turbo-v0.1",
    }
    assert {m.modality for m in models.values()} == {"text", "image"}
    for info in models.values():
        data = info.to_dict()
        assert data["dim"] == 128
        assert data["languages"] and data["license"] and data["size"]


def test_core_import_does_not_pull_frameworks() -> None:
    code = (
        "import sys, sauerkraut_rag, sauerkraut_rag.retrievers;"
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "('langchain_core', 'llama_index', 'langchain')];"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_every_extra_named_in_messages_exists() -> None:
    extras = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    )
    named: set[str] = set()
    for path in (ROOT / "sauerkraut_rag").rglob("*.py"):
        named.update(re.findall(r"sauerkraut-rag\[([a-z,]+)\]", path.read_text()))
    flat = {part for group in named for part in group.split(",")}
    assert flat, "no install hints found"
    assert flat <= extras, f"messages name unknown extras: {flat - extras}"


def test_pages_and_index_do_not_import_torch() -> None:
    code = (
        "import sys, sauerkraut_rag, sauerkraut_rag.documents.pages,"
        " sauerkraut_rag.retrievers.voyager.index;"
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
