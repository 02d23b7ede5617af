"""Framework-free helpers shared by the LangChain and LlamaIndex adapters.

- :func:`run_off_loop`: run blocking model/index work in a worker thread;
- :func:`resolve_encoder`: accept an encoder object or a model id/folder, check modality;
- :func:`resolve_index` / :class:`IndexHandle`: an index object, folder or temporary one;
- :func:`resolve_muvera`, :func:`float_rows`: the single-vector (MUVERA) view;
- :class:`ClosesIndex`: ``close()`` / ``with`` for adapters that may own their index;
- :func:`check_json_metadata`, :func:`normalise`,
  :func:`image_base64`;
- :func:`page_content`: a page hit's text for text-only chains (never empty).
"""

from __future__ import annotations

import asyncio
import base64
import contextvars
import functools
import json
import mimetypes
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self, TypeVar

import numpy as np

from sauerkraut_rag.encoders.base import Modality, MultiVectorEncoder
from sauerkraut_rag.errors import (
    DimensionMismatchError,
    InvalidInputError,
    InvalidInputTypeError,
)
from sauerkraut_rag.retrievers.encoder_check import bind_encoder
from sauerkraut_rag.retrievers.muvera import FDEConfig, MuveraEncoder
from sauerkraut_rag.retrievers.protocol import MultiVectorIndex
from sauerkraut_rag.types import Metadata

T = TypeVar("T")
ScoreT = TypeVar("ScoreT", float, np.ndarray)

EncoderLike = MultiVectorEncoder | str | Path
"""An encoder instance, or a hub id / local folder handed to :func:`load_encoder`."""


