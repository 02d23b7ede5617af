"""MUVERA fixed-dimensional encodings (FDE) of multi-vectors (Dhulipala et al., 2024).

A multi-vector ``(n_tokens, dim)`` becomes one vector of ``output_dim`` floats such that
``dot(encode_query(q), encode_document(d))`` approximates ``MaxSim(q, d)``. Per
repetition:

1. ``num_simhash_projections`` (``k``) Gaussian hyperplanes cut the space into ``2**k``
   partitions; a token's partition is its sign pattern read as a plain binary number
   (bit ``j`` = side of hyperplane ``j``). The paper's Gray-code labelling only permutes
   the blocks; both sides use the same labelling, so dot products are identical.
2. Token vectors are optionally compressed to ``projection_dim`` coordinates by a
   count sketch (AMS sketch: each input coordinate is added, with a random sign, to one
   random output coordinate; unbiased for inner products).
3. Queries store the SUM of their (projected) tokens per partition, documents the MEAN.
   With ``fill_empty_partitions`` a document's empty partition takes the token whose
   sign pattern is nearest (Hamming distance; ties to the earlier token).

The blocks of all repetitions are concatenated (``num_repetitions * 2**k *
projection_dim`` floats) and optionally compressed once more to
``final_projection_dim`` by a count sketch.

Size versus fidelity: the paper's best settings (20 repetitions, k = 5, 16-dim
projections) give 10,240 floats. Single-vector stores work best with a few thousand, so
the defaults are 20 repetitions x 16 partitions x 8 dims = 2,560 floats; raise
``num_repetitions`` or ``projection_dim`` for better fidelity at proportionally more
memory (see ``benchmarks/`` and the tests for measured rank correlation).

Random matrices come from ``numpy.random.RandomState(seed)``, whose streams NumPy keeps
stable across versions, so a stored :class:`FDEConfig` reproduces the same encoder.
Document FDEs are not unit-length: compare them with inner product, not cosine.
Multi-vectors with 0 tokens are rejected with :class:`InvalidInputError`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from sauerkraut_rag._checks import check_int
from sauerkraut_rag.errors import InvalidInputError, InvalidInputTypeError
from sauerkraut_rag.retrievers import _half
from sauerkraut_rag.retrievers._arrays import validate_multivectors

__all__ = ["FDEConfig", "MuveraEncoder"]

FloatArray = npt.NDArray[np.float32]

_MAX_SIMHASH_BITS = 12
_BATCH_TOKENS = 16384
"""Tokens encoded per internal batch (bounds the temporary arrays)."""


def _check_int(name: str, value: Any, *, low: int, high: int | None = None) -> None:
    check_int(f"FDEConfig.{name}", value, low=low, high=high)


@dataclass(frozen=True)
class FDEConfig:
    """Parameters of a MUVERA encoder; JSON-serialisable via :meth:`to_dict`."""

    dim: int = 128
    num_repetitions: int = 20
    num_simhash_projections: int = 4
    projection_dim: int | None = 8
    fill_empty_partitions: bool = True
    final_projection_dim: int | None = None
    seed: int = 42

    def __post_init__(self) -> None:
        _check_int("dim", self.dim, low=1)
        _check_int("num_repetitions", self.num_repetitions, low=1)
        _check_int(
            "num_simhash_projections", self.num_simhash_projections, low=0, high=_MAX_SIMHASH_BITS
        )
        for name in ("projection_dim", "final_projection_dim"):
            if getattr(self, name) is not None:
                _check_int(name, getattr(self, name), low=1)
        _check_int("seed", self.seed, low=0, high=2**32 - 1)
        if not isinstance(self.fill_empty_partitions, bool):
            raise InvalidInputTypeError(
                "Expected FDEConfig.fill_empty_partitions to be a bool, got "
                f"{type(self.fill_empty_partitions).__name__}."
            )

    @property
    def num_partitions(self) -> int:
        """Partitions per repetition: ``2 ** num_simhash_projections``."""
        return 2**self.num_simhash_projections

    @property
    def block_dim(self) -> int:
        """Floats stored per partition (``projection_dim`` or ``dim``)."""
        return self.projection_dim if self.projection_dim is not None else self.dim

    @property
    def raw_dim(self) -> int:
        """Length before the final projection: repetitions x partitions x block_dim."""
        return self.num_repetitions * self.num_partitions * self.block_dim

    @property
    def output_dim(self) -> int:
        """Length of every encoding."""
        return self.final_projection_dim if self.final_projection_dim else self.raw_dim

    def to_dict(self) -> dict[str, Any]:
        """All fields as a JSON-serialisable dict (round-trips through :meth:`from_dict`)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> FDEConfig:
        """Rebuild a config written by :meth:`to_dict`; every field must be present."""
        if not isinstance(data, dict):
            raise InvalidInputTypeError(
                f"Expected a dict from FDEConfig.to_dict(), got {type(data).__name__}."
            )
        names = {f.name for f in dataclasses.fields(cls)}
        unknown, missing = set(data) - names, names - set(data)
        if unknown or missing:
            raise InvalidInputError(
                f"Expected exactly the FDEConfig keys {sorted(names)}; unknown keys "
                f"{sorted(unknown)}, missing keys {sorted(missing)}. Store config.to_dict()."
            )
        return cls(**data)


