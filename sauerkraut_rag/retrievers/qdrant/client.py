"""The ``qdrant_client`` engine: a Qdrant server or cluster, or the client's local mode.

Local mode (``path=`` or ``location=":memory:"``) is qdrant-client's pure-Python
implementation of the same API: every search is a NumPy scan (no HNSW), and a ``path``
folder is written by qdrant-client in its own format (points are pickled into SQLite by
qdrant-client), so open only local folders you trust. A server keeps its own storage.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

from sauerkraut_rag.errors import (
    DependencyMissingError,
    IndexAuthenticationError,
    IndexConnectionError,
    IndexStoreError,
)
from sauerkraut_rag.retrievers.qdrant.config import FDE_VECTOR, TOKENS_VECTOR, QdrantConfig
from sauerkraut_rag.retrievers.qdrant.engine import CollectionInfo, QuerySpec, VectorInfo
from sauerkraut_rag.retrievers.qdrant.points import FILTER_KEY, PointData, StoredPoint

__all__ = ["ClientEngine", "connect", "require_client"]

logger = logging.getLogger(__name__)

_AUTH_CODES = (401, 403)


def require_client() -> Any:
    """The ``qdrant_client`` module, or a typed error naming the extra to install."""
    try:
        import qdrant_client
    except ImportError as exc:
        raise DependencyMissingError(
            'QdrantIndex needs qdrant-client. Install it with pip install "sauerkraut-rag[qdrant]".'
        ) from exc
    return qdrant_client


def connect(
    *,
    url: str | None,
    api_key: str | None,
    path: str | None,
    location: str | None,
    client_options: dict[str, Any],
) -> Any:
    """A new ``QdrantClient`` for exactly one of ``url``, ``path`` or ``location``."""
    QdrantClient = require_client().QdrantClient

    where = url or path or location or "?"
    with translate_errors(where):
        if url is not None:
            return QdrantClient(url=url, api_key=api_key, **client_options)
        if api_key is not None:
            raise IndexStoreError(
                "api_key only applies to a server (url=...); local mode has no authentication."
            )
        if path is not None:
            return QdrantClient(path=path, **client_options)
        return QdrantClient(location=location, **client_options)


@contextlib.contextmanager
def translate_errors(where: str) -> Iterator[None]:
    """Turn qdrant-client, HTTP and gRPC failures into the package's typed errors."""
    try:
        yield
    except IndexStoreError:
        raise
    except Exception as exc:  # the client raises many unrelated types; map the known ones
        raise _typed(exc, where) from exc


def _typed(exc: Exception, where: str) -> Exception:
    from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

    if isinstance(exc, UnexpectedResponse):
        if exc.status_code in _AUTH_CODES:
            return _auth_error(where, f"HTTP {exc.status_code}")
        detail = exc.content.decode("utf-8", "replace")[:300] if exc.content else ""
        return IndexStoreError(
            f"Qdrant at {where} answered HTTP {exc.status_code} {exc.reason_phrase}: {detail}"
        )
    if isinstance(exc, ResponseHandlingException) or _is_network(exc):
        return IndexConnectionError(
            f"Cannot reach Qdrant at {where} ({_reason(exc)}). Check the URL and port (REST "
            "6333, gRPC 6334), that the server runs (docker run -p 6333:6333 qdrant/qdrant), "
            "and that no firewall or proxy blocks it."
        )
    grpc_code = _grpc_code(exc)
    if grpc_code in ("UNAUTHENTICATED", "PERMISSION_DENIED"):
        return _auth_error(where, f"gRPC {grpc_code}")
    if grpc_code in ("UNAVAILABLE", "DEADLINE_EXCEEDED"):
        return IndexConnectionError(
            f"Cannot reach Qdrant at {where} over gRPC ({grpc_code}). Check the URL and port "
            "(gRPC 6334) and that the server runs."
        )
    if isinstance(exc, RuntimeError) and "already accessed" in str(exc):
        return IndexStoreError(
            f"The local Qdrant folder {where} is open in another QdrantClient ({exc}). Local "
            "mode allows one client per folder: close the other one, pass that client as "
            "client=..., or run a Qdrant server for concurrent access."
        )
    return IndexStoreError(f"Qdrant at {where} failed: {type(exc).__name__}: {exc}")


def _auth_error(where: str, status: str) -> IndexAuthenticationError:
    return IndexAuthenticationError(
        f"Qdrant at {where} refused the request ({status}): the API key is missing or wrong. "
        "Set QDRANT_API_KEY (or api_key=...) to a key of this cluster (Qdrant Cloud: Data "
        "Access Control; self-hosted: service.api_key in the server config)."
    )


