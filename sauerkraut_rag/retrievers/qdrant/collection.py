"""Opening a collection: pick the engine, create the collection or check the existing one.

An existing collection must hold this package's record in its metadata (key
``sauerkraut_rag``: format version, settings, encoder) and the two named vectors with
the expected size, distance and kind; anything else is a typed error naming what
differs, and nothing is changed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sauerkraut_rag.errors import (
    DimensionMismatchError,
    IndexFormatError,
    IndexSchemaError,
    InvalidInputError,
    InvalidInputTypeError,
)
from sauerkraut_rag.retrievers.qdrant.config import (
    CLUSTER_FIELDS,
    FDE_VECTOR,
    FORMAT_VERSION,
    METADATA_KEY,
    SCHEMA_FIELDS,
    TOKENS_VECTOR,
    TUNABLE_FIELDS,
    QdrantConfig,
    check_option_names,
    schema_clash,
)
from sauerkraut_rag.retrievers.qdrant.engine import CollectionInfo, Engine

__all__ = ["open_engine", "prepare"]

ENGINES = ("client", "edge")


def open_engine(
    collection: str,
    *,
    client: Any,
    url: str | None,
    api_key: str | None,
    path: str | Path | None,
    location: str | None,
    engine: str,
    client_options: dict[str, Any],
) -> Engine:
    """The engine for exactly one of ``client``, ``url``, ``path`` or ``location``."""
    if not isinstance(collection, str) or not collection.strip():
        raise InvalidInputTypeError(
            f"Expected collection to be a non-empty collection name, got {collection!r}."
        )
    given = [
        n
        for n, v in (("client", client), ("url", url), ("path", path), ("location", location))
        if v is not None
    ]
    if len(given) != 1:
        raise InvalidInputError(
            f"Expected exactly one of client=, url=, path= or location=, got "
            f"{given or 'none'}. Examples: url='http://localhost:6333' (a server), "
            "path='./qdrant' (local mode on disk), location=':memory:' (in memory)."
        )
    if engine not in ENGINES:
        raise InvalidInputError(f"Expected engine to be one of {list(ENGINES)}, got {engine!r}.")
    if engine == "edge":
        if path is None:
            raise InvalidInputError(
                "engine='edge' (Qdrant's engine in this process) stores a collection in a "
                "folder: pass path='./qdrant' (the collection becomes path/NAME)."
            )
        from sauerkraut_rag.retrievers.qdrant.edge import EdgeEngine

        return EdgeEngine(Path(path) / collection)
    from sauerkraut_rag.retrievers.qdrant.client import ClientEngine, connect

    if client is not None:
        if client_options or api_key is not None:
            raise InvalidInputError(
                "Connection options (api_key, prefer_grpc, timeout) apply when the index "
                "creates its client; configure your QdrantClient instead."
            )
        where = _client_location(client)
        return ClientEngine(client, collection, owned=False, location=where)
    made = connect(
        url=url,
        api_key=api_key,
        path=None if path is None else str(path),
        location=location,
        client_options=client_options,
    )
    where = str(url or path or location)
    return ClientEngine(made, collection, owned=True, location=where)


def _client_location(client: Any) -> str:
    inner = getattr(client, "_client", None)
    for attr in ("location", "_location", "rest_uri"):
        value = getattr(inner, attr, None)
        if isinstance(value, str):
            return value
    return type(client).__name__


def prepare(
    engine: Engine, collection: str, dim: int | None, options: dict[str, Any]
) -> tuple[QdrantConfig, dict[str, Any], int | None]:
    """Create the collection or check the existing one.

    Returns its config, this package's metadata record, and the strict-mode limit on
    token vectors per document (``None``: only Qdrant's hard limit).

    ``options`` may hold schema, tunable and cluster options (checked by name first).
    """
    check_option_names(options)
    where = f"collection {collection!r} at {engine.location}"
    info = engine.read_collection()
    if info is None:
        if dim is None:
            raise IndexFormatError(
                f"No {where}. Pass dim= (the model's token dimension) to create it."
            )
        stored = {k: v for k, v in options.items() if k not in CLUSTER_FIELDS}
        config = QdrantConfig(dim=dim, **stored)
        record = {"format": FORMAT_VERSION, "config": config.to_dict(), "encoder": None}
        cluster = {k: v for k, v in options.items() if k in CLUSTER_FIELDS}
        engine.create_collection(config, {METADATA_KEY: record}, cluster)
        created = engine.read_collection()
        if created is None or not isinstance(created.metadata.get(METADATA_KEY), dict):
            drop = getattr(engine, "drop_collection", None)
            if callable(drop):
                drop()  # leave the server as it was
            raise IndexSchemaError(
                f"The Qdrant server at {engine.location} did not keep the collection metadata "
                "this index stores its settings in (older servers drop it). Upgrade the "
                "Qdrant server to a version with collection metadata."
            )
        return config, record, None
    record = _record(info, where)
    config = QdrantConfig.from_dict(record.get("config"), where=where)
    if dim is not None and dim != config.dim:
        raise DimensionMismatchError(
            f"The {where} holds {config.dim}-d token vectors, got dim={dim}. Use another "
            "collection name for a model of another dimension."
        )
    _check_vectors(info, config, where)
    cluster = sorted(k for k in options if k in CLUSTER_FIELDS)
    if cluster:
        raise IndexSchemaError(
            f"{cluster} only apply when a collection is created; the {where} exists. Change "
            "sharding and replication with Qdrant's own API (update_collection, "
            "cluster operations)."
        )
    clash = schema_clash(config, {k: v for k, v in options.items() if k in SCHEMA_FIELDS})
    if clash:
        raise IndexSchemaError(f"The {where} was created with other settings: {clash}")
    tunable = {k: v for k, v in options.items() if k in TUNABLE_FIELDS}
    max_vectors = info.details.get("max_vectors")
    return config.replace(**tunable) if tunable else config, record, max_vectors


def _record(info: CollectionInfo, where: str) -> dict[str, Any]:
    record = info.metadata.get(METADATA_KEY)
    if not isinstance(record, dict):
        raise IndexSchemaError(
            f"The {where} exists but was not created by sauerkraut-rag (its metadata has no "
            f"{METADATA_KEY!r} entry), so its vectors and payloads are not in the layout this "
            "index reads. Choose another collection name, or copy your data into a new "
            "collection with sauerkraut_rag.retrievers.copy_index."
        )
    version = record.get("format")
    if not isinstance(version, int) or version < 1:
        raise IndexFormatError(f"The {where} has no valid format version: {version!r}.")
    if version > FORMAT_VERSION:
        raise IndexFormatError(
            f"The {where} was written in format {version}, newer than this sauerkraut-rag "
            f"reads ({FORMAT_VERSION}). Upgrade sauerkraut-rag."
        )
    return record


def _check_vectors(info: CollectionInfo, config: QdrantConfig, where: str) -> None:
    expected = {
        TOKENS_VECTOR: (config.dim, "dot", True),
        FDE_VECTOR: (config.fde_dim, "cosine", False),
    }
    problems = []
    for name, (size, distance, multi) in expected.items():
        found = info.vectors.get(name)
        if found is None:
            problems.append(f"vector {name!r} is missing")
            continue
        got = (found.size, found.distance, found.multivector)
        if got != (size, distance, multi):
            problems.append(
                f"vector {name!r} is (size {found.size}, {found.distance}, "
                f"{'multivector' if found.multivector else 'single'}), expected (size {size}, "
                f"{distance}, {'multivector MAX_SIM' if multi else 'single'})"
            )
    if problems:
        raise IndexSchemaError(
            f"The {where} does not have the schema its settings describe: "
            f"{'; '.join(problems)}. It was changed by another tool; recreate it and copy "
            "the documents again."
        )
