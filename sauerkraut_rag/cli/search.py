"""``sauerkraut-rag search``: the best documents for a query, as a table or JSON.

Scores shown are MaxSim divided by the number of query tokens (the mean best-match
cosine, between -1 and 1, as in the LangChain and LlamaIndex adapters); ``--json``
output also carries the raw MaxSim as ``maxsim``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, TextIO

from sauerkraut_rag._checks import check_positive_int
from sauerkraut_rag.cli.reading import model_for, open_read_only
from sauerkraut_rag.errors import InvalidInputError
from sauerkraut_rag.retrievers.encoder_check import bind_encoder
from sauerkraut_rag.types import Hit, Metadata

_TEXT_WIDTH = 60
_SOURCE_WIDTH = 36


def parse_filters(items: list[str]) -> Metadata | None:
    """``["key=value", ...]`` -> ``{key: value}``; values that read as JSON (numbers,
    ``true``/``false``/``null``, quoted strings) are compared as such, others as text."""
    if not items:
        return None
    parsed: Metadata = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise InvalidInputError(
                f"Expected --filter key=value (e.g. --filter page=2), got {item!r}."
            )
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        parsed[key.strip()] = (
            value if isinstance(value, (str, int, float, bool, type(None))) else raw
        )
    return parsed


def run_search(
    folder: Path,
    query: str,
    *,
    k: int,
    filters: list[str],
    as_json: bool,
    model: str | None,
    out: TextIO,
) -> None:
    """Print the ``k`` best documents for ``query`` as a table or as JSON."""
    if not query.strip():
        raise InvalidInputError('Expected a non-empty query, got "". Example: "Wie hoch ist …?"')
    check_positive_int(k, name="-k")
    flt = parse_filters(filters)
    index = open_read_only(folder)
    try:
        reference = model_for(folder, model)
        from sauerkraut_rag.encoders.loading import load_encoder

        encoder = load_encoder(reference)
        bind_encoder(index, encoder)  # EncoderMismatchError if --model is another encoder
        tokens = encoder.encode_queries([query], show_progress=False)[0]
        hits = index.search([tokens], k, filter=flt)[0] if len(index) else []
    finally:
        index.close()
    results = [_result(rank, hit, tokens.shape[0]) for rank, hit in enumerate(hits, 1)]
    if as_json:
        document = {"query": query, "index": str(folder), "model": reference, "results": results}
        out.write(json.dumps(document, ensure_ascii=False, indent=2) + "\n")
    else:
        out.write(_table(results) if results else "No results.\n")


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