class MuveraEncoder:
    """Encode multi-vectors into MUVERA FDEs of shape ``(output_dim,)``.

    ``MuveraEncoder(dim=96, seed=7)`` overrides single fields of the default config.
    """

    def __init__(self, config: FDEConfig | None = None, **overrides: Any) -> None:
        if config is not None and not isinstance(config, FDEConfig):
            raise InvalidInputTypeError(
                f"Expected config to be an FDEConfig or None, got {type(config).__name__}."
            )
        base = config if config is not None else FDEConfig()
        unknown = set(overrides) - {f.name for f in dataclasses.fields(FDEConfig)}
        if unknown:
            raise InvalidInputError(
                f"Unknown FDEConfig field(s) {sorted(unknown)}; see FDEConfig for the fields."
            )
        self.config: FDEConfig = dataclasses.replace(base, **overrides)
        self.output_dim: int = self.config.output_dim
        self._draw_random_maps()

    def __repr__(self) -> str:
        return f"MuveraEncoder({self.config!r})"

    def _draw_random_maps(self) -> None:
        """Draw hyperplanes, inner and final count sketches, in a fixed order."""
        cfg = self.config
        rng = np.random.RandomState(cfg.seed)
        reps, bits = cfg.num_repetitions, cfg.num_simhash_projections
        self._hyperplanes = rng.standard_normal((cfg.dim, reps * bits)).astype(np.float32)
        self._projection: FloatArray | None = None
        if cfg.projection_dim is not None:
            buckets = rng.randint(0, cfg.projection_dim, size=(reps, cfg.dim))
            signs = rng.choice(np.array([-1.0, 1.0], dtype=np.float32), size=(reps, cfg.dim))
            projection = np.zeros((cfg.dim, reps, cfg.projection_dim), dtype=np.float32)
            projection[np.arange(cfg.dim)[None, :], np.arange(reps)[:, None], buckets] = signs
            self._projection = projection.reshape(cfg.dim, reps * cfg.projection_dim)
        self._final: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None
        if cfg.final_projection_dim is not None:
            buckets = rng.randint(0, cfg.final_projection_dim, size=cfg.raw_dim)
            signs = rng.choice(np.array([-1.0, 1.0], dtype=np.float32), size=cfg.raw_dim)
            order = np.argsort(buckets, kind="stable")
            sorted_buckets = buckets[order]
            starts = np.flatnonzero(np.r_[True, sorted_buckets[1:] != sorted_buckets[:-1]])
            self._final = (order, signs[order], starts, sorted_buckets[starts])
        # bit weights turn sign patterns into partition ids; popcounts give Hamming distances
        self._bit_weights = (1 << np.arange(bits, dtype=np.int64)).astype(np.int64)
        self._popcount = np.array(
            [bin(p).count("1") for p in range(cfg.num_partitions)], dtype=np.int64
        )

    # ------------------------------------------------------------------ public API

    def encode_queries(self, multivectors: Sequence[np.ndarray]) -> np.ndarray:
        """Query FDEs (per-partition sums): ``(n, output_dim)`` float32."""
        return self._encode(multivectors, is_query=True)

    def encode_documents(self, multivectors: Sequence[np.ndarray]) -> np.ndarray:
        """Document FDEs (per-partition means, empty partitions filled): ``(n, output_dim)``."""
        return self._encode(multivectors, is_query=False)

    def encode_query(self, multivector: np.ndarray) -> np.ndarray:
        """One query ``(n_tokens, dim)`` -> ``(output_dim,)`` float32."""
        return self._encode([multivector], is_query=True)[0]

    def encode_document(self, multivector: np.ndarray) -> np.ndarray:
        """One document ``(n_tokens, dim)`` -> ``(output_dim,)`` float32."""
        return self._encode([multivector], is_query=False)[0]

    # ------------------------------------------------------------------ internals

    def _encode(self, multivectors: Sequence[np.ndarray], *, is_query: bool) -> np.ndarray:
        what = "queries" if is_query else "documents"
        arrays, _ = validate_multivectors(multivectors, what=what, dim=self.config.dim)
        for i, array in enumerate(arrays):
            if array.shape[0] == 0:
                raise InvalidInputError(
                    f"Expected every multi-vector in {what} to have at least one token, but "
                    f"{what}[{i}] has 0. Drop empty inputs before encoding."
                )
        out = np.empty((len(arrays), self.output_dim), dtype=np.float32)
        start = 0
        while start < len(arrays):
            stop, tokens = start + 1, arrays[start].shape[0]
            while stop < len(arrays) and tokens + arrays[stop].shape[0] <= _BATCH_TOKENS:
                tokens += arrays[stop].shape[0]
                stop += 1
            raw = self._encode_raw(arrays[start:stop], is_query=is_query)
            out[start:stop] = self._final_projection(raw)
            start = stop
        return out

    def _encode_raw(self, arrays: list[np.ndarray], *, is_query: bool) -> FloatArray:
        """FDEs before the final projection: ``(n, raw_dim)``."""
        cfg = self.config
        reps, n_parts, width = cfg.num_repetitions, cfg.num_partitions, cfg.block_dim
        lengths = np.array([a.shape[0] for a in arrays])
        tokens = np.concatenate(arrays, axis=0, dtype=np.float32)  # (T, dim)
        item = np.repeat(np.arange(len(arrays)), lengths)  # (T,)
        signs = (
            _half.matmul(tokens, self._hyperplanes).reshape(-1, reps, cfg.num_simhash_projections)
            > 0
        )
        partition = signs.astype(np.int64) @ self._bit_weights  # (T, reps)
        values = tokens if self._projection is None else _half.matmul(tokens, self._projection)
        starts = np.r_[0, np.cumsum(lengths)[:-1]]

        raw = np.empty((len(arrays), reps, n_parts, width), dtype=np.float32)
        for rep in range(reps):  # loop over repetitions only; tokens are vectorised
            rep_values = (
                values if self._projection is None else values[:, rep * width : (rep + 1) * width]
            )
            keys = item * n_parts + partition[:, rep]
            counts = np.bincount(keys, minlength=len(arrays) * n_parts)
            block = _segment_sums(keys, rep_values, len(arrays) * n_parts)
            if not is_query:
                block /= np.maximum(counts, 1)[:, None]
                if cfg.fill_empty_partitions and np.any(counts == 0):
                    nearest = self._nearest_tokens(partition[:, rep], starts)  # (n, n_parts)
                    empty = counts == 0
                    block[empty] = rep_values[nearest.reshape(-1)[empty]]
            raw[:, rep] = block.reshape(len(arrays), n_parts, width)
        return raw.reshape(len(arrays), -1)

    def _nearest_tokens(self, partition: np.ndarray, starts: np.ndarray) -> np.ndarray:
        """Per item and partition, the item's token with the nearest sign pattern.

        ``partition (T,)`` holds each token's partition id for one repetition. Returns
        global token indices ``(n_items, n_partitions)``; ties go to the earlier token.
        """
        n_tokens = partition.shape[0]
        all_parts = np.arange(self.config.num_partitions, dtype=np.int64)
        distance = self._popcount[partition[:, None] ^ all_parts[None, :]]  # (T, P)
        key = distance * n_tokens + np.arange(n_tokens, dtype=np.int64)[:, None]
        return np.minimum.reduceat(key, starts, axis=0) % n_tokens

    def _final_projection(self, raw: FloatArray) -> FloatArray:
        """Count-sketch ``raw (n, raw_dim)`` to ``(n, final_projection_dim)`` if configured."""
        if self._final is None:
            return raw
        order, signs, starts, buckets = self._final
        out = np.zeros((raw.shape[0], self.output_dim), dtype=np.float32)
        out[:, buckets] = np.add.reduceat(raw[:, order] * signs, starts, axis=1)
        return out


def _segment_sums(keys: np.ndarray, values: np.ndarray, n_segments: int) -> FloatArray:
    """Sum the rows of ``values (T, w)`` by ``keys (T,)`` into ``(n_segments, w)`` float32."""
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    first = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
    out = np.zeros((n_segments, values.shape[1]), dtype=np.float32)
    out[sorted_keys[first]] = np.add.reduceat(values[order], first, axis=0)
    return out
