"""The LangChain package exports its classes, and without langchain-core it names the extra."""

from __future__ import annotations

import subprocess
import sys

import sauerkraut_rag.integrations.langchain as lc

BLOCK_LANGCHAIN = """
import sys
sys.modules["langchain_core"] = None  # makes `import langchain_core` raise ImportError
try:
    import sauerkraut_rag.integrations.langchain
except ImportError as exc:
    print(type(exc).__name__, exc)
"""


def test_exports() -> None:
    assert sorted(lc.__all__) == [
        "MaxSimReranker",
        "SauerkrautEmbeddings",
        "SauerkrautVectorStore",
        "VisualPageRetriever",
    ]
    for name in lc.__all__:
        assert getattr(lc, name).__module__.startswith("sauerkraut_rag.integrations.langchain.")


def test_missing_langchain_names_the_extra() -> None:
    out = subprocess.run(
        [sys.executable, "-c", BLOCK_LANGCHAIN], capture_output=True, text=True, check=True
    )
    assert out.stdout.startswith("DependencyMissingError ")
    assert 'pip install "sauerkraut-rag[langchain]"' in out.stdout
