"""``sauerkraut-rag search``: the best documents for a query, as a table or JSON.

Scores shown are MaxSim divided by the number of query tokens (the mean best-match
cosine, between -1 and 1, as in the LangChain and LlamaIndex adapters); ``--json``
output also carries the raw MaxSim as ``maxsim``.  Without a query on the command line,
queries are read from stdin, one per line, with the model loaded once.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TextIO

from sauerkraut_rag._checks import check_positive_int
from sauerkraut_rag.cli.reading import as_target, model_for, open_read_only
from sauerkraut_rag.cli.targets import Target
from sauerkraut_rag.errors import FilterError, InvalidInputError
from sauerkraut_rag.retrievers.encoder_check import bind_encoder
from sauerkraut_rag.retrievers.filters import Comparison, Op, matches, parse_filter
from sauerkraut_rag.types import Hit

_TEXT_WIDTH = 60
_SOURCE_WIDTH = 36


def parse_filters(items: list[str], where: str | None = None) -> dict[str, Any] | None:
    """``--filter key=value`` pairs and a ``--where`` JSON filter -> one filter (all must
    match). ``--filter`` values that read as JSON (numbers, ``true``/``false``/``null``,
    quoted strings) are compared as such, others as text; ``key`` may be dotted."""
    parts: list[dict[str, Any]] = []
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise InvalidInputError(
                f"Expected --filter key=value (e.g. --filter page=2), got {item!r}. Use "
                '--where for operators, e.g. --where \'{"page": {"$gte": 2}}\'.'
            )
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        scalar = isinstance(value, (str, int, float, bool, type(None)))
        parts.append({key.strip(): value if scalar else raw})
    if where is not None:
        parts.append(parse_where(where))
    if not parts:
        return None
    flt = parts[0] if len(parts) == 1 else {"$and": parts}
    parse_filter(flt)  # a malformed filter fails here, before the model loads
    return flt


def parse_where(text: str) -> dict[str, Any]:
    """The JSON text of ``--where`` as a filter dict."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FilterError(
            f"Expected --where to be a JSON filter such as "
            f'\'{{"source": {{"$in": ["a.txt", "b.txt"]}}}}\', got {text!r:.80} ({exc}). '
            "Quote it for the shell with single quotes."
        ) from exc
    if not isinstance(value, dict):
        raise FilterError(
            f"Expected --where to be a JSON object (a filter dict), got {text!r:.80}."
        )
    return value


def run_search(
    location: Path | Target,
    query: str | None,
    *,
    k: int,
    filters: list[str],
    where: str | None = None,
    as_json: bool,
    model: str | None,
    out: TextIO,
    queries: Iterable[str] | None = None,
    dtype: str | None = None,
) -> None:
    """Print the ``k`` best documents for ``query`` as a table or as JSON.

    With ``query=None`` the queries come from ``queries`` (the command line passes stdin),
    one per line; blank lines are skipped.  The index is opened and the model loaded once
    for all of them; each query's results are printed as soon as they are found (a table
    under a ``Query:`` line, or one JSON object per line with ``--json``).

    Everything that needs no model (the arguments, the index folder, filter keys that no
    document has) is checked before the model is loaded, and before torch is imported.
    ``dtype`` is the precision the query model runs in (``None``: the library default);
    an index built in float32 answers bfloat16 queries and the other way round.
    """
    if query is not None and not query.strip():
        raise InvalidInputError('Expected a non-empty query, got "". Example: "Wie hoch ist …?"')
    check_positive_int(k, name="-k")
    flt = parse_filters(filters, where)
    target = as_target(location)
    index = open_read_only(target)
    try:
        reference = model_for(target, model, index)
        if filters and len(index):
            keys = [item.partition("=")[0].strip() for item in filters]
            check_filter_keys(index, keys, target.label)
        encoder: Any = None
        stream = [query] if query is not None else (line.strip() for line in queries or [])
        for text in stream:
            if not text:
                continue
            if encoder is None:
                from sauerkraut_rag.encoders.loading import load_encoder

                encoder = load_encoder(reference, dtype=dtype)
                bind_encoder(index, encoder)  # EncoderMismatchError if --model is another encoder
            tokens = encoder.encode_queries([text], show_progress=False)[0]
            hits = index.search([tokens], k, filter=flt)[0] if len(index) else []
            results = [_result(rank, hit, tokens.shape[0]) for rank, hit in enumerate(hits, 1)]
            one = query is not None
            _print(out, text, results, target.label, reference, as_json=as_json, one=one)
    finally:
        index.close()