def _is_network(exc: Exception) -> bool:
    try:
        import httpx
    except ImportError:  # pragma: no cover - qdrant-client depends on httpx
        return isinstance(exc, ConnectionError)
    return isinstance(exc, (httpx.TransportError, ConnectionError))


def _reason(exc: Exception) -> str:
    source = getattr(exc, "source", None)
    return f"{type(source or exc).__name__}: {source or exc}"[:300]


def _grpc_code(exc: Exception) -> str | None:
    code = getattr(exc, "code", None)
    if not callable(code):
        return None
    try:
        value = code()
    except Exception:  # not a gRPC error after all
        return None
    return str(getattr(value, "name", value))


class ClientEngine:
    """One collection behind a ``qdrant_client.QdrantClient``."""

    def __init__(self, client: Any, collection: str, *, owned: bool, location: str) -> None:
        self.client = client
        self.collection = collection
        self.owned = owned
        self.location = location
        self.in_process = _is_local(client)

    # ------------------------------------------------------------------ collection

    def read_collection(self) -> CollectionInfo | None:
        with translate_errors(self.location):
            if not self.client.collection_exists(self.collection):
                return None
            info = self.client.get_collection(self.collection)
        params = info.config.params
        vectors = params.vectors if isinstance(params.vectors, dict) else {"": params.vectors}
        described = {
            name: VectorInfo(
                size=int(v.size),
                distance=str(getattr(v.distance, "value", v.distance)).lower(),
                multivector=v.multivector_config is not None,
                datatype=None if v.datatype is None else str(v.datatype.value).lower(),
            )
            for name, v in (vectors or {}).items()
            if v is not None
        }
        details = {
            "shard_number": params.shard_number,
            "replication_factor": params.replication_factor,
            "write_consistency_factor": params.write_consistency_factor,
            "status": str(getattr(info.status, "value", info.status)),
            "max_vectors": _strict_max_vectors(info.config),
        }
        return CollectionInfo(described, dict(info.config.metadata or {}), details)

    def create_collection(
        self, config: QdrantConfig, metadata: dict[str, Any], cluster: dict[str, Any]
    ) -> None:
        from qdrant_client import models

        on_disk = cluster.get("on_disk")
        tokens = models.VectorParams(
            size=config.dim,
            distance=models.Distance.DOT,
            multivector_config=models.MultiVectorConfig(
                comparator=models.MultiVectorComparator.MAX_SIM
            ),
            hnsw_config=models.HnswConfigDiff(m=0),  # reranking only: no graph
            datatype=models.Datatype.FLOAT16
            if config.vector_dtype == "float16"
            else models.Datatype.FLOAT32,
            on_disk=on_disk,
        )
        quantization = None
        if config.quantization == "int8":
            quantization = models.ScalarQuantization(
                scalar=models.ScalarQuantizationConfig(
                    type=models.ScalarType.INT8, quantile=0.99, always_ram=True
                )
            )
        fde = models.VectorParams(
            size=config.fde_dim,
            distance=models.Distance.COSINE,
            hnsw_config=models.HnswConfigDiff(m=config.hnsw_m, ef_construct=config.ef_construct),
            quantization_config=quantization,
            on_disk=on_disk,
        )
        with translate_errors(self.location):
            self.client.create_collection(
                self.collection,
                vectors_config={TOKENS_VECTOR: tokens, FDE_VECTOR: fde},
                shard_number=cluster.get("shard_number"),
                replication_factor=cluster.get("replication_factor"),
                write_consistency_factor=cluster.get("write_consistency_factor"),
                on_disk_payload=on_disk,
                metadata=metadata,
            )

    def drop_collection(self) -> None:
        """Delete the collection (used to undo a creation the server could not complete)."""
        with translate_errors(self.location):
            self.client.delete_collection(self.collection)

    def write_metadata(self, metadata: dict[str, Any]) -> None:
        with translate_errors(self.location):
            self.client.update_collection(self.collection, metadata=metadata)

    # ------------------------------------------------------------------ points

    def upsert(self, points: list[PointData]) -> None:
        from qdrant_client import models

        structs = [
            models.PointStruct(
                id=p.uuid,
                vector={TOKENS_VECTOR: p.tokens.tolist(), FDE_VECTOR: p.fde.tolist()},
                payload=p.payload,
            )
            for p in points
        ]
        with translate_errors(self.location):
            self.client.upsert(self.collection, points=structs, wait=True)

    def create_payload_index(self, field: str, kind: str) -> None:
        from qdrant_client import models

        if self.in_process:  # local mode has no payload indexes (it scans)
            logger.debug("local mode: no payload index for %s", field)
            return
        schema: Any = models.FloatIndexParams(type=models.FloatIndexType.FLOAT)
        if kind != "float":
            schema = models.KeywordIndexParams(
                type=models.KeywordIndexType.KEYWORD, prefix=True if kind == "prefix" else None
            )
        with translate_errors(self.location):
            self.client.create_payload_index(self.collection, field, field_schema=schema)

    def delete(self, uuids: list[str]) -> None:
        from qdrant_client import models

        with translate_errors(self.location):
            self.client.delete(
                self.collection, points_selector=models.PointIdsList(points=uuids), wait=True
            )

    def retrieve(self, uuids: list[str], *, with_vectors: bool) -> list[StoredPoint]:
        with translate_errors(self.location):
            records = self.client.retrieve(
                self.collection,
                ids=uuids,
                with_payload=_without_filter_fields(),
                with_vectors=[TOKENS_VECTOR] if with_vectors else False,
            )
        return [_stored(r) for r in records]

    def count(self, flt: Any) -> int:
        with translate_errors(self.location):
            return int(self.client.count(self.collection, count_filter=flt, exact=True).count)

    def scroll(
        self, limit: int, offset: str | None, *, flt: Any = None, with_metadata: bool = False
    ) -> tuple[list[StoredPoint], str | None]:
        with translate_errors(self.location):
            records, following = self.client.scroll(
                self.collection,
                scroll_filter=flt,
                limit=limit,
                offset=offset,
                with_payload=["doc_id", "metadata"] if with_metadata else ["doc_id"],
                with_vectors=False,
            )
        return [_stored(r) for r in records], None if following is None else str(following)

    def query(self, specs: list[QuerySpec]) -> list[list[StoredPoint]]:
        from qdrant_client import models

        parts = [_query_parts(models, spec, local=self.in_process) for spec in specs]
        with translate_errors(self.location):
            if len(parts) == 1:  # one search: one query_points call
                one = parts[0]
                responses = [
                    self.client.query_points(
                        self.collection,
                        query=one["query"],
                        using=one["using"],
                        prefetch=one.get("prefetch"),
                        query_filter=one.get("filter"),
                        search_params=one.get("params"),
                        limit=one["limit"],
                        with_payload=one["with_payload"],
                    )
                ]
            else:
                requests = [models.QueryRequest(**p) for p in parts]
                responses = self.client.query_batch_points(self.collection, requests=requests)
        return [[_stored(p) for p in response.points] for response in responses]

    def close(self) -> None:
        if self.owned:
            with translate_errors(self.location):
                self.client.close()


