"""Private conversions between stored page records and LlamaIndex ``ImageNode``s."""

from __future__ import annotations

import mimetypes
from pathlib import Path
from typing import Any

from llama_index.core.schema import ImageNode, NodeRelationship, RelatedNodeInfo

from sauerkraut_rag.integrations._common import image_base64, page_content
from sauerkraut_rag.types import Hit

IMAGE_FILE_KEY = "image_file"
"""Metadata key with the page image's file name inside the image folder."""

_TECHNICAL_KEYS = (
    "total_pages",
    "width",
    "height",
    "kind",
    "source_sha256",
    "dpi",
    IMAGE_FILE_KEY,
    "image_path",
    "image_mimetype",
    "source_key",
)
"""Stored keys kept in node metadata but hidden from the LLM and from embed text."""


def hit_to_image_node(hit: Hit, image_folder: Path, *, include_image_data: bool) -> ImageNode:
    """Build the ``ImageNode`` for a page hit (image path resolved inside ``image_folder``)."""
    metadata = dict(hit.metadata)
    path = _image_path(metadata, image_folder)
    mimetype = metadata.get("image_mimetype") or (_mimetype(path) if path else None)
    image = image_base64(path)[0] if include_image_data and path is not None else None
    hidden = [key for key in _TECHNICAL_KEYS if key in metadata]
    node = ImageNode(
        id_=hit.id,
        text=page_content(hit.payload, metadata),
        image=image,
        image_path=str(path) if path is not None else None,
        image_mimetype=mimetype,
        metadata=metadata,
        excluded_llm_metadata_keys=hidden,
        excluded_embed_metadata_keys=hidden,
    )
    key = metadata.get("source_key")
    if isinstance(key, str) and key:
        node.relationships[NodeRelationship.SOURCE] = RelatedNodeInfo(node_id=key)
    return node


def _image_path(metadata: dict[str, Any], image_folder: Path) -> Path | None:
    name = metadata.get(IMAGE_FILE_KEY)
    if isinstance(name, str) and name:
        return image_folder / name
    for key in ("image_path", "file_path"):  # indexes written by other tools
        value = metadata.get(key)
        if isinstance(value, str) and value:
            return Path(value)
    return None


def _mimetype(path: Path) -> str:
    return mimetypes.guess_type(path.name)[0] or "image/png"