def _print(
    out: TextIO,
    query: str,
    results: list[dict[str, Any]],
    label: str,
    reference: str,
    *,
    as_json: bool,
    one: bool,
) -> None:
    if as_json:
        document = {"query": query, "index": label, "model": reference, "results": results}
        indent = 2 if one else None  # several queries: JSON Lines, one object per query
        out.write(json.dumps(document, ensure_ascii=False, indent=indent) + "\n")
    else:
        if not one:
            out.write(f"Query: {query}\n")
        out.write(_table(results) if results else "No results.\n")
        if not one:
            out.write("\n")
    out.flush()


def check_filter_keys(index: Any, keys: list[str], label: Path | str) -> None:
    """Raise when a ``--filter`` key is in no document's metadata (no model needed).

    Equality on a key that no document has can never match; say so instead of printing
    an empty result that looks like "nothing relevant".  Reads stored metadata only (no
    scoring), stopping at the first document that has every key.  Dotted keys reach into
    nested metadata, as in the filter language.
    """
    from sauerkraut_rag.retrievers.listing import iter_documents

    missing = {key: Comparison(tuple(key.split(".")), Op.EXISTS) for key in keys}
    known: set[str] = set()
    for doc in iter_documents(index):
        missing = {key: test for key, test in missing.items() if not matches(test, doc.metadata)}
        known |= doc.metadata.keys()
        if not missing:
            return
    key = sorted(missing)[0]
    raise InvalidInputError(
        f"No document in {label} has the metadata key {key!r}, so --filter {key}=... "
        f"matches nothing. Keys in this index: {', '.join(sorted(known)) or 'none'}."
    )


def _result(rank: int, hit: Hit, n_query_tokens: int) -> dict[str, Any]:
    meta = hit.metadata
    result: dict[str, Any] = {
        "rank": rank,
        "id": hit.id,
        "score": round(hit.score / max(n_query_tokens, 1), 6),
        "maxsim": round(hit.score, 6),
        "source": meta.get("source"),
    }
    if "chunk" in meta:
        result["chunk"] = meta["chunk"]
    elif "page" in meta:
        result["page"] = meta["page"]
    result["text"] = hit.payload
    if "image_path" in meta:
        result["image_path"] = meta["image_path"]
    result["metadata"] = meta
    return result


def _where(result: dict[str, Any]) -> str:
    meta = result["metadata"]
    if "chunk" in result:
        return f"chunk {result['chunk']}/{meta.get('total_chunks', '?')}"
    if "page" in result:
        return f"page {result['page']}/{meta.get('total_pages', '?')}"
    return ""


def _clip(text: str, width: int, *, left: bool = False) -> str:
    text = " ".join(text.split())
    if len(text) <= width:
        return text
    return "…" + text[-(width - 1) :] if left else text[: width - 1] + "…"


def _table(results: list[dict[str, Any]]) -> str:
    header = ["#", "score", "source", "where", "id", "text"]
    rows = [
        [
            str(r["rank"]),
            f"{r['score']:.3f}",
            _clip(str(r["source"] or ""), _SOURCE_WIDTH, left=True),
            _where(r),
            r["id"],
            r["text"] or "",
        ]
        for r in results
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(5)]
    room = shutil.get_terminal_size((120, 24)).columns - sum(widths) - 2 * 5
    text_width = max(20, min(_TEXT_WIDTH, room))
    lines = []
    for row in [header, *rows]:
        cells = [row[0].rjust(widths[0]), row[1].rjust(widths[1])]
        cells += [row[i].ljust(widths[i]) for i in range(2, 5)]
        cells.append(_clip(row[5], text_width))
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines) + "\n"
