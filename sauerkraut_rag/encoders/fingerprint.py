"""``EncoderFingerprint``: how a set of stored vectors was made, so an index can refuse others.

Vectors from two encoders are only comparable when the same weights turned the same
inputs into the same kind of vectors.  A fingerprint records what decides that:

- ``model``: the hub id, or the folder name of a local checkpoint;
- ``family``: ``"colbert"``, ``"collfm2"`` or ``"colqwen3"``;
- ``dim``: the token vector dimension;
- ``processing``: how inputs were prepared where a family has variants (ColLFM2:
  ``"transformers-4.57"`` or ``"transformers-5"``), else ``None``;
- ``revision``: the hub commit of the checkpoint, when it was loaded by hub id;
- ``content_hash``: ``"sha256:<hex>"`` over the checkpoint's config and weight files,
  when known;
- ``pool_factor``: index-time token pooling of the stored document vectors (``1`` = none).

The model is identified by ``content_hash`` when both sides know it (a local copy of a
hub model then matches the hub id), else by ``revision`` (same ``model``), else by
``model``.

The dtype the encoder ran in (``float32``, ``bfloat16``) and its device are not part of
a fingerprint: they change rounding, not what the vectors mean.  bfloat16 page vectors
have a per-token cosine of about 0.9999 to the float32 ones and give the same top-10 for
nearly every query (see the README's precision table), so a bfloat16 encoder may query
or extend an index built in float32 and the other way round.

Pure data: no torch, safe to import from any layer; stored as JSON via
:meth:`to_dict` / :meth:`from_dict`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from sauerkraut_rag.errors import InvalidInputError, InvalidInputTypeError

__all__ = ["FINGERPRINT_FORMAT", "EncoderFingerprint"]

FINGERPRINT_FORMAT = 1
"""Version of the :meth:`EncoderFingerprint.to_dict` layout (stored as ``"format"``)."""

_OPTIONAL_STR = ("processing", "revision", "content_hash")


@dataclass(frozen=True)
class EncoderFingerprint:
    """What made a set of token vectors; equal fingerprints mean comparable vectors."""

    model: str
    family: str
    dim: int
    processing: str | None = None
    revision: str | None = None
    content_hash: str | None = None
    pool_factor: int = 1

    def __post_init__(self) -> None:
        for name in ("model", "family"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise InvalidInputTypeError(
                    f"Expected fingerprint {name} to be a non-empty str, got {value!r}."
                )
        for name in _OPTIONAL_STR:
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise InvalidInputTypeError(
                    f"Expected fingerprint {name} to be a str or None, got {value!r}."
                )
        for name in ("dim", "pool_factor"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidInputError(
                    f"Expected fingerprint {name} to be a positive int, got {value!r}."
                )

    # ------------------------------------------------------------------ persistence

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (with a ``"format"`` key) that :meth:`from_dict` reads back."""
        data: dict[str, Any] = {"format": FINGERPRINT_FORMAT}
        data.update({f.name: getattr(self, f.name) for f in fields(self)})
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EncoderFingerprint:
        """Rebuild a fingerprint from :meth:`to_dict` output; unknown keys are ignored.

        Raises :class:`~sauerkraut_rag.errors.InvalidInputError` for a newer format or
        missing fields, and :class:`~sauerkraut_rag.errors.InvalidInputTypeError` for
        wrongly typed values.
        """
        if not isinstance(data, Mapping):
            raise InvalidInputTypeError(f"Expected a fingerprint dict, got {type(data).__name__}.")
        version = data.get("format", FINGERPRINT_FORMAT)
        if not isinstance(version, int) or version > FINGERPRINT_FORMAT:
            raise InvalidInputError(
                f"Expected encoder fingerprint format <= {FINGERPRINT_FORMAT}, got {version!r}: "
                "it was written by a newer sauerkraut-rag. Upgrade sauerkraut-rag to read it."
            )
        missing = [k for k in ("model", "family", "dim") if k not in data]
        if missing:
            raise InvalidInputError(
                f"Expected an encoder fingerprint with model, family and dim; {missing} "
                f"missing in {dict(data)!r}."
            )
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    # ------------------------------------------------------------------ comparison

    def with_pooling(self, pool_factor: int) -> EncoderFingerprint:
        """The same fingerprint for vectors stored after ``pool_factor`` token pooling."""
        return replace(self, pool_factor=pool_factor)

    def same_model(self, other: EncoderFingerprint) -> bool:
        """Whether both name the same checkpoint (content hash, else revision, else name)."""
        if self.content_hash and other.content_hash:
            return self.content_hash == other.content_hash
        if self.model != other.model:
            return False
        if self.revision and other.revision:
            return self.revision == other.revision
        return True

    def describe_difference(self, other: EncoderFingerprint) -> str | None:
        """``None`` when vectors of ``other`` are comparable with ours, else what differs.

        The text names each differing field as ``field: <self> vs <other>``, e.g.
        ``"model: 'a/b' vs 'c/d'; dim: 128 vs 96"``.
        """
        parts: list[str] = []
        if not self.same_model(other):
            parts.append(f"model: {self._identity()} vs {other._identity()}")
        for name in ("family", "dim", "processing", "pool_factor"):
            mine, theirs = getattr(self, name), getattr(other, name)
            if mine != theirs:
                parts.append(f"{name}: {mine!r} vs {theirs!r}")
        return "; ".join(parts) or None

    def matches(self, other: EncoderFingerprint) -> bool:
        """``True`` when :meth:`describe_difference` finds nothing."""
        return self.describe_difference(other) is None

    def describe(self) -> str:
        """One line for logs and ``info`` output."""
        extras = [f"dim {self.dim}"]
        if self.processing:
            extras.append(f"processing {self.processing}")
        if self.revision:
            extras.append(f"revision {self.revision[:12]}")
        if self.content_hash:
            extras.append(f"content {self.content_hash[:19]}")
        if self.pool_factor != 1:
            extras.append(f"pool factor {self.pool_factor}")
        return f"{self.model} ({self.family}; {', '.join(extras)})"

    def _identity(self) -> str:
        detail = self.content_hash or self.revision
        return f"{self.model!r}" + (f" [{detail[:19]}]" if detail else "")
