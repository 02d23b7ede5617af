"""The ``qdrant_edge`` engine: Qdrant's Rust engine (the server's segments, HNSW, MaxSim and
filters) running in this process on one shard folder, with no server.

A collection ``NAME`` under ``path`` is the folder ``path/NAME``: the shard in ``shard/``
(Qdrant Edge's own format) and the collection metadata, which an edge shard does not
keep, in ``collection.json`` (written atomically).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from sauerkraut_rag._atomic import write_atomically
from sauerkraut_rag.errors import DependencyMissingError, IndexCorruptedError, IndexStoreError
from sauerkraut_rag.retrievers.qdrant.config import FDE_VECTOR, TOKENS_VECTOR, QdrantConfig
from sauerkraut_rag.retrievers.qdrant.edge_filters import to_edge_filter
from sauerkraut_rag.retrievers.qdrant.engine import CollectionInfo, QuerySpec, VectorInfo
from sauerkraut_rag.retrievers.qdrant.points import FILTER_KEY, PointData, StoredPoint

__all__ = ["EdgeEngine", "import_edge"]

SHARD_FOLDER = "shard"
METADATA_FILE = "collection.json"
_EDGE_CONFIG = "edge_config.json"


def import_edge() -> Any:
    """The ``qdrant_edge`` module, or a typed error naming the extra."""
    try:
        import qdrant_edge
    except ImportError as exc:
        raise DependencyMissingError(
            "engine='edge' needs qdrant-edge-py. Install it with "
            'pip install "sauerkraut-rag[qdrant]" (or pip install qdrant-edge-py).'
        ) from exc
    return qdrant_edge


class EdgeEngine:
    """One collection as a Qdrant Edge shard in ``root`` (``path/collection``)."""

    in_process = True

    def __init__(self, root: Path) -> None:
        from sauerkraut_rag.retrievers.qdrant.client import require_client

        require_client()  # filters are compiled with qdrant-client's models
        self.edge = import_edge()
        self.root = root
        self.location = str(root)
        self.shard: Any = None
        if (root / SHARD_FOLDER).is_dir():
            self.shard = self._call(self.edge.EdgeShard.load, str(root / SHARD_FOLDER))

    def _call(self, func: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (OSError, RuntimeError, ValueError) as exc:
            raise IndexStoreError(
                f"Qdrant Edge failed on {self.location}: {type(exc).__name__}: {exc}"
            ) from exc

    # ------------------------------------------------------------------ collection

    def read_collection(self) -> CollectionInfo | None:
        if self.shard is None:
            return None
        meta_path = self.root / METADATA_FILE
        config_path = self.root / SHARD_FOLDER / _EDGE_CONFIG
        try:
            metadata = json.loads(meta_path.read_text("utf-8")) if meta_path.is_file() else {}
            vectors = json.loads(config_path.read_text("utf-8")).get("vectors", {})
            described = {
                name: VectorInfo(
                    size=int(v["size"]),
                    distance=str(v["distance"]).lower(),
                    multivector=v.get("multivector_config") is not None,
                    datatype=None if v.get("datatype") is None else str(v["datatype"]).lower(),
                )
                for name, v in vectors.items()
            }
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise IndexCorruptedError(
                f"The Qdrant Edge collection at {self.root} is unreadable ({exc}). Restore it "
                "from a backup or copy it again from its source."
            ) from exc
        if not isinstance(metadata, dict):
            raise IndexCorruptedError(f"{meta_path} does not hold a JSON object.")
        points = self._call(self.shard.info).points_count
        return CollectionInfo(described, metadata, {"engine": "qdrant-edge", "points": points})

    def create_collection(
        self, config: QdrantConfig, metadata: dict[str, Any], cluster: dict[str, Any]
    ) -> None:
        e = self.edge
        cold = e.Memory.Cold if cluster.get("on_disk") else None
        tokens = e.EdgeVectorParams(
            size=config.dim,
            distance=e.Distance.Dot,
            multivector_config=e.MultiVectorConfig(e.MultiVectorComparator.MaxSim),
            datatype=e.VectorStorageDatatype.Float16
            if config.vector_dtype == "float16"
            else e.VectorStorageDatatype.Float32,
            hnsw_config=e.HnswIndexConfig(
                m=0, ef_construct=config.ef_construct, full_scan_threshold=10_000
            ),
            memory=cold,
        )
        quantization = None
        if config.quantization == "int8":
            quantization = e.ScalarQuantizationConfig(e.ScalarType.Int8, quantile=0.99)
        fde = e.EdgeVectorParams(
            size=config.fde_dim,
            distance=e.Distance.Cosine,
            hnsw_config=e.HnswIndexConfig(
                m=config.hnsw_m, ef_construct=config.ef_construct, full_scan_threshold=10_000
            ),
            quantization_config=quantization,
            memory=cold,
        )
        self.root.mkdir(parents=True, exist_ok=True)
        self.write_metadata(metadata)
        edge_config = e.EdgeConfig(vectors={TOKENS_VECTOR: tokens, FDE_VECTOR: fde})
        self.shard = self._call(e.EdgeShard.create, str(self.root / SHARD_FOLDER), edge_config)

    def write_metadata(self, metadata: dict[str, Any]) -> None:
        path = self.root / METADATA_FILE
        current: dict[str, Any] = {}
        if path.is_file():
            current = json.loads(path.read_text("utf-8"))
        for key, value in metadata.items():  # Qdrant's merge: top-level keys, null removes
            if value is None:
                current.pop(key, None)
            else:
                current[key] = value
        text = json.dumps(current, ensure_ascii=False, allow_nan=False, indent=1)
        write_atomically(path, lambda stream: stream.write(text.encode("utf-8")))

    # ------------------------------------------------------------------ points

    def upsert(self, points: list[PointData]) -> None:
        e = self.edge
        converted = [
            e.Point(
                p.uuid,
                {TOKENS_VECTOR: p.tokens.tolist(), FDE_VECTOR: p.fde.tolist()},
                p.payload,
            )
            for p in points
        ]
        self._call(self.shard.update, e.UpdateOperation.upsert_points(converted))

    def create_payload_index(self, field: str, kind: str) -> None:
        e = self.edge
        schema: Any = e.PayloadSchemaType.Float
        if kind == "keyword":
            schema = e.PayloadSchemaType.Keyword
        elif kind == "prefix":
            schema = e.KeywordIndexParams(prefix=True)
        self._call(self.shard.update, e.UpdateOperation.create_field_index(field, schema))

    def delete(self, uuids: list[str]) -> None:
        self._call(self.shard.update, self.edge.UpdateOperation.delete_points(list(uuids)))

    def retrieve(self, uuids: list[str], *, with_vectors: bool) -> list[StoredPoint]:
        records = self._call(
            self.shard.retrieve,
            list(uuids),
            with_payload=self._payload_selector(),
            with_vector=[TOKENS_VECTOR] if with_vectors else False,
        )
        return [_stored(r) for r in records]

    def count(self, flt: Any) -> int:
        request = self.edge.CountRequest(exact=True, filter=to_edge_filter(self.edge, flt))
        return int(self._call(self.shard.count, request))

    def scroll(
        self, limit: int, offset: str | None, *, flt: Any = None, with_metadata: bool = False
    ) -> tuple[list[StoredPoint], str | None]:
        request = self.edge.ScrollRequest(
            offset=offset,
            limit=limit,
            filter=to_edge_filter(self.edge, flt),
            with_payload=["doc_id", "metadata"] if with_metadata else ["doc_id"],
            with_vector=False,
        )
        records, following = self._call(self.shard.scroll, request)
        return [_stored(r) for r in records], None if following is None else str(following)

    def query(self, specs: list[QuerySpec]) -> list[list[StoredPoint]]:
        requests = [self._request(spec) for spec in specs]
        if len(requests) == 1:
            results = [self._call(self.shard.query, requests[0])]
        else:
            batch = self.edge.QueryBatchRequest(requests)
            results = self._call(self.shard.query_batch, batch)
        return [[_stored(p) for p in points] for points in results]

    def _request(self, spec: QuerySpec) -> Any:
        e = self.edge
        flt = to_edge_filter(e, spec.filter)
        query = e.Query.Nearest(spec.tokens.tolist(), using=TOKENS_VECTOR)
        if spec.fde is None:
            return e.QueryRequest(
                limit=spec.limit,
                query=query,
                filter=flt,
                params=e.SearchParams(exact=True),
                with_payload=self._payload_selector(),
            )
        prefetch = e.Prefetch(
            limit=spec.prefetch_limit,
            query=e.Query.Nearest(spec.fde.tolist(), using=FDE_VECTOR),
            filter=flt,
            params=e.SearchParams(hnsw_ef=spec.ef),
        )
        return e.QueryRequest(
            limit=spec.limit,
            query=query,
            prefetches=[prefetch],
            with_payload=self._payload_selector(),
        )

    def _payload_selector(self) -> Any:
        return self.edge.PayloadSelector.Exclude([FILTER_KEY])

    def close(self) -> None:
        if self.shard is not None:
            shard, self.shard = self.shard, None
            self._call(shard.flush)
            self._call(shard.close)


def _stored(record: Any) -> StoredPoint:
    vectors = record.vector
    tokens = None
    if isinstance(vectors, dict) and TOKENS_VECTOR in vectors:
        tokens = np.asarray(vectors[TOKENS_VECTOR], dtype=np.float32)
    score = getattr(record, "score", None)
    return StoredPoint(
        uuid=str(record.id),
        payload=dict(record.payload or {}),
        tokens=tokens,
        score=None if score is None else float(score),
    )
