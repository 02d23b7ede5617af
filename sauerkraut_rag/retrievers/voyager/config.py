"""Persisted configuration of a :class:`~sauerkraut_rag.retrievers.voyager.index.VoyagerIndex`."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from sauerkraut_rag._checks import check_int, check_options
from sauerkraut_rag.errors import InvalidInputError, InvalidInputTypeError

Strategy = Literal["tokens", "fde"]
STRATEGIES: tuple[str, ...] = ("tokens", "fde")
HNSW_STORAGES: tuple[str, ...] = ("float32", "float8", "e4m3")
VECTOR_DTYPES: tuple[str, ...] = ("float16", "float32")

# Search-time settings: may be changed on an open index with VoyagerIndex.configure().
TUNABLE_FIELDS: tuple[str, ...] = (
    "exact_threshold",
    "ef_search",
    "candidates",
    "token_k",
    "cell_candidates",
    "cell_probes",
)
PRE_CELLS_DEFAULTS: dict[str, Any] = {"cell_candidates": 0}
"""Stored configs without these keys predate token cells and keep searching without them
(``index.configure(cell_candidates=128)`` turns them on)."""

DEFAULT_FDE: dict[str, Any] = {
    "num_repetitions": 20,
    "num_simhash_projections": 4,
    "projection_dim": 16,
    "fill_empty_partitions": True,
    "final_projection_dim": None,
    "seed": 42,
}
"""MUVERA settings of the ``"fde"`` strategy unless ``fde=`` overrides them: 20 x 16 x 16
= 5,120 floats per document (see ``benchmarks/RESULTS.md`` for the measured recall)."""


def _int_field(name: str, value: Any, *, low: int) -> None:
    check_int(f"index option {name}", value, low=low)


def _choice_field(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise InvalidInputError(
            f"Expected index option {name} to be one of {list(choices)}, got {value!r}."
        )


@dataclass(frozen=True)
class IndexConfig:
    """Every setting of an index; stored as JSON in the index's SQLite database.

    * ``strategy``: ``"fde"`` (one MUVERA vector per document in HNSW) or ``"tokens"``
      (every token vector in HNSW, as PyLate does).
    * ``vector_dtype``: storage dtype of the full-precision token store used for
      exact scoring (``"float16"`` halves the size; scores agree to ~1e-3).
    * ``storage``: HNSW vector storage: ``"float32"``, ``"float8"`` (8-bit fixed point) or
      ``"e4m3"`` (8-bit float); 8-bit cuts graph vectors 4x. Default: ``"float8"`` for
      ``"fde"`` (FDE vectors are normalised and scaled so their entries use the 8-bit range,
      and compared by Euclidean distance, which ranks like cosine; measured: recall as
      float32 and inserts as fast, while e4m3 inserted 3x slower), ``"float32"`` for
      ``"tokens"`` (e4m3 made the token graph build 2.6x slower).
    * ``hnsw_m`` / ``ef_construction``: HNSW graph degree and build depth. Default
      ``ef_construction``: 64 for ``"fde"`` (a few thousand to tens of thousands of
      vectors; measured recall equal to 200 at a third of the insert time), 200 for
      ``"tokens"`` (as PyLate).
    * ``ef_search``: HNSW search depth (raised to the number of requested neighbours).
    * ``exact_threshold``: with at most this many (matching) documents, search skips
      HNSW and scores every document exactly. A filtered ``"fde"`` search compares
      costs instead: exact above the threshold when cheaper, approximate at or below
      it only when exact scoring costs over 1.25x as much (see ``search.py``).
    * ``candidates``: documents re-scored exactly per query on the approximate path, from
      the HNSW graph (``0``: none; for ``"fde"`` the token cells still supply theirs).
    * ``cell_candidates`` / ``cell_probes``: ``"fde"`` strategy: documents that the token
      cells (see ``voyager/cells.py``) add to the exact re-scoring, and cells probed per
      query token. Default 128 / 4 for ``"fde"``, 0 (off) for ``"tokens"`` and for
      indexes created before cells existed. The two sources together hold recall@10
      >= 0.99 on every corpus of ``benchmarks/corpus_family.py`` where FDEs alone fell to
      0.71 (see ``benchmarks/RESULTS.md``).
    * ``token_k``: ``"tokens"`` strategy only: HNSW neighbours fetched per query token.
    * ``pool_factor`` / ``pool_protected_tokens``: index-time token pooling
      (``1`` = off); the first ``pool_protected_tokens`` tokens are kept unpooled.
    * ``fde``: MUVERA parameters (``dim`` is always the index dim). FDE vectors are
      compared by cosine in HNSW (measured: better recall than inner product).
    """

    dim: int
    strategy: str = "fde"
    vector_dtype: str = "float16"
    storage: str | None = None
    hnsw_m: int = 16
    ef_construction: int | None = None
    ef_search: int = 128
    exact_threshold: int = 1000
    candidates: int = 128
    token_k: int = 32
    cell_candidates: int | None = None
    cell_probes: int = 4
    pool_factor: int = 1
    pool_protected_tokens: int = 0
    fde: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_FDE))
    seed: int = 1

    def __post_init__(self) -> None:
        _int_field("dim", self.dim, low=1)
        _choice_field("strategy", self.strategy, STRATEGIES)
        fde = self.strategy == "fde"
        if self.storage is None:  # resolved defaults are what gets stored
            object.__setattr__(self, "storage", "float8" if fde else "float32")
        if self.ef_construction is None:
            object.__setattr__(self, "ef_construction", 64 if fde else 200)
        if self.cell_candidates is None:
            object.__setattr__(self, "cell_candidates", 128 if fde else 0)
        _choice_field("vector_dtype", self.vector_dtype, VECTOR_DTYPES)
        _choice_field("storage", self.storage, HNSW_STORAGES)
        _int_field("hnsw_m", self.hnsw_m, low=2)
        _int_field("ef_construction", self.ef_construction, low=1)
        _int_field("ef_search", self.ef_search, low=1)
        _int_field("exact_threshold", self.exact_threshold, low=0)
        _int_field("candidates", self.candidates, low=0)
        _int_field("token_k", self.token_k, low=1)
        _int_field("cell_candidates", self.cell_candidates, low=0)
        _int_field("cell_probes", self.cell_probes, low=1)
        _int_field("pool_factor", self.pool_factor, low=1)
        _int_field("pool_protected_tokens", self.pool_protected_tokens, low=0)
        _int_field("seed", self.seed, low=0)
        if not isinstance(self.fde, dict):
            raise InvalidInputTypeError(
                f"Expected index option fde to be a dict of FDEConfig fields, got "
                f"{type(self.fde).__name__}."
            )
        if "dim" in self.fde and self.fde["dim"] != self.dim:
            raise InvalidInputError(
                f"Expected fde['dim'] to equal the index dim {self.dim}, got {self.fde['dim']}. "
                "Leave it out: the index fills it in."
            )
        self.fde_config()  # validates the MUVERA fields

    def fde_config(self) -> Any:
        """The :class:`~sauerkraut_rag.retrievers.muvera.FDEConfig` of this index."""
        from sauerkraut_rag.retrievers.muvera import FDEConfig

        fields = {f.name for f in dataclasses.fields(FDEConfig)}
        unknown = set(self.fde) - fields
        if unknown:
            raise InvalidInputError(
                f"Unknown fde option(s) {sorted(unknown)}; expected a subset of {sorted(fields)}."
            )
        return FDEConfig(**{**self.fde, "dim": self.dim})

    @property
    def hnsw_dim(self) -> int:
        """Dimension of the vectors in HNSW: ``dim`` (tokens) or the FDE length (fde)."""
        return self.dim if self.strategy == "tokens" else int(self.fde_config().output_dim)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (round-trips through :meth:`from_dict`)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> IndexConfig:
        """Rebuild a stored config; unknown keys are rejected, missing ones take their
        defaults, except :data:`PRE_CELLS_DEFAULTS` (older indexes keep their behaviour)."""
        if not isinstance(data, dict):
            raise InvalidInputTypeError(f"Expected a config dict, got {type(data).__name__}.")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown or "dim" not in data:
            raise InvalidInputError(
                f"Expected index config keys from {sorted(names)} including 'dim'; "
                f"got unknown keys {sorted(unknown)}."
            )
        return cls(**{**PRE_CELLS_DEFAULTS, **data})

    def replace(self, **changes: Any) -> IndexConfig:
        """A copy with ``changes`` applied and validated."""
        return dataclasses.replace(self, **changes)


def check_option_names(options: dict[str, Any]) -> None:
    """Reject unknown creation options (typos) with the list of valid names (see IndexConfig)."""
    check_options(
        options,
        [f.name for f in dataclasses.fields(IndexConfig) if f.name != "dim"],
        what="the index",
    )


def fixed_option_clash(config: IndexConfig, options: dict[str, Any]) -> str | None:
    """A message if ``options`` contradict settings that cannot change after creation."""
    stored = config.to_dict()
    clash = {k: v for k, v in options.items() if k not in TUNABLE_FIELDS and stored.get(k) != v}
    if not clash:
        return None
    return (
        f"got {clash}, stored { ({k: stored.get(k) for k in clash}) }. Only "
        f"{list(TUNABLE_FIELDS)} can change after creation (index.configure(...))."
    )
