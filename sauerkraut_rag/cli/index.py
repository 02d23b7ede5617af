"""``sauerkraut-rag index``: encode PDFs, images and text files into an index folder.

An index folder holds one model's vectors: a page model (PDFs and images become page
images) or a text model (``.txt``/``.md`` files become paragraph chunks).  Without
``--model`` a new index takes the page model when the inputs hold any PDF or image, else
the text model; an existing index keeps the model recorded in ``sauerkraut-rag.json``.

Re-running is cheap: files whose content hash is in ``sources.sqlite`` are skipped, a
file whose content changed replaces its old documents, and a file that cannot be read is
reported on one stderr line and skipped while the others are indexed.
"""

from __future__ import annotations

import itertools
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from tqdm.auto import tqdm

from sauerkraut_rag._checks import check_positive_int
from sauerkraut_rag.cli.files import InputFile, discover, file_sha256, read_text_file
from sauerkraut_rag.cli.manifest import IndexedFile, SourceManifest
from sauerkraut_rag.cli.settings import PAGES_FOLDER, IndexSettings
from sauerkraut_rag.documents.chunking import chunk_text
from sauerkraut_rag.documents.sources import check_page_options
from sauerkraut_rag.errors import DimensionMismatchError, InvalidInputError, SauerkrautError
from sauerkraut_rag.retrievers.encoder_check import bind_encoder
from sauerkraut_rag.types import Metadata, MultiVector

if TYPE_CHECKING:
    from sauerkraut_rag.encoders.base import MultiVectorEncoder

logger = logging.getLogger(__name__)

DEFAULT_PAGE_MODEL = "VAGOsolutions/SauerkrautLM-ColLFM2-450M-v0.1"
DEFAULT_TEXT_MODEL = "VAGOsolutions/SauerkrautLM-Multi-ColBERT-15m"
PAGE_BATCH = 4
"""Pages rendered, encoded and stored together (bounds memory for long PDFs)."""
TEXT_BATCH = 64
"""Text chunks encoded and stored together."""
FALLBACK_MAX_TOKENS = 256
"""Chunk size when a text model does not state its document length."""

_API_HINT = re.compile(r",? or pass on_error='skip'")
"""The Python-API hint in page errors; the command line always skips such files."""

Batch = tuple[list[str], list[MultiVector], list[Metadata], list[str | None]]


@dataclass
class IndexReport:
    """What one ``index`` run did, counted in files (and documents for new files)."""

    new_files: int = 0
    new_documents: int = 0
    unchanged: int = 0
    failed: int = 0
    replaced: int = 0
    left_out: int = 0


def model_reference(model: str) -> str:
    """What to store for ``--model``: an existing local path made absolute, else the hub id."""
    path = Path(model).expanduser()
    return str(path.resolve()) if path.exists() else model


def page_id(sha256: str, page: int) -> str:
    """Document id of page ``page`` (1-based) of the file with this content hash."""
    return f"{sha256[:16]}-p{page}"


def chunk_id(sha256: str, chunk: int) -> str:
    """Document id of text chunk ``chunk`` (1-based) of the file with this content hash."""
    return f"{sha256[:16]}-c{chunk}"


