"""Settings of a :class:`~sauerkraut_rag.retrievers.qdrant.index.QdrantIndex` collection.

Three kinds of options:

* **schema** (:data:`SCHEMA_FIELDS`): fixed when the collection is created and stored in
  its metadata, so every client encodes and stores vectors the same way: ``dim``,
  ``vector_dtype``, ``quantization``, ``fde`` (MUVERA), ``hnsw_m``, ``ef_construct``,
  ``pool_factor``, ``pool_protected_tokens``;
* **tunable** (:data:`TUNABLE_FIELDS`): search and write settings; the values given at
  creation are stored as the collection's defaults, and each client may override them
  (``QdrantIndex(..., candidates=256)`` or ``index.configure(...)``) without changing
  what other clients use;
* **cluster** (:data:`CLUSTER_FIELDS`): passed to Qdrant's ``create_collection`` when the
  collection is created (``shard_number``, ``replication_factor``,
  ``write_consistency_factor``, ``on_disk``); Qdrant itself keeps them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from sauerkraut_rag._checks import check_int, check_options
from sauerkraut_rag.errors import IndexFormatError, InvalidInputError, InvalidInputTypeError

__all__ = [
    "CLUSTER_FIELDS",
    "DEFAULT_FDE",
    "FORMAT_VERSION",
    "METADATA_KEY",
    "SCHEMA_FIELDS",
    "TUNABLE_FIELDS",
    "QdrantConfig",
]

FORMAT_VERSION = 1
"""Version of the layout this package writes (points, payload and collection metadata)."""
METADATA_KEY = "sauerkraut_rag"
"""Top-level key of the collection metadata that holds this package's record."""
TOKENS_VECTOR = "tokens"
"""Name of the multivector (MAX_SIM, no HNSW) holding each document's token vectors."""
FDE_VECTOR = "fde"
"""Name of the single vector (MUVERA encoding, HNSW) that proposes candidates."""

DEFAULT_FDE: dict[str, Any] = {
    "num_repetitions": 20,
    "num_simhash_projections": 4,
    "projection_dim": 16,
    "fill_empty_partitions": True,
    "final_projection_dim": None,
    "seed": 42,
}
"""MUVERA settings unless ``fde=`` overrides them (the same as ``VoyagerIndex``'s default:
20 x 16 x 16 = 5,120 floats per document)."""

VECTOR_DTYPES: tuple[str, ...] = ("float32", "float16")
QUANTIZATIONS: tuple[str | None, ...] = (None, "int8")
TUNABLE_FIELDS: tuple[str, ...] = (
    "exact_threshold",
    "candidates",
    "ef_search",
    "batch_size",
    "max_request_bytes",
)
CLUSTER_FIELDS: tuple[str, ...] = (
    "shard_number",
    "replication_factor",
    "write_consistency_factor",
    "on_disk",
)


