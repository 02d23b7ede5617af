"""Private conversions between LlamaIndex nodes and index records / hits."""

from __future__ import annotations

import mimetypes
from pathlib import Path
from typing import Any

from llama_index.core.schema import (
    BaseNode,
    ImageDocument,
    ImageNode,
    MetadataMode,
    NodeRelationship,
    RelatedNodeInfo,
    TextNode,
)

from sauerkraut_rag.errors import InvalidInputError, InvalidInputTypeError
from sauerkraut_rag.integrations._common import check_json_metadata
from sauerkraut_rag.integrations.llamaindex._support import decode_base64_image
from sauerkraut_rag.types import Hit

NODE_INFO_KEY = "_llamaindex"
"""Metadata key holding the node fields that are not user metadata (ref doc id, ...)."""


def node_record(
    node: Any, *, position: int, ref_doc_hash: str | None = None
) -> tuple[str, str, str, dict[str, Any]]:
    """``node`` -> ``(id, text to encode, payload text, metadata)`` for a text index.

    The encoded text is ``node.get_content(MetadataMode.EMBED)`` (LlamaIndex's
    convention: non-excluded metadata is embedded with the text); the payload is the
    bare text.  Node bookkeeping goes under :data:`NODE_INFO_KEY` and is stripped again
    by :func:`hit_to_text_node`.
    """
    if not isinstance(node, BaseNode):
        raise InvalidInputTypeError(
            f"Expected nodes[{position}] to be a LlamaIndex node (TextNode, Document), got "
            f"{type(node).__name__}. Wrap raw text with TextNode(text=...)."
        )
    if isinstance(node, (ImageNode, ImageDocument)) or (
        getattr(node, "image_resource", None) is not None and not node.get_content().strip()
    ):
        raise InvalidInputTypeError(
            f"Expected nodes[{position}] to be a text node, got {type(node).__name__}. "
            "Index page images with SauerkrautPageRetriever instead."
        )
    metadata = _node_metadata(node, position=position)
    info: dict[str, Any] = {
        "excluded_embed_metadata_keys": list(node.excluded_embed_metadata_keys),
        "excluded_llm_metadata_keys": list(node.excluded_llm_metadata_keys),
    }
    if node.ref_doc_id is not None:
        info["ref_doc_id"] = node.ref_doc_id
    if ref_doc_hash is not None:  # stored by document ingestion (see _documents.py)
        info["ref_doc_id"] = node.ref_doc_id or node.node_id
        info["ref_doc_hash"] = ref_doc_hash
    metadata[NODE_INFO_KEY] = info
    embed_text = node.get_content(metadata_mode=MetadataMode.EMBED)
    return node.node_id, embed_text, node.get_content(metadata_mode=MetadataMode.NONE), metadata


def _node_metadata(node: BaseNode, *, position: int) -> dict[str, Any]:
    """A JSON-checked copy of the node's metadata (the reserved key is refused)."""
    if NODE_INFO_KEY in node.metadata:
        raise InvalidInputError(
            f"nodes[{position}].metadata uses the reserved key {NODE_INFO_KEY!r}. Rename it."
        )
    return check_json_metadata(node.metadata, what=f"nodes[{position}].metadata")


def hit_to_text_node(hit: Hit) -> TextNode:
    """Rebuild the stored ``TextNode`` (same id, text and metadata) from a search hit."""
    metadata = dict(hit.metadata)
    info = metadata.pop(NODE_INFO_KEY, None) or {}
    node = TextNode(
        id_=hit.id,
        text=hit.payload or "",
        metadata=metadata,
        excluded_embed_metadata_keys=list(info.get("excluded_embed_metadata_keys", [])),
        excluded_llm_metadata_keys=list(info.get("excluded_llm_metadata_keys", [])),
    )
    ref_doc_id = info.get("ref_doc_id")
    if ref_doc_id is not None:
        node.relationships[NodeRelationship.SOURCE] = RelatedNodeInfo(node_id=ref_doc_id)
    return node


def image_source(node: BaseNode) -> str | bytes | None:
    """The page image a node stands for, or ``None`` for a text node.

    Image nodes are ``ImageNode`` / ``ImageDocument`` (``image`` base64, ``image_path``,
    or ``metadata["file_path"]``), nodes with an ``image_resource``, and any node whose
    ``metadata["file_path"]`` names an image file (the ColPali reranker convention).
    """
    image = getattr(node, "image", None)
    path = getattr(node, "image_path", None)
    url = getattr(node, "image_url", None)
    resource = getattr(node, "image_resource", None)
    if resource is not None and not isinstance(node, ImageNode):
        if resource.data:
            return decode_base64_image(resource.data.decode("ascii"), what="image_resource.data")
        path = str(resource.path) if resource.path else path
        url = str(resource.url) if resource.url else url
    if image:
        return decode_base64_image(image, what=f"node {node.node_id!r} image")
    if path:
        return str(path)
    file_path = node.metadata.get("file_path")
    is_image_node = isinstance(node, ImageNode) or resource is not None
    if isinstance(file_path, str) and (is_image_node or _looks_like_image(file_path)):
        return file_path
    if is_image_node:
        fix = (
            "Download it and set image_path (URLs are never fetched)."
            if url
            else "Set image_path, image (base64) or metadata['file_path']."
        )
        raise InvalidInputError(
            f"Expected image node {node.node_id!r} to carry a local image, but it has "
            f"image_url={url!r} and no image data or path. {fix}"
        )
    return None


def _looks_like_image(path: str) -> bool:
    mime, _ = mimetypes.guess_type(Path(path).name)
    return mime is not None and mime.startswith("image/")
