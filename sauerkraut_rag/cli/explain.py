"""``sauerkraut-rag explain``: a similarity map of a query over one stored page."""

from __future__ import annotations

from pathlib import Path
from typing import TextIO

from sauerkraut_rag.cli.reading import as_target, model_for, open_read_only
from sauerkraut_rag.cli.targets import Target
from sauerkraut_rag.errors import InvalidInputError, UnknownIdError
from sauerkraut_rag.types import Metadata


def run_explain(
    where: Path | Target,
    query: str,
    *,
    page: str,
    out_path: Path,
    reduce: str,
    model: str | None,
    out: TextIO,
    dtype: str | None = None,
) -> None:
    """Write the similarity map of ``query`` over page ``page`` as a PNG."""
    if out_path.suffix.lower() != ".png":
        raise InvalidInputError(f"Expected --out to name a .png file, got {str(out_path)!r}.")
    target = as_target(where)
    index = open_read_only(target)
    try:
        docs = index.get([page])
        reference = model_for(target, model, index)
    finally:
        index.close()
    if not docs:
        raise UnknownIdError(
            f"No page with id {page!r} in {target.label}. The id column of "
            '`sauerkraut-rag search ... "query"` lists page ids.'
        )
    meta = docs[0].metadata
    image = _page_image(target, page, meta)
    from sauerkraut_rag.encoders.loading import load_encoder
    from sauerkraut_rag.similarity_maps import explain_page_figure

    encoder = load_encoder(reference, dtype=dtype)
    name = meta.get("file_name") or Path(str(meta.get("source", page))).name
    explained = explain_page_figure(
        encoder,  # type: ignore[arg-type]
        query,
        image,
        label=f"{name}, page {meta.get('page', '?')}",
        reduce=reduce,  # type: ignore[arg-type]
    )
    out_path.parent.mkdir(parents=True, exist_ok=True)
    explained.save(out_path)
    heat, figure = explained.heat, explained.figure
    out.write(
        f"Wrote {out_path} ({figure.width}x{figure.height}): {query!r} on "
        f"{meta.get('source')} page {meta.get('page')}, score {explained.score:.3f}; patch "
        f"scores {float(heat.min()):.3f} to {float(heat.max()):.3f} ({reduce} over query "
        "tokens), shown on the colour bar.\n"
    )


def _page_image(target: Target, page: str, meta: Metadata) -> Path:
    stored = meta.get("image_path")
    if not isinstance(stored, str):
        raise InvalidInputError(
            f"Document {page!r} is a text chunk, not a page. Similarity maps need an index "
            "built from PDFs or images with a page model."
        )
    path = Path(stored)
    if path.is_file():
        return path
    try:
        moved = target.pages_folder("image") / path.name  # the pages folder moved or was copied
    except InvalidInputError:
        moved = path
    if moved.is_file():
        return moved
    raise InvalidInputError(
        f"The image of page {page!r} ({stored}) is missing. Index the source file again "
        "(delete its row by re-indexing into a new --index folder)."
    )