def run_index(
    paths: list[str],
    folder: Path,
    *,
    model: str | None,
    pool_factor: int | None,
    dpi: int,
    err: TextIO,
) -> IndexReport:
    """Index ``paths`` into ``folder``; per-file problems go to ``err``, one line each."""
    from sauerkraut_rag.retrievers.voyager.loading import is_index

    check_page_options(dpi, True, None, False, "raise")  # the PDF options, before any work
    if pool_factor is not None:
        check_positive_int(pool_factor, name="--pool-factor", hint=" 1 keeps every token.")
    found = discover(paths)
    for path in found.unsupported:
        _say(err, f"skipped {path}: not a PDF, image, .txt or .md file")
    if not found.files:
        raise InvalidInputError(
            f"Nothing to index: no PDF, image, .txt or .md files among {', '.join(paths)}."
        )
    settings = IndexSettings.read(folder) if folder.is_dir() else None
    reference = _choose_model(settings, model, found.files, folder)
    encoder = None  # with an existing index the model is loaded only if a file is new
    if settings is None:  # a new index: the model decides modality and dim
        from sauerkraut_rag.encoders.loading import load_encoder

        encoder = load_encoder(reference)
        settings = _settings_for(reference, encoder)
    wanted = "page" if settings.modality == "image" else "text"
    files = [f for f in found.files if f.kind == wanted]
    report = IndexReport(left_out=len(found.files) - len(files))
    if report.left_out:
        other = "text" if wanted == "page" else "PDF/image"
        _say(
            err,
            f"left out {report.left_out} {other} file(s): this index uses the {wanted} model "
            f"{reference}. Index them into another folder with --index.",
        )
    if not files:
        raise InvalidInputError(
            f"Nothing to index: no {'PDF or image' if wanted == 'page' else '.txt/.md'} files "
            f"among {', '.join(paths)}."
        )
    index = _open_index(folder, settings.dim, pool_factor, exists=is_index(folder))
    try:
        if encoder is not None:
            bind_encoder(index, encoder)  # records it (EncoderMismatchError on another model)
            settings.write(folder)
        with SourceManifest(folder) as manifest:
            worker = _Indexer(settings, index, manifest, folder / PAGES_FOLDER, dpi, err)
            worker.loaded = encoder
            worker.run(files, report)
    finally:
        index.close()
    return report


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
    settings: IndexSettings | None, model: str | None, files: list[InputFile], folder: Path
) -> str:
    if settings is not None:
        if model is not None and model_reference(model) != settings.model:
            raise InvalidInputError(
                f"The index at {folder} was built with {settings.model}, got --model {model}. "
                "Leave out --model to keep adding with that model, or pass a new --index folder."
            )
        return settings.model
    if model is not None:
        return model_reference(model)
    return DEFAULT_PAGE_MODEL if any(f.kind == "page" for f in files) else DEFAULT_TEXT_MODEL


def _open_index(folder: Path, dim: int, pool_factor: int | None, *, exists: bool) -> Any:
    from sauerkraut_rag.retrievers.voyager.index import VoyagerIndex

    if not exists:
        options = {} if pool_factor is None else {"pool_factor": pool_factor}
        return VoyagerIndex.create(folder, dim, **options)
    index = VoyagerIndex.open(folder)
    stored = index.config.pool_factor
    if index.dim != dim or (pool_factor is not None and pool_factor != stored):
        index.close()
        if index.dim != dim:
            raise DimensionMismatchError(
                f"The index at {folder} holds {index.dim}-d vectors, but the model makes "
                f"{dim}-d ones. Use a new --index folder for this model."
            )
        raise InvalidInputError(
            f"The index at {folder} was created with --pool-factor {stored}, got {pool_factor}. "
            "Leave out --pool-factor, or use a new --index folder."
        )
    return index


