"""Filters Qdrant cannot evaluate exactly, resolved to point ids before the search.

A ``$like`` pattern with ``_``, a leading ``%`` only, or several literal runs has no
exact Qdrant condition. Such a filter is compiled twice: as a superset Qdrant can
evaluate (the pattern's literal runs as prefix/substring conditions; under ``$not``
a subset), whose points' metadata this client then checks with the language's own
evaluator; the exact matches become a ``has_id`` filter for the search. Cost: one
scroll over the superset's metadata per search (logged), so prefer the exact forms
(``x``, ``x%``, ``%x%``) on large collections.
"""

from __future__ import annotations

import logging
from typing import Any

from sauerkraut_rag.retrievers.filters import FilterNode, matches
from sauerkraut_rag.retrievers.qdrant.engine import Engine
from sauerkraut_rag.retrievers.qdrant.filters import Residual, compile_tree, nothing

__all__ = ["resolve_filter"]

logger = logging.getLogger(__name__)

_SCROLL_PAGE = 1000


def resolve_filter(engine: Engine, node: FilterNode | None) -> Any:
    """The Qdrant filter of ``node``: compiled, or (residual parts) resolved to ids."""
    if node is None:
        return None
    from qdrant_client import models

    try:
        return _as_filter(models, compile_tree(node, models))
    except Residual:
        pass
    pre = _as_filter(models, compile_tree(node, models, superset=True))
    uuids: list[str] = []
    scanned = 0
    offset: str | None = None
    while True:
        points, offset = engine.scroll(_SCROLL_PAGE, offset, flt=pre, with_metadata=True)
        scanned += len(points)
        uuids += [p.uuid for p in points if matches(node, p.metadata)]
        if offset is None:
            break
    logger.info(
        "filter needs client-side evaluation: checked %d documents' metadata, %d match",
        scanned,
        len(uuids),
    )
    if not uuids:
        return nothing(models)
    return models.Filter(must=[models.HasIdCondition(has_id=uuids)])


def _as_filter(models: Any, condition: Any) -> Any:
    """A top-level ``Filter`` (a single condition is wrapped)."""
    if isinstance(condition, models.Filter):
        return condition
    return models.Filter(must=[condition])
