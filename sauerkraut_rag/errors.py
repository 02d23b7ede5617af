"""Typed errors raised by sauerkraut-rag.

Every message says what was expected, what arrived, and how to fix it.
All errors derive from :class:`SauerkrautError`, and also from the closest
built-in exception (``ValueError``, ``TypeError``, ``OSError``) so existing
``except`` clauses keep working.
"""

from __future__ import annotations


class SauerkrautError(Exception):
    """Base class of every error raised on purpose by sauerkraut-rag."""


class InvalidInputError(SauerkrautError, ValueError):
    """An argument has the right type but an unusable value (empty list, NaN, k <= 0, ...)."""


class InvalidInputTypeError(SauerkrautError, TypeError):
    """An argument or list item has the wrong type (e.g. ``None`` where a string is expected)."""


class FilterError(InvalidInputError):
    """A metadata filter is malformed: unknown operator, wrong value type, empty logic list.

    The message names the offending part (e.g. ``filter["$or"][1]["year"]``) and lists
    the supported operators (see :mod:`sauerkraut_rag.retrievers.filters`).
    """


class FilterTypeError(FilterError, InvalidInputTypeError):
    """A metadata filter (or a part of it) has the wrong Python type, e.g. a string."""


class UnsupportedFilterError(FilterError):
    """A valid filter that this backend cannot evaluate (e.g. a callable on a server)."""


class ImageLoadError(InvalidInputError):
    """An image (path, bytes or PIL object) could not be read or is too large."""


class PdfError(InvalidInputError):
    """A PDF could not be rendered: corrupt, encrypted (no or wrong password) or without pages."""


class ModelNotFoundError(SauerkrautError, OSError):
    """A model id could not be resolved: unknown id, no network, or not in the local cache."""


class CheckpointError(SauerkrautError, ValueError):
    """A model folder is incomplete or its weights do not match the architecture."""


class RemoteCodeRequiredError(CheckpointError):
    """The checkpoint needs ``trust_remote_code=True``, which is never enabled implicitly."""


class DependencyMissingError(SauerkrautError, ImportError):
    """An optional dependency is not installed; the message names the extra to install."""


class IndexStoreError(SauerkrautError, ValueError):
    """Base class for errors raised by a multi-vector index."""


class DimensionMismatchError(IndexStoreError):
    """A vector's dimension differs from the index or encoder dimension."""


class DuplicateIdError(IndexStoreError):
    """``add`` was given an id that is already stored (use ``upsert`` to replace it)."""


class UnknownIdError(IndexStoreError, KeyError):
    """An operation named an id that is not stored."""

    def __str__(self) -> str:  # KeyError would otherwise repr() the message
        return str(self.args[0]) if self.args else ""


class IndexCorruptedError(IndexStoreError):
    """An index folder is truncated, bit-flipped or otherwise unreadable."""


class IndexFormatError(IndexStoreError):
    """An index folder was written by an incompatible (e.g. newer) format version."""


class EncoderMismatchError(IndexStoreError):
    """The encoder differs from the one whose vectors the index holds (model, dim, processing)."""


class IndexConnectionError(IndexStoreError, ConnectionError):
    """A remote index (e.g. a Qdrant server) could not be reached or refused the request."""


class IndexAuthenticationError(IndexConnectionError):
    """A remote index refused the credentials (a missing or wrong API key)."""


class IndexSchemaError(IndexStoreError):
    """An existing collection or index was built with other settings than the ones asked for."""


class DocumentTooLargeError(InvalidInputError):
    """A document exceeds a per-document limit of the index backend (tokens or bytes)."""


class PartialWriteError(IndexStoreError):
    """A batched write failed part-way; ``written_ids`` were stored, ``unwritten_ids`` not."""

    def __init__(self, message: str, *, written_ids: list[str], unwritten_ids: list[str]) -> None:
        super().__init__(message)
        self.written_ids = written_ids
        self.unwritten_ids = unwritten_ids


class IndexStorageError(IndexStoreError, OSError):
    """The storage under an index failed: disk full, file too large, I/O error, read-only.

    ``operation`` names what failed (``"add"``, ``"compact"``, ...); ``committed`` says
    whether that operation's change is stored (an operation that raises this error never
    half-applies: it committed nothing, unless ``committed`` says otherwise);
    ``data_intact`` says whether the index was checked to still hold its last committed
    state after the fault. ``errno`` is the operating system's error number when known.
    """

    def __init__(
        self,
        message: str,
        *,
        operation: str,
        committed: bool,
        data_intact: bool,
        errno: int | None = None,
    ) -> None:
        super().__init__(message)
        self.operation = operation
        self.committed = committed
        self.data_intact = data_intact
        self.errno = errno

    def __reduce__(self) -> tuple[object, ...]:  # keyword fields survive pickling
        fields = {
            "operation": self.operation,
            "committed": self.committed,
            "data_intact": self.data_intact,
            "errno": self.errno,
        }
        return (_rebuild_storage_error, (type(self), str(self), fields))


class StorageFullError(IndexStorageError):
    """The disk or a size limit is full (ENOSPC, EDQUOT, EFBIG, SQLite "database is full")."""


def _rebuild_storage_error(
    cls: type[IndexStorageError], message: str, fields: dict[str, object]
) -> IndexStorageError:
    return cls(message, **fields)  # type: ignore[arg-type]


class ForkedWriterError(IndexStoreError):
    """A writable index was used in a process forked after it was opened."""
