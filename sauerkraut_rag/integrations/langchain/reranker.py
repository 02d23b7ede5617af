"""``MaxSimReranker``: a LangChain document compressor scoring by exact MaxSim."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from langchain_core.callbacks import Callbacks
from langchain_core.documents import BaseDocumentCompressor, Document
from pydantic import ConfigDict, Field

from sauerkraut_rag._checks import check_positive_int
from sauerkraut_rag.encoders.base import MultiVectorEncoder
from sauerkraut_rag.encoders.document_cache import (
    DocumentCache,
    encode_documents_cached,
    resolve_document_cache,
)
from sauerkraut_rag.errors import InvalidInputTypeError
from sauerkraut_rag.integrations._common import (
    EncoderLike,
    normalise,
    resolve_encoder,
    run_off_loop,
)
from sauerkraut_rag.retrievers.maxsim import maxsim


class MaxSimReranker(BaseDocumentCompressor):
    """Rerank documents by late-interaction MaxSim with a text model.

    Each document's ``page_content`` is encoded as a document and scored against the
    query; the ``top_n`` best are returned, best first, as copies whose
    ``metadata["relevance_score"]`` is the normalised MaxSim (MaxSim divided by the
    number of query tokens: the mean best-match cosine, in ``[-1, 1]``).  Input
    documents are not modified.  Use it in ``ContextualCompressionRetriever``
    (``langchain_classic.retrievers``) after a cheap first-stage retriever.

    Example::

        reranker = MaxSimReranker(model="VAGOsolutions/SauerkrautLM-Multi-ColBERT-15m", top_n=3)
        best = reranker.compress_documents(docs, "Wie hoch ist die Zugspitze?")
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    model: Any = Field(description="The loaded text encoder.")
    top_n: int | None = Field(default=3, description="Documents kept; None keeps all.")
    batch_size: int = Field(default=16, description="Documents encoded per forward pass.")
    score_key: str = Field(default="relevance_score", description="Metadata key of the score.")
    cache: DocumentCache | None = Field(
        default=None, exclude=True, description="Document vectors kept between calls."
    )

    def __init__(
        self,
        model: EncoderLike,
        *,
        top_n: int | None = 3,
        batch_size: int = 16,
        score_key: str = "relevance_score",
        cache: DocumentCache | bool | None = True,
        load_kwargs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """``model``: a text encoder, hub id or folder; ``load_kwargs`` go to load_encoder.

        ``cache``: ``True`` (default) keeps document vectors in the process-wide
        :class:`DocumentCache` (256 MiB, shared with ``MaxSimRerank``), so repeated
        candidates are not encoded again; a ``DocumentCache`` of your own (size, folder);
        ``False`` encodes every time.
        """
        encoder = resolve_encoder(model, modality="text", role="model", load_kwargs=load_kwargs)
        if top_n is not None:
            top_n = check_positive_int(top_n, name="top_n")
        batch_size = check_positive_int(batch_size, name="batch_size")
        super().__init__(
            model=encoder,
            top_n=top_n,
            batch_size=batch_size,
            score_key=score_key,
            cache=resolve_document_cache(cache),
            **kwargs,
        )

    @property
    def encoder(self) -> MultiVectorEncoder:
        """The text encoder used for scoring."""
        return self.model

    def rerank(self, documents: Sequence[Document], query: str) -> list[tuple[Document, float]]:
        """All ``(document, normalised MaxSim)`` pairs, best first (ties keep input order)."""
        docs = list(documents)
        for i, doc in enumerate(docs):
            if not isinstance(doc, Document):
                raise InvalidInputTypeError(
                    f"Expected documents[{i}] to be a langchain Document, got "
                    f"{type(doc).__name__}. Wrap text with Document(page_content=...)."
                )
        if not docs:
            return []
        query_tokens = self.encoder.encode_queries([query], batch_size=1, show_progress=False)
        doc_tokens = encode_documents_cached(
            self.encoder,
            [d.page_content for d in docs],
            batch_size=self.batch_size,
            cache=self.cache,
        )
        scores = normalise(maxsim(query_tokens, doc_tokens)[0], query_tokens[0].shape[0])
        order = np.argsort(-scores, kind="stable")
        return [(docs[i], float(scores[i])) for i in order]

    def compress_documents(
        self,
        documents: Sequence[Document],
        query: str,
        callbacks: Callbacks | None = None,
    ) -> Sequence[Document]:
        """The ``top_n`` documents by MaxSim, with ``metadata[score_key]`` set."""
        ranked = self.rerank(documents, query)
        if self.top_n is not None:
            ranked = ranked[: self.top_n]
        return [
            Document(
                page_content=doc.page_content,
                metadata={**doc.metadata, self.score_key: score},
                id=doc.id,
            )
            for doc, score in ranked
        ]

    async def acompress_documents(
        self,
        documents: Sequence[Document],
        query: str,
        callbacks: Callbacks | None = None,
    ) -> Sequence[Document]:
        """Async :meth:`compress_documents`; the model runs in a worker thread."""
        return await run_off_loop(self.compress_documents, documents, query, callbacks)
