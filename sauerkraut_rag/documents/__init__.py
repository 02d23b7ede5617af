"""documents: what goes in. PDF rendering, image loading, source resolution, text chunking,
and the :class:`~sauerkraut_rag.types.Page` objects they produce.

The bottom layer: imports only the shared base modules (types, errors, _atomic, _checks),
never encoders, retrievers, integrations or the CLI; it does not import torch.
"""

from __future__ import annotations

from sauerkraut_rag.documents.chunking import chunk_text
from sauerkraut_rag.documents.images import load_image
from sauerkraut_rag.documents.pages import iter_pages, save_page_image

__all__ = ["chunk_text", "iter_pages", "load_image", "save_page_image"]
