"""The LlamaIndex package exports its classes, and without llama-index-core it names the extra."""

from __future__ import annotations

import subprocess
import sys

import sauerkraut_rag.integrations.llamaindex as li

BLOCK_LLAMA_INDEX = """
import sys
sys.modules["llama_index"] = None  # makes `import llama_index.core` raise ImportError
sys.modules["llama_index.core"] = None
try:
    import sauerkraut_rag.integrations.llamaindex
except ImportError as exc:
    print(type(exc).__name__, exc)
import sauerkraut_rag  # the core still imports without the extra
print("core ok")
"""


def test_exports_one_class_per_module() -> None:
    assert sorted(li.__all__) == [
        "MaxSimRerank",
        "SauerkrautEmbedding",
        "SauerkrautPageRetriever",
        "SauerkrautRetriever",
    ]
    modules = {getattr(li, name).__module__ for name in li.__all__}
    assert len(modules) == len(li.__all__)
    assert all(m.startswith("sauerkraut_rag.integrations.llamaindex.") for m in modules)


def test_missing_llama_index_names_the_extra() -> None:
    out = subprocess.run(
        [sys.executable, "-c", BLOCK_LLAMA_INDEX], capture_output=True, text=True, check=True
    )
    first, second = out.stdout.splitlines()
    assert first.startswith("DependencyMissingError ")
    assert 'pip install "sauerkraut-rag[llamaindex]"' in first
    assert second == "core ok"
