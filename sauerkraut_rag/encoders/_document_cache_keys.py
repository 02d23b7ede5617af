"""Keys of the document cache: which encoder made the vectors, and from which content.

* The encoder key is the SHA-256 of a canonical JSON record: the encoder's
  :class:`~sauerkraut_rag.encoders.fingerprint.EncoderFingerprint` (model, checkpoint
  content hash or revision, family, dim, processing), the compute dtype, the class, and
  the options that change document vectors without changing the checkpoint (ColBERT's
  settings such as the document length, page models' image options).
* The content key is the SHA-256 of what the encoder reads: a string's UTF-8 bytes; an
  image's file bytes (a path and the same bytes give the same key); a PIL image's mode,
  size and pixels. Anything else has no key and is always encoded.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

_VECTOR_OPTIONS = ("settings", "image_kwargs", "max_image_pixels", "mask_non_image_embeddings")
"""Encoder attributes that change document vectors for one checkpoint."""
_READ_CHUNK = 8 * 1024 * 1024


def encoder_key(encoder: Any) -> str | None:
    """Hex key of the encoder's document vectors, ``None`` when it has no fingerprint.

    Computed on every call (cheap: the fingerprint itself is cached by the encoder), so
    options changed on a live encoder change the key too.
    """
    try:
        fingerprint = encoder.fingerprint.to_dict()
    except Exception as exc:  # a custom encoder without a usable fingerprint: no caching
        logger.debug("encoder %r has no fingerprint (%s); documents not cached", encoder, exc)
        return None
    record = {
        "fingerprint": fingerprint,
        "class": f"{type(encoder).__module__}.{type(encoder).__qualname__}",
        "dtype": str(getattr(encoder, "dtype", "")),
        "options": {
            name: repr(getattr(encoder, name)) for name in _VECTOR_OPTIONS if hasattr(encoder, name)
        },
    }
    text = json.dumps(record, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def content_keys(items: list[Any], modality: str) -> list[str | None]:
    """Content keys of ``items`` as an encoder of ``modality`` reads them (``None``: no key).

    Text encoders read strings; page encoders read image paths, bytes and PIL images.
    """
    return [_text_key(i) if modality == "text" else _image_key(i) for i in items]


def _text_key(item: Any) -> str | None:
    if not isinstance(item, str):
        return None
    return hashlib.sha256(b"text\0" + item.encode("utf-8", "surrogatepass")).hexdigest()


def _image_key(item: Any) -> str | None:
    digest = hashlib.sha256(b"image\0")
    if isinstance(item, (bytes, bytearray, memoryview)):
        digest.update(item)
    elif isinstance(item, (str, Path)):
        if not _hash_file(digest, Path(item)):
            return None
    elif _is_pil_image(item):
        digest = hashlib.sha256(f"pil\0{item.mode}\0{item.size[0]}x{item.size[1]}\0".encode())
        digest.update(item.tobytes())
    else:
        return None
    return digest.hexdigest()


def _hash_file(digest: Any, path: Path) -> bool:
    """Feed the file's bytes to ``digest``; ``False`` if it cannot be read (no caching)."""
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(_READ_CHUNK):
                digest.update(chunk)
    except OSError:
        return False  # the encoder raises its own, clearer error for a bad path
    return True


def _is_pil_image(item: Any) -> bool:
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - pillow is a dependency
        return False
    return isinstance(item, Image.Image)
