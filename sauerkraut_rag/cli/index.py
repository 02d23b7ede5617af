"""``sauerkraut-rag index``: encode PDFs, images and text files into an index folder (or a
Qdrant collection, see :mod:`.targets`).

An index folder holds one model's vectors: a page model (PDFs and images become page
images) or a text model (``.txt``/``.md`` files become paragraph chunks).  Without
``--model`` a new index takes the page model when the inputs hold any PDF or image, else
the text model; an existing index keeps the model recorded in ``sauerkraut-rag.json``.

Re-running is cheap: files whose content hash is in ``sources.sqlite`` are skipped, a
file whose content changed replaces its old documents, a renamed file keeps its documents
under the new path, and a file that cannot be read is reported on one stderr line and
skipped while the others are indexed.  Files that are gone from the given folders are
removed from the index unless ``--keep-missing`` is given (see :mod:`.sync`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from sauerkraut_rag._checks import check_positive_int
from sauerkraut_rag.cli.files import InputFile, discover
from sauerkraut_rag.cli.indexer import Indexer
from sauerkraut_rag.cli.report import IndexReport, say
from sauerkraut_rag.cli.settings import IndexSettings
from sauerkraut_rag.cli.sync import forget_files, gone_files
from sauerkraut_rag.cli.targets import FolderTarget, Target
from sauerkraut_rag.documents.sources import check_page_options
from sauerkraut_rag.errors import InvalidInputError
from sauerkraut_rag.retrievers.encoder_check import bind_encoder

if TYPE_CHECKING:
    from sauerkraut_rag.encoders.base import MultiVectorEncoder

__all__ = ["DEFAULT_PAGE_MODEL", "DEFAULT_TEXT_MODEL", "IndexReport", "run_index"]

logger = logging.getLogger(__name__)

DEFAULT_PAGE_MODEL = "VAGOsolutions/SauerkrautLM-ColLFM2-450M-v0.1"
DEFAULT_TEXT_MODEL = "VAGOsolutions/SauerkrautLM-Multi-ColBERT-15m"


def model_reference(model: str) -> str:
    """What to store for ``--model``: an existing local path made absolute, else the hub id."""
    path = Path(model).expanduser()
    return str(path.resolve()) if path.exists() else model


def run_index(
    paths: list[str],
    where: Path | Target,
    *,
    model: str | None,
    pool_factor: int | None,
    dpi: int,
    err: TextIO,
    sync: bool = True,
    follow_symlinks: bool = False,
    dtype: str | None = None,
) -> IndexReport:
    """Index ``paths`` into ``where`` (an index folder or a :mod:`.targets` target);
    per-file problems go to ``err``, one line each.

    With ``sync`` (the default), files recorded under one of the given folders that no
    longer exist are removed from the index (documents and page images).  Links under
    the given folders that lead out of them are skipped unless ``follow_symlinks``.
    Everything that needs no model is checked before the model is loaded.  ``dtype`` is
    the precision the model runs in (``None``: the library default, float32 on CPU); it
    is not recorded, so later runs may use another one.
    """
    target = FolderTarget(where) if isinstance(where, Path) else where
    check_page_options(dpi, True, None, False, "raise")  # the PDF options, before any work
    if pool_factor is not None:
        check_positive_int(pool_factor, name="--pool-factor", hint=" 1 keeps every token.")
    found = discover(paths, follow_symlinks=follow_symlinks)
    for path in found.unsupported:
        say(err, f"skipped {path}: not a PDF, image, .txt or .md file")
    for path in found.outside_links:
        say(err, f"skipped {path}: links out of the given folder (--follow-symlinks indexes it)")
    exists = target.exists()
    if not found.files and not exists:
        raise InvalidInputError(
            f"Nothing to index: no PDF, image, .txt or .md files among {', '.join(paths)}."
        )
    target.check_new()
    settings = target.read_settings()
    reference = _choose_model(settings, model, found.files, target.label)
    encoder = None  # with an existing index the model is loaded only if a file is new
    if settings is None:  # a new index: the model decides modality and dim
        from sauerkraut_rag.encoders.loading import load_encoder

        encoder = load_encoder(reference, dtype=dtype)
        settings = _settings_for(reference, encoder)
    files = _wanted(found.files, settings, reference, err)
    report = IndexReport(left_out=len(found.files) - len(files))
    pages_dir = target.pages_folder(settings.modality)
    index = target.open_index(settings.dim, pool_factor)
    try:
        if encoder is not None:
            bind_encoder(index, encoder)  # records it (EncoderMismatchError on another model)
            target.write_settings(index, settings)
        with target.manifest(index) as manifest:
            worker = Indexer(settings, index, manifest, pages_dir, dpi, err, dtype=dtype)
            worker.loaded = encoder
            worker.run(files, report)
            if sync:
                folders = [Path(p).expanduser() for p in paths if Path(p).expanduser().is_dir()]
                gone = gone_files(manifest, folders)
                report.removed = len(gone)
                report.removed_documents = forget_files(index, manifest, gone, pages_dir)
    finally:
        index.close()
    if not files and not report.removed:
        wanted = "PDF or image" if settings.modality == "image" else ".txt/.md"
        raise InvalidInputError(f"Nothing to index: no {wanted} files among {', '.join(paths)}.")
    return report


def _wanted(
    files: list[InputFile], settings: IndexSettings, reference: str, err: TextIO
) -> list[InputFile]:
    """The files of the index's kind; the others are left out with a note."""
    wanted = "page" if settings.modality == "image" else "text"
    kept = [f for f in files if f.kind == wanted]
    if len(kept) < len(files):
        other = "text" if wanted == "page" else "PDF/image"
        say(
            err,
            f"left out {len(files) - len(kept)} {other} file(s): this index uses the {wanted} "
            f"model {reference}. Index them into another folder with --index.",
        )
    return kept


def _settings_for(reference: str, encoder: MultiVectorEncoder) -> IndexSettings:
    """Settings of a new index built with ``encoder``."""
    return IndexSettings(
        model=reference,
        family=type(encoder).__name__.removesuffix("Encoder").lower(),
        modality=encoder.modality,
        dim=encoder.dim,
        created_with=f"sauerkraut-rag {_version()}",
        encoder=encoder.fingerprint,
    )


def _choose_model(
    settings: IndexSettings | None, model: str | None, files: list[InputFile], label: str
) -> str:
    if settings is not None:
        if model is not None and model_reference(model) != settings.model:
            raise InvalidInputError(
                f"The index at {label} was built with {settings.model}, got --model {model}. "
                "Leave out --model to keep adding with that model, or pass a new --index folder "
                "(or --collection)."
            )
        return settings.model
    if model is not None:
        return model_reference(model)
    return DEFAULT_PAGE_MODEL if any(f.kind == "page" for f in files) else DEFAULT_TEXT_MODEL


def _version() -> str:
    from sauerkraut_rag import __version__

    return __version__
