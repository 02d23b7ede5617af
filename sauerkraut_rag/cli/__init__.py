"""cli: the ``sauerkraut-rag`` command, one module per command (index, search, explain, info).

The top layer: it may import every other layer; nothing in the package imports it.
"""

from __future__ import annotations

from sauerkraut_rag.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
