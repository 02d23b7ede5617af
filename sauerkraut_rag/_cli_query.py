"""``sauerkraut-rag search``, ``explain`` and ``info``: reading an index folder.

Scores shown are MaxSim divided by the number of query tokens (the mean best-match
cosine, between -1 and 1, as in the LangChain and LlamaIndex adapters); ``--json``
output also carries the raw MaxSim as ``maxsim``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, TextIO

from sauerkraut_rag._atomic import write_atomically
from sauerkraut_rag._cli_index import model_reference
from sauerkraut_rag._cli_manifest import SourceManifest
from sauerkraut_rag._cli_settings import PAGES_FOLDER, IndexSettings
from sauerkraut_rag.errors import IndexFormatError, InvalidInputError, UnknownIdError
from sauerkraut_rag.types import Hit, Metadata

_TEXT_WIDTH = 60
_SOURCE_WIDTH = 36


def _open(folder: Path) -> Any:
    """Open the index in ``folder`` read-only (searches work while another process indexes)."""
    from sauerkraut_rag.retrievers._index_open import is_index
    from sauerkraut_rag.retrievers.index import VoyagerIndex

    if not is_index(folder):
        raise IndexFormatError(
            f"No index at {folder}. Build one with: sauerkraut-rag index PATH... --index {folder}"
        )
    return VoyagerIndex.open(folder, read_only=True, verify=False)


def _model_for(folder: Path, model: str | None) -> str:
    if model is not None:
        return model_reference(model)
    settings = IndexSettings.read(folder)
    if settings is None:
        raise InvalidInputError(
            f"{folder} does not say which model built it (no sauerkraut-rag.json: it was not "
            "made by the command line). Pass --model ID|PATH with the model that built it."
        )
    return settings.model


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
    if k < 1:
        raise InvalidInputError(f"Expected -k to be at least 1, got {k}.")
    flt = parse_filters(filters)
    index = _open(folder)
    try:
        reference = _model_for(folder, model)
        from sauerkraut_rag.encoders.loading import load_encoder

        encoder = load_encoder(reference)
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


def run_explain(
    folder: Path,
    query: str,
    *,
    page: str,
    out_path: Path,
    reduce: str,
    model: str | None,
    out: TextIO,
) -> None:
    """Write the similarity map of ``query`` over page ``page`` as a PNG."""
    if out_path.suffix.lower() != ".png":
        raise InvalidInputError(f"Expected --out to name a .png file, got {str(out_path)!r}.")
    index = _open(folder)
    try:
        docs = index.get([page])
    finally:
        index.close()
    reference = _model_for(folder, model)
    if not docs:
        raise UnknownIdError(
            f"No page with id {page!r} in {folder}. The id column of "
            f'`sauerkraut-rag search {folder} "query"` lists page ids.'
        )
    meta = docs[0].metadata
    image = _page_image(folder, page, meta)
    from sauerkraut_rag.encoders.loading import load_encoder
    from sauerkraut_rag.similarity_maps import explain_page

    encoder = load_encoder(reference)
    heat, overlay = explain_page(encoder, query, image, reduce=reduce)  # type: ignore[arg-type]
    out_path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(out_path, lambda stream: overlay.save(stream, format="PNG"))
    out.write(
        f"Wrote {out_path} ({overlay.width}x{overlay.height}): {query!r} on "
        f"{meta.get('source')} page {meta.get('page')}; patch scores "
        f"{float(heat.min()):.3f} to {float(heat.max()):.3f} ({reduce} over query tokens).\n"
    )


def _page_image(folder: Path, page: str, meta: Metadata) -> Path:
    stored = meta.get("image_path")
    if not isinstance(stored, str):
        raise InvalidInputError(
            f"Document {page!r} is a text chunk, not a page. Similarity maps need an index "
            "built from PDFs or images with a page model."
        )
    path = Path(stored)
    if path.is_file():
        return path
    moved = folder / PAGES_FOLDER / path.name  # the index folder was moved or copied
    if moved.is_file():
        return moved
    raise InvalidInputError(
        f"The image of page {page!r} ({stored}) is missing. Index the source file again "
        "(delete its row by re-indexing into a new --index folder)."
    )


def run_info(folder: Path, *, as_json: bool, out: TextIO) -> None:
    """Print the model, dims, counts, size on disk and format versions of an index."""
    index = _open(folder)
    try:
        stats = index.stats()
        config = index.config
    finally:
        index.close()
    settings = IndexSettings.read(folder)
    with SourceManifest(folder, read_only=True) as manifest:
        files = manifest.counts()
    pages = folder / PAGES_FOLDER
    image_bytes = sum(f.stat().st_size for f in pages.rglob("*") if f.is_file())
    facts: dict[str, Any] = {
        "index": str(folder.resolve()),
        "model": settings.model if settings else None,
        "family": settings.family if settings else None,
        "modality": settings.modality if settings else None,
        "dim": config.dim,
        "documents": stats["documents"],
        "files": sum(files.values()),
        "tokens": stats["tokens"],
        "pool_factor": config.pool_factor,
        "disk_bytes": stats["disk_bytes"],
        "page_image_bytes": image_bytes,
        "index_format_version": _index_format_version(folder),
        "settings_format_version": settings.format_version if settings else None,
        "strategy": config.strategy,
    }
    if as_json:
        out.write(json.dumps(facts, indent=2) + "\n")
        return
    unit = "pages" if facts["modality"] == "image" else "text chunks"
    model_line = (
        f"{facts['model']} ({facts['family']}, {facts['modality']}, dim {facts['dim']})"
        if settings
        else f"unknown (no sauerkraut-rag.json), dim {facts['dim']}"
    )
    lines = [
        ("index", facts["index"]),
        ("model", model_line),
        ("documents", f"{facts['documents']:,} {unit} from {facts['files']:,} files"),
        ("tokens", f"{facts['tokens']:,} stored (pool factor {facts['pool_factor']})"),
        ("size on disk", f"{_size(stats['disk_bytes'])} (page images {_size(image_bytes)})"),
        (
            "format",
            f"index v{facts['index_format_version']}, "
            f"settings v{facts['settings_format_version'] or '-'}",
        ),
        ("search", f"{config.strategy} candidates, exact below {config.exact_threshold:,} docs"),
    ]
    out.write("".join(f"{name + ':':<14}{value}\n" for name, value in lines))


def _index_format_version(folder: Path) -> int:
    from sauerkraut_rag.retrievers import _index_sql as sql

    conn = sql.connect(folder / sql.DB_NAME, read_only=True)
    try:
        return int(sql.read_meta(conn)["format_version"])
    finally:
        conn.close()


def _size(n_bytes: int) -> str:
    value = float(n_bytes)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"
