"""End to end: our classes inside LCEL RAG chains with a fake chat model (no network)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from langchain_classic.retrievers import ContextualCompressionRetriever
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.documents import Document
from langchain_core.language_models import GenericFakeChatModel
from langchain_core.messages import BaseMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import Runnable, RunnablePassthrough
from langchain_core.vectorstores import InMemoryVectorStore

from sauerkraut_rag import MultiVectorEncoder
from sauerkraut_rag.integrations.langchain import (
    MaxSimReranker,
    SauerkrautEmbeddings,
    SauerkrautVectorStore,
    VisualPageRetriever,
)

TEXTS = [
    "Die Zugspitze ist 2962 Meter hoch.",
    "Berlin ist die Hauptstadt von Deutschland.",
    "Paris is the capital of France.",
    "Das Wetter heute ist schön.",
    "The green house on the street.",
]
QUESTION = "Was ist die Hauptstadt von Deutschland?"
PROMPT = ChatPromptTemplate.from_template(
    "Answer from the context only.\n\nContext:\n{context}\n\nQuestion: {question}"
)


class PromptCapture(BaseCallbackHandler):
    """Records the messages every chat model call receives."""

    def __init__(self) -> None:
        self.prompts: list[str] = []

    def on_chat_model_start(
        self, serialized: dict[str, Any], messages: list[list[BaseMessage]], **kwargs: Any
    ) -> None:
        self.prompts.extend(str(m.content) for batch in messages for m in batch)


def format_docs(docs: list[Document]) -> str:
    return "\n\n".join(
        doc.page_content or f"[page {doc.metadata['page']} of {doc.metadata['source']}]"
        for doc in docs
    )


def rag_chain(retriever: BaseRetriever, answer: str) -> Runnable[str, str]:
    llm = GenericFakeChatModel(messages=iter([answer]))
    return (
        {"context": retriever | format_docs, "question": RunnablePassthrough()}
        | PROMPT
        | llm
        | StrOutputParser()
    )


def _expected_prompt(docs: list[Document]) -> str:
    return PROMPT.format_messages(context=format_docs(docs), question=QUESTION)[0].content


@pytest.fixture
def store(text_encoder: MultiVectorEncoder) -> SauerkrautVectorStore:
    return SauerkrautVectorStore.from_texts(TEXTS, text_encoder, ids=[str(i) for i in range(5)])


def test_in_memory_chain_runs_with_our_embeddings(text_encoder: MultiVectorEncoder) -> None:
    """The stock chain, as written for InMemoryVectorStore, with our flat embeddings."""
    memory = InMemoryVectorStore.from_texts(TEXTS, SauerkrautEmbeddings(text_encoder))
    retriever = memory.as_retriever(search_kwargs={"k": 2})
    capture = PromptCapture()
    out = rag_chain(retriever, "Berlin.").invoke(QUESTION, config={"callbacks": [capture]})
    assert out == "Berlin."
    assert capture.prompts == [_expected_prompt(retriever.invoke(QUESTION))]


def test_our_retriever_replaces_the_in_memory_one(store: SauerkrautVectorStore) -> None:
    retriever = store.as_retriever(search_kwargs={"k": 2})
    capture = PromptCapture()
    out = rag_chain(retriever, "Berlin.").invoke(QUESTION, config={"callbacks": [capture]})
    assert out == "Berlin."
    top2 = store.similarity_search(QUESTION, k=2)
    assert len(top2) == 2
    assert capture.prompts == [_expected_prompt(top2)]


async def test_async_chain(store: SauerkrautVectorStore) -> None:
    retriever = store.as_retriever(search_kwargs={"k": 3})
    capture = PromptCapture()
    out = await rag_chain(retriever, "Berlin.").ainvoke(QUESTION, config={"callbacks": [capture]})
    assert out == "Berlin."
    assert capture.prompts == [_expected_prompt(store.similarity_search(QUESTION, k=3))]


def test_reranking_before_the_llm(text_encoder: MultiVectorEncoder) -> None:
    memory = InMemoryVectorStore.from_texts(TEXTS, SauerkrautEmbeddings(text_encoder))
    reranker = MaxSimReranker(text_encoder, top_n=2)
    retriever = ContextualCompressionRetriever(
        base_compressor=reranker,
        base_retriever=memory.as_retriever(search_kwargs={"k": 5}),
    )
    capture = PromptCapture()
    out = rag_chain(retriever, "Berlin.").invoke(QUESTION, config={"callbacks": [capture]})
    assert out == "Berlin."
    expected = reranker.compress_documents([Document(page_content=t) for t in TEXTS], QUESTION)
    assert capture.prompts == [_expected_prompt(list(expected))]
    assert [d.page_content for d in retriever.invoke(QUESTION)] == [
        d.page_content for d in expected
    ]


def test_page_retriever_in_a_chain(
    page_encoder: MultiVectorEncoder, sample_pdf: Path, tmp_path: Path
) -> None:
    pages = VisualPageRetriever.from_sources(
        sample_pdf, page_encoder, index_path=tmp_path / "pages", k=2, dpi=36
    )
    capture = PromptCapture()
    out = rag_chain(pages, "Page 1.").invoke(QUESTION, config={"callbacks": [capture]})
    assert out == "Page 1."
    assert capture.prompts == [_expected_prompt(pages.invoke(QUESTION))]
    # the pages' text layer reaches the prompt (issue 15: page_content is never empty)
    docs = pages.invoke(QUESTION)
    assert all(d.page_content and d.page_content in capture.prompts[0] for d in docs)
