"""The conformance suite of the ``MultiVectorIndex`` protocol, for any backend.

``MultiVectorIndexTests`` (pytest) checks add/upsert/delete/get/list_ids/search
semantics, typed errors that change nothing, exactness against brute-force MaxSim, and
the shared filter matrix (:mod:`.filter_cases`). Subclass it and implement
``make_index(tmp_path, dim)``; see :mod:`.suite`. Needs pytest (``pip install pytest``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sauerkraut_rag.errors import DependencyMissingError

try:  # a backend's own test run then shows the compared values when a check fails
    import pytest
except ImportError:
    pass
else:
    pytest.register_assert_rewrite(f"{__name__}.suite", f"{__name__}.reference")

if TYPE_CHECKING:
    from sauerkraut_rag.retrievers.conformance.suite import MultiVectorIndexTests

__all__ = ["MultiVectorIndexTests"]


def __getattr__(name: str) -> Any:
    if name == "MultiVectorIndexTests":
        try:
            from sauerkraut_rag.retrievers.conformance.suite import MultiVectorIndexTests
        except ImportError as exc:
            raise DependencyMissingError(
                "The conformance suite runs under pytest: pip install pytest."
            ) from exc
        return MultiVectorIndexTests
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
