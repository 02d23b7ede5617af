"""One rule for every index backend: stored vectors and new ones must come from one encoder.

An index records the :class:`~sauerkraut_rag.encoders.fingerprint.EncoderFingerprint` of
the encoder that made its vectors.  Whoever pairs an encoder with an index calls
:func:`bind_encoder` before writing or searching (``MultiVectorRetriever`` does, and so
do the CLI and the framework adapters through it):

- the index knows its encoder and this one differs -> :class:`EncoderMismatchError`
  naming what differs and how to rebuild;
- the index knows nothing yet and is empty (and writable) -> it records this encoder;
- the index knows nothing but holds vectors (written before fingerprints existed) ->
  one warning per index, no failure.

A backend takes part by offering ``bind_encoder(fingerprint)`` (see
:class:`~sauerkraut_rag.retrievers.voyager.index.VoyagerIndex`), built on
:func:`bind_fingerprint`.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping
from typing import Any

from sauerkraut_rag.encoders.fingerprint import EncoderFingerprint
from sauerkraut_rag.errors import EncoderMismatchError, IndexCorruptedError, SauerkrautError

__all__ = ["bind_encoder", "bind_fingerprint", "ensure_same_encoder", "fingerprint_from_json"]

logger = logging.getLogger(__name__)

_warned: set[str] = set()
_warned_lock = threading.Lock()


def ensure_same_encoder(
    stored: EncoderFingerprint, actual: EncoderFingerprint, *, where: str
) -> None:
    """Raise :class:`EncoderMismatchError` unless ``actual`` makes vectors like ``stored``."""
    difference = stored.describe_difference(actual)
    if difference is None:
        return
    raise EncoderMismatchError(
        f"{where[:1].upper()}{where[1:]} holds vectors made by {stored.describe()}, but the "
        f"encoder given is {actual.describe()} ({difference}; index vs encoder). Vectors of "
        f"different encoders cannot be compared. Search it with the model it was built with "
        f"(load_encoder({stored.model!r}) with the same settings), or rebuild: index the "
        "documents again with this encoder into a new index folder or collection."
    )


def warn_unknown_encoder(where: str) -> None:
    """Log, once per ``where`` and process, that an index does not know its encoder."""
    with _warned_lock:
        if where in _warned:
            return
        _warned.add(where)
    logger.warning(
        "%s was written before sauerkraut-rag recorded encoder fingerprints, so it cannot "
        "check that the encoder matches its vectors. Make sure you use the model the index "
        "was built with; rebuild the index to have it checked.",
        where[:1].upper() + where[1:],
    )


def bind_fingerprint(
    stored: EncoderFingerprint | None,
    actual: EncoderFingerprint,
    *,
    where: str,
    empty: bool,
    writable: bool,
) -> EncoderFingerprint | None:
    """The shared decision; returns the fingerprint the backend should now record, if any.

    ``stored`` is what the index recorded (``None``: nothing), ``actual`` the encoder's
    fingerprint as the index would store it (e.g. with its pool factor applied).
    """
    if stored is not None:
        ensure_same_encoder(stored, actual, where=where)
        return None
    if empty and writable:
        return actual
    if not empty:
        warn_unknown_encoder(where)
    return None


def bind_encoder(index: Any, encoder: Any) -> EncoderFingerprint | None:
    """Check (or record) ``encoder``'s fingerprint on ``index``; returns the fingerprint.

    A no-op (returning ``None``) for encoders without a ``fingerprint`` (e.g. test
    doubles) and indexes without ``bind_encoder`` (backends that keep no record).
    """
    fingerprint = getattr(encoder, "fingerprint", None)
    bind = getattr(index, "bind_encoder", None)
    if not isinstance(fingerprint, EncoderFingerprint) or not callable(bind):
        return None
    bind(fingerprint)
    return fingerprint


def fingerprint_from_json(
    text: str | Mapping[str, Any] | None, *, where: str
) -> EncoderFingerprint | None:
    """Read a stored fingerprint (JSON text or dict); ``None`` stays ``None``."""
    if text is None:
        return None
    try:
        data = json.loads(text) if isinstance(text, str) else text
        return EncoderFingerprint.from_dict(data)
    except (json.JSONDecodeError, SauerkrautError) as exc:
        raise IndexCorruptedError(
            f"The encoder record of {where} is unreadable ({exc}). Rebuild the index, or "
            "restore it from a backup."
        ) from exc
