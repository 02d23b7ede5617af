"""``sauerkraut-rag info``: the model, dims, counts, size on disk and format versions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TextIO

from sauerkraut_rag.cli.manifest import SourceManifest
from sauerkraut_rag.cli.reading import open_read_only
from sauerkraut_rag.cli.settings import PAGES_FOLDER, IndexSettings
from sauerkraut_rag.cli.targets import FolderTarget, QdrantTarget, Target


def run_info(where: Path | Target, *, as_json: bool, out: TextIO) -> None:
    """Print the model, dims, counts, size on disk and format versions of an index."""
    if isinstance(where, QdrantTarget):
        facts, lines = qdrant_facts(where)
        if as_json:
            out.write(json.dumps(facts, indent=2) + "\n")
        else:
            out.write("".join(f"{name + ':':<14}{value}\n" for name, value in lines))
        return
    folder = where.folder if isinstance(where, FolderTarget) else where
    index = open_read_only(folder)
    try:
        stats = index.stats()
        config = index.config
        encoder = index.encoder_fingerprint
    finally:
        index.close()
    settings = IndexSettings.read(folder)
    with SourceManifest(folder, read_only=True) as manifest:
        files = manifest.counts()
    pages = folder / PAGES_FOLDER
    image_bytes = sum(f.stat().st_size for f in pages.rglob("*") if f.is_file())
    facts: dict[str, Any] = {
        "index": str(folder.resolve()),
        "model": settings.model if settings else None,
        "family": settings.family if settings else None,
        "modality": settings.modality if settings else None,
        "dim": config.dim,
        "documents": stats["documents"],
        "files": sum(files.values()),
        "tokens": stats["tokens"],
        "pool_factor": config.pool_factor,
        "disk_bytes": stats["disk_bytes"],
        "page_image_bytes": image_bytes,
        "index_format_version": _index_format_version(folder),
        "settings_format_version": settings.format_version if settings else None,
        "strategy": config.strategy,
        "encoder": None if encoder is None else encoder.to_dict(),
    }
    if as_json:
        out.write(json.dumps(facts, indent=2) + "\n")
        return
    unit = "pages" if facts["modality"] == "image" else "text chunks"
    model_line = (
        f"{facts['model']} ({facts['family']}, {facts['modality']}, dim {facts['dim']})"
        if settings
        else f"unknown (no sauerkraut-rag.json), dim {facts['dim']}"
    )
    lines = [
        ("index", facts["index"]),
        ("model", model_line),
        ("documents", f"{facts['documents']:,} {unit} from {facts['files']:,} files"),
        (
            "encoder",
            encoder.describe() if encoder else "unknown (indexed before encoder fingerprints)",
        ),
        ("tokens", f"{facts['tokens']:,} stored (pool factor {facts['pool_factor']})"),
        ("size on disk", f"{_size(stats['disk_bytes'])} (page images {_size(image_bytes)})"),
        (
            "format",
            f"index v{facts['index_format_version']}, "
            f"settings v{facts['settings_format_version'] or '-'}",
        ),
        ("search", f"{config.strategy} candidates, exact below {config.exact_threshold:,} docs"),
    ]
    out.write("".join(f"{name + ':':<14}{value}\n" for name, value in lines))


def _index_format_version(folder: Path) -> int:
    from sauerkraut_rag.retrievers.voyager import sql

    conn = sql.connect(folder / sql.DB_NAME, read_only=True)
    try:
        return int(sql.read_meta(conn)["format_version"])
    finally:
        conn.close()


def _size(n_bytes: int) -> str:
    value = float(n_bytes)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"


def qdrant_facts(target: QdrantTarget) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Facts about a Qdrant collection (for ``--json``) and the lines ``info`` prints."""
    index = target.open_read_only()
    try:
        settings = target.read_settings(index)
        stats = index.stats()
        config = index.config
        encoder = index.encoder_fingerprint
        with target.manifest(index, read_only=True) as manifest:
            files = sum(manifest.counts().values())
    finally:
        index.close()
    pages = settings is not None and settings.modality == "image"
    facts: dict[str, Any] = {
        "index": target.label,
        "collection": target.collection,
        "location": target.where,
        "model": settings.model if settings else None,
        "family": settings.family if settings else None,
        "modality": settings.modality if settings else None,
        "dim": config.dim,
        "documents": stats["documents"],
        "files": files,
        "pool_factor": config.pool_factor,
        "vector_dtype": config.vector_dtype,
        "quantization": config.quantization,
        "shard_number": stats.get("shard_number"),
        "replication_factor": stats.get("replication_factor"),
        "status": stats.get("status"),
        "pages_dir": str(target.pages_dir) if pages else None,
        "settings_format_version": settings.format_version if settings else None,
        "encoder": None if encoder is None else encoder.to_dict(),
    }
    unit = "pages" if pages else "text chunks"
    model = (
        f"{facts['model']} ({facts['family']}, {facts['modality']}, dim {config.dim})"
        if settings
        else f"unknown (not built by the command line), dim {config.dim}"
    )
    lines = [
        ("index", target.label),
        ("model", model),
        ("documents", f"{facts['documents']:,} {unit} from {files:,} files"),
        ("encoder", encoder.describe() if encoder else "unknown"),
        ("storage", f"{config.vector_dtype} tokens (pool factor {config.pool_factor}), "
         f"candidate vectors {config.quantization or 'not quantized'}"),
        ("cluster", f"{facts['shard_number'] or '-'} shard(s), replication "
         f"{facts['replication_factor'] or '-'}, status {facts['status'] or '-'}"),
        ("search", f"MUVERA candidates ({config.candidates}), exact below "
         f"{config.exact_threshold:,} docs"),
        ("page images", facts["pages_dir"] or "-"),
    ]  # fmt: skip
    return facts, lines