@dataclass(frozen=True)
class QdrantConfig:
    """Every stored setting of a collection (see the module docstring for the kinds).

    * ``vector_dtype``: ``"float32"`` (default; scores equal exact MaxSim over the stored
      vectors within 1e-4) or ``"float16"`` (half the storage; Qdrant then rounds query
      vectors to float16 too, so this index does the same on every engine, and scores
      equal MaxSim of the float16-rounded query within 1e-4).
    * ``quantization``: ``None`` or ``"int8"`` (scalar quantization of the candidate vector
      in RAM, rescored by Qdrant; the token vectors are never quantized).
    * ``fde``: MUVERA parameters of the candidate vector (``dim`` is the index dim).
    * ``hnsw_m`` / ``ef_construct``: the candidate vector's HNSW graph.
    * ``exact_threshold``: with at most this many matching documents, search scores them
      all exactly (no candidate stage).
    * ``candidates``: documents proposed by the candidate vector and re-scored exactly.
    * ``ef_search``: HNSW search depth of the candidate stage.
    * ``batch_size`` / ``max_request_bytes``: points per write request, and the request
      size this client stays under (Qdrant's default ``max_request_size_mb`` is 32).
    * ``pool_factor`` / ``pool_protected_tokens``: index-time token pooling (``1`` = off).
    """

    dim: int
    vector_dtype: str = "float32"
    quantization: str | None = None
    fde: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_FDE))
    hnsw_m: int = 16
    ef_construct: int = 100
    pool_factor: int = 1
    pool_protected_tokens: int = 0
    exact_threshold: int = 1000
    candidates: int = 128
    ef_search: int = 128
    batch_size: int = 64
    max_request_bytes: int = 32 * 1024 * 1024

    def __post_init__(self) -> None:
        check_int("QdrantIndex option dim", self.dim, low=1)
        if self.vector_dtype not in VECTOR_DTYPES:
            raise InvalidInputError(
                f"Expected vector_dtype to be one of {list(VECTOR_DTYPES)}, got "
                f"{self.vector_dtype!r}."
            )
        if self.quantization not in QUANTIZATIONS:
            raise InvalidInputError(
                f"Expected quantization to be None or 'int8', got {self.quantization!r}."
            )
        check_int("QdrantIndex option hnsw_m", self.hnsw_m, low=4)
        for name, low in (
            ("ef_construct", 4),
            ("pool_factor", 1),
            ("pool_protected_tokens", 0),
            ("exact_threshold", 0),
            ("candidates", 1),
            ("ef_search", 1),
            ("batch_size", 1),
            ("max_request_bytes", 1024),
        ):
            check_int(f"QdrantIndex option {name}", getattr(self, name), low=low)
        if not isinstance(self.fde, dict):
            raise InvalidInputTypeError(
                f"Expected fde to be a dict of FDEConfig fields, got {type(self.fde).__name__}."
            )
        if "dim" in self.fde and self.fde["dim"] != self.dim:
            raise InvalidInputError(
                f"Expected fde['dim'] to equal the index dim {self.dim}, got {self.fde['dim']}. "
                "Leave it out: the index fills it in."
            )
        fde = {k: v for k, v in self.fde.items() if k != "dim"}
        object.__setattr__(self, "fde", {**DEFAULT_FDE, **fde})  # what is stored is complete
        self.fde_config()

    def fde_config(self) -> Any:
        """The :class:`~sauerkraut_rag.retrievers.muvera.FDEConfig` of the candidate vector."""
        from sauerkraut_rag.retrievers.muvera import FDEConfig

        names = {f.name for f in dataclasses.fields(FDEConfig)}
        unknown = set(self.fde) - names
        if unknown:
            raise InvalidInputError(
                f"Unknown fde option(s) {sorted(unknown)}; expected a subset of {sorted(names)}."
            )
        return FDEConfig(**{**self.fde, "dim": self.dim})

    @property
    def fde_dim(self) -> int:
        """Length of the candidate vector."""
        return int(self.fde_config().output_dim)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (what the collection metadata stores)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Any, *, where: str) -> QdrantConfig:
        """Rebuild a stored config; unknown keys mean a newer writer."""
        if not isinstance(data, dict) or "dim" not in data:
            raise IndexFormatError(
                f"The settings stored with {where} are unreadable: expected a dict with 'dim', "
                f"got {data!r:.200}. Recreate the collection."
            )
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise IndexFormatError(
                f"{where} stores settings this version does not know ({sorted(unknown)}); it "
                "was written by a newer sauerkraut-rag. Upgrade sauerkraut-rag."
            )
        return cls(**data)

    def replace(self, **changes: Any) -> QdrantConfig:
        """A copy with ``changes`` applied and validated."""
        return dataclasses.replace(self, **changes)


SCHEMA_FIELDS: tuple[str, ...] = tuple(
    f.name for f in dataclasses.fields(QdrantConfig) if f.name not in TUNABLE_FIELDS
)


def check_option_names(options: dict[str, Any]) -> None:
    """Reject unknown options (typos) with the list of valid names."""
    accepted = [f for f in (*SCHEMA_FIELDS, *TUNABLE_FIELDS, *CLUSTER_FIELDS) if f != "dim"]
    check_options(options, accepted, what="QdrantIndex")


def schema_clash(stored: QdrantConfig, options: dict[str, Any]) -> str | None:
    """A message when ``options`` contradict the stored schema of a collection."""
    stored_dict = stored.to_dict()
    clash = {
        key: value
        for key, value in options.items()
        if key in SCHEMA_FIELDS and stored_dict.get(key) != _normalised(key, value, stored)
    }
    if not clash:
        return None
    return (
        f"asked for {clash}, but the collection stores "
        f"{ {k: stored_dict.get(k) for k in clash} }. Only {list(TUNABLE_FIELDS)} may differ "
        "per client; use another collection name for other settings."
    )


def _normalised(key: str, value: Any, stored: QdrantConfig) -> Any:
    """``fde`` options compare with the stored defaults filled in."""
    if key == "fde" and isinstance(value, dict):
        return {**DEFAULT_FDE, **{k: v for k, v in value.items() if k != "dim"}}
    return value