class _Indexer:
    """Encodes files one by one into an open index and records them in the manifest."""

    def __init__(
        self,
        settings: IndexSettings,
        index: Any,
        manifest: SourceManifest,
        pages_dir: Path,
        dpi: int,
        err: TextIO,
    ) -> None:
        self.settings = settings
        self.index = index
        self.manifest = manifest
        self.pages_dir = pages_dir
        self.dpi = dpi
        self.err = err
        self.loaded: MultiVectorEncoder | None = None

    @property
    def encoder(self) -> MultiVectorEncoder:
        """The index's model, loaded on first use (a run with no new file never loads it)."""
        if self.loaded is None:
            from sauerkraut_rag.encoders.loading import load_encoder

            self.loaded = load_encoder(self.settings.model)
            bind_encoder(self.index, self.loaded)  # the model may have changed on disk
        encoder = self.loaded
        if encoder.dim != self.settings.dim or encoder.modality != self.settings.modality:
            raise DimensionMismatchError(
                f"The index holds {self.settings.dim}-d {self.settings.modality} vectors, but "
                f"{self.settings.model} now makes {encoder.dim}-d {encoder.modality} ones. Use "
                "the model the index was built with, or a new --index folder."
            )
        return encoder

    def run(self, files: list[InputFile], report: IndexReport) -> None:
        bar = tqdm(total=len(files), unit="file", desc="Indexing", disable=None, file=self.err)
        try:
            for file in files:
                bar.set_postfix_str(file.path.name, refresh=False)
                self._one(file, report)
                bar.update(1)
        finally:
            bar.close()

    def _one(self, file: InputFile, report: IndexReport) -> None:
        try:
            sha = file_sha256(file.path)
            known = self.manifest.find(sha)
            if known is not None:
                logger.info("%s is already indexed (as %s)", file.path, known.source)
                report.unchanged += 1
                return
            ids = self._store(file, sha)
        except (InvalidInputError, OSError) as exc:
            if isinstance(exc, SauerkrautError) and not isinstance(exc, InvalidInputError):
                raise
            _say(self.err, f"skipped {file.path}: {_API_HINT.sub('', str(exc))}")
            report.failed += 1
            return
        source = str(file.path.resolve())
        old = self.manifest.replaced_by(source, sha)
        for entry in old:
            self._forget(entry)
        self.manifest.record(IndexedFile(sha, source, file.kind, tuple(ids)), drop=old)
        report.new_files += 1
        report.new_documents += len(ids)
        report.replaced += bool(old)

    def _store(self, file: InputFile, sha: str) -> list[str]:
        """Write the file's documents batch by batch; on a read error undo what was written."""
        written: list[str] = []
        images: list[Path] = []
        batches = (
            self._page_batches(file, sha, images)
            if file.kind == "page"
            else self._text_batches(file, sha)
        )
        try:
            for ids, vectors, metas, payloads in batches:
                self.index.upsert(ids, vectors, metas, payloads)
                written.extend(ids)
        except (InvalidInputError, OSError):
            if written:
                self.index.delete(written)
            for image in images:
                image.unlink(missing_ok=True)
            raise
        return written

    def _page_batches(self, file: InputFile, sha: str, images: list[Path]) -> Iterator[Batch]:
        from sauerkraut_rag.documents.pages import iter_pages, save_page_image

        pages = iter_pages(file.path, dpi=self.dpi, show_progress=False)
        while batch := list(itertools.islice(pages, PAGE_BATCH)):
            vectors = self.encoder.encode_documents(
                [page.image for page in batch], batch_size=len(batch), show_progress=False
            )
            metas: list[Metadata] = []
            for page in batch:
                image = save_page_image(page, self.pages_dir)
                images.append(image)
                metas.append(
                    {
                        **page.metadata,
                        "source": str(file.path),
                        "file_name": file.path.name,
                        "image_path": str(image.resolve()),
                    }
                )
            ids = [page_id(sha, page.page_number) for page in batch]
            yield ids, vectors, metas, [None] * len(batch)

    def _text_batches(self, file: InputFile, sha: str) -> Iterator[Batch]:
        chunks = chunk_text(read_text_file(file.path), self._count_tokens, self._max_tokens())
        if not chunks:
            raise InvalidInputError("the file holds no text")
        for start in range(0, len(chunks), TEXT_BATCH):
            part = chunks[start : start + TEXT_BATCH]
            vectors = self.encoder.encode_documents(part, batch_size=16, show_progress=False)
            numbers = range(start + 1, start + len(part) + 1)
            metas: list[Metadata] = [
                {
                    "source": str(file.path),
                    "file_name": file.path.name,
                    "kind": "text",
                    "chunk": number,
                    "total_chunks": len(chunks),
                    "source_sha256": sha,
                }
                for number in numbers
            ]
            yield [chunk_id(sha, n) for n in numbers], vectors, metas, list(part)

    def _count_tokens(self, texts: Any) -> list[int]:
        tokenizer = getattr(self.encoder, "tokenizer", None)
        if tokenizer is None:
            return [len(text.split()) for text in texts]
        encoded = tokenizer(list(texts), add_special_tokens=False)["input_ids"]
        return [len(ids) for ids in encoded]

    def _max_tokens(self) -> int:
        """Room for text in one document: the model's length minus special and prefix tokens."""
        settings = getattr(self.encoder, "settings", None)
        tokenizer = getattr(self.encoder, "tokenizer", None)
        length = getattr(settings, "document_length", None)
        if not isinstance(length, int) or tokenizer is None:
            return FALLBACK_MAX_TOKENS
        prefix = getattr(self.encoder, "document_prefix_id", None) is not None
        return max(1, length - tokenizer.num_special_tokens_to_add(pair=False) - prefix)

    def _forget(self, entry: IndexedFile) -> None:
        """Delete the documents (and page images) of an earlier version of a file."""
        for doc in self.index.get(list(entry.ids)):
            image = doc.metadata.get("image_path")
            if isinstance(image, str) and Path(image).parent == self.pages_dir.resolve():
                Path(image).unlink(missing_ok=True)
        self.index.delete(list(entry.ids))
        logger.info("replaced the earlier version of %s", entry.source)


def _say(err: TextIO, message: str) -> None:
    """One line on stderr that does not break a running progress bar."""
    tqdm.write(" ".join(message.split()), file=err)


def _version() -> str:
    from sauerkraut_rag import __version__

    return __version__
