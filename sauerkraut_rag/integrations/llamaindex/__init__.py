"""LlamaIndex adapters: embeddings, text and page retrievers, and a MaxSim reranker.
Imports the core (documents, encoders, retrievers) and integrations/_common, never the
``langchain`` adapters or the CLI.

Install with ``pip install "sauerkraut-rag[llamaindex]"``.  Every score these classes
report is MaxSim divided by the number of query tokens (the mean best-match cosine,
in ``[-1, 1]``), so LlamaIndex's ``SimilarityPostprocessor(similarity_cutoff=...)`` works.
"""

from __future__ import annotations

from sauerkraut_rag.errors import DependencyMissingError

try:
    import llama_index.core  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised by a subprocess test
    raise DependencyMissingError(
        "sauerkraut_rag.integrations.llamaindex needs llama-index-core (>=0.14.23,<0.15), "
        f"which could not be imported ({exc}). Install it with: "
        'pip install "sauerkraut-rag[llamaindex]"'
    ) from exc

from sauerkraut_rag.integrations.llamaindex.embedding import SauerkrautEmbedding
from sauerkraut_rag.integrations.llamaindex.postprocessor import MaxSimRerank
from sauerkraut_rag.integrations.llamaindex.retriever import SauerkrautRetriever
from sauerkraut_rag.integrations.llamaindex.visual_retriever import SauerkrautPageRetriever

__all__ = [
    "MaxSimRerank",
    "SauerkrautEmbedding",
    "SauerkrautPageRetriever",
    "SauerkrautRetriever",
]