def _strict_max_vectors(config: Any) -> int | None:
    """The strict-mode limit on token vectors per document, if the collection sets one."""
    strict = getattr(config, "strict_mode_config", None)
    if strict is None or not strict.enabled or not strict.multivector_config:
        return None
    limit = strict.multivector_config.get(TOKENS_VECTOR)
    value = getattr(limit, "max_vectors", None)
    return int(value) if value is not None else None


def _is_local(client: Any) -> bool:
    inner = getattr(client, "_client", None)
    return type(inner).__name__ == "QdrantLocal"


def _without_filter_fields() -> Any:
    from qdrant_client import models

    return models.PayloadSelectorExclude(exclude=[FILTER_KEY])


def _query_parts(models: Any, spec: QuerySpec, *, local: bool) -> dict[str, Any]:
    """The fields of one query: exact MaxSim over every match, or over prefetched candidates.

    Local mode always scans exactly and warns about search parameters: none are sent.
    """
    parts: dict[str, Any] = {
        "query": spec.tokens.tolist(),
        "using": TOKENS_VECTOR,
        "limit": spec.limit,
        "with_payload": _without_filter_fields(),
    }
    if spec.fde is None:
        parts["filter"] = spec.filter
        if not local:
            parts["params"] = models.SearchParams(exact=True)
        return parts
    parts["prefetch"] = models.Prefetch(
        query=spec.fde.tolist(),
        using=FDE_VECTOR,
        filter=spec.filter,
        limit=spec.prefetch_limit,
        params=None if local else models.SearchParams(hnsw_ef=spec.ef),
    )
    return parts


def _stored(record: Any) -> StoredPoint:
    import numpy as np

    vectors = getattr(record, "vector", None)
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