async def run_off_loop(func: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """Await ``func(*args, **kwargs)`` run in the loop's default thread pool.

    Context variables (tracing callbacks) are carried into the worker thread, and the
    event loop stays free while the model encodes.
    """
    loop = asyncio.get_running_loop()
    call = functools.partial(contextvars.copy_context().run, func, *args, **kwargs)
    return await loop.run_in_executor(None, call)


def resolve_encoder(
    encoder: Any,
    *,
    modality: Modality | None,
    role: str,
    load_kwargs: dict[str, Any] | None = None,
) -> MultiVectorEncoder:
    """Return a loaded encoder; ``str``/``Path`` go through ``load_encoder``; check modality."""
    if isinstance(encoder, (str, Path)):
        from sauerkraut_rag.encoders.loading import load_encoder

        encoder = load_encoder(encoder, **(load_kwargs or {}))
    elif load_kwargs:
        raise InvalidInputError(
            f"Got an already loaded encoder for {role} together with loading options "
            f"{sorted(load_kwargs)}. Pass those options to load_encoder() instead."
        )
    if not isinstance(encoder, MultiVectorEncoder):
        raise InvalidInputTypeError(
            f"Expected {role} to be a MultiVectorEncoder or a model id/folder, got "
            f"{type(encoder).__name__}. Build one with sauerkraut_rag.load_encoder(...)."
        )
    if modality is not None and encoder.modality != modality:
        hint = (
            "a text model such as VAGOsolutions/SauerkrautLM-Multi-ColBERT-15m"
            if modality == "text"
            else "a page model such as VAGOsolutions/SauerkrautLM-ColLFM2-450M-v0.1"
        )
        raise InvalidInputError(
            f"Expected {role} to be a {modality} model, got {encoder.name!r} whose "
            f"modality is {encoder.modality!r}. Pass {hint}."
        )
    return encoder


def normalise(scores: ScoreT, n_query_tokens: int) -> ScoreT:
    """MaxSim divided by the query's token count: the mean best-match cosine, ``[-1, 1]``."""
    return scores / max(n_query_tokens, 1)


def image_base64(path: str | Path) -> tuple[str, str]:
    """Read an image file; return ``(base64 text, mime type)``."""
    file = Path(path)
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise InvalidInputError(
            f"Expected a readable page image at {file}, but reading it failed ({exc}). "
            "If the index folder was moved or its images deleted, re-index the sources."
        ) from exc
    mime = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
    return base64.b64encode(data).decode("ascii"), mime


def resolve_muvera(muvera: Any, *, dim: int) -> MuveraEncoder:
    """A :class:`MuveraEncoder` for token vectors of size ``dim``.

    ``None`` gives the default seeded settings; an ``FDEConfig`` or ``MuveraEncoder``
    must have been made for ``dim``.
    """
    if muvera is None:
        return MuveraEncoder(dim=dim)
    if isinstance(muvera, FDEConfig):
        muvera = MuveraEncoder(muvera)
    if not isinstance(muvera, MuveraEncoder):
        raise InvalidInputTypeError(
            f"Expected muvera to be a MuveraEncoder, an FDEConfig or None, got "
            f"{type(muvera).__name__}. Example: muvera=FDEConfig(dim=128, num_repetitions=20)."
        )
    if muvera.config.dim != dim:
        raise DimensionMismatchError(
            f"Expected a MUVERA config for {dim}-d token vectors (the model's dim), got "
            f"dim={muvera.config.dim}. Build it with FDEConfig(dim={dim}, ...)."
        )
    return muvera


def float_rows(matrix: np.ndarray) -> list[list[float]]:
    """``(n, out_dim)`` array -> ``n`` flat lists of Python floats (what frameworks expect)."""
    return np.asarray(matrix, dtype=np.float64).tolist()


@dataclass
class IndexHandle:
    """An index plus what the adapter must release: ``owned`` indexes it opened itself,
    and the temporary folder (``tmpdir``) it created when no folder was given."""

    index: MultiVectorIndex
    owned: bool = False
    tmpdir: tempfile.TemporaryDirectory[str] | None = None

    @property
    def folder(self) -> Path | None:
        """The index folder, when the index lives in one (``VoyagerIndex.path``)."""
        path = getattr(self.index, "path", None)
        return Path(path) if path is not None else None

    def close(self) -> None:
        """Close an index this handle opened and delete its temporary folder, if any."""
        if self.owned:
            close = getattr(self.index, "close", None)
            if callable(close):
                close()
        if self.tmpdir is not None:
            self.tmpdir.cleanup()
            self.tmpdir = None


def resolve_index(
    index: Any,
    *,
    encoder: MultiVectorEncoder,
    role: str,
    read_only: bool = False,
    **options: Any,
) -> IndexHandle:
    """Use a ``MultiVectorIndex`` as given, or open/create a ``VoyagerIndex``; bind ``encoder``.

    A ``str``/``Path`` folder is opened (created with the encoder's ``dim`` and ``options``
    when it holds no index); ``None`` creates one in a temporary folder deleted by
    ``close()`` (or at garbage collection).  The index's ``dim`` must equal the encoder's,
    and the encoder must be the one whose vectors the index holds: an index that recorded
    another encoder's fingerprint (another checkpoint of the same dim, a text model on a
    page index, other processing) raises :class:`~sauerkraut_rag.errors.EncoderMismatchError`;
    an empty writable index records this encoder.
    """
    handle = _open_index(index, dim=encoder.dim, role=role, read_only=read_only, **options)
    try:
        bind_encoder(handle.index, encoder)
    except BaseException:
        handle.close()  # do not keep a folder's writer lock after refusing it
        raise
    return handle


def _open_index(index: Any, *, dim: int, role: str, read_only: bool, **options: Any) -> IndexHandle:
    tmpdir = None
    if index is None:
        if read_only:
            raise InvalidInputError(
                f"read_only=True needs an existing index folder for {role}, got None."
            )
        tmpdir = tempfile.TemporaryDirectory(prefix="sauerkraut-rag-")
        index = Path(tmpdir.name) / "index"
    if isinstance(index, (str, Path)):
        from sauerkraut_rag.retrievers.voyager.index import VoyagerIndex

        opened = VoyagerIndex(index, dim, read_only=read_only, **options)
        return IndexHandle(opened, owned=True, tmpdir=tmpdir)
    if not isinstance(index, MultiVectorIndex):
        raise InvalidInputTypeError(
            f"Expected {role} to be a MultiVectorIndex (e.g. VoyagerIndex), an index folder "
            f"or None, got {type(index).__name__}."
        )
    if options or read_only:
        raise InvalidInputError(
            f"Index options {sorted(options) + (['read_only'] if read_only else [])} only "
            f"apply when {role} is a folder; configure the index object itself instead."
        )
    if index.dim != dim:
        raise DimensionMismatchError(
            f"Expected {role} to hold {dim}-d token vectors (the model's dim), got an index "
            f"of dim {index.dim}. Use a new index for this model."
        )
    return IndexHandle(index)


def check_json_metadata(metadata: Any, *, what: str) -> Metadata:
    """A copy of ``metadata`` if it is a JSON-serialisable dict (indexes store JSON, never
    pickles); :class:`InvalidInputTypeError` naming ``what`` otherwise."""
    if not isinstance(metadata, dict):
        raise InvalidInputTypeError(f"Expected {what} to be a dict, got {type(metadata).__name__}.")
    try:
        json.dumps(metadata, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidInputTypeError(
            f"Expected {what} to be JSON-serialisable (it is stored as JSON), but it is not: "
            f"{exc}. Convert values to str, int, float, bool, list or dict."
        ) from exc
    return dict(metadata)


class ClosesIndex:
    """Mixin for adapters holding an :class:`IndexHandle` in ``_handle``: ``close()`` and
    ``with`` support (closes only an index the adapter opened itself)."""

    _handle: IndexHandle | None

    def close(self) -> None:
        """Close the index if this object opened it (releases the folder's writer lock)."""
        if self._handle is not None:
            self._handle.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def page_content(payload: str | None, metadata: Metadata) -> str:
    """What a page hit gives a text-only model: the page's text (its PDF text layer or
    ``page_text`` result), else a placeholder naming the source and page, never ``""``.
    """
    if payload and payload.strip():
        return payload
    name = metadata.get("file_name") or Path(str(metadata.get("source", "?"))).name
    return (
        f"[Page {metadata.get('page', '?')} of {name}: an image without a text layer. "
        "Give a multimodal model the page image to read it.]"
    )
