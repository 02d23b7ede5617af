"""The worker of ``sauerkraut-rag index``: files -> documents in an open index.

Each file is hashed first.  Known content at the same path is skipped; known content
at a path that no longer holds it is a rename (documents relabelled, nothing encoded);
known content at a path that still holds it is a duplicate (indexed once).  New content
is rendered or chunked, encoded in batches and stored; a changed file replaces its old
documents.  The progress bar counts documents (pages and chunks), not files, and its
total grows as each file is opened.
"""

from __future__ import annotations

import itertools
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from tqdm.auto import tqdm

from sauerkraut_rag.cli.files import InputFile, file_sha256, read_text_file
from sauerkraut_rag.cli.manifest import IndexedFile, SourceManifest
from sauerkraut_rag.cli.report import IndexReport, say
from sauerkraut_rag.cli.settings import IndexSettings
from sauerkraut_rag.cli.sync import drop_documents, relabel
from sauerkraut_rag.documents.chunking import chunk_text
from sauerkraut_rag.errors import DimensionMismatchError, InvalidInputError, SauerkrautError
from sauerkraut_rag.retrievers.encoder_check import bind_encoder
from sauerkraut_rag.types import Metadata, MultiVector

if TYPE_CHECKING:
    from sauerkraut_rag.encoders.base import MultiVectorEncoder

logger = logging.getLogger(__name__)

PAGE_BATCH = 4
"""Pages rendered, encoded and stored together (bounds memory for long PDFs)."""
TEXT_BATCH = 64
"""Text chunks encoded and stored together."""
FALLBACK_MAX_TOKENS = 256
"""Chunk size when a text model does not state its document length."""

_API_HINT = re.compile(r",? or pass on_error='skip'")
"""The Python-API hint in page errors; the command line always skips such files."""

Batch = tuple[list[str], list[MultiVector], list[Metadata], list[str | None]]


def page_id(sha256: str, page: int) -> str:
    """Document id of page ``page`` (1-based) of the file with this content hash."""
    return f"{sha256[:16]}-p{page}"


def chunk_id(sha256: str, chunk: int) -> str:
    """Document id of text chunk ``chunk`` (1-based) of the file with this content hash."""
    return f"{sha256[:16]}-c{chunk}"


class Indexer:
    """Encodes files one by one into an open index and records them in the manifest."""

    def __init__(
        self,
        settings: IndexSettings,
        index: Any,
        manifest: SourceManifest,
        pages_dir: Path,
        dpi: int,
        err: TextIO,
        *,
        dtype: str | None = None,
    ) -> None:
        self.settings = settings
        self.dtype = dtype
        self.index = index
        self.manifest = manifest
        self.pages_dir = pages_dir
        self.dpi = dpi
        self.err = err
        self.loaded: MultiVectorEncoder | None = None
        self._bar: Any = None

    @property
    def encoder(self) -> MultiVectorEncoder:
        """The index's model, loaded on first use (a run with no new file never loads it)."""
        if self.loaded is None:
            from sauerkraut_rag.encoders.loading import load_encoder

            self.loaded = load_encoder(self.settings.model, dtype=self.dtype)
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
        """Index ``files`` in order, counting what happened in ``report``."""
        self._bar = tqdm(total=0, unit="doc", desc="Indexing", disable=None, file=self.err)
        try:
            for number, file in enumerate(files, 1):
                self._bar.set_postfix_str(
                    f"file {number}/{len(files)}: {file.path.name}", refresh=False
                )
                self._one(file, report)
        finally:
            self._bar.close()
            self._bar = None

    def _expect(self, n: int) -> None:
        """Grow the progress bar's total by ``n`` documents (a file was opened)."""
        if self._bar is not None:
            self._bar.total = (self._bar.total or 0) + n
            self._bar.refresh()

    def _done(self, n: int) -> None:
        if self._bar is not None:
            self._bar.update(n)

    def _one(self, file: InputFile, report: IndexReport) -> None:
        source = str(file.path.resolve())
        try:
            sha = file_sha256(file.path)
            known = self.manifest.find(sha)
            if known is not None and known.source == source:
                logger.info("%s is already indexed", file.path)
                report.unchanged += 1
                return
            if known is not None and _still_holds(known, sha):
                say(self.err, f"skipped {file.path}: same content as {known.source} (indexed once)")
                report.duplicates += 1
                return
            renamed = None if known is None else relabel(self.index, known, file.path)
            ids = renamed if renamed is not None else self._store(file, sha)
        except (InvalidInputError, OSError) as exc:
            if isinstance(exc, SauerkrautError) and not isinstance(exc, InvalidInputError):
                raise
            say(self.err, f"skipped {file.path}: {_API_HINT.sub('', str(exc))}")
            report.failed += 1
            return
        old = self.manifest.replaced_by(source, sha)
        for entry in old:
            drop_documents(self.index, list(entry.ids), self.pages_dir)
            logger.info("replaced the earlier version of %s", entry.source)
        self.manifest.record(IndexedFile(sha, source, file.kind, tuple(ids)), drop=old)
        if known is not None:
            report.renamed += 1
            return
        report.new_files += 1
        report.new_documents += len(ids)
        report.replaced += bool(old)

    def _store(self, file: InputFile, sha: str) -> list[str]:
        """Write the file's documents batch by batch; on a read error undo what was written."""
        written: list[str] = []
        images: list[Path] = []
        expected = [0]
        batches = (
            self._page_batches(file, sha, images, expected)
            if file.kind == "page"
            else self._text_batches(file, sha, expected)
        )
        try:
            for ids, vectors, metas, payloads in batches:
                self.index.upsert(ids, vectors, metas, payloads)
                written.extend(ids)
                self._done(len(ids))
        except (InvalidInputError, OSError):
            self._expect(len(written) - expected[0])  # the bar forgets what never came
            if written:
                self.index.delete(written)
            for image in images:
                image.unlink(missing_ok=True)
            raise
        return written

    def _page_batches(
        self, file: InputFile, sha: str, images: list[Path], expected: list[int]
    ) -> Iterator[Batch]:
        from sauerkraut_rag.documents.pages import iter_pages, save_page_image

        pages = iter_pages(file.path, dpi=self.dpi, show_progress=False)
        while batch := list(itertools.islice(pages, PAGE_BATCH)):
            if not expected[0]:
                expected[0] = int(batch[0].metadata.get("total_pages", len(batch)))
                self._expect(expected[0])
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

    def _text_batches(self, file: InputFile, sha: str, expected: list[int]) -> Iterator[Batch]:
        chunks = chunk_text(read_text_file(file.path), self._count_tokens, self._max_tokens())
        if not chunks:
            raise InvalidInputError("the file holds no text")
        expected[0] = len(chunks)
        self._expect(len(chunks))
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


def _still_holds(entry: IndexedFile, sha: str) -> bool:
    """Whether the recorded path of ``entry`` still holds that content (a true duplicate)."""
    path = Path(entry.source)
    if not path.is_file():
        return False
    try:
        return file_sha256(path) == sha
    except (InvalidInputError, OSError):
        return False
