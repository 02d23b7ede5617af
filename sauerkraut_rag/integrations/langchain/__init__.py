"""LangChain adapters: a MaxSim vector store, a page retriever, a reranker and embeddings.
Imports the core (documents, encoders, retrievers) and integrations/_common, never the
``llamaindex`` adapters or the CLI.

Install with ``pip install "sauerkraut-rag[langchain]"``.  Scores are MaxSim divided by
the number of query tokens (the mean best-match cosine, in ``[-1, 1]``), so
``similarity_score_threshold`` and score cut-offs work across queries.
"""

from __future__ import annotations

from sauerkraut_rag.errors import DependencyMissingError

try:
    import langchain_core  # noqa: F401
except ImportError as exc:  # exercised by a subprocess test
    raise DependencyMissingError(
        "sauerkraut_rag.integrations.langchain needs langchain-core (>=1.7,<2), which could "
        f'not be imported ({exc}). Install it with: pip install "sauerkraut-rag[langchain]"'
    ) from exc

from sauerkraut_rag.integrations.langchain.embeddings import SauerkrautEmbeddings
from sauerkraut_rag.integrations.langchain.reranker import MaxSimReranker
from sauerkraut_rag.integrations.langchain.vectorstore import SauerkrautVectorStore
from sauerkraut_rag.integrations.langchain.visual_retriever import VisualPageRetriever

__all__ = [
    "MaxSimReranker",
    "SauerkrautEmbeddings",
    "SauerkrautVectorStore",
    "VisualPageRetriever",
]
