"""Bad-input matrix, LangChain and LlamaIndex adapters over the shared index."""

from __future__ import annotations

import asyncio

from sauerkraut_rag.errors import DuplicateIdError, InvalidInputError, InvalidInputTypeError
from tests.reliability.matrix_case import Ctx, behaves, fails
from tests.reliability.matrix_encoders import MILLION_CHARS

A = "adapters"


def _store(ctx: Ctx) -> object:
    from sauerkraut_rag.integrations.langchain import SauerkrautVectorStore

    return SauerkrautVectorStore(ctx.get("text_encoder"), ctx.index)


def _retriever(ctx: Ctx, **kwargs: object) -> object:
    from sauerkraut_rag.integrations.llamaindex import SauerkrautRetriever

    return SauerkrautRetriever(ctx.get("text_encoder"), ctx.index, **kwargs)


@fails(A, "lc-add-bare-string", InvalidInputTypeError, "single str", "wrap it")
def _bare(ctx: Ctx) -> object:
    return _store(ctx).add_texts("one text")


@fails(A, "lc-add-none-text", InvalidInputTypeError, "texts[1]", "NoneType")
def _none_text(ctx: Ctx) -> object:
    return _store(ctx).add_texts(["fine", None])


@fails(A, "lc-add-metadata-not-json", InvalidInputTypeError, "json-serialisable", "convert")
def _bad_meta(ctx: Ctx) -> object:
    return _store(ctx).add_texts(["fine"], metadatas=[{"when": {1, 2}}])


@fails(A, "lc-add-repeated-ids", InvalidInputError, "more than once", "unique")
def _repeated(ctx: Ctx) -> object:
    return _store(ctx).add_texts(["a", "b"], ids=["same", "same"])


@fails(A, "lc-add-metadatas-length", InvalidInputError, "one metadata dict per text", "same length")
def _meta_len(ctx: Ctx) -> object:
    return _store(ctx).add_texts(["a", "b"], metadatas=[{}])


@behaves(A, "lc-add-million-char-text", adds=("big",))
def _big_text(ctx: Ctx) -> None:
    """Documented: encoding truncates to the model length; the full text is the payload."""
    store = _store(ctx)
    assert store.add_texts([MILLION_CHARS], ids=["big"]) == ["big"]
    assert store.get_by_ids(["big"])[0].page_content == MILLION_CHARS


@fails(A, "lc-search-k-zero", InvalidInputError, "k >= 1", "at least 1")
def _k_zero(ctx: Ctx) -> object:
    return _store(ctx).similarity_search("Hauptstadt", k=0)


@fails(A, "lc-search-none-query", InvalidInputTypeError, "query", "str")
def _none_query(ctx: Ctx) -> object:
    return _store(ctx).similarity_search(None)


@fails(A, "lc-search-whitespace-query", InvalidInputError, "non-empty", "question")
def _blank_query(ctx: Ctx) -> object:
    return _store(ctx).similarity_search("  \n ")


@behaves(A, "lc-search-unknown-filter-key-and-large-k")
def _filter_unknown(ctx: Ctx) -> None:
    """Documented: unknown filter keys match nothing; k above the size gives every doc."""
    store = _store(ctx)
    assert store.similarity_search("Paris", k=3, filter={"no_such_key": "x"}) == []
    assert len(store.similarity_search("Paris", k=500)) == len(ctx.holder.ids)


@fails(A, "lc-retriever-ainvoke-k-zero", InvalidInputError, "k >= 1", "at least 1")
def _ainvoke_k(ctx: Ctx) -> object:
    retriever = _store(ctx).as_retriever(search_kwargs={"k": 0})
    return asyncio.run(retriever.ainvoke("Hauptstadt"))


@fails(A, "lc-delete-none", InvalidInputError, "needs the ids", "pass a list of ids")
def _delete_none(ctx: Ctx) -> object:
    return _store(ctx).delete(None)


@behaves(A, "lc-delete-unknown-ids")
def _delete_unknown(ctx: Ctx) -> None:
    """Documented (LangChain semantics): unknown ids are ignored."""
    assert _store(ctx).delete(["ghost", "../../t1"]) is True


@fails(A, "lc-reranker-top-n-zero", InvalidInputError, "top_n >= 1", "at least 1")
def _top_n(ctx: Ctx) -> object:
    from sauerkraut_rag.integrations.langchain import MaxSimReranker

    return MaxSimReranker(ctx.get("text_encoder"), top_n=0)


@fails(A, "lc-embeddings-none-text", InvalidInputTypeError, "item 1", "str()")
def _embed_none(ctx: Ctx) -> object:
    from sauerkraut_rag.integrations.langchain import SauerkrautEmbeddings

    return SauerkrautEmbeddings(ctx.get("text_encoder")).embed_documents(["a", None])


@fails(A, "li-retrieve-whitespace-query", InvalidInputError, "non-empty query_str", "QueryBundle")
def _li_blank(ctx: Ctx) -> object:
    return _retriever(ctx).retrieve("   ")


@behaves(A, "li-aretrieve-unknown-filter-key")
def _li_filter(ctx: Ctx) -> None:
    """Documented: a filter on a key no node has returns no nodes."""
    retriever = _retriever(ctx, filters={"no_such_key": 1}, similarity_top_k=3)
    assert asyncio.run(retriever.aretrieve("Paris")) == []


@fails(A, "li-add-existing-node-ids", DuplicateIdError, "stored already", "replace=True")
def _li_dup(ctx: Ctx) -> object:
    from llama_index.core.schema import TextNode

    nodes = [TextNode(id_="fresh", text="neu"), TextNode(id_="t0", text="ersetzt")]
    return _retriever(ctx).add_nodes(nodes)


@fails(A, "li-similarity-top-k-zero", InvalidInputError, "similarity_top_k >= 1", "at least 1")
def _li_top_k(ctx: Ctx) -> object:
    return _retriever(ctx, similarity_top_k=0)


CASES = [
    _bare,
    _none_text,
    _bad_meta,
    _repeated,
    _meta_len,
    _big_text,
    _k_zero,
    _none_query,
    _blank_query,
    _filter_unknown,
    _ainvoke_k,
    _delete_none,
    _delete_unknown,
    _top_n,
    _embed_none,
    _li_blank,
    _li_filter,
    _li_dup,
    _li_top_k,
]
